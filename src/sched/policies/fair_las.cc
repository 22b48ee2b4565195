#include <algorithm>
#include <limits>
#include <map>
#include <utility>
#include <queue>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

constexpr UnixMillis kNever = std::numeric_limits<UnixMillis>::max();

// Nodes held for a starving job, and when it is expected to fit on them (kNever: unknown).
struct Hold {
  std::vector<int> nodes;
  UnixMillis shadow = kNever;
  std::vector<uint64_t> inside_no_fit;  // per shape: alloc_version + 1 when it did not fit on them
};

// Priority first; inside a priority least attained service across LAS queues, fair across projects inside
// a queue (smallest jobs of a project first), with a starvation guard. Needs no runtime estimates: it reads
// priorities, attained service, waiting time, job size and the GPUs each project holds. Runtime limits and
// predictions, where there are any, only let jobs expected to end in time use the nodes the guard holds.
class FairLasScheduler final : public PolicyScheduler {
 public:
  using PolicyScheduler::PolicyScheduler;
  std::string Name() const override { return "fair-las/" + options_.placement; }
  // Predictions let jobs expected to end in time use the nodes a starving job holds (and count for deadlines).
  bool UsesRuntimeEstimates() const override { return true; }

 protected:
  // The queue's groups are the projects, their bands (priority, LAS queue, size class) (submit order inside).
  Decisions Run(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) override {
    Round r(cluster, state, queue, options_, kind_);
    const int64_t levels = static_cast<int64_t>(options_.las_thresholds_gpu_ms.size()) + 1;
    // Rank = priority * (levels + 1) + levels - LAS queue: higher rank goes first and may preempt; victims
    // need a strictly lower rank (a lower priority, or the same priority and a higher LAS queue).
    std::vector<int64_t> victim_rank(cluster.running.size());
    for (size_t i = 0; i < cluster.running.size(); ++i) {
      victim_rank[i] = RankOf(cluster.running[i].priority, QueueOf(cluster.running[i].attained_gpu_ms), levels);
    }

    // Projects: milli-GPUs held by running jobs (and this round's binds), weight.
    struct Project {
      std::string_view name;
      int64_t milli = 0;
      int64_t weight = 1;
      int64_t share() const { return milli * 1000 / weight; }
    };
    std::vector<Project> projects;
    std::unordered_map<std::string_view, uint32_t> by_name;
    const auto project = [&](std::string_view name) {
      auto [it, inserted] = by_name.try_emplace(name, static_cast<uint32_t>(projects.size()));
      if (inserted) {
        Project& p = projects.emplace_back();
        p.name = name;
        auto w = options_.project_weights.find(std::string(name));
        if (w != options_.project_weights.end() && w->second > 0) p.weight = w->second;
      }
      return it->second;
    };
    uint32_t last = 0;  // running jobs of one project often come together
    for (const RunningJob& rj : cluster.running) {
      if (projects.empty() || projects[last].name != rj.project) last = project(rj.project);
      for (const GpuShare& s : rj.shares) projects[last].milli += s.milli;
    }

    // One cursor per band: (project, priority, LAS queue, size class).
    struct Cursor {
      const JobQueue::Band* band;
      uint32_t project;
      int64_t priority;
      int64_t level;
      size_t pos = 0;
    };
    // A project's bands of one tier (priority, LAS queue), smallest size class first.
    struct Lane {
      uint32_t project;
      std::vector<uint32_t> cursors;
      size_t next = 0;  // first cursor with jobs left
    };
    std::vector<Cursor> cursors;
    // Tiers in order: higher priority first, then lower LAS queue (key: -priority, LAS queue).
    std::map<std::pair<int64_t, int64_t>, std::vector<Lane>> tiers;
    // Bands come by project, then band (priority, then LAS queue, then size class): a project's bands of one
    // tier are adjacent.
    for (const auto& [key, band] : queue.bands()) {
      if (band.size() == 0) continue;
      const int64_t level = std::clamp<int64_t>(QueueOrder::LasQueueOfBand(key.band), 0, levels - 1);
      const int64_t priority = QueueOrder::PriorityOfBand(key.band);
      const uint32_t pr = project(key.group);
      std::vector<Lane>& lanes = tiers[{-priority, level}];
      if (lanes.empty() || lanes.back().project != pr) lanes.push_back(Lane{pr, {}});
      lanes.back().cursors.push_back(static_cast<uint32_t>(cursors.size()));
      cursors.push_back(Cursor{&band, pr, priority, level});
    }

    const auto bind = [&](JobQueue::Handle i, const Placement& p) {
      r.Bind(i, p);
      projects[project(queue.job(i).project)].milli +=
          static_cast<int64_t>(p.milli) * static_cast<int64_t>(p.gpus.size());
    };
    const auto share = [&](uint32_t project) { return projects[project].share(); };

    // Priorities in order; inside one, 1. the starvation guard (starving jobs first), 2. LAS queues in order:
    // inside one the project holding the fewest GPUs (weighted) starts its smallest job (fewest GPUs; oldest
    // first among equals) next.
    std::string held;  // suffix for jobs that could not start while nodes are held
    Hold hold;
    hold.inside_no_fit.assign(queue.shape_count(), 0);
    int holding = 0;   // starving jobs that went first this round
    bool guarded = false;
    int64_t guarded_priority = 0;
    Placement p;
    for (auto& [tier, lanes] : tiers) {
      const int64_t priority = -tier.first;
      const int64_t level = tier.second;
      if (options_.starvation_after_ms > 0 && (!guarded || guarded_priority != priority)) {
        guarded = true;
        guarded_priority = priority;
        Starving(r, queue, cursors, priority, victim_rank, levels, share, bind, &held, &holding, &hold);
      }
      const int64_t rank = RankOf(priority, level, levels);
      using Entry = std::tuple<int64_t, std::string_view, uint32_t>;  // share, project name, lane
      std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
      for (uint32_t l = 0; l < lanes.size(); ++l) {
        const Project& pr = projects[lanes[l].project];
        heap.emplace(pr.share(), pr.name, l);
      }
      while (!heap.empty()) {
        if (r.CanStop(rank, victim_rank)) return r.Take();
        const uint32_t l = std::get<2>(heap.top());
        heap.pop();
        Lane& lane = lanes[l];
        Cursor& cur = cursors[lane.cursors[lane.next]];
        const JobQueue::Entry& e = cur.band->entry(cur.pos++);
        Decide(r, e, priority, level, rank, victim_rank, bind, held, hold, &p);
        while (lane.next < lane.cursors.size() &&
               cursors[lane.cursors[lane.next]].pos >= cursors[lane.cursors[lane.next]].band->size()) {
          ++lane.next;
        }
        if (lane.next < lane.cursors.size()) {
          const Project& pr = projects[lane.project];
          heap.emplace(pr.share(), pr.name, l);
        }
      }
    }
    return r.Take();
  }

