// Exercises the machine's real NVML. Skips, with the reason, where no NVIDIA driver is present.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>

#include "gpu/backend.h"

namespace fastgpu::gpu {
namespace {

TEST(RealGpuTest, DiscoversAndSamplesRealGpus) {
  auto backend = OpenNvmlBackend();
  if (!backend.ok() && backend.status().code() == ErrorCode::kUnavailable) {
    GTEST_SKIP() << backend.status().message();
  }
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  EXPECT_EQ((*backend)->Name(), "nvml");

  auto gpus = (*backend)->Discover();
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  if (gpus->empty()) GTEST_SKIP() << "NVML is installed but reports no GPUs";
  std::set<std::string> uuids;
  for (size_t i = 0; i < gpus->size(); ++i) {
    const GpuInfo& g = (*gpus)[i];
    EXPECT_EQ(g.index, static_cast<int>(i));
    EXPECT_EQ(g.uuid.rfind("GPU-", 0), 0u) << g.uuid;
    EXPECT_FALSE(g.name.empty());
    EXPECT_FALSE(g.type.empty());
    EXPECT_NE(g.type.find("GB"), std::string::npos) << g.type;
    EXPECT_EQ(g.pci_bus_id.size(), 16u) << g.pci_bus_id;  // "00000000:3B:00.0"
    EXPECT_GT(g.memory_total_mib, 0);
    EXPECT_FALSE(g.simulated);
    uuids.insert(g.uuid);
    std::printf("GPU %d: %s  %s  type=%s  bus=%s  memory=%lld MiB\n", g.index, g.uuid.c_str(), g.name.c_str(),
                g.type.c_str(), g.pci_bus_id.c_str(), static_cast<long long>(g.memory_total_mib));
  }
  EXPECT_EQ(uuids.size(), gpus->size());

  auto metrics = (*backend)->Sample();
  ASSERT_TRUE(metrics.ok()) << metrics.status().ToString();
  ASSERT_EQ(metrics->size(), gpus->size());
  for (size_t i = 0; i < metrics->size(); ++i) {
    const GpuMetrics& m = (*metrics)[i];
    EXPECT_EQ(m.uuid, (*gpus)[i].uuid);
    EXPECT_TRUE(m.healthy) << m.health_reason;
    EXPECT_GE(m.utilization_pct, 0);
    EXPECT_LE(m.utilization_pct, 100);
    EXPECT_GE(m.memory_used_mib, 0);
    EXPECT_LE(m.memory_used_mib, (*gpus)[i].memory_total_mib);
    EXPECT_GT(m.temperature_c, 0);
    EXPECT_LT(m.temperature_c, 120);
    EXPECT_GE(m.power_mw, 0);
    std::printf("GPU %zu: util=%d%% mem_used=%lld MiB temp=%d C power=%d mW\n", i, m.utilization_pct,
                static_cast<long long>(m.memory_used_mib), m.temperature_c, m.power_mw);
  }
}

}  // namespace
}  // namespace fastgpu::gpu
