// Property tests over random clusters and queues (seeded, so failures reproduce).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "sched/framework/queue_sort.h"
#include "builders.h"

namespace fastgpu::sched {
namespace {

using testing::kNow;

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

const char* kTypes[] = {"A100-80GB", "H100-80GB", "A100-40GB"};

ClusterSnapshot RandomCluster(Rng& rng) {
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

std::vector<JobRequest> RandomQueue(Rng& rng) {
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

std::string Serialize(const Decisions& d) {
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

struct GpuRef {
  const NodeView* node;
  const GpuView* gpu;
};

void CheckInvariants(const std::string& policy, const ClusterSnapshot& s, const std::vector<JobRequest>& q,
                     const Decisions& d) {
  SCOPED_TRACE(policy);
  std::map<std::string, const JobRequest*> jobs;
  for (const JobRequest& j : q) jobs[j.job_id] = &j;
  // Exactly one verdict per queued job.
  std::map<std::string, int> verdicts;
  for (const Bind& b : d.binds) ++verdicts[b.job_id];
  for (const Pending& p : d.pending) ++verdicts[p.job_id];
  ASSERT_EQ(verdicts.size(), q.size());
  for (const auto& [id, n] : verdicts) {
    EXPECT_EQ(n, 1) << id;
    EXPECT_TRUE(jobs.count(id)) << id;
  }
  std::map<std::string, GpuRef> gpus;
  for (const NodeView& n : s.nodes) {
    for (const GpuView& g : n.gpus) gpus[g.uuid] = {&n, &g};
  }
  std::map<std::string, std::pair<MilliGpu, MiB>> used;  // uuid -> taken by binds
  for (const Bind& b : d.binds) {
    const JobRequest& j = *jobs.at(b.job_id);
    EXPECT_LE(j.start_after, s.now);
    // Gang: all members, distinct nodes, right count each.
    ASSERT_EQ(static_cast<int>(b.nodes.size()), j.nodes) << b.job_id << "\n" << Serialize(d);
    std::set<std::string> nodes;
    for (const NodeAssignment& a : b.nodes) {
      nodes.insert(a.node);
      ASSERT_EQ(static_cast<int>(a.gpu_uuids.size()), j.gpus) << b.job_id << "\n" << Serialize(d);
      for (const std::string& u : a.gpu_uuids) {
        const GpuRef& ref = gpus.at(u);
        EXPECT_EQ(ref.node->name, a.node);
        EXPECT_TRUE(ref.node->healthy && !ref.node->draining && ref.gpu->healthy) << b.job_id << " on " << u;
        if (!j.gpu_type.empty()) {
          EXPECT_EQ(ref.gpu->type, j.gpu_type);
        }
        EXPECT_GE(ref.gpu->memory_mib, j.memory_mib);
        if (j.milli_per_gpu == kMilliPerGpu) {
          EXPECT_EQ(ref.gpu->free_milli, kMilliPerGpu) << "whole GPU job on a used GPU";
          used[u].first += kMilliPerGpu;
          used[u].second += ref.gpu->memory_mib;
        } else {
          used[u].first += j.milli_per_gpu;
          used[u].second += j.memory_mib;
        }
      }
    }
    EXPECT_EQ(static_cast<int>(nodes.size()), j.nodes) << "gang members share a node: " << b.job_id;
  }
  for (const auto& [u, take] : used) {
    const GpuView& g = *gpus.at(u).gpu;
    const MiB free_mem = g.free_milli == kMilliPerGpu ? g.memory_mib : g.free_memory_mib;
    EXPECT_LE(take.first, g.free_milli) << "milli-GPU over-committed on " << u;
    EXPECT_LE(take.second, free_mem) << "memory over-committed on " << u;
  }
  // Victims: preemptible, not stopping, past min runtime, lower priority (priority policy).
  SchedulerOptions defaults;
  std::set<std::string> victims;
  for (const Preempt& p : d.preemptions) {
    EXPECT_TRUE(victims.insert(p.job_id).second) << "preempted twice: " << p.job_id;
    const RunningJob* r = nullptr;
    for (const RunningJob& x : s.running) {
      if (x.job_id == p.job_id) r = &x;
    }
    ASSERT_NE(r, nullptr);
    EXPECT_TRUE(r->preemptible);
    EXPECT_FALSE(r->stopping);
    EXPECT_GE(s.now - std::max(r->started_at, r->last_preempted_at), defaults.min_runtime_ms);
    if (policy == "priority") {
      const std::string by = p.reason.substr(std::string("preempted by ").size());
      const JobRequest& pre = *jobs.at(by.substr(0, by.find(' ')));
      EXPECT_LT(r->priority, pre.priority);
    }
  }
  // Strict FIFO: after the first job that waits for capacity, nothing later starts.
  if (policy == "fifo") {
    std::vector<uint32_t> order = FifoOrder(q);
    bool blocked = false;
    for (uint32_t i : order) {
      const JobRequest& j = q[i];
      const Bind* b = testing::FindBind(d, j.job_id);
      if (blocked) {
        EXPECT_EQ(b, nullptr) << j.job_id << " started after the head blocked";
      } else if (b == nullptr) {
        const Pending* p = testing::FindPending(d, j.job_id);
        if (!p->never_fits && p->reason.rfind("waiting: needs", 0) == 0) blocked = true;
      }
    }
  }
}

TEST(Property, InvariantsHoldForEveryPolicyAndPlacement) {
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    Rng rng(seed);
    const ClusterSnapshot s = RandomCluster(rng);
    const std::vector<JobRequest> q = RandomQueue(rng);
    for (const char* policy : kPolicyNames) {
      for (const char* placement : kPlacementNames) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy + "/" + placement);
        auto a = testing::Make(policy, placement)->Schedule(s, q);
        auto b = testing::Make(policy, placement)->Schedule(s, q);
        EXPECT_EQ(Serialize(a), Serialize(b)) << "not deterministic";
        CheckInvariants(policy, s, q, a);
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
}

TEST(Property, SameSchedulerInstanceIsStateless) {
  Rng rng(7);
  const ClusterSnapshot s = RandomCluster(rng);
  const std::vector<JobRequest> q = RandomQueue(rng);
  for (const char* policy : kPolicyNames) {
    auto sched = testing::Make(policy);
    EXPECT_EQ(Serialize(sched->Schedule(s, q)), Serialize(sched->Schedule(s, q))) << policy;
  }
}

// With aging, a low-priority job cannot be starved by a stream of high-priority ones.
TEST(Property, BoundedWaitingUnderAging) {
  SchedulerOptions o;  // +1 point per 10 minutes
  auto sched = std::move(MakeScheduler(o)).value();
  const int64_t round_ms = o.aging_ms_per_point;
  JobRequest victim = testing::JobBuilder("starving").Priority(0).Submitted(kNow);
  std::vector<JobRequest> backlog;
  int started_round = -1;
  for (int round = 0; round < 300 && started_round < 0; ++round) {
    testing::ClusterBuilder c;
    c.Node("a", 1);
    c.Now(kNow + round * round_ms);
    backlog.push_back(testing::JobBuilder("hi" + std::to_string(round)).Priority(100).Submitted(kNow + round * round_ms));
    std::vector<JobRequest> q = backlog;
    q.push_back(victim);
    Decisions d = sched->Schedule(c.Build(), q);
    ASSERT_EQ(d.binds.size(), 1u);
    if (d.binds[0].job_id == "starving") {
      started_round = round;
    } else {
      std::erase_if(backlog, [&](const JobRequest& j) { return j.job_id == d.binds[0].job_id; });
    }
  }
  ASSERT_GE(started_round, 0) << "starved";
  EXPECT_LE(started_round, 101);
}

}  // namespace
}  // namespace fastgpu::sched

namespace fastgpu::sched {
namespace {

std::string BindsAndPreemptions(const Decisions& d) {
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
  for (const Preempt& p : d.preemptions) o << "P " << p.job_id << " " << p.reason << "\n";
  return o.str();
}

// A limit on waiting reasons never changes binds or preemptions; reported verdicts are the same
// as without a limit; every job is bound, reported or counted as unreported.
TEST(Property, PendingReasonLimitKeepsDecisions) {
  for (uint64_t seed = 1; seed <= 120; ++seed) {
    Rng rng(seed);
    const ClusterSnapshot s = RandomCluster(rng);
    const std::vector<JobRequest> q = RandomQueue(rng);
    for (const char* policy : kPolicyNames) {
      for (const char* placement : kPlacementNames) {
        const Decisions full = testing::Make(policy, placement)->Schedule(s, q);
        EXPECT_EQ(full.unreported, 0);
        std::map<std::string, const Pending*> full_pending;
        for (const Pending& p : full.pending) full_pending[p.job_id] = &p;
        for (int64_t limit : {0, 1, 5}) {
          SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy + "/" + placement + " limit " +
                       std::to_string(limit));
          SchedulerOptions o;
          o.policy = policy;
          o.placement = placement;
          o.max_pending_reasons = limit;
          const Decisions lim = (*MakeScheduler(o))->Schedule(s, q);
          EXPECT_EQ(BindsAndPreemptions(full), BindsAndPreemptions(lim));
          int64_t waiting = 0;
          for (const Pending& p : lim.pending) {
            if (!p.never_fits) ++waiting;
            auto it = full_pending.find(p.job_id);
            ASSERT_NE(it, full_pending.end()) << p.job_id;
            EXPECT_EQ(it->second->reason, p.reason);
            EXPECT_EQ(it->second->never_fits, p.never_fits);
          }
          EXPECT_LE(waiting, limit);
          EXPECT_EQ(static_cast<int64_t>(lim.binds.size() + lim.pending.size()) + lim.unreported,
                    static_cast<int64_t>(q.size()));
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
}

// Queues already in submit order skip the sort; the order is the same either way.
TEST(Property, OrderByKeyOnSortedAndShuffledInput) {
  Rng rng(3);
  std::vector<JobRequest> q = RandomQueue(rng);
  std::vector<uint32_t> order = FifoOrder(q);
  std::vector<JobRequest> sorted;
  for (uint32_t i : order) sorted.push_back(q[i]);
  std::vector<uint32_t> again = FifoOrder(sorted);
  for (size_t i = 0; i < again.size(); ++i) EXPECT_EQ(again[i], i);
}

}  // namespace
}  // namespace fastgpu::sched
