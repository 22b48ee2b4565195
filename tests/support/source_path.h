#pragma once
// A file of the source tree, for tests that hand one to a job (e.g. tests/integration/fleet/allreduce.py):
// under $FASTGPU_SOURCE_DIR, which CTest sets for every test (tests/CMakeLists.txt), else found from where this
// header was compiled from (a relative __FILE__ under ccache's base_dir needs the variable).
#include <cstdlib>
#include <filesystem>
#include <string>

namespace fastgpu::testing {

inline std::string SourcePath(const std::string& relative) {
  const char* src = std::getenv("FASTGPU_SOURCE_DIR");
  if (src != nullptr && *src != '\0') return std::string(src) + "/" + relative;
  return (std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / relative).string();
}

}  // namespace fastgpu::testing
