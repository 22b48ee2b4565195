#include <gtest/gtest.h>

#include "sim/simulate_command.h"
#include "sim/simulator.h"
#include "test_scheduler.h"

namespace fastgpu::sim {
namespace {

using testing::MakeTestFifo;
using testing::MakeTestSjf;

Trace MustParse(const std::string& rows) {
  auto t = ParseTrace("job_id,submit_time_s,num_gpus,duration_s,user,queue,status\n" + rows, "test.csv");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : Trace{};
}

SimConfig Config(const std::string& cluster) {
  SimConfig c;
  auto spec = ParseClusterSpec(cluster);
  EXPECT_TRUE(spec.ok());
  if (spec.ok()) c.cluster = *spec;
  return c;
}

const JobOutcome& Find(const SimResult& r, const std::string& id) {
  for (const auto& j : r.jobs) {
    if (j.job_id == id) return j;
  }
  static const JobOutcome kMissing;
  ADD_FAILURE() << "no job " << id;
  return kMissing;
}

int64_t JctS(const SimResult& r, const std::string& id) {
  const auto& j = Find(r, id);
  return (j.end_ms - j.submit_ms) / 1000;
}

TEST(SimulatorTest, FifoHandComputed) {
  // One GPU. a: 0-10, b: 10-15, c: 15-16.
  Trace t = MustParse("a,0,1,10,u,q,s\nb,0,1,5,u,q,s\nc,2,1,1,u,q,s\n");
  auto fifo = MakeTestFifo();
  auto r = Simulate(t, *fifo, Config("1x1xT4"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(JctS(*r, "a"), 10);
  EXPECT_EQ(JctS(*r, "b"), 15);
  EXPECT_EQ(JctS(*r, "c"), 14);
  const SimMetrics& m = r->metrics;
  EXPECT_EQ(m.policy, "test-fifo");
  EXPECT_EQ(m.jobs, 3);
  EXPECT_EQ(m.completed, 3);
  EXPECT_DOUBLE_EQ(m.avg_jct_s, 13.0);
  EXPECT_DOUBLE_EQ(m.avg_queue_s, 23.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.p50_queue_s, 10.0);  // queueing: 0, 10, 13
  EXPECT_DOUBLE_EQ(m.p99_queue_s, 13.0);
  EXPECT_DOUBLE_EQ(m.max_queue_s, 13.0);
  EXPECT_DOUBLE_EQ(m.makespan_s, 16.0);
  EXPECT_DOUBLE_EQ(m.utilisation, 1.0);
  EXPECT_EQ(m.busy_gpu_s, 16);
  EXPECT_EQ(m.preemptions, 0);
}

TEST(SimulatorTest, UtilisationAndGangs) {
  // 2 nodes x 4 GPUs. g: 8 GPUs = 2 x 4, 0-10. h: 6 GPUs = 2 x 3, 10-20. big: 12 GPUs = 3 nodes: rejected.
  Trace t = MustParse("g,0,8,10,u,q,s\nh,0,6,10,u,q,s\nbig,0,12,10,u,q,s\n");
  auto fifo = MakeTestFifo();
  auto r = Simulate(t, *fifo, Config("2x4xA100-80GB"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(JctS(*r, "g"), 10);
  EXPECT_EQ(JctS(*r, "h"), 20);
  EXPECT_TRUE(Find(*r, "big").rejected);
  EXPECT_NE(Find(*r, "big").reject_reason.find("needs 3 nodes x 4 GPUs"), std::string::npos);
  const SimMetrics& m = r->metrics;
  EXPECT_EQ(m.completed, 2);
  EXPECT_EQ(m.rejected, 1);
  EXPECT_EQ(m.busy_gpu_s, 8 * 10 + 6 * 10);
  EXPECT_DOUBLE_EQ(m.makespan_s, 20.0);
  EXPECT_DOUBLE_EQ(m.utilisation, 140.0 / (8.0 * 20.0));
  // The scheduler saw h as a gang of 2 nodes x 3 GPUs.
  bool saw = false;
  for (const auto& q : fifo->seen) {
    for (const auto& j : q) {
      if (j.job_id == "h") {
        EXPECT_EQ(j.nodes, 2);
        EXPECT_EQ(j.gpus, 3);
        saw = true;
      }
    }
  }
  EXPECT_TRUE(saw);
}

TEST(SimulatorTest, IdleGapCountsInMakespan) {
  // One job of two GPUs on a 1x4 cluster, then another after an idle gap.
  Trace t = MustParse("a,100,2,10,u,q,s\nb,200,4,10,u,q,s\n");
  auto fifo = MakeTestFifo();
  auto r = Simulate(t, *fifo, Config("1x4xT4"));
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->metrics.makespan_s, 110.0);  // 100 .. 210
  EXPECT_DOUBLE_EQ(r->metrics.utilisation, 60.0 / (4.0 * 110.0));
}

TEST(SimulatorTest, SjfUsesOnlyLearnedRuntimes) {
  // One GPU. Estimates come from finished jobs of the same user+queue, never from the job itself.
  // t=0: a (q1, 10) and b (q2, 20), both unknown -> a first (0-10).
  // t=10: q1 is known (10); queue b (unknown), c (q2, unknown), d (q1, est 10) -> d (10-20), then b, c.
  Trace t = MustParse("a,0,1,10,u,q1,s\nb,0,1,20,u,q2,s\nc,5,1,20,u,q2,s\nd,6,1,10,u,q1,s\n");
  auto sjf = MakeTestSjf();
  auto r = Simulate(t, *sjf, Config("1x1xT4"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(JctS(*r, "a"), 10);
  EXPECT_EQ(JctS(*r, "d"), 14);
  EXPECT_EQ(JctS(*r, "b"), 40);
  EXPECT_EQ(JctS(*r, "c"), 55);
  EXPECT_DOUBLE_EQ(r->metrics.avg_jct_s, (10 + 14 + 40 + 55) / 4.0);
  // First call: nothing known.
  ASSERT_FALSE(sjf->seen.empty());
  for (const auto& j : sjf->seen.front()) EXPECT_EQ(j.predicted_runtime_s, 0);
  // Call at t=10: d is predicted from a.
  ASSERT_GE(sjf->seen.size(), 2u);
  for (const auto& j : sjf->seen[1]) {
    EXPECT_EQ(j.predicted_runtime_s, j.project == "q1" ? 10 : 0) << j.job_id;
  }

  auto fifo = MakeTestFifo();
  auto f = Simulate(t, *fifo, Config("1x1xT4"));
  ASSERT_TRUE(f.ok());
  EXPECT_DOUBLE_EQ(f->metrics.avg_jct_s, (10 + 30 + 45 + 54) / 4.0);
}

// Forwards to another scheduler and records what it was given.
class Recorder : public sched::Scheduler {
 public:
  explicit Recorder(sched::Scheduler& inner) : inner_(inner) {}
  sched::Decisions Schedule(const sched::ClusterSnapshot& c, std::span<const sched::JobRequest> q) override {
    snapshots.push_back(c);
    queues.emplace_back(q.begin(), q.end());
    return inner_.Schedule(c, q);
  }
  std::string Name() const override { return inner_.Name(); }
  std::vector<sched::ClusterSnapshot> snapshots;
  std::vector<std::vector<sched::JobRequest>> queues;

 private:
  sched::Scheduler& inner_;
};

TEST(SimulatorTest, LasPreemptsWithCheckpointOverhead) {
  // One GPU. a (100 s) runs from 0; b (5 s) arrives at 10 with less attained service, so a is preempted,
  // b runs 10-15, and a restarts at 15 with 90 s left + 7 s checkpoint overhead: ends at 112.
  Trace t = MustParse("a,0,1,100,u,q,s\nb,10,1,5,u,q,s\n");
  testing::TestLas las;
  Recorder rec(las);
  auto r = Simulate(t, rec, Config("1x1xT4"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(JctS(*r, "a"), 112);
  EXPECT_EQ(JctS(*r, "b"), 5);
  EXPECT_EQ(Find(*r, "a").preemptions, 1);
  EXPECT_EQ(Find(*r, "a").first_start_ms, 0);
  const SimMetrics& m = r->metrics;
  EXPECT_EQ(m.preemptions, 1);
  EXPECT_EQ(m.busy_gpu_s, 10 + 5 + 97);
  EXPECT_DOUBLE_EQ(m.avg_queue_s, 0.0);          // both started on arrival
  EXPECT_DOUBLE_EQ(m.avg_wait_s, (12 + 0) / 2.0);  // a: 112 - 100
  EXPECT_DOUBLE_EQ(m.utilisation, 1.0);
  // At t=10 the running job a had attained 10 GPU-s; after preemption it is queued with that service.
  ASSERT_GE(rec.snapshots.size(), 3u);
  const auto& s10 = rec.snapshots[1];
  ASSERT_EQ(s10.running.size(), 1u);
  EXPECT_EQ(s10.running[0].job_id, "a");
  EXPECT_EQ(s10.running[0].attained_gpu_ms, 10'000);
  EXPECT_EQ(s10.now - SimConfig{}.epoch_ms, 10'000);
  size_t at15 = 0;
  while (at15 < rec.snapshots.size() && rec.snapshots[at15].now != SimConfig{}.epoch_ms + 15'000) ++at15;
  ASSERT_LT(at15, rec.snapshots.size());
  const auto& q15 = rec.queues[at15];
  ASSERT_EQ(q15.size(), 1u);
  EXPECT_EQ(q15[0].job_id, "a");
  EXPECT_EQ(q15[0].attained_gpu_ms, 10'000);
  EXPECT_TRUE(q15[0].preemptible);
  EXPECT_EQ(rec.snapshots[at15].running.size(), 0u);
}

TEST(SimulatorTest, CheckpointOverheadDefaults) {
  CheckpointOverhead o;
  EXPECT_EQ(o.For(1), 7);
  EXPECT_EQ(o.For(2), 30);
  EXPECT_EQ(o.For(8), 30);
  EXPECT_EQ(o.For(9), 60);
  EXPECT_EQ(o.For(32), 60);
}

TEST(SimulatorTest, SkipWhenFullGivesSameResultWithFewerCalls) {
  std::string rows;
  for (int i = 0; i < 40; ++i) {
    rows += "j" + std::to_string(i) + "," + std::to_string(i) + "," + std::to_string(1 + i % 3) + "," +
            std::to_string(30 + (i * 7) % 50) + ",u,q,s\n";
  }
  Trace t = MustParse(rows);
  auto a = MakeTestFifo();
  auto b = MakeTestFifo();
  SimConfig c1 = Config("1x4xT4");
  SimConfig c2 = c1;
  c2.skip_when_full = true;
  auto r1 = Simulate(t, *a, c1);
  auto r2 = Simulate(t, *b, c2);
  ASSERT_TRUE(r1.ok());
  ASSERT_TRUE(r2.ok());
  EXPECT_DOUBLE_EQ(r1->metrics.avg_jct_s, r2->metrics.avg_jct_s);
  EXPECT_DOUBLE_EQ(r1->metrics.max_queue_s, r2->metrics.max_queue_s);
  EXPECT_LT(r2->metrics.schedule_calls, r1->metrics.schedule_calls);
  EXPECT_TRUE(PolicyNeverPreempts("fifo"));
  EXPECT_FALSE(PolicyNeverPreempts("las"));
}

TEST(SimulatorTest, RescheduleTickCallsSchedulerBetweenEvents) {
  Trace t = MustParse("a,0,1,100,u,q,s\nb,1,1,5,u,q,s\n");
  auto fifo = MakeTestFifo();
  SimConfig c = Config("1x1xT4");
  c.reschedule_interval_s = 10;
  auto r = Simulate(t, *fifo, c);
  ASSERT_TRUE(r.ok());
  // Calls at 0, 1, then ticks at 11, 21, ..., 91, then 100.
  EXPECT_EQ(r->metrics.schedule_calls, 2 + 9 + 1);
  EXPECT_EQ(JctS(*r, "b"), 104);
}

TEST(SimulatorTest, InvalidBindsAreErrors) {
  Trace t = MustParse("a,0,1,10,u,q,s\nb,0,1,10,u,q,s\n");
  {
    sched::Decisions d;
    d.binds.push_back({"a", kMilliPerGpu, 0, {{"nope", {}, {0}}}});
    testing::ScriptedScheduler s(d);
    auto r = Simulate(t, s, Config("1x1xT4"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
    EXPECT_NE(r.status().message().find("unknown node 'nope'"), std::string::npos) << r.status().message();
  }
  {
    sched::Decisions d;
    d.binds.push_back({"a", kMilliPerGpu, 0, {{"node-000", {}, {0}}}});
    d.binds.push_back({"b", kMilliPerGpu, 0, {{"node-000", {}, {0}}}});
    testing::ScriptedScheduler s(d);
    auto r = Simulate(t, s, Config("1x1xT4"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("GPU 'SIM-000-0' on node 'node-000' has 0 GPU free"), std::string::npos)
        << r.status().message();
  }
  {
    sched::Decisions d;
    d.binds.push_back({"zzz", kMilliPerGpu, 0, {{"node-000", {}, {0}}}});
    testing::ScriptedScheduler s(d);
    auto r = Simulate(t, s, Config("1x1xT4"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("'zzz': no such job"), std::string::npos) << r.status().message();
  }
  {
    sched::Decisions d;
    d.preemptions.push_back({"a", "x"});
    testing::ScriptedScheduler s(d);
    auto r = Simulate(t, s, Config("1x1xT4"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("preempted job 'a', which is not running"), std::string::npos);
  }
}

TEST(SimulatorTest, StallIsReported) {
  Trace t = MustParse("a,0,1,10,u,q,s\n");
  testing::ScriptedScheduler s({});
  auto r = Simulate(t, s, Config("1x1xT4"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("simulation stalled at t=0 s: 1 jobs queued"), std::string::npos)
      << r.status().message();
}

TEST(SimulatorTest, NeverFitsPendingRejectsJob) {
  Trace t = MustParse("a,0,1,10,u,q,s\n");
  sched::Decisions d;
  d.pending.push_back({"a", "needs A100", true});
  testing::ScriptedScheduler s(d);
  auto r = Simulate(t, s, Config("1x1xT4"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->metrics.rejected, 1);
  EXPECT_EQ(r->metrics.completed, 0);
  EXPECT_EQ(Find(*r, "a").reject_reason, "needs A100");
}

TEST(SimulatorTest, DeterministicOutput) {
  std::string rows;
  for (int i = 0; i < 200; ++i) {
    rows += std::to_string(i) + "," + std::to_string((i * 13) % 300) + "," + std::to_string(1 << (i % 4)) + "," +
            std::to_string(10 + (i * 37) % 400) + ",u" + std::to_string(i % 3) + ",q" + std::to_string(i % 2) +
            ",s\n";
  }
  Trace t = MustParse(rows);
  SimulateOptions opts;
  opts.timing = false;
  std::string outs[2][3];
  for (int run = 0; run < 2; ++run) {
    testing::TestLas las;
    auto sjf = MakeTestSjf();
    auto a = Simulate(t, las, Config("2x4xT4"));
    auto b = Simulate(t, *sjf, Config("2x4xT4"));
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    std::vector<PolicyRun> runs(2);
    runs[0].metrics = a->metrics;
    runs[1].metrics = b->metrics;
    int k = 0;
    for (const char* f : {"table", "json", "csv"}) outs[run][k++] = FormatResults(runs, Config("2x4xT4").cluster, opts, t, f);
  }
  for (int k = 0; k < 3; ++k) EXPECT_EQ(outs[0][k], outs[1][k]);
  EXPECT_NE(outs[0][0].find("test-las"), std::string::npos);
  EXPECT_EQ(outs[0][0].find("wall"), std::string::npos);
  EXPECT_EQ(outs[0][2].substr(0, outs[0][2].find('\n')),
            "policy,placement,cluster,jobs,completed,rejected,avg_jct_s,avg_queue_s,avg_wait_s,p50_queue_s,p99_queue_s,"
            "max_queue_s,makespan_s,utilisation,busy_gpu_s,preemptions,schedule_calls");
}

TEST(SimulatorTest, Percentiles) {
  std::vector<int64_t> v;
  EXPECT_EQ(PercentileOfSorted(v, 50), 0);
  for (int i = 1; i <= 100; ++i) v.push_back(i);
  EXPECT_EQ(PercentileOfSorted(v, 50), 50);
  EXPECT_EQ(PercentileOfSorted(v, 99), 99);
  EXPECT_EQ(PercentileOfSorted(v, 100), 100);
  EXPECT_EQ(PercentileOfSorted(v, 0), 1);
  std::vector<int64_t> w = {5, 7, 9};
  EXPECT_EQ(PercentileOfSorted(w, 50), 7);
  EXPECT_EQ(PercentileOfSorted(w, 99), 9);
}

}  // namespace
}  // namespace fastgpu::sim