 private:
  int64_t QueueOf(int64_t attained_gpu_ms) const {
    int64_t q = 0;
    for (int64_t t : options_.las_thresholds_gpu_ms) {
      if (attained_gpu_ms >= t) ++q;
    }
    return q;
  }

  // Preemption rank of a job of `priority` in LAS queue `level`: priority first, then LAS.
  static int64_t RankOf(int64_t priority, int64_t level, int64_t levels) {
    return priority * (levels + 1) + (levels - level);
  }
  static std::string Why(int64_t priority, int64_t level) {
    return "priority " + std::to_string(priority) + ", least attained service queue " + std::to_string(level);
  }

  // Bind, preempt (rank) or wait, for one job in the normal order.
  template <class BindFn>
  void Decide(Round& r, const JobQueue::Entry& e, int64_t priority, int64_t level, int64_t rank,
              std::span<const int64_t> victim_rank, const BindFn& bind, const std::string& held, Hold& hold,
              Placement* p) {
    const JobQueue::Handle i = e.handle;
    if (r.decided(i)) return;  // a starving job, decided first
    if (!r.Admit(e)) return;
    if (r.FindShape(e.shape(), p)) {
      if (!r.Reserved(i, p)) bind(i, *p);
      return;
    }
    // On the held nodes when expected to end (limit, else prediction) before the starving job could start.
    if (hold.shadow != kNever && e.known_runtime_s > 0 && r.now() + e.known_runtime_s * 1000 <= hold.shadow) {
      const uint64_t v = r.state().alloc_version() + 1;
      if (hold.inside_no_fit[e.shape()] != v) {
        for (int n : hold.nodes) r.state().Unblock(n);
        const bool found = r.FindShape(e.shape(), p);
        if (found && !r.Reserved(i, p)) bind(i, *p);
        for (int n : hold.nodes) r.state().Block(n);
        if (found) return;
        hold.inside_no_fit[e.shape()] = v;
      }
    }
    if (r.preemption_allowed() &&
        r.TryPreempt(i, rank, victim_rank, [priority, level] { return Why(priority, level); })) {
      return;
    }
    r.PendingNoFit(i, held);
  }

