// Fuzzes the body of POST /v1/jobs: api::JobSpecFromJsonText.
// Invariant: an accepted spec, sent again the way the CLI sends it (JSON of the spec without
// "gpus_milli"), is accepted again and unchanged.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/json.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fastgpu;
  auto spec = api::JobSpecFromJsonText(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!spec.ok()) return 0;
  fuzz::Require(api::ValidateJobSpec(*spec).ok(), "decoded job spec does not validate");
  nlohmann::json body = api::ToJson(*spec);
  body.erase("gpus_milli");
  auto again = api::JobSpecFromJson(body);
  fuzz::Require(again.ok(), "re-encoded job spec is rejected");
  nlohmann::json body2 = api::ToJson(*again);
  body2.erase("gpus_milli");
  fuzz::Require(body2 == body, "job spec changes on a second decode");
  return 0;
}
