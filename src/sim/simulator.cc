#include "sim/simulator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <queue>
#include <unordered_map>
#include <utility>

#include "sched/framework/cluster_state.h"
#include "sched/policies/runtime_predictor.h"

namespace fastgpu::sim {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr int32_t kNone = -1;
constexpr int kMaxRoundsPerInstant = 4;

struct GpuRef {
  uint32_t node = 0;
  uint32_t gpu = 0;
  MilliGpu milli = 0;
  MiB memory = 0;
};

struct Job {
  uint32_t trace_index = 0;
  int nodes = 1;
  int gpus = 1;        // per node
  int alloc_gpus = 1;  // nodes * gpus
  uint32_t key = 0;    // (user, queue) id for runtime estimates
  int64_t submit_ms = 0;
  int64_t remaining_ms = 0;
  int64_t attempt_start_ms = 0;
  int64_t first_start_ms = -1;
  int64_t end_ms = -1;
  int64_t attained_gpu_ms = 0;  // before the current attempt
  int64_t last_preempted_ms = 0;
  uint32_t attempt = 0;
  int preemptions = 0;
  bool preemptible = false;
  int32_t running_pos = kNone;
  sched::JobQueue::Handle handle = sched::JobQueue::kNone;  // while queued
  bool queued = false;
  bool rejected = false;
  std::string reject_reason;
  std::vector<GpuRef> held;
};

struct Completion {
  int64_t time_ms;
  uint32_t job;
  uint32_t attempt;
  bool operator>(const Completion& o) const {
    if (time_ms != o.time_ms) return time_ms > o.time_ms;
    return job > o.job;
  }
};

class Engine {
 public:
  Engine(const Trace& trace, sched::Scheduler& scheduler, const SimConfig& config)
      : trace_(trace), sched_(scheduler), cfg_(config), queue_(scheduler.queue_order()) {}

  Result<SimResult> Run() {
    RETURN_IF_ERROR(Init());
    size_t next_arrival = 0;
    int64_t next_tick = kNever;
    const int64_t tick_ms = cfg_.reschedule_interval_s * 1000;
    while (true) {
      DropStaleCompletions();
      int64_t t = kNever;
      if (next_arrival < jobs_.size()) t = jobs_[next_arrival].submit_ms;
      if (!completions_.empty()) t = std::min(t, completions_.top().time_ms);
      const bool ticking = tick_ms > 0 && QueueSize() > 0 && !running_.empty();
      if (ticking) t = std::min(t, next_tick);
      if (t == kNever) break;

      bool completed_any = false;
      while (!completions_.empty() && completions_.top().time_ms == t) {
        Completion c = completions_.top();
        completions_.pop();
        if (!IsCurrent(c)) continue;
        Complete(c.job, t);
        completed_any = true;
      }
      int min_arrival_gpus = std::numeric_limits<int>::max();
      while (next_arrival < jobs_.size() && jobs_[next_arrival].submit_ms == t) {
        if (!jobs_[next_arrival].rejected) min_arrival_gpus = std::min(min_arrival_gpus, jobs_[next_arrival].gpus);
        Arrive(next_arrival++);
      }
      if (completed_any) unchanged_since_idle_round_ = false;
      const bool tick = ticking && t >= next_tick;
      if (tick_ms > 0) next_tick = t + tick_ms;

      bool must_schedule = QueueSize() > 0;
      if (must_schedule && cfg_.skip_when_full && !completed_any && !tick && free_whole_gpus_ == 0) {
        must_schedule = false;
      }
      // Only arrivals, none of which fits the largest free block, after a round that changed nothing: a
      // policy that never preempts would start nothing (every older job already failed on this same state,
      // and the new ones cannot fit), so the call is skipped. Not when runtime estimates are due for a refresh,
      // since reservations (backfill) depend on them.
      if (must_schedule && cfg_.skip_when_full && !completed_any && !tick && unchanged_since_idle_round_ &&
          !RefreshDue(t) && min_arrival_gpus > LargestFreeBlock()) {
        must_schedule = false;
      }
      std::string first_pending_reason;
      if (must_schedule) RETURN_IF_ERROR(ScheduleAt(t, &first_pending_reason));

      DropStaleCompletions();
      if (next_arrival == jobs_.size() && completions_.empty() && QueueSize() > 0) {
        return FailedPrecondition(
            "simulation stalled at t=" + std::to_string(t / 1000) + " s: " + std::to_string(QueueSize()) +
            " jobs queued, none running, none left to arrive, and scheduler '" + sched_.Name() +
            "' starts none" + (first_pending_reason.empty() ? "" : " (first pending: " + first_pending_reason + ")"));
      }
      ReportProgress(false);
    }
    ReportProgress(true);
    return Finish();
  }

