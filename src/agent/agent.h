// The node agent: registers the node's GPUs with the server, starts and stops job processes on
// command, reports their exits, sends heartbeats with GPU metrics, and serves job logs.
//
// On-disk layout under `home`:
//   jobs/<id>/job        attempt and assigned GPUs of the latest attempt ("attempt=N", "gpus=U1,U2");
//                        never the job's environment (it may carry secret values)
//   jobs/<id>/pid, exit  process records written by the executor's supervisor
//   jobs/<id>/reported   the attempt whose final report the server has acknowledged
//   jobs/<id>/work/      default working directory of the job (0700, owned by the job's OS user)
//   logs/<id>.log        combined stdout+stderr of all attempts
//   logs/<id>.log.times  when each part of it was written (agent/log_times.h)
//   checkpoints/<id>/    the job's checkpoint directory (FASTGPU_CHECKPOINT_DIR; 0700, the job's user), kept
//                        across attempts and after the job ends (AgentOptions::checkpoint_root moves it)
//   lease                the fencing lease granted by a remote server (kLeaseFile; see Lease)
// Jobs survive a restart of the agent: Start() re-adopts the ones still running and reports the
// ones that ended while it was down.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/control_plane.h"
#include "agent/executor.h"
#include "api/types.h"
#include "common/clock.h"
#include "common/status.h"
#include "gpu/backend.h"

