// Time is injected: only clock.cc reads the system clocks.
#pragma once

#include <string_view>

#include "common/status.h"

#include <chrono>
#include <cstdint>
#include <mutex>

namespace fastgpu {

// Milliseconds since the Unix epoch (wall time, for records and display).
using UnixMillis = int64_t;

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time, for timestamps stored and shown to users.
  virtual UnixMillis NowMillis() const = 0;
  // Monotonic time in nanoseconds, for measuring intervals and deadlines.
  virtual int64_t MonotonicNanos() const = 0;
};

class SystemClock final : public Clock {
 public:
  UnixMillis NowMillis() const override;
  int64_t MonotonicNanos() const override;
};

// Manually advanced clock for tests and simulation.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(UnixMillis start = 1'700'000'000'000) : now_ms_(start) {}
  UnixMillis NowMillis() const override {
    std::lock_guard lock(mu_);
    return now_ms_;
  }
  int64_t MonotonicNanos() const override {
    std::lock_guard lock(mu_);
    return now_ms_ * 1'000'000;
  }
  void Advance(std::chrono::milliseconds d) {
    std::lock_guard lock(mu_);
    now_ms_ += d.count();
  }
  void Set(UnixMillis t) {
    std::lock_guard lock(mu_);
    now_ms_ = t;
  }

 private:
  mutable std::mutex mu_;
  UnixMillis now_ms_;
};

// RFC 3339 UTC text, e.g. "2026-11-23T10:00:00.123Z". Empty for 0.
std::string FormatTimestamp(UnixMillis t);
// Parses "2026-11-23", "2026-11-23T10:00:00Z", "2026-11-23T10:00:00.123Z" or "...+02:00" (UTC offset).
Result<UnixMillis> ParseTimestamp(std::string_view text);

}  // namespace fastgpu
