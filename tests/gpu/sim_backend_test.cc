#include "gpu/sim/sim_backend.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "gpu/backend.h"

namespace fastgpu::gpu {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

std::unique_ptr<SimulatedBackend> MustCreate(const std::string& spec, const std::string& node = "node-a") {
  auto r = SimulatedBackend::Create(spec, node);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : nullptr;
}

TEST(SimSpecTest, ParsesSingleAndMultipleEntries) {
  auto one = ParseSimGpuSpec("4xA100-80GB");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].count, 4);
  EXPECT_EQ((*one)[0].type, "A100-80GB");
  EXPECT_EQ((*one)[0].model, "A100");
  EXPECT_EQ((*one)[0].memory_total_mib, 80 * 1024);

  auto two = ParseSimGpuSpec(" 2xH100-80GB , 1xa10-24gb ");
  ASSERT_TRUE(two.ok()) << two.status().ToString();
  ASSERT_EQ(two->size(), 2u);
  EXPECT_EQ((*two)[0].type, "H100-80GB");
  EXPECT_EQ((*two)[1].count, 1);
  EXPECT_EQ((*two)[1].type, "A10-24GB");
  EXPECT_EQ((*two)[1].memory_total_mib, 24 * 1024);

  auto rtx = ParseSimGpuSpec("8xRTX4090-24GB");
  ASSERT_TRUE(rtx.ok());
  EXPECT_EQ((*rtx)[0].type, "RTX4090-24GB");
}

TEST(SimSpecTest, NoneIsAnEmptyFleet) {
  auto none = ParseSimGpuSpec("none");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto backend = MakeSimulatedBackend("none", "node-a");
  ASSERT_TRUE(backend.ok());
  auto gpus = (*backend)->Discover();
  ASSERT_TRUE(gpus.ok());
  EXPECT_TRUE(gpus->empty());
  auto metrics = (*backend)->Sample();
  ASSERT_TRUE(metrics.ok());
  EXPECT_TRUE(metrics->empty());
}

void ExpectBad(const std::string& spec, const std::string& fragment) {
  auto r = ParseSimGpuSpec(spec);
  ASSERT_FALSE(r.ok()) << spec;
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << spec;
  EXPECT_THAT(r.status().message(), HasSubstr(fragment)) << spec;
}

TEST(SimSpecTest, RejectsBadSpecsWithActionableMessages) {
  ExpectBad("x", "bad --sim-gpus entry 'x': expected COUNTxTYPE such as 4xA100-80GB");
  ExpectBad("A100-80GB", "bad --sim-gpus entry 'A100-80GB': expected COUNTxTYPE such as 4xA100-80GB");
  ExpectBad("4x", "bad --sim-gpus entry '4x': expected COUNTxTYPE");
  ExpectBad("-1xA100-80GB", "expected COUNTxTYPE");
  ExpectBad("0xA100-80GB", "bad --sim-gpus entry '0xA100-80GB': count must be 1..64");
  ExpectBad("65xA100-80GB", "count must be 1..64");
  ExpectBad("99999xA100-80GB", "count must be 1..64");
  ExpectBad("4xA100", "bad --sim-gpus entry '4xA100': type must be MODEL-<N>GB such as A100-80GB");
  ExpectBad("4xA100-80", "type must be MODEL-<N>GB");
  ExpectBad("4xA100-GB", "type must be MODEL-<N>GB");
  ExpectBad("4x-80GB", "type must be MODEL-<N>GB");
  ExpectBad("4xA1 00-80GB", "type must be MODEL-<N>GB");
  ExpectBad("4xA100-0GB", "memory must be 1..1024 GB");
  ExpectBad("4xA100-2048GB", "memory must be 1..1024 GB");
  ExpectBad("4xA100-80GB,", "bad --sim-gpus entry ''");
  ExpectBad("4xA100-80GB,,1xA10-24GB", "bad --sim-gpus entry ''");
  ExpectBad("", "empty --sim-gpus");
  ExpectBad("   ", "empty --sim-gpus");
  ExpectBad("64xA100-80GB,64xA100-80GB,64xA100-80GB,64xA100-80GB,1xA10-24GB",
            "--sim-gpus asks for 257 GPUs; at most 256");
  auto make = MakeSimulatedBackend("4xA100", "n");
  ASSERT_FALSE(make.ok());
  EXPECT_EQ(make.status().code(), ErrorCode::kInvalidArgument);
}

