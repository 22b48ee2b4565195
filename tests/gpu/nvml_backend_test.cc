#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gpu/backend.h"

namespace fastgpu::gpu {
namespace {

using ::testing::HasSubstr;

// Sets an environment variable for the lifetime of the guard.
class EnvGuard {
 public:
  EnvGuard(const char* name, const std::string& value) : name_(name) {
    if (const char* old = getenv(name)) old_ = old;
    setenv(name, value.c_str(), 1);
  }
  ~EnvGuard() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::unique_ptr<GpuBackend> OpenStub(const char* path = FASTGPU_NVML_STUB_PATH) {
  auto r = OpenNvmlBackend(path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(NvmlBackendTest, StubIsNamedLikeTheRealLibrary) {
  EXPECT_EQ(std::filesystem::path(FASTGPU_NVML_STUB_PATH).filename(), "libnvidia-ml.so.1");
}

TEST(NvmlBackendTest, DiscoversEveryField) {
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->Name(), "nvml");
  auto gpus = backend->Discover();
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_EQ(gpus->size(), 2u);
  const GpuInfo& g0 = (*gpus)[0];
  EXPECT_EQ(g0.index, 0);
  EXPECT_EQ(g0.uuid, "GPU-11111111-1111-1111-1111-111111111111");
  EXPECT_EQ(g0.name, "NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(g0.type, "A100-80GB");
  EXPECT_EQ(g0.pci_bus_id, "00000000:07:00.0");
  EXPECT_EQ(g0.memory_total_mib, 81920);
  EXPECT_FALSE(g0.simulated);
  const GpuInfo& g1 = (*gpus)[1];
  EXPECT_EQ(g1.index, 1);
  EXPECT_EQ(g1.uuid, "GPU-22222222-2222-2222-2222-222222222222");
  EXPECT_EQ(g1.pci_bus_id, "00000000:08:00.0");
  EXPECT_EQ(g1.memory_total_mib, 81920);
}

TEST(NvmlBackendTest, SamplesEveryMetric) {
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  ASSERT_EQ(metrics->size(), 2u);
  for (int i = 0; i < 2; ++i) {
    const GpuMetrics& m = (*metrics)[static_cast<size_t>(i)];
    const char d = static_cast<char>('1' + i);
    EXPECT_EQ(m.uuid, "GPU-" + std::string(8, d) + "-" + std::string(4, d) + "-" + std::string(4, d) + "-" +
                          std::string(4, d) + "-" + std::string(12, d));
    EXPECT_EQ(m.memory_used_mib, 1024 * (i + 1));
    EXPECT_EQ(m.utilization_pct, 10 * (i + 1));
    EXPECT_EQ(m.temperature_c, 40 + i);
    EXPECT_EQ(m.power_mw, 60000 + 1000 * i);
    EXPECT_TRUE(m.healthy);
    EXPECT_EQ(m.health_reason, "");
  }
}

TEST(NvmlBackendTest, GpuCountComesFromTheDriver) {
  {
    EnvGuard count("FASTGPU_NVML_STUB_COUNT", "5");
    auto backend = OpenStub();
    ASSERT_NE(backend, nullptr);
    auto gpus = backend->Discover();
    ASSERT_TRUE(gpus.ok());
    ASSERT_EQ(gpus->size(), 5u);
    EXPECT_EQ((*gpus)[4].uuid.substr(0, 12), "GPU-55555555");
    EXPECT_EQ((*gpus)[4].pci_bus_id, "00000000:0B:00.0");
  }
  {
    EnvGuard count("FASTGPU_NVML_STUB_COUNT", "0");
    auto backend = OpenStub();
    ASSERT_NE(backend, nullptr);
    auto gpus = backend->Discover();
    ASSERT_TRUE(gpus.ok());
    EXPECT_TRUE(gpus->empty());
    auto metrics = backend->Sample();
    ASSERT_TRUE(metrics.ok());
    EXPECT_TRUE(metrics->empty());
  }
}

TEST(NvmlBackendTest, MissingLibraryIsUnavailable) {
  const auto path = std::filesystem::temp_directory_path() / "fastgpu-no-such-dir-7f3a" / "libnvidia-ml.so.1";
  auto r = OpenNvmlBackend(path.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("NVML not found (" + path.string() + ")"));
}

TEST(NvmlBackendTest, LibraryWithoutNvmlIsUnavailable) {
  auto r = OpenNvmlBackend("libc.so.6");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("libc.so.6 lacks nvmlInit_v2"));
}

TEST(NvmlBackendTest, InitErrorIsExplained) {
  EnvGuard err("FASTGPU_NVML_STUB_INIT_ERROR", "9");  // NVML_ERROR_DRIVER_NOT_LOADED
  auto r = OpenNvmlBackend(FASTGPU_NVML_STUB_PATH);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("NVML initialisation failed: Driver Not Loaded (NVML error 9)"));
  EXPECT_THAT(r.status().message(), HasSubstr("nvidia-smi"));
}

TEST(NvmlBackendTest, OtherInitErrorsIncludeNvmlText) {
  EnvGuard err("FASTGPU_NVML_STUB_INIT_ERROR", "999");
  auto r = OpenNvmlBackend(FASTGPU_NVML_STUB_PATH);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("Unknown Error (NVML error 999)"));
}

TEST(NvmlBackendTest, LostGpuIsReportedUnhealthy) {
  EnvGuard lost("FASTGPU_NVML_STUB_LOST_GPU", "1");
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  // Discovery needs every GPU's UUID and says which GPU failed.
  auto gpus = backend->Discover();
  ASSERT_FALSE(gpus.ok());
  EXPECT_EQ(gpus.status().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(gpus.status().message(), HasSubstr("nvmlDeviceGetUUID for GPU 1 failed: GPU is lost (NVML error 15)"));
  EXPECT_THAT(gpus.status().message(), HasSubstr("drain this node"));
  // Sampling still reports the healthy GPU and marks the lost one.
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  ASSERT_EQ(metrics->size(), 2u);
  EXPECT_TRUE((*metrics)[0].healthy);
  EXPECT_EQ((*metrics)[0].temperature_c, 40);
  EXPECT_FALSE((*metrics)[1].healthy);
  EXPECT_THAT((*metrics)[1].health_reason, HasSubstr("NVML nvmlDeviceGetUUID: GPU is lost"));
}

// Resolves a stub control function through our own reference to the stub library.
template <typename Fn>
Fn StubFunction(void* lib, const char* name) {
  void* sym = dlsym(lib, name);
  EXPECT_NE(sym, nullptr) << name;
  Fn fn = nullptr;
  std::memcpy(&fn, &sym, sizeof fn);
  return fn;
}

TEST(NvmlBackendTest, GpuLostAfterDiscoveryKeepsItsUuid) {
  void* lib = dlopen(FASTGPU_NVML_STUB_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto set_lost = StubFunction<void (*)(int)>(lib, "fastgpu_nvml_stub_set_lost_gpu");
  ASSERT_NE(set_lost, nullptr);
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  auto gpus = backend->Discover();
  ASSERT_TRUE(gpus.ok());
  set_lost(0);
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(metrics->size(), 2u);
  EXPECT_FALSE((*metrics)[0].healthy);
  EXPECT_EQ((*metrics)[0].uuid, (*gpus)[0].uuid);
  EXPECT_THAT((*metrics)[0].health_reason, HasSubstr("GPU is lost"));
  EXPECT_TRUE((*metrics)[1].healthy);
  set_lost(-1);
  auto recovered = backend->Sample();
  ASSERT_TRUE(recovered.ok());
  EXPECT_TRUE((*recovered)[0].healthy);
  backend.reset();
  dlclose(lib);
}

TEST(NvmlBackendTest, UnsupportedReadingStaysZero) {
  EnvGuard no_power("FASTGPU_NVML_STUB_NO_POWER", "1");
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(metrics->size(), 2u);
  EXPECT_TRUE((*metrics)[0].healthy);
  EXPECT_EQ((*metrics)[0].power_mw, 0);
  EXPECT_EQ((*metrics)[0].temperature_c, 40);
}

TEST(NvmlBackendTest, OlderDriverWithoutPciInfoV3) {
  auto backend = OpenStub(FASTGPU_NVML_STUB_NO_V3_PATH);
  ASSERT_NE(backend, nullptr);
  auto gpus = backend->Discover();
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[1].pci_bus_id, "00000000:08:00.0");
}

TEST(NvmlBackendTest, DestructorShutsNvmlDown) {
  // Keep our own reference so the stub's counters survive the backend's dlclose.
  void* lib = dlopen(FASTGPU_NVML_STUB_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  using CounterFn = int (*)();
  auto inits = StubFunction<CounterFn>(lib, "fastgpu_nvml_stub_init_calls");
  auto shutdowns = StubFunction<CounterFn>(lib, "fastgpu_nvml_stub_shutdown_calls");
  ASSERT_NE(inits, nullptr);
  ASSERT_NE(shutdowns, nullptr);
  const int inits_before = inits();
  const int shutdowns_before = shutdowns();
  {
    auto backend = OpenStub();
    ASSERT_NE(backend, nullptr);
    EXPECT_EQ(inits(), inits_before + 1);
    EXPECT_EQ(shutdowns(), shutdowns_before);
  }
  EXPECT_EQ(shutdowns(), shutdowns_before + 1);
  dlclose(lib);
}

TEST(NvmlBackendTest, SamplesClocksEccRemappedRowsAndThrottleReasons) {
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->Discover().ok());
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  ASSERT_EQ(metrics->size(), 2u);
  const GpuMetrics& g0 = (*metrics)[0];
  const GpuMetrics& g1 = (*metrics)[1];
  EXPECT_EQ(g0.memory_util_pct, 5);
  EXPECT_EQ(g1.memory_util_pct, 10);
  EXPECT_EQ(g0.sm_clock_mhz, 1410);
  EXPECT_EQ(g1.sm_clock_mhz, 1400);
  EXPECT_EQ(g0.power_limit_mw, 400000);
  EXPECT_EQ(g1.energy_mj, 2000000);
  EXPECT_EQ(g1.ecc_corrected_volatile, 1);
  EXPECT_EQ(g1.ecc_uncorrected_volatile, 0);
  EXPECT_EQ(g1.ecc_corrected_aggregate, 11);
  EXPECT_EQ(g1.ecc_uncorrected_aggregate, 1);
  EXPECT_EQ(g1.remapped_rows_correctable, 1);
  EXPECT_EQ(g1.remapped_rows_uncorrectable, 0);
  EXPECT_FALSE(g0.remap_pending);
  EXPECT_TRUE(g1.remap_pending);
  EXPECT_TRUE(g1.remap_failure);
  EXPECT_EQ(g0.throttle_reasons, 0x1u);
  EXPECT_EQ(g1.throttle_reasons, 0x4u);
  EXPECT_EQ(g0.last_xid, 0);
  EXPECT_EQ(g0.xid_count, 0);
  EXPECT_TRUE(g0.healthy);
  EXPECT_TRUE(g1.healthy);
}

TEST(NvmlBackendTest, EccNotSupportedLeavesCountersAtZero) {
  EnvGuard no_ecc("FASTGPU_NVML_STUB_NO_ECC", "1");
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok());
  EXPECT_TRUE((*metrics)[1].healthy);
  EXPECT_EQ((*metrics)[1].ecc_corrected_aggregate, 0);
  EXPECT_EQ((*metrics)[1].sm_clock_mhz, 1400);  // other readings still taken
}

TEST(NvmlBackendTest, XidEventsAreCountedPerGpu) {
  void* lib = dlopen(FASTGPU_NVML_STUB_PATH, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto inject = StubFunction<void (*)(int, unsigned long long)>(lib, "fastgpu_nvml_stub_inject_xid");
  ASSERT_NE(inject, nullptr);
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->Discover().ok());  // registers the GPUs for XID events
  inject(1, 79);
  inject(1, 48);
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ((*metrics)[0].xid_count, 0);
  EXPECT_EQ((*metrics)[1].xid_count, 2);
  EXPECT_EQ((*metrics)[1].last_xid, 48);
  // Kept across samples until the next event.
  auto again = backend->Sample();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)[1].xid_count, 2);
  EXPECT_EQ((*again)[1].last_xid, 48);
  backend.reset();
  dlclose(lib);
}

