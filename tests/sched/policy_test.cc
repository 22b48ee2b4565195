#include <gtest/gtest.h>

#include "sched/framework/queue_sort.h"
#include "sched/policies/runtime_predictor.h"
#include "builders.h"
#include "random_inputs.h"

namespace fastgpu::sched {
namespace {

using testing::ClusterBuilder;
using testing::FindBind;
using testing::FindPending;
using testing::JobBuilder;
using testing::kNow;
using testing::Make;
using testing::Serialize;

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

TEST(RuntimePredictor, LearnsPerProjectUserAndName) {
  RuntimePredictor p(2);
  EXPECT_EQ(p.Predict("p", "u", "train"), 0);
  p.Observe("p", "u", "train", 100);
  p.Observe("p", "u", "train", 200);
  p.Observe("p", "u", "train", 301);  // history 2: mean of 200, 301 rounded up
  p.Observe("p", "v", "train", 5);
  p.Observe("q", "u", "train", 7);    // another project: its own history
  p.Observe("p", "u", "eval", -3);    // ignored
  EXPECT_EQ(p.Predict("p", "u", "train"), 251);
  EXPECT_EQ(p.Predict("p", "v", "train"), 5);
  EXPECT_EQ(p.Predict("q", "u", "train"), 7);
  EXPECT_EQ(p.Predict("p", "u", "eval"), 0);
  std::vector<JobRequest> q = {JobBuilder("j").User("u"), JobBuilder("k").User("u").Predicted(9)};
  q[0].project = "p";
  q[0].name = "train";
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

constexpr int64_t kHour = 3'600'000;

TEST(FairLas, DefaultNamesFairLas) {
  EXPECT_EQ(Make("default")->Name(), "fair-las/best-fit");
  // Predictions, when there are any, let other jobs use the nodes a starving job holds.
  EXPECT_TRUE(Make("default")->UsesRuntimeEstimates());
  SchedulerOptions o;
  o.policy = "default";
  EXPECT_EQ(QueueOrderFor(o).kind, QueueOrder::Kind::kProjectAttained);
}

TEST(FairLas, ProjectHoldingFewerGpusGoesFirst) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("big-running", "a", {0}, 50, false, kNow - kHour, kMilliPerGpu, 0, "big");
  // The big project's job is older, but the small project holds no GPU.
  std::vector<JobRequest> q = {JobBuilder("big-2").Project("big").Submitted(kNow - 2 * kMin),
                               JobBuilder("small-1").Project("small").Submitted(kNow - kMin)};
  Decisions d = Make("fair-las")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "small-1"), nullptr);
  EXPECT_NE(FindPending(d, "big-2"), nullptr);
}

TEST(FairLas, SharesCountThisRoundsBinds) {
  ClusterBuilder c;
  c.Node("a", 3);
  // a1, a2 are older, but after a1 starts project a holds 1 GPU and b holds none: b1 goes next.
  std::vector<JobRequest> q = {JobBuilder("a1").Project("a").Submitted(kNow - 3 * kMin),
                               JobBuilder("a2").Project("a").Submitted(kNow - 3 * kMin + 1),
                               JobBuilder("b1").Project("b").Submitted(kNow - kMin),
                               JobBuilder("b2").Project("b").Submitted(kNow - kMin + 1)};
  Decisions d = Make("fair-las")->Schedule(c.Build(), q);
  ASSERT_EQ(d.binds.size(), 3u);
  EXPECT_EQ(d.binds[0].job_id, "a1");
  EXPECT_EQ(d.binds[1].job_id, "b1");
  EXPECT_EQ(d.binds[2].job_id, "a2");
  EXPECT_NE(FindPending(d, "b2"), nullptr);
}

TEST(FairLas, SmallestJobOfAProjectFirst) {
  ClusterBuilder c;
  c.Node("a", 4);
  // Same project: the newer 1-GPU job goes before the older 4-GPU one (which then no longer fits).
  std::vector<JobRequest> q = {JobBuilder("wide").Gpus(4).Submitted(kNow - 2 * kMin),
                               JobBuilder("narrow").Gpus(1).Submitted(kNow - kMin)};
  Decisions d = Make("fair-las")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "narrow"), nullptr);
  EXPECT_NE(FindPending(d, "wide"), nullptr);
  EXPECT_EQ(QueueOrder::SizeClass(q[0]), 3);
  EXPECT_EQ(QueueOrder::SizeClass(q[1]), 1);
  EXPECT_EQ(QueueOrder::SizeClass(JobBuilder("f").Fraction(500, 1024)), 0);
  EXPECT_EQ(QueueOrder::SizeClass(JobBuilder("g").Gpus(8).Nodes(4)), 6);
}

