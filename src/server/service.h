// The control plane's core: jobs, nodes, the scheduler loop and the agent protocol (ControlPlane).
// HTTP handlers (http.cc) are thin wrappers over this class.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "agent/control_plane.h"
#include "api/accounts.h"
#include "api/types.h"
#include "billing/billing.h"
#include "common/clock.h"
#include "common/status.h"
#include "api/reservations.h"
#include "sched/framework/estimate.h"
#include "sched/policies/runtime_predictor.h"
#include "sched/scheduler.h"
#include "server/exec.h"
#include "server/file_relay.h"
#include "server/metrics.h"
#include "server/reservations.h"
#include "store/store.h"

namespace fastgpu::server {

struct ServiceOptions {
  std::string policy = "default";  // sched::MakeScheduler's names; "default" is sched::kDefaultPolicy (fair-las)
  std::string placement = "best-fit";
  // Preemption (sched::SchedulerOptions): a running job is a victim only once it has run this long since it
  // started or resumed (--preempt-min-runtime), and a job may preempt jobs of another project while its own
  // holds its fair share of the GPUs only when preempt_across_projects is set (--preempt-across-projects).
  int64_t preempt_min_runtime_ms = 5 * 60 * 1000;
  bool preempt_across_projects = false;
  int64_t stop_grace_ms = 10'000;
  int64_t tick_ms = 250;             // scheduler loop period when nothing wakes it
  // A remote node (fleet mode) silent this long is DOWN: its attempts end LOST (requeued while retries
  // remain), and when it comes back it must register again, which stops what it still runs of them.
  int64_t node_timeout_ms = 10'000;
  // Fencing (agent::Lease): a remote node that has not been heard for this long stops its jobs by itself
  // (SIGTERM, SIGKILL after stop_grace_ms), and a retry of a DOWN node's attempt is placed only once that
  // is over (last heartbeat + fence + grace + kFenceMarginMs), so an attempt and its retry never overlap.
  // 0: no fencing (retries start after the backoff; during a network split a job may run twice).
  int64_t fence_timeout_ms = 30'000;
};

// Added to a DOWN node's fence time before its jobs' retries may start: the supervisor checks its lease
// about once a second.
inline constexpr int64_t kFenceMarginMs = 2'000;

// What the service needs to know about a project (quotas, budget, who runs its jobs, its secrets).
// Implemented over the account service; absent (nullptr) in tests without accounts: no limits.
struct ProjectRules {
  api::Quota quota;
  api::Budget budget;
  std::string run_as_user;
  bool allow_root = false;
  int64_t run_as_uid = 0;  // the project's own Unix uid for its jobs
};
class ProjectDirectory {
 public:
  virtual ~ProjectDirectory() = default;
  virtual std::optional<ProjectRules> Rules(const std::string& project) const = 0;
  // NAME -> value for the named secrets of `project`; kNotFound naming a missing one.
  virtual Result<std::map<std::string, std::string>> SecretEnv(const std::string& project,
                                                               const std::vector<std::string>& names) const = 0;
};

// This month's metered usage of one project (closed segments; running jobs are added on the fly).
struct ProjectSpend {
  int64_t cost_micro = 0;
  int64_t gpu_ms_milli = 0;  // milliseconds x milli-GPU
};

// A node as the registry sees it (for `node list` / `node get`).
struct NodeInfo {
  api::Node node;
  bool registered = false;  // its agent registered since the server started
  bool cordoned = false;    // nothing new is placed there (`node cordon` / `node drain`)
  bool draining = false;    // `node drain`: cordoned until its jobs have ended
  std::vector<std::string> jobs;  // jobs holding GPUs there (SCHEDULED, STARTING, RUNNING)
  std::string connection;   // how its agent reaches the server ("in-process", "https from ...", ...)
  bool remote = false;      // its agent talks over the network (DOWN when silent past the node timeout)
};

struct JobListQuery {
  std::vector<api::JobState> states;
  std::string project;
  const std::set<std::string>* visible = nullptr;  // only these projects (null = all)
  std::string user;            // only jobs of this user ("" = any)
  std::string name;            // only jobs with this name ("" = any)
  UnixMillis created_since = 0;  // only jobs created at or after this time (0 = any)
  bool no_array_tasks = false;   // leave out the tasks of job arrays (each array is one row)
  int limit = 0;       // 0 = no limit
  std::string cursor;  // a JobPage::next_cursor: the page after it ("" = the newest jobs)
};
// One page of jobs, newest first.
struct JobPage {
  std::vector<api::Job> jobs;
  std::string next_cursor;  // "" = no more; else pass it as JobListQuery::cursor for the next page
};

// How a submit is recorded, beyond the job itself.
struct SubmitOptions {
  std::string actor;  // who did it, for the event log ("user:alice", "sa:sa-…"; default "user:<user>")
  // The request's audit row, appended in the job's transaction (target "job:<id>"). Its seq is set
  // (> 0) once written; a replay (below) writes none.
  api::AuditRecord* audit = nullptr;
  // Idempotency-Key of the request (scoped to `actor`): the same key again returns the same job
  // (replayed), never a second one, also across restarts; with a different request: kFailedPrecondition.
  std::string idempotency_key;
};
struct SubmitResult {
  api::Job job;
  bool replayed = false;  // created by an earlier submit with the same idempotency key
};

// `fastgpu job exec` (docs/exec.md): what to run inside a running job.
struct ExecRequest {
  std::vector<std::string> argv;
  bool tty = false;
  bool stdin_open = false;
  int rank = 0;  // a multi-node job: the member whose node runs it
  int rows = 0;  // the client's window size (tty)
  int cols = 0;
  std::string term;  // the client's TERM (tty)
};
struct ExecStarted {
  std::string session;
  std::string node;
  int rank = 0;
};

// What GET /metrics shows of the control plane, read at once under the service's lock (service_metrics.cc).
struct MetricsView {
  struct GpuRow {
    api::Gpu gpu;  // inventory + the readings of the node's last heartbeat
    std::string job;      // the job on it ("" = none; the first when several share it)
    std::string project;  // that job's project
    MilliGpu allocated_milli = 0;  // held by jobs
    bool node_up = false;
  };
  std::vector<GpuRow> gpus;
  std::map<std::pair<std::string, std::string>, int64_t> jobs;  // (state, project) -> live jobs
  struct Pending {
    int64_t jobs = 0;
    MilliGpu milli = 0;
  };
  std::map<std::string, Pending> pending;  // QUEUED jobs by GPU type asked for ("any" = no type)
  struct NodeRow {
    std::string name;
    bool up = false;  // registered and heartbeating
    bool cordoned = false;
    bool draining = false;
    bool simulated = false;
    UnixMillis last_heartbeat = 0;
    int gpus = 0;
  };
  std::vector<NodeRow> nodes;
};

class Service final : public agent::ControlPlane {
 public:
  // Loads the jobs that have not ended from the store (ended ones are read from it when asked for).
  // Jobs that were running are re-checked when their node registers.
  static Result<std::unique_ptr<Service>> Create(store::Store& store, const Clock& clock, ServiceOptions options);
  ~Service() override;

