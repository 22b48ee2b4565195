// Rate limit for failed authentication. Thread-safe; time is passed in (no clock reads).
//
// Failures are counted per (source address, presented credential) and per source address. The caller
// checks the credential first and consults the limiter only when it failed: a valid credential is never
// refused, so an attacker who shares an address with others (a job on the same host, clients behind one
// proxy) cannot lock them out. A client that keeps presenting a bad credential, and an address that
// sprays many different ones, get 429 + Retry-After instead of 401 until their window passes.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace fastgpu::auth {

class FailureLimiter {
 public:
  // At most `max_failures` failures per `window_ms` for one credential from one source, and
  // `kSourceFactor` times as many for one source in all; then failures are answered with 429 until the
  // window passes. max_failures <= 0 disables limiting.
  static constexpr int kSourceFactor = 3;
  FailureLimiter(int max_failures, int64_t window_ms);

  // Records one failed attempt from `source` presenting `credential` (a short, non-secret id of what
  // was presented: see CredentialId; "" when nothing was). Returns 0 while both counts are within the
  // limit, else the milliseconds until the attempt would have been within it (for Retry-After).
  int64_t RecordFailure(std::string_view source, std::string_view credential, UnixMillis now);

  // Entries currently remembered (bounded; for tests).
  size_t Size();

 private:
  struct Entry {
    UnixMillis window_start = 0;
    int failures = 0;
  };
  // Counts one failure in `key`'s window; returns 0 or the ms until that window ends when over `limit`.
  int64_t Count(const std::string& key, int limit, UnixMillis now);
  void Prune(UnixMillis now);

  int max_failures_;
  int64_t window_ms_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // bounded: old entries are pruned
};

// A short id of a presented secret (a bearer token, a client secret): a prefix of its SHA-256, so the
// limiter never holds secrets and its keys stay small whatever was sent.
std::string CredentialId(std::string_view presented);

}  // namespace fastgpu::auth
