#include "server/service.h"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <nlohmann/json.hpp>

#include "api/json.h"
#include "common/crypto.h"

namespace fastgpu::server {

using api::Job;
using api::JobState;

int64_t JobNumber(const std::string& id) {
  if (id.size() < 3 || id.compare(0, 2, "j-") != 0) return -1;
  int64_t n = 0;
  for (size_t i = 2; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9') return -1;
    n = n * 10 + (id[i] - '0');
    if (n > (int64_t{1} << 52)) return -1;
  }
  return n;
}

int GangMasterPort(const std::string& job_id, int attempt) {
  const int64_t n = std::max<int64_t>(0, JobNumber(job_id));
  return 30000 + static_cast<int>((n * 10 + attempt) % 30000);
}

api::Job MemberView(const api::Job& job, int rank) {
  if (job.members.empty() || rank < 0 || static_cast<size_t>(rank) >= job.members.size()) {
    if (job.array_parent.empty()) return job;
    api::Job task = job;
    AddArrayEnv(task);  // a task of a job array: its FASTGPU_ARRAY_* variables (arrays.cc)
    return task;
  }
  api::Job v = job;
  AddArrayEnv(v);
  const api::JobMember& m = job.members[static_cast<size_t>(rank)];
  v.node = m.node;
  v.assigned_gpus = m.gpu_uuids;
  v.assigned_gpu_indices = m.gpu_indices;
  return v;
}

bool JobOnNode(const api::Job& job, const std::string& node) {
  if (job.members.empty()) return job.node == node;
  return std::any_of(job.members.begin(), job.members.end(), [&](const api::JobMember& m) { return m.node == node; });
}

namespace {

constexpr const char* kStopKind = "job_stop";      // key: job id; {"attempt", "reason"[, "kind", "avoid_gpus"]}
constexpr const char* kNodeStateKind = "node_state";  // key: node; {"cordoned", "draining", "removed"}

bool HoldsResources(JobState s) {
  return s == JobState::kScheduled || s == JobState::kStarting || s == JobState::kRunning;
}

// Back to the queue: no node, GPUs or members.
void ClearPlacement(Job& j) {
  j.node.clear();
  j.assigned_gpus.clear();
  j.assigned_gpu_indices.clear();
  j.members.clear();
}

const api::JobMember* MemberOn(const Job& j, const std::string& node) {
  for (const auto& m : j.members)
    if (m.node == node) return &m;
  return nullptr;
}

std::vector<std::string> JobNodes(const Job& j) {
  if (j.members.empty()) return {j.node};
  std::vector<std::string> out;
  for (const auto& m : j.members) out.push_back(m.node);
  return out;
}

// `widths`: most GPUs of one type on one node, by type ("" = any). A job asking for more whole GPUs than
// that spans nodes: the largest per-node count that divides its GPUs and fits a node, as many nodes as needed.
sched::JobRequest ToRequest(const Job& j, const std::map<std::string, int>& widths) {
  sched::JobRequest r;
  r.job_id = j.id;
  r.name = j.spec.name;
  r.project = j.spec.project;
  r.user = j.user;
  r.priority = j.spec.priority;
  r.submitted_at = j.created_at;
  if (j.spec.gpus_milli >= kMilliPerGpu) {
    r.gpus = static_cast<int>(j.spec.gpus_milli / kMilliPerGpu);
    r.milli_per_gpu = kMilliPerGpu;
  } else {
    r.gpus = 1;
    r.milli_per_gpu = j.spec.gpus_milli;
  }
  r.memory_mib = j.spec.memory_mib;
  r.gpu_type = j.spec.gpu_type;
  r.runtime_limit_s = j.spec.runtime_limit_s;
  r.preemptible = j.spec.preemptible;
  r.start_after = j.spec.begin_at;
  r.finish_before = j.spec.deadline_at;
  r.attained_gpu_ms = j.attained_gpu_ms;
  // A container job (docs/containers.md) runs only where podman is: agents that have it say so in a label.
  if (!j.spec.image.empty()) r.node_labels.emplace("containers", "podman");
  if (auto w = widths.find(j.spec.gpu_type); w != widths.end() && w->second > 0 && r.gpus > w->second) {
    int per = w->second;
    while (per > 1 && r.gpus % per != 0) --per;
    r.nodes = r.gpus / per;
    r.gpus = per;
  }
  return r;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

}  // namespace

Service::Service(store::Store& store, const Clock& clock, ServiceOptions options,
                 std::unique_ptr<sched::Scheduler> scheduler)
    : store_(store), clock_(clock), options_(std::move(options)), scheduler_(std::move(scheduler)) {}

Service::~Service() { Stop(); }

Result<std::unique_ptr<Service>> Service::Create(store::Store& store, const Clock& clock, ServiceOptions options) {
  sched::SchedulerOptions sched_options;
  sched_options.policy = options.policy;
  sched_options.placement = options.placement;
  sched_options.min_runtime_ms = options.preempt_min_runtime_ms;
  sched_options.preempt_across_projects = options.preempt_across_projects;
  ASSIGN_OR_RETURN(auto scheduler, sched::MakeScheduler(sched_options));
  auto svc = std::make_unique<Service>(store, clock, std::move(options), std::move(scheduler));
  // Only the jobs that have not ended: ended ones are read from the store when asked for.
  ASSIGN_OR_RETURN(auto jobs, store.ListJobs({.states = {JobState::kQueued, JobState::kScheduled, JobState::kStarting,
                                                         JobState::kRunning, JobState::kPreempted}}));
  const UnixMillis started = clock.NowMillis();
  const int64_t fence_ms =
      svc->options_.fence_timeout_ms > 0 ? svc->options_.fence_timeout_ms + svc->options_.stop_grace_ms + kFenceMarginMs : 0;
  for (auto& j : jobs) {
    if (j.state == JobState::kQueued) svc->queued_.insert({JobNumber(j.id), j.id});
    // A retry queued before the restart may have been waiting for a node's fence (not kept): wait a whole one.
    if (j.state == JobState::kQueued && j.attempt > 0 && fence_ms > 0) svc->retry_after_[j.id] = started + fence_ms;
    if (HoldsResources(j.state)) svc->active_.insert(j.id);
    svc->jobs_.emplace(j.id, std::move(j));
  }
  ASSIGN_OR_RETURN(auto nodes, store.ListNodes());
  ASSIGN_OR_RETURN(auto gpus, store.ListGpus());
  // Node admin state (cordon/drain/removed), kept as records.
  ASSIGN_OR_RETURN(auto node_states, store.ListRecords(kNodeStateKind, ""));
  std::map<std::string, nlohmann::json> admin;
  for (const auto& rec : node_states) {
    auto j = nlohmann::json::parse(rec.value, nullptr, false);
    if (j.is_object()) admin[rec.key] = std::move(j);
  }
  for (auto& n : nodes) {
    auto a = admin.find(n.name);
    if (a != admin.end() && a->second.value("removed", false)) continue;
    NodeState ns;
    ns.node = n;
    ns.node.healthy = false;  // until its agent registers again
    if (a != admin.end()) {
      ns.cordoned = a->second.value("cordoned", false);
      ns.draining = a->second.value("draining", false);
    }
    ns.node.draining = ns.cordoned;
    ns.awaited = true;
    ns.awaited_since = started;
    svc->nodes_.emplace(n.name, std::move(ns));
  }
  // Stops (cancels) that were requested and not yet carried out: sent again when the node registers.
  ASSIGN_OR_RETURN(auto stops, store.ListRecords(kStopKind, ""));
  std::vector<store::RecordWrite> stale;
  for (const auto& rec : stops) {
    auto j = nlohmann::json::parse(rec.value, nullptr, false);
    auto job = svc->jobs_.find(rec.key);
    if (!j.is_object() || job == svc->jobs_.end() || !HoldsResources(job->second.state) ||
        j.value("attempt", -1) != job->second.attempt) {
      stale.push_back({.kind = kStopKind, .key = rec.key, .erase = true});
      continue;
    }
    const bool migrate = j.value("kind", std::string()) == "migrate";
    svc->stops_[rec.key] = {migrate ? StopKind::kMigrate : StopKind::kCancel,
                            j.value("reason", std::string("cancelled by user")),
                            migrate && job->second.spec.preemptible};
    svc->persisted_stops_.insert(rec.key);
    job->second.reason = migrate ? "migrating" : "cancelling";
    if (migrate && j.contains("avoid_gpus") && j["avoid_gpus"].is_array()) {
      for (const auto& u : j["avoid_gpus"])
        if (u.is_string()) svc->avoid_gpus_[rec.key].push_back(u.get<std::string>());
    }
  }
  if (!stale.empty()) RETURN_IF_ERROR(store.WriteRecords(stale));
  for (auto& g : gpus) {
    auto it = svc->nodes_.find(g.node);
    if (it != svc->nodes_.end()) it->second.gpus.push_back(g);
  }
  RETURN_IF_ERROR(svc->reservations_.Load());
  RETURN_IF_ERROR(svc->LoadRuntimeHistory());
  return svc;
}

void Service::Start() {
  std::lock_guard lock(mu_);
  if (loop_.joinable()) return;
  stopping_ = false;
  loop_ = std::thread([this] { Loop(); });
}

void Service::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_loop_.notify_all();
  commands_cv_.notify_all();
  changed_.notify_all();
  exec_.Shutdown();
  if (loop_.joinable()) loop_.join();
}

void Service::NotifyAll() { changed_.notify_all(); }

void Service::SetLogSource(const std::string& node, agent::LogSource* source) {
  std::lock_guard lock(mu_);
  nodes_[node].logs = source;
}

void Service::SetFallbackLogSource(std::function<agent::LogSource*(const std::string& node)> source) {
  std::lock_guard lock(mu_);
  fallback_logs_ = std::move(source);
}

store::JobUpdate Service::Transition(const Job& before, Job after, const std::string& reason,
                                     const std::string& actor) const {
  store::JobUpdate u;
  u.event.job_id = before.id;
  u.event.at = clock_.NowMillis();
  u.event.from = std::string(api::JobStateName(before.state));
  u.event.to = std::string(api::JobStateName(after.state));
  u.event.reason = reason;
  u.event.actor = actor;
  after.reason = reason;
  u.job = std::move(after);
  // A run ends at the job's finished_at when that is known to lie within the run (a recovered exit).
  UnixMillis end = u.event.at;
  if (u.job.finished_at > 0 && u.job.finished_at >= before.started_at && u.job.finished_at < end)
    end = u.job.finished_at;
  MeterLocked(before, u.job, end, u);
  return u;
}

void Service::ApplyLocked(const Job& job) {
  auto num = JobNumber(job.id);
  if (job.state == JobState::kQueued) {
    queued_.insert({num, job.id});
  } else {
    queued_.erase({num, job.id});
  }
  if (HoldsResources(job.state)) {
    active_.insert(job.id);
  } else {
    active_.erase(job.id);
  }
  if (api::IsTerminal(job.state) || job.state == JobState::kQueued) stops_.erase(job.id);
  if (api::IsTerminal(job.state) || job.state == JobState::kScheduled) avoid_gpus_.erase(job.id);
  if (job.state != JobState::kQueued) array_ok_.erase(job.id);
  if (job.state == JobState::kSucceeded) ObserveRuntimeLocked(job);
  // Commands run inside the job (`job exec`) end with its run.
  if (job.state != JobState::kRunning)
    exec_.JobEnded(job.id, "job " + job.id + " is " + std::string(api::JobStateName(job.state)));
  if (api::IsTerminal(job.state)) {
    jobs_.erase(job.id);
    // A LOST attempt with retries left is requeued by the next update of the same commit: its backoff stays.
    if (job.state != JobState::kLost) retry_after_.erase(job.id);
    if (api::IsTerminal(job.state)) deps_met_.erase(job.id);
    RememberEndedLocked(job);
  } else {
    if (ended_.erase(job.id) > 0) {  // requeued: it leaves the cache of ended jobs, order entry included
      if (auto o = std::find(ended_order_.begin(), ended_order_.end(), job.id); o != ended_order_.end())
        ended_order_.erase(o);
    }
    jobs_[job.id] = job;
  }
}

const Job* Service::FindLocked(const std::string& id) const {
  if (auto it = jobs_.find(id); it != jobs_.end()) return &it->second;
  if (auto it = ended_.find(id); it != ended_.end()) return &it->second;
  return nullptr;
}

void Service::RememberEndedLocked(const Job& job) const {
  auto [it, inserted] = ended_.insert_or_assign(job.id, job);
  if (!inserted) return;
  ended_order_.push_back(job.id);
  while (ended_order_.size() > kEndedCache) {
    ended_.erase(ended_order_.front());
    ended_order_.pop_front();
  }
}

Result<Job> Service::LoadJob(const std::string& id) const {
  {
    std::lock_guard lock(mu_);
    if (const Job* j = FindLocked(id)) return *j;
  }
  if (JobNumber(id) <= 0) return NotFound("job " + id + " does not exist");
  auto stored = store_.GetJob(id);
  if (!stored.ok()) {
    if (stored.status().code() == ErrorCode::kNotFound) return NotFound("job " + id + " does not exist");
    return stored.status();
  }
  if (api::IsTerminal(stored->state)) {
    std::lock_guard lock(mu_);
    if (!jobs_.count(id)) RememberEndedLocked(*stored);
  }
  return stored;
}

Status Service::Commit(const std::vector<store::JobUpdate>& updates) {
  if (updates.empty()) return Status::Ok();
  RETURN_IF_ERROR(store_.UpdateJobs(updates));
  ForgetStops(updates);
  {
    std::lock_guard lock(mu_);
    for (const auto& u : updates) {
      // GPUs released or a job (re)queued: the loop schedules at once instead of at its next tick.
      if (u.job.state == JobState::kQueued || (!HoldsResources(u.job.state) && active_.count(u.job.id))) wake_ = true;
      if (auto prev = jobs_.find(u.job.id); prev != jobs_.end() && !prev->second.members.empty() &&
                                             !HoldsResources(u.job.state) &&
                                             (prev->second.state == JobState::kStarting ||
                                              prev->second.state == JobState::kRunning)) {
        // A multi-node job given up while members may still run (a node lost, a start refused): stop them.
        agent::JobCommand cmd;
        cmd.kind = agent::JobCommand::Kind::kStop;
        cmd.job_id = u.job.id;
        cmd.attempt = prev->second.attempt;
        cmd.reason = "stopped: the job ended (" + u.event.reason + ")";
        cmd.grace_ms = options_.stop_grace_ms;
        QueueStopLocked(u.job.members.empty() ? prev->second : u.job, cmd);
      }
      NoteTransitionLocked(u.job);  // metrics (service_metrics.cc)
      ApplyLocked(u.job);
      for (const auto& e : u.ledger) {
        // Counted once: the month may have been (re)loaded from the store since this commit.
        if (e.kind != "usage" || e.month != month_ || !month_keys_.insert(e.key).second) continue;
        auto& s = month_spend_[{e.project, e.gpu_type}];
        s.cost_micro += e.amount_micro;
        s.gpu_ms_milli += e.seconds * 1000 * e.milli;
      }
    }
  }
  NotifyAll();
  wake_loop_.notify_all();
  {
    std::lock_guard lock(listener_mu_);
    if (job_listener_)
      for (const auto& u : updates) job_listener_(u.job.id);
  }
  return Status::Ok();
}

void Service::SetJobChangeListener(std::function<void(const std::string& job_id)> listener) {
  std::lock_guard lock(listener_mu_);
  job_listener_ = std::move(listener);
}

// ---------------------------------------------------------------------------------------------
// Client API

Result<Job> Service::Submit(api::JobSpec spec, const std::string& user, const std::string& actor) {
  ASSIGN_OR_RETURN(SubmitResult r, Submit(std::move(spec), user, SubmitOptions{.actor = actor}));
  return std::move(r.job);
}

Result<SubmitResult> Service::Submit(api::JobSpec spec, const std::string& user, const SubmitOptions& options) {
  RETURN_IF_ERROR(api::ValidateJobSpec(spec));
  const std::string actor = options.actor.empty() ? "user:" + user : options.actor;
  std::string fingerprint;
  if (!options.idempotency_key.empty()) {
    const std::string& key = options.idempotency_key;
    if (key.size() > 255 || !std::all_of(key.begin(), key.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
      return InvalidArgument("Idempotency-Key must be 1-255 printable ASCII characters without spaces");
    fingerprint = Sha256Hex(api::ToJson(spec).dump());
    // A retry of a submit that went through returns its job, before any check that the first one may now
    // fail (e.g. the queued-jobs quota it filled itself).
    ASSIGN_OR_RETURN(auto earlier, store_.FindSubmitKey(actor, key));
    if (earlier) {
      if (earlier->fingerprint != fingerprint) {
        return FailedPrecondition("Idempotency-Key '" + key + "' was already used for another request (job " +
                                  earlier->job_id + "); send a new key for a new job");
      }
      auto job = GetJob(earlier->job_id);
      if (!job.ok()) job = store_.GetJob(earlier->job_id);  // committed, not applied in memory yet
      if (!job.ok()) return job.status();
      return SubmitResult{.job = std::move(job).value(), .replayed = true};
    }
  }
  Job job;
  job.spec = std::move(spec);
  job.user = user;
  job.state = JobState::kQueued;
  job.created_at = clock_.NowMillis();
  job.reason = "waiting to be scheduled";
  // Dependencies: jobs of the same project (another project's jobs are not there for this one).
  for (const auto* list : {&job.spec.after, &job.spec.after_ok}) {
    for (const auto& d : *list) {
      auto dep = LoadJob(d);
      if (!dep.ok() && dep.status().code() != ErrorCode::kNotFound) return dep.status();
      if (!dep.ok() || dep->spec.project != job.spec.project)
        return InvalidArgument("dependency " + d + " does not exist in project " + job.spec.project);
    }
  }
  // A deadline its runtime limit cannot meet (from the later of now and its begin time) is refused now.
  if (job.spec.deadline_at > 0 && job.spec.deadline_at <= job.created_at)
    return InvalidArgument("the deadline " + FormatTimestamp(job.spec.deadline_at) + " has already passed");
  RETURN_IF_ERROR(sched::CheckDeadline(ToRequest(job, {}), job.created_at));
  bool counted = false;  // in submitting_ while the store write is in flight (queued-jobs quota)
  // Jobs this submit queues: a job array queues every task (the array job itself never runs).
  const int64_t adding =
      job.spec.array.empty() ? 1 : static_cast<int64_t>(api::ParseArraySpec(job.spec.array)->indices.size());
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Unavailable("server is shutting down");
    if (any_gpu_) {
      // A container job (docs/containers.md) needs a node with podman: agents that have it say so in a label, and
      // the scheduler places the job only there (sched::JobRequest::node_labels).
      if (!job.spec.image.empty() &&
          std::none_of(capacity_.nodes.begin(), capacity_.nodes.end(), [](const sched::NodeView& n) {
            auto it = n.labels.find("containers");
            return it != n.labels.end() && it->second == "podman";
          })) {
        return Unschedulable("no node can run container jobs (image " + job.spec.image +
                             "): none has podman; install it on the nodes (apt-get install podman) and restart their "
                             "agents, or submit without --image");
      }
      const sched::JobRequest req = ToRequest(job, gang_width_);
      Status feasible = sched::CheckFeasible(capacity_, req);
      // Spread over nodes: say what was asked for, then what it would take.
      if (!feasible.ok() && req.nodes > 1)
        feasible = Status(feasible.code(), FormatMilliGpu(job.spec.gpus_milli) + " GPUs are more than one node has: " +
                                               feasible.message());
      RETURN_IF_ERROR(feasible);
    }
    if (directory_) {
      auto rules = directory_->Rules(job.spec.project);
      if (!rules) return NotFound("project " + job.spec.project + " does not exist");
      // A job larger than its project's GPU quota would wait forever: refused now, saying so.
      for (const auto& [type, limit] : rules->quota.max_gpus_milli) {
        if (type != "*" && type != job.spec.gpu_type) continue;
        if (job.spec.gpus_milli > limit) {
          return Unschedulable("quota: project " + job.spec.project + " may hold at most " + FormatMilliGpu(limit) +
                               " " + (type == "*" ? std::string("GPUs") : type + " GPUs") + " at once, and the job asks "
                               "for " + FormatMilliGpu(job.spec.gpus_milli) + ": it could never start (ask an admin "
                               "to raise the quota: fastgpu project set " + job.spec.project + " --quota-gpus ...)");
        }
      }
      if (rules->quota.max_queued_jobs > 0) {
        // Submits still being written count too, so parallel submits cannot overshoot the quota.
        int64_t queued = submitting_[job.spec.project];
        for (const auto& [num, id] : queued_)
          queued += jobs_.at(id).spec.project == job.spec.project && jobs_.at(id).spec.array.empty();
        if (queued + adding > rules->quota.max_queued_jobs)
          return ResourceExhausted("quota: project " + job.spec.project + " has " + std::to_string(queued) + "/" +
                                   std::to_string(rules->quota.max_queued_jobs) +
                                   " jobs queued; wait for some to start or cancel some");
      }
      if (!job.spec.secrets.empty()) RETURN_IF_ERROR(directory_->SecretEnv(job.spec.project, job.spec.secrets).status());
      if (rules->quota.max_queued_jobs > 0) {
        submitting_[job.spec.project] += adding;
        counted = true;
      }
    }
  }
  auto uncount = [&] {
    if (counted && (submitting_[job.spec.project] -= adding) <= 0) submitting_.erase(job.spec.project);
  };
  if (!job.spec.array.empty()) {
    auto r = SubmitArray(std::move(job), actor, options, std::move(fingerprint));
    std::lock_guard lock(mu_);
    uncount();
    return r;
  }
  store::NewJob n;
  n.job = job;
  n.event.at = job.created_at;
  n.event.to = "QUEUED";
  n.event.reason = "submitted";
  n.event.actor = actor;
  if (options.audit) n.audit = *options.audit;
  if (!options.idempotency_key.empty()) {
    n.idempotency_scope = actor;
    n.idempotency_key = options.idempotency_key;
    n.fingerprint = std::move(fingerprint);
  }
  auto stored = store_.SubmitJob(std::move(n));
  if (!stored.ok()) {
    std::lock_guard lock(mu_);
    uncount();
    return stored.status();
  }
  if (stored->existing) {
    // A concurrent submit with the same key won: its job, as it is now.
    {
      std::lock_guard lock(mu_);
      uncount();
      if (const Job* j = FindLocked(stored->job.id)) stored->job = *j;
    }
    return SubmitResult{.job = std::move(stored->job), .replayed = true};
  }
  if (options.audit && stored->audit) *options.audit = *stored->audit;
  Job created = std::move(stored->job);
  bool wake;
  {
    std::lock_guard lock(mu_);
    uncount();
    queued_.insert({JobNumber(created.id), created.id});
    jobs_[created.id] = created;
    // While every GPU is taken a new job cannot start unless it preempts one: don't wake the loop for nothing
    // (it runs again whenever GPUs are released).
    wake = HasFreeCapacityLocked() || PreemptionPossibleLocked();
    wake_ = wake_ || wake;
  }
  if (wake) wake_loop_.notify_one();
  return SubmitResult{.job = std::move(created)};
}

Result<Job> Service::GetJob(const std::string& id) const {
  ASSIGN_OR_RETURN(Job job, LoadJob(id));
  if (!job.spec.array.empty()) RETURN_IF_ERROR(FillArrayTasks(job));
  if (job.state == JobState::kQueued) {
    std::lock_guard lock(mu_);
    DescribeQueuedLocked(job);
  }
  return job;
}

Result<JobPage> Service::ListJobs(const JobListQuery& q) const {
  if (q.limit < 0) return InvalidArgument("limit must not be negative, got " + std::to_string(q.limit));
  store::JobFilter f;
  f.states = q.states;
  f.project = q.project;
  f.user = q.user;
  f.name = q.name;
  f.created_since = q.created_since;
  f.no_array_tasks = q.no_array_tasks;
  if (q.visible) f.projects = std::vector<std::string>(q.visible->begin(), q.visible->end());
  if (!q.cursor.empty()) {
    f.before_num = q.cursor.size() <= 15 ? JobNumber("j-" + q.cursor) : -1;
    if (f.before_num <= 0)
      return InvalidArgument("cursor '" + q.cursor + "' is not one this server gave; list again without it");
  }
  // One more than asked, to know whether another page follows.
  f.limit = q.limit > 0 ? std::min(q.limit, (1 << 30)) + 1 : 0;
  ASSIGN_OR_RETURN(std::vector<Job> jobs, store_.ListJobs(f));
  JobPage page;
  if (q.limit > 0 && jobs.size() > static_cast<size_t>(q.limit)) {
    jobs.resize(static_cast<size_t>(q.limit));
    page.next_cursor = std::to_string(JobNumber(jobs.back().id));
  }
  {
    // Live jobs as memory has them (e.g. why a queued job waits, which is not written to the store).
    std::lock_guard lock(mu_);
    for (auto& j : jobs) {
      auto it = jobs_.find(j.id);
      if (it != jobs_.end() && it->second.state == j.state) j = it->second;
      if (j.state == JobState::kQueued) DescribeQueuedLocked(j);
    }
  }
  page.jobs = std::move(jobs);
  return page;
}

Result<Job> Service::Cancel(const std::string& id, const std::string& actor, api::AuditRecord* audit) {
  auto ended = [&](const Job& j) {
    return FailedPrecondition("job " + id + " already ended (" + std::string(api::JobStateName(j.state)) +
                              "); nothing to cancel");
  };
  if (auto array = CancelArray(id, actor, audit)) return std::move(*array);  // a job array: its tasks
  bool live;
  {
    std::lock_guard lock(mu_);
    live = jobs_.count(id) > 0;
  }
  if (!live) {
    // Ended (in the store) or unknown.
    ASSIGN_OR_RETURN(Job stored, LoadJob(id));
    if (api::IsTerminal(stored.state)) return ended(stored);
    return NotFound("job " + id + " does not exist");
  }
  std::lock_guard mutate(mutate_mu_);
  std::vector<store::JobUpdate> updates;
  Job current;
  bool stop_sent = false;
  {
    std::lock_guard lock(mu_);
    const Job* found = FindLocked(id);
    if (!found) return NotFound("job " + id + " does not exist");
    current = *found;
    if (api::IsTerminal(current.state)) return ended(current);
    if (current.state == JobState::kScheduled) {
      // Not yet handed to the agent(s): drop the start command(s).
      for (const auto& node : JobNodes(current)) {
        auto& cmds = nodes_[node].commands;
        cmds.erase(std::remove_if(cmds.begin(), cmds.end(),
                                  [&](const agent::JobCommand& c) {
                                    return c.kind == agent::JobCommand::Kind::kStart && c.job.id == id;
                                  }),
                   cmds.end());
      }
    }
    if (current.state == JobState::kQueued || current.state == JobState::kScheduled ||
        current.state == JobState::kPreempted) {
      Job after = current;
      after.state = JobState::kCancelled;
      after.finished_at = clock_.NowMillis();
      updates.push_back(Transition(current, after, "cancelled by user", actor));
    } else {
      auto under_way = stops_.find(id);
      // A cancel wins over a preemption or migration under way (SIGTERM at once, and the job is not requeued).
      if (under_way == stops_.end() || under_way->second.kind == StopKind::kPreempt ||
          under_way->second.kind == StopKind::kMigrate) {
        stops_[id] = {StopKind::kCancel, "cancelled by user"};
        QueueStopLocked(current, StopCommandLocked(current, stops_[id]));
        jobs_[id].reason = "cancelling";
        stop_sent = true;
      }
      current = jobs_[id];
    }
  }
  if (!stop_sent && updates.empty()) return current;  // a cancel already under way: nothing changed
  if (updates.empty()) {
    // Only a stop command was queued (the state changes when the process ends). It is made durable
    // before the cancel is acknowledged: a server restart or an agent reconnect sends it again.
    RETURN_IF_ERROR(PersistStop(id, current.attempt, "cancelled by user"));
    if (audit) {
      auto row = store_.AppendAudit(*audit);
      if (row.ok()) *audit = *row;
    }
    return current;
  }
  if (audit) updates.back().audit = *audit;
  RETURN_IF_ERROR(Commit(updates));
  if (audit) {
    // Commit is durable on return: the row is there; its seq is the store's newest (any later row
    // will have a higher one, which is all the caller uses it for).
    audit->seq = std::max<int64_t>(1, store_.Stats().last_audit_seq);
  }
  return GetJob(id);
}

namespace {

// "alice" for "user:alice"; other actors ("sa:…", "health") as they are.
std::string ActorName(const std::string& actor) { return actor.rfind("user:", 0) == 0 ? actor.substr(5) : actor; }

}  // namespace

Result<Job> Service::Migrate(const std::string& id, const std::string& reason, const std::string& actor, bool force,
                             api::AuditRecord* audit) {
  if (reason.size() > 500) return InvalidArgument("the reason must be at most 500 characters");
  if (std::any_of(reason.begin(), reason.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
    return InvalidArgument("the reason must be one line of text (no control characters)");
  bool live;
  {
    std::lock_guard lock(mu_);
    live = jobs_.count(id) > 0;
  }
  if (!live) {
    ASSIGN_OR_RETURN(Job stored, LoadJob(id));
    return FailedPrecondition("job " + id + " has ended (" + std::string(api::JobStateName(stored.state)) +
                              "); only a running job can be migrated");
  }
  std::lock_guard mutate(mutate_mu_);
  Job current;
  std::string why;
  std::vector<std::string> left;
  {
    std::lock_guard lock(mu_);
    const Job* found = FindLocked(id);
    if (!found) return NotFound("job " + id + " does not exist");
    current = *found;
    if (current.state != JobState::kRunning) {
      return FailedPrecondition("job " + id + " is " + std::string(api::JobStateName(current.state)) +
                                ", not RUNNING; only a running job can be migrated");
    }
    if (auto s = stops_.find(id); s != stops_.end()) {
      if (s->second.kind == StopKind::kMigrate) return current;  // a migration already under way: nothing changed
      return FailedPrecondition("job " + id + " is already being stopped (" + s->second.reason + ")");
    }
    if (!current.spec.preemptible && !force) {
      return FailedPrecondition("job " + id + " is not preemptible, so it was not written to save its work when "
                                "stopped; migrate it with --force to stop and requeue it anyway (it gets SIGTERM "
                                "and starts over unless it keeps its own checkpoints)");
    }
    left = current.assigned_gpus;
    std::vector<std::string> nodes = JobNodes(current);
    why = "migrated off GPU" + std::string(left.size() == 1 ? " " : "s ");
    for (size_t i = 0; i < left.size(); ++i) why += (i ? ", " : "") + left[i];
    why += " on ";
    for (size_t i = 0; i < nodes.size(); ++i) why += (i ? ", " : "") + nodes[i];
    why += " by " + ActorName(actor);
    if (!reason.empty()) why += ": " + reason;
  }
  // Durable before it is carried out or acknowledged: a restart of the server or a reconnect of the agent sends it
  // again.
  RETURN_IF_ERROR(PersistStop(id, current.attempt, why, "migrate", left));
  {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.attempt != current.attempt || it->second.state != JobState::kRunning ||
        stops_.count(id)) {
      // It ended or was stopped meanwhile (the record is dropped when it ends).
      return it == jobs_.end() ? current : it->second;
    }
    stops_[id] = {StopKind::kMigrate, why, current.spec.preemptible};
    avoid_gpus_[id] = left;
    const agent::JobCommand cmd = StopCommandLocked(it->second, stops_[id]);
    QueueStopLocked(it->second, cmd);
    it->second.reason = cmd.checkpoint_signal != 0
                            ? "migrating: " + api::CheckpointSignalName(cmd.checkpoint_signal) + " sent, SIGTERM in " +
                                  FormatDuration(it->second.spec.checkpoint_grace_s) + " unless it exits"
                            : "migrating: SIGTERM sent";
    current = it->second;
  }
  commands_cv_.notify_all();
  if (audit) {
    auto row = store_.AppendAudit(*audit);
    if (row.ok()) *audit = *row;
  }
  return current;
}

agent::JobCommand Service::StopCommandLocked(const Job& job, const StopRequest& stop) const {
  agent::JobCommand cmd;
  cmd.kind = agent::JobCommand::Kind::kStop;
  cmd.job_id = job.id;
  cmd.attempt = job.attempt;
  cmd.reason = stop.reason;
  cmd.grace_ms = options_.stop_grace_ms;
  if (stop.checkpoint && job.spec.checkpoint_grace_s > 0) {
    cmd.checkpoint_signal = job.spec.checkpoint_signal;
    cmd.checkpoint_grace_ms = job.spec.checkpoint_grace_s * 1000;
  }
  return cmd;
}

bool Service::PreemptionPossibleLocked() const {
  if (queued_.empty()) return false;
  const UnixMillis now = clock_.NowMillis();
  for (const auto& id : active_) {
    const Job& j = jobs_.at(id);
    if (j.spec.preemptible && j.state == JobState::kRunning && !stops_.count(id) &&
        now - j.started_at >= options_.preempt_min_runtime_ms)
      return true;
  }
  return false;
}

Result<std::vector<api::JobEvent>> Service::Events(const std::string& id) {
  RETURN_IF_ERROR(GetJob(id).status());
  return store_.ListEvents(id);
}

Result<Job> Service::Wait(const std::string& id, int64_t timeout_ms, bool until_running) {
  std::unique_lock lock(mu_);
  auto done = [&] {
    auto it = jobs_.find(id);
    if (it == jobs_.end() || stopping_) return true;
    JobState s = it->second.state;
    return api::IsTerminal(s) || (until_running && s == JobState::kRunning);
  };
  changed_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms)), done);
  if (const Job* j = FindLocked(id)) return *j;
  lock.unlock();
  return LoadJob(id);  // ended a while ago, or unknown
}

