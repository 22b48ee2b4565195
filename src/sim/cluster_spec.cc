#include "sim/cluster_spec.h"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace fastgpu::sim {
namespace {

constexpr MiB kDefaultGpuMemoryMiB = 16 * 1024;

bool ParsePositive(std::string_view s, int max, int* out) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < 1 || v > max) return false;
  *out = v;
  return true;
}

std::string Pad(int v, int width) {
  std::string s = std::to_string(v);
  if (static_cast<int>(s.size()) < width) s.insert(0, static_cast<size_t>(width) - s.size(), '0');
  return s;
}

}  // namespace

std::string ClusterSpec::Describe() const {
  return std::to_string(nodes) + " nodes x " + std::to_string(gpus_per_node) + " " + gpu_type + " = " +
         std::to_string(total_gpus()) + " GPUs";
}

std::string ClusterSpec::ToSpec() const {
  return std::to_string(nodes) + "x" + std::to_string(gpus_per_node) + "x" + gpu_type;
}

Result<ClusterSpec> ParseClusterSpec(std::string_view spec) {
  const std::string usage = "cluster '" + std::string(spec) +
                            "' is not NODESxGPUSxTYPE (for example " + std::string(kDefaultClusterSpec) + ")";
  size_t x1 = spec.find('x');
  if (x1 == std::string_view::npos) return InvalidArgument(usage);
  size_t x2 = spec.find('x', x1 + 1);
  if (x2 == std::string_view::npos) return InvalidArgument(usage);
  ClusterSpec c;
  if (!ParsePositive(spec.substr(0, x1), 100000, &c.nodes)) {
    return InvalidArgument(usage + ": node count '" + std::string(spec.substr(0, x1)) + "' must be 1..100000");
  }
  std::string_view g = spec.substr(x1 + 1, x2 - x1 - 1);
  if (!ParsePositive(g, 64, &c.gpus_per_node)) {
    return InvalidArgument(usage + ": GPUs per node '" + std::string(g) + "' must be 1..64");
  }
  std::string_view type = spec.substr(x2 + 1);
  if (type.empty()) return InvalidArgument(usage + ": GPU type is empty");
  for (char ch : type) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' && ch != '.') {
      return InvalidArgument(usage + ": GPU type '" + std::string(type) + "' has a character other than letters, digits, '-', '_', '.'");
    }
  }
  c.gpu_type = std::string(type);
  c.gpu_memory_mib = kDefaultGpuMemoryMiB;
  size_t dash = type.rfind('-');
  if (dash != std::string_view::npos && type.size() > dash + 3 && type.substr(type.size() - 2) == "GB") {
    int gb = 0;
    if (ParsePositive(type.substr(dash + 1, type.size() - dash - 3), 100000, &gb)) c.gpu_memory_mib = MiB{gb} * 1024;
  }
  return c;
}

sched::ClusterSnapshot BuildEmptySnapshot(const ClusterSpec& spec, UnixMillis now) {
  sched::ClusterSnapshot snap;
  snap.now = now;
  snap.nodes.reserve(static_cast<size_t>(spec.nodes));
  const int width = spec.nodes > 1000 ? 5 : 3;
  for (int n = 0; n < spec.nodes; ++n) {
    sched::NodeView node;
    node.name = "node-" + Pad(n, width);
    node.gpus.reserve(static_cast<size_t>(spec.gpus_per_node));
    for (int i = 0; i < spec.gpus_per_node; ++i) {
      sched::GpuView gpu;
      gpu.uuid = "SIM-" + Pad(n, width) + "-" + std::to_string(i);
      gpu.index = i;
      gpu.type = spec.gpu_type;
      gpu.memory_mib = spec.gpu_memory_mib;
      gpu.free_milli = kMilliPerGpu;
      gpu.free_memory_mib = spec.gpu_memory_mib;
      gpu.nvlink_group = 0;
      node.gpus.push_back(std::move(gpu));
    }
    snap.nodes.push_back(std::move(node));
  }
  return snap;
}

}  // namespace fastgpu::sim
