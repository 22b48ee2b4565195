#include <gtest/gtest.h>

#include "sched/framework/queue_sort.h"
#include "sched/policies/runtime_predictor.h"
#include "builders.h"

namespace fastgpu::sched {
namespace {

using testing::ClusterBuilder;
using testing::FindBind;
using testing::FindPending;
using testing::JobBuilder;
using testing::kNow;
using testing::Make;

constexpr int64_t kMin = 60'000;

TEST(Fifo, StrictOrderStopsAtFirstBlockedJob) {
  ClusterBuilder c;
  c.Node("a", 4);
  std::vector<JobRequest> q = {JobBuilder("j1").Gpus(2).Submitted(1), JobBuilder("j2").Gpus(4).Submitted(2),
                               JobBuilder("j3").Gpus(1).Submitted(3)};
  Decisions d = Make("fifo")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "j1"), nullptr);
  ASSERT_NE(FindPending(d, "j2"), nullptr);
  ASSERT_NE(FindPending(d, "j3"), nullptr);
  EXPECT_EQ(FindPending(d, "j3")->reason, "waiting: behind j2, first in line (fifo)");
}

TEST(Fifo, NeverFittingJobDoesNotBlock) {
  ClusterBuilder c;
  c.Node("a", 4);
  std::vector<JobRequest> q = {JobBuilder("huge").Gpus(16).Submitted(1), JobBuilder("j").Submitted(2)};
  Decisions d = Make("fifo")->Schedule(c.Build(), q);
  EXPECT_TRUE(FindPending(d, "huge")->never_fits);
  EXPECT_NE(FindBind(d, "j"), nullptr);
}

TEST(Priority, HigherPriorityFirst) {
  ClusterBuilder c;
  c.Node("a", 2);
  std::vector<JobRequest> q = {JobBuilder("low").Gpus(2).Priority(10).Submitted(kNow - 1000),
                               JobBuilder("high").Gpus(2).Priority(90).Submitted(kNow - 1000)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "high"), nullptr);
  EXPECT_NE(FindPending(d, "low"), nullptr);
}

TEST(Priority, AgingLetsOldLowPriorityJobOvertake) {
  ClusterBuilder c;
  c.Node("a", 2);
  // Waited 1000 minutes: +100 points.
  std::vector<JobRequest> q = {JobBuilder("old").Gpus(2).Priority(0).Submitted(kNow - 1000 * kMin),
                               JobBuilder("new").Gpus(2).Priority(99).Submitted(kNow)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "old"), nullptr);
  EXPECT_EQ(EffectivePriorityMilli(q[0], kNow, 10 * kMin), 100'000);
}

TEST(Priority, BlockedHeadHoldsNodeButSmallJobsRunElsewhere) {
  ClusterBuilder c;
  c.Node("a", 8).Node("b", 8);
  c.Run("r1", "a", {0, 1, 2, 3, 4, 5});  // a: 2 free
  c.Run("r2", "b", {0, 1, 2, 3});        // b: 4 free
  std::vector<JobRequest> q = {JobBuilder("big").Gpus(8).Priority(90),
                               JobBuilder("small").Gpus(2).Priority(10),
                               JobBuilder("small2").Gpus(2).Priority(10).Submitted(kNow)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  const Pending* big = FindPending(d, "big");
  ASSERT_NE(big, nullptr);
  EXPECT_NE(big->reason.find("holding b for it"), std::string::npos) << big->reason;
  // b is held for the big job; small jobs only use a.
  const Bind* s = FindBind(d, "small");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->nodes[0].node, "a");
  ASSERT_NE(FindPending(d, "small2"), nullptr);
  EXPECT_NE(FindPending(d, "small2")->reason.find("held for big"), std::string::npos);
}

