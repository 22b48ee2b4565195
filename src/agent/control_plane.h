// The agent <-> server protocol as C++ interfaces. `fastgpu up` wires them in-process;
// fleet mode implements the same interfaces over HTTP+JSON.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "api/types.h"
#include "common/status.h"

namespace fastgpu::agent {

// What the agent tells the server about one job it runs.
struct JobReport {
  enum class Kind { kStarted, kExited, kLost };
  Kind kind = Kind::kStarted;
  std::string job_id;
  int attempt = 0;                 // the attempt this report is about (stale reports are ignored)
  std::string node;
  int64_t pid = 0;                 // kStarted
  std::optional<int> exit_code;    // kExited
  std::optional<int> signal;       // kExited
  std::string reason;              // kLost / exec failures
  // kExited: when the process ended (Unix ms; 0 = unknown, use the time of the report). Exits found
  // after an agent restart carry the real time, so the run is not billed for the downtime.
  int64_t finished_at_ms = 0;
  // A member of a multi-node job: its rank (the reporting node is that member's node).
  int rank = 0;
};

struct NodeRegistration {
  api::Node node;
  std::vector<api::Gpu> gpus;
  // After a restart: jobs the agent found still running (adopted) and jobs that ended while it was down
  // (plus any report not delivered yet). Together they name every attempt this node started and has not
  // reported: an attempt assigned to the node that is in neither was never started there (the executor
  // records a start before it forks, and a start it cannot prove is claimed so that it never runs; see
  // kClaimFile), so the server may start it again without running it twice.
  std::vector<std::string> running_job_ids;
  std::vector<JobReport> recovered;
};

// One attempt a node runs (heartbeats carry them so that both sides can reconcile).
struct RunningAttempt {
  std::string job_id;
  int attempt = 0;
};

struct NodeHeartbeat {
  std::string node;
  std::vector<api::Gpu> gpus;              // live metrics (memory used, util, temperature, power, health)
  std::vector<std::string> running_job_ids;
  std::vector<RunningAttempt> running;     // the same jobs with their attempt numbers
};

// A command from the server to one node.
struct JobCommand {
  // kExec: run a command inside a running job (`fastgpu job exec`, docs/exec.md); its I/O goes through the
  // exec session named by `session` (PushExecOutput / WaitExecInput).
  // kFiles: list or read a path under a job's work dir (`fastgpu job files`, docs/sync.md); the answer goes back with
  // PostFiles under `request`.
  enum class Kind { kStart, kStop, kExec, kFiles };
  Kind kind = Kind::kStart;
  // Assigned by the server, increasing per node. Over the network a command is delivered at least once:
  // the agent acknowledges the highest id it has applied (AckCommands) and the server sends again what
  // is not acknowledged. Applying a command twice is harmless (starts are keyed by job and attempt,
  // stops by attempt).
  uint64_t id = 0;
  api::Job job;                    // kStart: full job incl. assigned_gpus/indices, attempt
  // kStart: who the job runs as when the agent runs as root (ignored by an agent that is not root:
  // jobs then run as the agent's own user). The project's own Unix uid (also its gid; no passwd entry
  // needed), never shared with another project...
  int64_t run_as_uid = 0;
  // ...or, when set, the named OS user the project is configured with (admin only, for shared storage).
  // With neither, a root agent refuses to start the job.
  std::string run_as_user;
  // kStart: the project allows jobs to run as root (uid 0). Without it, a start that would run as
  // root fails with a reason instead.
  bool allow_root = false;
  // kStart: values of the project secrets named by job.spec.secrets (name -> value), filled by the
  // server. Added to the job's environment at exec only: the agent never writes them to disk or logs.
  std::map<std::string, std::string> secret_env;
  // kStart of a multi-node job (job.members not empty): one command per member node, all with the same job
  // id and attempt. job.node, job.assigned_gpus and job.assigned_gpu_indices are this member's (job.members
  // lists them all); `rank` is its node rank, and master_addr:master_port is where rank 0 listens for the
  // gang's rendezvous (MASTER_ADDR / MASTER_PORT).
  int rank = 0;
  std::string master_addr;
  int master_port = 0;
  std::string job_id;              // kStop
  int attempt = 0;                 // kStop: the attempt to stop
  std::string reason;              // kStop: "cancelled by user", "runtime limit", "preempted"
  int64_t grace_ms = 10'000;       // kStop: SIGTERM, then SIGKILL after this
  // kStop of a preemption or a migration: `checkpoint_signal` (SIGUSR1 unless the job asked for another) goes to
  // the job's processes first, SIGTERM only `checkpoint_grace_ms` later (if it is still running), then SIGKILL
  // after grace_ms. 0: no checkpoint signal, SIGTERM at once.
  int checkpoint_signal = 0;
  int64_t checkpoint_grace_ms = 0;
  // kExec: the session, the command, and how to run it. `job` is the job as this member node sees it (its working
  // directory, image, attempt) and `rank` the member; run_as_uid / run_as_user / allow_root as for a start. The
  // job's environment is taken from its running process on the node (never sent over the network).
  std::string session;
  std::vector<std::string> argv;
  bool tty = false;         // a pseudo-terminal (stdout and stderr both on it)
  bool stdin_open = false;  // input is forwarded (else the command reads /dev/null)
  int rows = 0;             // the client's window size (tty)
  int cols = 0;
  std::string term;         // the client's TERM (tty)
  // kFiles: the request the answer names, the job (job_id), the path relative to its work dir ("" = the work dir),
  // and for a file the bytes [files_offset, files_offset + files_max_bytes) to send back.
  std::string request;
  std::string files_path;
  int64_t files_offset = 0;
  int64_t files_max_bytes = 0;
};

// One entry of a job's files listing (`fastgpu job files`).
struct FileInfo {
  std::string path;  // relative to the job's work dir
  std::string type;  // dir, file, symlink, other
  int64_t size = 0;
  int64_t mode = 0;
  int64_t modified_at_ms = 0;
};

// A node's answer to a kFiles command: an error, a directory's listing, or a piece of a file.
struct FilesAnswer {
  std::string request;
  std::string node;
  std::string error_code;  // "" = fine; else invalid_argument, not_found or internal, with `error` saying why
  std::string error;
  bool dir = false;
  std::vector<FileInfo> files;  // dir: recursive listing
  bool truncated = false;       // dir: more entries than a listing holds
  int64_t size = 0;             // file: its size
  int64_t offset = 0;           // file: where `data` starts
  std::string data;             // file: bytes from offset (empty at the end)
};

// The output of an exec session, pushed by the agent from these offsets (bytes of each stream before them were
// sent already). `exited`: the command has ended and this push carries the rest of its output.
struct ExecOutput {
  std::string session;
  std::string node;
  int64_t stdout_offset = 0;
  std::string stdout_data;
  int64_t stderr_offset = 0;
  std::string stderr_data;
  bool exited = false;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string error;  // the command could not be started (exit 126/127 with this message)
};
// What the server has of each stream (the next push starts there), and whether the session is over for the server
// (the client went away or asked to stop: the agent kills the command).
struct ExecOutputAck {
  int64_t stdout_offset = 0;
  int64_t stderr_offset = 0;
  bool closed = false;
};
// The input of an exec session from `offset` (what the agent asked for), the latest window size, and whether the
// client closed its input (eof) or the session (close: kill the command).
struct ExecInput {
  int64_t offset = 0;
  std::string data;
  bool eof = false;
  int rows = 0;
  int cols = 0;
  bool close = false;
  std::string close_reason;
};

// Fencing (docs/fleet.md "Fencing"): a remote server grants each node a lease with every registration and
// heartbeat it answers. A node the server has not heard from for `lease_ms` stops its jobs by itself
// (SIGTERM, then SIGKILL after `grace_ms`), even with its agent dead; the server starts a retry of such a
// node's jobs elsewhere only after that, so an attempt and its retry never run at the same time.
// lease_ms 0: no fencing (the in-process agent of `fastgpu up`, or `--fence-timeout 0`).
struct Lease {
  int64_t lease_ms = 0;
  int64_t grace_ms = 0;
};

// Implemented by the server. Called by agents.
class ControlPlane {
 public:
  virtual ~ControlPlane() = default;
  virtual Status RegisterNode(const NodeRegistration& reg) = 0;
  // Long-poll: returns as soon as commands are queued for `node`, or empty after `timeout`.
  virtual Result<std::vector<JobCommand>> WaitCommands(const std::string& node,
                                                       std::chrono::milliseconds timeout) = 0;
  virtual Status ReportJob(const JobReport& report) = 0;
  // Several reports in order, recorded together where the server can (one transaction, so a job that
  // started and ended since the last call costs one commit). Reports refused for good (unknown job,
  // stale attempt) are skipped; an error means none or only some were recorded and the caller sends
  // them all again (reports are idempotent). Default: one ReportJob per report.
  virtual Status ReportJobs(const std::vector<JobReport>& reports) {
    for (const JobReport& r : reports) {
      Status s = ReportJob(r);
      if (!s.ok() && (s.code() == ErrorCode::kUnavailable || s.code() == ErrorCode::kDeadlineExceeded ||
                      s.code() == ErrorCode::kInternal || s.code() == ErrorCode::kResourceExhausted)) {
        return s;
      }
    }
    return Status::Ok();
  }
  virtual Status Heartbeat(const NodeHeartbeat& hb) = 0;
  // The agent has applied every command of `node` up to and including `through_id`. In-process the
  // server hands each command over exactly once and needs no acknowledgement (default: nothing to do);
  // the HTTP implementation sends it with the next command poll.
  virtual Status AckCommands(const std::string& node, uint64_t through_id) {
    (void)node;
    (void)through_id;
    return Status::Ok();
  }
  // Exec sessions (docs/exec.md). The output of a session from the given offsets; the answer says what the server
  // has, which is where the next push starts (bytes beyond what it can hold are sent again later).
  virtual Result<ExecOutputAck> PushExecOutput(const ExecOutput& out) {
    (void)out;
    return FailedPrecondition("this server does not relay exec sessions");
  }
  // Long-poll: the session's input from `offset` (the agent has everything before it), as soon as there is some,
  // the window size changed, the input ended or the session closed; else nothing new after `timeout`.
  virtual Result<ExecInput> WaitExecInput(const std::string& node, const std::string& session, int64_t offset,
                                          std::chrono::milliseconds timeout) {
    (void)node;
    (void)session;
    (void)offset;
    (void)timeout;
    return FailedPrecondition("this server does not relay exec sessions");
  }
  // The answer to a kFiles command (`fastgpu job files` of a job on this node), which a request of a client waits for.
  virtual Status PostFiles(const FilesAnswer& answer) {
    (void)answer;
    return FailedPrecondition("this server does not relay job files");
  }
  // The lease granted with the last successful RegisterNode or Heartbeat (no fencing in-process).
  virtual Lease CurrentLease() const { return {}; }
  // The code archive of synced job `job_id` placed on `node` (its spec.sync = `sha256`), written to the file `dest`
  // once its SHA-256 was checked (docs/sync.md). In-process agents read the server's blob directory instead
  // (AgentOptions::blob_dir); the default says so.
  virtual Status FetchBlob(const std::string& node, const std::string& job_id, const std::string& sha256,
                           const std::string& dest) {
    (void)node;
    (void)job_id;
    (void)sha256;
    (void)dest;
    return FailedPrecondition("this node cannot fetch synced code from its server");
  }
};

struct LogChunk {
  std::string data;
  int64_t next_offset = 0;  // pass back to continue
  bool eof = false;         // true when no more data is available right now
  int64_t size = 0;         // the log's size when read (0: no log yet)
  int64_t modified_ms = 0;  // when the log last changed (unix ms; 0: unknown)
};

// One record of a log's time index (agent/log_times.h): the bytes [start, end) were first seen at unix_ms.
struct LogTime {
  int64_t start = 0;
  int64_t end = 0;
  int64_t unix_ms = 0;
};
struct LogTimes {
  std::vector<LogTime> records;
  int64_t total = 0;  // records the index holds
};

// Implemented by the agent. Called by the server to serve `job logs`.
class LogSource {
 public:
  virtual ~LogSource() = default;
  // Reads up to `max_bytes` of the job's combined stdout/stderr from `offset`. kNotFound for unknown jobs.
  virtual Result<LogChunk> ReadLog(const std::string& job_id, int64_t offset, int64_t max_bytes) = 0;
  // Records [first, first + max_records) of the job's log time index; none (total 0) where none is kept.
  virtual Result<LogTimes> ReadLogTimes(const std::string& job_id, int64_t first, int64_t max_records) {
    (void)job_id;
    (void)first;
    (void)max_records;
    return LogTimes{};
  }
};

}  // namespace fastgpu::agent