  // The earliest time `shape` is expected to fit as running jobs end (started_at + runtime limit, else +
  // prediction), and the nodes it would use then. False when that needs a job whose end is not known.
  static bool Reserve(Round& r, const JobRequest& shape, const std::vector<int>& classes, UnixMillis* shadow,
                      std::vector<int>* nodes) {
    const UnixMillis now = r.now();
    const auto& running = r.cluster().running;
    std::vector<std::pair<UnixMillis, uint32_t>> ends;
    for (uint32_t i = 0; i < running.size(); ++i) {
      const RunningJob& rj = running[i];
      const int64_t rt = rj.runtime_limit_s > 0 ? rj.runtime_limit_s : rj.predicted_runtime_s;
      if (rt > 0) ends.emplace_back(std::max(now, rj.started_at + rt * 1000), i);
    }
    if (ends.empty()) return false;
    std::sort(ends.begin(), ends.end());
    ClusterState sim = r.state();
    Placement p;
    for (const auto& [end, i] : ends) {
      for (const GpuShare& sh : running[i].shares) {
        const int g = r.state().FindGpu(r.state().FindNode(sh.node), sh.gpu_uuid);
        if (g >= 0) sim.Release(g, sh.milli, sh.memory_mib);
      }
      if (FindPlacement(sim, shape, classes, r.kind(), {}, &p)) {
        *shadow = end;
        *nodes = PlacementNodes(sim, p);
        return true;
      }
    }
    return false;
  }

  // Whether cursor a's next job goes before cursor b's in the guard: the project with the lower share,
  // then the older job.
  template <class Cursors, class ShareFn>
  bool Before(const Cursors& cursors, const std::vector<size_t>& pos, const ShareFn& share, uint32_t a,
              uint32_t b) const {
    const int64_t sa = share(cursors[a].project), sb = share(cursors[b].project);
    if (sa != sb) return sa < sb;
    const JobQueue::Entry& ea = cursors[a].band->entry(pos[a]);
    const JobQueue::Entry& eb = cursors[b].band->entry(pos[b]);
    if (ea.submitted_at != eb.submitted_at) return ea.submitted_at < eb.submitted_at;
    return a < b;
  }

