// Small cryptographic helpers over OpenSSL: SHA-256, secure random bytes, hex, constant-time compare.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace fastgpu {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);
// Lower-case hex HMAC-SHA256 of `data` under `key`.
std::string HmacSha256Hex(std::string_view key, std::string_view data);
// Raw 32-byte SHA-256 of `data`.
std::string Sha256Raw(std::string_view data);
// `n` bytes from the OS CSPRNG (via OpenSSL RAND_bytes).
Result<std::string> RandomBytes(size_t n);
// Hex of `n` random bytes (2n characters).
Result<std::string> RandomHex(size_t n);
std::string HexEncode(std::string_view bytes);
Result<std::string> HexDecode(std::string_view hex);
// Standard base64 (RFC 4648, with padding): binary bytes inside JSON (the output and input of `job exec`).
std::string Base64Encode(std::string_view bytes);
// Refuses characters outside the alphabet and bad padding (kInvalidArgument).
Result<std::string> Base64Decode(std::string_view text);
// Compares without leaking the position of the first difference through timing.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// An API token: "fgp_" + 64 hex characters (256 random bits). Shown once; stored only as Sha256Hex.
Result<std::string> RandomToken();

}  // namespace fastgpu
