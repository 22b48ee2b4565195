// Simulated GPU fleet: behaves like NVML-discovered GPUs to everything above the backend interface.
//
// SPEC grammar (the value of --sim-gpus):
//   spec   := "none" | entry ("," entry)*
//   entry  := COUNT "x" TYPE            e.g. "4xA100-80GB", "2xH100-80GB,1xA10-24GB"
//   COUNT  := 1..64 (decimal)
//   TYPE   := MODEL "-" GB "GB"         MODEL: letters/digits (e.g. A100, RTX4090); GB: 1..1024
// Whitespace around entries is ignored; TYPE is upper-cased ("a100-80gb" -> "A100-80GB"). At most
// 256 GPUs in total. "none" yields an empty fleet, so callers may pass the flag through unchanged.
//
// Every simulated GPU is labelled simulated=true and named "<TYPE> (simulated)". UUIDs are
// "SIM-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", derived from the node name and the GPU index, and PCI
// bus ids are "00000000:<index+1 in hex>:00.0". Metrics are deterministic (a function of the GPU, its load
// and the number of samples taken so far; no randomness): idle GPUs report 0% utilisation, 0 MiB used,
// 30-38 C, the model's idle power, a 210 MHz SM clock and the "GPU idle" throttle reason. A GPU running
// work (SetLoad, or SetBusy for the whole GPU) rises with the share the jobs hold: at the whole GPU 90-99%
// utilisation, 75% of memory used (or what the jobs asked for, or the amount given to SetMemoryUsed),
// 65-78 C, ~85% of the model's board power and its boost clock; at a quarter GPU about a quarter of
// that above idle. SetHealthy(uuid, false) injects a fault: the GPU still appears in Discover()
// but Sample() reports healthy=false with a reason.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpu/backend.h"

namespace fastgpu::gpu {

struct SimGpuGroup {
  int count = 0;
  std::string type;  // "A100-80GB"
  std::string model;  // "A100"
  MiB memory_total_mib = 0;  // GB * 1024
};

// Parses a SPEC (grammar above). "none" -> empty list. Errors are kInvalidArgument, e.g.
// "bad --sim-gpus entry 'x': expected COUNTxTYPE such as 4xA100-80GB".
Result<std::vector<SimGpuGroup>> ParseSimGpuSpec(const std::string& spec);

class SimulatedBackend final : public GpuBackend {
 public:
  static Result<std::unique_ptr<SimulatedBackend>> Create(const std::string& spec,
                                                          const std::string& node_name);

  std::string Name() const override { return "simulated"; }
  Result<std::vector<GpuInfo>> Discover() override;
  Result<std::vector<GpuMetrics>> Sample() override;

  // Marks a GPU as running work on the whole GPU (or idle again) so its metrics look like it. Unknown UUIDs
  // are ignored.
  void SetBusy(const std::string& uuid, bool busy);
  // The work on every GPU (GPUs not named become idle): their readings follow the share held.
  void SetLoad(const std::vector<GpuLoad>& loads) override;
  // Memory a busy GPU reports as used (clamped to 0..total); a negative value restores the default.
  void SetMemoryUsed(const std::string& uuid, MiB used_mib);
  // Fault injection: an unhealthy GPU reports healthy=false from Sample(). Unknown UUIDs are ignored.
  void SetHealthy(const std::string& uuid, bool healthy);
  // True when `uuid` belongs to this fleet.
  bool Contains(const std::string& uuid) const;

 private:
  struct SimGpu {
    GpuInfo info;
    std::string model;
    uint64_t seed = 0;
    int load_milli = 0;      // 0 = idle, 1000 = the whole GPU
    MiB load_memory_mib = 0;  // memory the jobs asked for (0 = a share of the total)
    bool healthy = true;
    MiB memory_used_override = -1;
  };
  struct Token {
    explicit Token() = default;
  };

 public:
  SimulatedBackend(Token, std::vector<SimGpu> gpus);  // use Create()

 private:
  SimGpu* Find(const std::string& uuid);

  mutable std::mutex mu_;
  std::vector<SimGpu> gpus_;
  uint64_t samples_ = 0;  // number of Sample() calls so far; varies busy readings slightly
};

}  // namespace fastgpu::gpu
