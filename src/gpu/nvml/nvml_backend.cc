// NVML backend: loads libnvidia-ml.so.1 with dlopen at run time, so the product builds and runs on
// machines without NVIDIA software. Only the handful of NVML types and functions used here are
// declared, following the documented NVML C ABI.
#include <dlfcn.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gpu/backend.h"

namespace fastgpu::gpu {
namespace {

// ---- NVML C ABI (subset) ----
using nvmlReturn_t = int;  // C enum; 0 is success
struct nvmlDevice_st;
using nvmlDevice_t = nvmlDevice_st*;

constexpr nvmlReturn_t kNvmlSuccess = 0;
constexpr nvmlReturn_t kNvmlErrorNoPermission = 4;
constexpr nvmlReturn_t kNvmlErrorNotSupported = 3;
constexpr nvmlReturn_t kNvmlErrorDriverNotLoaded = 9;
constexpr nvmlReturn_t kNvmlErrorGpuIsLost = 15;
constexpr int kNvmlTemperatureGpu = 0;
constexpr int kNvmlClockSm = 1;
constexpr int kNvmlMemoryErrorCorrected = 0;
constexpr int kNvmlMemoryErrorUncorrected = 1;
constexpr int kNvmlVolatileEcc = 0;
constexpr int kNvmlAggregateEcc = 1;
constexpr unsigned long long kNvmlEventTypeXidCriticalError = 0x8;
struct nvmlEventSet_st;
using nvmlEventSet_t = nvmlEventSet_st*;
struct NvmlEventData {
  nvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData;  // the XID for kNvmlEventTypeXidCriticalError
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
};
constexpr unsigned kNvmlNameBufferSize = 96;  // NVML_DEVICE_NAME_V2_BUFFER_SIZE
constexpr unsigned kNvmlUuidBufferSize = 96;  // NVML_DEVICE_UUID_V2_BUFFER_SIZE

struct NvmlPciInfo {
  char busIdLegacy[16];  // "0000:3B:00.0"
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];  // "00000000:3B:00.0"
};
static_assert(sizeof(NvmlPciInfo) == 68, "nvmlPciInfo_t layout");

struct NvmlMemory {  // bytes
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};

struct NvmlUtilization {  // percent over the last sample period
  unsigned int gpu;
  unsigned int memory;
};

struct NvmlApi {
  nvmlReturn_t (*init)() = nullptr;
  nvmlReturn_t (*shutdown)() = nullptr;
  const char* (*error_string)(nvmlReturn_t) = nullptr;
  nvmlReturn_t (*get_count)(unsigned int*) = nullptr;
  nvmlReturn_t (*get_handle_by_index)(unsigned int, nvmlDevice_t*) = nullptr;
  nvmlReturn_t (*get_name)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*get_uuid)(nvmlDevice_t, char*, unsigned int) = nullptr;
  nvmlReturn_t (*get_pci_info)(nvmlDevice_t, NvmlPciInfo*) = nullptr;
  nvmlReturn_t (*get_memory_info)(nvmlDevice_t, NvmlMemory*) = nullptr;
  nvmlReturn_t (*get_utilization)(nvmlDevice_t, NvmlUtilization*) = nullptr;
  nvmlReturn_t (*get_temperature)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*get_power_usage)(nvmlDevice_t, unsigned int*) = nullptr;
  // Optional (older drivers lack some; a GPU may not support them): readings stay 0 without them.
  nvmlReturn_t (*get_clock_info)(nvmlDevice_t, int, unsigned int*) = nullptr;
  nvmlReturn_t (*get_power_limit)(nvmlDevice_t, unsigned int*) = nullptr;
  nvmlReturn_t (*get_total_energy)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*get_total_ecc)(nvmlDevice_t, int, int, unsigned long long*) = nullptr;
  nvmlReturn_t (*get_remapped_rows)(nvmlDevice_t, unsigned int*, unsigned int*, unsigned int*, unsigned int*) = nullptr;
  nvmlReturn_t (*get_throttle_reasons)(nvmlDevice_t, unsigned long long*) = nullptr;
  nvmlReturn_t (*event_set_create)(nvmlEventSet_t*) = nullptr;
  nvmlReturn_t (*register_events)(nvmlDevice_t, unsigned long long, nvmlEventSet_t) = nullptr;
  nvmlReturn_t (*event_set_wait)(nvmlEventSet_t, NvmlEventData*, unsigned int) = nullptr;
  nvmlReturn_t (*event_set_free)(nvmlEventSet_t) = nullptr;
};

