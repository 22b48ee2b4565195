/* Scripted stand-in for libnvidia-ml.so.1, built by the test suite. Behaviour is set through
 * environment variables read when nvmlInit_v2 is called:
 *   FASTGPU_NVML_STUB_COUNT       number of GPUs (default 2, at most 8)
 *   FASTGPU_NVML_STUB_INIT_ERROR  NVML return code for nvmlInit_v2 (default 0 = success)
 *   FASTGPU_NVML_STUB_LOST_GPU    index of a GPU whose UUID/metric calls return NVML_ERROR_GPU_IS_LOST
 *   FASTGPU_NVML_STUB_NO_POWER    when set, nvmlDeviceGetPowerUsage returns NVML_ERROR_NOT_SUPPORTED
 *   FASTGPU_NVML_STUB_NO_ECC      when set, nvmlDeviceGetTotalEccErrors returns NVML_ERROR_NOT_SUPPORTED
 * GPU i (0-based): name "NVIDIA A100-SXM4-80GB", UUID "GPU-<d>" with d = i+1 repeated in the
 * 8-4-4-4-12 layout, bus id "00000000:<07+i>:00.0", 80 GiB total, (i+1) GiB used, 10*(i+1)% GPU
 * utilisation, 5*(i+1)% memory utilisation, 40+i C, 60000+1000*i mW, SM clock 1410-10*i MHz, power limit
 * 400000 mW, energy 1000000*(i+1) mJ; ECC errors (corrected, uncorrected) volatile (i, 0) and aggregate
 * (10+i, i); remapped rows correctable i, uncorrectable 0, pending and failure only on GPU 1; throttle
 * reasons 0x1 (idle) on GPU 0, 0x4 (software power cap) on the others. XID errors are events that
 * fastgpu_nvml_stub_inject_xid queues. Built with FASTGPU_STUB_NO_PCI_V3 it stands in for an old driver: no
 * nvmlDeviceGetPciInfo_v3 and none of the optional calls (clocks, power limit, energy, ECC, remapped rows,
 * throttle reasons, events). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int nvmlReturn_t;
struct nvmlDevice_st {
  int index;
};
typedef struct nvmlDevice_st* nvmlDevice_t;

typedef struct {
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

typedef struct {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_GPU_IS_LOST = 15
};

#define MAX_GPUS 8
static struct nvmlDevice_st g_devices[MAX_GPUS] = {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}};
static int g_count = 0;
static int g_initialised = 0;
static int g_lost = -1;
static int g_no_power = 0;
static int g_no_ecc = 0;
static int g_init_calls = 0;
/* Queued XID events: (device index, xid). */
#define MAX_EVENTS 64
static int g_event_gpu[MAX_EVENTS];
static unsigned long long g_event_xid[MAX_EVENTS];
static int g_events = 0;
static int g_registered[MAX_GPUS];
static int g_shutdown_calls = 0;

/* Introspection for tests (looked up with dlsym). */
int fastgpu_nvml_stub_init_calls(void) { return g_init_calls; }
int fastgpu_nvml_stub_shutdown_calls(void) { return g_shutdown_calls; }
/* Makes GPU `index` stop answering (as if it fell off the bus); -1 restores all. */
void fastgpu_nvml_stub_set_lost_gpu(int index) { g_lost = index; }
/* Queues an XID error event on GPU `index` (delivered only when that GPU registered for XID events). */
void fastgpu_nvml_stub_inject_xid(int index, unsigned long long xid) {
  if (g_events < MAX_EVENTS && index >= 0 && index < MAX_GPUS) {
    g_event_gpu[g_events] = index;
    g_event_xid[g_events] = xid;
    ++g_events;
  }
}

static int env_int(const char* name, int fallback) {
  const char* v = getenv(name);
  return (v != NULL && *v != '\0') ? atoi(v) : fallback;
}

const char* nvmlErrorString(nvmlReturn_t r) {
  switch (r) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
    case NVML_ERROR_GPU_IS_LOST: return "GPU is lost";
    default: return "Unknown Error";
  }
}