  void Start();  // starts the scheduler loop
  void Stop();   // stops it, wakes all waiters

  // Client API.
  // `user` owns the job; `actor` is who did it for the event log ("user:alice", "sa:sa-…";
  // default "user:<user>").
  Result<api::Job> Submit(api::JobSpec spec, const std::string& user, const std::string& actor = "");
  Result<SubmitResult> Submit(api::JobSpec spec, const std::string& user, const SubmitOptions& options);
  Result<api::Job> GetJob(const std::string& id) const;
  // Filtered and paged in the store (live jobs show their in-memory reason, e.g. why they wait).
  Result<JobPage> ListJobs(const JobListQuery& q) const;
  // `audit` (optional): the request's audit row, appended in the same transaction as the change; its
  // seq is set (> 0) once written.
  Result<api::Job> Cancel(const std::string& id, const std::string& actor, api::AuditRecord* audit = nullptr);
  // Moves a running job elsewhere (`fastgpu job migrate`; GPU health uses it to move jobs off a failing GPU): like a
  // preemption, the job gets its checkpoint signal and grace, then SIGTERM and SIGKILL, and goes back to the queue
  // (PREEMPTED, then QUEUED) with the reason "migrated off GPU <uuid> on <node> by <actor>: <reason>"; its next
  // attempt prefers other GPUs (sched::JobRequest::avoid_gpus). kFailedPrecondition for a job that is not RUNNING,
  // one already being stopped, and a job that is not preemptible unless `force` (it then gets no checkpoint signal:
  // SIGTERM at once). Durable like a cancel. `audit`: the request's row, written once the stop is durable.
  Result<api::Job> Migrate(const std::string& id, const std::string& reason, const std::string& actor,
                           bool force = false, api::AuditRecord* audit = nullptr);
  Result<std::vector<api::JobEvent>> Events(const std::string& id);
  // Blocks until the job is terminal (or RUNNING/terminal when `until_running`), or `timeout` passes.
  Result<api::Job> Wait(const std::string& id, int64_t timeout_ms, bool until_running);
  std::vector<api::Gpu> ListGpus() const;
  std::vector<api::Node> ListNodes() const;
  // Logs: reads from the node's LogSource. kNotFound for unknown job. `rank`: the member of a multi-node job
  // whose log to read (each member node keeps its own); 0 for a job on one node.
  Result<agent::LogChunk> ReadLog(const std::string& id, int64_t offset, int64_t max_bytes, int rank = 0);
  // The same job's log time index (agent/log_times.h): records [first, first + max_records); none when not kept.
  Result<agent::LogTimes> ReadLogTimes(const std::string& id, int64_t first, int64_t max_records, int rank = 0);
  // Waits until the job's state changes or `timeout_ms` passes (for streaming logs).
  void WaitForChange(const std::string& id, int64_t timeout_ms);

