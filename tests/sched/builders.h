// Small builders for scheduler tests: clusters, running jobs and queued jobs.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "sched/model/model.h"
#include "sched/scheduler.h"

namespace fastgpu::sched::testing {

inline constexpr UnixMillis kNow = 1'700'000'000'000;
inline constexpr MiB k80G = 81920;

class ClusterBuilder {
 public:
  ClusterBuilder() { snap_.now = kNow; }
  ClusterBuilder& Now(UnixMillis t) {
    snap_.now = t;
    return *this;
  }
  // A node with `gpus` GPUs; GPUs [0, gpus/2) in NVLink group 0 and the rest in group 1 when
  // `two_groups`, else all in group 0.
  ClusterBuilder& Node(const std::string& name, int gpus, const std::string& type = "A100-80GB", MiB mem = k80G,
                       bool two_groups = false) {
    NodeView n;
    n.name = name;
    for (int i = 0; i < gpus; ++i) {
      GpuView g;
      g.uuid = name + "-GPU-" + std::to_string(i);
      g.index = i;
      g.type = type;
      g.memory_mib = mem;
      g.free_memory_mib = mem;
      g.nvlink_group = two_groups && i >= gpus / 2 ? 1 : 0;
      n.gpus.push_back(g);
    }
    snap_.nodes.push_back(std::move(n));
    return *this;
  }
  // Sets a label on a node added before.
  ClusterBuilder& Label(const std::string& node_name, const std::string& key, const std::string& value) {
    node(node_name).labels[key] = value;
    return *this;
  }
  NodeView& node(const std::string& name) {
    return *std::find_if(snap_.nodes.begin(), snap_.nodes.end(), [&](const NodeView& n) { return n.name == name; });
  }
  // Marks GPUs as used by a running job.
  ClusterBuilder& Run(const std::string& id, const std::string& node_name, std::vector<int> gpu_indices,
                      int priority = 50, bool preemptible = false, UnixMillis started_at = kNow - 3'600'000,
                      MilliGpu milli = kMilliPerGpu, MiB mem = 0, const std::string& project = "p") {
    RunningJob r;
    r.job_id = id;
    r.project = project;
    r.user = "u";
    r.priority = priority;
    r.preemptible = preemptible;
    r.started_at = started_at;
    NodeView& n = node(node_name);
    for (int i : gpu_indices) {
      GpuView& g = n.gpus[static_cast<size_t>(i)];
      const MiB take = milli == kMilliPerGpu ? g.memory_mib : mem;
      g.free_milli -= milli;
      g.free_memory_mib -= take;
      r.shares.push_back(GpuShare{n.name, g.uuid, milli, take});
    }
    snap_.running.push_back(std::move(r));
    return *this;
  }
  RunningJob& last_running() { return snap_.running.back(); }
  ClusterSnapshot Build() const { return snap_; }
  const ClusterSnapshot& snap() const { return snap_; }

 private:
  ClusterSnapshot snap_;
};

class JobBuilder {
 public:
  explicit JobBuilder(std::string id) {
    j_.job_id = std::move(id);
    j_.name = "train";
    j_.project = "p";
    j_.user = "u";
    j_.submitted_at = kNow - 1000;
  }
  JobBuilder& Gpus(int n) { j_.gpus = n; return *this; }
  JobBuilder& Fraction(MilliGpu m, MiB mem) { j_.gpus = 1; j_.milli_per_gpu = m; j_.memory_mib = mem; return *this; }
  JobBuilder& Type(std::string t) { j_.gpu_type = std::move(t); return *this; }
  JobBuilder& Memory(MiB m) { j_.memory_mib = m; return *this; }
  JobBuilder& Nodes(int n) { j_.nodes = n; return *this; }
  JobBuilder& Priority(int p) { j_.priority = p; return *this; }
  JobBuilder& Submitted(UnixMillis t) { j_.submitted_at = t; return *this; }
  JobBuilder& Project(std::string p) { j_.project = std::move(p); return *this; }
  JobBuilder& User(std::string u) { j_.user = std::move(u); return *this; }
  JobBuilder& Limit(int64_t s) { j_.runtime_limit_s = s; return *this; }
  JobBuilder& Predicted(int64_t s) { j_.predicted_runtime_s = s; return *this; }
  JobBuilder& StartAfter(UnixMillis t) { j_.start_after = t; return *this; }
  JobBuilder& FinishBefore(UnixMillis t) { j_.finish_before = t; return *this; }
  JobBuilder& Attained(int64_t gpu_ms) { j_.attained_gpu_ms = gpu_ms; return *this; }
  JobBuilder& Preemptible(bool p = true) { j_.preemptible = p; return *this; }
  JobBuilder& NodeLabel(const std::string& key, const std::string& value) { j_.node_labels[key] = value; return *this; }
  JobRequest Build() const { return j_; }
  operator JobRequest() const { return j_; }  // NOLINT: builder convenience

 private:
  JobRequest j_;
};

inline std::unique_ptr<Scheduler> Make(const std::string& policy, const std::string& placement = "best-fit") {
  auto s = MakeScheduler(policy, placement);
  return std::move(s).value();
}

inline const Bind* FindBind(const Decisions& d, const std::string& id) {
  for (const Bind& b : d.binds) {
    if (b.job_id == id) return &b;
  }
  return nullptr;
}
inline const Pending* FindPending(const Decisions& d, const std::string& id) {
  for (const Pending& p : d.pending) {
    if (p.job_id == id) return &p;
  }
  return nullptr;
}

}  // namespace fastgpu::sched::testing
