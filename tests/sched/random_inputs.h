// Seeded random clusters and queues for property tests, and a text form of decisions to compare.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "builders.h"

namespace fastgpu::sched::testing {

class Rng {
 public:
  explicit Rng(uint64_t s) : s_(s) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  int Int(int lo, int hi) { return lo + static_cast<int>(Next() % static_cast<uint64_t>(hi - lo + 1)); }
  bool Chance(int percent) { return Int(0, 99) < percent; }

 private:
  uint64_t s_;
};

inline const char* kTypes[] = {"A100-80GB", "H100-80GB", "A100-40GB"};

inline ClusterSnapshot RandomCluster(Rng& rng) {
  testing::ClusterBuilder c;
  const int nodes = rng.Int(1, 12);
  for (int n = 0; n < nodes; ++n) {
    const int t = rng.Int(0, 2);
    const std::string name = "n" + std::to_string(n);
    c.Node(name, rng.Int(1, 8), kTypes[t], t == 2 ? 40960 : testing::k80G, rng.Chance(50));
    if (rng.Chance(10)) c.node(name).healthy = false;
    if (rng.Chance(10)) c.node(name).draining = true;
    if (rng.Chance(10)) c.node(name).gpus[0].healthy = false;
  }
  // Running jobs: whole GPUs and fractions.
  const ClusterSnapshot& s = c.snap();
  int id = 0;
  for (int n = 0; n < nodes; ++n) {
    const NodeView& nv = s.nodes[static_cast<size_t>(n)];
    for (int g = 0; g < static_cast<int>(nv.gpus.size()); ++g) {
      if (!rng.Chance(40)) continue;
      const std::string rid = "r" + std::to_string(id++);
      const bool pre = rng.Chance(60);
      const UnixMillis started = kNow - rng.Int(0, 120) * 60'000;
      if (rng.Chance(30)) {
        c.Run(rid, nv.name, {g}, rng.Int(0, 100), pre, started, 250 * rng.Int(1, 3), 4096 * rng.Int(0, 4),
              "proj" + std::to_string(rng.Int(0, 3)));
      } else {
        c.Run(rid, nv.name, {g}, rng.Int(0, 100), pre, started, kMilliPerGpu, 0, "proj" + std::to_string(rng.Int(0, 3)));
      }
      c.last_running().runtime_limit_s = rng.Chance(50) ? rng.Int(60, 7200) : 0;
      c.last_running().attained_gpu_ms = int64_t{rng.Int(0, 40)} * 3'600'000;
    }
  }
  return c.Build();
}

inline std::vector<JobRequest> RandomQueue(Rng& rng) {
  std::vector<JobRequest> q;
  const int n = rng.Int(0, 80);
  for (int i = 0; i < n; ++i) {
    testing::JobBuilder b("q" + std::to_string(i));
    b.Priority(rng.Int(0, 100)).Submitted(kNow - rng.Int(0, 1000) * 60'000).Project("proj" + std::to_string(rng.Int(0, 3)));
    const int kind = rng.Int(0, 9);
    if (kind < 3) {
      b.Fraction(125 * rng.Int(1, 7), 2048 * rng.Int(0, 10));
    } else {
      b.Gpus(1 << rng.Int(0, 3));
      if (rng.Chance(15)) b.Nodes(rng.Int(2, 3));
      if (rng.Chance(10)) b.Memory(rng.Chance(50) ? 40960 : 60000);
    }
    if (rng.Chance(30)) b.Type(kTypes[rng.Int(0, 2)]);
    if (rng.Chance(5)) b.Type("B200");
    if (rng.Chance(5)) b.StartAfter(kNow + 60'000);
    if (rng.Chance(50)) b.Limit(rng.Int(60, 7200));
    if (rng.Chance(50)) b.Predicted(rng.Int(60, 7200));
    if (rng.Chance(5)) b.FinishBefore(kNow + 600'000);
    b.Attained(int64_t{rng.Int(0, 20)} * 3'600'000);
    q.push_back(b);
  }
  return q;
}

inline std::string Serialize(const Decisions& d) {
  std::ostringstream o;
  for (const Bind& b : d.binds) {
    o << "B " << b.job_id << " " << b.milli_per_gpu << " " << b.memory_mib_per_gpu;
    for (const NodeAssignment& a : b.nodes) {
      o << " [" << a.node;
      for (const std::string& u : a.gpu_uuids) o << " " << u;
      o << "]";
    }
    o << "\n";
  }
  for (const Preempt& p : d.preemptions) o << "X " << p.job_id << " " << p.reason << "\n";
  for (const Pending& p : d.pending) o << "P " << p.job_id << " " << p.never_fits << " " << p.reason << "\n";
  return o.str();
}

}  // namespace fastgpu::sched::testing
