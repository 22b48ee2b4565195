// One process per GPU ("processes": "per-gpu"): the launcher the agent runs as such a job's one process.
//
// The executor keeps its model of one process per job (supervisor, process group, pid and exit records).
// For a per-GPU job the agent makes that process `fastgpu __rank-launcher …` — the agent's own binary, so the
// launcher needs nothing installed besides fastgpu — which forks the job's command once per GPU of the node,
// each with its ranks counted per process, in torchrun's convention:
//
//   RANK             node_rank * gpus_per_node + local rank      (0 … WORLD_SIZE-1)
//   LOCAL_RANK       0 … gpus_per_node-1                         (pick the GPU with it: torch.cuda.set_device)
//   WORLD_SIZE       nodes * gpus_per_node                       (every process of the job)
//   LOCAL_WORLD_SIZE gpus_per_node
//   GROUP_RANK, NODE_RANK  the node's rank; GROUP_WORLD_SIZE the number of nodes
//
// Like torchrun, every process sees all of the node's GPUs (CUDA_VISIBLE_DEVICES is left as the agent set it)
// and uses LOCAL_RANK to choose its own; MASTER_ADDR, MASTER_PORT and the FASTGPU_* variables are inherited.
//
// The launcher is the job's process-group leader and its children stay in that group, so a stop of the job
// (SIGTERM, then SIGKILL, to the group) reaches every process. It forwards SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGHUP,
// SIGQUIT, SIGWINCH and SIGALRM (the signals a job may choose as its checkpoint signal) sent to it alone to its
// children: a preemption's checkpoint signal is sent to the launcher only, so that each rank gets it once. When a child fails (non-zero exit or a signal), it writes one line naming
// the rank to the job's log, sends SIGTERM to the rest of the group and SIGKILL to its remaining children after
// the grace, then ends the way the first failed child did (the same exit code, or killed by the same signal),
// so the job's reason says how its command failed. It exits 0 only when every child exited 0. Children's
// output goes unchanged to the job's log (their stdout/stderr are the launcher's).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace fastgpu::agent {

// The hidden verb of the fastgpu binary that runs the launcher (never listed by --help).
inline constexpr char kRankLauncherVerb[] = "__rank-launcher";

struct RankLayout {
  int nodes = 1;          // nodes of the job
  int node_rank = 0;      // this node, 0 … nodes-1
  int gpus_per_node = 1;  // = processes per node
};

// Checks the ranges (1 ≤ nodes, 0 ≤ node_rank < nodes, 1 ≤ gpus_per_node ≤ 1024).
Status ValidateRankLayout(const RankLayout& layout);

// The variables that differ between the processes of a job, for the process with local rank `local`
// (0 ≤ local < gpus_per_node): RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE,
// NODE_RANK.
std::map<std::string, std::string> RankEnv(const RankLayout& layout, int local);

// The argv of a per-GPU job's process: `launcher` (the fastgpu binary) running `command` once per GPU.
// `grace_ms`: between SIGTERM and SIGKILL of the other processes after one failed.
std::vector<std::string> RankLauncherArgv(const std::string& launcher, const RankLayout& layout, int64_t grace_ms,
                                          const std::vector<std::string>& command);

struct RankLauncherArgs {
  RankLayout layout;
  int64_t grace_ms = 10'000;
  std::vector<std::string> command;
};
// Parses what follows the verb: --nodes N --node-rank R --gpus-per-node G [--grace-ms MS] -- COMMAND...
Result<RankLauncherArgs> ParseRankLauncherArgs(const std::vector<std::string>& args);

// Runs the launcher with the arguments that follow the verb (blocks until every child has ended). Returns the
// exit code for main(); a launcher whose first failed child was killed by a signal kills itself with that
// signal instead of returning. Bad arguments: a line on stderr and 127. Call it from a single-threaded process.
int RunRankLauncher(const std::vector<std::string>& args);

// The path of the running executable (/proc/self/exe resolved), taken once when the agent starts.
Result<std::string> SelfExecutable();

// Whether a process running as `uid` (primary group `gid`, supplementary `groups`) may execute `path`: every
// directory on the way must be searchable and the file executable for it (mode bits; uid 0 passes). The error
// names the directory or file at fault and what to do (kPermissionDenied; kNotFound when it does not exist).
Status CheckExecutableBy(const std::string& path, uid_t uid, gid_t gid, const std::vector<gid_t>& groups);
// The same for a directory it is to work in: every directory on the way, and `dir` itself, searchable.
Status CheckEnterableBy(const std::string& dir, uid_t uid, gid_t gid, const std::vector<gid_t>& groups);

}  // namespace fastgpu::agent