TEST(Priority, PreemptsMinimalLowerPriorityVictims) {
  ClusterBuilder c;
  c.Node("a", 4).Node("b", 4);
  const UnixMillis old = kNow - 3'600'000;
  c.Run("v1", "a", {0, 1}, 10, true, old);
  c.Run("v2", "a", {2}, 10, true, old);
  c.Run("v3", "a", {3}, 20, true, old);
  c.Run("keep", "b", {0, 1, 2, 3}, 90, true, old);  // higher priority: never a victim
  std::vector<JobRequest> q = {JobBuilder("hi").Gpus(2).Priority(80)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  ASSERT_EQ(d.preemptions.size(), 1u);
  EXPECT_EQ(d.preemptions[0].job_id, "v1");  // frees 2 GPUs alone
  EXPECT_EQ(d.preemptions[0].reason, "preempted by hi (priority 80)");
  EXPECT_TRUE(d.binds.empty());  // preempt now, bind next round
  ASSERT_NE(FindPending(d, "hi"), nullptr);
  EXPECT_EQ(FindPending(d, "hi")->reason, "waiting: preempting v1 to make room on a");
}

TEST(Priority, VictimSetIsMinimal) {
  ClusterBuilder c;
  c.Node("a", 4);
  const UnixMillis old = kNow - 3'600'000;
  c.Run("v1", "a", {0}, 5, true, old);
  c.Run("v2", "a", {1}, 6, true, old);
  c.Run("v3", "a", {2, 3}, 7, true, old);
  std::vector<JobRequest> q = {JobBuilder("hi").Gpus(2).Priority(80)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  // Greedy adds v1, v2 (enough). Minimal: dropping either breaks the fit.
  ASSERT_EQ(d.preemptions.size(), 2u);
  EXPECT_EQ(d.preemptions[0].job_id, "v1");
  EXPECT_EQ(d.preemptions[1].job_id, "v2");

  // With v1 gone from the picture, v2 + v3 would be picked then v2 dropped (v3 alone suffices).
  ClusterBuilder c2;
  c2.Node("a", 4);
  c2.Run("v2", "a", {0}, 6, true, old);
  c2.Run("v3", "a", {1, 2}, 7, true, old);
  c2.Run("x", "a", {3}, 99, false, old);
  Decisions d2 = Make("priority")->Schedule(c2.Build(), q);
  ASSERT_EQ(d2.preemptions.size(), 1u);
  EXPECT_EQ(d2.preemptions[0].job_id, "v3");
}

TEST(Priority, RespectsMinRuntimeAndPreemptibility) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("fresh", "a", {0}, 10, true, kNow - 60'000);  // ran 1 minute (< 5)
  c.Run("pinned", "a", {1}, 10, false, kNow - 3'600'000);
  std::vector<JobRequest> q = {JobBuilder("hi").Gpus(1).Priority(90)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  EXPECT_TRUE(d.preemptions.empty());

  ClusterBuilder c2;
  c2.Node("a", 1);
  c2.Run("resumed", "a", {0}, 10, true, kNow - 3'600'000);
  c2.last_running().last_preempted_at = kNow - 60'000;
  Decisions d2 = Make("priority")->Schedule(c2.Build(), q);
  EXPECT_TRUE(d2.preemptions.empty());
}

TEST(Priority, NoNewPreemptionWhileOneIsStopping) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("v1", "a", {0}, 10, true, kNow - 3'600'000);
  c.last_running().stopping = true;
  c.Run("v2", "a", {1}, 10, true, kNow - 3'600'000);
  std::vector<JobRequest> q = {JobBuilder("hi").Gpus(2).Priority(90)};
  EXPECT_TRUE(Make("priority")->Schedule(c.Build(), q).preemptions.empty());
}

TEST(FairShare, LowestShareProjectGoesFirst) {
  ClusterBuilder c;
  c.Node("a", 4);
  c.Run("r", "a", {0, 1}, 50, false, kNow - 1000, kMilliPerGpu, 0, "heavy");
  std::vector<JobRequest> q = {JobBuilder("h1").Gpus(2).Project("heavy").Submitted(1),
                               JobBuilder("l1").Gpus(2).Project("light").Submitted(2)};
  Decisions d = Make("fair-share")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "l1"), nullptr);
  EXPECT_NE(FindPending(d, "h1"), nullptr);
}