void Service::WaitForChange(const std::string& id, int64_t timeout_ms) {
  std::unique_lock lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return;
  JobState s = it->second.state;
  changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    auto i = jobs_.find(id);
    return stopping_ || i == jobs_.end() || i->second.state != s;
  });
}

std::vector<api::Gpu> Service::ListGpus() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::pair<MilliGpu, std::vector<std::string>>> alloc;
  for (const auto& id : active_) {
    const Job& j = jobs_.at(id);
    MilliGpu per = std::min<MilliGpu>(j.spec.gpus_milli, kMilliPerGpu);
    for (const auto& u : j.assigned_gpus) {
      alloc[u].first += per;
      alloc[u].second.push_back(id);
    }
  }
  std::vector<api::Gpu> out;
  for (const auto& [name, ns] : nodes_) {
    for (auto g : ns.gpus) {
      auto it = alloc.find(g.uuid);
      if (it != alloc.end()) {
        g.allocated_milli = it->second.first;
        g.jobs = it->second.second;
        std::sort(g.jobs.begin(), g.jobs.end(),
                  [](const std::string& a, const std::string& b) { return JobNumber(a) < JobNumber(b); });
      }
      if (!ns.node.healthy) g.healthy = false;
      out.push_back(std::move(g));
    }
  }
  return out;
}

