#include <algorithm>
#include <map>
#include <queue>
#include <string_view>
#include <tuple>

#include "sched/framework/queue_sort.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

class FairShareScheduler final : public Scheduler {
 public:
  FairShareScheduler(const SchedulerOptions& o, PlacementKind k) : options_(o), kind_(k) {}
  std::string Name() const override { return "fair-share/" + options_.placement; }

  Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) override {
    Round r(cluster, queue, options_, kind_);
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
      MilliGpu milli = 0;
      MiB mem = 0;
      int64_t weight = 1;
      std::vector<uint32_t> jobs;  // in priority order
      size_t next = 0;
    };
    std::map<std::string_view, Project> projects;
    for (const RunningJob& rj : cluster.running) {
      Project& p = projects[rj.project];
      for (const GpuShare& s : rj.shares) {
        p.milli += s.milli;
        p.mem += s.memory_mib;
      }
    }
    for (uint32_t i : PriorityOrder(queue, cluster.now, 0)) projects[queue[i].project].jobs.push_back(i);
    for (auto& [name, p] : projects) {
      auto it = options_.project_weights.find(std::string(name));
      if (it != options_.project_weights.end() && it->second > 0) p.weight = it->second;
    }
    // Weighted dominant share in parts per billion.
    auto share = [&](const Project& p) {
      const int64_t a = p.milli * 1'000'000'000 / total_milli;
      const int64_t b = p.mem * 1'000'000'000 / total_mem;
      return std::max(a, b) / p.weight;
    };
    using Entry = std::tuple<int64_t, std::string_view>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
    for (auto& [name, p] : projects) {
      if (!p.jobs.empty()) heap.emplace(share(p), name);
    }
    while (!heap.empty()) {
      if (r.CanStop()) break;
      auto [sh, name] = heap.top();
      heap.pop();
      Project& p = projects.find(name)->second;
      const uint32_t i = p.jobs[p.next++];
      if (r.Admit(i)) {
        Placement pl;
        if (r.Find(i, &pl)) {
          r.Bind(i, pl);
          const JobRequest& j = queue[i];
          const int64_t n = static_cast<int64_t>(pl.gpus.size());
          p.milli += j.milli_per_gpu * n;
          for (MiB m : pl.mem) p.mem += m;
        } else {
          r.PendingNoFit(i);
        }
      }
      if (p.next < p.jobs.size()) heap.emplace(share(p), name);
    }
    return r.Take();
  }

 private:
  SchedulerOptions options_;
  PlacementKind kind_;
};

}  // namespace

std::unique_ptr<Scheduler> MakeFairShareScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<FairShareScheduler>(options, kind);
}

}  // namespace fastgpu::sched