TEST(SimBackendTest, DiscoversPlausibleFleet) {
  auto backend = MustCreate("2xH100-80GB,1xA10-24GB");
  ASSERT_NE(backend, nullptr);
  EXPECT_EQ(backend->Name(), "simulated");
  auto gpus = backend->Discover();
  ASSERT_TRUE(gpus.ok());
  ASSERT_EQ(gpus->size(), 3u);
  std::set<std::string> uuids;
  for (size_t i = 0; i < gpus->size(); ++i) {
    const GpuInfo& g = (*gpus)[i];
    EXPECT_EQ(g.index, static_cast<int>(i));
    EXPECT_THAT(g.uuid, MatchesRegex("SIM-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"));
    EXPECT_TRUE(g.simulated);
    uuids.insert(g.uuid);
  }
  EXPECT_EQ(uuids.size(), 3u);
  EXPECT_EQ((*gpus)[0].type, "H100-80GB");
  EXPECT_EQ((*gpus)[0].name, "H100-80GB (simulated)");
  EXPECT_EQ((*gpus)[0].memory_total_mib, 81920);
  EXPECT_EQ((*gpus)[0].pci_bus_id, "00000000:01:00.0");
  EXPECT_EQ((*gpus)[1].pci_bus_id, "00000000:02:00.0");
  EXPECT_EQ((*gpus)[2].type, "A10-24GB");
  EXPECT_EQ((*gpus)[2].name, "A10-24GB (simulated)");
  EXPECT_EQ((*gpus)[2].memory_total_mib, 24576);
  EXPECT_EQ((*gpus)[2].pci_bus_id, "00000000:03:00.0");
}

TEST(SimBackendTest, PciBusIdsUseHex) {
  auto backend = MustCreate("16xA100-80GB");
  ASSERT_NE(backend, nullptr);
  auto gpus = backend->Discover();
  ASSERT_TRUE(gpus.ok());
  EXPECT_EQ((*gpus)[9].pci_bus_id, "00000000:0A:00.0");
  EXPECT_EQ((*gpus)[15].pci_bus_id, "00000000:10:00.0");
}

TEST(SimBackendTest, UuidsAreDeterministicPerNode) {
  auto a1 = MustCreate("4xA100-80GB", "node-a");
  auto a2 = MustCreate("4xA100-80GB", "node-a");
  auto b = MustCreate("4xA100-80GB", "node-b");
  ASSERT_TRUE(a1 && a2 && b);
  auto ga1 = a1->Discover();
  auto ga2 = a2->Discover();
  auto gb = b->Discover();
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ((*ga1)[i].uuid, (*ga2)[i].uuid);
    EXPECT_NE((*ga1)[i].uuid, (*gb)[i].uuid);
  }
  EXPECT_EQ(a1->Sample()->at(0).temperature_c, a2->Sample()->at(0).temperature_c);
}

