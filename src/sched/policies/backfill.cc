#include <algorithm>
#include <limits>
#include <tuple>

#include "sched/framework/queue_sort.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

constexpr UnixMillis kNever = std::numeric_limits<UnixMillis>::max();

// Runtime a job is known to stay within: its limit, else its prediction; 0 = unknown.
int64_t KnownRuntimeS(int64_t limit_s, int64_t predicted_s) { return limit_s > 0 ? limit_s : predicted_s; }

class BackfillScheduler final : public Scheduler {
 public:
  BackfillScheduler(const SchedulerOptions& o, PlacementKind k) : options_(o), kind_(k) {}
  std::string Name() const override { return "backfill/" + options_.placement; }

  struct Release {
    UnixMillis end;
    int running;         // running job index, or -1 for a job bound this round
    Placement placement;  // for jobs bound this round
  };

  // Earliest time the head fits once running jobs end, and the nodes it would use then.
  static bool Reserve(Round& r, size_t head, std::vector<Release> releases, UnixMillis* shadow,
                      std::vector<int>* nodes) {
    ClusterState sim = r.state();
    RunningIndex index(sim);
    std::sort(releases.begin(), releases.end(), [](const Release& a, const Release& b) {
      return std::tie(a.end, a.running) < std::tie(b.end, b.running);
    });
    auto free_job = [&](const Release& rel) {
      if (rel.running >= 0) {
        for (const auto& s : index.shares(rel.running)) sim.Release(s.gpu, s.milli, s.mem);
      } else {
        Undo(sim, rel.placement);
      }
    };
    Placement p;
    const auto& classes = r.Classes(head);
    for (const Release& rel : releases) {
      if (rel.end == kNever) break;
      free_job(rel);
      if (FindPlacement(sim, r.job(head), classes, r.kind(), {}, &p)) {
        *shadow = rel.end;
        *nodes = PlacementNodes(sim, p);
        return true;
      }
    }
    for (const Release& rel : releases) {
      if (rel.end == kNever) free_job(rel);
    }
    if (FindPlacement(sim, r.job(head), classes, r.kind(), {}, &p)) {
      *shadow = kNever;
      *nodes = PlacementNodes(sim, p);
      return true;
    }
    return false;
  }

  Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) override {
    Round r(cluster, queue, options_, kind_);
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
    for (uint32_t i : FifoOrder(queue)) {
      // Short jobs may use the reserved nodes, so their free GPUs count.
      if (r.CanStop(/*held_usable=*/true)) break;
      if (!r.Admit(i)) continue;
      const JobRequest& job = queue[i];
      const int64_t rt = KnownRuntimeS(job.runtime_limit_s, job.predicted_runtime_s);
      if (head < 0) {
        if (r.Find(i, &p)) {
          r.Bind(i, p);
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
      if (r.Find(i, &p)) {
        r.Bind(i, p);
        continue;
      }
      if (!reserved.empty() && shadow != kNever && rt > 0 && now + rt * 1000 <= shadow) {
        for (int n : reserved) r.state().Unblock(n);
        const bool found = r.Find(i, &p);
        if (found) r.Bind(i, p);
        for (int n : reserved) r.state().Block(n);
        if (found) continue;
      }
      r.PendingNoFit(i, suffix);
    }
    return r.Take();
  }

 private:
  SchedulerOptions options_;
  PlacementKind kind_;
};

}  // namespace

std::unique_ptr<Scheduler> MakeBackfillScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<BackfillScheduler>(options, kind);
}

}  // namespace fastgpu::sched
