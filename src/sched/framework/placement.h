// Filter, score and bind: finds GPUs for one job on a ClusterState.
//
// best-fit (consolidate): whole-GPU members go to the node with the fewest fully free GPUs that
//   still fits (lowest node index on ties); inside a node, GPUs come from one NVLink group when
//   possible, choosing the group with the fewest free GPUs that fits. Fractions go first onto an
//   already shared GPU with the least free share that fits, then onto a fully free GPU of the
//   fullest node.
// spread: whole-GPU members go to the node with the most fully free GPUs; fractions onto a fully
//   free GPU of the emptiest node, then the shared GPU with the most free share.
// Gang jobs (nodes > 1) place every member on a distinct node, all or nothing.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "sched/framework/cluster_state.h"
#include "sched/model/model.h"

namespace fastgpu::sched {

enum class PlacementKind { kBestFit, kSpread };

struct Placement {
  MilliGpu milli = kMilliPerGpu;     // per GPU
  std::vector<int> gpus;             // job.nodes * job.gpus entries, member by member
  std::vector<MiB> mem;              // memory taken on each GPU
  int members = 0;
  int gpus_per_member = 0;
};

// Validates the request shape; empty string when fine, otherwise a reason.
std::string ShapeError(const JobRequest& job);

// Minimum total memory a GPU must have for `job` (whole: memory_mib; fraction: memory_mib).
inline MiB MinGpuMemory(const JobRequest& job) { return job.memory_mib; }
inline bool IsFraction(const JobRequest& job) { return job.milli_per_gpu < kMilliPerGpu; }

// Finds a placement for `job` using GPUs of `classes` only (see ClusterState::MatchClasses),
// never on nodes listed in `exclude`. Does not change the state.
bool FindPlacement(const ClusterState& state, const JobRequest& job, std::span<const int> classes,
                   PlacementKind kind, std::span<const int> exclude, Placement* out);

// A job with avoid_gpus (migrated off them): when `p` uses one of them, replaces it with a placement of the same
// shape on none of them if one exists: on other nodes first, else (one-node jobs) other GPUs of the same node.
// Returns whether `p` changed. Does not change the state.
bool AvoidGpus(const ClusterState& state, const JobRequest& job, std::span<const int> classes, PlacementKind kind,
               Placement* p);

void Commit(ClusterState& state, const Placement& p);
void Undo(ClusterState& state, const Placement& p);
Bind MakeBind(const ClusterState& state, const JobRequest& job, const Placement& p);
// Distinct nodes a placement uses, in member order.
std::vector<int> PlacementNodes(const ClusterState& state, const Placement& p);

// Nodes that come closest to fitting whole-GPU `job` (most fully free GPUs of one of `classes` among
// nodes big enough), lowest index on ties; empty when too few nodes are big enough. A blocked job
// holds them (ClusterState::Block) so that they drain for it.
std::vector<int> ClosestNodes(const ClusterState& s, const JobRequest& job, const std::vector<int>& classes);

}  // namespace fastgpu::sched
