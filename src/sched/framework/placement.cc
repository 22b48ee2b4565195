#include "sched/framework/placement.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace fastgpu::sched {
namespace {

bool Excluded(std::span<const int> exclude, int node) {
  return std::find(exclude.begin(), exclude.end(), node) != exclude.end();
}

int FirstAllowed(const ClusterState& s, int cls, int k, std::span<const int> exclude) {
  int n = s.FirstInBucket(cls, k, 0);
  while (n >= 0 && Excluded(exclude, n)) n = s.FirstInBucket(cls, k, n + 1);
  return n;
}

int MaxPerNode(const ClusterState& s, std::span<const int> classes) {
  int m = 0;
  for (int c : classes) m = std::max(m, s.gpu_class(c).max_per_node);
  return m;
}

// Finds the node (and class) for `g` whole GPUs; returns false if none.
bool PickWholeNode(const ClusterState& s, std::span<const int> classes, int g, PlacementKind kind,
                   std::span<const int> exclude, int* node, int* cls) {
  const int max_k = MaxPerNode(s, classes);
  if (g > max_k) return false;
  auto try_k = [&](int k) {
    for (int c : classes) {
      if (k > s.gpu_class(c).max_per_node || s.BucketCount(c, k) == 0) continue;
      int n = FirstAllowed(s, c, k, exclude);
      if (n >= 0) {
        *node = n;
        *cls = c;
        return true;
      }
    }
    return false;
  };
  if (kind == PlacementKind::kBestFit) {
    for (int k = g; k <= max_k; ++k) {
      if (try_k(k)) return true;
    }
  } else {
    for (int k = max_k; k >= g; --k) {
      if (try_k(k)) return true;
    }
  }
  return false;
}

// Chooses `g` fully free GPUs of `cls` on `node`, keeping them inside one NVLink group when possible.
void PickWholeGpus(const ClusterState& s, int node, int cls, int g, std::vector<int>* out) {
  const ClusterState::Node& nd = s.node(node);
  // (group, gpu) of free GPUs, in GPU order.
  std::vector<std::pair<int, int>> free;
  free.reserve(static_cast<size_t>(nd.num_gpus));
  for (int i = nd.first_gpu; i < nd.first_gpu + nd.num_gpus; ++i) {
    const ClusterState::Gpu& gpu = s.gpu(i);
    if (gpu.usable && gpu.cls == cls && gpu.free_milli == kMilliPerGpu) free.emplace_back(gpu.nvlink, i);
  }
  // Count per group.
  std::vector<std::pair<int, int>> groups;  // (group, count)
  for (const auto& [grp, gi] : free) {
    auto it = std::find_if(groups.begin(), groups.end(), [grp = grp](const auto& p) { return p.first == grp; });
    if (it == groups.end()) {
      groups.emplace_back(grp, 1);
    } else {
      ++it->second;
    }
  }
  int best_group = 0;
  int best_count = std::numeric_limits<int>::max();
  bool single = false;
  for (const auto& [grp, cnt] : groups) {
    if (cnt >= g && (cnt < best_count || (cnt == best_count && grp < best_group))) {
      best_group = grp;
      best_count = cnt;
      single = true;
    }
  }
  int taken = 0;
  if (single) {
    for (const auto& [grp, gi] : free) {
      if (grp == best_group && taken < g) {
        out->push_back(gi);
        ++taken;
      }
    }
    return;
  }
  std::sort(groups.begin(), groups.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  for (const auto& [grp, cnt] : groups) {
    for (const auto& [fg, gi] : free) {
      if (fg == grp && taken < g) {
        out->push_back(gi);
        ++taken;
      }
    }
  }
}

int FirstWholeGpu(const ClusterState& s, int node, int cls) {
  const ClusterState::Node& nd = s.node(node);
  for (int i = nd.first_gpu; i < nd.first_gpu + nd.num_gpus; ++i) {
    const ClusterState::Gpu& gpu = s.gpu(i);
    if (gpu.usable && gpu.cls == cls && gpu.free_milli == kMilliPerGpu) return i;
  }
  return -1;
}

int PickSharedGpu(const ClusterState& s, std::span<const int> classes, MilliGpu m, MiB mem, PlacementKind kind,
                  std::span<const int> exclude) {
  int best = -1;
  if (kind == PlacementKind::kBestFit) {
    MilliGpu best_free = std::numeric_limits<MilliGpu>::max();
    for (int c : classes) {
      const auto& shared = s.Shared(c);
      for (auto it = shared.lower_bound({m, -1}); it != shared.end(); ++it) {
        if (it->first >= best_free) break;
        const ClusterState::Gpu& gpu = s.gpu(it->second);
        if (gpu.free_mem < mem || Excluded(exclude, gpu.node)) continue;
        best = it->second;
        best_free = it->first;
        break;
      }
    }
  } else {
    MilliGpu best_free = -1;
    for (int c : classes) {
      const auto& shared = s.Shared(c);
      for (auto it = shared.rbegin(); it != shared.rend() && it->first >= m; ++it) {
        if (it->first <= best_free) break;
        const ClusterState::Gpu& gpu = s.gpu(it->second);
        if (gpu.free_mem < mem || Excluded(exclude, gpu.node)) continue;
        best = it->second;
        best_free = it->first;
        break;
      }
    }
  }
  return best;
}

// One fraction member: returns the GPU or -1.
int PickFractionGpu(const ClusterState& s, std::span<const int> classes, MilliGpu m, MiB mem, PlacementKind kind,
                    std::span<const int> exclude) {
  if (kind == PlacementKind::kBestFit) {
    int g = PickSharedGpu(s, classes, m, mem, kind, exclude);
    if (g >= 0) return g;
  }
  int node = -1;
  int cls = -1;
  if (PickWholeNode(s, classes, 1, kind, exclude, &node, &cls)) return FirstWholeGpu(s, node, cls);
  if (kind == PlacementKind::kSpread) return PickSharedGpu(s, classes, m, mem, kind, exclude);
  return -1;
}

}  // namespace

std::string ShapeError(const JobRequest& job) {
  if (job.gpus < 1) return "invalid request: gpus must be at least 1";
  if (job.nodes < 1) return "invalid request: nodes must be at least 1";
  if (job.milli_per_gpu <= 0 || job.milli_per_gpu > kMilliPerGpu) {
    return "invalid request: a GPU share must be between 0.001 and 1";
  }
  if (job.milli_per_gpu < kMilliPerGpu && job.gpus != 1) {
    return "invalid request: a fractional GPU share needs gpus=1";
  }
  if (job.memory_mib < 0) return "invalid request: memory must not be negative";
  return {};
}

bool FindPlacement(const ClusterState& state, const JobRequest& job, std::span<const int> classes,
                   PlacementKind kind, std::span<const int> exclude, Placement* out) {
  out->gpus.clear();
  out->mem.clear();
  out->milli = job.milli_per_gpu;
  out->members = job.nodes;
  out->gpus_per_member = job.gpus;
  if (classes.empty()) return false;
  std::vector<int> used;  // nodes excluded for the next gang member
  std::span<const int> ex = exclude;
  if (job.nodes > 1) {
    used.assign(exclude.begin(), exclude.end());
    used.reserve(used.size() + static_cast<size_t>(job.nodes));
  }
  for (int member = 0; member < job.nodes; ++member) {
    int node = -1;
    if (IsFraction(job)) {
      int g = PickFractionGpu(state, classes, job.milli_per_gpu, job.memory_mib, kind, ex);
      if (g < 0) return false;
      out->gpus.push_back(g);
      out->mem.push_back(job.memory_mib);
      node = state.gpu(g).node;
    } else {
      int cls = -1;
      if (!PickWholeNode(state, classes, job.gpus, kind, ex, &node, &cls)) return false;
      size_t before = out->gpus.size();
      PickWholeGpus(state, node, cls, job.gpus, &out->gpus);
      for (size_t i = before; i < out->gpus.size(); ++i) out->mem.push_back(state.gpu(out->gpus[i]).free_mem);
    }
    if (job.nodes > 1) {
      used.push_back(node);
      ex = used;
    }
  }
  return true;
}

bool AvoidGpus(const ClusterState& state, const JobRequest& job, std::span<const int> classes, PlacementKind kind,
               Placement* p) {
  if (job.avoid_gpus.empty() || p->gpus.empty()) return false;
  auto avoided = [&](int g) {
    return std::find(job.avoid_gpus.begin(), job.avoid_gpus.end(), state.gpu_view(g).uuid) != job.avoid_gpus.end();
  };
  if (std::none_of(p->gpus.begin(), p->gpus.end(), avoided)) return false;
  std::vector<int> nodes;  // nodes holding a GPU to avoid
  for (int g = 0; g < state.num_gpus(); ++g) {
    if (avoided(g) && std::find(nodes.begin(), nodes.end(), state.gpu(g).node) == nodes.end())
      nodes.push_back(state.gpu(g).node);
  }
  Placement alt;
  if (FindPlacement(state, job, classes, kind, nodes, &alt)) {
    *p = std::move(alt);
    return true;
  }
  if (job.nodes != 1) return false;
  for (int n : nodes) {
    const ClusterState::Node& node = state.node(n);
    if (!node.usable || node.blocked) continue;
    alt = Placement{.milli = job.milli_per_gpu, .gpus = {}, .mem = {}, .members = 1, .gpus_per_member = job.gpus};
    for (int g = node.first_gpu; g < node.first_gpu + node.num_gpus && static_cast<int>(alt.gpus.size()) < job.gpus;
         ++g) {
      const ClusterState::Gpu& gpu = state.gpu(g);
      if (!gpu.usable || avoided(g) || std::find(classes.begin(), classes.end(), gpu.cls) == classes.end()) continue;
      if (IsFraction(job) ? gpu.free_milli >= job.milli_per_gpu && gpu.free_mem >= job.memory_mib
                          : gpu.free_milli == kMilliPerGpu) {
        alt.gpus.push_back(g);
        alt.mem.push_back(IsFraction(job) ? job.memory_mib : gpu.free_mem);
      }
    }
    if (static_cast<int>(alt.gpus.size()) == job.gpus) {
      *p = std::move(alt);
      return true;
    }
  }
  return false;
}

void Commit(ClusterState& state, const Placement& p) {
  for (size_t i = 0; i < p.gpus.size(); ++i) state.Allocate(p.gpus[i], p.milli, p.mem[i]);
}

void Undo(ClusterState& state, const Placement& p) {
  for (size_t i = p.gpus.size(); i-- > 0;) state.Release(p.gpus[i], p.milli, p.mem[i]);
}

std::vector<int> PlacementNodes(const ClusterState& state, const Placement& p) {
  std::vector<int> nodes;
  for (int g : p.gpus) {
    int n = state.gpu(g).node;
    if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
  }
  return nodes;
}

Bind MakeBind(const ClusterState& state, const JobRequest& job, const Placement& p) {
  Bind b;
  b.job_id = job.job_id;
  b.milli_per_gpu = p.milli;
  if (IsFraction(job)) {
    b.memory_mib_per_gpu = job.memory_mib;
  } else {
    MiB m = std::numeric_limits<MiB>::max();
    for (int g : p.gpus) m = std::min(m, state.gpu(g).total_mem);
    b.memory_mib_per_gpu = p.gpus.empty() ? 0 : m;
  }
  b.nodes.reserve(static_cast<size_t>(p.members));
  size_t i = 0;
  for (int member = 0; member < p.members; ++member) {
    NodeAssignment a;
    const size_t per = static_cast<size_t>(p.gpus_per_member);
    a.gpu_uuids.reserve(per);
    a.gpu_indices.reserve(per);
    for (size_t j = 0; j < per && i < p.gpus.size(); ++j, ++i) {
      const int g = p.gpus[i];
      if (j == 0) a.node = state.node_view(state.gpu(g).node).name;
      a.gpu_uuids.push_back(state.gpu_view(g).uuid);
      a.gpu_indices.push_back(state.gpu(g).index);
    }
    b.nodes.push_back(std::move(a));
  }
  return b;
}

std::vector<int> ClosestNodes(const ClusterState& s, const JobRequest& job, const std::vector<int>& classes) {
  std::vector<int> out;
  int max_k = 0;
  for (int c : classes) max_k = std::max(max_k, s.gpu_class(c).max_per_node);
  for (int k = max_k; k >= 0 && static_cast<int>(out.size()) < job.nodes; --k) {
    for (int c : classes) {
      if (k > s.gpu_class(c).max_per_node || s.BucketCount(c, k) == 0) continue;
      for (int n = s.FirstInBucket(c, k, 0); n >= 0 && static_cast<int>(out.size()) < job.nodes;
           n = s.FirstInBucket(c, k, n + 1)) {
        if (s.NodeClassGpus(n, c) < job.gpus) continue;
        if (std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
      }
    }
  }
  if (static_cast<int>(out.size()) < job.nodes) out.clear();
  return out;
}

}  // namespace fastgpu::sched