std::vector<api::Node> Service::ListNodes() const {
  std::lock_guard lock(mu_);
  std::vector<api::Node> out;
  for (const auto& [name, ns] : nodes_) {
    api::Node n = ns.node;
    n.gpu_count = static_cast<int>(ns.gpus.size());
    out.push_back(std::move(n));
  }
  return out;
}

Result<agent::LogChunk> Service::ReadLog(const std::string& id, int64_t offset, int64_t max_bytes, int rank) {
  ASSIGN_OR_RETURN(agent::LogSource* src, LogSourceOf(id, rank));
  if (!src) return agent::LogChunk{"", offset, true};
  auto chunk = src->ReadLog(id, offset, max_bytes);
  if (!chunk.ok() && chunk.status().code() == ErrorCode::kNotFound) return agent::LogChunk{"", offset, true};
  return chunk;
}

Result<agent::LogTimes> Service::ReadLogTimes(const std::string& id, int64_t first, int64_t max_records, int rank) {
  ASSIGN_OR_RETURN(agent::LogSource* src, LogSourceOf(id, rank));
  if (!src) return agent::LogTimes{};
  auto times = src->ReadLogTimes(id, first, max_records);
  if (!times.ok() && times.status().code() == ErrorCode::kNotFound) return agent::LogTimes{};
  return times;
}