  // Wiring: the log source for a node (in-process agent, or an HTTP client in fleet mode).
  void SetLogSource(const std::string& node, agent::LogSource* source);
  // Where the logs of a node without its own source are read (fleet mode: what remote agents pushed). Called
  // with a service mutex held: must not call back into the service.
  void SetFallbackLogSource(std::function<agent::LogSource*(const std::string& node)> source);
  // Called with the id of every job whose state was committed (after the commit, no lock held; must be
  // cheap and must not call back into the service). nullptr removes it.
  void SetJobChangeListener(std::function<void(const std::string& job_id)> listener);

  // ControlPlane (called by agents).
  Status RegisterNode(const agent::NodeRegistration& reg) override;
  Result<std::vector<agent::JobCommand>> WaitCommands(const std::string& node,
                                                      std::chrono::milliseconds timeout) override;
  Status ReportJob(const agent::JobReport& report) override;
  // One transaction for the whole batch (a job's start and exit reported together: one commit).
  Status ReportJobs(const std::vector<agent::JobReport>& reports) override;
  Status Heartbeat(const agent::NodeHeartbeat& hb) override;
  // Drops the commands of `node` acknowledged up to `through_id` (they are not sent again).
  Status AckCommands(const std::string& node, uint64_t through_id) override;

  // Exec sessions (docs/exec.md). StartExec opens a session on the node that runs `rank` of the job and queues the
  // command for its agent (kFailedPrecondition when the job is not RUNNING, naming its state; kNotFound for no such
  // job; kInvalidArgument for no such rank; kUnavailable when that node is not connected). `actor` alone may use it.
  Result<ExecStarted> StartExec(const std::string& job_id, const ExecRequest& req, const std::string& actor);
  ExecSessions& Exec() { return exec_; }
  Result<agent::ExecOutputAck> PushExecOutput(const agent::ExecOutput& out) override;
  Result<agent::ExecInput> WaitExecInput(const std::string& node, const std::string& session, int64_t offset,
                                         std::chrono::milliseconds timeout) override;

