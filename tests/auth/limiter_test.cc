#include "auth/limiter.h"

#include <gtest/gtest.h>

#include <string>

namespace fastgpu::auth {
namespace {

constexpr UnixMillis kT0 = 1'700'000'000'000;

TEST(FailureLimiter, OneCredentialIsLimitedAfterMaxFailuresUntilTheWindowPasses) {
  FailureLimiter lim(3, 60'000);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(lim.RecordFailure("1.2.3.4", "tok", kT0 + i * 1000), 0) << i;
  EXPECT_EQ(lim.RecordFailure("1.2.3.4", "tok", kT0 + 3000), 57'000);
  EXPECT_EQ(lim.RecordFailure("1.2.3.4", "tok", kT0 + 59'999), 1);
  // A new window starts fresh.
  EXPECT_EQ(lim.RecordFailure("1.2.3.4", "tok", kT0 + 60'000), 0);
}

TEST(FailureLimiter, FailuresInAnOldWindowDoNotCount) {
  FailureLimiter lim(2, 1000);
  EXPECT_EQ(lim.RecordFailure("a", "x", kT0), 0);
  EXPECT_EQ(lim.RecordFailure("a", "x", kT0 + 1500), 0);  // previous window over: failure 1 of a new window
  EXPECT_EQ(lim.RecordFailure("a", "x", kT0 + 1600), 0);
  EXPECT_EQ(lim.RecordFailure("a", "x", kT0 + 1700), 800);
}

TEST(FailureLimiter, OtherCredentialsFromTheSameSourceAreNotLimitedByOneBadOne) {
  FailureLimiter lim(3, 60'000);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(lim.RecordFailure("127.0.0.1", "stale-token", kT0), 0);
  EXPECT_GT(lim.RecordFailure("127.0.0.1", "stale-token", kT0), 0);
  EXPECT_GT(lim.RecordFailure("127.0.0.1", "stale-token", kT0), 0);
  // Somebody else at the same address mistypes their token: still a plain failure (401), not 429 ...
  EXPECT_EQ(lim.RecordFailure("127.0.0.1", "typo", kT0), 0);
  // ... and the same credential from another address is counted apart.
  EXPECT_EQ(lim.RecordFailure("10.0.0.9", "stale-token", kT0), 0);
}

TEST(FailureLimiter, ASourceSprayingDifferentCredentialsIsLimited) {
  FailureLimiter lim(3, 60'000);
  const int per_source = 3 * FailureLimiter::kSourceFactor;
  for (int i = 0; i < per_source; ++i)
    EXPECT_EQ(lim.RecordFailure("6.6.6.6", "guess-" + std::to_string(i), kT0 + i), 0) << i;
  EXPECT_EQ(lim.RecordFailure("6.6.6.6", "guess-new", kT0 + 1000), 59'000);
  // Another source is not affected.
  EXPECT_EQ(lim.RecordFailure("1.1.1.1", "guess-new", kT0 + 1000), 0);
  // After the window, the sprayer starts afresh.
  EXPECT_EQ(lim.RecordFailure("6.6.6.6", "guess-later", kT0 + 60'000), 0);
}

TEST(FailureLimiter, ZeroMeansUnlimited) {
  FailureLimiter lim(0, 60'000);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(lim.RecordFailure("a", "x", kT0), 0);
  EXPECT_EQ(lim.Size(), 0u);
}

TEST(FailureLimiter, LongKeysAreBounded) {
  FailureLimiter lim(1, 60'000);
  const std::string huge(1 << 20, 'x');
  lim.RecordFailure(huge, huge, kT0);
  EXPECT_GT(lim.RecordFailure(huge, huge, kT0), 0);
  EXPECT_EQ(lim.Size(), 2u);
}

TEST(FailureLimiter, ManyKeysStayBoundedAndLimitedOnesSurvive) {
  FailureLimiter lim(2, 60'000);
  // Old entries (expired window) are pruned when the table is full.
  for (int i = 0; i < 30'000; ++i) lim.RecordFailure("old-" + std::to_string(i), "c", kT0);
  EXPECT_LE(lim.Size(), 10'000u);
  lim.RecordFailure("attacker", "c", kT0 + 120'000);
  lim.RecordFailure("attacker", "c", kT0 + 120'001);
  EXPECT_GT(lim.RecordFailure("attacker", "c", kT0 + 120'002), 0);
  // A flood inside one window keeps working too (entries under the limit are dropped first).
  for (int i = 0; i < 30'000; ++i) lim.RecordFailure("new-" + std::to_string(i), "c", kT0 + 130'000 + i);
  EXPECT_LE(lim.Size(), 10'000u);
  lim.RecordFailure("late", "c", kT0 + 170'000);
  lim.RecordFailure("late", "c", kT0 + 170'000);
  EXPECT_GT(lim.RecordFailure("late", "c", kT0 + 170'001), 0);
  EXPECT_GT(lim.RecordFailure("attacker", "c", kT0 + 170'001), 0) << "a limited key survives a flood of new ones";
  // One source spraying many credentials is bounded as well.
  for (int i = 0; i < 30'000; ++i) lim.RecordFailure("sprayer", "guess-" + std::to_string(i), kT0 + 171'000);
  EXPECT_LE(lim.Size(), 10'000u);
  EXPECT_GT(lim.RecordFailure("sprayer", "guess-x", kT0 + 171'001), 0);
}

TEST(FailureLimiter, CredentialIdIsShortAndNotTheSecret) {
  const std::string token = "fgp_" + std::string(64, 'a');
  const std::string id = CredentialId(token);
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(id.find("aaaa"), std::string::npos);
  EXPECT_EQ(id, CredentialId(token));
  EXPECT_NE(id, CredentialId(token + "b"));
}

}  // namespace
}  // namespace fastgpu::auth
