// Helpers shared by the libFuzzer targets in this folder (not product code).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "api/json.h"

namespace fastgpu::fuzz {

// A broken invariant is a finding: print it and abort so libFuzzer saves the input.
inline void Require(bool ok, std::string_view what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

// The input read by the product's strict JSON reader (api::ParseJson), or a discarded value when that
// refuses it (never throws). Whatever it accepts, nlohmann alone reads as the same value: the strict
// reader only refuses more (duplicate keys, deep nesting), it never changes what a document means.
inline nlohmann::json ParseJson(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto strict = api::ParseJson(text, "fuzz input");
  if (!strict.ok()) return nlohmann::json(nlohmann::json::value_t::discarded);
  Require(*strict == nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false),
          "the strict JSON reader reads a value nlohmann reads differently");
  return std::move(strict).value();
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