  // Job files of a job on a remote node (`fastgpu job files`, docs/sync.md): queues a files command for `node`
  // (kUnavailable when it is not connected) asking for `path` under the job's work dir (a file: at most `max_bytes`
  // from `offset`); the request's id, whose answer Files().Take gives once the agent has posted it.
  Result<std::string> RequestFiles(const std::string& node, const std::string& job_id, const std::string& path,
                                   int64_t offset, int64_t max_bytes, std::string watch_key = {});
  FileRelay& Files() { return files_; }

  // Fleet mode (the HTTP agent routes). Never blocks: the commands queued for `node`, with those delivered
  // earlier and not acknowledged sent again (at least once). `ack` acknowledges first (see AckCommands).
  // `secure_channel`: the agent talks over TLS or loopback; when false, a start that carries secret values is
  // not sent: the job fails with the reason instead (secrets travel only over TLS).
  Result<std::vector<agent::JobCommand>> PollCommands(const std::string& node, uint64_t ack, bool secure_channel);
  // Called with a node's name whenever commands are queued for it (no lock of the service's may be taken
  // by it; must be cheap). nullptr removes it.
  void SetCommandListener(std::function<void(const std::string& node)> listener);
  // Whether the node is known (registered now, or known from the store).
  bool NodeKnown(const std::string& node) const;
  bool NodeRegistered(const std::string& node) const;
  // The fencing lease granted to remote nodes with each registration and heartbeat (zero: none).
  agent::Lease RemoteLease() const;
  // `peer_address`: the address the server sees the node's agent connect from; it is the MASTER_ADDR given
  // to the members of a multi-node job whose rank 0 runs there (else the node's registered address).
  void SetNodeConnection(const std::string& node, const std::string& connection, const std::string& peer_address = "");
  std::vector<NodeInfo> Nodes() const;
  Result<NodeInfo> GetNode(const std::string& node) const;
  // cordon: nothing new is placed there; drain: the same, shown as draining until its jobs have ended.
  // Durable (kept across restarts and re-registrations).
  Result<NodeInfo> SetNodeCordon(const std::string& node, bool cordoned, bool draining,
                                 api::AuditRecord* audit = nullptr);
  // Forgets the node (its jobs must have ended: kFailedPrecondition naming them). Durable.
  // `extra` (e.g. revoking the node's credentials) and `audit` (the request's row) are written in the same
  // transaction as the removal.
  Status RemoveNode(const std::string& node, const std::vector<store::RecordWrite>& extra = {},
                    api::AuditRecord* audit = nullptr);

  // Metrics (service_metrics.cc): the gauges read at scrape time, and the counters and histograms kept as jobs
  // change and the scheduler runs.
  MetricsView MetricsSnapshot() const;
  const ServiceMetrics& Metrics() const { return metrics_; }

  // For tests and benchmarks: run one scheduling pass now.
  void ScheduleOnce();
  // One pass of the loop's checks: runtime limits and budgets (stop commands for running jobs,
  // budget warnings). The loop calls it every tick; tests call it directly.
  void EnforceOnce();
  // One pass of the node liveness check (the loop runs it every tick): remote nodes silent longer than
  // node_timeout_ms are declared DOWN.
  void CheckNodesOnce();
  // One pass over the queued jobs that wait for others (--after / --after-ok; the loop runs it every tick): a job
  // whose dependencies have all ended as asked may be scheduled; one whose --after-ok dependency ended otherwise
  // (or does not exist) is cancelled with that reason; the others wait, their reason naming what they wait for.
  void ResolveDependenciesOnce();
  // One pass over the job arrays (arrays.cc; the loop runs it every tick): lets queued tasks of each array be
  // scheduled while fewer than its limit (%N) hold resources (the others wait, saying so), keeps the array's reason
  // (its tasks per state) and ends the array once all its tasks have ended: SUCCEEDED when all succeeded, FAILED
  // when any failed or was lost, else CANCELLED.
  void ResolveArraysOnce();

