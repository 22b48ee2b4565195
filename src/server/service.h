// The control plane's core: jobs, nodes, the scheduler loop and the agent protocol (ControlPlane).
// HTTP handlers (http.cc) are thin wrappers over this class.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "agent/control_plane.h"
#include "api/types.h"
#include "common/clock.h"
#include "common/status.h"
#include "sched/scheduler.h"
#include "store/store.h"

namespace fastgpu::server {

struct ServiceOptions {
  std::string policy = "priority";
  std::string placement = "best-fit";
  int64_t stop_grace_ms = 10'000;
  int64_t tick_ms = 250;             // scheduler loop period when nothing wakes it
  int64_t node_timeout_ms = 60'000;  // a node silent this long is unhealthy; its jobs become LOST
};

struct JobListQuery {
  std::vector<api::JobState> states;
  std::string project;
  int limit = 0;
};

class Service final : public agent::ControlPlane {
 public:
  // Loads all jobs from the store. Jobs that were running are re-checked when their node registers.
  static Result<std::unique_ptr<Service>> Create(store::Store& store, const Clock& clock, ServiceOptions options);
  ~Service() override;

  void Start();  // starts the scheduler loop
  void Stop();   // stops it, wakes all waiters

  // Client API.
  Result<api::Job> Submit(api::JobSpec spec, const std::string& user);
  Result<api::Job> GetJob(const std::string& id) const;
  std::vector<api::Job> ListJobs(const JobListQuery& q) const;
  Result<api::Job> Cancel(const std::string& id, const std::string& actor);
  Result<std::vector<api::JobEvent>> Events(const std::string& id);
  // Blocks until the job is terminal (or RUNNING/terminal when `until_running`), or `timeout` passes.
  Result<api::Job> Wait(const std::string& id, int64_t timeout_ms, bool until_running);
  std::vector<api::Gpu> ListGpus() const;
  std::vector<api::Node> ListNodes() const;
  // Logs: reads from the node's LogSource. kNotFound for unknown job.
  Result<agent::LogChunk> ReadLog(const std::string& id, int64_t offset, int64_t max_bytes);
  // Waits until the job's state changes or `timeout_ms` passes (for streaming logs).
  void WaitForChange(const std::string& id, int64_t timeout_ms);

  // Wiring: the log source for a node (in-process agent, or an HTTP client in fleet mode).
  void SetLogSource(const std::string& node, agent::LogSource* source);

  // ControlPlane (called by agents).
  Status RegisterNode(const agent::NodeRegistration& reg) override;
  Result<std::vector<agent::JobCommand>> WaitCommands(const std::string& node,
                                                      std::chrono::milliseconds timeout) override;
  Status ReportJob(const agent::JobReport& report) override;
  Status Heartbeat(const agent::NodeHeartbeat& hb) override;

  // For tests and benchmarks: run one scheduling pass now.
  void ScheduleOnce();

 Service(store::Store& store, const Clock& clock, ServiceOptions options,
          std::unique_ptr<sched::Scheduler> scheduler);

 private:

  struct NodeState {
    api::Node node;
    std::vector<api::Gpu> gpus;  // inventory + live metrics
    std::deque<agent::JobCommand> commands;
    agent::LogSource* logs = nullptr;
    bool registered = false;
  };
  // Why the server asked a job to stop; decides its final state.
  enum class StopKind { kCancel, kRuntimeLimit, kPreempt, kNodeLost };
  struct StopRequest {
    StopKind kind;
    std::string reason;
  };

  void Loop();
  // Requires mu_ held. Builds the scheduler inputs from the current state.
  sched::ClusterSnapshot SnapshotLocked(bool empty) const;
  bool HasFreeCapacityLocked() const;
  // Writes updates to the store (durable), then applies them in memory. Requires mutate_mu_ held
  // and mu_ NOT held.
  Status Commit(const std::vector<store::JobUpdate>& updates);
  store::JobUpdate Transition(const api::Job& before, api::Job after, const std::string& reason,
                              const std::string& actor) const;
  void ApplyLocked(const api::Job& job);
  void EnforceLimitsLocked(std::vector<std::pair<std::string, agent::JobCommand>>& stops);
  api::Job FinalStateFor(const api::Job& job, const agent::JobReport& report,
                         std::vector<store::JobUpdate>& updates);
  void NotifyAll();

  store::Store& store_;
  const Clock& clock_;
  ServiceOptions options_;
  std::unique_ptr<sched::Scheduler> scheduler_;

  mutable std::mutex mu_;
  std::condition_variable changed_;     // any job changed (waiters, log followers)
  std::condition_variable wake_loop_;   // scheduler loop
  std::condition_variable commands_cv_; // agents waiting for commands
  bool wake_ = false;
  bool stopping_ = false;
  std::unordered_map<std::string, api::Job> jobs_;
  std::set<std::pair<int64_t, std::string>> queued_;  // (id number, id) in submit order
  std::set<std::string> active_;                      // jobs holding GPUs (SCHEDULED/STARTING/RUNNING)
  sched::ClusterSnapshot capacity_;                   // all registered nodes, empty: for CheckFeasible
  bool any_gpu_ = false;
  std::map<std::string, NodeState> nodes_;
  std::unordered_map<std::string, StopRequest> stops_;
  // Held across "read state, persist, apply" for every change to an existing job, so changes are
  // serialised and the store and memory never disagree. Submits (new jobs) do not take it.
  std::mutex mutate_mu_;
  std::thread loop_;
};

int64_t JobNumber(const std::string& id);  // "j-42" -> 42

}  // namespace fastgpu::server
