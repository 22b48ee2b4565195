#include "auth/limiter.h"

#include <algorithm>
#include <vector>

namespace fastgpu::auth {

namespace {
// Sources remembered at most; beyond this, expired entries (then the oldest) are dropped.
constexpr size_t kMaxEntries = 10'000;
}  // namespace

FailureLimiter::FailureLimiter(int max_failures, int64_t window_ms)
    : max_failures_(max_failures), window_ms_(window_ms > 0 ? window_ms : 1) {}

int64_t FailureLimiter::RetryAfterMs(const std::string& source, UnixMillis now) {
  if (max_failures_ <= 0) return 0;  // limiting disabled
  std::lock_guard lock(mu_);
  auto it = entries_.find(source);
  if (it == entries_.end()) return 0;
  const UnixMillis end = it->second.window_start + window_ms_;
  if (now >= end) {
    entries_.erase(it);
    return 0;
  }
  return it->second.failures >= max_failures_ ? end - now : 0;
}

void FailureLimiter::RecordFailure(const std::string& source, UnixMillis now) {
  if (max_failures_ <= 0) return;
  std::lock_guard lock(mu_);
  if (entries_.size() >= kMaxEntries && !entries_.count(source)) {
    std::erase_if(entries_, [&](const auto& kv) { return now >= kv.second.window_start + window_ms_; });
    if (entries_.size() >= kMaxEntries) {
      // Many sources inside one window: forget those that are not blocked first.
      std::erase_if(entries_, [&](const auto& kv) { return kv.second.failures < max_failures_; });
    }
    if (entries_.size() >= kMaxEntries) {
      // Still full of blocked sources: forget the oldest half.
      std::vector<UnixMillis> starts;
      starts.reserve(entries_.size());
      for (const auto& kv : entries_) starts.push_back(kv.second.window_start);
      auto mid = starts.begin() + static_cast<std::ptrdiff_t>(starts.size() / 2);
      std::nth_element(starts.begin(), mid, starts.end());
      const UnixMillis cut = *mid;
      std::erase_if(entries_, [&](const auto& kv) { return kv.second.window_start <= cut; });
    }
  }
  Entry& e = entries_[source];
  if (e.failures == 0 || now >= e.window_start + window_ms_ || now < e.window_start) {
    e.window_start = now;
    e.failures = 0;
  }
  ++e.failures;
}

void FailureLimiter::RecordSuccess(const std::string& source) {
  std::lock_guard lock(mu_);
  entries_.erase(source);
}

}  // namespace fastgpu::auth
