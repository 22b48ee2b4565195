// JobQueue (caller-kept, indexed queue) and caller-kept ClusterState: the same decisions as
// scheduling the plain span of the jobs on the plain snapshot, whatever happened to them before.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <map>
#include <numeric>

#include "sched/framework/cluster_state.h"
#include "sched/framework/queue_sort.h"
#include "sched/framework/queue_walk.h"
#include "builders.h"
#include "random_inputs.h"

namespace fastgpu::sched {
namespace {

using testing::kNow;
using testing::RandomCluster;
using testing::RandomQueue;
using testing::Rng;
using testing::Serialize;

// A queue with many ties: few distinct submit times, ids that sort differently as text ("q10" <
// "q9"), now and then the same id twice.
std::vector<JobRequest> TiedQueue(Rng& rng) {
  std::vector<JobRequest> q = RandomQueue(rng);
  for (JobRequest& j : q) {
    j.submitted_at = kNow - rng.Int(0, 4) * 600'000 - (rng.Chance(10) ? 3'600'000'000 : 0);
    if (rng.Chance(5) && !q.empty()) j.job_id = q[static_cast<size_t>(rng.Int(0, static_cast<int>(q.size()) - 1))].job_id;
  }
  return q;
}

std::vector<uint32_t> Walk(const JobQueue& jq, QueueWalk::Rank rank = nullptr) {
  std::vector<uint32_t> out;
  QueueWalk w(jq, std::move(rank));
  for (JobQueue::Handle h = w.Next(); h != JobQueue::kNone; h = w.Next()) out.push_back(h);
  return out;
}

// Built from a span, handles are span indexes, so walks compare with the queue_sort orders.
TEST(JobQueue, WalksFollowTheWholeQueueOrders) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    const std::vector<JobRequest> q = seed % 2 == 0 ? TiedQueue(rng) : RandomQueue(rng);
    const UnixMillis now = kNow;

    EXPECT_EQ(Walk(JobQueue(QueueOrder{}, q)), FifoOrder(q));