constexpr char kDefaultLibrary[] = "libnvidia-ml.so.1";
constexpr MiB kBytesPerMiB = 1024 * 1024;

struct DlCloser {
  void operator()(void* handle) const {
    if (handle != nullptr) dlclose(handle);
  }
};
using LibraryHandle = std::unique_ptr<void, DlCloser>;

// Resolves `name` into the function pointer `fn`; false when the symbol is absent.
template <typename Fn>
bool Resolve(void* lib, const char* name, Fn& fn) {
  void* sym = dlsym(lib, name);
  if (sym == nullptr) return false;
  static_assert(sizeof(Fn) == sizeof(void*));
  std::memcpy(&fn, &sym, sizeof fn);  // object pointer -> function pointer, as POSIX allows
  return true;
}

// Copies a possibly unterminated C buffer.
std::string FromBuffer(const char* buf, size_t size) { return std::string(buf, strnlen(buf, size)); }

std::string Hint(nvmlReturn_t rc) {
  switch (rc) {
    case kNvmlErrorDriverNotLoaded:
      return "; the NVIDIA kernel driver is not loaded (check `nvidia-smi`, or run with --sim-gpus)";
    case kNvmlErrorNoPermission:
      return "; run as a user allowed to open /dev/nvidia*";
    case kNvmlErrorGpuIsLost:
      return "; the GPU stopped responding: drain this node and reset the GPU or reboot";
    default:
      return "";
  }
}

class NvmlBackend final : public GpuBackend {
 public:
  NvmlBackend(LibraryHandle lib, NvmlApi api) : lib_(std::move(lib)), api_(api) {}

  ~NvmlBackend() override {
    std::lock_guard lock(mu_);
    if (events_ != nullptr && api_.event_set_free != nullptr) api_.event_set_free(events_);
    api_.shutdown();
    lib_.reset();  // dlclose after shutdown
  }

  NvmlBackend(const NvmlBackend&) = delete;
  NvmlBackend& operator=(const NvmlBackend&) = delete;

  std::string Name() const override { return "nvml"; }