TEST(NvmlBackendTest, OlderDriverWithoutOptionalCallsStillSamples) {
  auto backend = OpenStub(FASTGPU_NVML_STUB_NO_V3_PATH);
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->Discover().ok());
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  ASSERT_EQ(metrics->size(), 2u);
  EXPECT_TRUE((*metrics)[1].healthy);
  EXPECT_EQ((*metrics)[1].utilization_pct, 20);
  EXPECT_EQ((*metrics)[1].sm_clock_mhz, 0);
  EXPECT_EQ((*metrics)[1].ecc_corrected_aggregate, 0);
  EXPECT_EQ((*metrics)[1].throttle_reasons, 0u);
}

// What an NVML sample costs per GPU through this backend (printed): against the stub the calls are free, so this is
// the backend's own overhead (12 NVML calls per GPU plus the event drain); a real driver adds its own.
TEST(NvmlBackendTest, SamplingOverheadPerGpu) {
  EnvGuard count("FASTGPU_NVML_STUB_COUNT", "8");
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  ASSERT_TRUE(backend->Discover().ok());
  SystemClock wall;
  constexpr int kRounds = 2000;
  const int64_t t0 = wall.MonotonicNanos();
  for (int r = 0; r < kRounds; ++r) ASSERT_EQ(backend->Sample()->size(), 8u);
  std::printf("NVML backend sampling overhead: %.0f ns per GPU per sample (stub library)\n",
              static_cast<double>(wall.MonotonicNanos() - t0) / kRounds / 8.0);
}

TEST(NvmlBackendTest, ConcurrentCallsAreSafe) {
  auto backend = OpenStub();
  ASSERT_NE(backend, nullptr);
  std::vector<std::thread> threads;
  std::vector<int> ok_counts(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto m = backend->Sample();
        auto d = backend->Discover();
        if (m.ok() && d.ok() && m->size() == 2 && d->size() == 2) ++ok_counts[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int c : ok_counts) EXPECT_EQ(c, 200);
}

}  // namespace
}  // namespace fastgpu::gpu