Result<agent::LogSource*> Service::LogSourceOf(const std::string& id, int rank) {
  agent::LogSource* src = nullptr;
  std::optional<Job> stored;  // an ended job no longer in memory
  {
    std::lock_guard lock(mu_);
    if (!FindLocked(id)) stored.emplace();
  }
  if (stored) {
    ASSIGN_OR_RETURN(*stored, LoadJob(id));
  }
  {
    std::lock_guard lock(mu_);
    const Job* found = stored ? &*stored : FindLocked(id);
    if (!found) return NotFound("job " + id + " does not exist");
    const Job& j = *found;
    const size_t ranks = std::max<size_t>(1, j.members.size());
    if (rank < 0 || static_cast<size_t>(rank) >= ranks)
      return InvalidArgument("job " + id + " has " + std::to_string(ranks) + " rank(s) (0-" +
                             std::to_string(ranks - 1) + "), not " + std::to_string(rank));
    const std::string node = j.members.empty() ? j.node : j.members[static_cast<size_t>(rank)].node;
    if (node.empty() || j.attempt == 0) return src;  // never placed: no log yet
    auto n = nodes_.find(node);
    if (n != nodes_.end()) src = n->second.logs;
    if (!src && fallback_logs_) src = fallback_logs_(node);  // also for a node gone or not back yet
    if (!src) return Unavailable("logs of job " + id + " are on node " + node + ", which is not reachable");
  }
  return src;
}

// ---------------------------------------------------------------------------------------------
// Scheduling

sched::ClusterSnapshot Service::SnapshotLocked(bool empty) const {
  sched::ClusterSnapshot snap;
  snap.now = clock_.NowMillis();
  std::unordered_map<std::string, std::pair<size_t, size_t>> where;  // uuid -> (node idx, gpu idx)
  for (const auto& [name, ns] : nodes_) {
    if (!ns.registered) continue;
    sched::NodeView nv;
    nv.name = name;
    nv.labels = ns.node.labels;
    nv.healthy = ns.node.healthy;
    nv.draining = ns.node.draining;
    for (const auto& g : ns.gpus) {
      sched::GpuView gv;
      gv.uuid = g.uuid;
      gv.index = g.index;
      gv.type = g.type;
      gv.memory_mib = g.memory_total_mib;
      gv.free_milli = kMilliPerGpu;
      gv.free_memory_mib = g.memory_total_mib;
      gv.healthy = empty ? true : g.healthy;
      where[g.uuid] = {snap.nodes.size(), nv.gpus.size()};
      nv.gpus.push_back(std::move(gv));
    }
    if (empty) nv.healthy = true, nv.draining = false;
    snap.nodes.push_back(std::move(nv));
  }
  if (empty) return snap;
  snap.reservations = reservations_.Active(snap.now);
  for (const auto& id : active_) {
    const Job& j = jobs_.at(id);
    sched::RunningJob rj;
    rj.job_id = id;
    rj.project = j.spec.project;
    rj.user = j.user;
    rj.priority = j.spec.priority;
    rj.preemptible = j.spec.preemptible;
    // Not running yet (SCHEDULED, STARTING): it has had no time to run, so no preemption before its minimum runtime.
    rj.started_at = j.state == JobState::kRunning && j.started_at > 0 ? j.started_at : snap.now;
    // Service of earlier attempts plus this one's so far (LAS-style policies).
    rj.attained_gpu_ms = j.attained_gpu_ms;
    if (j.state == JobState::kRunning && j.started_at > 0 && snap.now > j.started_at)
      rj.attained_gpu_ms += j.spec.gpus_milli * (snap.now - j.started_at) / 1000;
    rj.runtime_limit_s = j.spec.runtime_limit_s;
    rj.predicted_runtime_s = PredictedRuntimeLocked(j);
    rj.stopping = stops_.count(id) > 0;
    MilliGpu per = std::min<MilliGpu>(j.spec.gpus_milli, kMilliPerGpu);
    for (const auto& u : j.assigned_gpus) {
      auto w = where.find(u);
      if (w == where.end()) continue;
      auto& gv = snap.nodes[w->second.first].gpus[w->second.second];
      MiB mem = per >= kMilliPerGpu ? gv.memory_mib : j.spec.memory_mib;
      gv.free_milli -= per;
      gv.free_memory_mib -= mem;
      rj.shares.push_back({snap.nodes[w->second.first].name, u, per, mem});
    }
    snap.running.push_back(std::move(rj));
  }
  return snap;
}

bool Service::HasFreeCapacityLocked() const {
  std::unordered_map<std::string, MilliGpu> used;
  for (const auto& id : active_) {
    const Job& j = jobs_.at(id);
    for (const auto& u : j.assigned_gpus) used[u] += std::min<MilliGpu>(j.spec.gpus_milli, kMilliPerGpu);
  }
  for (const auto& [name, ns] : nodes_) {
    if (!ns.registered || !ns.node.healthy || ns.node.draining) continue;
    for (const auto& g : ns.gpus) {
      if (!g.healthy) continue;
      auto it = used.find(g.uuid);
      if (it == used.end() || it->second < kMilliPerGpu) return true;
    }
  }
  return false;
}

void Service::ScheduleOnce() {
  std::lock_guard mutate(mutate_mu_);
  sched::ClusterSnapshot snap;
  std::vector<sched::JobRequest> queue;
  std::map<std::string, ProjectSpend> spend;
  std::map<std::string, std::map<std::string, MilliGpu>> held;  // project -> type ("*" = all) -> milli
  std::map<std::string, std::map<std::string, std::string>> secret_env;  // job -> env
  std::unordered_map<std::string, std::vector<std::string>> avoid;      // migrated job -> GPUs it left
  {
    std::lock_guard lock(mu_);
    if (queued_.empty() || stopping_) return;
    // Nothing can start while every GPU is taken, unless a queued job may preempt a running one.
    if (!HasFreeCapacityLocked() && !PreemptionPossibleLocked()) return;
    avoid = avoid_gpus_;
    snap = SnapshotLocked(false);
    queue.reserve(queued_.size());
    if (directory_) {
      UnixMillis now = clock_.NowMillis();
      RollMonthLocked(now);
      spend = SpendByProjectLocked(now);
      for (const auto& id : active_) {
        const Job& j = jobs_.at(id);
        held[j.spec.project]["*"] += j.spec.gpus_milli;
        held[j.spec.project][GpuTypeLocked(j)] += j.spec.gpus_milli;
      }
    }
    const UnixMillis now = clock_.NowMillis();
    for (const auto& [num, id] : queued_) {
      Job& j = jobs_.at(id);
      // Its dependencies have not all ended as asked (ResolveDependenciesOnce sets the reason).
      if ((!j.spec.after.empty() || !j.spec.after_ok.empty()) && !deps_met_.count(id)) continue;
      if (ArrayHeldLocked(j)) continue;  // an array job, or a task beyond its array's limit (ResolveArraysOnce)
      if (auto backoff = retry_after_.find(id); backoff != retry_after_.end()) {
        if (now < backoff->second) {
          j.reason = "waiting: retry after a lost attempt (backoff, or until its node has fenced it), " +
                     std::to_string((backoff->second - now + 999) / 1000) + " s left";
          continue;
        }
        retry_after_.erase(backoff);
      }
      if (directory_) {
        std::string hold = HoldReasonLocked(j, spend, held);
        if (!hold.empty()) {
          j.reason = hold;
          continue;
        }
      }
      queue.push_back(PredictedRequestLocked(j));
    }
  }
  for (auto& r : queue) {
    if (auto a = avoid.find(r.job_id); a != avoid.end()) r.avoid_gpus = a->second;
  }
  const int64_t round_start = clock_.MonotonicNanos();
  sched::Decisions d = scheduler_->Schedule(snap, queue);
  metrics_.schedule_round.Observe(static_cast<double>(clock_.MonotonicNanos() - round_start) / 1e9);
  metrics_.rounds.fetch_add(1, std::memory_order_relaxed);
  std::vector<store::JobUpdate> updates;
  std::vector<agent::JobCommand> starts;
  {
    std::lock_guard lock(mu_);
    NoteRoundOrderLocked(d);
    for (const auto& b : d.binds) {
      auto it = jobs_.find(b.job_id);
      if (it == jobs_.end() || it->second.state != JobState::kQueued || b.nodes.empty()) continue;
      Job after = it->second;
      after.state = JobState::kScheduled;
      after.gpu_usage.clear();  // a new run: its own GPU usage
      after.node = b.nodes[0].node;
      after.assigned_gpus = b.nodes[0].gpu_uuids;
      after.assigned_gpu_indices = b.nodes[0].gpu_indices;
      after.members.clear();
      if (b.nodes.size() > 1) {
        // A gang: every node of the bind is a member (rank = bind order); assigned_gpus is the union.
        after.assigned_gpus.clear();
        for (size_t r = 0; r < b.nodes.size(); ++r) {
          api::JobMember m;
          m.rank = static_cast<int>(r);
          m.node = b.nodes[r].node;
          m.gpu_uuids = b.nodes[r].gpu_uuids;
          m.gpu_indices = b.nodes[r].gpu_indices;
          after.assigned_gpus.insert(after.assigned_gpus.end(), m.gpu_uuids.begin(), m.gpu_uuids.end());
          after.members.push_back(std::move(m));
        }
      }
      after.attempt += 1;
      after.exit_code.reset();
      after.signal.reset();
      after.pid = 0;
      if (directory_) {
        // Quotas by type are known only once placed: re-check with the GPU type it got.
        std::string type = GpuTypeLocked(after);
        Job typed = it->second;
        typed.spec.gpu_type = type;
        std::string hold = HoldReasonLocked(typed, spend, held);
        if (!hold.empty()) {
          it->second.reason = hold;
          continue;
        }
        held[after.spec.project]["*"] += after.spec.gpus_milli;
        held[after.spec.project][type] += after.spec.gpus_milli;
        if (!after.spec.secrets.empty()) {
          auto env = directory_->SecretEnv(after.spec.project, after.spec.secrets);
          if (!env.ok()) {
            Job failed = it->second;
            failed.state = JobState::kFailed;
            failed.finished_at = clock_.NowMillis();
            updates.push_back(Transition(it->second, failed, "cannot start: " + env.status().message(), "scheduler"));
            updates.back().expected_state = JobState::kQueued;
            continue;
          }
          secret_env[after.id] = std::move(env).value();
        }
      }
      std::string why = "placed on " + after.node;
      for (size_t r = 1; r < after.members.size(); ++r) why += ", " + after.members[r].node;
      if (!after.members.empty()) why += " (" + std::to_string(after.members.size()) + " nodes)";
      updates.push_back(Transition(it->second, after, why, "scheduler"));
      updates.back().expected_state = JobState::kQueued;
    }
    for (const auto& p : d.pending) {
      auto it = jobs_.find(p.job_id);
      if (it != jobs_.end()) it->second.reason = p.reason;
    }
  }
  Status st = Commit(updates);
  if (!st.ok()) return;
  std::lock_guard lock(mu_);
  for (const auto& u : updates) {
    if (u.job.state != JobState::kScheduled) continue;
    agent::JobCommand cmd;
    cmd.kind = agent::JobCommand::Kind::kStart;
    cmd.job = u.job;
    if (directory_) {
      if (auto rules = directory_->Rules(u.job.spec.project)) {
        cmd.run_as_uid = rules->run_as_uid;
        cmd.run_as_user = rules->run_as_user;
        cmd.allow_root = rules->allow_root;
      }
      if (auto env = secret_env.find(u.job.id); env != secret_env.end()) cmd.secret_env = std::move(env->second);
    }
    QueueStartsLocked(u.job, cmd);
  }
  // Preemptions: ask the victims to stop; their resources free when they exit.
  // A preemptible job is never a victim otherwise (the scheduler's rule; checked again here): it gets its
  // checkpoint signal, its grace, then SIGTERM and SIGKILL (the agent times them), and is requeued when it ends.
  for (const auto& p : d.preemptions) {
    auto it = jobs_.find(p.job_id);
    if (it == jobs_.end() || !HoldsResources(it->second.state) || stops_.count(p.job_id) ||
        !it->second.spec.preemptible)
      continue;
    stops_[p.job_id] = {StopKind::kPreempt, p.reason, true};
    const agent::JobCommand cmd = StopCommandLocked(it->second, stops_[p.job_id]);
    QueueStopLocked(it->second, cmd);
    it->second.reason = cmd.checkpoint_signal != 0
                            ? "preempting: " + api::CheckpointSignalName(cmd.checkpoint_signal) + " sent, SIGTERM in " +
                                  FormatDuration(it->second.spec.checkpoint_grace_s) + " unless it exits (" + p.reason + ")"
                            : "preempting: SIGTERM sent (" + p.reason + ")";
  }
  commands_cv_.notify_all();
}

