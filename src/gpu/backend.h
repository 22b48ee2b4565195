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
  std::string health_reason;  // empty when healthy, else why (e.g. "NVML: GPU is lost")
};

class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  virtual std::string Name() const = 0;  // "nvml" or "simulated"
  virtual Result<std::vector<GpuInfo>> Discover() = 0;
  virtual Result<std::vector<GpuMetrics>> Sample() = 0;
};

// Loads libnvidia-ml.so.1 (or `library_path` when given) with dlopen at run time and initialises
// NVML. kUnavailable when the library is absent, lacks a required function, or NVML cannot start
// (e.g. driver not loaded); the message says which. The backend is thread-safe; destroying it shuts
// NVML down and unloads the library.
Result<std::unique_ptr<GpuBackend>> OpenNvmlBackend(const std::string& library_path = "");

// Parses a SPEC such as "4xA100-80GB" or "2xH100-80GB,1xA10-24GB" into a simulated fleet (see
// sim/sim_backend.h for the grammar). UUIDs and metrics are derived from `node_name` and the GPU
// index, so the same spec on the same node always yields the same fleet. The spec "none" yields an
// empty fleet (Discover returns no GPUs). Rejects bad syntax with kInvalidArgument and a message that
// names the entry and shows the expected form.
Result<std::unique_ptr<GpuBackend>> MakeSimulatedBackend(const std::string& spec, const std::string& node_name);

// Normalises a product name plus total memory to a short type "<MODEL>-<N>GB":
//  - MODEL: the product name upper-cased, vendor/brand words (NVIDIA, TESLA, GEFORCE, QUADRO) dropped,
//    the first remaining word cut at its first '-', keeping only letters and digits; "RTX"/"GTX"/"TITAN"
//    is joined with the word after it ("NVIDIA GeForce RTX 4090" -> "RTX4090").
//  - N: memory_total_mib in GB rounded up to the nearest marketed capacity (16, 24, 32, 40, 48, 80,
//    94, 141, ...) because drivers report a little less than the nominal size (an A10 reports
//    23028 MiB -> 24); when memory_total_mib is 0, a "<N>GB" word in the name is used instead, and
//    without either the type is just MODEL.
// Examples: ("NVIDIA A100-SXM4-80GB", 81920) -> "A100-80GB"; ("NVIDIA H100 80GB HBM3", 81559) ->
// "H100-80GB"; ("NVIDIA A10", 23028) -> "A10-24GB"; ("Tesla V100-SXM2-32GB", 32510) -> "V100-32GB".
std::string NormaliseGpuType(const std::string& product_name, MiB memory_total_mib);

}  // namespace fastgpu::gpu