 private:
  Status Init() {
    snapshot_ = BuildEmptySnapshot(cfg_.cluster, cfg_.epoch_ms);
    cluster_.emplace(snapshot_);
    cluster_->BuildLookups();  // shared by the copies each round starts from
    free_whole_gpus_ = cfg_.cluster.total_gpus();
    for (uint32_t n = 0; n < snapshot_.nodes.size(); ++n) {
      node_by_name_.emplace(snapshot_.nodes[n].name, n);
      for (uint32_t g = 0; g < snapshot_.nodes[n].gpus.size(); ++g) {
        gpu_by_uuid_.emplace(snapshot_.nodes[n].gpus[g].uuid, std::make_pair(n, g));
      }
    }
    const int gpn = cfg_.cluster.gpus_per_node;
    if (gpn <= 0 || cfg_.cluster.nodes <= 0) return InvalidArgument("the simulated cluster has no GPUs");
    jobs_.resize(trace_.jobs.size());
    job_by_id_.reserve(trace_.jobs.size());
    std::unordered_map<std::string, uint32_t> keys;
    for (uint32_t i = 0; i < trace_.jobs.size(); ++i) {
      const TraceJob& tj = trace_.jobs[i];
      Job& j = jobs_[i];
      j.trace_index = i;
      j.submit_ms = tj.submit_time_s * 1000;
      j.remaining_ms = tj.duration_s * 1000;
      if (tj.num_gpus <= gpn) {
        j.nodes = 1;
        j.gpus = tj.num_gpus;
      } else {
        j.nodes = (tj.num_gpus + gpn - 1) / gpn;
        j.gpus = (tj.num_gpus + j.nodes - 1) / j.nodes;
      }
      j.alloc_gpus = j.nodes * j.gpus;
      j.preemptible = PreemptibleJob(tj.job_id, cfg_.preemptible_permille, cfg_.preemptible_seed);
      if (j.nodes > cfg_.cluster.nodes) {
        j.rejected = true;
        j.reject_reason = "needs " + std::to_string(j.nodes) + " nodes x " + std::to_string(j.gpus) +
                          " GPUs; the cluster has " + std::to_string(cfg_.cluster.nodes) + " nodes";
      }
      std::string key = tj.user;
      key.push_back('\0');
      key += tj.queue;
      auto [it, inserted] = keys.emplace(std::move(key), static_cast<uint32_t>(key_user_.size()));
      if (inserted) {
        key_user_.push_back(tj.user);
        key_queue_.push_back(tj.queue);
      }
      j.key = it->second;
      if (!job_by_id_.emplace(tj.job_id, i).second) {
        return InvalidArgument(trace_.source + ": duplicate job_id '" + tj.job_id + "'");
      }
    }
    predicted_s_.assign(key_user_.size(), 0);
    return Status::Ok();
  }

  void Arrive(size_t i) {
    Job& j = jobs_[i];
    if (j.rejected) {
      ++rejected_;
      return;
    }
    Enqueue(static_cast<uint32_t>(i), RequestFor(j));
  }