  // Reservations (docs/scheduling.md): GPUs set aside for a project in a time window, kept as store records and
  // given to every scheduling round. Create checks the window, the GPU count against the cluster's GPUs of the
  // type, that the project exists, and overlaps; `audit` is written in the same transaction.
  Result<api::Reservation> CreateReservation(api::Reservation r, const std::string& actor,
                                             api::AuditRecord* audit = nullptr);
  // `projects` non-null: only those projects' reservations.
  std::vector<api::Reservation> ListReservations(const std::set<std::string>* projects = nullptr) const;
  Result<api::Reservation> GetReservation(const std::string& id) const;
  Status DeleteReservation(const std::string& id, api::AuditRecord* audit = nullptr);
  // Recomputes the expected start of queued jobs now (sched::EstimateStarts); the loop does it every
  // kEstimateEveryMs. Queued jobs show it in GetJob/ListJobs (expected_start_at, expected_start_note,
  // deadline_warning).
  void EstimateStartsOnce();
  static constexpr int64_t kEstimateEveryMs = 5'000;
  // At most this many queued jobs get an expected start (the first in the scheduler's order).
  static constexpr size_t kMaxEstimated = 1'000;

  // Accounts and billing wiring (call before Start()).
  void SetProjectDirectory(const ProjectDirectory* directory);
  // Loads this month's spend from the store's ledger.
  Status SetBilling(billing::PriceCatalog prices, std::vector<billing::Plan> plans);
  void AddPrice(const api::PriceEntry& price);
  void AddPlan(const billing::Plan& plan);
  billing::PriceCatalog Prices() const;
  std::vector<billing::Plan> Plans() const;
  // Spend this month per project: closed segments plus what running jobs have accrued so far,
  // by GPU type. project "" = all.
  std::map<std::pair<std::string, std::string>, ProjectSpend> SpendThisMonth(const std::string& project) const;
  // Price of the GPU type a job would get (its gpu_type, else the most common type in the fleet).
  Result<billing::Estimate> EstimateCost(const api::JobSpec& spec) const;

 Service(store::Store& store, const Clock& clock, ServiceOptions options,
          std::unique_ptr<sched::Scheduler> scheduler);

 private:
  // Job arrays (arrays.cc). Submits the array job and its tasks in one transaction (Submit has checked the spec).
  Result<SubmitResult> SubmitArray(api::Job job, const std::string& actor, const SubmitOptions& options,
                                   std::string fingerprint);
  // `job cancel` of a live array job: cancels every task that has not ended (the queued ones in one transaction);
  // the array ends CANCELLED once they have. nullopt when `id` is not a live array job.
  std::optional<Result<api::Job>> CancelArray(const std::string& id, const std::string& actor,
                                              api::AuditRecord* audit);
  // The tasks of an array job (GetJob): index, id, state, in index order. Requires no service mutex held.
  Status FillArrayTasks(api::Job& job) const;
  // Requires mu_ held. A queued job the scheduler must not place now: an array job (never placed itself) or a task
  // of an array beyond the array's limit.
  bool ArrayHeldLocked(const api::Job& job) const;

  struct NodeState {
    api::Node node;
    std::vector<api::Gpu> gpus;  // inventory + live metrics
    std::deque<agent::JobCommand> commands;  // not delivered yet
    std::deque<agent::JobCommand> unacked;   // delivered by PollCommands, not acknowledged yet
    agent::LogSource* logs = nullptr;
    bool registered = false;
    bool cordoned = false;
    bool draining = false;
    std::string connection;
    bool remote = false;  // its agent talks over the network (liveness applies)
    // Known from the store when the server started, not registered since: if it does not come back within
    // node_timeout_ms of awaited_since, it is DOWN like a silent node (its jobs must not stay RUNNING).
    bool awaited = false;
    UnixMillis awaited_since = 0;
    std::string peer_address;  // where its agent connects from (remote nodes)
  };
  // Why the server asked a job to stop; decides its final state.
  // kMemberFailed / kMemberLost: a member of a multi-node job failed or was lost; the others are stopped and
  // the job ends with that member's reason once all have ended.
  // kMemberNeverStarted: a member of a gang that was still STARTING proved never started (its node restarted):
  // the others are stopped and the job goes back to the queue with its attempt given back.
  // kPreempt / kMigrate: the job ends PREEMPTED and goes back to the queue (a migration's next attempt prefers other
  // GPUs).
  enum class StopKind {
    kCancel, kRuntimeLimit, kPreempt, kNodeLost, kBudget, kMemberFailed, kMemberLost, kMemberNeverStarted, kMigrate
  };
  struct StopRequest {
    StopKind kind;
    std::string reason;
    // The stop lets the job save its work: its checkpoint signal first, SIGTERM after its checkpoint grace.
    bool checkpoint = false;
  };
  // Requires mu_ held. The stop command of the current attempt of `job` for `stop`.
  agent::JobCommand StopCommandLocked(const api::Job& job, const StopRequest& stop) const;
  // Requires mu_ held. A queued job might preempt a running one: some preemptible job has run its minimum runtime
  // and is not being stopped (the scheduler decides; this only keeps the loop from running a round for nothing).
  bool PreemptionPossibleLocked() const;

