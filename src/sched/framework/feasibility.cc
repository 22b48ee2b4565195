#include "sched/framework/feasibility.h"

#include <algorithm>

#include "sched/framework/placement.h"

namespace fastgpu::sched {
namespace {

std::string Plural(int n, std::string_view one, std::string_view many) {
  std::string s = std::to_string(n);
  s += ' ';
  s += n == 1 ? one : many;
  return s;
}

// " of type A100-80GB with at least 40960 MiB" (parts omitted when unconstrained).
std::string Qualifier(const JobRequest& job, bool with_memory) {
  std::string s;
  if (!job.gpu_type.empty()) {
    s += " of type ";
    s += job.gpu_type;
  }
  if (with_memory && job.memory_mib > 0) {
    s += " with at least ";
    s += std::to_string(job.memory_mib);
    s += " MiB";
  }
  if (!job.node_labels.empty()) {
    s += " (nodes labelled ";
    s += FormatLabels(job.node_labels);
    s += ")";
  }
  return s;
}

}  // namespace

std::string DescribeRequest(const JobRequest& job) {
  std::string s;
  if (job.nodes > 1) {
    s += std::to_string(job.nodes);
    s += " nodes x ";
  }
  if (IsFraction(job)) {
    s += FormatMilliGpu(job.milli_per_gpu);
    s += " GPU";
    if (job.memory_mib > 0) {
      s += " with ";
      s += std::to_string(job.memory_mib);
      s += " MiB";
    }
    if (!job.gpu_type.empty()) {
      s += " of type ";
      s += job.gpu_type;
    }
    if (!job.node_labels.empty()) {
      s += " (nodes labelled ";
      s += FormatLabels(job.node_labels);
      s += ")";
    }
  } else {
    s += Plural(job.gpus, "GPU", "GPUs");
    s += Qualifier(job, true);
  }
  return s;
}

Capacity::Capacity(const ClusterSnapshot& cluster) : num_nodes_(cluster.nodes.size()) {
  // One pass; consecutive GPUs are almost always of the class just seen, consecutive nodes of the label set.
  std::vector<int> cls_of;
  int set = 0;
  for (const NodeView& n : cluster.nodes) {
    if (label_sets_.empty()) {
      label_sets_.push_back(n.labels);
    } else if (label_sets_[static_cast<size_t>(set)] != n.labels) {
      auto it = std::find(label_sets_.begin(), label_sets_.end(), n.labels);
      set = static_cast<int>(it - label_sets_.begin());
      if (it == label_sets_.end()) label_sets_.push_back(n.labels);
    }
    auto other = [&](const Cls& c, const GpuView& g) {
      return c.memory_mib != g.memory_mib || c.label_set != set || c.type != g.type;
    };
    for (const GpuView& g : n.gpus) {
      size_t c = cls_of.empty() ? 0 : static_cast<size_t>(cls_of.back());
      if (c >= classes_.size() || other(classes_[c], g)) {
        c = 0;
        while (c < classes_.size() && other(classes_[c], g)) ++c;
        if (c == classes_.size()) {
          classes_.push_back(Cls{g.type, g.memory_mib, set});
          types_.push_back(g.type);
        }
      }
      cls_of.push_back(static_cast<int>(c));
    }
  }
  std::sort(types_.begin(), types_.end());
  types_.erase(std::unique(types_.begin(), types_.end()), types_.end());
  counts_.assign(num_nodes_ * classes_.size(), 0);
  size_t k = 0;
  for (size_t ni = 0; ni < cluster.nodes.size(); ++ni) {
    for (size_t gi = 0; gi < cluster.nodes[ni].gpus.size(); ++gi) {
      ++counts_[ni * classes_.size() + static_cast<size_t>(cls_of[k++])];
    }
  }
}

Capacity::Capacity(const ClusterState& state) : num_nodes_(static_cast<size_t>(state.num_nodes())) {
  const size_t nc = static_cast<size_t>(state.num_classes());
  classes_.reserve(nc);
  for (size_t c = 0; c < nc; ++c) {
    const ClusterState::GpuClass& k = state.gpu_class(static_cast<int>(c));
    classes_.push_back(Cls{k.type, k.memory_mib, k.label_set});
    types_.push_back(k.type);
  }
  for (int i = 0; i < state.num_label_sets(); ++i) label_sets_.push_back(state.label_set(i));
  std::sort(types_.begin(), types_.end());
  types_.erase(std::unique(types_.begin(), types_.end()), types_.end());
  counts_.assign(num_nodes_ * nc, 0);
  for (int g = 0; g < state.num_gpus(); ++g) {
    const ClusterState::Gpu& gpu = state.gpu(g);
    ++counts_[static_cast<size_t>(gpu.node) * nc + static_cast<size_t>(gpu.cls)];
  }
}

Status Capacity::Check(const JobRequest& job) const {
  if (std::string e = ShapeError(job); !e.empty()) return InvalidArgument(e);
  if (classes_.empty()) return Unschedulable("the cluster has no GPUs");
  if (!job.gpu_type.empty() && !std::binary_search(types_.begin(), types_.end(), job.gpu_type)) {
    std::string m = "no GPU of type '" + job.gpu_type + "' in the cluster (types: ";
    for (size_t i = 0; i < types_.size(); ++i) {
      if (i > 0) m += ", ";
      m += types_[i];
    }
    m += ")";
    return Unschedulable(m);
  }
  auto labelled = [&](const Cls& c) {
    return job.node_labels.empty() || HasLabels(label_sets_[static_cast<size_t>(c.label_set)], job.node_labels);
  };
  if (!job.node_labels.empty() && std::none_of(classes_.begin(), classes_.end(), [&](const Cls& c) {
        return (job.gpu_type.empty() || c.type == job.gpu_type) && labelled(c);
      })) {
    return Unschedulable("no node with GPUs" + (job.gpu_type.empty() ? std::string() : " of type " + job.gpu_type) +
                         " has the labels " + FormatLabels(job.node_labels));
  }
  std::vector<size_t> match;
  MiB largest_mem = 0;
  for (size_t c = 0; c < classes_.size(); ++c) {
    if (!job.gpu_type.empty() && classes_[c].type != job.gpu_type) continue;
    if (!labelled(classes_[c])) continue;
    largest_mem = std::max(largest_mem, classes_[c].memory_mib);
    if (classes_[c].memory_mib >= job.memory_mib) match.push_back(c);
  }
  if (match.empty()) {
    return Unschedulable("needs a GPU" + Qualifier(job, false) + " with at least " + std::to_string(job.memory_mib) +
                         " MiB of memory; the largest has " + std::to_string(largest_mem) + " MiB");
  }
  const int need = IsFraction(job) ? 1 : job.gpus;
  int nodes_ok = 0;
  int largest = 0;
  size_t largest_cls = match.front();
  for (size_t n = 0; n < num_nodes_; ++n) {
    int best = 0;
    for (size_t c : match) {
      int cnt = counts_[n * classes_.size() + c];
      if (cnt > best) best = cnt;
      if (cnt > largest) {
        largest = cnt;
        largest_cls = c;
      }
    }
    if (best >= need) ++nodes_ok;
  }
  if (nodes_ok >= job.nodes) return Status::Ok();
  if (job.nodes == 1) {
    return Unschedulable("needs " + Plural(need, "GPU", "GPUs") + Qualifier(job, true) +
                         " on one node; the largest node has " + std::to_string(largest) + " " +
                         classes_[largest_cls].type);
  }
  return Unschedulable("needs " + Plural(job.nodes, "node", "nodes") + " with " + Plural(need, "GPU", "GPUs") +
                       Qualifier(job, true) + " each; the cluster has " + std::to_string(nodes_ok) +
                       (nodes_ok == 1 ? " such node" : " such nodes"));
}

std::string NoFitReason(const ClusterState& state, const JobRequest& job, const std::vector<int>& classes) {
  std::string s = "waiting: needs ";
  if (IsFraction(job)) {
    MilliGpu max_shared = 0;
    bool whole_free = false;
    for (int c : classes) {
      const auto& shared = state.Shared(c);
      if (!shared.empty()) max_shared = std::max(max_shared, shared.rbegin()->first);
      if (state.MaxWholeFree(c) > 0) whole_free = true;
    }
    s += DescribeRequest(job);
    if (job.nodes > 1) {
      s += " on distinct nodes; not enough nodes have such a share free";
    } else if (whole_free || max_shared >= job.milli_per_gpu) {
      s += "; no GPU with that share free also has the memory free";
    } else if (max_shared == 0) {
      s += "; every GPU" + Qualifier(job, false) + " is fully allocated";
    } else {
      s += "; the most free share on a GPU is " + FormatMilliGpu(max_shared);
    }
    return s;
  }
  if (job.nodes == 1) {
    int most = 0;
    for (int c : classes) most = std::max(most, state.MaxWholeFree(c));
    s += Plural(job.gpus, "GPU", "GPUs");
    s += Qualifier(job, true);
    s += " on one node; the most free on a node is ";
    s += std::to_string(most);
    return s;
  }
  int nodes_ok = 0;
  for (int c : classes) {
    for (int k = job.gpus; k <= state.gpu_class(c).max_per_node; ++k) nodes_ok += state.BucketCount(c, k);
  }
  s += Plural(job.nodes, "node", "nodes");
  s += " with ";
  s += Plural(job.gpus, "free GPU", "free GPUs");
  s += Qualifier(job, true);
  s += " each; ";
  s += Plural(nodes_ok, "node has", "nodes have");
  s += " that many free";
  return s;
}

}  // namespace fastgpu::sched
