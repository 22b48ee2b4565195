// Whether a job could ever fit the cluster (every node counted, all GPUs free), and readable
// reasons for jobs that cannot start now.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "sched/framework/cluster_state.h"
#include "sched/model/model.h"

namespace fastgpu::sched {

// What a job asks for, without identity; points into the JobRequest it came from.
struct ShapeKey {
  std::string_view type;
  int gpus = 1;
  int nodes = 1;
  MilliGpu milli = kMilliPerGpu;
  MiB memory = 0;
  const std::map<std::string, std::string>* labels = nullptr;  // JobRequest::node_labels, compared by value

  static ShapeKey Of(const JobRequest& j) {
    return {j.gpu_type, j.gpus, j.nodes, j.milli_per_gpu, j.memory_mib, &j.node_labels};
  }
  bool operator==(const ShapeKey& o) const {
    return type == o.type && gpus == o.gpus && nodes == o.nodes && milli == o.milli && memory == o.memory &&
           (labels == o.labels || (labels != nullptr && o.labels != nullptr && *labels == *o.labels));
  }
};

struct ShapeKeyHash {
  size_t operator()(const ShapeKey& k) const {
    size_t h = std::hash<std::string_view>{}(k.type);
    auto mix = [&h](uint64_t v) { h ^= static_cast<size_t>(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
    mix(static_cast<uint64_t>(k.gpus));
    mix(static_cast<uint64_t>(k.nodes));
    mix(static_cast<uint64_t>(k.milli));
    mix(static_cast<uint64_t>(k.memory));
    if (k.labels != nullptr) mix(k.labels->size());
    return h;
  }
};

// Capacity of the cluster as if it were empty (all nodes, healthy or not).
class Capacity {
 public:
  explicit Capacity(const ClusterSnapshot& cluster);
  // The same, from the classes a ClusterState already found (no string comparisons).
  explicit Capacity(const ClusterState& state);
  Status Check(const JobRequest& job) const;

 private:
  struct Cls {
    std::string type;
    MiB memory_mib = 0;
    int label_set = 0;
  };
  std::vector<Cls> classes_;
  std::vector<std::map<std::string, std::string>> label_sets_;  // of the nodes, as ClusterState's
  std::vector<int> counts_;  // [node * classes + cls]
  std::vector<std::string> types_;  // sorted, unique
  size_t num_nodes_ = 0;
};

// "needs 4 GPUs of type A100-80GB on one node; the most free on a node is 2" for a job that
// fits the cluster but not its current free GPUs. `classes` are the job's matching classes.
std::string NoFitReason(const ClusterState& state, const JobRequest& job, const std::vector<int>& classes);

// "4 GPUs of type A100-80GB", "0.25 GPU with 8192 MiB", "2 nodes x 8 GPUs".
std::string DescribeRequest(const JobRequest& job);

}  // namespace fastgpu::sched
