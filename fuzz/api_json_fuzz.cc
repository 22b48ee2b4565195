// Fuzzes the record decoders of api/json.h (store rows, agent reports): JobFromJson, GpuFromJson,
// NodeFromJson, JobEventFromJson. Every input is given to every decoder.
#include <cstddef>
#include <cstdint>

#include "api/json.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fastgpu;
  const nlohmann::json j = fuzz::ParseJson(data, size);
  if (j.is_discarded()) return 0;
  auto enc = [](const auto& v) { return api::ToJson(v); };
  fuzz::CheckRoundTrip(j, api::JobFromJson, enc, "JobFromJson round trip");
  fuzz::CheckRoundTrip(j, api::GpuFromJson, enc, "GpuFromJson round trip");
  fuzz::CheckRoundTrip(j, api::NodeFromJson, enc, "NodeFromJson round trip");
  fuzz::CheckRoundTrip(j, api::JobEventFromJson, enc, "JobEventFromJson round trip");
  (void)api::JobSpecFromJson(j);
  return 0;
}
