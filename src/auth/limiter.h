// Rate limit for failed authentication, per source address. Thread-safe; time is passed in (no clock reads).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "common/clock.h"

namespace fastgpu::auth {

class FailureLimiter {
 public:
  // At most `max_failures` failed attempts per `window_ms` per source; then blocked until the window passes.
  FailureLimiter(int max_failures, int64_t window_ms);
  // 0 when `source` may try now, else milliseconds until it may (for Retry-After).
  int64_t RetryAfterMs(const std::string& source, UnixMillis now);
  void RecordFailure(const std::string& source, UnixMillis now);
  void RecordSuccess(const std::string& source);  // forgets the source's failures

 private:
  struct Entry {
    UnixMillis window_start = 0;
    int failures = 0;
  };
  int max_failures_;
  int64_t window_ms_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // bounded: old entries are pruned
};

}  // namespace fastgpu::auth
