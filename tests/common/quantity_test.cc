#include "common/quantity.h"

#include <gtest/gtest.h>

namespace fastgpu {
namespace {

TEST(Quantity, ParsesGpuFractions) {
  EXPECT_EQ(*ParseMilliGpu("2"), 2000);
  EXPECT_EQ(*ParseMilliGpu("0.25"), 250);
  EXPECT_EQ(*ParseMilliGpu("1.5"), 1500);
  EXPECT_FALSE(ParseMilliGpu("-1").ok());
  EXPECT_FALSE(ParseMilliGpu("0.0001").ok());
  EXPECT_FALSE(ParseMilliGpu("abc").ok());
  EXPECT_FALSE(ParseMilliGpu("").ok());
  EXPECT_FALSE(ParseMilliGpu("99999999999").ok());
  EXPECT_EQ(FormatMilliGpu(250), "0.25");
  EXPECT_EQ(FormatMilliGpu(2000), "2");
  EXPECT_EQ(FormatMilliGpu(2500), "2.5");
}

TEST(Quantity, ParsesDurations) {
  EXPECT_EQ(*ParseDurationSeconds("90s"), 90);
  EXPECT_EQ(*ParseDurationSeconds("30m"), 1800);
  EXPECT_EQ(*ParseDurationSeconds("24h"), 86400);
  EXPECT_EQ(*ParseDurationSeconds("24 hours"), 86400);
  EXPECT_EQ(*ParseDurationSeconds("1h30m"), 5400);
  EXPECT_EQ(*ParseDurationSeconds("2d"), 172800);
  EXPECT_EQ(*ParseDurationSeconds("45"), 45);
  EXPECT_FALSE(ParseDurationSeconds("-5s").ok());
  EXPECT_FALSE(ParseDurationSeconds("5 fortnights").ok());
  EXPECT_FALSE(ParseDurationSeconds("100000d").ok());
  EXPECT_EQ(FormatDuration(5400), "1h30m");
  EXPECT_EQ(FormatDuration(59), "59s");
}

TEST(Quantity, ParsesMemory) {
  EXPECT_EQ(*ParseMemoryMiB("4096"), 4096);
  EXPECT_EQ(*ParseMemoryMiB("16GiB"), 16384);
  EXPECT_EQ(*ParseMemoryMiB("16G"), 16384);
  EXPECT_EQ(*ParseMemoryMiB("512MiB"), 512);
  EXPECT_FALSE(ParseMemoryMiB("lots").ok());
  EXPECT_FALSE(ParseMemoryMiB("5 parsecs").ok());
}

}  // namespace
}  // namespace fastgpu
