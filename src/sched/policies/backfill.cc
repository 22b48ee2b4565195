#include <algorithm>
#include <limits>
#include <tuple>

#include "sched/framework/queue_walk.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

constexpr UnixMillis kNever = std::numeric_limits<UnixMillis>::max();

// Runtime a job is known to stay within: its limit, else its prediction; 0 = unknown.
int64_t KnownRuntimeS(int64_t limit_s, int64_t predicted_s) { return limit_s > 0 ? limit_s : predicted_s; }

class BackfillScheduler final : public PolicyScheduler {
 public:
  using PolicyScheduler::PolicyScheduler;
  std::string Name() const override { return "backfill/" + options_.placement; }

  struct Release {
    UnixMillis end;
    int running;         // running job index, or -1 for a job bound this round
    Placement placement;  // for jobs bound this round
  };

  // Earliest time the head fits once running jobs end, and the nodes it would use then.
  static bool Reserve(Round& r, JobQueue::Handle head, const std::vector<Release>& all, UnixMillis* shadow,
                      std::vector<int>* nodes) {
    ClusterState sim = r.state();
    const auto& running = r.cluster().running;
    // Sorted by (end, running) through small proxies: the comparisons, and so the resulting order
    // (ties included), are those of sorting the releases themselves.
    struct Key {
      UnixMillis end;
      int running;
      uint32_t index;
    };
    std::vector<Key> keys;
    keys.reserve(all.size());
    for (size_t k = 0; k < all.size(); ++k) keys.push_back(Key{all[k].end, all[k].running, static_cast<uint32_t>(k)});
    std::sort(keys.begin(), keys.end(),
              [](const Key& a, const Key& b) { return std::tie(a.end, a.running) < std::tie(b.end, b.running); });
    std::vector<const Release*> releases;
    releases.reserve(keys.size());
    for (const Key& k : keys) releases.push_back(&all[k.index]);
    auto free_job = [&](const Release& rel) {
      if (rel.running >= 0) {
        // Resolved only for the jobs released (usually a few of them).
        for (const GpuShare& sh : running[static_cast<size_t>(rel.running)].shares) {
          const int g = r.state().FindGpu(r.state().FindNode(sh.node), sh.gpu_uuid);
          if (g >= 0) sim.Release(g, sh.milli, sh.memory_mib);
        }
      } else {
        Undo(sim, rel.placement);
      }
    };
    Placement p;
    const auto& classes = r.Classes(head);
    for (const Release* rel : releases) {
      if (rel->end == kNever) break;
      free_job(*rel);
      if (FindPlacement(sim, r.job(head), classes, r.kind(), {}, &p)) {
        *shadow = rel->end;
        *nodes = PlacementNodes(sim, p);
        return true;
      }
    }
    for (const Release* rel : releases) {
      if (rel->end == kNever) free_job(*rel);
    }
    if (FindPlacement(sim, r.job(head), classes, r.kind(), {}, &p)) {
      *shadow = kNever;
      *nodes = PlacementNodes(sim, p);
      return true;
    }
    return false;
  }

