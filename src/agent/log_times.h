// When each part of a job's log was written, and the readers built on it: the last N lines, the lines written
// since a time, and lines prefixed with their time (`fastgpu job logs --tail N --since D --timestamps`).
//
// The time index of a log (`<log>.times`, next to `<log>`) is a file of fixed 24-byte records, appended while
// the job runs and never rewritten: {start, end, unix ms} (three little-endian int64), meaning "the bytes
// [start, end) of the log were first seen at that time". The job's supervisor (process_executor.cc) keeps it:
// it watches the log with a one-shot inotify watch (every 250 ms where inotify is unavailable) and, when the log
// has grown, appends one record for what is new; while output keeps coming it checks the log every 10 ms without a
// watch (so a chatty job's writes cost nothing more: measured within noise of no index at 150,000 writes/s) and
// watches again once a check finds nothing new. So a byte's time is the time the supervisor first saw it: normally
// within a millisecond of the write, at most ~10 ms late during a burst. A line's time is that of its first byte. Records follow each other in the file's order; their times
// never go back (a clock stepped back repeats the last time). Bytes no record covers (a log written before the
// index existed, output of processes that outlive their job's supervisor) have no known time: they are shown
// with "-" instead of a time, and `since` leaves such a line out only when it is known to be older.
// A remote agent pushes the index to the server next to the log bytes (POST /v1/agent/log-times), before them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "agent/control_plane.h"
#include "common/status.h"

namespace fastgpu::agent {

constexpr int64_t kLogTimeRecordBytes = 24;
// A record is appended at most this often while output keeps coming (the first after a quiet spell at once).
constexpr int64_t kLogTimeSpacingMs = 10;

// The time index next to the log at `log_path`.
std::string LogTimesPath(const std::string& log_path);

// Encoding of one record (24 bytes) and of many.
void EncodeLogTime(const LogTime& t, char out[kLogTimeRecordBytes]);
LogTime DecodeLogTime(const char in[kLogTimeRecordBytes]);

// Reads records [first, first + max_records) of the index file at `path` (an absent file: none kept).
Result<LogTimes> ReadLogTimesFile(const std::string& path, int64_t first, int64_t max_records);

// Appends the record {start, end, unix_ms} to the index at `path` (created 0600). For writers other than the
// supervisor (a launch that fails before the job runs writes its reason to the log).
Status AppendLogTimeFile(const std::string& path, const LogTime& t);

// What the readers below read a log through (one job, one rank).
class LogReader {
 public:
  virtual ~LogReader() = default;
  virtual Result<LogChunk> Read(int64_t offset, int64_t max_bytes) = 0;
  virtual Result<LogTimes> Times(int64_t first, int64_t max_records) = 0;
};

// Bytes read per step by the readers below (their memory is this, whatever the log's size).
constexpr int64_t kLogScanBlock = 64 << 10;

// The offset where the last `lines` lines of the log's first `end` bytes start (an unterminated last line counts
// as a line). Reads backwards from `end`, one block at a time, until it has seen enough line ends.
Result<int64_t> TailStart(LogReader& log, int64_t end, int64_t lines);

// The offset from which the log's lines may have been written at or after `since_ms`: lines that start before it
// are known to be older. Not necessarily a line start (see LineStart). `modified_ms`: when the log last changed
// (0: unknown); a log last changed before `since_ms` is older as a whole (answer: `size`).
Result<int64_t> SinceStart(LogReader& log, int64_t since_ms, int64_t size, int64_t modified_ms);

// True when `offset` is the start of a line (0, or the byte before it is a line end).
Result<bool> AtLineStart(LogReader& log, int64_t offset);

// Prefixes each line of a log with its time, RFC 3339 UTC with milliseconds ("2026-12-08T10:00:00.123Z "), or
// "- " where no time is known. Fed consecutive pieces of the log.
class LogStamper {
 public:
  // `offset`: where the first piece starts; `at_line_start`: whether a line starts there.
  LogStamper(LogReader& log, int64_t offset, bool at_line_start);
  // Stamps a prefix of `data` (which starts where the previous piece ended) and appends it to `*out`; returns how
  // many bytes of `data` it used. A line that starts beyond the last record may still get one (the supervisor
  // records what it sees a few ms after the write, a remote node pushes the records next): such a line is left for
  // a later call unless `final` (then it gets "-").
  Result<size_t> Stamp(std::string_view data, bool final, std::string* out);
  // Whether any record was found (false: this log has no recorded times at all, so far).
  bool any_times() const { return any_times_; }

 private:
  // The time of the line starting at `p`: its ms, -1 when no time is known, or -2 when its record may still come.
  Result<int64_t> TimeAt(int64_t p, bool* reloaded);
  Status Seek(int64_t p);

  LogReader& log_;
  int64_t offset_;
  bool at_line_start_;
  bool positioned_ = false;
  bool any_times_ = false;
  std::vector<LogTime> window_;  // records [window_first_, window_first_ + size) of the index
  int64_t window_first_ = 0;
  size_t cursor_ = 0;  // into window_: the first record whose end is beyond the last line start looked up
};

}  // namespace fastgpu::agent
