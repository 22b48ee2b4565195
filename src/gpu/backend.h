// GPU discovery and metrics. Implementations: NVML (dlopen at run time) and simulated.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
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
  // Further readings (DCGM-exporter fields on /metrics, docs/monitoring.md). 0 where the GPU or the driver does
  // not report one (NVML_ERROR_NOT_SUPPORTED, or an older driver without the call).
  int memory_util_pct = 0;      // memory controller busy, 0..100 (DCGM_FI_DEV_MEM_COPY_UTIL)
  int sm_clock_mhz = 0;         // streaming multiprocessor clock (DCGM_FI_DEV_SM_CLOCK)
  int power_limit_mw = 0;       // enforced power limit
  int64_t energy_mj = 0;        // total energy since the driver loaded, millijoules
  int64_t ecc_corrected_volatile = 0;    // single-bit ECC errors since the driver loaded
  int64_t ecc_uncorrected_volatile = 0;  // double-bit ECC errors since the driver loaded
  int64_t ecc_corrected_aggregate = 0;   // over the GPU's lifetime
  int64_t ecc_uncorrected_aggregate = 0;
  int64_t remapped_rows_correctable = 0;    // rows remapped for correctable errors (A100 and later)
  int64_t remapped_rows_uncorrectable = 0;  // rows remapped for uncorrectable errors
  bool remap_pending = false;               // a remap waits for a GPU reset
  bool remap_failure = false;               // a remap failed: the GPU should be replaced
  uint64_t throttle_reasons = 0;  // NVML clocks throttle reasons bitmask (nvmlClocksThrottleReason*)
  int last_xid = 0;               // the most recent XID error seen on this GPU (0 = none)
  int64_t xid_count = 0;          // XID errors seen since the backend started
};

// NVML's clocks throttle reason bits (DCGM_FI_DEV_CLOCK_THROTTLE_REASONS), named for /metrics.
inline constexpr std::pair<uint64_t, const char*> kThrottleReasons[] = {
    {0x1, "gpu_idle"},        {0x2, "applications_clocks_setting"}, {0x4, "sw_power_cap"},
    {0x8, "hw_slowdown"},     {0x10, "sync_boost"},                  {0x20, "sw_thermal_slowdown"},
    {0x40, "hw_thermal_slowdown"}, {0x80, "hw_power_brake_slowdown"}, {0x100, "display_clocks_setting"},
};

// The work on one GPU, as the agent knows it: a simulated backend derives its readings from it (utilisation,
// memory, power and temperature rise with the share of the GPU the jobs on it hold); NVML ignores it.
struct GpuLoad {
  std::string uuid;
  int milli = 0;         // milli-GPU held by the jobs running on it (0 = idle; 1000 = the whole GPU)
  MiB memory_mib = 0;    // GPU memory the jobs asked for (0 = unknown: a share of the total is assumed)
};

class GpuBackend {
 public:
  virtual ~GpuBackend() = default;
  virtual std::string Name() const = 0;  // "nvml" or "simulated"
  virtual Result<std::vector<GpuInfo>> Discover() = 0;
  virtual Result<std::vector<GpuMetrics>> Sample() = 0;
  // The work running on each GPU now (GPUs not named are idle). Real backends ignore it.
  virtual void SetLoad(const std::vector<GpuLoad>& loads) { (void)loads; }
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
