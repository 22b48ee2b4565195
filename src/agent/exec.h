// Exec sessions on the node (`fastgpu job exec` / `job attach`, docs/exec.md): a command run inside a running job,
// as the job's user, with the job's environment (read from its process: CUDA_VISIBLE_DEVICES, FASTGPU_*, the secrets
// it was given) in its working directory, or `podman exec` into a container job's container. Its output and input go
// through the server (ControlPlane::PushExecOutput / WaitExecInput): agents never listen on a port.
//
// Each session has two threads: one starts the command (fork + exec, with a pseudo-terminal when asked), reads its
// output and pushes it, reaps it and pushes its exit; the other long-polls input and writes it to the command (and
// the window size to the terminal). The command is killed (its whole process group, SIGKILL) when the client goes
// away or ends the session, when the job ends, and when the agent stops; it also gets SIGKILL if the thread that
// started it dies (PR_SET_PDEATHSIG).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "agent/control_plane.h"
#include "common/status.h"

namespace fastgpu::agent {

// How to start one exec'd command. Prepared before fork (the child makes only raw system calls).
struct ExecSpawn {
  std::vector<std::string> argv;  // argv[0]: a path, or a name looked up in the PATH of `env`, as the command's user
  std::vector<std::string> env;   // "NAME=value"
  std::string workdir;            // empty: the agent's own
  bool chdir_before_identity = false;  // the default working directory lies in the agent's state dir
  bool set_identity = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  bool set_umask = false;  // 077, as the job's (a project's own uid)
  bool tty = false;        // a pseudo-terminal: stdin, stdout and stderr on it
  int rows = 0;
  int cols = 0;
  bool stdin_open = false;  // else stdin is /dev/null (without a tty)
};

struct ExecProcess {
  pid_t pid = -1;    // also its process group and session
  int pidfd = -1;    // readable once it has ended; -1 where the kernel has none
  int in_fd = -1;    // its stdin (the terminal's master with a tty; -1 without input)
  int out_fd = -1;   // its stdout (the terminal's master with a tty)
  int err_fd = -1;   // its stderr (-1 with a tty)
};

// Starts the command in a new session (its own process group), as spec's identity. An exec failure in the child
// (command not found) is its output "fastgpu: cannot run 'x': ..." and exit 127 (126: not executable).
Result<ExecProcess> SpawnExec(const ExecSpawn& spec);

// What the agent knows of the job an exec command is for.
struct ExecTarget {
  int64_t job_pid = 0;   // the job's process on this node (podman's for a container job)
  std::string job_dir;   // <agent home>/jobs/<id>
  std::string node;
};
// The spawn of an exec command: for a process job, the identity and environment of its process (/proc/<pid>), in
// its working directory (the job's workdir, else <job dir>/work); for a container job, `podman exec` into its
// container. Refused when the job's process runs as root but the project does not allow root, or as another uid than
// the project's (the job's process changed its identity).
Result<ExecSpawn> PlanExec(const JobCommand& cmd, const ExecTarget& target);

class ExecRunner {
 public:
  // `input_wait`: how long one input long-poll may wait; `retry`: the wait after a failed call to the server.
  ExecRunner(ControlPlane& cp, std::string node, std::chrono::milliseconds input_wait,
             std::chrono::milliseconds retry);
  ~ExecRunner();  // StopAll()
  ExecRunner(const ExecRunner&) = delete;
  ExecRunner& operator=(const ExecRunner&) = delete;

  // Runs the session on threads of its own. A session id seen before is ignored (a command may be delivered twice).
  // With an error instead of a spawn, the session ends at once with it (exit 127).
  void Start(const std::string& session, const std::string& job_id, Result<ExecSpawn> spawn);
  // The job has ended (or is no longer here): its sessions' commands are killed.
  void KillJob(const std::string& job_id);
  // Kills every command and waits for the sessions' threads. Later starts are refused.
  void StopAll();
  size_t Live() const;

 private:
  struct Session;
  void Run(const std::shared_ptr<Session>& s, Result<ExecSpawn> spawn);
  void InputLoop(const std::shared_ptr<Session>& s);
  // Pushes `out` until the server has taken it all (or the session is gone / the agent stops). False when gone.
  void ReapFinishedLocked();

  ControlPlane& cp_;
  const std::string node_;
  const std::chrono::milliseconds input_wait_;
  const std::chrono::milliseconds retry_;
  mutable std::mutex mu_;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<Session>> sessions_;
  std::set<std::string> seen_;
  std::deque<std::string> seen_order_;
};

}  // namespace fastgpu::agent
