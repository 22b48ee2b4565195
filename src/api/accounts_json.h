// JSON codecs for api/accounts.h. Decoders are strict (unknown fields and wrong types are errors).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "api/accounts.h"
#include "common/status.h"

namespace fastgpu::api {
}  // namespace fastgpu::api
