#include "sim/trace.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace fastgpu::sim {
namespace {

constexpr std::string_view kHeader = "job_id,submit_time_s,num_gpus,duration_s,user,queue,status";
constexpr int kColumns = 7;

std::string_view StripCr(std::string_view s) {
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

Status LineError(const std::string& source, int line, const std::string& what) {
  return InvalidArgument(source + ": line " + std::to_string(line) + ": " + what);
}

Result<int64_t> ParseInt(std::string_view text, std::string_view column, int64_t min, const std::string& source,
                         int line) {
  std::string_view t = Trim(text);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec == std::errc::invalid_argument || ptr != t.data() + t.size()) {
    return LineError(source, line,
                     std::string(column) + " '" + std::string(text) + "' is not an integer");
  }
  if (ec == std::errc::result_out_of_range) {
    return LineError(source, line, std::string(column) + " '" + std::string(text) + "' is out of range");
  }
  if (v < min) {
    return LineError(source, line,
                     std::string(column) + " " + std::to_string(v) + " must be >= " + std::to_string(min));
  }
  return v;
}

}  // namespace

Result<Trace> ParseTrace(std::string_view csv, std::string source, const TraceFilter& filter) {
  Trace trace;
  trace.source = std::move(source);
  std::unordered_map<std::string, int> seen;  // job_id -> line
  int line_no = 0;
  bool header_seen = false;
  size_t pos = 0;
  std::string_view fields[kColumns];
  while (pos < csv.size()) {
    size_t eol = csv.find('\n', pos);
    if (eol == std::string_view::npos) eol = csv.size();
    std::string_view line = StripCr(csv.substr(pos, eol - pos));
    pos = eol + 1;
    ++line_no;
    if (Trim(line).empty()) continue;
    if (!header_seen) {
      if (line.size() >= 3 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);  // UTF-8 BOM
      if (Trim(line) != kHeader) {
        return LineError(trace.source, line_no,
                         "expected the header '" + std::string(kHeader) + "', got '" + std::string(line) + "'");
      }
      header_seen = true;
      continue;
    }
    int n = 0;
    size_t start = 0;
    while (true) {
      size_t comma = line.find(',', start);
      std::string_view f = line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (n < kColumns) fields[n] = f;
      ++n;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (n != kColumns) {
      return LineError(trace.source, line_no,
                       "expected " + std::to_string(kColumns) + " comma-separated fields (" + std::string(kHeader) +
                           "), got " + std::to_string(n));
    }
    ++trace.rows_read;
    TraceJob job;
    job.line = line_no;
    job.job_id = std::string(Trim(fields[0]));
    if (job.job_id.empty()) return LineError(trace.source, line_no, "job_id is empty");
    ASSIGN_OR_RETURN(job.submit_time_s, ParseInt(fields[1], "submit_time_s", 0, trace.source, line_no));
    ASSIGN_OR_RETURN(int64_t gpus, ParseInt(fields[2], "num_gpus", 1, trace.source, line_no));
    if (gpus > 1'000'000) return LineError(trace.source, line_no, "num_gpus " + std::to_string(gpus) + " is too large");
    job.num_gpus = static_cast<int>(gpus);
    ASSIGN_OR_RETURN(job.duration_s, ParseInt(fields[3], "duration_s", 0, trace.source, line_no));
    job.user = std::string(Trim(fields[4]));
    job.queue = std::string(Trim(fields[5]));
    job.status = std::string(Trim(fields[6]));
    auto [it, inserted] = seen.emplace(job.job_id, line_no);
    if (!inserted) {
      return LineError(trace.source, line_no,
                       "duplicate job_id '" + job.job_id + "' (first on line " + std::to_string(it->second) + ")");
    }
    if (filter.from_s && job.submit_time_s < *filter.from_s) continue;
    if (filter.to_s && job.submit_time_s > *filter.to_s) continue;
    if (!filter.queue.empty() && job.queue != filter.queue) continue;
    trace.jobs.push_back(std::move(job));
  }
  if (!header_seen) {
    return InvalidArgument(trace.source + ": empty trace (expected the header '" + std::string(kHeader) + "')");
  }
  std::stable_sort(trace.jobs.begin(), trace.jobs.end(),
                   [](const TraceJob& a, const TraceJob& b) { return a.submit_time_s < b.submit_time_s; });
  return trace;
}

Result<Trace> LoadTrace(const std::string& path, const TraceFilter& filter) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open trace file '" + path + "'");
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return InvalidArgument("error reading trace file '" + path + "'");
  return ParseTrace(buf.str(), path, filter);
}

}  // namespace fastgpu::sim
