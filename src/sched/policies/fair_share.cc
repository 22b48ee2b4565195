#include <algorithm>
#include <map>
#include <memory>
#include <queue>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "sched/framework/queue_walk.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

class FairShareScheduler final : public PolicyScheduler {
 public:
  using PolicyScheduler::PolicyScheduler;
  std::string Name() const override { return "fair-share/" + options_.placement; }
  // Runtime predictions only matter for deadlines here.
  bool UsesRuntimeEstimates() const override { return false; }

 protected:
  // The queue's groups are the projects, their bands -priority: a project's jobs are walked in
  // priority, then submit order.
  Decisions Run(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue) override {
    Round r(cluster, state, queue, options_, kind_);
    // Cluster totals over usable GPUs.
    MilliGpu total_milli = 0;
    MiB total_mem = 0;
    for (int g = 0; g < r.state().num_gpus(); ++g) {
      if (!r.state().gpu(g).usable) continue;
      total_milli += kMilliPerGpu;
      total_mem += r.state().gpu(g).total_mem;
    }
    total_milli = std::max<MilliGpu>(total_milli, 1);
    total_mem = std::max<MiB>(total_mem, 1);

    struct Project {
      std::string_view name;
      MilliGpu milli = 0;
      MiB mem = 0;
      int64_t weight = 1;
      int64_t share = 0;  // share(p), kept up to date
      std::unique_ptr<QueueWalk> walk;  // the project's queued jobs, in priority order
      JobQueue::Handle next = JobQueue::kNone;
    };
    // Projects of running and queued jobs (the heap below orders them by share, then name).
    std::vector<Project> projects;
    std::unordered_map<std::string_view, uint32_t> by_name;
    const auto project = [&](std::string_view name) {
      auto [it, inserted] = by_name.try_emplace(name, static_cast<uint32_t>(projects.size()));
      if (inserted) projects.emplace_back().name = name;
      return it->second;
    };
    uint32_t last = 0;  // running jobs of one project often come together
    for (const RunningJob& rj : cluster.running) {
      if (projects.empty() || !SameText(projects[last].name, rj.project)) last = project(rj.project);
      Project& p = projects[last];
      for (const GpuShare& s : rj.shares) {
        p.milli += s.milli;
        p.mem += s.memory_mib;
      }
    }
    const auto& bands = queue.bands();
    for (auto it = bands.begin(); it != bands.end();) {
      auto end = it;
      while (end != bands.end() && end->first.group == it->first.group) ++end;
      Project& p = projects[project(it->first.group)];
      p.walk = std::make_unique<QueueWalk>(queue, it, end);
      p.next = p.walk->Next();
      it = end;
    }
    if (!options_.project_weights.empty()) {
      for (Project& p : projects) {
        auto it = options_.project_weights.find(std::string(p.name));
        if (it != options_.project_weights.end() && it->second > 0) p.weight = it->second;
      }
    }
    // Weighted dominant share in parts per billion.
    auto share = [&](const Project& p) {
      const int64_t a = p.milli * 1'000'000'000 / total_milli;
      const int64_t b = p.mem * 1'000'000'000 / total_mem;
      return std::max(a, b) / p.weight;
    };
    // (share, name, index): names are distinct, so the index never decides.
    using Entry = std::tuple<int64_t, std::string_view, uint32_t>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
    for (uint32_t k = 0; k < projects.size(); ++k) {
      Project& p = projects[k];
      p.share = share(p);
      if (p.next != JobQueue::kNone) heap.emplace(p.share, p.name, k);
    }
    while (!heap.empty()) {
      if (r.CanStop()) break;
      const auto [sh, name, k] = heap.top();
      heap.pop();
      Project& p = projects[k];
      const JobQueue::Handle i = p.next;
      p.next = p.walk->Next();
      if (r.Admit(i)) {
        Placement pl;
        if (r.Find(i, &pl)) {
          if (r.Reserved(i, &pl)) {
            if (p.next != JobQueue::kNone) heap.emplace(p.share, name, k);
            continue;
          }
          r.Bind(i, pl);
          const JobRequest& j = queue.job(i);
          const int64_t n = static_cast<int64_t>(pl.gpus.size());
          p.milli += j.milli_per_gpu * n;
          for (MiB m : pl.mem) p.mem += m;
          p.share = share(p);
        } else {
          r.PendingNoFit(i);
        }
      }
      if (p.next != JobQueue::kNone) heap.emplace(p.share, name, k);
    }
    return r.Take();
  }
};

}  // namespace

std::unique_ptr<Scheduler> MakeFairShareScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<FairShareScheduler>(options, kind);
}

}  // namespace fastgpu::sched
