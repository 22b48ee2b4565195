// Wire types shared by server, store, agent and CLI. JSON codecs live in json.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"

namespace fastgpu::api {

enum class JobState {
  kQueued,
  kScheduled,
  kStarting,
  kRunning,
  kSucceeded,
  kFailed,
  kCancelled,
  kPreempted,
  kLost,
};

std::string_view JobStateName(JobState s);  // "QUEUED", ...
Result<JobState> ParseJobState(std::string_view s);
bool IsTerminal(JobState s);  // SUCCEEDED, FAILED, CANCELLED (LOST is terminal unless requeued)

// How many processes a job runs on each of its nodes.
//   kPerNode: one (what torchrun expects: it starts one process per GPU itself). The default.
//   kPerGpu:  one per GPU of the node, started by fastgpu's own launcher, each with RANK, LOCAL_RANK,
//             WORLD_SIZE and LOCAL_WORLD_SIZE counted per process (torchrun's convention: every process
//             sees all of the node's GPUs and picks its own with LOCAL_RANK).
enum class ProcessLayout { kPerNode, kPerGpu };
std::string_view ProcessLayoutName(ProcessLayout p);  // "per-node", "per-gpu"
Result<ProcessLayout> ParseProcessLayout(std::string_view s);

// What a user submits.
struct JobSpec {
  std::string name;
  std::vector<std::string> command;              // argv; command[0] must be non-empty
  MilliGpu gpus_milli = kMilliPerGpu;            // 1000 = 1 GPU; 250 = a quarter GPU
  std::string gpu_type;                          // empty = any
  MiB memory_mib = 0;                            // GPU memory per GPU (0 = default)
  int64_t runtime_limit_s = 0;                   // 0 = no limit
  int priority = 50;                             // 0..100
  std::map<std::string, std::string> env;
  std::string workdir;                           // empty = job's own dir
  // Code the job starts in (`job submit --sync DIR`, docs/sync.md): the SHA-256 of a code archive uploaded to the
  // job's project (PUT /v1/projects/{project}/blobs/{sha256}), unpacked into the job's own work dir on its node
  // before each attempt. Empty: none. Not combined with workdir.
  std::string sync;
  std::string project = "default";
  int max_retries = 0;                           // requeues after LOST
  // Names of project secrets to inject into the job's environment (values never stored in the job).
  std::vector<std::string> secrets;
  ProcessLayout processes = ProcessLayout::kPerNode;  // JSON "processes": "per-node" | "per-gpu"
  // Dependencies (Slurm's afterany / afterok): not started before every job in `after` has ended (in any state)
  // and every job in `after_ok` has SUCCEEDED; when one of `after_ok` ends otherwise, this job is cancelled with
  // that reason. Ids of jobs of the same project.
  std::vector<std::string> after;
  std::vector<std::string> after_ok;
  // Preemption (docs/scheduling.md): a preemptible job may be stopped to make room for another one and goes back
  // to the queue. It first gets `checkpoint_signal` (SIGUSR1 by default) and `checkpoint_grace_s` seconds to save
  // its work in FASTGPU_CHECKPOINT_DIR, then SIGTERM, then SIGKILL. Non-preemptible jobs are never preempted.
  bool preemptible = false;
  int checkpoint_signal = 10;        // SIGUSR1 on Linux; one of kCheckpointSignals
  int64_t checkpoint_grace_s = 60;   // 0..3600
  // Time window: not started before begin_at; deadline_at is when it must have finished (admission refuses a job
  // whose runtime limit cannot end before it). 0 = none. Unix milliseconds.
  UnixMillis begin_at = 0;
  UnixMillis deadline_at = 0;
  // OCI image to run the command in (docs/containers.md): empty = a plain process on the node. Run with podman on
  // the node, never pulled by the job: the image must already be there.
  std::string image;
  // Job array (docs/scheduling.md, Job arrays): "0-99", "1,3,5-7", "0-99:2", each optionally with "%N" (at most N tasks
  // hold resources at once). Empty: an ordinary job. An array job is one record that never runs itself; its tasks
  // are ordinary jobs with array_parent/array_index set, created with it.
  std::string array;
};

// A parsed `array` spec.
struct ArraySpec {
  std::vector<int> indices;  // ascending, no repeats
  int limit = 0;             // 0 = no limit (%N)
};
inline constexpr int kMaxArrayTasks = 10'000;
inline constexpr int kMaxArrayIndex = 1'000'000;
// "0-99%8" -> indices 0..99, limit 8. Indices 0..kMaxArrayIndex, at most kMaxArrayTasks tasks, limit >= 1.
Result<ArraySpec> ParseArraySpec(std::string_view text);

// One task of an array job, as GetJob shows the array.
struct ArrayTask {
  int index = 0;
  std::string id;
  JobState state = JobState::kQueued;
  std::optional<int> exit_code;
  std::string reason;
};

// Checks an OCI image reference ("python:3.11", "localhost/train:1", "registry:5000/team/img@sha256:..."):
// lowercase repository path, optional tag and digest; an error with an example otherwise.
Status ValidateImageName(std::string_view image);

// Signals a job may ask for as its checkpoint signal, by name without "SIG".
inline constexpr std::pair<const char*, int> kCheckpointSignals[] = {
    {"HUP", 1}, {"INT", 2}, {"QUIT", 3}, {"USR1", 10}, {"USR2", 12}, {"ALRM", 14}, {"TERM", 15}, {"WINCH", 28}};
// "SIGUSR1", "USR1" or "10" -> 10; an error naming the allowed ones otherwise.
Result<int> ParseCheckpointSignal(std::string_view text);
// 10 -> "SIGUSR1".
std::string CheckpointSignalName(int sig);

// One node of a multi-node (gang) job: a job asking for more GPUs than one node has runs one process per
// member node, all-or-nothing. Ranks are 0..N-1 in the order the scheduler placed them.
struct JobMember {
  int rank = 0;
  std::string node;
  std::vector<std::string> gpu_uuids;
  std::vector<int> gpu_indices;
  // The member's process in the current attempt (reset when the job is placed again).
  bool started = false;
  bool ended = false;
  int64_t pid = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;  // why it ended when it did not exit 0 ("exit code 3", "process lost", ...)
};

// What a job's run did with one of its GPUs (docs/monitoring.md, Per-job GPU usage): accumulated by the server from
// the readings of its node's heartbeats while the job runs (every 2-5 s), kept with the job when the run ends (like
// `sacct`'s TRES usage). Reset when the job is placed again.
struct JobGpuUsage {
  std::string uuid;
  std::string node;
  int64_t samples = 0;        // heartbeats counted
  int64_t util_pct_sum = 0;   // sum of the utilisation readings (average = util_pct_sum / samples)
  int peak_util_pct = 0;
  MiB peak_memory_mib = 0;
  int64_t energy_mj = 0;      // power x time between heartbeats, millijoules
  int AverageUtilPct() const { return samples > 0 ? static_cast<int>(util_pct_sum / samples) : 0; }
};

struct Job {
  std::string id;
  JobSpec spec;
  JobState state = JobState::kQueued;
  std::string user;
  // A job on one node: its GPUs and that node. A multi-node job (members not empty): assigned_gpus is the
  // union of every member's GPUs (rank order; what quotas, GPU lists and billing count), while
  // assigned_gpu_indices and node are rank 0's.
  std::vector<std::string> assigned_gpus;  // UUIDs
  std::vector<int> assigned_gpu_indices;   // indices on the node
  std::string node;
  std::vector<JobMember> members;          // empty for a job on one node
  UnixMillis created_at = 0;
  UnixMillis started_at = 0;
  UnixMillis finished_at = 0;
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string reason;   // why it is in this state ("runtime limit", "waiting: ...")
  int attempt = 0;      // incremented each time it starts
  int64_t pid = 0;      // process id on the node while running (agent-local)
  // GPU service received by the attempts that were preempted or migrated (milli-GPU x ms / 1000, i.e. GPU-ms), so
  // that LAS-style policies count the work a resumed job has already had. Kept in the store.
  int64_t attained_gpu_ms = 0;
  // Computed, never stored: when a queued job is expected to start (0 = unknown), and a warning when its deadline
  // has become unlikely to be met.
  UnixMillis expected_start_at = 0;
  std::string expected_start_note;  // a queued job without an expected start: why it is unknown
  std::string deadline_warning;
  // A task of a job array: the array job's id and the task's index (empty / -1: not a task). Kept in the store.
  std::string array_parent;
  int array_index = -1;
  // Computed for an array job (spec.array set) by GetJob: every task in index order. Never stored.
  std::vector<ArrayTask> array_tasks;
  // Per GPU of its current (or last) run: utilisation, peak memory and energy. Kept in the store.
  std::vector<JobGpuUsage> gpu_usage;
};

// One row of the append-only event log.
struct JobEvent {
  int64_t seq = 0;
  std::string job_id;
  UnixMillis at = 0;
  std::string from;    // previous state name ("" for submit)
  std::string to;      // new state name
  std::string reason;
  std::string actor;   // "user:admin", "scheduler", "agent:node-1", "server"
};

struct Gpu {
  std::string uuid;
  int index = 0;
  std::string name;       // "NVIDIA A100-SXM4-80GB" or "A100-80GB (simulated)"
  std::string type;       // "A100-80GB"
  std::string node;
  std::string pci_bus_id;
  MiB memory_total_mib = 0;
  MiB memory_used_mib = 0;
  int utilization_pct = 0;
  int temperature_c = 0;
  int power_mw = 0;
  bool simulated = false;
  bool healthy = true;
  MilliGpu allocated_milli = 0;
  std::vector<std::string> jobs;  // job ids using it
  // Further live readings (gpu::GpuMetrics; /metrics exports them with DCGM-exporter names). 0 = not reported.
  int memory_util_pct = 0;
  int sm_clock_mhz = 0;
  int power_limit_mw = 0;
  int64_t energy_mj = 0;
  int64_t ecc_corrected_volatile = 0;
  int64_t ecc_uncorrected_volatile = 0;
  int64_t ecc_corrected_aggregate = 0;
  int64_t ecc_uncorrected_aggregate = 0;
  int64_t remapped_rows_correctable = 0;
  int64_t remapped_rows_uncorrectable = 0;
  bool remap_pending = false;
  bool remap_failure = false;
  uint64_t throttle_reasons = 0;
  int last_xid = 0;
  int64_t xid_count = 0;
};

// Copies the live readings of a GPU (what a heartbeat carries: memory used, utilisation, temperature, power,
// health and the further readings above) from `from` into `to`, leaving its inventory and allocation alone.
void CopyGpuReadings(const Gpu& from, Gpu& to);

struct Node {
  std::string name;
  std::string address;
  std::map<std::string, std::string> labels;
  bool healthy = true;
  bool draining = false;
  bool simulated = false;
  UnixMillis last_heartbeat = 0;
  int gpu_count = 0;
};

// Validates a spec (non-empty command, ranges). Does not check cluster feasibility.
Status ValidateJobSpec(const JobSpec& spec);

}  // namespace fastgpu::api
