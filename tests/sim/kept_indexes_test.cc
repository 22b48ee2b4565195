// The simulator keeps its queue (sched::JobQueue) and its cluster index (sched::ClusterState)
// between scheduler calls. Replays must come out exactly as when every call schedules the plain
// span of queued jobs on the plain snapshot.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "sched/scheduler.h"
#include "sim/simulator.h"

namespace fastgpu::sim {
namespace {

// Forwards only the span form: the engine's JobQueue and ClusterState reach the policy as a span
// of the queued jobs (insertion order) and the snapshot.
class SpanOnly final : public sched::Scheduler {
 public:
  explicit SpanOnly(std::unique_ptr<sched::Scheduler> s) : s_(std::move(s)) {}
  sched::Decisions Schedule(const sched::ClusterSnapshot& c, std::span<const sched::JobRequest> q) override {
    return s_->Schedule(c, q);
  }
  std::string Name() const override { return s_->Name(); }

 private:
  std::unique_ptr<sched::Scheduler> s_;
};

// A few hundred jobs on 3 nodes (a deep queue, and preemptions under las): ties on submit time, 1-16 GPUs (gangs on 8-GPU nodes), short and long runs,
// a few queues so that runtime estimates differ.
Trace SyntheticTrace(uint64_t seed, int jobs) {
  uint64_t s = seed;
  auto next = [&s]() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  static constexpr int kGpus[] = {1, 1, 1, 1, 2, 2, 4, 8, 16};
  std::string csv = "job_id,submit_time_s,num_gpus,duration_s,user,queue,status\n";
  int64_t t = 0;
  for (int i = 0; i < jobs; ++i) {
    if (next() % 3 != 0) t += static_cast<int64_t>(next() % 400);
    const int gpus = kGpus[next() % 9];
    const int64_t duration = next() % 4 == 0 ? 5000 + static_cast<int64_t>(next() % 40000)
                                             : 10 + static_cast<int64_t>(next() % 1500);
    csv += std::to_string(i) + "," + std::to_string(t) + "," + std::to_string(gpus) + "," + std::to_string(duration) +
           ",u" + std::to_string(next() % 2) + ",vc" + std::to_string(next() % 4) + ",Pass\n";
  }
  auto trace = ParseTrace(csv, "synthetic.csv");
  EXPECT_TRUE(trace.ok()) << trace.status().ToString();
  return trace.ok() ? std::move(trace).value() : Trace{};
}

std::string Outcomes(const SimResult& r) {
  std::string out;
  const SimMetrics& m = r.metrics;
  out += "calls " + std::to_string(m.schedule_calls) + " preemptions " + std::to_string(m.preemptions) + " busy " +
         std::to_string(m.busy_gpu_s) + " rejected " + std::to_string(m.rejected) + "\n";
  for (const JobOutcome& j : r.jobs) {
    out += j.job_id + " " + std::to_string(j.first_start_ms) + " " + std::to_string(j.end_ms) + " " +
           std::to_string(j.preemptions) + (j.rejected ? " rejected: " + j.reject_reason : "") + "\n";
  }
  return out;
}

TEST(KeptIndexesTest, ReplaysMatchSpanScheduling) {
  for (uint64_t seed : {1, 3}) {
    const Trace trace = SyntheticTrace(seed, 300);
    for (const char* policy : sched::kPolicyNames) {
      for (int64_t tick : {int64_t{0}, int64_t{300}}) {
        for (const char* placement : {"best-fit", "spread"}) {
          SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy + "/" + placement + " tick " +
                       std::to_string(tick));
          sched::SchedulerOptions o;
          o.policy = policy;
          o.placement = placement;
          o.max_pending_reasons = seed == 3 ? -1 : 1;
          SimConfig cfg;
          cfg.cluster = *ParseClusterSpec("3x8xV100-32GB");
          cfg.skip_when_full = PolicyNeverPreempts(policy);
          cfg.reschedule_interval_s = tick;
          cfg.check_cluster_state = true;  // the kept index equals one built from the snapshot, every call
          auto kept = std::move(sched::MakeScheduler(o)).value();
          SpanOnly plain(std::move(sched::MakeScheduler(o)).value());
          auto a = Simulate(trace, *kept, cfg);
          ASSERT_TRUE(a.ok()) << a.status().ToString();
          cfg.check_cluster_state = false;
          auto b = Simulate(trace, plain, cfg);
          ASSERT_TRUE(b.ok()) << b.status().ToString();
          EXPECT_GT(a->metrics.completed, 0);
          EXPECT_EQ(Outcomes(*a), Outcomes(*b));
          EXPECT_EQ(a->metrics.avg_jct_s, b->metrics.avg_jct_s);
          EXPECT_EQ(a->metrics.utilisation, b->metrics.utilisation);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fastgpu::sim