void Service::EnforceLimitsLocked(std::vector<std::pair<std::string, agent::JobCommand>>& stops) {
  UnixMillis now = clock_.NowMillis();
  for (const auto& id : active_) {
    const Job& j = jobs_.at(id);
    if (j.state != JobState::kRunning || j.spec.runtime_limit_s <= 0 || stops_.count(id)) continue;
    if (now < j.started_at + j.spec.runtime_limit_s * 1000) continue;
    std::string reason = "runtime limit";
    stops_[id] = {StopKind::kRuntimeLimit, reason};
    agent::JobCommand cmd;
    cmd.kind = agent::JobCommand::Kind::kStop;
    cmd.job_id = id;
    cmd.attempt = j.attempt;
    cmd.reason = reason + " (" + FormatDuration(j.spec.runtime_limit_s) + ") reached";
    cmd.grace_ms = options_.stop_grace_ms;
    for (const auto& node : JobNodes(j)) stops.push_back({node, cmd});
  }
}

void Service::EnforceOnce() {
  std::lock_guard lock(mu_);
  EnforceOnceLocked();
}

void Service::EnforceOnceLocked() {
  std::vector<std::pair<std::string, agent::JobCommand>> stops;
  EnforceLimitsLocked(stops);
  EnforceBudgetsLocked(stops);
  for (auto& [node, cmd] : stops) QueueCommandLocked(node, std::move(cmd));
}

void Service::Loop() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      wake_loop_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms), [&] { return wake_ || stopping_; });
      if (stopping_) return;
      wake_ = false;
      EnforceOnceLocked();
    }
    CheckNodesOnce();
    exec_.Sweep();
    ResolveDependenciesOnce();
    ResolveArraysOnce();
    ScheduleOnce();
    bool estimate;
    {
      std::lock_guard lock(mu_);
      estimate = clock_.NowMillis() - estimated_at_ >= kEstimateEveryMs;
    }
    if (estimate) EstimateStartsOnce();
  }
}

// ---------------------------------------------------------------------------------------------
// Dependencies (--after / --after-ok)

void Service::ResolveDependenciesOnce() {
  std::lock_guard mutate(mutate_mu_);
  struct Waiting {
    std::string id;
    std::vector<std::pair<std::string, bool>> deps;  // (dependency, must succeed)
  };
  std::vector<Waiting> waiting;
  std::map<std::string, JobState> state;  // dependency -> its state (as far as known here)
  std::set<std::string> unknown;          // ended long ago: read from the store
  {
    std::lock_guard lock(mu_);
    for (const auto& [num, id] : queued_) {
      const Job& j = jobs_.at(id);
      if ((j.spec.after.empty() && j.spec.after_ok.empty()) || deps_met_.count(id)) continue;
      Waiting w{id, {}};
      for (const auto& d : j.spec.after) w.deps.emplace_back(d, false);
      for (const auto& d : j.spec.after_ok) w.deps.emplace_back(d, true);
      for (const auto& [d, ok] : w.deps) {
        if (const Job* f = FindLocked(d)) {
          state[d] = f->state;
        } else {
          unknown.insert(d);
        }
      }
      waiting.push_back(std::move(w));
    }
  }
  if (waiting.empty()) return;
  std::set<std::string> missing;
  for (const auto& d : unknown) {
    auto j = store_.GetJob(d);
    if (j.ok()) {
      state[d] = j->state;
    } else if (j.status().code() == ErrorCode::kNotFound) {
      missing.insert(d);
    } else {
      return;  // the store is unavailable: next tick
    }
  }
  std::vector<store::JobUpdate> updates;
  {
    std::lock_guard lock(mu_);
    for (const auto& w : waiting) {
      auto it = jobs_.find(w.id);
      if (it == jobs_.end() || it->second.state != JobState::kQueued) continue;
      Job& j = it->second;
      std::string blocked, failed;
      for (const auto& [d, must_succeed] : w.deps) {
        if (missing.count(d)) {
          failed = "dependency " + d + " does not exist";
          break;
        }
        const JobState st = state.at(d);
        if (!api::IsTerminal(st)) {
          if (blocked.empty()) blocked = "waiting for " + d + " (" + std::string(api::JobStateName(st)) + ")";
          continue;
        }
        if (must_succeed && st != JobState::kSucceeded) {
          failed = "dependency " + d + " ended " + std::string(api::JobStateName(st)) + " (--after-ok)";
          break;
        }
      }
      if (!failed.empty()) {
        Job after = j;
        after.state = JobState::kCancelled;
        after.finished_at = clock_.NowMillis();
        updates.push_back(Transition(j, after, "cancelled: " + failed, "server"));
      } else if (!blocked.empty()) {
        j.reason = blocked;
      } else {
        deps_met_.insert(w.id);
        wake_ = true;
      }
    }
  }
  if (!updates.empty()) (void)Commit(updates);  // tried again at the next tick if it fails
}

// ---------------------------------------------------------------------------------------------
// Agent protocol

void Service::QueueCommandLocked(const std::string& node, agent::JobCommand cmd) {
  cmd.id = next_command_id_++;
  nodes_[node].commands.push_back(std::move(cmd));
  commands_cv_.notify_all();
  std::lock_guard lock(listener_mu_);
  if (command_listener_) command_listener_(node);
}

void Service::SetCommandListener(std::function<void(const std::string& node)> listener) {
  std::lock_guard lock(listener_mu_);
  command_listener_ = std::move(listener);
}

Status Service::MarkSentLocked(const std::string& node, std::vector<agent::JobCommand>& cmds,
                               std::vector<store::JobUpdate>& updates) {
  std::lock_guard lock(mu_);
  // A start for a job that ended, was requeued or moved meanwhile is dropped (cancel removes those already).
  std::erase_if(cmds, [&](const agent::JobCommand& c) {
    if (c.kind != agent::JobCommand::Kind::kStart) return false;
    auto it = jobs_.find(c.job.id);
    return it == jobs_.end() || it->second.attempt != c.job.attempt || !JobOnNode(it->second, node) ||
           !HoldsResources(it->second.state);
  });
  for (auto& c : cmds) {
    if (c.kind != agent::JobCommand::Kind::kStart) continue;
    const Job& cur = jobs_.at(c.job.id);
    if (cur.state != JobState::kScheduled) {
      c.job = MemberView(cur, c.rank);  // sent again (not acknowledged), or another member's node: as it is now
      continue;
    }
    Job after = cur;
    after.state = JobState::kStarting;
    updates.push_back(Transition(cur, after, "sent to node " + node, "server"));
    c.job = MemberView(updates.back().job, c.rank);
  }
  return Status::Ok();
}

Result<std::vector<agent::JobCommand>> Service::WaitCommands(const std::string& node,
                                                             std::chrono::milliseconds timeout) {
  {
    std::unique_lock lock(mu_);
    auto it = nodes_.find(node);
    if (it == nodes_.end() || !it->second.registered)
      return FailedPrecondition("node " + node + " is not registered");
    commands_cv_.wait_for(lock, timeout, [&] { return stopping_ || !nodes_[node].commands.empty(); });
    if (stopping_) return Unavailable("server is shutting down");
    if (nodes_[node].commands.empty()) return std::vector<agent::JobCommand>{};
  }
  std::lock_guard mutate(mutate_mu_);
  std::vector<agent::JobCommand> cmds;
  std::vector<store::JobUpdate> updates;
  {
    std::lock_guard lock(mu_);
    auto& q = nodes_[node].commands;
    cmds.assign(std::make_move_iterator(q.begin()), std::make_move_iterator(q.end()));
    q.clear();
  }
  RETURN_IF_ERROR(MarkSentLocked(node, cmds, updates));
  Status st = Commit(updates);
  if (!st.ok()) {
    // Put them back; the agent will ask again.
    std::lock_guard lock(mu_);
    auto& q = nodes_[node].commands;
    for (auto it = cmds.rbegin(); it != cmds.rend(); ++it) q.push_front(std::move(*it));
    return st;
  }
  return cmds;
}

Status Service::AckCommands(const std::string& node, uint64_t through_id) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return Status::Ok();
  auto& un = it->second.unacked;
  std::erase_if(un, [&](const agent::JobCommand& c) { return c.id <= through_id; });
  return Status::Ok();
}

Result<std::vector<agent::JobCommand>> Service::PollCommands(const std::string& node, uint64_t ack,
                                                             bool secure_channel) {
  RETURN_IF_ERROR(AckCommands(node, ack));
  std::lock_guard mutate(mutate_mu_);
  std::vector<agent::JobCommand> fresh;
  std::vector<agent::JobCommand> again;
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node);
    if (it == nodes_.end() || !it->second.registered) return NotFound("node " + node + " is not registered");
    if (stopping_) return Unavailable("server is shutting down");
    auto& ns = it->second;
    if (ns.commands.empty() && ns.unacked.empty()) return std::vector<agent::JobCommand>{};
    again.assign(ns.unacked.begin(), ns.unacked.end());
    fresh.assign(std::make_move_iterator(ns.commands.begin()), std::make_move_iterator(ns.commands.end()));
    ns.commands.clear();
  }
  std::vector<store::JobUpdate> updates;
  std::vector<agent::JobCommand> cmds = std::move(again);
  cmds.insert(cmds.end(), std::make_move_iterator(fresh.begin()), std::make_move_iterator(fresh.end()));
  RETURN_IF_ERROR(MarkSentLocked(node, cmds, updates));
  if (!secure_channel) {
    // Secrets travel only over TLS: such a start is not sent; its job fails saying why.
    std::lock_guard lock(mu_);
    for (auto& c : cmds) {
      if (c.kind != agent::JobCommand::Kind::kStart || c.secret_env.empty()) continue;
      auto u = std::find_if(updates.begin(), updates.end(), [&](const store::JobUpdate& x) { return x.job.id == c.job.id; });
      const Job before = u != updates.end() ? u->job : c.job;
      Job failed = before;
      failed.state = JobState::kFailed;
      failed.finished_at = clock_.NowMillis();
      updates.push_back(Transition(before, failed,
                                   "not started: the job needs secrets and node " + node +
                                       " talks to the server over plain HTTP (secrets travel only over TLS: serve "
                                       "with --tls-cert/--tls-key and join the node with an https:// URL)",
                                   "server"));
      c.secret_env.clear();
      c.kind = agent::JobCommand::Kind::kStop;  // dropped below
      c.job_id.clear();
    }
    std::erase_if(cmds, [](const agent::JobCommand& c) { return c.kind == agent::JobCommand::Kind::kStop && c.job_id.empty(); });
  }
  Status st = Commit(updates);
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return NotFound("node " + node + " is not registered");
  if (!st.ok()) {
    // Nothing was sent: the fresh ones wait in the queue again (before anything queued since).
    auto& q = it->second.commands;
    for (auto c = cmds.rbegin(); c != cmds.rend(); ++c) {
      bool was_unacked = std::any_of(it->second.unacked.begin(), it->second.unacked.end(),
                                     [&](const agent::JobCommand& u) { return u.id == c->id; });
      if (!was_unacked) q.push_front(std::move(*c));
    }
    return st;
  }
  // What goes out now waits for its acknowledgement (sent again with the next poll until then).
  auto& un = it->second.unacked;
  un.clear();
  for (const auto& c : cmds) un.push_back(c);
  return cmds;
}

void Service::QueueStopLocked(const Job& job, const agent::JobCommand& cmd) {
  if (job.members.empty()) {
    QueueCommandLocked(job.node, cmd);
    return;
  }
  for (const auto& m : job.members) {
    if (m.ended) continue;  // nothing runs there any more
    auto n = nodes_.find(m.node);
    if (n == nodes_.end() || !n->second.registered) continue;  // it stops what it runs when it registers
    QueueCommandLocked(m.node, cmd);
  }
}

