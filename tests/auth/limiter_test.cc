#include "auth/limiter.h"

#include <gtest/gtest.h>

namespace fastgpu::auth {
namespace {

constexpr UnixMillis kT0 = 1'700'000'000'000;

TEST(FailureLimiter, BlocksAfterMaxFailuresUntilTheWindowPasses) {
  FailureLimiter lim(3, 60'000);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(lim.RetryAfterMs("1.2.3.4", kT0 + i * 1000), 0);
    lim.RecordFailure("1.2.3.4", kT0 + i * 1000);
  }
  EXPECT_EQ(lim.RetryAfterMs("1.2.3.4", kT0 + 3000), 57'000);
  EXPECT_EQ(lim.RetryAfterMs("1.2.3.4", kT0 + 59'999), 1);
  EXPECT_EQ(lim.RetryAfterMs("1.2.3.4", kT0 + 60'000), 0);
  // A new window starts fresh.
  lim.RecordFailure("1.2.3.4", kT0 + 61'000);
  EXPECT_EQ(lim.RetryAfterMs("1.2.3.4", kT0 + 61'001), 0);
}

TEST(FailureLimiter, FailuresInAnOldWindowDoNotCount) {
  FailureLimiter lim(2, 1000);
  lim.RecordFailure("a", kT0);
  lim.RecordFailure("a", kT0 + 1500);  // previous window over: this is failure 1 of a new window
  EXPECT_EQ(lim.RetryAfterMs("a", kT0 + 1600), 0);
  lim.RecordFailure("a", kT0 + 1700);
  EXPECT_EQ(lim.RetryAfterMs("a", kT0 + 1700), 800);
}

TEST(FailureLimiter, SourcesAreIndependentAndSuccessForgets) {
  FailureLimiter lim(1, 60'000);
  lim.RecordFailure("a", kT0);
  EXPECT_GT(lim.RetryAfterMs("a", kT0), 0);
  EXPECT_EQ(lim.RetryAfterMs("b", kT0), 0);
  lim.RecordSuccess("a");
  EXPECT_EQ(lim.RetryAfterMs("a", kT0), 0);
}

TEST(FailureLimiter, ZeroMeansUnlimited) {
  FailureLimiter lim(0, 60'000);
  for (int i = 0; i < 100; ++i) lim.RecordFailure("a", kT0);
  EXPECT_EQ(lim.RetryAfterMs("a", kT0), 0);
}

TEST(FailureLimiter, ManySourcesStayBoundedAndStillBlock) {
  FailureLimiter lim(2, 60'000);
  // Old entries (expired window) are pruned when the table is full.
  for (int i = 0; i < 30'000; ++i) lim.RecordFailure("old-" + std::to_string(i), kT0);
  lim.RecordFailure("attacker", kT0 + 120'000);
  lim.RecordFailure("attacker", kT0 + 120'001);
  EXPECT_GT(lim.RetryAfterMs("attacker", kT0 + 120'002), 0);
  // A flood inside one window keeps working too (the oldest entries are dropped).
  for (int i = 0; i < 30'000; ++i) lim.RecordFailure("new-" + std::to_string(i), kT0 + 130'000 + i);
  lim.RecordFailure("late", kT0 + 170'000);
  lim.RecordFailure("late", kT0 + 170'000);
  EXPECT_GT(lim.RetryAfterMs("late", kT0 + 170'001), 0);
  EXPECT_GT(lim.RetryAfterMs("attacker", kT0 + 170'001), 0) << "a blocked source survives a flood of new ones";
}

}  // namespace
}  // namespace fastgpu::auth