    QueueOrder prio;
    prio.kind = QueueOrder::Kind::kPriority;
    const JobQueue by_priority(prio, q);
    for (int64_t aging : {int64_t{0}, int64_t{1}, int64_t{600'000}, int64_t{3'600'000}}) {
      QueueWalk::Rank rank;
      if (aging > 0) {
        rank = [&](const JobQueue::Entry& e, int64_t band) {
          return -EffectivePriorityMilli(static_cast<int>(-band), e.submitted_at, now, aging);
        };
      }
      EXPECT_EQ(Walk(by_priority, rank), PriorityOrder(q, now, aging)) << "aging " << aging;
    }

    QueueOrder sjf;
    sjf.kind = QueueOrder::Kind::kEstimate;
    sjf.default_runtime_s = 3600;
    std::vector<int64_t> est;
    for (const JobRequest& j : q) est.push_back(EstimatedRuntimeS(j, sjf.default_runtime_s));
    EXPECT_EQ(Walk(JobQueue(sjf, q)), OrderByKey(q, est));

    QueueOrder las;
    las.kind = QueueOrder::Kind::kAttained;
    las.thresholds_gpu_ms = {3'600'000, 16 * 3'600'000};
    const JobQueue by_service(las, q);
    for (int64_t promote : {int64_t{0}, int64_t{1'800'000}, int64_t{3 * 3'600'000}}) {
      std::vector<int64_t> keys;
      for (const JobRequest& j : q) {
        const int64_t level = las.BandOf(j);
        keys.push_back(promote > 0 && now - j.submitted_at >= promote ? 0 : level);
      }
      QueueWalk::Rank rank;
      if (promote > 0) {
        rank = [&](const JobQueue::Entry& e, int64_t band) { return now - e.submitted_at >= promote ? 0 : band; };
      }
      EXPECT_EQ(Walk(by_service, rank), OrderByKey(q, keys)) << "promote " << promote;
    }

    // Per project: the project's jobs in the whole queue's priority order (no aging).
    QueueOrder fair;
    fair.kind = QueueOrder::Kind::kProjectPriority;
    const JobQueue by_project(fair, q);
    const std::vector<uint32_t> all = PriorityOrder(q, now, 0);
    const auto& bands = by_project.bands();
    size_t projects = 0;
    for (auto it = bands.begin(); it != bands.end();) {
      auto end = it;
      while (end != bands.end() && end->first.group == it->first.group) ++end;
      std::vector<uint32_t> walked;
      QueueWalk w(by_project, it, end);
      for (JobQueue::Handle h = w.Next(); h != JobQueue::kNone; h = w.Next()) walked.push_back(h);
      std::vector<uint32_t> expected;
      for (uint32_t i : all) {
        if (q[i].project == it->first.group) expected.push_back(i);
      }
      EXPECT_EQ(walked, expected) << it->first.group;
      ++projects;
      it = end;
    }
    std::map<std::string, int> distinct;
    for (const JobRequest& j : q) ++distinct[j.project];
    EXPECT_EQ(projects, distinct.size());
    if (::testing::Test::HasFailure()) return;
  }
}

// Options that change the orders (aging, promotion) and the work per round (reason limits).
std::vector<SchedulerOptions> OptionVariants() {
  std::vector<SchedulerOptions> out;
  for (const char* policy : kPolicyNames) {
    for (int64_t limit : {int64_t{-1}, int64_t{1}}) {
      SchedulerOptions o;
      o.policy = policy;
      o.max_pending_reasons = limit;
      out.push_back(o);
    }
  }
  SchedulerOptions las;
  las.policy = "las";
  las.las_promote_after_ms = 1'800'000;
  out.push_back(las);
  SchedulerOptions prio;
  prio.policy = "priority";
  prio.aging_ms_per_point = 0;
  prio.max_pending_reasons = 1;
  out.push_back(prio);
  SchedulerOptions spread;
  spread.policy = "backfill";
  spread.placement = "spread";
  spread.max_pending_reasons = 1;
  out.push_back(spread);
  SchedulerOptions fair;
  fair.policy = "fair-share";
  fair.project_weights = {{"proj1", 3}};
  out.push_back(fair);
  return out;
}

std::string Name(const SchedulerOptions& o) {
  return o.policy + "/" + o.placement + " limit " + std::to_string(o.max_pending_reasons);
}

// A queue changed job by job (adds, removals, new predictions, other changes) decides like the
// plain span of the same jobs in the same insertion order; so does one indexed for another policy.
TEST(JobQueue, MeanSubmittedAtFollowsAddsRemovesAndChanges) {
  QueueOrder o;
  o.kind = QueueOrder::Kind::kProjectAttained;
  o.thresholds_gpu_ms = {3'600'000};
  JobQueue q(o);
  EXPECT_EQ(q.mean_submitted_at(), 0);
  const JobQueue::Handle a = q.Add(testing::JobBuilder("a").Submitted(1000));
  const JobQueue::Handle b = q.Add(testing::JobBuilder("b").Submitted(3000));
  EXPECT_EQ(q.mean_submitted_at(), 2000);
  q.Modify(b, [](JobRequest& j) { j.submitted_at = 5000; });
  EXPECT_EQ(q.mean_submitted_at(), 3000);
  q.Remove(a);
  EXPECT_EQ(q.mean_submitted_at(), 5000);
  std::vector<JobRequest> jobs = {testing::JobBuilder("x").Submitted(10), testing::JobBuilder("y").Submitted(20)};
  EXPECT_EQ(JobQueue::View(o, jobs).mean_submitted_at(), 15);
}

TEST(JobQueue, KeptQueueDecidesLikeTheSpan) {
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    Rng rng(seed);
    const ClusterSnapshot snap = RandomCluster(rng);
    const ClusterState state(snap);
    const std::vector<JobRequest> pool = seed % 2 == 0 ? TiedQueue(rng) : RandomQueue(rng);
    for (const SchedulerOptions& o : OptionVariants()) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " " + Name(o));
      auto sched = std::move(MakeScheduler(o)).value();
      ASSERT_EQ(sched->queue_order(), QueueOrderFor(o));
      JobQueue jq(sched->queue_order());
      std::vector<std::pair<JobQueue::Handle, JobRequest>> ref;  // insertion order
      Rng ops(seed * 7919 + 1);
      for (int step = 0; step < 40; ++step) {
        const int op = ops.Int(0, 9);
        if ((op < 5 || ref.empty()) && !pool.empty()) {
          JobRequest j = pool[static_cast<size_t>(ops.Int(0, static_cast<int>(pool.size()) - 1))];
          ref.emplace_back(jq.Add(j), j);
        } else if (op < 7) {
          const size_t k = static_cast<size_t>(ops.Int(0, static_cast<int>(ref.size()) - 1));
          jq.Remove(ref[k].first);
          ref.erase(ref.begin() + static_cast<std::ptrdiff_t>(k));
        } else if (op == 7) {
          const size_t k = static_cast<size_t>(ops.Int(0, static_cast<int>(ref.size()) - 1));
          const int64_t s = ops.Chance(20) ? 0 : ops.Int(1, 9000);
          jq.SetPredictedRuntime(ref[k].first, s);
          ref[k].second.predicted_runtime_s = s;
        } else if (op == 8) {
          std::map<JobQueue::Handle, int64_t> next;
          for (auto& [h, j] : ref) {
            j.predicted_runtime_s = ops.Chance(30) ? j.predicted_runtime_s : ops.Int(0, 9000);
            next[h] = j.predicted_runtime_s;
          }
          jq.SetPredictedRuntimes([&](JobQueue::Handle h) { return next.at(h); });
        } else {
          const size_t k = static_cast<size_t>(ops.Int(0, static_cast<int>(ref.size()) - 1));
          const int priority = ops.Int(0, 100);
          const int64_t attained = int64_t{ops.Int(0, 20)} * 3'600'000;
          const int gpus = 1 << ops.Int(0, 3);
          jq.Modify(ref[k].first, [&](JobRequest& j) {
            j.priority = priority;
            j.attained_gpu_ms = attained;
            if (j.milli_per_gpu == kMilliPerGpu) j.gpus = gpus;
          });
          JobRequest& j = ref[k].second;
          j.priority = priority;
          j.attained_gpu_ms = attained;
          if (j.milli_per_gpu == kMilliPerGpu) j.gpus = gpus;
        }
        if (step % 4 != 3) continue;
        std::vector<JobRequest> span;
        for (const auto& [h, j] : ref) span.push_back(j);
        // Contents and aggregates.
        ASSERT_EQ(jq.size(), span.size());
        std::vector<JobRequest> jobs = jq.Jobs();
        ASSERT_EQ(jobs.size(), span.size());
        int min_whole = std::numeric_limits<int>::max();
        bool fraction = false;
        int64_t deadlines = 0;
        int64_t min_known = std::numeric_limits<int64_t>::max();
        for (size_t i = 0; i < span.size(); ++i) {
          EXPECT_EQ(jobs[i].job_id, span[i].job_id);
          EXPECT_EQ(jobs[i].predicted_runtime_s, span[i].predicted_runtime_s);
          if (span[i].milli_per_gpu < kMilliPerGpu) {
            fraction = true;
          } else {
            min_whole = std::min(min_whole, span[i].gpus);
          }
          if (span[i].finish_before > 0) ++deadlines;
          const int64_t known = span[i].runtime_limit_s > 0 ? span[i].runtime_limit_s : span[i].predicted_runtime_s;
          if (known > 0) min_known = std::min(min_known, known);
        }
        EXPECT_EQ(jq.min_whole_gpus(), min_whole);
        EXPECT_EQ(jq.any_fraction(), fraction);
        EXPECT_EQ(jq.deadline_jobs(), deadlines);
        EXPECT_LE(jq.min_known_runtime_s(), min_known);
        int64_t shaped = 0;
        for (uint32_t s = 0; s < jq.shape_count(); ++s) shaped += jq.shape_jobs(s);
        EXPECT_EQ(shaped, static_cast<int64_t>(span.size()));
        // Decisions.
        const std::string want = Serialize(sched->Schedule(snap, span));
        EXPECT_EQ(Serialize(sched->Schedule(snap, jq)), want);
        EXPECT_EQ(Serialize(sched->Schedule(state, jq)), want);
        SchedulerOptions other = o;
        other.policy = o.policy == "las" ? "sjf" : "las";
        JobQueue foreign(QueueOrderFor(other), jq);
        EXPECT_EQ(Serialize(sched->Schedule(snap, foreign)), want) << "queue indexed for another policy";
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
}

// A state kept in step with a changing snapshot (Allocate/Release) is the state built from it.
TEST(ClusterState, KeptInStepWithTheSnapshot) {
  for (uint64_t seed = 1; seed <= 80; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Rng rng(seed);
    ClusterSnapshot snap = RandomCluster(rng);
    ClusterState kept(snap);
    kept.BuildLookups();
    const std::vector<JobRequest> q = RandomQueue(rng);
    auto sched = testing::Make(seed % 2 == 0 ? "backfill" : "las");
    for (int step = 0; step < 60; ++step) {
      const int n = rng.Int(0, static_cast<int>(snap.nodes.size()) - 1);
      NodeView& node = snap.nodes[static_cast<size_t>(n)];
      const int i = rng.Int(0, static_cast<int>(node.gpus.size()) - 1);
      GpuView& g = node.gpus[static_cast<size_t>(i)];
      const int gpu = kept.node(n).first_gpu + i;
      const MilliGpu milli = rng.Chance(50) ? kMilliPerGpu : 250 * rng.Int(1, 3);
      if (rng.Chance(50) && g.free_milli >= milli) {
        const MiB mem = milli == kMilliPerGpu ? (g.free_milli == kMilliPerGpu ? g.memory_mib : g.free_memory_mib)
                                             : std::min<MiB>(g.free_memory_mib, 4096);
        if (milli == kMilliPerGpu && g.free_milli != kMilliPerGpu) continue;
        g.free_milli -= milli;
        g.free_memory_mib = (g.free_milli + milli == kMilliPerGpu ? g.memory_mib : g.free_memory_mib) - mem;
        kept.Allocate(gpu, milli, mem);
      } else if (g.free_milli + milli <= kMilliPerGpu) {
        const MiB mem = std::min<MiB>(g.memory_mib - g.free_memory_mib, milli == kMilliPerGpu ? g.memory_mib : 4096);
        g.free_milli += milli;
        g.free_memory_mib = g.free_milli == kMilliPerGpu ? g.memory_mib : g.free_memory_mib + mem;
        kept.Release(gpu, milli, mem);
      }
      ASSERT_TRUE(kept.SameAs(ClusterState(snap))) << "step " << step;
      if (step % 10 == 9) {
        // The snapshot's running jobs do not match these allocations; decisions only need the same inputs.
        const JobQueue jq(sched->queue_order(), q);
        EXPECT_EQ(Serialize(sched->Schedule(kept, jq)), Serialize(sched->Schedule(snap, q)));
      }
    }
  }
}

}  // namespace
}  // namespace fastgpu::sched
