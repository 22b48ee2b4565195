// `fastgpu simulate`: replay a job trace against one or more scheduling policies and print metrics.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "sim/cluster_spec.h"
#include "sim/simulator.h"

namespace fastgpu::sim {

// Options of `fastgpu simulate`. Each field names the flag it comes from.
struct SimulateOptions {
  std::string trace_path;                                   // --trace FILE (required), CSV as in sim/trace.h
  std::string cluster = std::string(kDefaultClusterSpec);   // --cluster NODESxGPUSxTYPE, e.g. 64x8xV100-32GB
  std::string policy = "fifo";                              // --policy NAME (ignored when compare is set)
  std::string placement = "best-fit";                       // --placement NAME (best-fit, spread)
  std::string compare;                                      // --compare P1,P2,... or "all"; empty = only policy
  std::string output = "table";                             // --output table|json|csv
  std::optional<int64_t> from_s;                            // --from S: keep jobs with submit_time_s >= S
  std::optional<int64_t> to_s;                              // --to S: keep jobs with submit_time_s <= S
  std::string queue;                                        // --queue VC: keep only this queue (virtual cluster)
  int64_t reschedule_interval_s = 0;                        // --tick S: also reschedule after S idle seconds
  std::string preemptible = "all";                          // --preemptible all|none|FRACTION (e.g. 0.5): which
                                                            // jobs may be preempted (a fraction: by a seeded
                                                            // hash of the job id)
  bool by_project = false;                                  // --by-project: also figures per project (queue)
  bool preempt_across_projects = false;                     // --preempt-across-projects: lift the cross-project
                                                            // preemption rule (SchedulerOptions)
  bool timing = true;                                       // --no-timing sets false: omit wall time and RSS
                                                            // so the output is byte-for-byte reproducible
  std::optional<bool> progress;                             // --progress / --no-progress; unset = a progress
                                                            // bar on stderr only when stderr is a terminal
};

// Every policy name MakeScheduler is expected to know, in the order `--compare all` runs them.
const std::vector<std::string>& KnownPolicies();

// Parses --preemptible: "all" = 1000, "none" = 0, a fraction in [0, 1] with up to 3 decimals ("0.5" = 500)
// into permille.
Result<int64_t> ParsePreemptible(const std::string& text);

// Splits "fifo, sjf,las" into {"fifo","sjf","las"}; rejects empty items.
Result<std::vector<std::string>> ParsePolicyList(const std::string& list);

// One policy's replay with its cost.
struct PolicyRun {
  SimMetrics metrics;
  double wall_s = 0;          // replay only (trace loading excluded)
  int64_t peak_rss_kib = 0;   // process peak RSS after the replay (getrusage; monotonic across runs)
};

// Renders results. `format` is table, json or csv. Deterministic unless `timing` is true.
std::string FormatResults(const std::vector<PolicyRun>& runs, const ClusterSpec& cluster, const SimulateOptions& opts,
                          const Trace& trace, const std::string& format);

// Runs the command. Results go to `out`, errors and the progress bar to `err`. Returns the process exit code:
// 0 success, 2 invalid options or trace, 1 a replay failed.
int RunSimulateCommand(const SimulateOptions& options, std::ostream& out, std::ostream& err, const Clock& clock);

}  // namespace fastgpu::sim
