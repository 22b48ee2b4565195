// The client verbs, over an injected Client, output streams and clock. Each returns the process exit code.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/config.h"
#include "cli/job_file.h"
#include "common/clock.h"
#include "common/status.h"

namespace fastgpu::cli {

// Exit codes.
// Exit codes, the same for every verb (README, "Exit codes"):
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the server refused or failed the request; `job wait`: the job failed
inline constexpr int kExitUsage = 2;    // bad input (nothing sent); `job wait`: timeout or error
inline constexpr int kExitNotFound = 3;     // what was named does not exist (HTTP 404)
inline constexpr int kExitDenied = 4;       // not logged in, or not allowed (HTTP 401 / 403)
inline constexpr int kExitUnavailable = 5;  // the server cannot be reached, or is unavailable (HTTP 503)

enum class OutputFormat { kTable, kJson, kCsv };
// "csv" is accepted only where `allow_csv` (verbs with a CSV export).
Result<OutputFormat> ParseOutputFormat(const std::string& text, bool allow_csv = false);

// "fastgpu: error: <message>" on one line (newlines in the message become spaces).
std::string ErrorLine(const Status& st);
// Prints ErrorLine to `err` and returns `exit_code`.
int ReportError(std::ostream& err, const Status& st, int exit_code);

struct Context {
  const Client& client;
  std::ostream& out;
  std::ostream& err;
  OutputFormat format = OutputFormat::kTable;
  bool color = false;  // ANSI colours (stdout is a terminal and NO_COLOR is unset)
  const Clock& clock;
  bool progress = false;  // stderr is a terminal and TERM is not dumb: long waits redraw a status line there
};

int JobSubmit(Context& ctx, const SubmitFlags& flags, const ReadFileFn& read_file);

struct JobListFlags {
  std::string states;  // "QUEUED,RUNNING" (case-insensitive)
  std::optional<int> limit;
  bool all = false;    // every job (follows the server's pages)
  std::string project;
  std::string user;    // --user
  std::string name;    // --name
  std::string since;   // --since: a duration back from now (2h, 1d) or a time (2026-12-08T10:00Z)
  bool tasks = false;  // --tasks: list the tasks of job arrays too (default: each array as one row)
};
inline constexpr int kDefaultJobListLimit = 50;
inline constexpr int kJobListPage = 1000;  // the most the server returns in one page
int JobList(Context& ctx, const JobListFlags& flags);
int JobGet(Context& ctx, const std::string& id);
// The id of the task with index `index` of the job array `array_id` (`job logs ID --task N`).
Result<std::string> ArrayTaskId(Context& ctx, const std::string& array_id, int index);
// The line `job wait` redraws on a terminal: "j-3 QUEUED since submit, 12s: waiting: needs 2 GPUs ...",
// "j-3 RUNNING for 1m 5s on node-1". At most 100 characters.
std::string WaitProgressLine(const api::Job& job, UnixMillis now);
// `rank`: the member of a multi-node job whose output to show (0 for a job on one node).
struct JobLogsFlags {
  bool follow = false;      // -f: until the job ends
  int rank = 0;             // --rank: the member of a multi-node job
  int64_t tail = -1;        // --tail N: the last N lines (-1: all)
  std::string since;        // --since: a duration back from now (10m, 2h, 1d) or a time (2026-12-08T10:00Z)
  bool timestamps = false;  // --timestamps: each line prefixed with its time
};
int JobLogs(Context& ctx, const std::string& id, const JobLogsFlags& flags);
// --since of job list and job logs: a duration back from `now` (2h, 1d) or a time as --begin takes it
// (2026-12-08T10:00:00Z, 2026-12-08). kInvalidArgument naming `flag` otherwise.
Result<UnixMillis> ParseSince(const std::string& text, UnixMillis now, const std::string& flag);
// Exit 0 when SUCCEEDED, 1 when FAILED/CANCELLED/LOST, 2 on timeout or error. `timeout` is text such as
// "30s"; empty = wait forever.
int JobWait(Context& ctx, const std::string& id, const std::string& timeout);
int JobCancel(Context& ctx, const std::string& id);
// `job migrate ID [--reason TEXT] [--force]`: asks a running job to checkpoint and stop, then requeues it (its next
// attempt prefers other GPUs). Exit 0 when asked, 1 when refused (not running, not preemptible without --force).
int JobMigrate(Context& ctx, const std::string& id, const std::string& reason, bool force);
struct JobCancelFlags {
  std::vector<std::string> ids;
  bool all = false;     // every job not ended yet, narrowed by the filters
  std::string states;   // "QUEUED,RUNNING"
  std::string name;
  std::string project;
};
// `job cancel ID…` or `job cancel --all [filters]`: each job in turn; a summary line for --all.
int JobCancelMany(Context& ctx, const JobCancelFlags& flags);
int JobEvents(Context& ctx, const std::string& id);
int GpuList(Context& ctx);
// `fastgpu gpu top`: every GPU (utilisation, memory, temperature, power, SM clock, job), redrawn every `interval_ms`
// on a terminal like `nvidia-smi dmon` (frames one after another otherwise; one JSON object per line with
// --output json); `count` frames (0 = until interrupted).
int GpuTop(Context& ctx, int64_t interval_ms, int64_t count, bool redraw);
int NodeList(Context& ctx);

}  // namespace fastgpu::cli
