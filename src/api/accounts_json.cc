#include "api/accounts_json.h"

#include <nlohmann/json.hpp>

namespace fastgpu::api {
}  // namespace fastgpu::api