  // What the scheduler sees of a queued job (first arrival or requeue after preemption).
  sched::JobRequest RequestFor(const Job& j) {
    const TraceJob& tj = trace_.jobs[j.trace_index];
    sched::JobRequest r;
    r.job_id = tj.job_id;
    r.name = tj.queue;
    r.project = tj.queue;
    r.user = tj.user;
    r.submitted_at = cfg_.epoch_ms + j.submit_ms;
    r.gpus = j.gpus;
    r.nodes = j.nodes;
    r.milli_per_gpu = kMilliPerGpu;
    r.preemptible = j.preemptible;
    r.predicted_runtime_s = predicted_s_[j.key];
    r.attained_gpu_ms = j.attained_gpu_ms;
    return r;
  }

  void Enqueue(uint32_t job, sched::JobRequest r) {
    Job& j = jobs_[job];
    j.queued = true;
    j.handle = queue_.Add(std::move(r));
    if (queue_key_.size() <= j.handle) queue_key_.resize(j.handle + 1);
    queue_key_[j.handle] = j.key;
  }

  void Dequeue(Job& j) {
    j.queued = false;
    queue_.Remove(j.handle);
    j.handle = sched::JobQueue::kNone;
  }

  size_t QueueSize() const { return queue_.size(); }

  bool IsCurrent(const Completion& c) const {
    const Job& j = jobs_[c.job];
    return j.running_pos != kNone && j.attempt == c.attempt;
  }

  void DropStaleCompletions() {
    while (!completions_.empty() && !IsCurrent(completions_.top())) completions_.pop();
  }

  void Release(Job& j, int64_t t) {
    for (const GpuRef& g : j.held) {
      sched::GpuView& v = snapshot_.nodes[g.node].gpus[g.gpu];
      v.free_milli += g.milli;
      v.free_memory_mib += g.memory;
      cluster_->Release(GpuIndex(g), g.milli, g.memory);
      if (v.free_milli == kMilliPerGpu) ++free_whole_gpus_;
    }
    j.held.clear();
    const int64_t ran = t - j.attempt_start_ms;
    busy_gpu_ms_ += ran * j.alloc_gpus;
    j.attained_gpu_ms += ran * j.alloc_gpus;
    // Remove from the running list (swap with the last entry).
    const size_t pos = static_cast<size_t>(j.running_pos);
    const size_t last = running_.size() - 1;
    if (pos != last) {
      snapshot_.running[pos] = std::move(snapshot_.running[last]);
      running_[pos] = running_[last];
      jobs_[running_[pos]].running_pos = static_cast<int32_t>(pos);
    }
    snapshot_.running.pop_back();
    running_.pop_back();
    j.running_pos = kNone;
  }

  void Complete(uint32_t job, int64_t t) {
    Job& j = jobs_[job];
    Release(j, t);
    j.end_ms = t;
    j.remaining_ms = 0;
    ++completed_;
    const TraceJob& tj = trace_.jobs[j.trace_index];
    estimates_.Observe(tj.queue, tj.user, tj.queue, tj.duration_s);
    predicted_s_[j.key] = estimates_.Predict(tj.queue, tj.user, tj.queue);
    predictions_dirty_ = true;
  }

  Status Preempt(const sched::Preempt& p, int64_t t) {
    auto it = job_by_id_.find(p.job_id);
    if (it == job_by_id_.end() || jobs_[it->second].running_pos == kNone) {
      return Internal("scheduler '" + sched_.Name() + "' preempted job '" + p.job_id + "', which is not running");
    }
    Job& j = jobs_[it->second];
    if (!j.preemptible) {
      return Internal("scheduler '" + sched_.Name() + "' preempted job '" + p.job_id + "', which is not preemptible");
    }
    const int64_t ran = t - j.attempt_start_ms;
    Release(j, t);
    j.remaining_ms = std::max<int64_t>(0, j.remaining_ms - ran) +
                     cfg_.checkpoint.For(trace_.jobs[j.trace_index].num_gpus) * 1000;
    ++j.attempt;
    ++j.preemptions;
    ++preemptions_;
    j.last_preempted_ms = t;
    Enqueue(it->second, RequestFor(j));
    return Status::Ok();
  }

