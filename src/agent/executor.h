// Runs job processes on this node: fork/exec in their own session/process group, logs to a file,
// exit status recorded by a small supervisor process so that it survives a restart of fastgpu itself.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace fastgpu::agent {

struct LaunchSpec {
  std::string job_id;
  std::vector<std::string> argv;             // argv[0] resolved through PATH
  std::map<std::string, std::string> env;    // added to / overriding the agent's environment
  std::string workdir;                       // created (0700) when missing
  std::string job_dir;                       // per-job state dir (pid, exit files); created 0700
  std::string log_path;                      // stdout+stderr appended here
};

// Identifies a launched job across restarts of the agent.
struct ProcessRef {
  std::string job_id;
  int64_t supervisor_pid = 0;
  int64_t pid = 0;                 // the job's process (also its process-group id)
  int64_t start_ticks = 0;         // /proc/<pid>/stat starttime, guards against pid reuse
};

struct ExitStatus {
  std::string job_id;
  std::optional<int> exit_code;    // set when it exited normally
  std::optional<int> signal;       // set when killed by a signal
  std::string reason;              // e.g. "process lost: supervisor gone and no exit record"
  bool lost = false;               // true when the outcome is unknown
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Starts the job. Returns once the process exists (exec failures are reported as exit 127).
  virtual Result<ProcessRef> Launch(const LaunchSpec& spec) = 0;
  // SIGTERM to the job's process group now, SIGKILL after `grace` if still alive. Non-blocking.
  virtual Status Terminate(const std::string& job_id, std::chrono::milliseconds grace) = 0;
  // After a restart: finds the job from its job_dir. Returns the ref when it is still running,
  // or kNotFound when it already exited (its ExitStatus is then returned by the next Poll).
  virtual Result<ProcessRef> Adopt(const std::string& job_id, const std::string& job_dir) = 0;
  // Returns jobs that exited since the last call (including adopted ones and lost ones).
  virtual std::vector<ExitStatus> Poll() = 0;
  // Job ids currently tracked as running.
  virtual std::vector<std::string> Running() const = 0;
};

// The real executor (fork/exec). `clock` is used for the kill grace deadline.
std::unique_ptr<Executor> MakeProcessExecutor(const Clock& clock);

}  // namespace fastgpu::agent
