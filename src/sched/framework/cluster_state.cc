#include "sched/framework/cluster_state.h"

#include <algorithm>
#include <bit>
#include <cassert>

#include "sched/framework/feasibility.h"

namespace fastgpu::sched {

int NodeBitset::FindFirst(int from) const {
  if (from < 0) from = 0;
  size_t w = static_cast<size_t>(from >> 6);
  if (w >= words_.size()) return -1;
  uint64_t bits = words_[w] & (~uint64_t{0} << (from & 63));
  while (true) {
    if (bits != 0) return static_cast<int>(w * 64 + static_cast<size_t>(std::countr_zero(bits)));
    if (++w >= words_.size()) return -1;
    bits = words_[w];
  }
}

int NodeBitset::FindLast(int from) const {
  if (from < 0 || words_.empty()) return -1;
  size_t w = static_cast<size_t>(from >> 6);
  if (w >= words_.size()) {
    w = words_.size() - 1;
    from = static_cast<int>(w * 64 + 63);
  }
  int shift = 63 - (from & 63);
  uint64_t bits = words_[w] & (~uint64_t{0} >> shift);
  while (true) {
    if (bits != 0) return static_cast<int>(w * 64 + 63 - static_cast<size_t>(std::countl_zero(bits)));
    if (w == 0) return -1;
    bits = words_[--w];
  }
}

ClusterState::ClusterState(const ClusterSnapshot& snapshot) : snapshot_(&snapshot) {
  // Classes in order of first appearance (deterministic).
  size_t total = 0;
  for (const NodeView& n : snapshot.nodes) total += n.gpus.size();
  gpus_.resize(total);
  nodes_.resize(snapshot.nodes.size());
  int last_cls = -1;  // consecutive GPUs are almost always of the same class
  int set = 0;        // label set of the node; consecutive nodes almost always share it
  size_t gi = 0;
  for (size_t ni = 0; ni < snapshot.nodes.size(); ++ni) {
    const NodeView& nv = snapshot.nodes[ni];
    Node& node = nodes_[ni];
    node.first_gpu = static_cast<int>(gi);
    node.num_gpus = static_cast<int>(nv.gpus.size());
    node.usable = nv.healthy && !nv.draining;
    if (label_sets_.empty()) {
      label_sets_.push_back(nv.labels);
    } else if (label_sets_[static_cast<size_t>(set)] != nv.labels) {
      auto it = std::find(label_sets_.begin(), label_sets_.end(), nv.labels);
      set = static_cast<int>(it - label_sets_.begin());
      if (it == label_sets_.end()) label_sets_.push_back(nv.labels);
    }
    for (const GpuView& gv : nv.gpus) {
      int cls = -1;
      if (last_cls >= 0 && classes_[static_cast<size_t>(last_cls)].memory_mib == gv.memory_mib &&
          classes_[static_cast<size_t>(last_cls)].label_set == set &&
          SameText(classes_[static_cast<size_t>(last_cls)].type, gv.type)) {
        cls = last_cls;
      } else {
        for (size_t c = 0; c < classes_.size(); ++c) {
          if (classes_[c].memory_mib == gv.memory_mib && classes_[c].label_set == set &&
              SameText(classes_[c].type, gv.type)) {
            cls = static_cast<int>(c);
            break;
          }
        }
      }
      if (cls < 0) {
        cls = static_cast<int>(classes_.size());
        classes_.push_back(GpuClass{gv.type, gv.memory_mib, 0, set});
      }
      last_cls = cls;
      Gpu& g = gpus_[gi++];
      g.node = static_cast<int>(ni);
      g.cls = cls;
      g.index = gv.index;
      g.nvlink = gv.nvlink_group;
      g.free_milli = std::clamp<MilliGpu>(gv.free_milli, 0, kMilliPerGpu);
      g.total_mem = gv.memory_mib;
      g.free_mem = g.free_milli == kMilliPerGpu ? gv.memory_mib : std::clamp<MiB>(gv.free_memory_mib, 0, gv.memory_mib);
      g.usable = node.usable && gv.healthy;
    }
  }
  const size_t nc = classes_.size();
  whole_free_.assign(nodes_.size() * nc, 0);
  class_gpus_.assign(nodes_.size() * nc, 0);
  for (const Gpu& g : gpus_) {
    if (!g.usable) continue;
    ++class_gpus_[Idx(g.node, g.cls)];
    Node& node = nodes_[static_cast<size_t>(g.node)];
    node.capacity_milli += kMilliPerGpu;
    node.free_milli += g.free_milli;
    ++total_usable_gpus_;
    if (g.free_milli == kMilliPerGpu) {
      ++whole_free_[Idx(g.node, g.cls)];
      ++free_whole_gpus_;
    } else if (g.free_milli > 0) {
      ++partly_free_gpus_;
    }
  }
  for (size_t n = 0; n < nodes_.size(); ++n) {
    for (size_t c = 0; c < nc; ++c) {
      classes_[c].max_per_node = std::max(classes_[c].max_per_node, class_gpus_[n * nc + c]);
    }
  }
  buckets_.resize(nc);
  shared_.resize(nc);
  for (size_t c = 0; c < nc; ++c) {
    Buckets& b = buckets_[c];
    b.sets.resize(static_cast<size_t>(classes_[c].max_per_node) + 1);
    for (NodeBitset& s : b.sets) s.Resize(static_cast<int>(nodes_.size()));
    b.count.assign(b.sets.size(), 0);
  }
  for (int n = 0; n < num_nodes(); ++n) {
    if (Indexed(n)) IndexNode(n);
  }
}

const GpuView& ClusterState::gpu_view(int g) const {
  const Gpu& gpu = gpus_[static_cast<size_t>(g)];
  const Node& node = nodes_[static_cast<size_t>(gpu.node)];
  return snapshot_->nodes[static_cast<size_t>(gpu.node)].gpus[static_cast<size_t>(g - node.first_gpu)];
}

void ClusterState::MatchClasses(std::string_view type, MiB min_memory, const std::map<std::string, std::string>& labels,
                                std::vector<int>* out) const {
  out->clear();
  for (size_t c = 0; c < classes_.size(); ++c) {
    if (!type.empty() && classes_[c].type != type) continue;
    if (classes_[c].memory_mib < min_memory) continue;
    if (!labels.empty() && !HasLabels(label_sets_[static_cast<size_t>(classes_[c].label_set)], labels)) continue;
    out->push_back(static_cast<int>(c));
  }
}

int ClusterState::MaxWholeFree(int cls) const {
  const Buckets& b = buckets_[static_cast<size_t>(cls)];
  for (size_t k = b.count.size(); k-- > 1;) {
    if (b.count[k] > 0) return static_cast<int>(k);
  }
  return 0;
}

int ClusterState::LargestWholeBlock() const {
  int most = 0;
  for (int v : whole_free_) most = std::max(most, v);
  return most;
}

void ClusterState::IndexNode(int n) {
  const size_t nc = classes_.size();
  for (size_t c = 0; c < nc; ++c) {
    if (class_gpus_[Idx(n, static_cast<int>(c))] == 0) continue;
    int k = whole_free_[Idx(n, static_cast<int>(c))];
    buckets_[c].sets[static_cast<size_t>(k)].Set(n);
    ++buckets_[c].count[static_cast<size_t>(k)];
  }
  const Node& node = nodes_[static_cast<size_t>(n)];
  for (int g = node.first_gpu; g < node.first_gpu + node.num_gpus; ++g) {
    const Gpu& gpu = gpus_[static_cast<size_t>(g)];
    if (gpu.usable && gpu.free_milli > 0 && gpu.free_milli < kMilliPerGpu) {
      shared_[static_cast<size_t>(gpu.cls)].emplace(gpu.free_milli, g);
    }
  }
}

void ClusterState::UnindexNode(int n) {
  const size_t nc = classes_.size();
  for (size_t c = 0; c < nc; ++c) {
    if (class_gpus_[Idx(n, static_cast<int>(c))] == 0) continue;
    int k = whole_free_[Idx(n, static_cast<int>(c))];
    buckets_[c].sets[static_cast<size_t>(k)].Clear(n);
    --buckets_[c].count[static_cast<size_t>(k)];
  }
  const Node& node = nodes_[static_cast<size_t>(n)];
  for (int g = node.first_gpu; g < node.first_gpu + node.num_gpus; ++g) {
    const Gpu& gpu = gpus_[static_cast<size_t>(g)];
    if (gpu.usable && gpu.free_milli > 0 && gpu.free_milli < kMilliPerGpu) {
      shared_[static_cast<size_t>(gpu.cls)].erase({gpu.free_milli, g});
    }
  }
}

void ClusterState::Touch(int g, MilliGpu old_free) {
  Gpu& gpu = gpus_[static_cast<size_t>(g)];
  ++version_;
  ++alloc_version_;
  if (!gpu.usable) return;
  const bool was_whole = old_free == kMilliPerGpu;
  const bool is_whole = gpu.free_milli == kMilliPerGpu;
  const bool indexed = Indexed(gpu.node);
  partly_free_gpus_ += (gpu.free_milli > 0 && gpu.free_milli < kMilliPerGpu) - (old_free > 0 && old_free < kMilliPerGpu);
  nodes_[static_cast<size_t>(gpu.node)].free_milli += gpu.free_milli - old_free;
  if (was_whole != is_whole) {
    int& wf = whole_free_[Idx(gpu.node, gpu.cls)];
    Buckets& b = buckets_[static_cast<size_t>(gpu.cls)];
    if (indexed) {
      b.sets[static_cast<size_t>(wf)].Clear(gpu.node);
      --b.count[static_cast<size_t>(wf)];
    }
    wf += is_whole ? 1 : -1;
    free_whole_gpus_ += is_whole ? 1 : -1;
    if (indexed) {
      b.sets[static_cast<size_t>(wf)].Set(gpu.node);
      ++b.count[static_cast<size_t>(wf)];
    }
  }
  if (indexed) {
    auto& shared = shared_[static_cast<size_t>(gpu.cls)];
    if (old_free > 0 && old_free < kMilliPerGpu) shared.erase({old_free, g});
    if (gpu.free_milli > 0 && gpu.free_milli < kMilliPerGpu) shared.emplace(gpu.free_milli, g);
  }
}

void ClusterState::Allocate(int g, MilliGpu milli, MiB mem) {
  Gpu& gpu = gpus_[static_cast<size_t>(g)];
  assert(gpu.free_milli >= milli && gpu.free_mem >= mem);
  const MilliGpu old = gpu.free_milli;
  gpu.free_milli -= milli;
  gpu.free_mem -= mem;
  Touch(g, old);
}

void ClusterState::Release(int g, MilliGpu milli, MiB mem) {
  Gpu& gpu = gpus_[static_cast<size_t>(g)];
  const MilliGpu old = gpu.free_milli;
  gpu.free_milli = std::min(kMilliPerGpu, gpu.free_milli + milli);
  gpu.free_mem = gpu.free_milli == kMilliPerGpu ? gpu.total_mem : std::min(gpu.total_mem, gpu.free_mem + mem);
  Touch(g, old);
}

void ClusterState::Block(int n) {
  Node& node = nodes_[static_cast<size_t>(n)];
  if (node.blocked) return;
  if (Indexed(n)) UnindexNode(n);
  node.blocked = true;
  ++version_;
}

void ClusterState::Unblock(int n) {
  Node& node = nodes_[static_cast<size_t>(n)];
  if (!node.blocked) return;
  node.blocked = false;
  if (Indexed(n)) IndexNode(n);
  ++version_;
}

bool ClusterState::SameAs(const ClusterState& o) const {
  return snapshot_ == o.snapshot_ && nodes_ == o.nodes_ && gpus_ == o.gpus_ && classes_ == o.classes_ &&
         label_sets_ == o.label_sets_ &&
         whole_free_ == o.whole_free_ && class_gpus_ == o.class_gpus_ && buckets_ == o.buckets_ &&
         shared_ == o.shared_ && total_usable_gpus_ == o.total_usable_gpus_ &&
         free_whole_gpus_ == o.free_whole_gpus_ && partly_free_gpus_ == o.partly_free_gpus_;
}

const Capacity& ClusterState::capacity() const {
  if (!capacity_) capacity_ = std::make_shared<const Capacity>(*this);
  return *capacity_;
}

void ClusterState::BuildLookups() const {
  capacity();
  FindNode({});
}

int ClusterState::FindNode(std::string_view name) const {
  if (!node_by_name_) {
    // Built on first use: most rounds never look a node up by name.
    auto m = std::make_shared<std::unordered_map<std::string_view, int>>();
    m->reserve(nodes_.size());
    for (size_t ni = 0; ni < nodes_.size(); ++ni) m->emplace(snapshot_->nodes[ni].name, static_cast<int>(ni));
    node_by_name_ = std::move(m);
  }
  auto it = node_by_name_->find(name);
  return it == node_by_name_->end() ? -1 : it->second;
}

int ClusterState::FindGpu(int n, std::string_view uuid) const {
  if (n < 0) return -1;
  const Node& node = nodes_[static_cast<size_t>(n)];
  const NodeView& nv = snapshot_->nodes[static_cast<size_t>(n)];
  for (int i = 0; i < node.num_gpus; ++i) {
    if (SameText(nv.gpus[static_cast<size_t>(i)].uuid, uuid)) return node.first_gpu + i;
  }
  return -1;
}

}  // namespace fastgpu::sched