  Status BindError(const sched::Bind& b, const std::string& what) const {
    return Internal("scheduler '" + sched_.Name() + "' made an invalid bind for job '" + b.job_id + "': " + what);
  }

  Status ApplyBind(const sched::Bind& b, int64_t t) {
    auto it = job_by_id_.find(b.job_id);
    if (it == job_by_id_.end()) return BindError(b, "no such job");
    const uint32_t job = it->second;
    Job& j = jobs_[job];
    if (!j.queued) return BindError(b, "the job is not queued");
    if (static_cast<int>(b.nodes.size()) != j.nodes) {
      return BindError(b, "gang of " + std::to_string(j.nodes) + " nodes placed on " +
                              std::to_string(b.nodes.size()));
    }
    const MilliGpu milli = b.milli_per_gpu > 0 ? b.milli_per_gpu : kMilliPerGpu;
    std::vector<GpuRef> held;
    held.reserve(static_cast<size_t>(j.alloc_gpus));
    for (const sched::NodeAssignment& a : b.nodes) {
      auto nit = node_by_name_.find(a.node);
      if (nit == node_by_name_.end()) return BindError(b, "unknown node '" + a.node + "'");
      const uint32_t node = nit->second;
      const bool by_uuid = !a.gpu_uuids.empty();
      const size_t count = by_uuid ? a.gpu_uuids.size() : a.gpu_indices.size();
      if (static_cast<int>(count) != j.gpus) {
        return BindError(b, std::to_string(count) + " GPUs on node '" + a.node + "', the job needs " +
                                std::to_string(j.gpus) + " per node");
      }
      for (size_t k = 0; k < count; ++k) {
        uint32_t gpu = 0;
        if (by_uuid) {
          auto git = gpu_by_uuid_.find(a.gpu_uuids[k]);
          if (git == gpu_by_uuid_.end() || git->second.first != node) {
            return BindError(b, "GPU '" + a.gpu_uuids[k] + "' is not on node '" + a.node + "'");
          }
          gpu = git->second.second;
        } else {
          const int idx = a.gpu_indices[k];
          if (idx < 0 || idx >= static_cast<int>(snapshot_.nodes[node].gpus.size())) {
            return BindError(b, "GPU index " + std::to_string(idx) + " does not exist on node '" + a.node + "'");
          }
          gpu = static_cast<uint32_t>(idx);
        }
        for (const GpuRef& h : held) {
          if (h.node == node && h.gpu == gpu) return BindError(b, "the same GPU is used twice");
        }
        sched::GpuView& v = snapshot_.nodes[node].gpus[gpu];
        if (v.free_milli < milli) {
          return BindError(b, "GPU '" + v.uuid + "' on node '" + a.node + "' has " + FormatMilliGpu(v.free_milli) +
                                  " GPU free, the job needs " + FormatMilliGpu(milli));
        }
        MiB mem = b.memory_mib_per_gpu;
        if (mem == 0 && milli == kMilliPerGpu) mem = v.free_memory_mib;
        if (mem > v.free_memory_mib) return BindError(b, "GPU '" + v.uuid + "' lacks memory");
        held.push_back(GpuRef{node, gpu, milli, mem});
      }
    }
    for (const GpuRef& h : held) {
      sched::GpuView& v = snapshot_.nodes[h.node].gpus[h.gpu];
      if (v.free_milli == kMilliPerGpu) --free_whole_gpus_;
      v.free_milli -= h.milli;
      v.free_memory_mib -= h.memory;
      cluster_->Allocate(GpuIndex(h), h.milli, h.memory);
    }
    j.held = std::move(held);
    Dequeue(j);
    j.attempt_start_ms = t;
    if (j.first_start_ms < 0) j.first_start_ms = t;
    completions_.push(Completion{t + j.remaining_ms, job, j.attempt});

    const TraceJob& tj = trace_.jobs[j.trace_index];
    sched::RunningJob r;
    r.job_id = tj.job_id;
    r.project = tj.queue;
    r.user = tj.user;
    r.preemptible = j.preemptible;
    r.started_at = cfg_.epoch_ms + t;
    r.last_preempted_at = j.last_preempted_ms > 0 ? cfg_.epoch_ms + j.last_preempted_ms : 0;
    r.attained_gpu_ms = j.attained_gpu_ms;
    r.predicted_runtime_s = predicted_s_[j.key];
    r.shares.reserve(j.held.size());
    for (const GpuRef& h : j.held) {
      const sched::NodeView& n = snapshot_.nodes[h.node];
      r.shares.push_back(sched::GpuShare{n.name, n.gpus[h.gpu].uuid, h.milli, h.memory});
    }
    j.running_pos = static_cast<int32_t>(running_.size());
    running_.push_back(job);
    snapshot_.running.push_back(std::move(r));
    return Status::Ok();
  }