  void Loop();
  // Requires mu_ held. Builds the scheduler inputs from the current state.
  sched::ClusterSnapshot SnapshotLocked(bool empty) const;
  // Where the log of job `id` (member `rank`) is read from; null when the job never ran (no log yet).
  Result<agent::LogSource*> LogSourceOf(const std::string& id, int rank);
  bool HasFreeCapacityLocked() const;
  // Writes updates to the store (durable), then applies them in memory. Requires mutate_mu_ held
  // and mu_ NOT held.
  Status Commit(const std::vector<store::JobUpdate>& updates);
  store::JobUpdate Transition(const api::Job& before, api::Job after, const std::string& reason,
                              const std::string& actor) const;
  void ApplyLocked(const api::Job& job);
  // Requires mu_ held. The job if it is live or recently ended, else null (it may be in the store).
  const api::Job* FindLocked(const std::string& id) const;
  // Requires mu_ held. Keeps an ended job in the bounded cache of recently ended jobs.
  void RememberEndedLocked(const api::Job& job) const;
  // Requires no service mutex held. The job from memory, else from the store.
  Result<api::Job> LoadJob(const std::string& id) const;
  void EnforceOnceLocked();
  void EnforceLimitsLocked(std::vector<std::pair<std::string, agent::JobCommand>>& stops);
  // A retry of a lost attempt is not placed before the backoff nor before fence_until_ of the job.
  api::Job FinalStateFor(const api::Job& job, const agent::JobReport& report,
                         std::vector<store::JobUpdate>& updates);
  // Requires mu_ held. A report of one member of a multi-node job; false when it changes nothing.
  bool GangReportLocked(const api::Job& job, const agent::JobReport& report, std::vector<store::JobUpdate>& updates);
  // Requires mu_ held. Queues `cmd` (a stop) for every node of the job whose member has not ended.
  void QueueStopLocked(const api::Job& job, const agent::JobCommand& cmd);
  // Requires mu_ held. The start command(s) of a job just SCHEDULED: one per member node.
  void QueueStartsLocked(const api::Job& job, const agent::JobCommand& base);
  // Requires mu_ held. Recomputes capacity_, any_gpu_ and gang_width_ from the registered nodes.
  void RefreshCapacityLocked();
  void NotifyAll();
  // Requires mu_ held. Queues a command for `node` (assigns its id) and wakes its pollers.
  void QueueCommandLocked(const std::string& node, agent::JobCommand cmd);
  // Requires mutate_mu_ held, mu_ not held. Marks the start commands in `cmds` as sent (SCHEDULED ->
  // STARTING) and drops those whose job ended meanwhile.
  Status MarkSentLocked(const std::string& node, std::vector<agent::JobCommand>& cmds,
                        std::vector<store::JobUpdate>& updates);
  // Durable stop requests (cancels): a restart of the server or a reconnect of the agent loses none.
  // `kind`: "" (a cancel) or "migrate"; `avoid_gpus`: a migration's GPUs to avoid, restored after a restart.
  Status PersistStop(const std::string& job_id, int attempt, const std::string& reason, const std::string& kind = "",
                     const std::vector<std::string>& avoid_gpus = {});
  void ForgetStops(const std::vector<store::JobUpdate>& updates);
  Status PersistNodeState(const std::string& node, bool cordoned, bool draining, bool removed,
                          const std::vector<store::RecordWrite>& extra = {}, api::AuditRecord* audit = nullptr);
  // Requires mu_ held. Metering for a run that ends with this transition (empty when none ended).
  void MeterLocked(const api::Job& before, const api::Job& after, UnixMillis at, store::JobUpdate& u) const;
  std::string GpuTypeLocked(const api::Job& job) const;
  void RollMonthLocked(UnixMillis now);
  // Requires mu_ held. Why a queued job of this project may not start now ("" = it may).
  std::string HoldReasonLocked(const api::Job& job, const std::map<std::string, ProjectSpend>& spend,
                               const std::map<std::string, std::map<std::string, MilliGpu>>& held) const;
  std::map<std::string, ProjectSpend> SpendByProjectLocked(UnixMillis now) const;
  void EnforceBudgetsLocked(std::vector<std::pair<std::string, agent::JobCommand>>& stops);