namespace fastgpu::agent {

class ExecRunner;  // exec.h

struct AgentOptions {
  std::string node_name;
  std::string home;     // jobs under home/jobs/<id>/, logs under home/logs/<id>.log
  std::string address;  // how the server reaches this node (informational)
  std::map<std::string, std::string> labels;
  std::chrono::milliseconds heartbeat_interval{5'000};
  // Grace (ms) between SIGTERM and SIGKILL for stop commands that carry a negative grace_ms, and
  // for jobs terminated by Stop() when terminate_jobs_on_stop is set.
  int64_t stop_grace_ms = 10'000;
  // By default jobs keep running when the agent stops (a new agent re-adopts them).
  bool terminate_jobs_on_stop = false;
  std::chrono::milliseconds poll_interval{20};       // how often job exits are checked
  std::chrono::milliseconds command_wait{1'000};     // long-poll timeout of WaitCommands
  std::chrono::milliseconds retry_interval{200};     // after a failed call to the server
  // The fastgpu binary, run as the process of a job with one process per GPU (`fastgpu __rank-launcher`, see
  // rank_launcher.h): the agent's own executable (SelfExecutable()), taken once at start. Empty: such jobs
  // fail to start, saying so.
  std::string launcher_path;
  // Where jobs keep their checkpoints: each job gets <checkpoint_root>/<job id> (FASTGPU_CHECKPOINT_DIR), kept
  // across its attempts and after it ends. In a fleet, point every agent at the same shared storage so that an
  // attempt on another node finds it. Empty: <home>/checkpoints, or, when the agent runs as root and job users
  // cannot pass through the home (a home under /root), <checkpoint_fallback_base>/<12 hex digits of the SHA-256
  // of the home's absolute path> (one per home, so two agents on one machine never share job ids there).
  std::string checkpoint_root;
  // Empty: no fallback (the agent warns instead). `fastgpu up` and `fastgpu agent` set kCheckpointFallbackBase for
  // the default home only, so that a home chosen with --home or FASTGPU_HOME (tests) never writes outside itself.
  std::string checkpoint_fallback_base;
  // Where the server keeps code archives (<blob_dir>/<project>/<sha256>) when it runs in this process (fastgpu up);
  // empty: they are fetched through the ControlPlane into <home>/blobs/ (docs/sync.md).
  std::string blob_dir;
};

class Agent final : public LogSource {
 public:
  Agent(AgentOptions options, gpu::GpuBackend& gpus, Executor& executor, ControlPlane& control_plane,
        const Clock& clock);
  ~Agent() override;  // Stop()
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Discovers GPUs, re-adopts jobs left by a previous run, registers the node and starts the command
  // and monitor threads. A server that is unreachable at this point is retried in the background;
  // other registration errors (bad token, invalid node) are returned.
  Status Start();
  // Stops the threads (promptly: at most one long-poll of the command loop). Jobs keep running
  // unless options.terminate_jobs_on_stop. Idempotent.
  void Stop();

  Result<LogChunk> ReadLog(const std::string& job_id, int64_t offset, int64_t max_bytes) override;
  Result<LogTimes> ReadLogTimes(const std::string& job_id, int64_t first, int64_t max_records) override;

  // Introspection (status pages, tests).
  std::vector<std::string> RunningJobIds() const;
  std::vector<gpu::GpuInfo> Gpus() const;
  bool Registered() const;
  size_t PendingReports() const;

  // Converts discovered GPU info plus a metrics sample (may be null) into the wire type.
  static api::Gpu ToApiGpu(const gpu::GpuInfo& info, const gpu::GpuMetrics* metrics, const std::string& node);

 private:
  struct RunningJob {
    int attempt = 0;
    int64_t pid = 0;
    std::vector<std::string> gpu_uuids;
    std::string stop_reason;
    int rank = 0;  // a member of a multi-node job: its node rank
    int milli_per_gpu = 1000;  // share of each of its GPUs (simulated GPUs' readings follow it)
    MiB memory_mib = 0;        // GPU memory per GPU it asked for (0 = default)
  };
  struct PendingReport {
    JobReport report;
    std::string mark_dir;  // job dir to mark as reported once delivered (final reports)
  };

  std::string JobDir(const std::string& id) const;
  std::string LogPath(const std::string& id) const;
  std::string CheckpointRoot() const;  // settled by Start()
  std::string ConfiguredCheckpointRoot() const;
  Status PrepareCheckpointRoot();
  void Recover();
  Status Register();
  void CommandLoop();
  void MonitorLoop();
  void HandleStart(const JobCommand& cmd);
  void HandleStop(const JobCommand& cmd);
  // `job exec`: runs the command inside the job (exec.h), or ends the session saying why it cannot.
  void HandleExec(const JobCommand& cmd);
  // Runs the starts that waited for an older attempt of their job to end, once it has.
  void StartDeferred();
  void CollectExitsLocked(std::vector<ExitStatus> exits, std::vector<PendingReport>* out);
  void Enqueue(PendingReport r);
  void FlushReports();
  void SendHeartbeat();
  // Writes the lease granted by the server's answer to a call sent at sent_ns (see Lease); removes the
  // file when the server grants none.
  void RenewLease(int64_t sent_ns);
  bool WaitFor(std::chrono::milliseconds d);  // false when stopping
  JobReport FinalReport(const ExitStatus& st, int attempt, const std::string& stop_reason, int rank) const;
  std::vector<api::Gpu> GpuSnapshot();
  int64_t NowNanos() const { return clock_.MonotonicNanos(); }

  const AgentOptions opts_;
  gpu::GpuBackend& gpus_backend_;
  Executor& executor_;
  ControlPlane& cp_;
  const Clock& clock_;
  std::string checkpoint_root_;  // set once by Start() before any job starts

  std::mutex exec_mu_;   // serialises executor calls with the queueing of their reports
  std::mutex flush_mu_;  // one report sender at a time (keeps reports in order)
  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Starts waiting for an older attempt of the same job to end here (it is being stopped), by job id.
  std::map<std::string, JobCommand> deferred_starts_;
  std::mutex lease_mu_;
  int64_t lease_ms_ = -1;           // -1: unknown yet (a file left by an earlier run is removed if none is granted)
  int64_t lease_deadline_ns_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  bool registered_ = false;
  std::vector<gpu::GpuInfo> gpus_;
  std::map<std::string, RunningJob> running_;
  // Attempts this process launched, by job: a start command delivered again is not run twice.
  std::map<std::string, int> launched_;
  std::deque<std::string> launched_order_;  // oldest first (bounded)
  std::vector<PendingReport> recovered_;  // sent with the next registration
  std::deque<PendingReport> reports_;
  int64_t retry_reports_at_ns_ = 0;
  std::thread command_thread_;
  std::thread monitor_thread_;
  std::unique_ptr<ExecRunner> execs_;  // exec sessions (their own threads); killed with their job
};

}  // namespace fastgpu::agent