  bool RefreshDue(int64_t t) const {
    return predictions_dirty_ && cfg_.prediction_refresh_s > 0 && t >= next_prediction_refresh_ms_;
  }

  // Most fully free GPUs on one node.
  int LargestFreeBlock() const {
    int most = 0;
    for (const sched::NodeView& n : snapshot_.nodes) {
      int free = 0;
      for (const sched::GpuView& g : n.gpus) free += g.free_milli == kMilliPerGpu && g.healthy ? 1 : 0;
      most = std::max(most, free);
    }
    return most;
  }

  Status ScheduleAt(int64_t t, std::string* first_pending_reason) {
    snapshot_.now = cfg_.epoch_ms + t;
    for (size_t i = 0; i < running_.size(); ++i) {
      const Job& j = jobs_[running_[i]];
      snapshot_.running[i].attained_gpu_ms = j.attained_gpu_ms + (t - j.attempt_start_ms) * j.alloc_gpus;
    }
    if (RefreshDue(t)) {
      // Policies that ignore queued jobs' estimates are not affected by them (no job here has a deadline).
      if (sched_.UsesRuntimeEstimates()) {
        queue_.SetPredictedRuntimes([this](sched::JobQueue::Handle h) { return predicted_s_[queue_key_[h]]; });
      }
      predictions_dirty_ = false;
      next_prediction_refresh_ms_ = t + cfg_.prediction_refresh_s * 1000;
    }
    // Preempted jobs release their GPUs at once here, so after a round with preemptions the scheduler is
    // asked again at the same time (policies may bind the preemptor only once the GPUs are free).
    for (int round = 0; round < kMaxRoundsPerInstant && QueueSize() > 0; ++round) {
      bool preempted = false;
      RETURN_IF_ERROR(Round(t, first_pending_reason, &preempted));
      if (!preempted) break;
    }
    return Status::Ok();
  }

  // The GPU in sched::ClusterState numbering.
  int GpuIndex(const GpuRef& g) const {
    return cluster_->node(static_cast<int>(g.node)).first_gpu + static_cast<int>(g.gpu);
  }

  Status Round(int64_t t, std::string* first_pending_reason, bool* preempted) {
    ++schedule_calls_;
    if (cfg_.check_cluster_state && !cluster_->SameAs(sched::ClusterState(snapshot_))) {
      return Internal("the simulator's cluster index no longer matches its snapshot at t=" + std::to_string(t / 1000) +
                      " s");
    }
    sched::Decisions d = sched_.Schedule(*cluster_, queue_);
    *preempted = !d.preemptions.empty();
    unchanged_since_idle_round_ = d.preemptions.empty() && d.binds.empty();
    for (const sched::Preempt& p : d.preemptions) RETURN_IF_ERROR(Preempt(p, t));
    for (const sched::Bind& b : d.binds) RETURN_IF_ERROR(ApplyBind(b, t));
    first_pending_reason->clear();
    for (const sched::Pending& p : d.pending) {
      if (first_pending_reason->empty()) *first_pending_reason = p.job_id + ": " + p.reason;
      if (!p.never_fits) continue;
      auto it = job_by_id_.find(p.job_id);
      if (it == job_by_id_.end()) continue;
      Job& j = jobs_[it->second];
      if (!j.queued || j.first_start_ms >= 0) continue;  // only jobs that never ran can be rejected
      Dequeue(j);
      j.rejected = true;
      j.reject_reason = p.reason;
      ++rejected_;
      unchanged_since_idle_round_ = false;
    }
    return Status::Ok();
  }

