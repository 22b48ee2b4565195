// Scheduler model: an immutable cluster snapshot and a queue view in, decisions out.
// Pure data: no I/O, no clock reads. "now" is part of the snapshot.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"

namespace fastgpu::sched {

// A GPU whose free_milli is 1000 is fully free: its whole memory counts as free whatever
// free_memory_mib says.
struct GpuView {
  std::string uuid;          // stable id (NVML UUID or "SIM-...")
  int index = 0;             // index on the node (CUDA_VISIBLE_DEVICES)
  std::string type;          // "A100-80GB", "H100-80GB", ...
  MiB memory_mib = 0;        // total memory
  MilliGpu free_milli = kMilliPerGpu;  // unallocated share of this GPU
  MiB free_memory_mib = 0;   // unallocated memory
  bool healthy = true;
  int nvlink_group = -1;     // GPUs with the same group id share NVLink; -1 unknown
};

struct NodeView {
  std::string name;
  std::map<std::string, std::string> labels;
  bool healthy = true;
  bool draining = false;     // no new work
  std::vector<GpuView> gpus;
};

// One GPU's share held by a running job.
struct GpuShare {
  std::string node;
  std::string gpu_uuid;
  MilliGpu milli = kMilliPerGpu;
  MiB memory_mib = 0;
};

struct RunningJob {
  std::string job_id;
  std::string project;
  std::string user;
  int priority = 50;
  bool preemptible = false;
  UnixMillis started_at = 0;
  UnixMillis last_preempted_at = 0;  // 0 if never
  int64_t attained_gpu_ms = 0;       // GPU-time attained so far (LAS/Tiresias), in milli-GPU*ms/1000
  std::vector<GpuShare> shares;
  // Expected length, used by reservations (backfill) and completion estimates. 0 = unknown.
  int64_t runtime_limit_s = 0;
  int64_t predicted_runtime_s = 0;
  // A preemption was issued and the job has not released its GPUs yet. Such a job is never
  // chosen as a victim again, and no new preemptions are issued while any job is stopping.
  bool stopping = false;
};

// GPUs set aside for one project in a time window (`fastgpu reservation create`). Inside [start, end) up to
// `gpus` GPUs (of `gpu_type`, empty = any) run that project's jobs first: jobs of other projects may take them only
// when their runtime limit ends before `start`. Whole GPUs.
struct ReservationView {
  std::string id;
  std::string project;
  int gpus = 0;
  std::string gpu_type;
  UnixMillis start = 0;
  UnixMillis end = 0;
};

struct ClusterSnapshot {
  UnixMillis now = 0;
  std::vector<NodeView> nodes;
  std::vector<RunningJob> running;  // free_milli/free_memory_mib in GpuView already account for these
  std::vector<ReservationView> reservations;  // windows that have not ended
};

// What a queued job asks for.
struct JobRequest {
  std::string job_id;
  std::string name;
  std::string project;
  std::string user;
  int priority = 50;                 // 0..100, higher first
  UnixMillis submitted_at = 0;
  // Whole GPUs: gpus >= 1 and milli_per_gpu == 1000. Fraction: gpus == 1 and milli_per_gpu < 1000.
  int gpus = 1;                      // GPUs per node
  MilliGpu milli_per_gpu = kMilliPerGpu;
  MiB memory_mib = 0;                // GPU memory per GPU (0 = whole GPU's memory for whole GPUs, none reserved for fractions)
  std::string gpu_type;              // empty = any
  // Labels every node the job runs on must carry, each with that value (a node selector): e.g. containers=podman
  // for a container job. Empty = any node. Nodes' labels are NodeView::labels.
  std::map<std::string, std::string> node_labels;
  int nodes = 1;                     // gang: nodes x gpus, all-or-nothing
  int64_t runtime_limit_s = 0;       // 0 = none
  int64_t predicted_runtime_s = 0;   // 0 = unknown (filled by predictors, never an oracle)
  UnixMillis start_after = 0;        // time window (0 = none)
  UnixMillis finish_before = 0;
  std::string reservation;
  bool preemptible = false;
  int64_t attained_gpu_ms = 0;       // service received before (LAS after preemption)
  // GPU UUIDs the job should not get again when others fit (it was migrated off them): a preference of the
  // placement (Round::Bind), never a reason to wait.
  std::vector<std::string> avoid_gpus;
};

// Whether a node carrying `labels` satisfies a job's `required` labels (every key present with that value).
inline bool HasLabels(const std::map<std::string, std::string>& labels,
                      const std::map<std::string, std::string>& required) {
  for (const auto& [k, v] : required) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v) return false;
  }
  return true;
}

// "containers=podman, zone=b".
inline std::string FormatLabels(const std::map<std::string, std::string>& labels) {
  std::string s;
  for (const auto& [k, v] : labels) {
    if (!s.empty()) s += ", ";
    s += k;
    s += '=';
    s += v;
  }
  return s;
}

struct NodeAssignment {
  std::string node;
  std::vector<std::string> gpu_uuids;
  std::vector<int> gpu_indices;
};

struct Bind {
  std::string job_id;
  MilliGpu milli_per_gpu = kMilliPerGpu;
  MiB memory_mib_per_gpu = 0;
  std::vector<NodeAssignment> nodes;  // one entry per gang member node
};

struct Preempt {
  std::string job_id;
  std::string reason;  // "preempted by j-12 (priority 90)"
};

// A job left waiting or rejected, with a reason a user can read.
struct Pending {
  std::string job_id;
  std::string reason;       // "waiting: needs 8 GPUs of A100-80GB, largest free block is 4"
  bool never_fits = false;  // true when the job cannot run on this cluster even when empty
};

struct Decisions {
  std::vector<Bind> binds;
  std::vector<Preempt> preemptions;
  std::vector<Pending> pending;
  // Queued jobs with neither a Bind nor a Pending entry: waiting jobs left out by
  // SchedulerOptions::max_pending_reasons (always 0 without a limit).
  int64_t unreported = 0;
};

}  // namespace fastgpu::sched
