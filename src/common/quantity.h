// Fixed-point quantities: GPUs in milli-GPU, memory in MiB, money in micro-USD. Never floating point.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace fastgpu {

using MilliGpu = int64_t;   // 1 GPU = 1000
using MiB = int64_t;        // memory
using MicroUsd = int64_t;   // 1 USD = 1'000'000

inline constexpr MilliGpu kMilliPerGpu = 1000;

// Parses "2", "0.25", "0.5" into milli-GPU (at most 3 decimals). Rejects negatives and garbage.
Result<MilliGpu> ParseMilliGpu(std::string_view text);
// Formats 2500 as "2.5", 250 as "0.25", 2000 as "2".
std::string FormatMilliGpu(MilliGpu m);

// Parses durations such as "90s", "30m", "24h", "2d", "1h30m", "45" (seconds), "24 hours".
// Returns seconds. Rejects negatives, garbage and values over 10 years.
Result<int64_t> ParseDurationSeconds(std::string_view text);
// 5400 -> "1h30m", 59 -> "59s".
std::string FormatDuration(int64_t seconds);

// Parses memory such as "4096" (MiB), "16GiB", "16G", "512MiB", "512M". Returns MiB.
Result<MiB> ParseMemoryMiB(std::string_view text);

}  // namespace fastgpu
