// Expected start times of queued jobs (sched::EstimateStarts).
#include "sched/framework/estimate.h"

#include <gtest/gtest.h>

#include "builders.h"

namespace fastgpu::sched {
namespace {

using testing::ClusterBuilder;
using testing::JobBuilder;
using testing::kNow;

constexpr int64_t kHour = 3'600'000;

TEST(EstimateStarts, FreeGpusStartNowAndRunningJobsFreeTheirsAtTheirLimit) {
  ClusterBuilder c;
  c.Node("a", 4);
  c.Run("r1", "a", {0, 1}, 50, false, kNow - kHour);  // limit 2 h: ends in 1 h
  c.last_running().runtime_limit_s = 2 * 3600;
  c.Run("r2", "a", {2}, 50, false, kNow - kHour);  // no limit, predicted 3 h: ends in 2 h
  c.last_running().predicted_runtime_s = 3 * 3600;
  std::vector<JobRequest> q = {JobBuilder("now").Gpus(1).Limit(600),  // GPU 3
                               JobBuilder("two").Gpus(2).Limit(600),  // r1's GPUs in 1 h
                               JobBuilder("three").Gpus(3)};          // once "two" has ended: 1 h 10 min
  auto e = EstimateStarts(c.Build(), q);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].at, kNow);
  EXPECT_EQ(e[1].at, kNow + kHour);
  EXPECT_EQ(e[2].at, kNow + kHour + 600'000);
}

TEST(EstimateStarts, UnknownWhenTheGpusAreHeldForGoodAndSaysWhy) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("forever", "a", {0, 1});  // no limit, no prediction
  std::vector<JobRequest> q = {JobBuilder("j").Gpus(1), JobBuilder("big").Gpus(4)};
  auto e = EstimateStarts(c.Build(), q);
  EXPECT_EQ(e[0].at, 0);
  EXPECT_NE(e[0].why.find("no runtime limit or prediction"), std::string::npos) << e[0].why;
  EXPECT_EQ(e[1].at, 0);
  EXPECT_NE(e[1].why.find("needs 4 GPUs"), std::string::npos) << e[1].why;
}

TEST(EstimateStarts, LaterJobsDoNotTakeGpusFromEarlierOnesButFillHoles) {
  ClusterBuilder c;
  c.Node("a", 4);
  c.Run("r", "a", {0, 1, 2}, 50, false, kNow);
  c.last_running().runtime_limit_s = 3600;  // 3 GPUs free in 1 h
  std::vector<JobRequest> q = {JobBuilder("head").Gpus(4).Limit(3600),   // in 1 h, until 2 h
                               JobBuilder("short").Gpus(1).Limit(1800),  // the free GPU, ends before the head
                               JobBuilder("long").Gpus(1).Limit(7200)};  // would delay the head: after it
  auto e = EstimateStarts(c.Build(), q);
  EXPECT_EQ(e[0].at, kNow + kHour);
  EXPECT_EQ(e[1].at, kNow);
  EXPECT_EQ(e[2].at, kNow + 2 * kHour);
}

TEST(EstimateStarts, BeginTimesAndGpuTypesAreRespected) {
  ClusterBuilder c;
  c.Node("a", 2, "A100-80GB");
  c.Node("h", 1, "H100-80GB");
  std::vector<JobRequest> q = {JobBuilder("later").Gpus(1).StartAfter(kNow + 5 * kHour),
                               JobBuilder("h100").Gpus(1).Type("H100-80GB").Limit(600),
                               JobBuilder("h100b").Gpus(1).Type("H100-80GB").Limit(600),
                               JobBuilder("any").Gpus(2)};
  auto e = EstimateStarts(c.Build(), q);
  EXPECT_EQ(e[0].at, kNow + 5 * kHour);
  EXPECT_EQ(e[1].at, kNow);
  EXPECT_EQ(e[2].at, kNow + 600'000);
  // Two A100s are free now, but "later" holds one of them from 5 h on for good: "any" needs both for good.
  EXPECT_EQ(e[3].at, 0);
}

TEST(EstimateStarts, ReservationsKeepGpusForTheirProjectInsideTheWindow) {
  ClusterBuilder c;
  c.Node("a", 4);
  ClusterSnapshot s = c.Build();
  s.reservations.push_back({"r-1", "res", 4, "A100-80GB", kNow + kHour, kNow + 3 * kHour});
  std::vector<JobRequest> q = {
      JobBuilder("other-unbounded").Gpus(1).Project("x"),           // would run into the window: after it
      JobBuilder("other-short").Gpus(1).Project("x").Limit(1800),   // ends before the window: now
      JobBuilder("mine").Gpus(4).Project("res").Limit(3600),        // its own reserved GPUs: now
  };
  auto e = EstimateStarts(s, q);
  EXPECT_EQ(e[0].at, kNow + 3 * kHour);
  EXPECT_EQ(e[1].at, kNow);
  // 4 GPUs for 1 h: once "other-short" has ended.
  EXPECT_EQ(e[2].at, kNow + 1'800'000);
}

TEST(EstimateStarts, FractionsShareAPartlyUsedGpuNow) {
  ClusterBuilder c;
  c.Node("a", 1);
  c.Run("half", "a", {0}, 50, false, kNow, 500, 40000);
  std::vector<JobRequest> q = {JobBuilder("quarter").Fraction(250, 10000), JobBuilder("whole").Gpus(1)};
  auto e = EstimateStarts(c.Build(), q);
  EXPECT_EQ(e[0].at, kNow);
  EXPECT_EQ(e[1].at, 0);  // "half" has no limit
}

TEST(EstimateStarts, OnlyTheFirstJobsAreEstimated) {
  ClusterBuilder c;
  c.Node("a", 1);
  std::vector<JobRequest> q;
  for (int i = 0; i < 5; ++i) q.push_back(JobBuilder("j" + std::to_string(i)).Gpus(1).Limit(60));
  auto e = EstimateStarts(c.Build(), q, 3);
  EXPECT_EQ(e[2].at, kNow + 120'000);
  EXPECT_EQ(e[3].at, 0);
  EXPECT_NE(e[4].why.find("more than 3 jobs"), std::string::npos);
}

TEST(EstimateStarts, ExpectedEndOfRunningJobs) {
  RunningJob r;
  r.started_at = kNow - kHour;
  EXPECT_EQ(ExpectedEnd(r, kNow), 0);
  r.predicted_runtime_s = 600;  // overdue: expected to end now
  EXPECT_EQ(ExpectedEnd(r, kNow), kNow);
  r.runtime_limit_s = 7200;  // the limit wins over the prediction
  EXPECT_EQ(ExpectedEnd(r, kNow), kNow + kHour);
  r.started_at = 0;  // placed, not started yet: from now
  EXPECT_EQ(ExpectedEnd(r, kNow), kNow + 2 * kHour);
}

}  // namespace
}  // namespace fastgpu::sched