  Result<std::vector<GpuInfo>> Discover() override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(unsigned count, CountLocked());
    std::vector<GpuInfo> out;
    out.reserve(count);
    for (unsigned i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      RETURN_IF_ERROR(Check(api_.get_handle_by_index(i, &dev), "nvmlDeviceGetHandleByIndex_v2", i));
      GpuInfo info;
      info.index = static_cast<int>(i);

      char name[kNvmlNameBufferSize] = {};
      RETURN_IF_ERROR(Check(api_.get_name(dev, name, sizeof name), "nvmlDeviceGetName", i));
      info.name = FromBuffer(name, sizeof name);

      char uuid[kNvmlUuidBufferSize] = {};
      RETURN_IF_ERROR(Check(api_.get_uuid(dev, uuid, sizeof uuid), "nvmlDeviceGetUUID", i));
      info.uuid = FromBuffer(uuid, sizeof uuid);

      NvmlPciInfo pci{};
      RETURN_IF_ERROR(Check(api_.get_pci_info(dev, &pci), "nvmlDeviceGetPciInfo", i));
      info.pci_bus_id = FromBuffer(pci.busId, sizeof pci.busId);
      if (info.pci_bus_id.empty()) info.pci_bus_id = FromBuffer(pci.busIdLegacy, sizeof pci.busIdLegacy);

      NvmlMemory mem{};
      RETURN_IF_ERROR(Check(api_.get_memory_info(dev, &mem), "nvmlDeviceGetMemoryInfo", i));
      info.memory_total_mib = static_cast<MiB>(mem.total / kBytesPerMiB);

      info.type = NormaliseGpuType(info.name, info.memory_total_mib);
      info.simulated = false;
      out.push_back(std::move(info));
    }
    known_uuids_.clear();
    for (const auto& g : out) known_uuids_.push_back(g.uuid);
    RegisterXidEventsLocked(count);
    return out;
  }

  Result<std::vector<GpuMetrics>> Sample() override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(unsigned count, CountLocked());
    DrainXidEventsLocked();
    std::vector<GpuMetrics> out;
    out.reserve(count);
    for (unsigned i = 0; i < count; ++i) {
      GpuMetrics m = SampleOneLocked(i);
      if (auto x = xids_.find(m.uuid); x != xids_.end()) {
        m.last_xid = x->second.last;
        m.xid_count = x->second.count;
      }
      out.push_back(std::move(m));
    }
    return out;
  }

 private:
  // XID errors arrive as NVML events (nvmlEventTypeXidCriticalError): one event set for every GPU that
  // supports them, drained without waiting at each Sample(). Without the event calls no XID is reported.
  void RegisterXidEventsLocked(unsigned count) {
    if (api_.event_set_create == nullptr || api_.register_events == nullptr || api_.event_set_wait == nullptr) return;
    if (events_ == nullptr && api_.event_set_create(&events_) != kNvmlSuccess) {
      events_ = nullptr;
      return;
    }
    for (unsigned i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      if (api_.get_handle_by_index(i, &dev) != kNvmlSuccess) continue;
      if (registered_.count(dev) != 0) continue;
      // NOT_SUPPORTED (e.g. some consumer GPUs): that GPU reports no XIDs.
      if (api_.register_events(dev, kNvmlEventTypeXidCriticalError, events_) == kNvmlSuccess) {
        registered_[dev] = known_uuids_[i];
      }
    }
  }

  void DrainXidEventsLocked() {
    if (events_ == nullptr) return;
    for (int n = 0; n < 1024; ++n) {  // bounded: a storm of events cannot hold the sampler
      NvmlEventData ev{};
      const nvmlReturn_t rc = api_.event_set_wait(events_, &ev, 0);
      if (rc != kNvmlSuccess) return;  // NVML_ERROR_TIMEOUT (10): none pending
      if ((ev.eventType & kNvmlEventTypeXidCriticalError) == 0) continue;
      auto dev = registered_.find(ev.device);
      if (dev == registered_.end()) continue;
      Xid& x = xids_[dev->second];
      x.last = static_cast<int>(ev.eventData);
      ++x.count;
    }
  }

  // An optional reading: true when it succeeded. A lost GPU is recorded as unhealthy; "not supported" and
  // other failures leave the reading at 0.
  bool Optional(GpuMetrics& m, nvmlReturn_t rc, const char* call) {
    if (rc == kNvmlSuccess) return true;
    if (rc == kNvmlErrorGpuIsLost) Record(m, rc, call);
    return false;
  }

  void SampleExtrasLocked(nvmlDevice_t dev, GpuMetrics& m) {
    unsigned v = 0;
    if (api_.get_clock_info != nullptr && Optional(m, api_.get_clock_info(dev, kNvmlClockSm, &v), "nvmlDeviceGetClockInfo")) {
      m.sm_clock_mhz = static_cast<int>(v);
    }
    if (api_.get_power_limit != nullptr &&
        Optional(m, api_.get_power_limit(dev, &v), "nvmlDeviceGetEnforcedPowerLimit")) {
      m.power_limit_mw = static_cast<int>(v);
    }
    unsigned long long ull = 0;
    if (api_.get_total_energy != nullptr &&
        Optional(m, api_.get_total_energy(dev, &ull), "nvmlDeviceGetTotalEnergyConsumption")) {
      m.energy_mj = static_cast<int64_t>(ull);
    }
    if (api_.get_total_ecc != nullptr) {
      const std::pair<int, int> kinds[] = {{kNvmlMemoryErrorCorrected, kNvmlVolatileEcc},
                                           {kNvmlMemoryErrorUncorrected, kNvmlVolatileEcc},
                                           {kNvmlMemoryErrorCorrected, kNvmlAggregateEcc},
                                           {kNvmlMemoryErrorUncorrected, kNvmlAggregateEcc}};
      int64_t* into[] = {&m.ecc_corrected_volatile, &m.ecc_uncorrected_volatile, &m.ecc_corrected_aggregate,
                         &m.ecc_uncorrected_aggregate};
      for (size_t k = 0; k < 4; ++k) {
        ull = 0;
        // ECC disabled or absent: NOT_SUPPORTED, the counters stay 0.
        if (!Optional(m, api_.get_total_ecc(dev, kinds[k].first, kinds[k].second, &ull), "nvmlDeviceGetTotalEccErrors")) break;
        *into[k] = static_cast<int64_t>(ull);
      }
    }
    if (api_.get_remapped_rows != nullptr) {
      unsigned corr = 0, unc = 0, pending = 0, failure = 0;
      if (Optional(m, api_.get_remapped_rows(dev, &corr, &unc, &pending, &failure), "nvmlDeviceGetRemappedRows")) {
        m.remapped_rows_correctable = corr;
        m.remapped_rows_uncorrectable = unc;
        m.remap_pending = pending != 0;
        m.remap_failure = failure != 0;
      }
    }
    if (api_.get_throttle_reasons != nullptr) {
      ull = 0;
      if (Optional(m, api_.get_throttle_reasons(dev, &ull), "nvmlDeviceGetCurrentClocksThrottleReasons")) {
        m.throttle_reasons = ull;
      }
    }
  }

  Result<unsigned> CountLocked() {
    unsigned count = 0;
    RETURN_IF_ERROR(Check(api_.get_count(&count), "nvmlDeviceGetCount_v2", -1));
    return count;
  }

  // One GPU's metrics. Readings a GPU does not support stay 0; any other failure marks it unhealthy.
  GpuMetrics SampleOneLocked(unsigned i) {
    GpuMetrics m;
    // A GPU that stops answering may not report its UUID; fall back to the one last discovered.
    if (i < known_uuids_.size()) m.uuid = known_uuids_[i];
    nvmlDevice_t dev = nullptr;
    if (!Record(m, api_.get_handle_by_index(i, &dev), "nvmlDeviceGetHandleByIndex_v2")) {
      return m;
    }
    char uuid[kNvmlUuidBufferSize] = {};
    if (!Record(m, api_.get_uuid(dev, uuid, sizeof uuid), "nvmlDeviceGetUUID")) return m;
    m.uuid = FromBuffer(uuid, sizeof uuid);

    NvmlMemory mem{};
    if (!Record(m, api_.get_memory_info(dev, &mem), "nvmlDeviceGetMemoryInfo")) return m;
    m.memory_used_mib = static_cast<MiB>(mem.used / kBytesPerMiB);

    NvmlUtilization util{};
    if (!Record(m, api_.get_utilization(dev, &util), "nvmlDeviceGetUtilizationRates")) return m;
    m.utilization_pct = static_cast<int>(util.gpu > 100 ? 100 : util.gpu);
    m.memory_util_pct = static_cast<int>(util.memory > 100 ? 100 : util.memory);

    unsigned temp = 0;
    if (!Record(m, api_.get_temperature(dev, kNvmlTemperatureGpu, &temp), "nvmlDeviceGetTemperature")) return m;
    m.temperature_c = static_cast<int>(temp);

    unsigned power = 0;
    if (!Record(m, api_.get_power_usage(dev, &power), "nvmlDeviceGetPowerUsage")) return m;
    m.power_mw = static_cast<int>(power);
    SampleExtrasLocked(dev, m);
    return m;
  }

  // Returns false (and marks `m` unhealthy) when `rc` is an error other than "not supported".
  bool Record(GpuMetrics& m, nvmlReturn_t rc, const char* call) {
    if (rc == kNvmlSuccess || rc == kNvmlErrorNotSupported) return true;
    m.healthy = false;
    m.health_reason = std::string("NVML ") + call + ": " + ErrorString(rc) + Hint(rc);
    return false;
  }

  Status Check(nvmlReturn_t rc, const char* call, long gpu_index) {
    if (rc == kNvmlSuccess) return Status::Ok();
    std::string msg = std::string("NVML ") + call;
    if (gpu_index >= 0) msg += " for GPU " + std::to_string(gpu_index);
    msg += " failed: " + ErrorString(rc) + " (NVML error " + std::to_string(rc) + ")" + Hint(rc);
    const ErrorCode code = (rc == kNvmlErrorDriverNotLoaded || rc == kNvmlErrorNoPermission ||
                            rc == kNvmlErrorGpuIsLost)
                               ? ErrorCode::kUnavailable
                               : ErrorCode::kInternal;
    return Status(code, std::move(msg));
  }

  std::string ErrorString(nvmlReturn_t rc) {
    const char* s = api_.error_string(rc);
    return s != nullptr ? std::string(s) : "unknown NVML error " + std::to_string(rc);
  }

  std::mutex mu_;  // NVML handles are process-wide; serialise all calls through this backend
  LibraryHandle lib_;
  NvmlApi api_;
  std::vector<std::string> known_uuids_;  // by index, from the last successful Discover()
  struct Xid {
    int last = 0;
    int64_t count = 0;
  };
  nvmlEventSet_t events_ = nullptr;                   // XID events of the GPUs in registered_
  std::map<nvmlDevice_t, std::string> registered_;    // device handle -> UUID
  std::map<std::string, Xid> xids_;                   // by UUID
};

}  // namespace