void Service::QueueStartsLocked(const Job& job, const agent::JobCommand& base) {
  if (job.members.empty()) {
    if (job.spec.processes == api::ProcessLayout::kPerGpu) {
      // One process per GPU on one node: its processes meet on this node, at the port a multi-node job's would use.
      agent::JobCommand cmd = base;
      cmd.master_addr = "127.0.0.1";
      cmd.master_port = GangMasterPort(job.id, job.attempt);
      QueueCommandLocked(job.node, std::move(cmd));
      return;
    }
    QueueCommandLocked(job.node, base);
    return;
  }
  // MASTER_ADDR: rank 0's node as the others reach it: the address its agent connects to the server from
  // (fleet mode), else the address it registered (its host name), else loopback (an in-process agent).
  std::string master = "127.0.0.1";
  if (auto n = nodes_.find(job.members[0].node); n != nodes_.end()) {
    if (!n->second.peer_address.empty()) {
      master = n->second.peer_address;
    } else if (!n->second.node.address.empty()) {
      master = n->second.node.address;
    }
  }
  for (const auto& m : job.members) {
    agent::JobCommand cmd = base;
    cmd.job = MemberView(job, m.rank);
    cmd.rank = m.rank;
    cmd.master_addr = master;
    cmd.master_port = GangMasterPort(job.id, job.attempt);
    QueueCommandLocked(m.node, std::move(cmd));
  }
}

void Service::RefreshCapacityLocked() {
  capacity_ = SnapshotLocked(/*empty=*/true);
  any_gpu_ = false;
  gang_width_.clear();
  for (const auto& n : capacity_.nodes) {
    any_gpu_ |= !n.gpus.empty();
    std::map<std::string, int> per_type;
    for (const auto& g : n.gpus) ++per_type[g.type];
    for (const auto& [type, count] : per_type) {
      gang_width_[type] = std::max(gang_width_[type], count);
      gang_width_[""] = std::max(gang_width_[""], count);
    }
  }
}

bool Service::GangReportLocked(const Job& j, const agent::JobReport& r, std::vector<store::JobUpdate>& updates) {
  size_t idx = j.members.size();
  for (size_t i = 0; i < j.members.size(); ++i)
    if (j.members[i].node == r.node) idx = i;
  if (idx == j.members.size()) return false;
  if (r.rank != 0 && r.rank != j.members[idx].rank) return false;  // not the member that runs there
  Job after = j;
  api::JobMember& m = after.members[idx];
  const std::string who = "rank " + std::to_string(m.rank) + " on " + m.node;
  const std::string actor = "agent:" + r.node;
  const size_t total = after.members.size();
  auto count = [&](auto pred) {
    return static_cast<size_t>(std::count_if(after.members.begin(), after.members.end(), pred));
  };
  if (r.kind == agent::JobReport::Kind::kStarted) {
    if (m.started || m.ended) return false;
    m.started = true;
    m.pid = r.pid;
    const size_t up = count([](const api::JobMember& x) { return x.started || x.ended; });
    std::string reason = who + ": process " + std::to_string(r.pid) + " started";
    if (up == total && j.state != JobState::kRunning) {
      after.state = JobState::kRunning;
      after.started_at = clock_.NowMillis();
      after.pid = after.members[0].pid;
      reason += "; all " + std::to_string(total) + " nodes started";
    } else if (up < total) {
      reason += "; waiting for " + std::to_string(total - up) + " more";
    }
    updates.push_back(Transition(j, after, reason, actor));
    return true;
  }
  if (m.ended) return false;
  m.ended = true;
  m.pid = 0;
  m.exit_code = r.exit_code;
  m.signal = r.signal;
  const bool lost = r.kind == agent::JobReport::Kind::kLost;
  const bool ok = !lost && r.exit_code && *r.exit_code == 0 && !r.signal;
  if (lost) {
    m.reason = r.reason.empty() ? "process lost" : r.reason;
  } else if (r.signal) {
    m.reason = "killed by " + SignalName(*r.signal);
  } else if (r.exit_code && *r.exit_code != 0) {
    m.reason = "exit code " + std::to_string(*r.exit_code);
    if (!r.reason.empty()) m.reason += ": " + r.reason;
  } else if (!ok) {
    m.reason = r.reason.empty() ? "failed" : r.reason;
  }
  std::string reason = who + ": " + (ok ? std::string("exit code 0") : m.reason);
  if (!ok && !stops_.count(j.id)) {
    // The first member to fail decides the job's end; the others are stopped.
    stops_[j.id] = {lost ? StopKind::kMemberLost : StopKind::kMemberFailed, reason};
    agent::JobCommand cmd;
    cmd.kind = agent::JobCommand::Kind::kStop;
    cmd.job_id = j.id;
    cmd.attempt = j.attempt;
    cmd.reason = "stopped: " + reason;
    cmd.grace_ms = options_.stop_grace_ms;
    QueueStopLocked(after, cmd);
    if (!lost) {
      after.exit_code = r.exit_code;
      after.signal = r.signal;
    }
  }
  const size_t ended = count([](const api::JobMember& x) { return x.ended; });
  if (ended < total) {
    reason += "; waiting for " + std::to_string(total - ended) + " more to end";
    updates.push_back(Transition(j, after, reason, actor));
    return true;
  }
  // All members have ended: the job ends as the stop (cancel, limit, a failed member...) or the exits say.
  agent::JobReport last = r;
  auto stop = stops_.find(j.id);
  if (stop != stops_.end() && stop->second.kind == StopKind::kMemberNeverStarted && j.state != JobState::kRunning) {
    // The gang never ran as a whole: back to the queue, without counting against its retries. The attempt number
    // is given back only when no member started: a node that ran a member keeps that attempt as done (a start of
    // the same number would be taken for a duplicate there). The member's end is recorded first, so that the
    // requeue stops nothing more.
    const bool any_started =
        std::any_of(j.members.begin(), j.members.end(), [](const api::JobMember& x) { return x.started; });
    updates.push_back(Transition(j, after, reason, actor));
    Job again = updates.back().job;
    again.state = JobState::kQueued;
    ClearPlacement(again);
    if (!any_started) again.attempt = std::max(0, j.attempt - 1);
    again.finished_at = 0;
    again.started_at = 0;
    updates.push_back(Transition(updates.back().job, again, "requeued: " + stop->second.reason, "server"));
    return true;
  }
  if (stop != stops_.end() && stop->second.kind == StopKind::kMemberLost) {
    last.kind = agent::JobReport::Kind::kLost;
    last.reason = stop->second.reason;
  } else {
    last.kind = agent::JobReport::Kind::kExited;
    last.exit_code = after.exit_code ? after.exit_code : std::optional<int>(0);
    last.signal = after.signal;
    last.reason.clear();
    if (stop == stops_.end()) {
      last.exit_code = 0;
      last.signal.reset();
    }
  }
  last.finished_at_ms = 0;
  Job final_state = FinalStateFor(after, last, updates);
  (void)final_state;
  if (!updates.empty() && stop == stops_.end() && updates.back().job.state == JobState::kSucceeded) {
    updates.back().event.reason = "exit code 0 on all " + std::to_string(total) + " nodes";
    updates.back().job.reason = updates.back().event.reason;
  }
  return true;
}

