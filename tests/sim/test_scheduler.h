// Small schedulers used only to test the simulator engine.
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "sched/scheduler.h"

namespace fastgpu::sim::testing {

// Places a job on the first nodes with enough whole free GPUs (gangs: `nodes` distinct nodes). Returns false
// when it does not fit. Updates `free` (free GPU indices per node).
inline bool FirstFit(const sched::JobRequest& job, const sched::ClusterSnapshot& snap,
                     std::vector<std::vector<int>>& free, sched::Bind* bind) {
  std::vector<size_t> chosen;
  for (size_t n = 0; n < free.size() && static_cast<int>(chosen.size()) < job.nodes; ++n) {
    if (static_cast<int>(free[n].size()) >= job.gpus) chosen.push_back(n);
  }
  if (static_cast<int>(chosen.size()) < job.nodes) return false;
  bind->job_id = job.job_id;
  bind->nodes.clear();
  for (size_t n : chosen) {
    sched::NodeAssignment a;
    a.node = snap.nodes[n].name;
    for (int k = 0; k < job.gpus; ++k) {
      const int idx = free[n].front();
      free[n].erase(free[n].begin());
      a.gpu_indices.push_back(idx);
      a.gpu_uuids.push_back(snap.nodes[n].gpus[static_cast<size_t>(idx)].uuid);
    }
    bind->nodes.push_back(std::move(a));
  }
  return true;
}

inline std::vector<std::vector<int>> FreeGpus(const sched::ClusterSnapshot& snap) {
  std::vector<std::vector<int>> free(snap.nodes.size());
  for (size_t n = 0; n < snap.nodes.size(); ++n) {
    for (const auto& g : snap.nodes[n].gpus) {
      if (g.free_milli == kMilliPerGpu) free[n].push_back(g.index);
    }
  }
  return free;
}

// Strict-order, non-preemptive: sorts by `less` (stable on queue order), stops at the first job that does not fit.
class OrderedScheduler : public sched::Scheduler {
 public:
  using Less = std::function<bool(const sched::JobRequest&, const sched::JobRequest&)>;
  OrderedScheduler(std::string name, Less less) : name_(std::move(name)), less_(std::move(less)) {}

  sched::Decisions Schedule(const sched::ClusterSnapshot& cluster, std::span<const sched::JobRequest> queue) override {
    ++calls;
    seen.emplace_back(queue.begin(), queue.end());
    std::vector<const sched::JobRequest*> order;
    for (const auto& j : queue) order.push_back(&j);
    std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) { return less_(*a, *b); });
    auto free = FreeGpus(cluster);
    sched::Decisions d;
    for (size_t i = 0; i < order.size(); ++i) {
      sched::Bind b;
      if (!FirstFit(*order[i], cluster, free, &b)) {
        for (size_t k = i; k < order.size(); ++k) d.pending.push_back({order[k]->job_id, "waiting for GPUs", false});
        break;
      }
      d.binds.push_back(std::move(b));
    }
    return d;
  }
  std::string Name() const override { return name_; }

  int calls = 0;
  std::vector<std::vector<sched::JobRequest>> seen;  // queue passed to each call

 private:
  std::string name_;
  Less less_;
};

inline std::unique_ptr<OrderedScheduler> MakeTestFifo() {
  return std::make_unique<OrderedScheduler>(
      "test-fifo", [](const sched::JobRequest& a, const sched::JobRequest& b) { return a.submitted_at < b.submitted_at; });
}

// Shortest predicted runtime first; unknown (0) estimates go last.
inline std::unique_ptr<OrderedScheduler> MakeTestSjf() {
  return std::make_unique<OrderedScheduler>("test-sjf", [](const sched::JobRequest& a, const sched::JobRequest& b) {
    auto key = [](const sched::JobRequest& j) {
      return j.predicted_runtime_s == 0 ? INT64_MAX : j.predicted_runtime_s;
    };
    return key(a) < key(b);
  });
}

// Preemptive least-attained-service: orders queued and running jobs by attained GPU-time (ties: submit time)
// and keeps the first ones that fit running; preempts running jobs that fall out of that set.
class TestLas : public sched::Scheduler {
 public:
  sched::Decisions Schedule(const sched::ClusterSnapshot& cluster, std::span<const sched::JobRequest> queue) override {
    struct Cand {
      int64_t attained;
      UnixMillis submitted;
      bool running;
      const sched::JobRequest* req;
      const sched::RunningJob* run;
    };
    std::vector<Cand> all;
    for (const auto& r : cluster.running) all.push_back({r.attained_gpu_ms, r.started_at, true, nullptr, &r});
    for (const auto& q : queue) all.push_back({q.attained_gpu_ms, q.submitted_at, false, &q, nullptr});
    std::stable_sort(all.begin(), all.end(), [](const Cand& a, const Cand& b) {
      if (a.attained != b.attained) return a.attained < b.attained;
      return a.running && !b.running;  // keep running jobs on ties
    });
    // Capacity count only (single-GPU jobs on one node in tests).
    int64_t capacity = 0;
    for (const auto& n : cluster.nodes) capacity += static_cast<int64_t>(n.gpus.size());
    sched::Decisions d;
    std::vector<const sched::JobRequest*> to_start;
    int64_t used = 0;
    for (const Cand& c : all) {
      const int64_t need = c.running ? static_cast<int64_t>(c.run->shares.size()) : c.req->gpus * c.req->nodes;
      if (used + need <= capacity) {
        used += need;
        if (!c.running) to_start.push_back(c.req);
      } else if (c.running) {
        d.preemptions.push_back({c.run->job_id, "lower priority under LAS"});
      }
    }
    // Free GPUs after preemptions.
    auto free = FreeGpus(cluster);
    for (const auto& p : d.preemptions) {
      for (const auto& r : cluster.running) {
        if (r.job_id != p.job_id) continue;
        for (const auto& s : r.shares) {
          for (size_t n = 0; n < cluster.nodes.size(); ++n) {
            if (cluster.nodes[n].name != s.node) continue;
            for (const auto& g : cluster.nodes[n].gpus) {
              if (g.uuid == s.gpu_uuid) free[n].push_back(g.index);
            }
            std::sort(free[n].begin(), free[n].end());
          }
        }
      }
    }
    for (const auto* q : to_start) {
      sched::Bind b;
      if (FirstFit(*q, cluster, free, &b)) d.binds.push_back(std::move(b));
    }
    return d;
  }
  std::string Name() const override { return "test-las"; }
};

// Returns fixed decisions on its first call, nothing afterwards.
class ScriptedScheduler : public sched::Scheduler {
 public:
  explicit ScriptedScheduler(sched::Decisions d) : d_(std::move(d)) {}
  sched::Decisions Schedule(const sched::ClusterSnapshot&, std::span<const sched::JobRequest>) override {
    if (used_) return {};
    used_ = true;
    return d_;
  }
  std::string Name() const override { return "scripted"; }

 private:
  sched::Decisions d_;
  bool used_ = false;
};

}  // namespace fastgpu::sim::testing