TEST(FairLas, LeastAttainedServiceBeforeProjectShare) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("x", "a", {0}, 50, false, kNow - kHour, kMilliPerGpu, 0, "busy");
  // "served" (queue 1, no GPUs held by its project) waits behind "fresh" (queue 0) of the busy project.
  std::vector<JobRequest> q = {JobBuilder("served").Project("idle").Attained(2 * kHour).Submitted(kNow - 2 * kMin),
                               JobBuilder("fresh").Project("busy").Submitted(kNow - kMin)};
  Decisions d = Make("fair-las")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "fresh"), nullptr);
  EXPECT_NE(FindPending(d, "served"), nullptr);
}

TEST(FairLas, PreemptsOnlyPreemptibleJobsOfALowerQueue) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Node("b", 2);
  c.Run("veteran-pinned", "a", {0, 1}, 50, false, kNow - kHour);
  c.last_running().attained_gpu_ms = 100 * kHour;  // queue 2, not preemptible
  c.Run("veteran", "b", {0, 1}, 50, true, kNow - kHour);
  c.last_running().attained_gpu_ms = 100 * kHour;  // queue 2, preemptible
  std::vector<JobRequest> q = {JobBuilder("fresh").Gpus(2).Submitted(kNow - kMin)};
  Decisions d = Make("fair-las")->Schedule(c.Build(), q);
  ASSERT_EQ(d.preemptions.size(), 1u);
  EXPECT_EQ(d.preemptions[0].job_id, "veteran");

  // A peer of the same queue is never a victim.
  ClusterBuilder c2;
  c2.Node("a", 2);
  c2.Run("peer", "a", {0, 1}, 50, true, kNow - kHour);
  EXPECT_TRUE(Make("fair-las")->Schedule(c2.Build(), q).preemptions.empty());
}

TEST(FairLas, HigherPriorityFirstWhateverItsService) {
  ClusterBuilder c;
  c.Node("a", 1);
  // "urgent" is newer, in a later LAS queue and of a project holding more GPUs, but of higher priority.
  c.Node("b", 1);
  c.Run("x", "b", {0}, 50, false, kNow - kHour, kMilliPerGpu, 0, "busy");
  std::vector<JobRequest> q = {JobBuilder("routine").Project("idle").Priority(10).Submitted(kNow - 2 * kMin),
                               JobBuilder("urgent").Project("busy").Priority(90).Attained(100 * kHour).Submitted(kNow - kMin)};
  Decisions d = Make("fair-las")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "urgent"), nullptr);
  EXPECT_NE(FindPending(d, "routine"), nullptr);
  // Equal priorities: least attained service first, as before.
  q[1].priority = 10;
  Decisions d2 = Make("fair-las")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d2, "routine"), nullptr);
}

TEST(FairLas, PreemptsLowerPriorityWhateverItsQueueNeverHigher) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("low-fresh", "a", {0, 1}, 10, true, kNow - kHour);  // queue 0, priority 10
  // A priority-90 job in the last LAS queue preempts a lower-priority job of the first queue.
  std::vector<JobRequest> q = {JobBuilder("high").Gpus(2).Priority(90).Attained(100 * kHour)};
  Decisions d = Make("fair-las")->Schedule(c.Build(), q);
  ASSERT_EQ(d.preemptions.size(), 1u);
  EXPECT_EQ(d.preemptions[0].job_id, "low-fresh");
  EXPECT_NE(d.preemptions[0].reason.find("priority 90"), std::string::npos) << d.preemptions[0].reason;

  // A lower-priority job never preempts a higher-priority one, however much service that one attained.
  ClusterBuilder c2;
  c2.Node("a", 2);
  c2.Run("high-veteran", "a", {0, 1}, 90, true, kNow - kHour);
  c2.last_running().attained_gpu_ms = 100 * kHour;
  std::vector<JobRequest> q2 = {JobBuilder("low").Gpus(2).Priority(10)};
  EXPECT_TRUE(Make("fair-las")->Schedule(c2.Build(), q2).preemptions.empty());
  // Nor is a non-preemptible job of lower priority ever a victim.
  ClusterBuilder c3;
  c3.Node("a", 2);
  c3.Run("low-pinned", "a", {0, 1}, 10, false, kNow - kHour);
  EXPECT_TRUE(Make("fair-las")->Schedule(c3.Build(), q).preemptions.empty());
  // Equal priority: only a later LAS queue is a victim.
  ClusterBuilder c4;
  c4.Node("a", 2);
  c4.Run("peer-veteran", "a", {0, 1}, 90, true, kNow - kHour);
  c4.last_running().attained_gpu_ms = 100 * kHour;
  std::vector<JobRequest> q4 = {JobBuilder("fresh").Gpus(2).Priority(90)};
  EXPECT_EQ(Make("fair-las")->Schedule(c4.Build(), q4).preemptions.size(), 1u);
  EXPECT_TRUE(Make("fair-las")->Schedule(c4.Build(), q).preemptions.empty());  // "high" is in the same queue
}