int64_t RetryBackoffMs(int attempt) {
  return std::min<int64_t>(60'000, int64_t{1000} << std::clamp(attempt - 1, 0, 6));
}

Job Service::FinalStateFor(const Job& job, const agent::JobReport& r, std::vector<store::JobUpdate>& updates) {
  UnixMillis now = clock_.NowMillis();
  UnixMillis not_before = 0;
  if (auto f = fence_until_.find(job.id); f != fence_until_.end()) {
    not_before = f->second;
    fence_until_.erase(f);
  }
  Job after = job;
  after.finished_at = now;
  // An exit found after a restart happened earlier than now: end the run (and its billing) then.
  if (r.kind != agent::JobReport::Kind::kStarted && r.finished_at_ms > 0 && job.started_at > 0)
    after.finished_at = std::clamp(r.finished_at_ms, job.started_at, now);
  after.exit_code = r.exit_code;
  after.signal = r.signal;
  after.pid = 0;
  std::string reason;
  auto stop = stops_.find(job.id);
  std::string actor = "agent:" + r.node;
  if (r.kind == agent::JobReport::Kind::kLost) {
    after.state = JobState::kLost;
    reason = r.reason.empty() ? "process lost" : r.reason;
  } else if (stop != stops_.end() && stop->second.kind == StopKind::kCancel) {
    after.state = JobState::kCancelled;
    reason = stop->second.reason;
  } else if (stop != stops_.end() && stop->second.kind == StopKind::kRuntimeLimit) {
    after.state = JobState::kFailed;
    reason = "runtime limit";
  } else if (stop != stops_.end() && stop->second.kind == StopKind::kBudget) {
    after.state = JobState::kCancelled;
    reason = stop->second.reason;
  } else if (stop != stops_.end() &&
             (stop->second.kind == StopKind::kPreempt || stop->second.kind == StopKind::kMigrate)) {
    // Also when it exited 0 within its checkpoint grace: it was asked to stop, so it runs again (as Slurm requeues
    // a preempted job); a job whose work was done should say so in its checkpoint and exit at once when resumed.
    after.state = JobState::kPreempted;
    reason = stop->second.reason;
  } else if (stop != stops_.end() && stop->second.kind == StopKind::kMemberFailed) {
    after.state = JobState::kFailed;
    reason = stop->second.reason;
  } else if (r.exit_code && *r.exit_code == 0) {
    after.state = JobState::kSucceeded;
    reason = "exit code 0";
  } else {
    after.state = JobState::kFailed;
    if (r.signal) {
      reason = "killed by " + SignalName(*r.signal);
    } else if (r.exit_code) {
      reason = "exit code " + std::to_string(*r.exit_code);
      if (!r.reason.empty()) reason += ": " + r.reason;
    } else {
      reason = r.reason.empty() ? "failed" : r.reason;
    }
  }
  const bool requeue = after.state == JobState::kPreempted ||
                       (after.state == JobState::kLost && job.attempt <= job.spec.max_retries);
  // The service this attempt received counts when the job competes again (LAS-style policies); kept in the store.
  if (requeue && job.started_at > 0 && after.finished_at > job.started_at)
    after.attained_gpu_ms += job.spec.gpus_milli * (after.finished_at - job.started_at) / 1000;
  updates.push_back(Transition(job, after, reason, actor));
  Job last = updates.back().job;
  if (requeue) {
    Job again = last;
    again.state = JobState::kQueued;
    ClearPlacement(again);
    again.finished_at = 0;
    again.started_at = 0;
    std::string why = stop != stops_.end() && stop->second.kind == StopKind::kMigrate ? "requeued after migration"
                                                                                       : "requeued after preemption";
    if (after.state == JobState::kLost) {
      // Backoff before the retry: 1 s, 2 s, 4 s ... at most 60 s, so that a job that takes its node down
      // (or a flapping node) does not spin through its retries.
      const int64_t backoff_ms = RetryBackoffMs(job.attempt);
      retry_after_[job.id] = std::max(now + backoff_ms, not_before);
      why = "requeued after loss (retry " + std::to_string(job.attempt) + " of " +
            std::to_string(job.spec.max_retries) + ", not before " +
            std::to_string((retry_after_[job.id] - now + 999) / 1000) + " s";
      if (not_before > now + backoff_ms) why += ": the time its node takes to stop it by itself (fencing)";
      why += ")";
    }
    updates.push_back(Transition(last, again, why, "server"));
    last = updates.back().job;
  }
  return last;
}

Status Service::ReportJob(const agent::JobReport& r) {
  bool live;
  {
    std::lock_guard lock(mu_);
    live = jobs_.count(r.job_id) > 0;
  }
  if (!live) return LoadJob(r.job_id).status();  // ended (a stale report: ignored) or unknown
  return ReportJobs({r});
}

Status Service::ReportJobs(const std::vector<agent::JobReport>& reports) {
  std::lock_guard mutate(mutate_mu_);
  std::vector<store::JobUpdate> updates;
  {
    std::lock_guard lock(mu_);
    std::unordered_map<std::string, Job> batch;  // jobs as the earlier reports of this batch left them
    for (const auto& r : reports) {
      const Job* cur = nullptr;
      if (auto b = batch.find(r.job_id); b != batch.end()) {
        cur = &b->second;
      } else if (auto it = jobs_.find(r.job_id); it != jobs_.end()) {
        cur = &it->second;
      }
      // Unknown or ended (a stale report), an older attempt, or a job no longer on that node: ignore.
      if (cur == nullptr || cur->attempt != r.attempt || !JobOnNode(*cur, r.node) || !HoldsResources(cur->state)) continue;
      const Job j = *cur;
      if (!j.members.empty()) {
        if (GangReportLocked(j, r, updates)) batch[r.job_id] = updates.back().job;
        continue;
      }
      if (r.kind == agent::JobReport::Kind::kStarted) {
        if (j.state == JobState::kRunning) continue;
        Job after = j;
        after.state = JobState::kRunning;
        after.started_at = clock_.NowMillis();
        after.pid = r.pid;
        updates.push_back(Transition(j, after, "process " + std::to_string(r.pid) + " started", "agent:" + r.node));
      } else {
        FinalStateFor(j, r, updates);
      }
      batch[r.job_id] = updates.back().job;
    }
  }
  return Commit(updates);
}

Status Service::RegisterNode(const agent::NodeRegistration& reg) {
  if (reg.node.name.empty()) return InvalidArgument("node name is empty");
  bool known;
  {
    std::lock_guard lock(mu_);
    known = nodes_.count(reg.node.name) > 0;
  }
  // A node that was removed and joins again starts afresh (not removed, not cordoned).
  if (!known) RETURN_IF_ERROR(PersistNodeState(reg.node.name, false, false, false));
  RETURN_IF_ERROR(store_.UpsertNode(reg.node, reg.gpus));
  // Jobs that ended while nobody was watching.
  for (const auto& r : reg.recovered) {
    Status st = ReportJob(r);
    if (!st.ok() && st.code() != ErrorCode::kNotFound) return st;
  }
  std::lock_guard mutate(mutate_mu_);
  std::vector<store::JobUpdate> updates;
  {
    std::lock_guard lock(mu_);
    NodeState& ns = nodes_[reg.node.name];
    ns.node = reg.node;
    ns.node.draining = ns.cordoned;
    ns.node.healthy = true;
    ns.node.last_heartbeat = clock_.NowMillis();
    ns.node.gpu_count = static_cast<int>(reg.gpus.size());
    ns.gpus = reg.gpus;
    for (auto& g : ns.gpus) g.node = reg.node.name;
    ns.registered = true;
    ns.awaited = false;
    ns.commands.clear();
    ns.unacked.clear();
    std::set<std::string> alive(reg.running_job_ids.begin(), reg.running_job_ids.end());
    std::vector<std::string> readopted;
    for (const auto& id : active_) {
      const Job& j = jobs_.at(id);
      if (!JobOnNode(j, reg.node.name)) continue;
      if (!j.members.empty()) {
        const api::JobMember* m = MemberOn(j, reg.node.name);
        if (m->ended) continue;  // this member's end is recorded; the job waits for the others
        if (alive.count(id)) {
          // The member runs: recorded as started (the job is RUNNING once all have).
          agent::JobReport started;
          started.kind = agent::JobReport::Kind::kStarted;
          started.job_id = id;
          started.node = reg.node.name;
          started.attempt = j.attempt;
          started.rank = m->rank;
          if (!m->started) GangReportLocked(j, started, updates);
          readopted.push_back(id);
          continue;
        }
        if (j.state == JobState::kScheduled) {
          // Never sent to any member: back to the queue, the attempt given back.
          Job after = j;
          after.state = JobState::kQueued;
          ClearPlacement(after);
          after.attempt = std::max(0, j.attempt - 1);
          updates.push_back(Transition(j, after, "requeued after restart: it had not started", "server"));
          continue;
        }
        if (j.state == JobState::kStarting && !m->started) {
          // Sent, but this member never started here (the registration names every attempt the node started):
          // the gang never ran as a whole. Its other members are stopped, then it goes back to the queue without
          // counting the attempt (see GangReportLocked).
          const std::string why = "rank " + std::to_string(m->rank) + " on " + reg.node.name +
                                  " never started (the node restarted)";
          if (!stops_.count(id)) {
            stops_[id] = {StopKind::kMemberNeverStarted, why};
            agent::JobCommand cmd;
            cmd.kind = agent::JobCommand::Kind::kStop;
            cmd.job_id = id;
            cmd.attempt = j.attempt;
            cmd.reason = "stopped: " + why;
            cmd.grace_ms = options_.stop_grace_ms;
            Job others = j;  // nothing to stop on this node
            for (auto& x : others.members) x.ended = x.ended || x.node == reg.node.name;
            QueueStopLocked(others, cmd);
          }
          agent::JobReport never;
          never.kind = agent::JobReport::Kind::kLost;
          never.job_id = id;
          never.node = reg.node.name;
          never.attempt = j.attempt;
          never.rank = m->rank;
          never.reason = why;
          GangReportLocked(j, never, updates);
          continue;
        }
        // Sent, and this member is neither running nor ended here: the whole gang is lost (the other members
        // are stopped when the change is committed).
        agent::JobReport lost;
        lost.kind = agent::JobReport::Kind::kLost;
        lost.job_id = id;
        lost.node = reg.node.name;
        lost.attempt = j.attempt;
        lost.reason = "rank " + std::to_string(m->rank) + " on " + reg.node.name +
                      ": process not found after the node restarted";
        FinalStateFor(j, lost, updates);
        continue;
      }
      if (alive.count(id)) {
        Job after = j;
        after.state = JobState::kRunning;
        if (!after.started_at) after.started_at = clock_.NowMillis();
        updates.push_back(Transition(j, after, "re-adopted after restart: process still running",
                                     "agent:" + reg.node.name));
        readopted.push_back(id);
      } else if (j.state == JobState::kScheduled || j.state == JobState::kStarting) {
        // The node reports every attempt it started and has not reported yet as running or recovered
        // (see NodeRegistration): this one never started there. Back to the queue, and the attempt it
        // was given is not counted (`attempt` counts starts).
        Job after = j;
        after.state = JobState::kQueued;
        ClearPlacement(after);
        after.attempt = std::max(0, j.attempt - 1);
        updates.push_back(Transition(j, after,
                                     j.state == JobState::kScheduled
                                         ? "requeued after restart: it had not started"
                                         : "requeued after restart: node " + reg.node.name + " never started it",
                                     "server"));
      } else {
        agent::JobReport lost;
        lost.kind = agent::JobReport::Kind::kLost;
        lost.job_id = id;
        lost.node = reg.node.name;
        lost.attempt = j.attempt;
        lost.reason = "process not found after the node restarted";
        FinalStateFor(j, lost, updates);
      }
    }
    // Stops of jobs that ended (or went back to the queue) here are done with; a gang still waiting for its
    // other members to stop keeps its stop.
    for (const auto& u : updates)
      if (std::find(readopted.begin(), readopted.end(), u.job.id) == readopted.end() && !HoldsResources(u.job.state))
        stops_.erase(u.job.id);
    // Fencing: what the node still runs that the server gave up on (the node was declared down and the attempt
    // ended LOST, was requeued or runs elsewhere) is stopped before the node gets anything new.
    for (const auto& id : alive) {
      auto it = jobs_.find(id);
      if (it != jobs_.end() && JobOnNode(it->second, reg.node.name) && HoldsResources(it->second.state)) continue;
      agent::JobCommand cmd;
      cmd.kind = agent::JobCommand::Kind::kStop;
      cmd.job_id = id;
      cmd.attempt = 0;  // whichever attempt it runs: none of them is wanted there any more
      cmd.reason = "stopped: this attempt was given up while node " + reg.node.name + " was unreachable";
      cmd.grace_ms = options_.stop_grace_ms;
      QueueCommandLocked(reg.node.name, std::move(cmd));
    }
    // A stop asked for before the restart (or the reconnect) is sent again: none is lost.
    for (const auto& id : readopted) {
      auto stop = stops_.find(id);
      if (stop == stops_.end()) continue;
      QueueCommandLocked(reg.node.name, StopCommandLocked(jobs_.at(id), stop->second));
    }
    RefreshCapacityLocked();
  }
  RETURN_IF_ERROR(Commit(updates));
  wake_loop_.notify_all();
  return Status::Ok();
}

Status Service::Heartbeat(const agent::NodeHeartbeat& hb) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(hb.node);
  if (it == nodes_.end() || !it->second.registered) return NotFound("node " + hb.node + " is not registered");
  auto& ns = it->second;
  const UnixMillis previous_heartbeat = ns.node.last_heartbeat;
  ns.node.last_heartbeat = clock_.NowMillis();
  // Per-job GPU usage (service_metrics.cc): the readings count for the jobs running on these GPUs.
  NoteGpuUsageLocked(hb.node, hb.gpus, previous_heartbeat > 0 ? ns.node.last_heartbeat - previous_heartbeat : 0);
  std::unordered_map<std::string, const api::Gpu*> live;
  for (const auto& g : hb.gpus) live[g.uuid] = &g;
  for (auto& g : ns.gpus) {
    auto l = live.find(g.uuid);
    if (l == live.end()) continue;
    bool was = g.healthy;
    api::CopyGpuReadings(*l->second, g);
    if (was != g.healthy) wake_ = true;
  }
  if (wake_) wake_loop_.notify_one();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Durable stops and node administration

Status Service::PersistStop(const std::string& job_id, int attempt, const std::string& reason, const std::string& kind,
                            const std::vector<std::string>& avoid_gpus) {
  nlohmann::json v{{"attempt", attempt}, {"reason", reason}};
  if (!kind.empty()) v["kind"] = kind;
  if (!avoid_gpus.empty()) v["avoid_gpus"] = avoid_gpus;
  RETURN_IF_ERROR(store_.WriteRecords({{.kind = kStopKind, .key = job_id, .value = v.dump()}}));
  std::lock_guard lock(mu_);
  persisted_stops_.insert(job_id);
  return Status::Ok();
}

void Service::ForgetStops(const std::vector<store::JobUpdate>& updates) {
  std::vector<store::RecordWrite> erase;
  {
    std::lock_guard lock(mu_);
    for (const auto& u : updates) {
      if (HoldsResources(u.job.state) || !persisted_stops_.count(u.job.id)) continue;
      persisted_stops_.erase(u.job.id);
      erase.push_back({.kind = kStopKind, .key = u.job.id, .erase = true});
    }
  }
  // A record left behind (this write failed) is dropped at the next start: its job has ended.
  if (!erase.empty()) (void)store_.WriteRecords(erase);
}

Status Service::PersistNodeState(const std::string& node, bool cordoned, bool draining, bool removed,
                                 const std::vector<store::RecordWrite>& extra, api::AuditRecord* audit) {
  nlohmann::json v{{"cordoned", cordoned}, {"draining", draining}, {"removed", removed}};
  std::vector<store::RecordWrite> writes = extra;
  writes.push_back({.kind = kNodeStateKind, .key = node, .value = v.dump()});
  return store_.WriteRecords(writes, audit);
}

bool Service::NodeKnown(const std::string& node) const {
  std::lock_guard lock(mu_);
  return nodes_.count(node) > 0;
}

agent::Lease Service::RemoteLease() const {
  if (options_.fence_timeout_ms <= 0) return {};
  return {.lease_ms = options_.fence_timeout_ms, .grace_ms = options_.stop_grace_ms};
}

bool Service::NodeRegistered(const std::string& node) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  return it != nodes_.end() && it->second.registered;
}

void Service::SetNodeConnection(const std::string& node, const std::string& connection,
                                const std::string& peer_address) {
  std::lock_guard lock(mu_);
  nodes_[node].connection = connection;
  nodes_[node].remote = true;
  if (!peer_address.empty()) nodes_[node].peer_address = peer_address;
}

