#include <gtest/gtest.h>

#include "gpu/backend.h"

namespace fastgpu::gpu {
namespace {

TEST(NormaliseGpuTypeTest, CommonDataCentreGpus) {
  EXPECT_EQ(NormaliseGpuType("NVIDIA A100-SXM4-80GB", 81920), "A100-80GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA A100-SXM4-40GB", 40960), "A100-40GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA A100-PCIE-40GB", 40536), "A100-40GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA H100 80GB HBM3", 81559), "H100-80GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA H100 PCIe", 81559), "H100-80GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA H100 NVL", 95830), "H100-94GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA H200", 143771), "H200-141GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA A10", 23028), "A10-24GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA L4", 23034), "L4-24GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA L40S", 46068), "L40S-48GB");
  EXPECT_EQ(NormaliseGpuType("Tesla V100-SXM2-32GB", 32510), "V100-32GB");
  EXPECT_EQ(NormaliseGpuType("Tesla T4", 15360), "T4-16GB");
}

TEST(NormaliseGpuTypeTest, ConsumerAndWorkstationGpus) {
  EXPECT_EQ(NormaliseGpuType("NVIDIA GeForce RTX 4090", 24564), "RTX4090-24GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA GeForce RTX 3090", 24576), "RTX3090-24GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA RTX A6000", 49140), "RTXA6000-48GB");
  EXPECT_EQ(NormaliseGpuType("Quadro RTX 8000", 48601), "RTX8000-48GB");
}

TEST(NormaliseGpuTypeTest, MemoryFromNameWhenSizeUnknown) {
  EXPECT_EQ(NormaliseGpuType("NVIDIA A100-SXM4-80GB", 0), "A100-80GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA H100 80GB HBM3", 0), "H100-80GB");
  EXPECT_EQ(NormaliseGpuType("NVIDIA A10", 0), "A10");
}

TEST(NormaliseGpuTypeTest, OddInputs) {
  EXPECT_EQ(NormaliseGpuType("", 0), "GPU");
  EXPECT_EQ(NormaliseGpuType("NVIDIA", 16384), "GPU-16GB");
  EXPECT_EQ(NormaliseGpuType("nvidia a100-sxm4-80gb", 81920), "A100-80GB");
  // Sizes far from any marketed capacity are rounded to the nearest GB.
  EXPECT_EQ(NormaliseGpuType("Mystery X1", 2000 * 1024), "MYSTERY-2000GB");
  EXPECT_EQ(NormaliseGpuType("Mystery X1", 100), "MYSTERY-1GB");
}

}  // namespace
}  // namespace fastgpu::gpu
