#include "bench/scheduler_bench.h"

#include <cstdio>
#include <vector>

#include "sched/scheduler.h"

namespace fastgpu::bench {
namespace {

class Rng {
 public:
  explicit Rng(uint64_t s) : s_(s) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int Below(int n) { return static_cast<int>(Next() % static_cast<uint64_t>(n)); }

 private:
  uint64_t s_;
};

constexpr UnixMillis kBenchNow = 1'700'000'000'000;

sched::ClusterSnapshot MakeCluster(const SchedulerBenchOptions& o) {
  sched::ClusterSnapshot s;
  s.now = kBenchNow;
  s.nodes.reserve(static_cast<size_t>(o.nodes));
  for (int n = 0; n < o.nodes; ++n) {
    sched::NodeView node;
    node.name = "node-" + std::to_string(n);
    const char* type = n % 2 == 0 ? "A100-80GB" : "H100-80GB";
    for (int g = 0; g < o.gpus_per_node; ++g) {
      sched::GpuView gpu;
      gpu.uuid = "GPU-" + std::to_string(n) + "-" + std::to_string(g);
      gpu.index = g;
      gpu.type = type;
      gpu.memory_mib = 81920;
      gpu.free_memory_mib = 81920;
      gpu.nvlink_group = g < o.gpus_per_node / 2 ? 0 : 1;
      node.gpus.push_back(std::move(gpu));
    }
    s.nodes.push_back(std::move(node));
  }
  return s;
}

// Mixed queue: 30% fractions, whole jobs of 1/2/4/8 GPUs, 5% two-node gangs, 30% typed.
std::vector<sched::JobRequest> MakeQueue(const SchedulerBenchOptions& o) {
  Rng rng(o.seed);
  std::vector<sched::JobRequest> q(static_cast<size_t>(o.pending));
  static constexpr int kSizes[] = {1, 1, 1, 2, 2, 4, 8};
  for (int i = 0; i < o.pending; ++i) {
    sched::JobRequest& j = q[static_cast<size_t>(i)];
    j.job_id = "job-" + std::to_string(i);
    j.name = "train-" + std::to_string(rng.Below(50));
    j.project = "project-" + std::to_string(rng.Below(20));
    j.user = "user-" + std::to_string(rng.Below(100));
    j.priority = rng.Below(101);
    j.submitted_at = kBenchNow - rng.Below(86'400'000);
    const int kind = rng.Below(100);
    if (kind < 30) {
      j.gpus = 1;
      j.milli_per_gpu = rng.Below(2) == 0 ? 250 : 500;
      j.memory_mib = 4096 * (1 + rng.Below(5));
    } else {
      j.gpus = std::min(kSizes[rng.Below(7)], o.gpus_per_node);
      if (kind < 35 && o.nodes > 1) j.nodes = 2;
    }
    if (rng.Below(100) < 30) j.gpu_type = rng.Below(2) == 0 ? "A100-80GB" : "H100-80GB";
    j.runtime_limit_s = 600 + rng.Below(86'400);
    j.predicted_runtime_s = rng.Below(2) == 0 ? 300 + rng.Below(36'000) : 0;
    j.preemptible = rng.Below(2) == 0;
  }
  return q;
}

}  // namespace

Result<SchedulerBenchResult> RunSchedulerBench(const SchedulerBenchOptions& o, const Clock& clock) {
  if (o.nodes < 1 || o.gpus_per_node < 1 || o.pending < 0 || o.rounds < 1) {
    return InvalidArgument("bench needs nodes >= 1, gpus per node >= 1, pending >= 0 and rounds >= 1");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<sched::Scheduler> scheduler, sched::MakeScheduler(o.policy, o.placement));
  const sched::ClusterSnapshot cluster = MakeCluster(o);
  const std::vector<sched::JobRequest> queue = MakeQueue(o);
  SchedulerBenchResult r;
  r.scheduler = scheduler->Name();
  r.gpus = static_cast<int64_t>(o.nodes) * o.gpus_per_node;
  int64_t nanos = 0;
  for (int round = 0; round < o.rounds; ++round) {
    const int64_t start = clock.MonotonicNanos();
    sched::Decisions d = scheduler->Schedule(cluster, queue);
    nanos += clock.MonotonicNanos() - start;
    r.binds += static_cast<int64_t>(d.binds.size());
    r.pending += static_cast<int64_t>(d.pending.size());
    r.preemptions += static_cast<int64_t>(d.preemptions.size());
    r.allocated_milli = 0;
    for (const sched::Bind& b : d.binds) {
      for (const sched::NodeAssignment& a : b.nodes) r.allocated_milli += b.milli_per_gpu * static_cast<int64_t>(a.gpu_uuids.size());
    }
  }
  r.rounds = o.rounds;
  r.decisions = r.binds + r.pending;
  r.seconds = static_cast<double>(nanos) / 1e9;
  if (r.seconds > 0) {
    r.decisions_per_s = static_cast<double>(r.decisions) / r.seconds;
    r.binds_per_s = static_cast<double>(r.binds) / r.seconds;
  }
  return r;
}

std::string FormatSchedulerBench(const SchedulerBenchResult& r) {
  char buf[768];
  std::snprintf(buf, sizeof(buf),
                "scheduler: %s\nrounds: %d\ndecisions: %lld\nseconds: %.4f\ndecisions_per_s: %.0f\n"
                "binds: %lld\nbinds_per_s: %.0f\npending: %lld\npreemptions: %lld\ngpus: %lld\n"
                "allocated_gpus: %.3f\n",
                r.scheduler.c_str(), r.rounds, static_cast<long long>(r.decisions), r.seconds, r.decisions_per_s,
                static_cast<long long>(r.binds), r.binds_per_s, static_cast<long long>(r.pending),
                static_cast<long long>(r.preemptions), static_cast<long long>(r.gpus),
                static_cast<double>(r.allocated_milli) / 1000.0);
  return buf;
}

}  // namespace fastgpu::bench