  // Requires mu_ held. A queued job as GetJob/ListJobs show it: expected start (or why it is unknown), deadline
  // warning, and the reason of a job whose begin time has not come.
  void DescribeQueuedLocked(api::Job& job) const;
  // Requires mu_ held. The runtime predicted for a job from the SUCCEEDED runs of its project, user and name (its
  // name, else its command line); 0 = none yet.
  int64_t PredictedRuntimeLocked(const api::Job& job) const;
  // Requires mu_ held. Learns the running time of a job that SUCCEEDED.
  void ObserveRuntimeLocked(const api::Job& job);
  // Rebuilds the runtime predictor from the store's most recently SUCCEEDED jobs (one query, bounded).
  Status LoadRuntimeHistory();
  // Requires mu_ held. The scheduler request of a queued job, with its runtime prediction where the policy or its
  // deadline uses it.
  sched::JobRequest PredictedRequestLocked(const api::Job& job) const;
  // Requires mu_ held. Remembers the order in which the round considered the queued jobs (for EstimateStartsOnce).
  void NoteRoundOrderLocked(const sched::Decisions& d);

  store::Store& store_;
  const Clock& clock_;
  ServiceOptions options_;
  std::unique_ptr<sched::Scheduler> scheduler_;

  mutable std::mutex mu_;
  std::condition_variable changed_;     // any job changed (waiters, log followers)
  std::condition_variable wake_loop_;   // scheduler loop
  mutable std::mutex listener_mu_;
  std::function<void(const std::string&)> job_listener_;
  std::condition_variable commands_cv_; // agents waiting for commands
  std::function<void(const std::string&)> command_listener_;  // guarded by listener_mu_
  uint64_t next_command_id_ = 1;
  std::set<std::string> persisted_stops_;  // jobs with a durable stop record
  bool wake_ = false;
  bool stopping_ = false;
  // Jobs that have not ended (QUEUED, SCHEDULED, STARTING, RUNNING): all scheduling needs. Ended jobs
  // live in the store; the most recently ended are cached for waiters and log readers.
  std::unordered_map<std::string, api::Job> jobs_;
  static constexpr size_t kEndedCache = 1024;
  mutable std::unordered_map<std::string, api::Job> ended_;
  mutable std::deque<std::string> ended_order_;  // oldest first
  std::set<std::pair<int64_t, std::string>> queued_;  // (id number, id) in submit order
  std::set<std::string> active_;                      // jobs holding GPUs (SCHEDULED/STARTING/RUNNING)
  sched::ClusterSnapshot capacity_;                   // all registered nodes, empty: for CheckFeasible
  bool any_gpu_ = false;
  // Most GPUs of one type on one registered node, by type ("" = any type): a job asking for more whole GPUs
  // spans several nodes (sched::JobRequest::nodes).
  std::map<std::string, int> gang_width_;
  std::map<std::string, NodeState> nodes_;
  // Requeued after a lost attempt: not placed before this time (exponential backoff, or the fence of the
  // node that lost it; kept in memory only: a restarted server holds retried jobs for one fence time).
  std::unordered_map<std::string, UnixMillis> retry_after_;
  // A job with an attempt (or a member of one) on a node declared DOWN: that node stops it by itself by this
  // time (fencing). Taken by FinalStateFor when the attempt ends.
  std::unordered_map<std::string, UnixMillis> fence_until_;
  // Queued jobs whose dependencies have all ended as asked (ResolveDependenciesOnce); in memory only.
  std::set<std::string> deps_met_;
  // Queued tasks of job arrays that may be scheduled (within their array's limit; ResolveArraysOnce); in memory only.
  std::set<std::string> array_ok_;
  std::unordered_map<std::string, StopRequest> stops_;
  // Migrated jobs: the GPUs their next attempt should avoid when others fit (sched::JobRequest::avoid_gpus). Dropped
  // once the job is placed again or ends.
  std::unordered_map<std::string, std::vector<std::string>> avoid_gpus_;
  std::map<std::string, int64_t> submitting_;  // project -> submits being written (queued-jobs quota)
  // Held across "read state, persist, apply" for every change to an existing job, so changes are
  // serialised and the store and memory never disagree. Submits (new jobs) do not take it.
  std::mutex mutate_mu_;
  std::thread loop_;

