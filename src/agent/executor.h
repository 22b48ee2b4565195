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
  std::map<std::string, std::string> env;    // added to / overriding the agent's environment; kept in
                                             // memory only (it may carry secret values)
  std::string workdir;                       // created (0700) when missing; empty: <job_dir>/work
  std::string job_dir;                       // per-job state dir (pid, exit files); created 0700
  std::string log_path;                      // stdout+stderr appended here (opened by the agent's user)
  // A code archive (docs/sync.md) unpacked into the default working directory before each attempt, owned by the
  // job's user; empty: none. Ignored when `workdir` is a directory of the node's own.
  std::string code_archive;
  // Identity of the job, applied only when the agent runs as root (euid 0); otherwise jobs run as the
  // agent's own user and these are ignored.
  int64_t run_as_uid = 0;                    // the project's own uid (gid = uid, no supplementary groups)
  std::string run_as_user;                   // or a named OS user (wins over run_as_uid when set)
  bool allow_root = false;                   // without it, a job that would run as uid 0 is refused
  std::string project;                       // named in the refusal message
  std::string node;                          // named in the unknown-user message
  int attempt = 0;                           // recorded in <job_dir>/started (kStartedFile) before the fork
  // The node's lease file (see Lease in control_plane.h and kLeaseFile); empty: never fenced. The job's
  // supervisor reads it about once a second; once the deadline in it has passed, it stops the job (SIGTERM,
  // SIGKILL after the grace in it) and records the end as lost ("fenced"). A missing file fences nothing.
  std::string lease_path;
  // The job's checkpoint directory (FASTGPU_CHECKPOINT_DIR), kept across its attempts: created when missing (0700)
  // and, as root, given to the job's user (uid and gid, 0700) on every attempt, through a descriptor (never via a
  // symlink). Its parent must exist (the agent makes it: 0711 as root). Empty: none.
  std::string checkpoint_dir;
  // Container jobs (docs/containers.md). With an image, the job's process is `podman run --rm` of that image
  // (rootful as root, with --user the job's uid:gid; rootless with --userns=keep-id otherwise), under the same
  // supervisor: the working directory and the checkpoint directory are mounted at the same paths, `env` (and nothing
  // of the agent's environment) is the container's environment, passed through a memory file (never argv or disk),
  // signals reach the container's process through podman's signal proxy and an init process, and the container is
  // removed by name when podman itself is killed or the job is fenced. The image must be on the node already.
  std::string image;
  std::vector<std::string> devices;          // --device arguments, e.g. CDI names nvidia.com/gpu=<UUID>
  std::string podman = "podman";             // the podman binary (a name looked up in PATH, or a path)
};

// The container name of a container job's attempt: fastgpu-<job>-<attempt>-<8 hex of its job dir> (unique per
// fastgpu home, so that several agents on one host never share one).
std::string ContainerName(const std::string& job_id, int attempt, const std::string& job_dir);
// Where podman is (PATH searched like execvp); empty when it is not installed.
std::string FindPodman(const std::string& name = "podman");

// The lease file: one line "<deadline> <grace_ms> <lease_ms>", where deadline is CLOCK_MONOTONIC nanoseconds
// (the SystemClock's MonotonicNanos), written atomically (rename) by the agent after each answer of the server.
inline constexpr char kLeaseFile[] = "lease";

// Launch writes "attempt N" to <job_dir>/started just before it forks the supervisor, after everything
// that can fail without starting anything. An attempt without this record was never started on this node,
// so after a crash the server may start it again without running it twice.
inline constexpr char kStartedFile[] = "started";
// The supervisor creates <job_dir>/claim (O_EXCL) before it forks the job. After a restart, an attempt
// with a `started` record but no process record is either a supervisor still starting or a fork that
// never happened (fastgpu died in between): the agent tries to create the claim itself; if it succeeds,
// no supervisor can run the job any more and the attempt is given back as never started.
inline constexpr char kClaimFile[] = "claim";
// Written by Launch when the job's process is the launcher of a per-GPU job (`fastgpu __rank-launcher`): a
// checkpoint signal goes to that process alone, which passes it on to each rank once (a signal to the whole group
// would reach every rank twice). Read back by Adopt.
inline constexpr char kForwardsSignalsFile[] = "forwards-signals";

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
  int64_t finished_at_ms = 0;      // when the exit was recorded (Unix ms; 0 = unknown)
};

class Executor {
 public:
  virtual ~Executor() = default;
  // Starts the job. Returns once the process exists (exec failures are reported as exit 127).
  // As root: the job runs as spec.run_as_user with that user's groups, HOME, USER and LOGNAME, else as
  // spec.run_as_uid (gid the same number, no supplementary groups, HOME = its working directory, umask
  // 077). The job dir is then root's, 0710 with the job's gid (only the job can pass through it, nobody
  // else can list or enter it); the default working directory belongs to the job's uid, 0700; one
  // named by the spec is created and entered with the job's permissions (a failure there is an exec
  // failure: exit 127). The log stays root's (0600). Neither identity, an unknown user, or uid 0
  // without allow_root fails here with kFailedPrecondition / kPermissionDenied (the reason is also
  // written to the job's log).
  virtual Result<ProcessRef> Launch(const LaunchSpec& spec) = 0;
  // SIGTERM to the job's process group now, SIGKILL after `grace` if still alive. Non-blocking.
  virtual Status Terminate(const std::string& job_id, std::chrono::milliseconds grace) = 0;
  // A stop that lets the job save its work (preemption, migration): `signal` (e.g. SIGUSR1) to the job's processes
  // now (its process group; a per-GPU job's launcher, which passes it on to each rank), SIGTERM to the group once
  // `checkpoint_grace` has passed if the job still runs, SIGKILL `grace` after that. A Terminate meanwhile wins
  // (SIGTERM at once); a job already being terminated keeps its course. Non-blocking. Signal 0 or no grace: the
  // same as Terminate(job_id, grace).
  virtual Status Checkpoint(const std::string& job_id, int signal, std::chrono::milliseconds checkpoint_grace,
                            std::chrono::milliseconds grace) {
    (void)signal;
    (void)checkpoint_grace;
    return Terminate(job_id, grace);
  }
  // After a restart: finds the job from its job_dir. Returns the ref when it is still running,
  // or kNotFound when it already exited (its ExitStatus is then returned by the next Poll).
  virtual Result<ProcessRef> Adopt(const std::string& job_id, const std::string& job_dir) = 0;
  // Returns jobs that exited since the last call (including adopted ones and lost ones).
  virtual std::vector<ExitStatus> Poll() = 0;
  // Job ids currently tracked as running.
  virtual std::vector<std::string> Running() const = 0;
  // Event-driven exit detection. When ExitEvents() is true, WaitForExits blocks until a tracked job
  // may have ended (Poll then has something), a kill deadline of Terminate comes due, Interrupt() is
  // called, or `timeout` passes. Executors without events return false from ExitEvents(): the caller
  // then calls Poll on a timer.
  virtual bool ExitEvents() const { return false; }
  virtual void WaitForExits(std::chrono::milliseconds timeout) { (void)timeout; }
  virtual void Interrupt() {}
};

// The real executor (fork/exec). `clock` is used for the kill grace deadline.
std::unique_ptr<Executor> MakeProcessExecutor(const Clock& clock);

}  // namespace fastgpu::agent
