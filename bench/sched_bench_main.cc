// fastgpu_sched_bench [policy] [placement] [pending] [nodes] [rounds]: prints scheduler throughput.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bench/scheduler_bench.h"

int main(int argc, char** argv) {
  fastgpu::bench::SchedulerBenchOptions o;
  if (argc > 1) o.policy = argv[1];
  if (argc > 2) o.placement = argv[2];
  if (argc > 3) o.pending = std::atoi(argv[3]);
  if (argc > 4) o.nodes = std::atoi(argv[4]);
  if (argc > 5) o.rounds = std::atoi(argv[5]);
  fastgpu::SystemClock clock;
  auto r = fastgpu::bench::RunSchedulerBench(o, clock);
  if (!r.ok()) {
    std::fprintf(stderr, "error: %s\n", r.status().ToString().c_str());
    return 1;
  }
  std::fputs(fastgpu::bench::FormatSchedulerBench(*r).c_str(), stdout);
  return 0;
}
