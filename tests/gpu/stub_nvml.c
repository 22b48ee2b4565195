/* Scripted stand-in for libnvidia-ml.so.1, built by the test suite. Behaviour is set through
 * environment variables read when nvmlInit_v2 is called:
 *   FASTGPU_NVML_STUB_COUNT       number of GPUs (default 2, at most 8)
 *   FASTGPU_NVML_STUB_INIT_ERROR  NVML return code for nvmlInit_v2 (default 0 = success)
 *   FASTGPU_NVML_STUB_LOST_GPU    index of a GPU whose UUID/metric calls return NVML_ERROR_GPU_IS_LOST
 *   FASTGPU_NVML_STUB_NO_POWER    when set, nvmlDeviceGetPowerUsage returns NVML_ERROR_NOT_SUPPORTED
 * GPU i (0-based): name "NVIDIA A100-SXM4-80GB", UUID "GPU-<d>" with d = i+1 repeated in the
 * 8-4-4-4-12 layout, bus id "00000000:<07+i>:00.0", 80 GiB total, (i+1) GiB used, 10*(i+1)% GPU
 * utilisation, 40+i C, 60000+1000*i mW. */
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
static int g_init_calls = 0;
static int g_shutdown_calls = 0;

/* Introspection for tests (looked up with dlsym). */
int fastgpu_nvml_stub_init_calls(void) { return g_init_calls; }
int fastgpu_nvml_stub_shutdown_calls(void) { return g_shutdown_calls; }
/* Makes GPU `index` stop answering (as if it fell off the bus); -1 restores all. */
void fastgpu_nvml_stub_set_lost_gpu(int index) { g_lost = index; }

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