  Decisions Run(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) override {
    Round r(cluster, state, queue, options_, kind_);
    const UnixMillis now = cluster.now;
    std::vector<Release> releases;
    for (size_t i = 0; i < cluster.running.size(); ++i) {
      const RunningJob& rj = cluster.running[i];
      const int64_t rt = KnownRuntimeS(rj.runtime_limit_s, rj.predicted_runtime_s);
      const UnixMillis end = rt > 0 ? std::max(now, rj.started_at + rt * 1000) : kNever;
      releases.push_back(Release{end, static_cast<int>(i), {}});
    }
    int64_t head = -1;
    UnixMillis shadow = kNever;
    std::vector<int> reserved;
    std::string suffix;
    Placement p;
    // Once the head holds its nodes they stay held, so whether a job of some shape fits outside them,
    // or on them too, changes only with allocations: failures are memoised per shape by
    // ClusterState::alloc_version() (+ 1; 0 = not known).
    std::vector<uint64_t> outside_no_fit(queue.shape_count(), 0);
    std::vector<uint64_t> inside_no_fit(queue.shape_count(), 0);
    const auto fits_outside = [&](uint32_t shape) {
      const uint64_t v = r.state().alloc_version() + 1;
      if (outside_no_fit[shape] == v) return false;
      if (r.FindShape(shape, &p)) return true;
      outside_no_fit[shape] = v;
      return false;
    };
    // Looks for room with the reserved nodes released and binds `bind` there (kNone: only looks).
    const auto fits_inside = [&](uint32_t shape, JobQueue::Handle bind) {
      const uint64_t v = r.state().alloc_version() + 1;
      if (inside_no_fit[shape] == v) return false;
      for (int n : reserved) r.state().Unblock(n);
      const bool found = r.FindShape(shape, &p);
      if (found && bind != JobQueue::kNone && !r.Reserved(bind, &p)) r.Bind(bind, p);
      for (int n : reserved) r.state().Block(n);
      if (!found) inside_no_fit[shape] = v;
      return found;
    };
    // No job not looked at yet, of any shape, could start outside the reserved nodes or on them, and
    // none would be rejected if looked at: the rest of the walk would only count suppressed verdicts.
    // The reserved nodes only count when some queued job may end before the shadow time.
    std::vector<int64_t> looked_at(queue.shape_count(), 0);  // jobs of each shape walked so far
    uint64_t nothing_version = 0;
    size_t nothing_exhausted = 0;
    size_t exhausted = 0;  // shapes whose jobs have all been looked at
    bool nothing = false;
    const auto nothing_fits = [&]() {
      const uint64_t v = r.state().alloc_version() + 1;
      if (nothing_version == v && nothing_exhausted == exhausted) return nothing;
      nothing_version = v;
      nothing_exhausted = exhausted;
      nothing = false;
      if (queue.deadline_jobs() > 0) return false;
      const bool any_short = !reserved.empty() && shadow != kNever && shadow > now &&
                             queue.min_known_runtime_s() <= (shadow - now) / 1000;
      for (uint32_t s = 0; s < queue.shape_count(); ++s) {
        if (queue.shape_jobs(s) == looked_at[s]) continue;
        if (!r.ShapeCapacity(s).ok() || fits_outside(s)) return false;
        if (any_short && fits_inside(s, JobQueue::kNone)) return false;
      }
      nothing = true;
      return true;
    };
    QueueWalk walk(queue);
    // Behind the head most jobs are decided from their band entry alone (shape, known runtime).
    for (const JobQueue::Entry* e = walk.NextEntry(); e != nullptr; e = walk.NextEntry()) {
      const JobQueue::Handle i = e->handle;
      // Short jobs may use the reserved nodes, so their free GPUs count.
      if (r.CanStop(/*held_usable=*/true)) break;
      if (head >= 0 && !r.want_reason() && nothing_fits()) break;
      if (++looked_at[e->shape()] == queue.shape_jobs(e->shape())) ++exhausted;
      if (!r.Admit(*e)) continue;
      if (head < 0) {
        const JobRequest& job = queue.job(i);
        if (r.Find(i, &p)) {
          if (r.Reserved(i, &p)) continue;
          r.Bind(i, p);
          const int64_t rt = KnownRuntimeS(job.runtime_limit_s, job.predicted_runtime_s);
          releases.push_back(Release{rt > 0 ? now + rt * 1000 : kNever, -1, p});
          continue;
        }
        head = i;
        if (Reserve(r, i, releases, &shadow, &reserved)) {
          std::string names;
          for (int n : reserved) {
            if (!names.empty()) names += ", ";
            names += r.state().node_view(n).name;
          }
          std::string when = shadow == kNever ? "when running jobs end" : "at " + FormatTimestamp(shadow);
          r.PendingNoFit(i, "; reserved " + names + " " + when);
          for (int n : reserved) r.state().Block(n);
          suffix = "; backfill must not delay " + job.job_id + " (reserved " + when + ")";
        } else {
          r.PendingNoFit(i);
        }
        continue;
      }
      // Backfill: outside the reserved nodes, or ending before the shadow time.
      const uint32_t shape = e->shape();
      if (fits_outside(shape)) {
        if (!r.Reserved(i, &p)) r.Bind(i, p);
        continue;
      }
      if (!reserved.empty() && shadow != kNever) {
        const int64_t rt = e->known_runtime_s;  // KnownRuntimeS of the job
        if (rt > 0 && now + rt * 1000 <= shadow && fits_inside(shape, i)) continue;
      }
      r.PendingNoFit(i, suffix);
    }
    return r.Take();
  }
};

}  // namespace

std::unique_ptr<Scheduler> MakeBackfillScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<BackfillScheduler>(options, kind);
}

}  // namespace fastgpu::sched