TEST(FairLas, StarvationGuardWorksWithinAPriority) {
  ClusterBuilder c;
  c.Node("a", 1);
  // "old" starves (25 h, absolute rule) but a priority-90 job goes before it.
  std::vector<JobRequest> q = {JobBuilder("old").Priority(10).Submitted(kNow - 25 * kHour),
                               JobBuilder("new").Priority(90).Submitted(kNow - kMin)};
  SchedulerOptions o;
  o.policy = "fair-las";
  o.starvation_mean_age_multiple = 0;
  Decisions d = MakeScheduler(o).value()->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "new"), nullptr);
  EXPECT_NE(FindPending(d, "old"), nullptr);
}

TEST(FairLas, BandsKeepPriorityLasQueueAndSize) {
  for (int priority : {0, 1, 50, 100, -3}) {
    for (int64_t level : {0, 1, 2}) {
      for (int64_t size : {0, 1, 6}) {
        const int64_t band = -static_cast<int64_t>(priority) * QueueOrder::kPriorityStride +
                             level * QueueOrder::kSizeClasses + size;
        EXPECT_EQ(QueueOrder::PriorityOfBand(band), priority);
        EXPECT_EQ(QueueOrder::LasQueueOfBand(band), level);
      }
    }
  }
}

// fair-las with the absolute starvation rule only (no condition on the queue's mean age).
std::unique_ptr<Scheduler> FairLasAbsolute() {
  SchedulerOptions o;
  o.policy = "fair-las";
  o.starvation_mean_age_multiple = 0;
  return MakeScheduler(o).value();
}

TEST(FairLas, StarvingJobGoesFirstWhateverItsProject) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("x", "a", {0}, 50, false, kNow - kHour, kMilliPerGpu, 0, "big");
  // One GPU free. "old" (big project) was submitted 25 h ago and never ran: it starves (default 24 h).
  std::vector<JobRequest> q = {JobBuilder("old").Project("big").Submitted(kNow - 25 * kHour),
                               JobBuilder("small").Project("small").Submitted(kNow - kMin)};
  Decisions d = FairLasAbsolute()->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "old"), nullptr);
  // Without the guard the small project goes first.
  SchedulerOptions o;
  o.policy = "fair-las";
  o.starvation_after_ms = 0;
  Decisions d2 = MakeScheduler(o).value()->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d2, "small"), nullptr);
  // A job that ran before (preempted) is not guarded: it competes by attained service.
  q[0] = JobBuilder("old").Project("big").Submitted(kNow - 25 * kHour).Attained(kMin);
  Decisions d3 = FairLasAbsolute()->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d3, "small"), nullptr);
}

TEST(FairLas, StarvingJobsOfTheLeastServedProjectFirst) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("x", "a", {0}, 50, false, kNow - kHour, kMilliPerGpu, 0, "big");
  // One GPU free. big-old and light-old starve; light holds fewer GPUs, so light-old goes first,
  // although big-old is older and aaa-new (not starving) would come first in the normal order.
  std::vector<JobRequest> q = {JobBuilder("big-old").Project("big").Submitted(kNow - 50 * kHour),
                               JobBuilder("light-old").Project("light").Submitted(kNow - 30 * kHour),
                               JobBuilder("aaa-new").Project("aaa").Submitted(kNow - kMin)};
  Decisions d = FairLasAbsolute()->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "light-old"), nullptr);
  EXPECT_NE(FindPending(d, "big-old"), nullptr);
  EXPECT_NE(FindPending(d, "aaa-new"), nullptr);
}