Result<std::unique_ptr<GpuBackend>> OpenNvmlBackend(const std::string& library_path) {
  const std::string name = library_path.empty() ? std::string(kDefaultLibrary) : library_path;
  LibraryHandle lib(dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!lib) {
    if (library_path.empty()) {
      return Unavailable("NVML not found (libnvidia-ml.so.1): no NVIDIA driver on this machine");
    }
    const char* err = dlerror();
    return Unavailable("NVML not found (" + name + "): " + (err != nullptr ? err : "dlopen failed"));
  }

  NvmlApi api;
  std::string missing;
  const auto need = [&](const char* sym, auto& fn) {
    if (!Resolve(lib.get(), sym, fn)) missing += missing.empty() ? sym : std::string(", ") + sym;
  };
  need("nvmlInit_v2", api.init);
  need("nvmlShutdown", api.shutdown);
  need("nvmlErrorString", api.error_string);
  need("nvmlDeviceGetCount_v2", api.get_count);
  need("nvmlDeviceGetHandleByIndex_v2", api.get_handle_by_index);
  need("nvmlDeviceGetName", api.get_name);
  need("nvmlDeviceGetUUID", api.get_uuid);
  if (!Resolve(lib.get(), "nvmlDeviceGetPciInfo_v3", api.get_pci_info)) {
    need("nvmlDeviceGetPciInfo_v2", api.get_pci_info);
  }
  need("nvmlDeviceGetMemoryInfo", api.get_memory_info);
  need("nvmlDeviceGetUtilizationRates", api.get_utilization);
  need("nvmlDeviceGetTemperature", api.get_temperature);
  need("nvmlDeviceGetPowerUsage", api.get_power_usage);
  Resolve(lib.get(), "nvmlDeviceGetClockInfo", api.get_clock_info);
  Resolve(lib.get(), "nvmlDeviceGetEnforcedPowerLimit", api.get_power_limit);
  Resolve(lib.get(), "nvmlDeviceGetTotalEnergyConsumption", api.get_total_energy);
  Resolve(lib.get(), "nvmlDeviceGetTotalEccErrors", api.get_total_ecc);
  Resolve(lib.get(), "nvmlDeviceGetRemappedRows", api.get_remapped_rows);
  if (!Resolve(lib.get(), "nvmlDeviceGetCurrentClocksEventReasons", api.get_throttle_reasons)) {
    Resolve(lib.get(), "nvmlDeviceGetCurrentClocksThrottleReasons", api.get_throttle_reasons);
  }
  Resolve(lib.get(), "nvmlEventSetCreate", api.event_set_create);
  Resolve(lib.get(), "nvmlDeviceRegisterEvents", api.register_events);
  Resolve(lib.get(), "nvmlEventSetWait_v2", api.event_set_wait);
  Resolve(lib.get(), "nvmlEventSetFree", api.event_set_free);
  if (!missing.empty()) {
    return Unavailable("NVML library " + name + " lacks " + missing +
                       "; it is not NVML or the NVIDIA driver is too old");
  }

  if (const nvmlReturn_t rc = api.init(); rc != kNvmlSuccess) {
    const char* s = api.error_string(rc);
    return Unavailable("NVML initialisation failed: " + std::string(s != nullptr ? s : "unknown error") +
                       " (NVML error " + std::to_string(rc) + ")" + Hint(rc));
  }
  return std::unique_ptr<GpuBackend>(std::make_unique<NvmlBackend>(std::move(lib), api));
}

}  // namespace fastgpu::gpu
