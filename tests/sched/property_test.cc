// Property tests over random clusters and queues (seeded, so failures reproduce).
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

#include "sched/framework/queue_sort.h"
#include "builders.h"
#include "random_inputs.h"

namespace fastgpu::sched {
namespace {

using testing::kNow;
using testing::RandomCluster;
using testing::RandomQueue;
using testing::Rng;
using testing::Serialize;

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

// A job that is not preemptible is never preempted, by any policy, however strong the pressure: every
// queued job outranks every running one (top priority, no attained service, old enough to starve) and
// half of the running jobs may not be preempted. Preemptions must still happen (the test has teeth).
TEST(Property, NonPreemptibleJobsAreNeverPreempted) {
  int64_t preemptions = 0;
  std::vector<std::string> policies(std::begin(kPolicyNames), std::end(kPolicyNames));
  policies.push_back("default");
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    ClusterSnapshot s = RandomCluster(rng);
    for (RunningJob& r : s.running) {
      r.priority = rng.Int(0, 20);
      r.attained_gpu_ms = int64_t{rng.Int(2, 40)} * 3'600'000;
      r.preemptible = rng.Chance(50);
      r.started_at = kNow - rng.Int(10, 600) * 60'000;
    }
    std::vector<JobRequest> q = RandomQueue(rng);
    for (JobRequest& j : q) {
      j.priority = 100;
      j.attained_gpu_ms = 0;
      j.submitted_at = kNow - rng.Int(0, 3000) * 60'000;
    }
    std::set<std::string> pinned;
    for (const RunningJob& r : s.running) {
      if (!r.preemptible) pinned.insert(r.job_id);
    }
    for (const std::string& policy : policies) {
      for (const char* placement : kPlacementNames) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy + "/" + placement);
        const Decisions d = testing::Make(policy, placement)->Schedule(s, q);
        for (const Preempt& p : d.preemptions) {
          EXPECT_EQ(pinned.count(p.job_id), 0u) << "preempted " << p.job_id << ", which is not preemptible";
        }
        preemptions += static_cast<int64_t>(d.preemptions.size());
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  EXPECT_GT(preemptions, 100);
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

// Decisions without the waiting reasons (random_inputs.h's Serialize of the rest).
std::string BindsAndPreemptions(Decisions d) {
  d.pending.clear();
  return Serialize(d);
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

// The same on queues without deadlines or requests the cluster can never hold: there a round may
// stop as soon as no job it has not looked at could start (nothing it would report is left out).
TEST(Property, PendingReasonLimitKeepsDecisionsOnPlainQueues) {
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    Rng rng(seed);
    const ClusterSnapshot s = RandomCluster(rng);
    std::vector<JobRequest> q = RandomQueue(rng);
    for (JobRequest& j : q) {
      j.finish_before = 0;
      if (j.gpu_type == "B200") j.gpu_type.clear();
      if (j.milli_per_gpu == kMilliPerGpu && j.memory_mib > 40960) j.memory_mib = 0;
      // Runtimes around the reservation horizons of the running jobs (up to 2 h).
      if (rng.Chance(50)) j.runtime_limit_s = rng.Int(60, 3 * 3600);
    }
    for (const char* policy : kPolicyNames) {
      for (const char* placement : kPlacementNames) {
        const Decisions full = testing::Make(policy, placement)->Schedule(s, q);
        for (int64_t limit : {0, 1, 3}) {
          SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy + "/" + placement + " limit " +
                       std::to_string(limit));
          SchedulerOptions o;
          o.policy = policy;
          o.placement = placement;
          o.max_pending_reasons = limit;
          const Decisions lim = (*MakeScheduler(o))->Schedule(s, q);
          EXPECT_EQ(BindsAndPreemptions(full), BindsAndPreemptions(lim));
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

namespace fastgpu::sched {
namespace {

std::vector<std::string> PoliciesAndDefault() {
  std::vector<std::string> policies(std::begin(kPolicyNames), std::end(kPolicyNames));
  policies.push_back("default");
  return policies;
}

// Random reservations: started or upcoming windows of random projects, some for one GPU type.
std::vector<ReservationView> RandomReservations(Rng& rng) {
  std::vector<ReservationView> out;
  const int n = rng.Int(1, 3);
  for (int i = 0; i < n; ++i) {
    ReservationView r;
    r.id = "res" + std::to_string(i);
    r.project = "proj" + std::to_string(rng.Int(0, 3));
    r.gpus = rng.Int(1, 16);
    if (rng.Chance(40)) r.gpu_type = testing::kTypes[rng.Int(0, 2)];
    r.start = rng.Chance(60) ? kNow - rng.Int(0, 120) * 60'000 : kNow + rng.Int(1, 180) * 60'000;
    r.end = std::max(r.start, kNow) + rng.Int(1, 240) * 60'000;
    out.push_back(r);
  }
  return out;
}

// Reservations hold: whenever a job of another project, to which the window applies (started, or the job's
// runtime limit does not end before it starts), is bound onto fully free GPUs of the reserved type, the fully
// free usable GPUs of that type left afterwards plus those the reservation's project holds still cover the
// reservation. Binds are replayed in order on an independent model of the cluster.
TEST(Property, ReservationsHold) {
  int64_t held_back = 0;
  int64_t checked = 0;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    Rng rng(seed);
    ClusterSnapshot s = RandomCluster(rng);
    std::vector<JobRequest> q = RandomQueue(rng);
    s.reservations = RandomReservations(rng);
    for (const std::string& policy : PoliciesAndDefault()) {
      for (const char* placement : kPlacementNames) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy + "/" + placement);
        const Decisions d = testing::Make(policy, placement)->Schedule(s, q);
        // A limit on waiting reasons changes no bind or preemption here either.
        SchedulerOptions limited;
        limited.policy = policy;
        limited.placement = placement;
        limited.max_pending_reasons = 1;
        EXPECT_EQ(BindsAndPreemptions(d), BindsAndPreemptions((*MakeScheduler(limited))->Schedule(s, q)));
        // uuid -> (type, usable, free milli)
        struct Gpu {
          std::string type;
          bool usable = false;
          MilliGpu free = 0;
        };
        std::map<std::string, Gpu> gpus;
        for (const NodeView& n : s.nodes) {
          for (const GpuView& g : n.gpus) gpus[g.uuid] = Gpu{g.type, n.healthy && !n.draining && g.healthy, g.free_milli};
        }
        std::map<std::string, const JobRequest*> jobs;
        for (const JobRequest& j : q) jobs[j.job_id] = &j;
        const auto matches = [](const ReservationView& r, const std::string& type) {
          return r.gpu_type.empty() || r.gpu_type == type;
        };
        std::vector<int64_t> used(s.reservations.size(), 0);
        for (size_t k = 0; k < s.reservations.size(); ++k) {
          for (const RunningJob& rj : s.running) {
            if (rj.project != s.reservations[k].project) continue;
            for (const GpuShare& sh : rj.shares) used[k] += matches(s.reservations[k], gpus.at(sh.gpu_uuid).type) ? 1 : 0;
          }
        }
        for (const Bind& b : d.binds) {
          const JobRequest& j = *jobs.at(b.job_id);
          std::vector<int64_t> take(s.reservations.size(), 0);
          for (const NodeAssignment& a : b.nodes) {
            for (const std::string& u : a.gpu_uuids) {
              Gpu& g = gpus.at(u);
              for (size_t k = 0; k < s.reservations.size(); ++k) {
                if (!matches(s.reservations[k], g.type)) continue;
                if (g.usable && g.free == kMilliPerGpu) ++take[k];
                if (j.project == s.reservations[k].project) ++used[k];
              }
              g.free -= b.milli_per_gpu;
            }
          }
          for (size_t k = 0; k < s.reservations.size(); ++k) {
            const ReservationView& r = s.reservations[k];
            if (j.project == r.project || r.end <= s.now || take[k] == 0) continue;
            if (r.start > s.now && j.runtime_limit_s > 0 && s.now + j.runtime_limit_s * 1000 <= r.start) continue;
            int64_t free = 0;
            for (const auto& [u, g] : gpus) free += g.usable && g.free == kMilliPerGpu && matches(r, g.type) ? 1 : 0;
            ++checked;
            EXPECT_GE(free + used[k], r.gpus) << b.job_id << " of " << j.project << " cut into " << r.id << "\n"
                                              << Serialize(d);
          }
        }
        for (const Pending& p : d.pending) held_back += p.reason.find(" are reserved for project ") != std::string::npos;
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  EXPECT_GT(checked, 100);
  EXPECT_GT(held_back, 100);
}

// Running and queued jobs of random priorities and LAS queues, half of the running ones not preemptible:
// fair-las never preempts a non-preemptible job, never a job of higher priority, and among equal priorities
// only jobs of a later LAS queue. With and without the cross-project rule.
TEST(Property, FairLasPreemptsOnlyPreemptibleLowerJobsWithMixedPriorities) {
  int64_t preemptions = 0;
  SchedulerOptions defaults;
  const auto las_queue = [&](int64_t attained) {
    int64_t level = 0;
    for (int64_t t : defaults.las_thresholds_gpu_ms) level += attained >= t ? 1 : 0;
    return level;
  };
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    ClusterSnapshot s = RandomCluster(rng);
    for (RunningJob& r : s.running) {
      r.priority = rng.Int(0, 4) * 25;
      r.attained_gpu_ms = int64_t{rng.Int(0, 40)} * 3'600'000;
      r.preemptible = rng.Chance(50);
      r.started_at = kNow - rng.Int(10, 600) * 60'000;
    }
    std::vector<JobRequest> q = RandomQueue(rng);
    for (JobRequest& j : q) {
      j.priority = rng.Int(0, 4) * 25;
      j.submitted_at = kNow - rng.Int(0, 3000) * 60'000;
    }
    std::map<std::string, const JobRequest*> jobs;
    for (const JobRequest& j : q) jobs[j.job_id] = &j;
    for (bool across : {false, true}) {
      for (const char* placement : kPlacementNames) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + placement + (across ? " across projects" : ""));
        SchedulerOptions o;
        o.policy = "fair-las";
        o.placement = placement;
        o.preempt_across_projects = across;
        const Decisions d = (*MakeScheduler(o))->Schedule(s, q);
        for (const Preempt& p : d.preemptions) {
          const RunningJob* r = nullptr;
          for (const RunningJob& x : s.running) {
            if (x.job_id == p.job_id) r = &x;
          }
          ASSERT_NE(r, nullptr);
          EXPECT_TRUE(r->preemptible) << "preempted " << p.job_id << ", which is not preemptible";
          const std::string by = p.reason.substr(std::string("preempted by ").size());
          const JobRequest& pre = *jobs.at(by.substr(0, by.find(' ')));
          EXPECT_LE(r->priority, pre.priority) << p.reason;
          if (r->priority == pre.priority) {
            EXPECT_GT(las_queue(r->attained_gpu_ms), las_queue(pre.attained_gpu_ms)) << p.reason;
          }
        }
        preemptions += static_cast<int64_t>(d.preemptions.size());
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  EXPECT_GT(preemptions, 100);
}

// The cross-project rule, for every policy that preempts: a job preempts another project's job only while
// its own project holds less than its fair share (usable GPUs x weight / sum of the weights of the projects
// with running or queued jobs); its project's GPUs before the round are a lower bound of what it held then.
TEST(Property, NoCrossProjectPreemptionAboveFairShare) {
  int64_t across = 0;
  int64_t allowed_above = 0;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    ClusterSnapshot s = RandomCluster(rng);
    for (RunningJob& r : s.running) {
      r.priority = rng.Int(0, 20);
      r.attained_gpu_ms = int64_t{rng.Int(2, 40)} * 3'600'000;
      r.started_at = kNow - rng.Int(10, 600) * 60'000;
    }
    std::vector<JobRequest> q = RandomQueue(rng);
    for (JobRequest& j : q) {
      j.priority = 100;
      j.attained_gpu_ms = 0;
    }
    std::map<std::string, int64_t> weights = {{"proj0", 1}, {"proj1", 2}, {"proj2", 1}, {"proj3", 3}};
    int64_t usable = 0;
    for (const NodeView& n : s.nodes) {
      for (const GpuView& g : n.gpus) usable += n.healthy && !n.draining && g.healthy ? 1 : 0;
    }
    std::map<std::string, int64_t> held;  // milli-GPU before the round
    std::set<std::string> active;
    for (const RunningJob& r : s.running) {
      active.insert(r.project);
      for (const GpuShare& sh : r.shares) held[r.project] += sh.milli;
    }
    for (const JobRequest& j : q) active.insert(j.project);
    int64_t total_weight = 0;
    for (const std::string& p : active) total_weight += weights[p];
    std::map<std::string, const JobRequest*> jobs;
    for (const JobRequest& j : q) jobs[j.job_id] = &j;
    std::map<std::string, const RunningJob*> running;
    for (const RunningJob& r : s.running) running[r.job_id] = &r;
    for (const char* policy : {"priority", "las", "fair-las"}) {
      for (bool allow : {false, true}) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy + (allow ? " across projects" : ""));
        SchedulerOptions o;
        o.policy = policy;
        o.project_weights = weights;
        o.preempt_across_projects = allow;
        const Decisions d = (*MakeScheduler(o))->Schedule(s, q);
        for (const Preempt& p : d.preemptions) {
          const std::string by = p.reason.substr(std::string("preempted by ").size());
          const JobRequest& pre = *jobs.at(by.substr(0, by.find(' ')));
          const RunningJob& victim = *running.at(p.job_id);
          if (victim.project == pre.project) continue;
          const bool at_share = held[pre.project] * total_weight >= usable * kMilliPerGpu * weights[pre.project];
          if (allow) {
            allowed_above += at_share ? 1 : 0;
          } else {
            ++across;
            EXPECT_FALSE(at_share) << p.job_id << " of " << victim.project << " preempted by " << pre.job_id << " of "
                                   << pre.project << ", which holds " << held[pre.project] << " milli-GPU";
          }
        }
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  EXPECT_GT(across, 20);         // below their share, projects still preempt others
  EXPECT_GT(allowed_above, 20);  // and the admin switch lets the others do it too
}

// fair-las orders by priority first: with k free GPUs of one type and more single-GPU jobs than that (random
// projects, attained service, submit times; no windows or deadlines), every job started has at least the
// priority of every job left waiting.
TEST(Property, FairLasStartsHigherPrioritiesFirst) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Rng rng(seed);
    testing::ClusterBuilder c;
    const int nodes = rng.Int(1, 6);
    for (int n = 0; n < nodes; ++n) c.Node("n" + std::to_string(n), rng.Int(1, 8));
    std::vector<JobRequest> q;
    const int jobs = rng.Int(1, 60);
    for (int i = 0; i < jobs; ++i) {
      q.push_back(testing::JobBuilder("q" + std::to_string(i))
                      .Priority(rng.Int(0, 10) * 10)
                      .Project("proj" + std::to_string(rng.Int(0, 3)))
                      .Attained(int64_t{rng.Int(0, 20)} * 3'600'000)
                      .Submitted(kNow - rng.Int(0, 5000) * 60'000));
    }
    for (const char* policy : {"fair-las", "default"}) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy);
      SchedulerOptions o;
      o.policy = policy;
      o.starvation_mean_age_multiple = rng.Chance(50) ? 0 : 4;
      const Decisions d = (*MakeScheduler(o))->Schedule(c.Build(), q);
      int lowest_started = 1000;
      int highest_waiting = -1;
      std::map<std::string, int> priority;
      for (const JobRequest& j : q) priority[j.job_id] = j.priority;
      for (const Bind& b : d.binds) lowest_started = std::min(lowest_started, priority[b.job_id]);
      for (const Pending& p : d.pending) highest_waiting = std::max(highest_waiting, priority[p.job_id]);
      EXPECT_GE(lowest_started, highest_waiting) << Serialize(d);
      if (::testing::Test::HasFailure()) return;
    }
  }
}

}  // namespace
}  // namespace fastgpu::sched
