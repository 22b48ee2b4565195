// Job traces for the simulator.
//
// CSV format (header line required, one job per line):
//   job_id,submit_time_s,num_gpus,duration_s,user,queue,status
// job_id is a non-empty string (integers in the bundled trace), submit_time_s >= 0, num_gpus >= 1 and
// duration_s >= 0 are integers; user, queue and status are free text ("unknown" when not known).
// See data/traces/README.md for the bundled Philly trace and for mapping other traces onto this format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fastgpu::sim {

struct TraceJob {
  std::string job_id;
  int64_t submit_time_s = 0;
  int num_gpus = 1;
  int64_t duration_s = 0;
  std::string user;
  std::string queue;
  std::string status;
  int line = 0;  // line number in the source file (1 = header)
};

// Which rows of a trace to keep. Bounds are inclusive and apply to submit_time_s.
struct TraceFilter {
  std::optional<int64_t> from_s;
  std::optional<int64_t> to_s;
  std::string queue;  // empty = every queue
};

struct Trace {
  std::string source;          // file name (for messages)
  std::vector<TraceJob> jobs;  // sorted by (submit_time_s, line)
  int64_t rows_read = 0;       // data rows in the file, before filtering
};

// Parses CSV text. `source` names the input in error messages ("trace.csv: line 12: ...").
Result<Trace> ParseTrace(std::string_view csv, std::string source, const TraceFilter& filter = {});
// Reads and parses a CSV file.
Result<Trace> LoadTrace(const std::string& path, const TraceFilter& filter = {});

}  // namespace fastgpu::sim
