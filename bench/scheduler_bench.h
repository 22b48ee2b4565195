// Scheduler throughput benchmark: one synthetic cluster, one large mixed queue.
//
// What counts as a decision: every queued job gets exactly one verdict per Schedule call, either
// a Bind or a Pending entry with its reason; decisions = binds + pending verdicts, summed over
// rounds. Preemptions are reported separately and not counted. Once the cluster is full, the
// remaining verdicts are cheap "waiting" ones: binds and binds_per_s are reported alongside so
// the figure is not read as 100,000 placements.
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace fastgpu::bench {

struct SchedulerBenchOptions {
  int nodes = 1000;
  int gpus_per_node = 8;
  int pending = 100000;
  std::string policy = "priority";
  std::string placement = "best-fit";
  uint64_t seed = 1;
  int rounds = 1;  // Schedule calls, each on the same empty cluster and full queue
};

struct SchedulerBenchResult {
  int64_t decisions = 0;       // binds + pending verdicts over all rounds
  double seconds = 0;          // time inside Scheduler::Schedule, all rounds
  double decisions_per_s = 0;
  int64_t binds = 0;
  int64_t pending = 0;
  int64_t preemptions = 0;
  double binds_per_s = 0;
  int64_t gpus = 0;            // GPUs in the cluster
  int64_t allocated_milli = 0; // milli-GPU bound in the last round
  int rounds = 0;
  std::string scheduler;       // Scheduler::Name()
};

Result<SchedulerBenchResult> RunSchedulerBench(const SchedulerBenchOptions& options, const Clock& clock);

// One line per figure, "decisions_per_s: 123456".
std::string FormatSchedulerBench(const SchedulerBenchResult& r);

}  // namespace fastgpu::bench
