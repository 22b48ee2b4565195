// Helpers shared by the api/ JSON codecs (not part of the public API).
#pragma once

#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

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

// Integer fields of records, for use inside Guard. nlohmann's get<int>() of a float converts with a
// plain cast (undefined behaviour for 1e300, silent truncation for 2.5); these throw instead, also when
// the value does not fit T.
template <typename T>
T IntValue(const nlohmann::json& v, const std::string& key) {
  if (!v.is_number_integer()) throw std::invalid_argument("field '" + key + "' must be an integer");
  const bool fits = v.is_number_unsigned() ? std::in_range<T>(v.get<uint64_t>()) : std::in_range<T>(v.get<int64_t>());
  if (!fits) throw std::out_of_range("field '" + key + "' is out of range");
  return v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>()) : static_cast<T>(v.get<int64_t>());
}

// Required field.
template <typename T>
T IntAt(const nlohmann::json& j, const char* key) {
  return IntValue<T>(j.at(key), key);
}

// Optional field: `def` when absent.
template <typename T>
T IntOr(const nlohmann::json& j, const char* key, T def) {
  if (!j.contains(key)) return def;
  return IntValue<T>(j.at(key), key);
}

// Optional array of integers: empty when absent.
template <typename T>
std::vector<T> IntsOr(const nlohmann::json& j, const char* key) {
  std::vector<T> out;
  if (!j.contains(key)) return out;
  for (const auto& v : j.at(key).get_ref<const nlohmann::json::array_t&>()) out.push_back(IntValue<T>(v, key));
  return out;
}

}  // namespace fastgpu::api::internal