TEST(FairShare, WeightsScaleShares) {
  ClusterBuilder c;
  c.Node("a", 8);
  std::vector<JobRequest> q;
  for (int i = 0; i < 8; ++i) {
    q.push_back(JobBuilder("a" + std::to_string(i)).Project("A").Submitted(i));
    q.push_back(JobBuilder("b" + std::to_string(i)).Project("B").Submitted(i));
  }
  SchedulerOptions o;
  o.policy = "fair-share";
  o.project_weights = {{"A", 3}};
  Decisions d = (*MakeScheduler(o))->Schedule(c.Build(), q);
  int a = 0;
  for (const Bind& b : d.binds) a += b.job_id[0] == 'a';
  EXPECT_EQ(d.binds.size(), 8u);
  EXPECT_EQ(a, 6);  // 3:1
}

TEST(Sjf, ShortestPredictedFirstUnknownUsesDefault) {
  ClusterBuilder c;
  c.Node("a", 1);
  std::vector<JobRequest> q = {JobBuilder("long").Predicted(7200).Submitted(1), JobBuilder("unknown").Submitted(2),
                               JobBuilder("short").Predicted(60).Submitted(3)};
  Decisions d = Make("sjf")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "short"), nullptr);
  EXPECT_EQ(d.binds.size(), 1u);
}

TEST(RuntimePredictor, LearnsPerUserAndName) {
  RuntimePredictor p(2);
  EXPECT_EQ(p.Predict("u", "train"), 0);
  p.Observe("u", "train", 100);
  p.Observe("u", "train", 200);
  p.Observe("u", "train", 301);  // history 2: mean of 200, 301 rounded up
  p.Observe("v", "train", 5);
  p.Observe("u", "eval", -3);  // ignored
  EXPECT_EQ(p.Predict("u", "train"), 251);
  EXPECT_EQ(p.Predict("v", "train"), 5);
  EXPECT_EQ(p.Predict("u", "eval"), 0);
  std::vector<JobRequest> q = {JobBuilder("j").User("u"), JobBuilder("k").User("u").Predicted(9)};
  p.Fill(q);
  EXPECT_EQ(q[0].predicted_runtime_s, 251);
  EXPECT_EQ(q[1].predicted_runtime_s, 9);
}

TEST(Las, LeastAttainedFirstAndPreemptsLowerQueue) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("veteran", "a", {0, 1}, 50, true, kNow - 3'600'000);
  c.last_running().attained_gpu_ms = 100 * 3'600'000LL;  // queue 2
  std::vector<JobRequest> q = {JobBuilder("served").Gpus(2).Attained(2 * 3'600'000).Submitted(1),
                               JobBuilder("fresh").Gpus(2).Submitted(2)};
  Decisions d = Make("las")->Schedule(c.Build(), q);
  ASSERT_EQ(d.preemptions.size(), 1u);
  EXPECT_EQ(d.preemptions[0].job_id, "veteran");
  EXPECT_NE(d.preemptions[0].reason.find("preempted by fresh"), std::string::npos);
}

TEST(Las, NoPreemptionWithinSameQueueOrTooSoon) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("peer", "a", {0, 1}, 50, true, kNow - 3'600'000);  // queue 0 too
  std::vector<JobRequest> q = {JobBuilder("fresh").Gpus(2)};
  EXPECT_TRUE(Make("las")->Schedule(c.Build(), q).preemptions.empty());
  ClusterBuilder c2;
  c2.Node("a", 2);
  c2.Run("veteran", "a", {0, 1}, 50, true, kNow - 1000);
  c2.last_running().attained_gpu_ms = 100 * 3'600'000LL;
  EXPECT_TRUE(Make("las")->Schedule(c2.Build(), q).preemptions.empty());
}

