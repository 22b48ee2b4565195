#include "auth/limiter.h"

#include <algorithm>
#include <vector>

#include "common/crypto.h"

namespace fastgpu::auth {

namespace {
// Keys remembered at most; beyond this, expired entries (then those not over a limit, then the oldest)
// are dropped.
constexpr size_t kMaxEntries = 10'000;
// Longest source / credential text kept in a key (callers pass short ids; this only bounds memory).
constexpr size_t kMaxKeyPart = 64;
}  // namespace

FailureLimiter::FailureLimiter(int max_failures, int64_t window_ms)
    : max_failures_(max_failures), window_ms_(window_ms > 0 ? window_ms : 1) {}

int64_t FailureLimiter::RecordFailure(std::string_view source, std::string_view credential, UnixMillis now) {
  if (max_failures_ <= 0) return 0;  // limiting disabled
  source = source.substr(0, kMaxKeyPart);
  credential = credential.substr(0, kMaxKeyPart);
  std::string source_key = "s ";
  source_key += source;
  std::string pair_key = "c ";
  pair_key += source;
  pair_key += ' ';
  pair_key += credential;
  std::lock_guard lock(mu_);
  const int64_t by_credential = Count(pair_key, max_failures_, now);
  const int64_t by_source = Count(source_key, max_failures_ * kSourceFactor, now);
  return std::max(by_credential, by_source);
}

int64_t FailureLimiter::Count(const std::string& key, int limit, UnixMillis now) {
  if (entries_.size() >= kMaxEntries && !entries_.count(key)) Prune(now);
  Entry& e = entries_[key];
  if (e.failures == 0 || now >= e.window_start + window_ms_ || now < e.window_start) {
    e.window_start = now;
    e.failures = 0;
  }
  ++e.failures;
  return e.failures > limit ? e.window_start + window_ms_ - now : 0;
}

void FailureLimiter::Prune(UnixMillis now) {
  std::erase_if(entries_, [&](const auto& kv) { return now >= kv.second.window_start + window_ms_; });
  if (entries_.size() >= kMaxEntries) {
    // Many keys inside one window: forget those that are not over the (lower) limit first.
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.failures <= max_failures_; });
  }
  if (entries_.size() >= kMaxEntries) {
    // Still full of limited keys: forget the oldest half.
    std::vector<UnixMillis> starts;
    starts.reserve(entries_.size());
    for (const auto& kv : entries_) starts.push_back(kv.second.window_start);
    auto mid = starts.begin() + static_cast<std::ptrdiff_t>(starts.size() / 2);
    std::nth_element(starts.begin(), mid, starts.end());
    const UnixMillis cut = *mid;
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.window_start <= cut; });
  }
}

size_t FailureLimiter::Size() {
  std::lock_guard lock(mu_);
  return entries_.size();
}

std::string CredentialId(std::string_view presented) { return Sha256Hex(presented).substr(0, 32); }

}  // namespace fastgpu::auth