nvmlReturn_t nvmlInit_v2(void) {
  int err;
  ++g_init_calls;
  err = env_int("FASTGPU_NVML_STUB_INIT_ERROR", 0);
  if (err != 0) return err;
  g_count = env_int("FASTGPU_NVML_STUB_COUNT", 2);
  if (g_count < 0) g_count = 0;
  if (g_count > MAX_GPUS) g_count = MAX_GPUS;
  g_lost = env_int("FASTGPU_NVML_STUB_LOST_GPU", -1);
  g_no_power = getenv("FASTGPU_NVML_STUB_NO_POWER") != NULL;
  g_no_ecc = getenv("FASTGPU_NVML_STUB_NO_ECC") != NULL;
  g_events = 0;
  memset(g_registered, 0, sizeof g_registered);
  g_initialised = 1;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlShutdown(void) {
  ++g_shutdown_calls;
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  g_initialised = 0;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  if (count == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *count = (unsigned int)g_count;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  if (device == NULL || index >= (unsigned int)g_count) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &g_devices[index];
  return NVML_SUCCESS;
}

static int valid(nvmlDevice_t d) {
  return g_initialised && d != NULL && d >= &g_devices[0] && d < &g_devices[g_count];
}

static nvmlReturn_t copy_str(const char* s, char* out, unsigned int length) {
  if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(s) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(out, s, strlen(s) + 1);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char* name, unsigned int length) {
  if (!valid(d)) return NVML_ERROR_INVALID_ARGUMENT;
  return copy_str("NVIDIA A100-SXM4-80GB", name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char* uuid, unsigned int length) {
  char buf[64];
  char c;
  if (!valid(d)) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  c = (char)('1' + d->index);
  snprintf(buf, sizeof buf, "GPU-%c%c%c%c%c%c%c%c-%c%c%c%c-%c%c%c%c-%c%c%c%c-%c%c%c%c%c%c%c%c%c%c%c%c", c, c, c, c,
           c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c);
  return copy_str(buf, uuid, length);
}

static nvmlReturn_t fill_pci(nvmlDevice_t d, nvmlPciInfo_t* pci) {
  if (!valid(d) || pci == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  memset(pci, 0, sizeof *pci);
  pci->domain = 0;
  pci->bus = 7u + (unsigned int)d->index;
  pci->device = 0;
  pci->pciDeviceId = 0x20B210DEu;
  pci->pciSubSystemId = 0x147F10DEu;
  snprintf(pci->busIdLegacy, sizeof pci->busIdLegacy, "0000:%02X:00.0", pci->bus);
  snprintf(pci->busId, sizeof pci->busId, "00000000:%02X:00.0", pci->bus);
  return NVML_SUCCESS;
}

/* Built once without the _v3 entry point to stand in for older drivers. */
#ifndef FASTGPU_STUB_NO_PCI_V3
nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t d, nvmlPciInfo_t* pci) { return fill_pci(d, pci); }
#endif
nvmlReturn_t nvmlDeviceGetPciInfo_v2(nvmlDevice_t d, nvmlPciInfo_t* pci) { return fill_pci(d, pci); }

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t* mem) {
  const unsigned long long mib = 1024ULL * 1024ULL;
  if (!valid(d) || mem == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  mem->total = 81920ULL * mib;
  mem->used = 1024ULL * (unsigned long long)(d->index + 1) * mib;
  mem->free = mem->total - mem->used;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t* util) {
  if (!valid(d) || util == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  util->gpu = 10u * (unsigned int)(d->index + 1);
  util->memory = 5u * (unsigned int)(d->index + 1);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int* temp) {
  if (!valid(d) || temp == NULL || sensor != 0) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  *temp = 40u + (unsigned int)d->index;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int* power) {
  if (!valid(d) || power == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  if (g_no_power) return NVML_ERROR_NOT_SUPPORTED;
  *power = 60000u + 1000u * (unsigned int)d->index;
  return NVML_SUCCESS;
}

#ifndef FASTGPU_STUB_NO_PCI_V3
typedef struct nvmlEventSet_st {
  int unused;
} * nvmlEventSet_t;
typedef struct {
  nvmlDevice_t device;
  unsigned long long eventType;
  unsigned long long eventData;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlEventData_t;
static struct nvmlEventSet_st g_event_set;
enum { NVML_ERROR_TIMEOUT = 10 };

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int* clock) {
  if (!valid(d) || clock == NULL || type != 1 /* NVML_CLOCK_SM */) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  *clock = 1410u - 10u * (unsigned int)d->index;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t d, unsigned int* limit) {
  if (!valid(d) || limit == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  *limit = 400000u;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long* energy) {
  if (!valid(d) || energy == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  *energy = 1000000ULL * (unsigned long long)(d->index + 1);
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t d, int error_type, int counter_type, unsigned long long* count) {
  if (!valid(d) || count == NULL || error_type < 0 || error_type > 1 || counter_type < 0 || counter_type > 1)
    return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  if (g_no_ecc) return NVML_ERROR_NOT_SUPPORTED;
  if (counter_type == 0) {
    *count = error_type == 0 ? (unsigned long long)d->index : 0ULL;
  } else {
    *count = error_type == 0 ? 10ULL + (unsigned long long)d->index : (unsigned long long)d->index;
  }
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetRemappedRows(nvmlDevice_t d, unsigned int* corr, unsigned int* unc, unsigned int* pending,
                                       unsigned int* failure) {
  if (!valid(d) || corr == NULL || unc == NULL || pending == NULL || failure == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  *corr = (unsigned int)d->index;
  *unc = 0;
  *pending = d->index == 1 ? 1u : 0u;
  *failure = d->index == 1 ? 1u : 0u;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t d, unsigned long long* reasons) {
  if (!valid(d) || reasons == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  if (d->index == g_lost) return NVML_ERROR_GPU_IS_LOST;
  *reasons = d->index == 0 ? 0x1ULL : 0x4ULL;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t* set) {
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  if (set == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  *set = &g_event_set;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t d, unsigned long long types, nvmlEventSet_t set) {
  if (!valid(d) || set != &g_event_set) return NVML_ERROR_INVALID_ARGUMENT;
  if ((types & 0x8ULL) == 0) return NVML_ERROR_NOT_SUPPORTED;
  g_registered[d->index] = 1;
  return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t* data, unsigned int timeout_ms) {
  int i;
  (void)timeout_ms;
  if (!g_initialised) return NVML_ERROR_UNINITIALIZED;
  if (set != &g_event_set || data == NULL) return NVML_ERROR_INVALID_ARGUMENT;
  while (g_events > 0) {
    int gpu = g_event_gpu[0];
    unsigned long long xid = g_event_xid[0];
    for (i = 1; i < g_events; ++i) {
      g_event_gpu[i - 1] = g_event_gpu[i];
      g_event_xid[i - 1] = g_event_xid[i];
    }
    --g_events;
    if (gpu >= g_count || !g_registered[gpu]) continue;
    memset(data, 0, sizeof *data);
    data->device = &g_devices[gpu];
    data->eventType = 0x8ULL;
    data->eventData = xid;
    return NVML_SUCCESS;
  }
  return NVML_ERROR_TIMEOUT;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
  if (set != &g_event_set) return NVML_ERROR_INVALID_ARGUMENT;
  return NVML_SUCCESS;
}
#endif
