// GPU discovery and metrics. Implementations: NVML (dlopen at run time) and simulated.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/quantity.h"
#include "common/status.h"

namespace fastgpu::gpu {

struct GpuInfo {
  int index = 0;
  std::string uuid;          // "GPU-..." (NVML) or "SIM-..." (simulated)
  std::string name;          // product name, e.g. "NVIDIA A100-SXM4-80GB"
  std::string type;          // normalised short type, e.g. "A100-80GB"
  std::string pci_bus_id;    // "00000000:3B:00.0"
  MiB memory_total_mib = 0;
  bool simulated = false;
};

struct GpuMetrics {
  std::string uuid;
  MiB memory_used_mib = 0;
  int utilization_pct = 0;   // 0..100
  int temperature_c = 0;
  int power_mw = 0;          // milliwatts
  bool healthy = true;
};

class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  virtual std::string Name() const = 0;  // "nvml" or "simulated"
  virtual Result<std::vector<GpuInfo>> Discover() = 0;
  virtual Result<std::vector<GpuMetrics>> Sample() = 0;
};

// Loads libnvidia-ml.so.1 (or `library_path` when given) with dlopen. kUnavailable when absent.
Result<std::unique_ptr<GpuBackend>> OpenNvmlBackend(const std::string& library_path = "");

// Parses a SPEC such as "4xA100-80GB" or "2xH100-80GB,1xA10-24GB" into a simulated fleet.
// `seed` makes UUIDs and metrics deterministic. Rejects unknown syntax with an actionable message.
Result<std::unique_ptr<GpuBackend>> MakeSimulatedBackend(const std::string& spec, const std::string& node_name);

// Normalises an NVML product name ("NVIDIA A100-SXM4-80GB", 81920 MiB) to a short type ("A100-80GB").
std::string NormaliseGpuType(const std::string& product_name, MiB memory_total_mib);

}  // namespace fastgpu::gpu
