// Mutable working copy of a cluster snapshot for one scheduling round, with indexes that make
// placement queries cheap:
//  - GPUs are grouped into classes (type, total memory, the labels of their node), so that a job's type, memory and
//    node labels (JobRequest::node_labels) select whole classes;
//  - per class, nodes sit in buckets by their number of fully free GPUs of that class
//    (a bitset per bucket, so "the lowest-numbered node with exactly k free" is a word scan);
//  - per class, partly used GPUs are kept ordered by free milli-GPU (fractions best-fit).
// Unhealthy GPUs, unhealthy or draining nodes, and nodes held by a reservation are not indexed.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sched/model/model.h"

namespace fastgpu::sched {

class Capacity;  // feasibility.h

// Equality for the short names and ids a snapshot repeats ("node-07", "SIM-07-3", "V100-32GB"): up
// to 16 bytes are compared as two overlapping words, which beats a call to memcmp at these lengths.
inline bool SameText(std::string_view a, std::string_view b) {
  const size_t n = a.size();
  if (n != b.size()) return false;
  const char* x = a.data();
  const char* y = b.data();
  if (n >= 8) {
    if (n > 16) return a == b;
    uint64_t x0, y0, x1, y1;
    std::memcpy(&x0, x, 8);
    std::memcpy(&y0, y, 8);
    std::memcpy(&x1, x + n - 8, 8);
    std::memcpy(&y1, y + n - 8, 8);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  if (n >= 4) {
    uint32_t x0, y0, x1, y1;
    std::memcpy(&x0, x, 4);
    std::memcpy(&y0, y, 4);
    std::memcpy(&x1, x + n - 4, 4);
    std::memcpy(&y1, y + n - 4, 4);
    return ((x0 ^ y0) | (x1 ^ y1)) == 0;
  }
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return false;
  }
  return true;
}

class NodeBitset {
 public:
  void Resize(int n) { words_.assign(static_cast<size_t>((n + 63) / 64), 0); }
  void Set(int i) { words_[static_cast<size_t>(i >> 6)] |= uint64_t{1} << (i & 63); }
  void Clear(int i) { words_[static_cast<size_t>(i >> 6)] &= ~(uint64_t{1} << (i & 63)); }
  // Lowest set index >= from, or -1.
  int FindFirst(int from) const;
  // Highest set index <= from, or -1.
  int FindLast(int from) const;
  bool operator==(const NodeBitset&) const = default;

 private:
  std::vector<uint64_t> words_;
};

class ClusterState {
 public:
  struct Gpu {
    int node = 0;
    int cls = 0;
    int index = 0;
    int nvlink = -1;
    MilliGpu free_milli = 0;
    MiB free_mem = 0;
    MiB total_mem = 0;
    bool usable = false;  // healthy GPU on a healthy, non-draining node
    bool operator==(const Gpu&) const = default;
  };
  struct Node {
    int first_gpu = 0;
    int num_gpus = 0;
    bool usable = false;
    bool blocked = false;
    MilliGpu capacity_milli = 0;  // usable GPUs only
    MilliGpu free_milli = 0;
    bool operator==(const Node&) const = default;
  };
  struct GpuClass {
    std::string type;
    MiB memory_mib = 0;
    int max_per_node = 0;  // most usable GPUs of this class on one node
    int label_set = 0;     // the labels of its nodes: label_set(label_set)
    bool operator==(const GpuClass&) const = default;
  };

  explicit ClusterState(const ClusterSnapshot& snapshot);

  const ClusterSnapshot& snapshot() const { return *snapshot_; }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  int num_gpus() const { return static_cast<int>(gpus_.size()); }
  int num_classes() const { return static_cast<int>(classes_.size()); }
  const Node& node(int n) const { return nodes_[static_cast<size_t>(n)]; }
  const Gpu& gpu(int g) const { return gpus_[static_cast<size_t>(g)]; }
  const GpuClass& gpu_class(int c) const { return classes_[static_cast<size_t>(c)]; }
  const NodeView& node_view(int n) const { return snapshot_->nodes[static_cast<size_t>(n)]; }
  const GpuView& gpu_view(int g) const;
  // Bumped on every change; lets callers cache answers derived from the state.
  uint64_t version() const { return version_; }
  // Bumped on every allocation change only (not when nodes are held or released).
  uint64_t alloc_version() const { return alloc_version_; }

