// Helpers shared by the api/ JSON codecs (not part of the public API).
#pragma once

#include <exception>
#include <string>

#include "common/status.h"

namespace fastgpu::api::internal {

// Runs a decoder of records written by this program; nlohmann exceptions (missing field, wrong type)
// become kInvalidArgument("malformed record: ...").
template <typename F>
auto Guard(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("malformed record: ") + e.what());
  }
}

}  // namespace fastgpu::api::internal