TEST(SimBackendTest, IdleMetricsArePlausible) {
  auto backend = MustCreate("2xA100-80GB,1xH100-80GB,1xA10-24GB,1xFOO9-8GB");
  ASSERT_NE(backend, nullptr);
  auto gpus = backend->Discover();
  auto metrics = backend->Sample();
  ASSERT_TRUE(metrics.ok());
  ASSERT_EQ(metrics->size(), 5u);
  for (size_t i = 0; i < metrics->size(); ++i) {
    const GpuMetrics& m = (*metrics)[i];
    EXPECT_EQ(m.uuid, (*gpus)[i].uuid);
    EXPECT_EQ(m.utilization_pct, 0);
    EXPECT_EQ(m.memory_used_mib, 0);
    EXPECT_GE(m.temperature_c, 30);
    EXPECT_LE(m.temperature_c, 40);
    EXPECT_TRUE(m.healthy);
    EXPECT_EQ(m.health_reason, "");
  }
  EXPECT_GE((*metrics)[0].power_mw, 55'000);   // A100 idle ~55 W
  EXPECT_LT((*metrics)[0].power_mw, 60'000);
  EXPECT_GE((*metrics)[2].power_mw, 70'000);   // H100 idle ~70 W
  EXPECT_LT((*metrics)[2].power_mw, 75'000);
  EXPECT_GE((*metrics)[3].power_mw, 20'000);   // A10 idle ~20 W
  EXPECT_LT((*metrics)[3].power_mw, 25'000);
  EXPECT_GE((*metrics)[4].power_mw, 30'000);   // unknown model: generic profile
  // Idle readings do not change between samples.
  auto again = backend->Sample();
  for (size_t i = 0; i < metrics->size(); ++i) {
    EXPECT_EQ((*again)[i].power_mw, (*metrics)[i].power_mw);
    EXPECT_EQ((*again)[i].temperature_c, (*metrics)[i].temperature_c);
  }
}

TEST(SimBackendTest, BusyGpusLookBusy) {
  auto backend = MustCreate("2xA100-80GB");
  ASSERT_NE(backend, nullptr);
  auto gpus = backend->Discover();
  const std::string busy = (*gpus)[1].uuid;
  backend->SetBusy(busy, true);
  for (int round = 0; round < 20; ++round) {
    auto metrics = backend->Sample();
    ASSERT_TRUE(metrics.ok());
    const GpuMetrics& idle_m = (*metrics)[0];
    const GpuMetrics& busy_m = (*metrics)[1];
    EXPECT_EQ(idle_m.utilization_pct, 0);
    EXPECT_GE(busy_m.utilization_pct, 90);
    EXPECT_LE(busy_m.utilization_pct, 100);
    EXPECT_EQ(busy_m.memory_used_mib, 61440);  // 75% of 80 GiB
    EXPECT_GE(busy_m.temperature_c, 60);
    EXPECT_LE(busy_m.temperature_c, 85);
    EXPECT_GT(busy_m.power_mw, 300'000);
    EXPECT_LE(busy_m.power_mw, 400'000);
  }
  backend->SetMemoryUsed(busy, 1234);
  EXPECT_EQ(backend->Sample()->at(1).memory_used_mib, 1234);
  backend->SetMemoryUsed(busy, 10'000'000);
  EXPECT_EQ(backend->Sample()->at(1).memory_used_mib, 81920);
  backend->SetMemoryUsed(busy, -1);
  EXPECT_EQ(backend->Sample()->at(1).memory_used_mib, 61440);
  backend->SetBusy(busy, false);
  auto after = backend->Sample();
  EXPECT_EQ((*after)[1].utilization_pct, 0);
  EXPECT_EQ((*after)[1].memory_used_mib, 0);
}

TEST(SimBackendTest, ReadingsRiseWithTheShareTheJobsHold) {
  auto backend = MustCreate("3xA100-80GB");
  ASSERT_NE(backend, nullptr);
  auto gpus = backend->Discover();
  ASSERT_TRUE(gpus.ok());
  // GPU 0 idle, GPU 1 a quarter GPU (two jobs of 125 milli each), GPU 2 whole with 20 GiB asked for.
  backend->SetLoad({{(*gpus)[1].uuid, 125, 0}, {(*gpus)[1].uuid, 125, 0}, {(*gpus)[2].uuid, 1000, 20480}});
  for (int round = 0; round < 20; ++round) {
    auto m = backend->Sample();
    ASSERT_TRUE(m.ok());
    const GpuMetrics& idle = (*m)[0];
    const GpuMetrics& quarter = (*m)[1];
    const GpuMetrics& full = (*m)[2];
    EXPECT_EQ(idle.utilization_pct, 0);
    EXPECT_EQ(idle.sm_clock_mhz, 210);
    EXPECT_EQ(idle.throttle_reasons, 0x1u);
    EXPECT_GE(quarter.utilization_pct, 22);
    EXPECT_LE(quarter.utilization_pct, 25);
    EXPECT_EQ(quarter.memory_used_mib, 15360);  // a quarter of 75% of 80 GiB
    EXPECT_GE(full.utilization_pct, 90);
    EXPECT_EQ(full.memory_used_mib, 20480);     // what the job asked for
    EXPECT_LT(idle.power_mw, quarter.power_mw);
    EXPECT_LT(quarter.power_mw, full.power_mw);
    EXPECT_LE(idle.temperature_c, quarter.temperature_c);
    EXPECT_LT(quarter.temperature_c, full.temperature_c);
    EXPECT_GT(quarter.memory_util_pct, 0);
    EXPECT_EQ(full.sm_clock_mhz >= 1380, true);
    EXPECT_EQ(full.power_limit_mw, 400'000);
    EXPECT_EQ(full.throttle_reasons, 0u);
  }
  // A new load replaces the old one: GPUs not named are idle again.
  backend->SetLoad({{(*gpus)[0].uuid, 1000, 0}});
  auto m = backend->Sample();
  EXPECT_GE((*m)[0].utilization_pct, 90);
  EXPECT_EQ((*m)[1].utilization_pct, 0);
  EXPECT_EQ((*m)[2].memory_used_mib, 0);
}

TEST(SimBackendTest, BusySequenceIsDeterministic) {
  auto a = MustCreate("1xH100-80GB");
  auto b = MustCreate("1xH100-80GB");
  const std::string uuid = a->Discover()->at(0).uuid;
  a->SetBusy(uuid, true);
  b->SetBusy(uuid, true);
  for (int i = 0; i < 10; ++i) {
    auto ma = a->Sample()->at(0);
    auto mb = b->Sample()->at(0);
    EXPECT_EQ(ma.utilization_pct, mb.utilization_pct);
    EXPECT_EQ(ma.power_mw, mb.power_mw);
    EXPECT_EQ(ma.temperature_c, mb.temperature_c);
  }
}

TEST(SimBackendTest, FaultInjection) {
  auto backend = MustCreate("2xA100-80GB");
  ASSERT_NE(backend, nullptr);
  const std::string uuid = backend->Discover()->at(0).uuid;
  EXPECT_TRUE(backend->Contains(uuid));
  EXPECT_FALSE(backend->Contains("SIM-unknown"));
  backend->SetHealthy(uuid, false);
  auto metrics = backend->Sample();
  EXPECT_FALSE((*metrics)[0].healthy);
  EXPECT_THAT((*metrics)[0].health_reason, HasSubstr("simulated fault"));
  EXPECT_TRUE((*metrics)[1].healthy);
  EXPECT_EQ(backend->Discover()->size(), 2u);  // still listed
  backend->SetHealthy(uuid, true);
  EXPECT_TRUE(backend->Sample()->at(0).healthy);
  // Unknown UUIDs are ignored.
  backend->SetHealthy("SIM-unknown", false);
  backend->SetBusy("SIM-unknown", true);
  auto final_metrics = backend->Sample();
  ASSERT_TRUE(final_metrics.ok());
  for (const auto& m : *final_metrics) EXPECT_TRUE(m.healthy);
}

TEST(SimBackendTest, ConcurrentUse) {
  auto backend = MustCreate("8xA100-80GB");
  ASSERT_NE(backend, nullptr);
  const auto gpus = *backend->Discover();
  std::thread writer([&] {
    for (int i = 0; i < 500; ++i) {
      const auto& g = gpus[static_cast<size_t>(i) % gpus.size()];
      backend->SetBusy(g.uuid, i % 2 == 0);
      backend->SetHealthy(g.uuid, i % 3 != 0);
    }
  });
  int samples = 0;
  for (int i = 0; i < 500; ++i) {
    auto m = backend->Sample();
    if (m.ok() && m->size() == 8) ++samples;
  }
  writer.join();
  EXPECT_EQ(samples, 500);
}

}  // namespace
}  // namespace fastgpu::gpu

namespace fastgpu::gpu {
namespace {

// What sampling costs per GPU (printed; docs/monitoring.md): a simulated fleet of 256 GPUs, half of them loaded.
TEST(SimBackendTest, SamplingCostPerGpu) {
  auto backend = MustCreate("64xA100-80GB,64xH100-80GB,64xA10-24GB,64xL4-24GB");
  ASSERT_NE(backend, nullptr);
  auto gpus = backend->Discover();
  ASSERT_TRUE(gpus.ok());
  std::vector<GpuLoad> loads;
  for (size_t i = 0; i < gpus->size(); i += 2) loads.push_back({(*gpus)[i].uuid, 500, 0});
  SystemClock wall;
  constexpr int kRounds = 200;
  const int64_t t0 = wall.MonotonicNanos();
  for (int r = 0; r < kRounds; ++r) {
    backend->SetLoad(loads);
    auto m = backend->Sample();
    ASSERT_TRUE(m.ok());
    ASSERT_EQ(m->size(), 256u);
  }
  const double ns = static_cast<double>(wall.MonotonicNanos() - t0) / kRounds / 256.0;
  std::printf("simulated GPU sampling: %.0f ns per GPU per sample (256 GPUs, SetLoad + Sample)\n", ns);
}

}  // namespace
}  // namespace fastgpu::gpu