void Service::CheckNodesOnce() {
  if (options_.node_timeout_ms <= 0) return;
  std::lock_guard mutate(mutate_mu_);
  std::vector<store::JobUpdate> updates;
  std::vector<std::pair<std::string, NodeState>> down;  // as they were before this pass
  {
    std::lock_guard lock(mu_);
    const UnixMillis now = clock_.NowMillis();
    std::unordered_map<std::string, Job> batch;  // jobs as an earlier node of this pass left them (gangs)
    for (auto& [name, ns] : nodes_) {
      // Heard last at: its last heartbeat, or (not back since the server started) the server's start.
      UnixMillis heard;
      std::string why;
      if (ns.remote && ns.registered) {
        heard = ns.node.last_heartbeat;
        why = "node " + name + " is down: no heartbeat for " + std::to_string((now - heard) / 1000) + " s";
      } else if (ns.awaited && !ns.registered) {
        heard = ns.awaited_since;
        why = "node " + name + " is down: not back " + std::to_string((now - heard) / 1000) +
              " s after the server restarted";
      } else {
        continue;
      }
      if (now - heard <= options_.node_timeout_ms) continue;
      down.emplace_back(name, NodeState{.node = ns.node, .registered = ns.registered, .awaited = ns.awaited});
      // A node that stays away after a restart is dealt with once; when it comes back it registers.
      ns.awaited = false;
      // DOWN: it must register again (its next call is refused with not_found), and that registration
      // stops what it still runs of the attempts given up here (see RegisterNode).
      ns.registered = false;
      ns.node.healthy = false;
      ns.commands.clear();
      ns.unacked.clear();
      for (const auto& id : active_) {
        const Job& j = batch.count(id) ? batch.at(id) : jobs_.at(id);
        if (!JobOnNode(j, name) || !HoldsResources(j.state)) continue;
        // A member that has ended there already does not need the node any more.
        if (const api::JobMember* m = MemberOn(j, name); m != nullptr && m->ended) continue;
        if (j.state == JobState::kScheduled) {
          // Never sent: back to the queue, the attempt given back.
          Job after = j;
          after.state = JobState::kQueued;
          ClearPlacement(after);
          after.attempt = std::max(0, j.attempt - 1);
          updates.push_back(Transition(j, after, "requeued: " + why, "server"));
          batch[id] = updates.back().job;
          continue;
        }
        agent::JobReport lost;
        lost.kind = agent::JobReport::Kind::kLost;
        lost.job_id = id;
        lost.node = name;
        lost.attempt = j.attempt;
        lost.reason = why;
        // Billed up to the last time it was known to run (after a restart: the node's last registration,
        // never the server's downtime).
        lost.finished_at_ms = ns.node.last_heartbeat;
        if (!j.members.empty()) {
          lost.reason = "rank " + std::to_string(MemberOn(j, name)->rank) + " on " + why;
        }
        // Its node stops it by itself by heard + fence (+ grace): the retry waits until then.
        const UnixMillis fenced_by = options_.fence_timeout_ms > 0
                                         ? heard + options_.fence_timeout_ms + options_.stop_grace_ms + kFenceMarginMs
                                         : 0;
        if (fenced_by > 0) fence_until_[id] = std::max(fence_until_[id], fenced_by);
        batch[id] = FinalStateFor(j, lost, updates);
      }
    }
    for (const auto& u : updates) stops_.erase(u.job.id);
  }
  if (Status st = Commit(updates); !st.ok()) {
    // Tried again at the next tick.
    std::lock_guard lock(mu_);
    for (const auto& [name, was] : down) {
      if (auto it = nodes_.find(name); it != nodes_.end()) {
        it->second.registered = was.registered;
        it->second.awaited = was.awaited;
        it->second.node.healthy = was.node.healthy;
      }
    }
  }
}

std::vector<NodeInfo> Service::Nodes() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::vector<std::string>> jobs;
  for (const auto& id : active_)
    for (const auto& n : JobNodes(jobs_.at(id))) jobs[n].push_back(id);
  std::vector<NodeInfo> out;
  for (const auto& [name, ns] : nodes_) {
    NodeInfo i;
    i.node = ns.node;
    i.node.name = name;
    i.node.gpu_count = static_cast<int>(ns.gpus.size());
    i.registered = ns.registered;
    i.cordoned = ns.cordoned;
    i.draining = ns.draining;
    i.connection = ns.connection;
    i.remote = ns.remote;
    if (auto j = jobs.find(name); j != jobs.end()) {
      i.jobs = j->second;
      std::sort(i.jobs.begin(), i.jobs.end(),
                [](const std::string& a, const std::string& b) { return JobNumber(a) < JobNumber(b); });
    }
    out.push_back(std::move(i));
  }
  return out;
}

Result<NodeInfo> Service::GetNode(const std::string& node) const {
  for (auto& n : Nodes())
    if (n.node.name == node) return n;
  return NotFound("node " + node + " does not exist (fastgpu node list shows the nodes)");
}

Result<NodeInfo> Service::SetNodeCordon(const std::string& node, bool cordoned, bool draining,
                                        api::AuditRecord* audit) {
  {
    std::lock_guard lock(mu_);
    if (!nodes_.count(node)) return NotFound("node " + node + " does not exist (fastgpu node list shows the nodes)");
  }
  RETURN_IF_ERROR(PersistNodeState(node, cordoned, draining, false, {}, audit));
  {
    std::lock_guard lock(mu_);
    auto it = nodes_.find(node);
    if (it != nodes_.end()) {
      it->second.cordoned = cordoned;
      it->second.draining = draining;
      it->second.node.draining = cordoned;
    }
    wake_ = true;  // uncordoned: queued jobs may fit now
  }
  wake_loop_.notify_all();
  return GetNode(node);
}

Status Service::RemoveNode(const std::string& node, const std::vector<store::RecordWrite>& extra,
                           api::AuditRecord* audit) {
  std::lock_guard mutate(mutate_mu_);
  {
    std::lock_guard lock(mu_);
    if (!nodes_.count(node)) return NotFound("node " + node + " does not exist (fastgpu node list shows the nodes)");
    std::vector<std::string> held;
    for (const auto& id : active_)
      if (JobOnNode(jobs_.at(id), node)) held.push_back(id);
    if (!held.empty()) {
      std::sort(held.begin(), held.end());
      std::string list;
      for (const auto& id : held) list += (list.empty() ? "" : ", ") + id;
      return FailedPrecondition("node " + node + " still has " + std::to_string(held.size()) + " job(s) (" + list +
                                "); drain it first: fastgpu node drain " + node + " --wait");
    }
  }
  RETURN_IF_ERROR(PersistNodeState(node, false, false, true, extra, audit));
  std::lock_guard lock(mu_);
  nodes_.erase(node);
  RefreshCapacityLocked();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Reservations, runtime predictions and expected start times (docs/scheduling.md)

namespace {

// What runs of a job count as "the same job" for runtime predictions: its name, else its command line.
std::string PredictionName(const Job& j) {
  if (!j.spec.name.empty()) return j.spec.name;
  std::string line;
  for (const auto& a : j.spec.command) {
    if (line.size() > 256) break;
    line += (line.empty() ? "" : " ") + a;
  }
  return line;
}

// How many recently SUCCEEDED jobs a starting server learns runtimes from.
constexpr int kRuntimeHistoryJobs = 10'000;

}  // namespace

Result<api::Reservation> Service::CreateReservation(api::Reservation r, const std::string& actor,
                                                    api::AuditRecord* audit) {
  if (directory_ && !directory_->Rules(r.project)) return NotFound("project " + r.project + " does not exist");
  std::map<std::string, int> gpus_by_type;  // every known node's GPUs (also those not registered since the start)
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, ns] : nodes_)
      for (const auto& g : ns.gpus) ++gpus_by_type[g.type];
  }
  ASSIGN_OR_RETURN(api::Reservation created, reservations_.Create(std::move(r), actor, gpus_by_type, audit));
  {
    std::lock_guard lock(mu_);
    wake_ = true;
    estimated_at_ = 0;  // estimate again at the next tick
  }
  wake_loop_.notify_all();
  return created;
}

std::vector<api::Reservation> Service::ListReservations(const std::set<std::string>* projects) const {
  return reservations_.List(projects);
}

Result<api::Reservation> Service::GetReservation(const std::string& id) const { return reservations_.Get(id); }

Status Service::DeleteReservation(const std::string& id, api::AuditRecord* audit) {
  RETURN_IF_ERROR(reservations_.Delete(id, audit));
  {
    std::lock_guard lock(mu_);
    wake_ = true;
    estimated_at_ = 0;
  }
  wake_loop_.notify_all();
  return Status::Ok();
}

int64_t Service::PredictedRuntimeLocked(const Job& j) const {
  return predictor_.Predict(j.spec.project, j.user, PredictionName(j));
}

void Service::ObserveRuntimeLocked(const Job& j) {
  if (j.started_at <= 0 || j.finished_at <= j.started_at) return;
  predictor_.Observe(j.spec.project, j.user, PredictionName(j), (j.finished_at - j.started_at + 999) / 1000);
}

Status Service::LoadRuntimeHistory() {
  // Newest first: learnt oldest first, so that each key keeps its most recent runs.
  ASSIGN_OR_RETURN(auto ended, store_.ListJobs({.states = {JobState::kSucceeded}, .limit = kRuntimeHistoryJobs}));
  std::lock_guard lock(mu_);
  for (auto it = ended.rbegin(); it != ended.rend(); ++it) ObserveRuntimeLocked(*it);
  return Status::Ok();
}

sched::JobRequest Service::PredictedRequestLocked(const Job& j) const {
  sched::JobRequest r = ToRequest(j, gang_width_);
  // Only where it changes decisions: policies that order or backfill by runtime, and deadlines.
  if (scheduler_->UsesRuntimeEstimates() || j.spec.deadline_at > 0) r.predicted_runtime_s = PredictedRuntimeLocked(j);
  return r;
}

void Service::NoteRoundOrderLocked(const sched::Decisions& d) {
  round_order_.clear();
  for (const auto& p : d.pending) {
    if (round_order_.size() >= kMaxEstimated) break;
    if (!p.never_fits) round_order_.push_back(p.job_id);
  }
}

void Service::EstimateStartsOnce() {
  sched::ClusterSnapshot snap;
  std::vector<sched::JobRequest> queue;
  {
    std::lock_guard lock(mu_);
    snap = SnapshotLocked(false);
    std::unordered_set<std::string> taken;
    auto add = [&](const std::string& id) {
      if (queue.size() >= kMaxEstimated || taken.count(id)) return;
      auto it = jobs_.find(id);
      if (it == jobs_.end() || it->second.state != JobState::kQueued) return;
      const Job& j = it->second;
      if ((!j.spec.after.empty() || !j.spec.after_ok.empty()) && !deps_met_.count(id)) return;  // held
      if (ArrayHeldLocked(j)) return;
      taken.insert(id);
      sched::JobRequest r = ToRequest(j, gang_width_);
      r.predicted_runtime_s = PredictedRuntimeLocked(j);
      queue.push_back(std::move(r));
    };
    // The order the last round considered them in, then those it did not see (submitted since), oldest first.
    for (const auto& id : round_order_) add(id);
    for (const auto& [num, id] : queued_) {
      if (queue.size() >= kMaxEstimated) break;
      add(id);
    }
  }
  std::vector<sched::StartEstimate> est = sched::EstimateStarts(snap, queue, kMaxEstimated);
  std::lock_guard lock(mu_);
  estimates_.clear();
  for (auto& e : est) {
    std::string id = e.job_id;
    estimates_.emplace(std::move(id), std::move(e));
  }
  estimated_at_ = snap.now;
}

void Service::DescribeQueuedLocked(Job& j) const {
  const UnixMillis now = clock_.NowMillis();
  if (j.spec.begin_at > now && (j.reason.empty() || j.reason == "waiting to be scheduled"))
    j.reason = "waiting: not before its begin time " + FormatTimestamp(j.spec.begin_at);
  if ((!j.spec.after.empty() || !j.spec.after_ok.empty()) && !deps_met_.count(j.id)) {
    j.expected_start_note = "it waits for other jobs to end first";
    return;
  }
  if (ArrayHeldLocked(j)) {
    j.expected_start_note = j.spec.array.empty() ? "it waits for other tasks of its array to end first"
                                                 : "a job array runs as its tasks";
    return;
  }
  auto it = estimates_.find(j.id);
  if (it == estimates_.end()) {
    j.expected_start_note = estimates_.size() >= kMaxEstimated
                                ? "only the first " + std::to_string(kMaxEstimated) + " jobs of the queue are estimated"
                                : "not estimated yet (estimates are refreshed every " +
                                      std::to_string(kEstimateEveryMs / 1000) + " s)";
    return;
  }
  if (it->second.at <= 0) {
    j.expected_start_note = it->second.why;
    return;
  }
  j.expected_start_at = std::max(it->second.at, now);
  if (j.spec.deadline_at <= 0) return;
  const bool limited = j.spec.runtime_limit_s > 0;
  const int64_t run_s = limited ? j.spec.runtime_limit_s : PredictedRuntimeLocked(j);
  if (j.expected_start_at + run_s * 1000 <= j.spec.deadline_at) return;
  j.deadline_warning = "deadline unlikely: expected to start at " + FormatTimestamp(j.expected_start_at);
  if (run_s > 0)
    j.deadline_warning += " and to run up to " + FormatDuration(run_s) +
                          (limited ? " (its runtime limit)" : " (predicted from earlier runs)");
  j.deadline_warning += ", past its deadline " + FormatTimestamp(j.spec.deadline_at);
}

}  // namespace fastgpu::server
