// Fuzzes the job file parser of `fastgpu job submit -f`: cli::ParseJobYaml.
// Invariant: a parsed spec that validates, sent as the CLI sends it (cli::JobSpecRequestBody), is
// accepted by the server's decoder (api::JobSpecFromJsonText).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/json.h"
#include "cli/job_file.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fastgpu;
  auto spec = cli::ParseJobYaml(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!spec.ok()) return 0;
  // As `fastgpu job submit` does: BuildJobSpec validates before the body is built.
  if (!api::ValidateJobSpec(*spec).ok()) return 0;
  const std::string body = cli::JobSpecRequestBody(*spec);
  auto decoded = api::JobSpecFromJsonText(body);
  fuzz::Require(decoded.ok(), "the server rejects a valid job file's request body");
  return 0;
}