  // Distinct label sets of the nodes (index 0 is the first node's); GpuClass::label_set points here.
  int num_label_sets() const { return static_cast<int>(label_sets_.size()); }
  const std::map<std::string, std::string>& label_set(int i) const { return label_sets_[static_cast<size_t>(i)]; }

  // Classes matching a GPU type ("" = any) with at least `min_memory` total memory, on nodes carrying every label
  // of `labels` (JobRequest::node_labels).
  void MatchClasses(std::string_view type, MiB min_memory, const std::map<std::string, std::string>& labels,
                    std::vector<int>* out) const;

  int WholeFree(int node, int cls) const { return whole_free_[Idx(node, cls)]; }
  int NodeClassGpus(int node, int cls) const { return class_gpus_[Idx(node, cls)]; }
  // Largest number of fully free GPUs of `cls` on one indexed node (0 if none).
  int MaxWholeFree(int cls) const;
  int BucketCount(int cls, int k) const { return buckets_[static_cast<size_t>(cls)].count[static_cast<size_t>(k)]; }
  int FirstInBucket(int cls, int k, int from) const {
    return buckets_[static_cast<size_t>(cls)].sets[static_cast<size_t>(k)].FindFirst(from);
  }
  // Partly used, indexed GPUs of a class ordered by (free milli, gpu id).
  const std::set<std::pair<MilliGpu, int>>& Shared(int cls) const { return shared_[static_cast<size_t>(cls)]; }
  int64_t total_usable_gpus() const { return total_usable_gpus_; }
  int64_t free_whole_gpus() const { return free_whole_gpus_; }
  // Usable GPUs that are partly allocated (0 < free share < 1 GPU), on any node, held or not.
  int64_t partly_free_gpus() const { return partly_free_gpus_; }
  // Most fully free GPUs of one class on one usable node, held nodes included. O(nodes x classes).
  int LargestWholeBlock() const;

  // Takes (releases) `milli` and `mem` of a GPU. Whole-GPU holders pass 1000 and the GPU's memory.
  void Allocate(int gpu, MilliGpu milli, MiB mem);
  void Release(int gpu, MilliGpu milli, MiB mem);
  // Holds a node for a reservation: nothing new is placed on it until unblocked.
  void Block(int node);
  void Unblock(int node);

  // Whether `other` holds the same allocations, holds and indexes (version counters aside): a
  // caller-kept state (Scheduler::Schedule(const ClusterState&, ...)) must be SameAs a fresh one.
  bool SameAs(const ClusterState& other) const;

  // The cluster's capacity as if empty (see feasibility.h), built on first use.
  const Capacity& capacity() const;
  // Builds the node-name index and the capacity table now, so that copies share them instead of
  // building their own: for a state kept between rounds.
  void BuildLookups() const;

  // Node index by name / GPU index by node + UUID; -1 if unknown.
  int FindNode(std::string_view name) const;
  int FindGpu(int node, std::string_view uuid) const;

 private:
  struct Buckets {
    std::vector<NodeBitset> sets;  // by number of fully free GPUs
    std::vector<int> count;
    bool operator==(const Buckets&) const = default;
  };
  size_t Idx(int node, int cls) const { return static_cast<size_t>(node) * classes_.size() + static_cast<size_t>(cls); }
  bool Indexed(int node) const { return nodes_[static_cast<size_t>(node)].usable && !nodes_[static_cast<size_t>(node)].blocked; }
  void IndexNode(int node);
  void UnindexNode(int node);
  void Touch(int gpu, MilliGpu old_free);

  const ClusterSnapshot* snapshot_;
  std::vector<Node> nodes_;
  std::vector<Gpu> gpus_;
  std::vector<GpuClass> classes_;
  std::vector<std::map<std::string, std::string>> label_sets_;
  std::vector<int> whole_free_;   // [node * classes + cls]
  std::vector<int> class_gpus_;   // usable GPUs of the class on the node
  std::vector<Buckets> buckets_;  // per class
  std::vector<std::set<std::pair<MilliGpu, int>>> shared_;
  // Built on first use; copies share them (a caller-kept state builds them once, see BuildLookups).
  mutable std::shared_ptr<const std::unordered_map<std::string_view, int>> node_by_name_;
  mutable std::shared_ptr<const Capacity> capacity_;
  int64_t total_usable_gpus_ = 0;
  int64_t free_whole_gpus_ = 0;
  int64_t partly_free_gpus_ = 0;
  uint64_t version_ = 0;
  uint64_t alloc_version_ = 0;
};

}  // namespace fastgpu::sched
