// Job arrays (docs/scheduling.md, Job arrays): `job submit --array 0-99%8` creates one array job (never placed
// itself) and one ordinary job per index, its task, numbered right after it (array j-12 of 100 tasks: j-13..j-112,
// with array_parent j-12 and array_index 0..99). At most %N tasks of an array hold resources at once: the others stay
// queued, held back here like jobs waiting for their dependencies. The array's state is derived from its tasks: it
// stays QUEUED (its reason counting its tasks per state) until all have ended, then SUCCEEDED, FAILED or CANCELLED.
#include <algorithm>
#include <map>

#include "api/json.h"
#include "server/service.h"

namespace fastgpu::server {

using api::Job;
using api::JobState;

namespace {

std::string TaskId(int64_t array_num, size_t position) {
  return "j-" + std::to_string(array_num + 1 + static_cast<int64_t>(position));
}

bool Holds(JobState s) { return s == JobState::kScheduled || s == JobState::kStarting || s == JobState::kRunning; }

}  // namespace

void AddArrayEnv(Job& job) {
  if (job.array_parent.empty()) return;
  job.spec.env["FASTGPU_ARRAY_JOB_ID"] = job.array_parent;
  job.spec.env["FASTGPU_ARRAY_INDEX"] = std::to_string(job.array_index);
}

Result<SubmitResult> Service::SubmitArray(Job job, const std::string& actor, const SubmitOptions& options,
                                          std::string fingerprint) {
  ASSIGN_OR_RETURN(api::ArraySpec array, api::ParseArraySpec(job.spec.array));
  const size_t n = array.indices.size();
  store::NewJob parent;
  parent.job = job;
  parent.job.reason = "array of " + std::to_string(n) + " tasks";
  parent.event.at = job.created_at;
  parent.event.to = "QUEUED";
  parent.event.reason = "submitted: array " + job.spec.array + " (" + std::to_string(n) + " tasks)";
  parent.event.actor = actor;
  if (options.audit) parent.audit = *options.audit;
  if (!options.idempotency_key.empty()) {
    parent.idempotency_scope = actor;
    parent.idempotency_key = options.idempotency_key;
    parent.fingerprint = std::move(fingerprint);
  }
  std::vector<store::NewJob> tasks(n);
  for (size_t i = 0; i < n; ++i) {
    store::NewJob& t = tasks[i];
    t.job = job;
    t.job.spec.array.clear();
    t.job.array_index = array.indices[i];
    t.job.spec.env["FASTGPU_ARRAY_INDEX"] = std::to_string(array.indices[i]);
    t.job.spec.env["FASTGPU_ARRAY_COUNT"] = std::to_string(n);
    t.event.at = job.created_at;
    t.event.to = "QUEUED";
    t.event.reason = "submitted: task " + std::to_string(array.indices[i]) + " of an array";
    t.event.actor = actor;
  }
  ASSIGN_OR_RETURN(store::CreatedJob created, store_.SubmitJobGroup(std::move(parent), tasks));
  if (created.existing) {
    auto now = GetJob(created.job.id);
    if (now.ok()) created.job = std::move(now).value();
    return SubmitResult{.job = std::move(created.job), .replayed = true};
  }
  if (options.audit && created.audit) *options.audit = *created.audit;
  const int64_t num = JobNumber(created.job.id);
  {
    std::lock_guard lock(mu_);
    queued_.insert({num, created.job.id});
    jobs_[created.job.id] = created.job;
    for (size_t i = 0; i < n; ++i) {
      Job task = std::move(tasks[i].job);
      task.id = TaskId(num, i);
      task.array_parent = created.job.id;
      task.state = JobState::kQueued;
      queued_.insert({num + 1 + static_cast<int64_t>(i), task.id});
      jobs_[task.id] = std::move(task);
    }
    wake_ = true;
  }
  wake_loop_.notify_one();
  auto now = GetJob(created.job.id);  // with its tasks
  if (now.ok()) created.job = std::move(now).value();
  return SubmitResult{.job = std::move(created.job)};
}

bool Service::ArrayHeldLocked(const Job& job) const {
  if (!job.spec.array.empty()) return true;
  return !job.array_parent.empty() && !array_ok_.count(job.id);
}

void Service::ResolveArraysOnce() {
  std::lock_guard mutate(mutate_mu_);
  std::vector<Job> ended;  // arrays whose tasks have all ended
  {
    std::lock_guard lock(mu_);
    for (const auto& [num, id] : queued_) {
      Job& a = jobs_.at(id);
      if (a.spec.array.empty()) continue;
      auto spec = api::ParseArraySpec(a.spec.array);
      if (!spec.ok()) continue;
      const size_t n = spec->indices.size();
      int live = 0, holding = 0, running = 0, queued = 0;
      std::vector<Job*> waiting;  // queued tasks not let through yet, in index order
      for (size_t i = 0; i < n; ++i) {
        auto it = jobs_.find(TaskId(num, i));
        if (it == jobs_.end()) continue;
        ++live;
        Job& t = it->second;
        if (Holds(t.state)) {
          ++holding;
          ++running;
        } else if (t.state == JobState::kQueued) {
          ++queued;
          if (array_ok_.count(t.id)) {
            ++holding;
          } else {
            waiting.push_back(&t);
          }
        }
      }
      if (live == 0) {
        ended.push_back(a);
        continue;
      }
      for (Job* t : waiting) {
        if (spec->limit == 0 || holding < spec->limit) {
          array_ok_.insert(t->id);
          ++holding;
          wake_ = true;
          if (t->reason.rfind("waiting: array ", 0) == 0) t->reason = "waiting to be scheduled";
        } else {
          t->reason = "waiting: array " + a.id + " runs at most " + std::to_string(spec->limit) + " tasks at once";
        }
      }
      a.reason = "array of " + std::to_string(n) + " tasks: " + std::to_string(running) + " running, " +
                 std::to_string(queued) + " queued, " + std::to_string(static_cast<int>(n) - live) + " ended";
    }
  }
  if (ended.empty()) return;
  std::vector<store::JobUpdate> updates;
  for (Job& a : ended) {
    if (!FillArrayTasks(a).ok()) continue;  // the store is unavailable: next tick
    int succeeded = 0, failed = 0, cancelled = 0;
    const api::ArrayTask* first_failed = nullptr;
    for (const auto& t : a.array_tasks) {
      if (t.state == JobState::kSucceeded) {
        ++succeeded;
      } else if (t.state == JobState::kCancelled) {
        ++cancelled;
      } else {
        ++failed;
        if (!first_failed) first_failed = &t;
      }
    }
    const size_t n = a.array_tasks.size();
    Job after = a;
    after.array_tasks.clear();
    after.finished_at = clock_.NowMillis();
    std::string reason;
    if (failed > 0) {
      after.state = JobState::kFailed;
      after.exit_code = first_failed->exit_code;
      reason = std::to_string(failed) + " of " + std::to_string(n) + " tasks failed (first: task " +
               std::to_string(first_failed->index) + ", " + first_failed->id +
               (first_failed->reason.empty() ? "" : ": " + first_failed->reason) + ")";
    } else if (cancelled > 0) {
      after.state = JobState::kCancelled;
      reason = std::to_string(cancelled) + " of " + std::to_string(n) + " tasks cancelled, " +
               std::to_string(succeeded) + " succeeded";
    } else {
      after.state = JobState::kSucceeded;
      after.exit_code = 0;
      reason = "all " + std::to_string(n) + " tasks succeeded";
    }
    a.array_tasks.clear();
    std::lock_guard lock(mu_);
    auto it = jobs_.find(a.id);
    if (it == jobs_.end() || it->second.state != JobState::kQueued) continue;
    updates.push_back(Transition(it->second, after, reason, "server"));
    updates.back().expected_state = JobState::kQueued;
  }
  if (!updates.empty()) (void)Commit(updates);  // tried again at the next tick if it fails
}

Status Service::FillArrayTasks(Job& job) const {
  ASSIGN_OR_RETURN(api::ArraySpec spec, api::ParseArraySpec(job.spec.array));
  const int64_t num = JobNumber(job.id);
  job.array_tasks.clear();
  job.array_tasks.reserve(spec.indices.size());
  for (size_t i = 0; i < spec.indices.size(); ++i) {
    ASSIGN_OR_RETURN(Job t, LoadJob(TaskId(num, i)));
    api::ArrayTask task{.index = spec.indices[i], .id = t.id, .state = t.state, .exit_code = t.exit_code,
                        .reason = t.reason};
    job.array_tasks.push_back(std::move(task));
  }
  return Status::Ok();
}

std::optional<Result<Job>> Service::CancelArray(const std::string& id, const std::string& actor,
                                                api::AuditRecord* audit) {
  std::vector<std::string> running;  // tasks past the queue: cancelled one by one (stop commands)
  {
    std::lock_guard mutate(mutate_mu_);
    std::vector<store::JobUpdate> updates;
    {
      std::lock_guard lock(mu_);
      auto it = jobs_.find(id);
      if (it == jobs_.end() || it->second.spec.array.empty()) return std::nullopt;
      auto spec = api::ParseArraySpec(it->second.spec.array);
      if (!spec.ok()) return std::nullopt;
      const int64_t num = JobNumber(id);
      const UnixMillis now = clock_.NowMillis();
      for (size_t i = 0; i < spec->indices.size(); ++i) {
        auto t = jobs_.find(TaskId(num, i));
        if (t == jobs_.end()) continue;
        if (t->second.state != JobState::kQueued) {
          running.push_back(t->first);
          continue;
        }
        Job after = t->second;
        after.state = JobState::kCancelled;
        after.finished_at = now;
        updates.push_back(Transition(t->second, after, "cancelled by user (array " + id + ")", actor));
        updates.back().expected_state = JobState::kQueued;
      }
      it->second.reason = "cancelling";
    }
    if (audit) {
      if (!updates.empty()) {
        updates.back().audit = *audit;
      } else {
        auto row = store_.AppendAudit(*audit);
        if (row.ok()) *audit = *row;
      }
    }
    if (Status st = Commit(updates); !st.ok()) return Result<Job>(st);
    if (audit && !updates.empty()) audit->seq = std::max<int64_t>(1, store_.Stats().last_audit_seq);
  }
  for (const auto& t : running) {
    auto r = Cancel(t, actor);
    if (!r.ok() && r.status().code() != ErrorCode::kFailedPrecondition) return Result<Job>(r.status());
  }
  ResolveArraysOnce();  // ends the array now when no task was running
  return Result<Job>(GetJob(id));
}

}  // namespace fastgpu::server
