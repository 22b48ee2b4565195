// Helpers shared by the libFuzzer targets in this folder (not product code).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

namespace fastgpu::fuzz {

// A broken invariant is a finding: print it and abort so libFuzzer saves the input.
inline void Require(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// The input as JSON, or a discarded value when it is not JSON (never throws).
inline nlohmann::json ParseJson(const uint8_t* data, size_t size) {
  return nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(data), size), nullptr,
                               /*allow_exceptions=*/false);
}

// Decodes `j`; when the decoder accepts it, the encoding of the result must decode again and
// re-encode to the same JSON (the decoders are documented as reading what the encoders write).
template <typename Decode, typename Encode>
void CheckRoundTrip(const nlohmann::json& j, Decode decode, Encode encode, std::string_view what) {
  auto first = decode(j);
  if (!first.ok()) return;
  const nlohmann::json encoded = encode(*first);
  auto second = decode(encoded);
  Require(second.ok(), what);
  Require(encode(*second) == encoded, what);
}

}  // namespace fastgpu::fuzz