  void ReportProgress(bool final) {
    if (!cfg_.progress) return;
    const int64_t total = static_cast<int64_t>(jobs_.size());
    const int64_t done = completed_ + rejected_;
    const int64_t step = std::max<int64_t>(1, total / 200);
    if (final || done >= last_progress_ + step) {
      last_progress_ = done;
      cfg_.progress(done, total);
    }
  }

  Result<SimResult> Finish() {
    SimResult res;
    SimMetrics& m = res.metrics;
    m.policy = sched_.Name();
    m.jobs = static_cast<int64_t>(jobs_.size());
    m.completed = completed_;
    m.rejected = rejected_;
    m.preemptions = preemptions_;
    m.schedule_calls = schedule_calls_;
    std::vector<int64_t> queue_ms;
    queue_ms.reserve(jobs_.size());
    struct ProjectSums {
      int64_t completed = 0, jct_ms = 0, queue_ms = 0, max_queue_ms = 0, preemptions = 0;
    };
    std::map<std::string, ProjectSums> projects;
    int64_t jct_sum = 0, queue_sum = 0, wait_sum = 0, first_submit = kNever, last_end = 0;
    res.jobs.reserve(jobs_.size());
    for (const Job& j : jobs_) {
      JobOutcome o;
      o.job_id = trace_.jobs[j.trace_index].job_id;
      o.submit_ms = j.submit_ms;
      o.first_start_ms = j.first_start_ms;
      o.end_ms = j.end_ms;
      o.preemptions = j.preemptions;
      o.preemptible = j.preemptible;
      if (j.preemptible) ++m.preemptible_jobs;
      o.rejected = j.rejected;
      o.reject_reason = j.reject_reason;
      res.jobs.push_back(std::move(o));
      if (j.rejected || j.end_ms < 0) continue;
      first_submit = std::min(first_submit, j.submit_ms);
      last_end = std::max(last_end, j.end_ms);
      jct_sum += j.end_ms - j.submit_ms;
      queue_sum += j.first_start_ms - j.submit_ms;
      wait_sum += j.end_ms - j.submit_ms - trace_.jobs[j.trace_index].duration_s * 1000;
      queue_ms.push_back(j.first_start_ms - j.submit_ms);
      ProjectSums& ps = projects[trace_.jobs[j.trace_index].queue];
      ++ps.completed;
      ps.jct_ms += j.end_ms - j.submit_ms;
      ps.queue_ms += j.first_start_ms - j.submit_ms;
      ps.max_queue_ms = std::max(ps.max_queue_ms, j.first_start_ms - j.submit_ms);
      ps.preemptions += j.preemptions;
    }
    for (const auto& [name, ps] : projects) {
      ProjectMetrics pm;
      pm.project = name;
      pm.completed = ps.completed;
      const double n = static_cast<double>(ps.completed);
      pm.avg_jct_s = static_cast<double>(ps.jct_ms) / n / 1000.0;
      pm.avg_queue_s = static_cast<double>(ps.queue_ms) / n / 1000.0;
      pm.max_queue_s = static_cast<double>(ps.max_queue_ms) / 1000.0;
      pm.preemptions = ps.preemptions;
      m.projects.push_back(std::move(pm));
    }
    std::sort(queue_ms.begin(), queue_ms.end());
    if (completed_ > 0) {
      const double n = static_cast<double>(completed_);
      m.avg_jct_s = static_cast<double>(jct_sum) / n / 1000.0;
      m.avg_queue_s = static_cast<double>(queue_sum) / n / 1000.0;
      m.avg_wait_s = static_cast<double>(wait_sum) / n / 1000.0;
      m.p50_queue_s = static_cast<double>(PercentileOfSorted(queue_ms, 50)) / 1000.0;
      m.p99_queue_s = static_cast<double>(PercentileOfSorted(queue_ms, 99)) / 1000.0;
      m.max_queue_s = static_cast<double>(queue_ms.back()) / 1000.0;
      const int64_t makespan_ms = last_end - first_submit;
      m.makespan_s = static_cast<double>(makespan_ms) / 1000.0;
      m.busy_gpu_s = busy_gpu_ms_ / 1000;
      if (makespan_ms > 0) {
        m.utilisation = static_cast<double>(busy_gpu_ms_) /
                        (static_cast<double>(cfg_.cluster.total_gpus()) * static_cast<double>(makespan_ms));
      }
    }
    return res;
  }

