#include "api/billing_json.h"

#include <nlohmann/json.hpp>

namespace fastgpu::api {
}  // namespace fastgpu::api
