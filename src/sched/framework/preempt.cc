#include "sched/framework/preempt.h"

#include <algorithm>
#include <tuple>

#include "sched/framework/placement.h"

namespace fastgpu::sched {

RunningIndex::RunningIndex(const ClusterState& state) {
  const auto& running = state.snapshot().running;
  const size_t num_nodes = static_cast<size_t>(state.num_nodes());
  total_.assign(running.size(), 0);
  share_begin_.reserve(running.size() + 1);
  std::vector<int> share_node;  // node of each share in shares_
  const std::string* last_name = nullptr;  // members of a job usually share a node
  int last_node = -1;
  for (size_t j = 0; j < running.size(); ++j) {
    share_begin_.push_back(static_cast<uint32_t>(shares_.size()));
    for (const GpuShare& sh : running[j].shares) {
      if (last_name == nullptr || !SameText(*last_name, sh.node)) {
        last_node = state.FindNode(sh.node);
        last_name = &sh.node;
      }
      const int n = last_node;
      int g = state.FindGpu(n, sh.gpu_uuid);
      if (g < 0) continue;
      shares_.push_back(Share{g, sh.milli, sh.memory_mib});
      share_node.push_back(n);
      total_[j] += sh.milli;
    }
  }
  share_begin_.push_back(static_cast<uint32_t>(shares_.size()));
  // Jobs per node, ascending and distinct: jobs come in ascending order, so remembering the last job
  // counted on each node is enough.
  std::vector<int> last_job(num_nodes, -1);
  node_begin_.assign(num_nodes + 1, 0);
  for (size_t j = 0; j < running.size(); ++j) {
    for (uint32_t k = share_begin_[j]; k < share_begin_[j + 1]; ++k) {
      const auto n = static_cast<size_t>(share_node[k]);
      if (last_job[n] == static_cast<int>(j)) continue;
      last_job[n] = static_cast<int>(j);
      ++node_begin_[n + 1];
    }
  }
  for (size_t n = 0; n < num_nodes; ++n) node_begin_[n + 1] += node_begin_[n];
  on_node_.resize(node_begin_[num_nodes]);
  std::vector<uint32_t> fill(node_begin_.begin(), node_begin_.end() - 1);
  std::fill(last_job.begin(), last_job.end(), -1);
  for (size_t j = 0; j < running.size(); ++j) {
    for (uint32_t k = share_begin_[j]; k < share_begin_[j + 1]; ++k) {
      const auto n = static_cast<size_t>(share_node[k]);
      if (last_job[n] == static_cast<int>(j)) continue;
      last_job[n] = static_cast<int>(j);
      on_node_[fill[n]++] = static_cast<int>(j);
    }
  }
}

namespace {

struct NodeSim {
  int first = 0;
  std::vector<MilliGpu> free;
  std::vector<MiB> mem;
};

bool ClassIn(std::span<const int> classes, int c) {
  return std::find(classes.begin(), classes.end(), c) != classes.end();
}

bool Fits(const ClusterState& s, const NodeSim& sim, const JobRequest& job, std::span<const int> classes) {
  int whole = 0;
  for (size_t i = 0; i < sim.free.size(); ++i) {
    const ClusterState::Gpu& g = s.gpu(sim.first + static_cast<int>(i));
    if (!g.usable || !ClassIn(classes, g.cls)) continue;
    if (IsFraction(job)) {
      if (sim.free[i] >= job.milli_per_gpu && sim.mem[i] >= job.memory_mib) return true;
    } else if (sim.free[i] == kMilliPerGpu && ++whole >= job.gpus) {
      return true;
    }
  }
  return false;
}

void Apply(const ClusterState& s, const RunningIndex& index, int job, int sign, NodeSim* sim) {
  for (const RunningIndex::Share& sh : index.shares(job)) {
    if (s.gpu(sh.gpu).node != s.gpu(sim->first).node) continue;
    size_t i = static_cast<size_t>(sh.gpu - sim->first);
    const MiB total = s.gpu(sh.gpu).total_mem;
    if (sign > 0) {
      sim->free[i] = std::min(kMilliPerGpu, sim->free[i] + sh.milli);
      sim->mem[i] = sim->free[i] == kMilliPerGpu ? total : std::min(total, sim->mem[i] + sh.mem);
    } else {
      const bool was_whole = sim->free[i] == kMilliPerGpu;
      sim->free[i] -= sh.milli;
      sim->mem[i] = was_whole ? total - sh.mem : sim->mem[i] - sh.mem;
    }
  }
}

struct NodeChoice {
  int node = 0;
  std::vector<int> victims;
  int64_t max_rank = 0;
  MilliGpu released = 0;
  auto Key() const { return std::make_tuple(victims.size(), max_rank, released, node); }
};

}  // namespace

bool FindVictims(const ClusterState& s, const RunningIndex& index, const JobRequest& job,
                 std::span<const int> classes, std::span<const char> eligible, std::span<const int64_t> rank,
                 std::vector<int>* victims, std::vector<int>* nodes) {
  victims->clear();
  nodes->clear();
  if (classes.empty()) return false;
  std::vector<NodeChoice> choices;
  NodeSim sim;
  std::vector<int> cands;
  for (int n = 0; n < s.num_nodes(); ++n) {
    const ClusterState::Node& node = s.node(n);
    if (!node.usable || node.blocked) continue;
    bool has_class = false;
    for (int c : classes) has_class = has_class || s.NodeClassGpus(n, c) > 0;
    if (!has_class) continue;
    cands.clear();
    for (int j : index.jobs_on(n)) {
      if (eligible[static_cast<size_t>(j)]) cands.push_back(j);
    }
    if (cands.empty() && job.nodes == 1) continue;
    sim.first = node.first_gpu;
    sim.free.resize(static_cast<size_t>(node.num_gpus));
    sim.mem.resize(static_cast<size_t>(node.num_gpus));
    for (int i = 0; i < node.num_gpus; ++i) {
      sim.free[static_cast<size_t>(i)] = s.gpu(node.first_gpu + i).free_milli;
      sim.mem[static_cast<size_t>(i)] = s.gpu(node.first_gpu + i).free_mem;
    }
    NodeChoice choice;
    choice.node = n;
    if (!Fits(s, sim, job, classes)) {
      auto on_node = [&](int j) {
        MilliGpu m = 0;
        for (const auto& sh : index.shares(j)) {
          if (s.gpu(sh.gpu).node == n) m += sh.milli;
        }
        return m;
      };
      std::sort(cands.begin(), cands.end(), [&](int a, int b) {
        const auto ka = std::make_tuple(rank[static_cast<size_t>(a)], on_node(a));
        const auto kb = std::make_tuple(rank[static_cast<size_t>(b)], on_node(b));
        if (ka != kb) return ka < kb;
        return s.snapshot().running[static_cast<size_t>(a)].job_id < s.snapshot().running[static_cast<size_t>(b)].job_id;
      });
      bool fits = false;
      for (int j : cands) {
        Apply(s, index, j, +1, &sim);
        choice.victims.push_back(j);
        if (Fits(s, sim, job, classes)) {
          fits = true;
          break;
        }
      }
      if (!fits) continue;
      // Drop victims that are not needed, latest added first (the last one is always needed).
      for (size_t i = choice.victims.size() - 1; i-- > 0;) {
        const int j = choice.victims[i];
        Apply(s, index, j, -1, &sim);
        if (Fits(s, sim, job, classes)) {
          choice.victims.erase(choice.victims.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
          Apply(s, index, j, +1, &sim);
        }
      }
      for (int j : choice.victims) {
        choice.max_rank = std::max(choice.max_rank, rank[static_cast<size_t>(j)]);
        choice.released += on_node(j);
      }
    }
    choices.push_back(std::move(choice));
  }
  if (static_cast<int>(choices.size()) < job.nodes) return false;
  std::sort(choices.begin(), choices.end(), [](const NodeChoice& a, const NodeChoice& b) { return a.Key() < b.Key(); });
  for (int i = 0; i < job.nodes; ++i) {
    const NodeChoice& c = choices[static_cast<size_t>(i)];
    nodes->push_back(c.node);
    for (int j : c.victims) {
      if (std::find(victims->begin(), victims->end(), j) == victims->end()) victims->push_back(j);
    }
  }
  if (victims->empty()) return false;  // it fits without preemption; nothing to do here
  std::sort(victims->begin(), victims->end());
  return true;
}

}  // namespace fastgpu::sched
