// Fuzzes the decoders of api/billing_json.h (price catalog, usage segments, ledger entries).
#include <cstddef>
#include <cstdint>

#include "api/billing_json.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fastgpu;
  const nlohmann::json j = fuzz::ParseJson(data, size);
  if (j.is_discarded()) return 0;
  auto enc = [](const auto& v) { return api::ToJson(v); };
  fuzz::CheckRoundTrip(j, api::PriceEntryFromJson, enc, "PriceEntryFromJson round trip");
  fuzz::CheckRoundTrip(j, api::UsageSegmentFromJson, enc, "UsageSegmentFromJson round trip");
  fuzz::CheckRoundTrip(j, api::LedgerEntryFromJson, enc, "LedgerEntryFromJson round trip");
  return 0;
}