  // Up to max_reservations (at least 1) starving jobs (never ran, submitted at least
  // starvation_after_ms and starvation_mean_age_multiple x the queue's mean age ago), those of the
  // project holding the fewest GPUs first, then oldest first:
  // each binds if it fits, else preempts as its LAS queue allows, else holds nodes until they drain: those
  // where it is expected to fit first when running jobs' ends are known (limit, else prediction), and then
  // jobs expected to end before that time may still start there (`hold`); else the nodes closest to fitting
  // it, and nothing else starts there.
  // Only jobs of `priority` are looked at; `holding` counts the starving jobs of the round so far.
  template <class Cursors, class ShareFn, class BindFn>
  void Starving(Round& r, const JobQueue& queue, const Cursors& cursors, int64_t priority,
                std::span<const int64_t> victim_rank, int64_t levels, const ShareFn& share, const BindFn& bind,
                std::string* held, int* holding_count, Hold* hold) const {
    const UnixMillis now = r.now();
    // Starving: waited starvation_after_ms and starvation_mean_age_multiple times the queue's mean age.
    int64_t after = options_.starvation_after_ms;
    if (options_.starvation_mean_age_multiple > 0 && !queue.empty()) {
      after = std::max<int64_t>(after, options_.starvation_mean_age_multiple * (now - queue.mean_submitted_at()));
    }
    const UnixMillis cutoff = now - after;  // submitted after this: not starving
    // Jobs that never ran are all in the LAS queue of no service: one band per project, in submit order.
    const int64_t fresh_level = QueueOf(0);
    std::vector<uint32_t> fresh;
    std::vector<size_t> pos(cursors.size(), 0);
    for (uint32_t c = 0; c < cursors.size(); ++c) {
      if (cursors[c].level == fresh_level && cursors[c].priority == priority) fresh.push_back(c);
    }
    if (fresh.empty()) return;
    int& holding = *holding_count;
    // Preempted jobs with little service share that queue; looking past many of them would make a
    // round's cost grow with the queue, so the guard looks at a bounded number.
    int skips = 0;
    constexpr int kMaxSkips = 256;
    Placement p;
    while (holding < std::max(options_.max_reservations, 1) && skips < kMaxSkips) {
      // The next starving job: of the project holding the fewest GPUs (weighted), oldest first.
      uint32_t best = 0;
      bool found = false;
      for (uint32_t c : fresh) {
        if (pos[c] >= cursors[c].band->size() || cursors[c].band->entry(pos[c]).submitted_at > cutoff) continue;
        if (!found || Before(cursors, pos, share, c, best)) best = c;
        found = true;
      }
      if (!found) break;
      const JobQueue::Entry& e = cursors[best].band->entry(pos[best]++);
      const JobQueue::Handle i = e.handle;
      const JobRequest& job = queue.job(i);
      // Only jobs that never ran: a preempted job competes by its attained service, as in las (guarding
      // it too would let it preempt, or hold nodes, and be preempted again once it runs).
      if (job.attained_gpu_ms > 0) {
        ++skips;
        continue;
      }
      if (!r.Admit(e)) continue;
      ++holding;
      if (r.FindShape(e.shape(), &p)) {
        if (!r.Reserved(i, &p)) bind(i, p);
        continue;
      }
      const int64_t rank = RankOf(priority, QueueOf(job.attained_gpu_ms), levels);
      if (r.preemption_allowed() &&
          r.TryPreempt(i, rank, victim_rank, [] { return std::string("a starving job"); })) {
        continue;
      }
      // A job of one GPU (or less) goes first, so it starts on the next GPU that frees: no node needs
      // holding. A larger one holds the nodes closest to fitting it among those with a free GPU (a
      // node with none would sit held for nothing).
      const JobRequest& shape = queue.shape_request(e.shape());
      std::vector<int> nodes;
      UnixMillis shadow = kNever;
      if (options_.max_reservations > 0 && !IsFraction(shape) && shape.gpus * shape.nodes > 1) {
        const std::vector<int>& classes = r.ShapeClasses(e.shape());
        if (!Reserve(r, shape, classes, &shadow, &nodes)) {
          nodes = ClosestNodes(r.state(), shape, classes);
          std::erase_if(nodes, [&](int n) {
            return std::none_of(classes.begin(), classes.end(), [&](int c) { return r.state().WholeFree(n, c) > 0; });
          });
        }
      }
      if (nodes.empty()) {
        r.PendingNoFit(i, "; starving: first in line");
        continue;
      }
      std::string names;
      for (int n : nodes) {
        if (!names.empty()) names += ", ";
        names += r.state().node_view(n).name;
      }
      r.PendingNoFit(i, "; starving: first in line, holding " + names + " for it as GPUs free up");
      for (int n : nodes) r.state().Block(n);
      if (held->empty()) *held = "; " + names + " held for " + job.job_id;
      if (hold->nodes.empty()) {
        hold->shadow = shadow;
        hold->nodes = nodes;
      } else {
        hold->shadow = kNever;  // several jobs hold nodes: nothing runs on them
        hold->nodes.insert(hold->nodes.end(), nodes.begin(), nodes.end());
      }
    }
  }
};

}  // namespace

std::unique_ptr<Scheduler> MakeFairLasScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<FairLasScheduler>(options, kind);
}

}  // namespace fastgpu::sched
