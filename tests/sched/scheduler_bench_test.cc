#include <gtest/gtest.h>

#include "bench/scheduler_bench.h"

namespace fastgpu::bench {
namespace {

TEST(SchedulerBench, CountsOneDecisionPerQueuedJobPerRound) {
  SchedulerBenchOptions o;
  o.nodes = 20;
  o.pending = 500;
  o.rounds = 2;
  FakeClock clock;
  auto r = RunSchedulerBench(o, clock);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->decisions, 1000);
  EXPECT_EQ(r->binds + r->pending, r->decisions);
  EXPECT_GT(r->binds, 0);
  EXPECT_EQ(r->gpus, 160);
  EXPECT_LE(r->allocated_milli, 160 * 1000);
  EXPECT_NE(FormatSchedulerBench(*r).find("decisions: 1000"), std::string::npos);
}

TEST(SchedulerBench, RejectsBadOptions) {
  SchedulerBenchOptions o;
  o.policy = "nope";
  FakeClock clock;
  EXPECT_FALSE(RunSchedulerBench(o, clock).ok());
  o.policy = "fifo";
  o.nodes = 0;
  EXPECT_FALSE(RunSchedulerBench(o, clock).ok());
}

}  // namespace
}  // namespace fastgpu::bench