TEST(Backfill, ShortJobsFillBeforeReservation) {
  ClusterBuilder c;
  c.Node("a", 4);
  c.Run("r", "a", {0, 1}, 50, false, kNow - 1000);
  c.last_running().runtime_limit_s = 3600;  // frees at ~now+1h
  std::vector<JobRequest> q = {JobBuilder("head").Gpus(4).Submitted(1),
                               JobBuilder("long").Gpus(1).Limit(7200).Submitted(2),
                               JobBuilder("short").Gpus(1).Limit(600).Submitted(3),
                               JobBuilder("unknown").Gpus(1).Submitted(4)};
  Decisions d = Make("backfill")->Schedule(c.Build(), q);
  ASSERT_NE(FindPending(d, "head"), nullptr);
  EXPECT_NE(FindPending(d, "head")->reason.find("reserved a at"), std::string::npos) << FindPending(d, "head")->reason;
  EXPECT_NE(FindBind(d, "short"), nullptr);
  EXPECT_NE(FindPending(d, "long"), nullptr);
  EXPECT_NE(FindPending(d, "unknown"), nullptr);
  EXPECT_NE(FindPending(d, "long")->reason.find("backfill must not delay head"), std::string::npos);
}

// With one waiting reason (replays), the round still walks past long jobs to a short one that fits
// on the reserved node, and past jobs that fit nowhere to one that fits outside it.
TEST(Backfill, ShortJobsFillWithOneReason) {
  ClusterBuilder c;
  c.Node("a", 4).Node("b", 2);
  c.Run("r", "a", {0, 1}, 50, false, kNow - 1000);
  c.last_running().runtime_limit_s = 3600;  // a frees at ~now+1h: the head's shadow time
  c.Run("s", "b", {0}, 50, false, kNow - 1000);
  std::vector<JobRequest> q = {JobBuilder("head").Gpus(4).Submitted(1)};
  for (int i = 0; i < 20; ++i) q.push_back(JobBuilder("long" + std::to_string(i)).Gpus(2).Limit(7200).Submitted(2 + i));
  for (int i = 0; i < 20; ++i) q.push_back(JobBuilder("big" + std::to_string(i)).Gpus(3).Submitted(30 + i));
  q.push_back(JobBuilder("short").Gpus(2).Limit(600).Submitted(60));
  SchedulerOptions o;
  o.policy = "backfill";
  o.max_pending_reasons = 1;
  for (bool small : {false, true}) {
    SCOPED_TRACE(small ? "with a job for b" : "only the short job");
    std::vector<JobRequest> jobs = q;
    if (small) jobs.push_back(JobBuilder("small").Gpus(1).Submitted(61));
    Decisions d = (*MakeScheduler(o))->Schedule(c.Build(), jobs);
    ASSERT_NE(FindBind(d, "short"), nullptr);
    EXPECT_EQ(FindBind(d, "short")->nodes[0].node, "a");
    if (small) {
      ASSERT_NE(FindBind(d, "small"), nullptr);
      EXPECT_EQ(FindBind(d, "small")->nodes[0].node, "b");
    }
    EXPECT_EQ(d.binds.size(), small ? 2u : 1u);
    EXPECT_EQ(d.pending.size(), 1u);
    EXPECT_EQ(d.unreported, static_cast<int64_t>(jobs.size() - d.binds.size()) - 1);
  }
}

TEST(Backfill, JobsOutsideReservedNodesRun) {
  ClusterBuilder c;
  c.Node("a", 4).Node("b", 2);
  c.Run("r", "a", {0, 1}, 50, false, kNow - 1000);
  c.last_running().runtime_limit_s = 3600;
  std::vector<JobRequest> q = {JobBuilder("head").Gpus(4).Submitted(1),
                               JobBuilder("unknown").Gpus(2).Submitted(2)};
  Decisions d = Make("backfill")->Schedule(c.Build(), q);
  ASSERT_NE(FindBind(d, "unknown"), nullptr);
  EXPECT_EQ(FindBind(d, "unknown")->nodes[0].node, "b");
}

}  // namespace
}  // namespace fastgpu::sched