TEST(FairLas, StarvingLargeJobHoldsTheClosestNode) {
  ClusterBuilder c;
  c.Node("a", 4);
  c.Node("b", 4);
  c.Run("r1", "a", {0, 1, 2}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  c.Run("r2", "b", {0, 1}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  // "gang" needs 4 GPUs on one node and starves; b (2 free) is closest and is held for it, so the
  // newer 2-GPU job cannot take it and goes to a... which has 1 free GPU: it waits.
  std::vector<JobRequest> q = {JobBuilder("gang").Gpus(4).Submitted(kNow - 30 * kHour),
                               JobBuilder("pair").Gpus(2).Submitted(kNow - kMin),
                               JobBuilder("one").Gpus(1).Submitted(kNow - kMin)};
  Decisions d = FairLasAbsolute()->Schedule(c.Build(), q);
  ASSERT_NE(FindPending(d, "gang"), nullptr);
  EXPECT_NE(FindPending(d, "gang")->reason.find("holding b"), std::string::npos) << FindPending(d, "gang")->reason;
  EXPECT_NE(FindPending(d, "pair"), nullptr);
  ASSERT_NE(FindBind(d, "one"), nullptr);
  EXPECT_EQ(FindBind(d, "one")->nodes[0].node, "a");
}

TEST(FairLas, StarvingJobHoldsTheNodesFreeingFirstAndShortJobsRunThereMeanwhile) {
  ClusterBuilder c;
  c.Node("a", 4);
  c.Node("b", 4);
  // a has 1 GPU free but its job is expected to run 10 more hours; b has none free but its jobs are
  // expected to end within 2 hours: the starving gang is expected to fit on b first, so b is held.
  c.Run("long", "a", {0, 1, 2}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  c.last_running().predicted_runtime_s = 11 * 3600;
  c.Run("soon1", "b", {0, 1}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  c.last_running().predicted_runtime_s = 2 * 3600;
  c.Run("soon2", "b", {2, 3}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  c.last_running().runtime_limit_s = 3 * 3600;  // a limit counts before a prediction
  c.last_running().predicted_runtime_s = 20 * 3600;
  std::vector<JobRequest> q = {JobBuilder("gang").Gpus(4).Submitted(kNow - 30 * kHour)};
  Decisions d = FairLasAbsolute()->Schedule(c.Build(), q);
  ASSERT_NE(FindPending(d, "gang"), nullptr);
  EXPECT_NE(FindPending(d, "gang")->reason.find("holding b"), std::string::npos) << FindPending(d, "gang")->reason;

  // b frees GPUs 0-1 in 1 h; the gang is expected to start in 2 h (when soon2 ends at its limit).
  ClusterBuilder c2;
  c2.Node("a", 4);
  c2.Node("b", 4);
  c2.Run("full", "a", {0, 1, 2, 3}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  c2.last_running().predicted_runtime_s = 11 * 3600;
  c2.Run("soon2", "b", {2, 3}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  c2.last_running().runtime_limit_s = 3 * 3600;
  // A job expected to end before then runs on the held GPUs; one expected to run longer, or with no
  // estimate, waits.
  std::vector<JobRequest> q2 = {JobBuilder("gang").Gpus(4).Submitted(kNow - 30 * kHour),
                                JobBuilder("long").Gpus(2).Predicted(5 * 3600).Submitted(kNow - kMin),
                                JobBuilder("unknown").Gpus(2).Submitted(kNow - kMin),
                                JobBuilder("short").Gpus(2).Predicted(3600).Submitted(kNow - kMin)};
  Decisions d2 = FairLasAbsolute()->Schedule(c2.Build(), q2);
  ASSERT_NE(FindPending(d2, "gang"), nullptr);
  EXPECT_NE(FindPending(d2, "gang")->reason.find("holding b"), std::string::npos) << FindPending(d2, "gang")->reason;
  EXPECT_NE(FindPending(d2, "long"), nullptr);
  EXPECT_NE(FindPending(d2, "unknown"), nullptr);
  ASSERT_NE(FindBind(d2, "short"), nullptr);
  EXPECT_EQ(FindBind(d2, "short")->nodes[0].node, "b");
}

TEST(FairLas, GuardKeepsToOutliersWhenEveryJobWaitsLong) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("x", "a", {0}, 50, false, kNow - kHour, kMilliPerGpu, 0, "big");
  // Every queued job is days old (an overloaded cluster): "old" (50 h) is not 4x the mean age (~45 h),
  // so it does not starve and the light project goes first.
  std::vector<JobRequest> q = {JobBuilder("old").Project("big").Submitted(kNow - 50 * kHour)};
  for (int i = 0; i < 9; ++i) {
    q.push_back(JobBuilder("light-" + std::to_string(i)).Project("light").Submitted(kNow - 44 * kHour + i));
  }
  Decisions d = Make("fair-las")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "light-0"), nullptr);
  EXPECT_NE(FindPending(d, "old"), nullptr);
  // Among fresh jobs the same 50 h-old job is an outlier (mean age ~5 h): it starves and goes first.
  for (int i = 1; i < 10; ++i) q[static_cast<size_t>(i)].submitted_at = kNow - 5 * kMin + i;
  Decisions d2 = Make("fair-las")->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d2, "old"), nullptr);
}

TEST(FairLas, ProjectWeightsScaleShares) {
  ClusterBuilder c;
  c.Node("a", 4);
  c.Run("h1", "a", {0, 1}, 50, false, kNow - kHour, kMilliPerGpu, 0, "heavy");
  c.Run("l1", "a", {2}, 50, false, kNow - kHour, kMilliPerGpu, 0, "light");
  std::vector<JobRequest> q = {JobBuilder("l2").Project("light").Submitted(kNow - 2 * kMin),
                               JobBuilder("h2").Project("heavy").Submitted(kNow - kMin)};
  SchedulerOptions o;
  o.policy = "fair-las";
  o.project_weights = {{"heavy", 4}};  // 2 GPUs / 4 < 1 GPU / 1
  Decisions d = MakeScheduler(o).value()->Schedule(c.Build(), q);
  EXPECT_NE(FindBind(d, "h2"), nullptr);
  EXPECT_NE(FindPending(d, "l2"), nullptr);
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

// Cross-project preemption rule: a project holding its fair share of the GPUs (here 2 of 4: two projects with
// jobs) does not preempt another project's jobs, unless SchedulerOptions::preempt_across_projects.
TEST(CrossProject, NoPreemptionOfOtherProjectsAtFairShare) {
  for (const char* policy : {"priority", "las", "fair-las"}) {
    SCOPED_TRACE(policy);
    SchedulerOptions o;
    o.policy = policy;
    ClusterBuilder c;
    c.Node("a", 4);
    c.Run("mine", "a", {0, 1}, 90, false, kNow - kHour, kMilliPerGpu, 0, "a");
    c.Run("theirs", "a", {2, 3}, 10, true, kNow - kHour, kMilliPerGpu, 0, "b");
    c.last_running().attained_gpu_ms = 100 * kHour;
    std::vector<JobRequest> q = {JobBuilder("urgent").Project("a").Gpus(2).Priority(90)};
    Decisions d = (*MakeScheduler(o))->Schedule(c.Build(), q);
    EXPECT_TRUE(d.preemptions.empty()) << Serialize(d);
    o.preempt_across_projects = true;
    d = (*MakeScheduler(o))->Schedule(c.Build(), q);
    ASSERT_EQ(d.preemptions.size(), 1u);
    EXPECT_EQ(d.preemptions[0].job_id, "theirs");
    o.preempt_across_projects = false;

    // Below its fair share (a holds nothing, b all 4 GPUs) it may.
    ClusterBuilder c2;
    c2.Node("a", 4);
    c2.Run("theirs-1", "a", {0, 1}, 10, true, kNow - kHour, kMilliPerGpu, 0, "b");
    c2.last_running().attained_gpu_ms = 100 * kHour;
    c2.Run("theirs-2", "a", {2, 3}, 10, true, kNow - kHour, kMilliPerGpu, 0, "b");
    c2.last_running().attained_gpu_ms = 100 * kHour;
    d = (*MakeScheduler(o))->Schedule(c2.Build(), q);
    EXPECT_EQ(d.preemptions.size(), 1u) << Serialize(d);

    // Its own project's jobs stay victims whatever it holds.
    ClusterBuilder c3;
    c3.Node("a", 4);
    c3.Run("own-low", "a", {0, 1}, 10, true, kNow - kHour, kMilliPerGpu, 0, "a");
    c3.last_running().attained_gpu_ms = 100 * kHour;
    c3.Run("own-other", "a", {2, 3}, 90, false, kNow - kHour, kMilliPerGpu, 0, "a");
    d = (*MakeScheduler(o))->Schedule(c3.Build(), q);
    ASSERT_EQ(d.preemptions.size(), 1u) << Serialize(d);
    EXPECT_EQ(d.preemptions[0].job_id, "own-low");
  }
}

TEST(CrossProject, WeightsAndQueuedProjectsSetTheFairShare) {
  // 8 GPUs; a holds 4. With b alone beside it the share is 4 (at share); with weight 3 for a it is 6.
  ClusterBuilder c;
  c.Node("a", 8);
  c.Run("mine", "a", {0, 1, 2, 3}, 90, false, kNow - kHour, kMilliPerGpu, 0, "a");
  c.Run("theirs", "a", {4, 5, 6, 7}, 10, true, kNow - kHour, kMilliPerGpu, 0, "b");
  std::vector<JobRequest> q = {JobBuilder("urgent").Project("a").Gpus(4).Priority(90)};
  SchedulerOptions o;
  o.policy = "priority";
  EXPECT_TRUE((*MakeScheduler(o))->Schedule(c.Build(), q).preemptions.empty());
  o.project_weights["a"] = 3;
  EXPECT_EQ((*MakeScheduler(o))->Schedule(c.Build(), q).preemptions.size(), 1u);
  // A third project with only queued jobs lowers a's share to 8 x 3 / 5 = 4.8: still below.
  q.push_back(JobBuilder("c-job").Project("c").Gpus(8).Priority(0));
  EXPECT_EQ((*MakeScheduler(o))->Schedule(c.Build(), q).preemptions.size(), 1u);
  o.project_weights["c"] = 3;  // 8 x 3 / 7 = 3.4: a is above it
  EXPECT_TRUE((*MakeScheduler(o))->Schedule(c.Build(), q).preemptions.empty());
}

ReservationView Reservation(const std::string& project, int gpus, UnixMillis start, UnixMillis end,
                            const std::string& type = "") {
  ReservationView r;
  r.id = "r-" + project;
  r.project = project;
  r.gpus = gpus;
  r.gpu_type = type;
  r.start = start;
  r.end = end;
  return r;
}

TEST(Reservations, OtherProjectsKeepTheReservedCountFree) {
  for (const char* policy : kPolicyNames) {
    SCOPED_TRACE(policy);
    ClusterBuilder c;
    c.Node("a", 8);
    ClusterSnapshot s = c.Build();
    s.reservations.push_back(Reservation("res", 4, kNow - kHour, kNow + kHour));
    // 8 free, 4 reserved: another project's 6-GPU job waits, its 4-GPU job starts.
    std::vector<JobRequest> q = {JobBuilder("big").Project("other").Gpus(6).Submitted(kNow - 2 * kMin)};
    Decisions d = Make(policy)->Schedule(s, q);
    ASSERT_NE(FindPending(d, "big"), nullptr) << Serialize(d);
    EXPECT_EQ(FindPending(d, "big")->reason.rfind("waiting: 4 GPUs are reserved for project res from ", 0), 0u)
        << FindPending(d, "big")->reason;
    q = {JobBuilder("fits").Project("other").Gpus(4)};
    EXPECT_NE(FindBind(Make(policy)->Schedule(s, q), "fits"), nullptr);
    // The project itself is never held back by its own reservation.
    q = {JobBuilder("own").Project("res").Gpus(8)};
    EXPECT_NE(FindBind(Make(policy)->Schedule(s, q), "own"), nullptr);
    // A held-back job does not hold back the jobs behind it (fifo included).
    q = {JobBuilder("big").Project("other").Gpus(6).Submitted(kNow - 2 * kMin),
         JobBuilder("own").Project("res").Gpus(2).Submitted(kNow - kMin)};
    EXPECT_NE(FindBind(Make(policy)->Schedule(s, q), "own"), nullptr);
    // GPUs the project already uses count against its reservation.
    ClusterBuilder c2;
    c2.Node("a", 8);
    c2.Run("res-running", "a", {0, 1, 2}, 50, false, kNow - kHour, kMilliPerGpu, 0, "res");
    ClusterSnapshot s2 = c2.Build();
    s2.reservations = s.reservations;
    q = {JobBuilder("four").Project("other").Gpus(4)};  // 5 free, 1 still reserved: fits
    EXPECT_NE(FindBind(Make(policy)->Schedule(s2, q), "four"), nullptr);
    q = {JobBuilder("five").Project("other").Gpus(5)};
    EXPECT_NE(FindPending(Make(policy)->Schedule(s2, q), "five"), nullptr);
    // An ended window holds nothing.
    s.reservations[0].end = kNow;
    q = {JobBuilder("big").Project("other").Gpus(6)};
    EXPECT_NE(FindBind(Make(policy)->Schedule(s, q), "big"), nullptr);
  }
}

TEST(Reservations, UpcomingWindowAllowsOnlyJobsEndingBeforeIt) {
  ClusterBuilder c;
  c.Node("a", 8);
  ClusterSnapshot s = c.Build();
  s.reservations.push_back(Reservation("res", 8, kNow + 2 * kHour, kNow + 4 * kHour));
  for (const char* policy : kPolicyNames) {
    SCOPED_TRACE(policy);
    std::vector<JobRequest> q = {JobBuilder("short").Project("other").Gpus(4).Limit(3600).Submitted(kNow - 3 * kMin),
                                 JobBuilder("long").Project("other").Gpus(2).Limit(3 * 3600).Submitted(kNow - 2 * kMin),
                                 JobBuilder("open").Project("other").Gpus(2).Submitted(kNow - kMin)};
    Decisions d = Make(policy)->Schedule(s, q);
    EXPECT_NE(FindBind(d, "short"), nullptr) << Serialize(d);
    ASSERT_NE(FindPending(d, "long"), nullptr) << Serialize(d);
    EXPECT_NE(FindPending(d, "long")->reason.find("reserved for project res"), std::string::npos);
    EXPECT_NE(FindPending(d, "open"), nullptr) << Serialize(d);
  }
}

TEST(Reservations, AnyTypeJobsGoToOtherTypes) {
  ClusterBuilder c;
  c.Node("h", 4, "H100-80GB").Node("a", 8, "A100-80GB");
  ClusterSnapshot s = c.Build();
  s.reservations.push_back(Reservation("res", 4, kNow - kHour, kNow + kHour, "H100-80GB"));
  // Best-fit would take the H100 node (fewest free GPUs that fit); the reservation sends the job to the A100s.
  std::vector<JobRequest> q = {JobBuilder("any").Project("other").Gpus(4)};
  Decisions d = Make("priority")->Schedule(s, q);
  ASSERT_NE(FindBind(d, "any"), nullptr) << Serialize(d);
  EXPECT_EQ(FindBind(d, "any")->nodes[0].node, "a");
  // Asking for H100s: it waits, and the reason names the type.
  q = {JobBuilder("h100").Project("other").Gpus(1).Type("H100-80GB")};
  d = Make("priority")->Schedule(s, q);
  ASSERT_NE(FindPending(d, "h100"), nullptr);
  EXPECT_NE(FindPending(d, "h100")->reason.find("4 H100-80GB GPUs are reserved"), std::string::npos);
}

TEST(Reservations, NoPreemptionThatWouldOnlyFeedTheReservation) {
  // Full cluster; "theirs" (preemptible, low priority) holds 4 of 8 GPUs, 4 are reserved for res and used
  // by nobody... but they are busy with a non-preemptible job of a third project. Preempting "theirs" frees
  // 4 GPUs the reservation needs, so "urgent" of another project does not preempt.
  ClusterBuilder c;
  c.Node("a", 8);
  c.Run("theirs", "a", {0, 1, 2, 3}, 10, true, kNow - kHour, kMilliPerGpu, 0, "b");
  c.Run("pinned", "a", {4, 5, 6, 7}, 10, false, kNow - kHour, kMilliPerGpu, 0, "c");
  ClusterSnapshot s = c.Build();
  s.reservations.push_back(Reservation("res", 4, kNow - kHour, kNow + kHour));
  SchedulerOptions o;
  o.policy = "priority";
  o.preempt_across_projects = true;
  std::vector<JobRequest> q = {JobBuilder("urgent").Project("other").Gpus(4).Priority(90)};
  EXPECT_TRUE((*MakeScheduler(o))->Schedule(s, q).preemptions.empty());
  s.reservations.clear();
  EXPECT_EQ((*MakeScheduler(o))->Schedule(s, q).preemptions.size(), 1u);
}

}  // namespace
}  // namespace fastgpu::sched