  const Trace& trace_;
  sched::Scheduler& sched_;
  const SimConfig& cfg_;

  std::vector<Job> jobs_;  // trace order (sorted by submit time)
  std::unordered_map<std::string, uint32_t> job_by_id_;
  std::unordered_map<std::string, uint32_t> node_by_name_;
  std::unordered_map<std::string, std::pair<uint32_t, uint32_t>> gpu_by_uuid_;
  std::vector<std::string> key_user_, key_queue_;
  std::vector<int64_t> predicted_s_;  // per key
  sched::RuntimePredictor estimates_;
  bool predictions_dirty_ = false;

  sched::ClusterSnapshot snapshot_;
  // The scheduler's index of snapshot_, kept in step with it (Allocate/Release) so that rounds start
  // from a copy instead of indexing the snapshot again.
  std::optional<sched::ClusterState> cluster_;
  std::vector<uint32_t> running_;  // parallel to snapshot_.running
  // Queued jobs, indexed in the scheduler's order (Scheduler::queue_order()), so a round only
  // touches the jobs it looks at.
  sched::JobQueue queue_;
  std::vector<uint32_t> queue_key_;  // by queue handle: the job's key (for estimates)
  // The last scheduler call started, preempted and rejected nothing, and no job has finished since.
  bool unchanged_since_idle_round_ = false;
  int64_t next_prediction_refresh_ms_ = 0;
  std::priority_queue<Completion, std::vector<Completion>, std::greater<>> completions_;
  int64_t free_whole_gpus_ = 0;

  int64_t completed_ = 0, rejected_ = 0, preemptions_ = 0, schedule_calls_ = 0;
  int64_t busy_gpu_ms_ = 0;
  int64_t last_progress_ = 0;
};

}  // namespace

int64_t PercentileOfSorted(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  auto rank = static_cast<int64_t>(std::ceil(p * n / 100.0));
  rank = std::clamp<int64_t>(rank, 1, static_cast<int64_t>(sorted.size()));
  return sorted[static_cast<size_t>(rank - 1)];
}

bool PreemptibleJob(std::string_view job_id, int64_t permille, uint64_t seed) {
  if (permille >= 1000) return true;
  if (permille <= 0) return false;
  uint64_t h = 14695981039346656037ull;  // FNV-1a, 64-bit
  const auto mix = [&h](uint8_t byte) {
    h ^= byte;
    h *= 1099511628211ull;
  };
  for (int k = 0; k < 8; ++k) mix(static_cast<uint8_t>(seed >> (8 * k)));
  for (char c : job_id) mix(static_cast<uint8_t>(c));
  return static_cast<int64_t>(h % 1000) < permille;
}

bool PolicyNeverPreempts(std::string_view policy) {
  return policy == "fifo" || policy == "sjf" || policy == "backfill" || policy == "fair-share";
}

Result<SimResult> Simulate(const Trace& trace, sched::Scheduler& scheduler, const SimConfig& config) {
  Engine engine(trace, scheduler, config);
  return engine.Run();
}

}  // namespace fastgpu::sim