  ExecSessions exec_{clock_};  // its own lock; taken after mu_ when both are held
  FileRelay files_{clock_};    // its own lock; never held with mu_
  std::function<agent::LogSource*(const std::string&)> fallback_logs_;  // guarded by mu_
  const ProjectDirectory* directory_ = nullptr;
  billing::PriceCatalog prices_;
  std::vector<billing::Plan> plans_;
  std::string month_;                                     // month the spend below is for
  std::map<std::pair<std::string, std::string>, ProjectSpend> month_spend_;  // (project, gpu type)
  std::unordered_set<std::string> month_keys_;            // ledger keys counted in month_spend_
  std::set<std::string> budget_warned_;                   // "<project>/<month>"

  ReservationBook reservations_{store_, clock_};
  // Guarded by mu_: runtimes of SUCCEEDED jobs by (project, user, name); expected starts of queued jobs and the
  // order of the last round that considered them.
  sched::RuntimePredictor predictor_;
  std::unordered_map<std::string, sched::StartEstimate> estimates_;
  UnixMillis estimated_at_ = 0;
  std::vector<std::string> round_order_;

  // Requires mu_ held. Counts a job's transition into `after` in metrics_ (before it is applied).
  void NoteTransitionLocked(const api::Job& after);
  // Requires mu_ held. Adds a heartbeat's readings to the GPU usage of the jobs running on them; `since_ms`: time
  // since the node's previous heartbeat (the energy of that interval; 0 for the first).
  void NoteGpuUsageLocked(const std::string& node, const std::vector<api::Gpu>& readings, int64_t since_ms);
  ServiceMetrics metrics_;
  std::unordered_map<std::string, UnixMillis> requeued_at_;  // guarded by mu_: jobs back in the queue since
};

int64_t JobNumber(const std::string& id);  // "j-42" -> 42
// Wait before retrying a job whose attempt number `attempt` was lost: 1 s, 2 s, 4 s ... at most 60 s.
int64_t RetryBackoffMs(int attempt);

// The rendezvous port of a multi-node job (MASTER_PORT): 30000 + (job number x 10 + attempt) mod 30000, so
// that every member knows it without asking rank 0's node. Not probed: see docs/fleet.md.
int GangMasterPort(const std::string& job_id, int attempt);
// A job as one member node sees it in its start command: node and GPUs are that member's, and a task of a job
// array has its FASTGPU_ARRAY_* variables (AddArrayEnv).
api::Job MemberView(const api::Job& job, int rank);
// Whether the job holds GPUs on `node` (any member, for a multi-node job).
bool JobOnNode(const api::Job& job, const std::string& node);
// A task of a job array as its start command carries it: FASTGPU_ARRAY_JOB_ID, FASTGPU_ARRAY_INDEX and
// FASTGPU_ARRAY_COUNT in its environment (arrays.cc). Other jobs unchanged.
void AddArrayEnv(api::Job& job);

}  // namespace fastgpu::server
