// Simulated cluster shapes: "NODESxGPUSxTYPE", e.g. "64x8xV100-32GB" (64 nodes with 8 V100-32GB GPUs each).
#pragma once

#include <string>
#include <string_view>

#include "common/quantity.h"
#include "common/status.h"
#include "sched/model/model.h"

namespace fastgpu::sim {

// The default cluster for trace replays: 64 nodes x 8 GPUs = 512 GPUs. For the bundled Philly trace this is a
// single pool at about 0.8 offered load, where schedulers differ (see data/traces/README.md).
inline constexpr std::string_view kDefaultClusterSpec = "64x8xV100-32GB";

struct ClusterSpec {
  int nodes = 0;
  int gpus_per_node = 0;
  std::string gpu_type;    // "V100-32GB"
  MiB gpu_memory_mib = 0;  // from the type's "-<N>GB" suffix; 16 GiB when the type has none

  int total_gpus() const { return nodes * gpus_per_node; }
  // "64 nodes x 8 V100-32GB = 512 GPUs"
  std::string Describe() const;
  // "64x8xV100-32GB"
  std::string ToSpec() const;
};

// Parses "NODESxGPUSxTYPE". NODES in 1..100000, GPUS in 1..64, TYPE non-empty (letters, digits, '-', '_', '.').
Result<ClusterSpec> ParseClusterSpec(std::string_view spec);

// An empty cluster of this shape. Node names are "node-000", ...; GPU UUIDs "SIM-000-0", ... (node, index).
sched::ClusterSnapshot BuildEmptySnapshot(const ClusterSpec& spec, UnixMillis now);

}  // namespace fastgpu::sim
