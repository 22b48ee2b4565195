#include "sched/framework/round.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace fastgpu::sched {

PlacementKind ParsePlacement(const std::string& name, bool* ok) {
  *ok = true;
  if (name == "best-fit" || name == "consolidate" || name.empty()) return PlacementKind::kBestFit;
  if (name == "spread") return PlacementKind::kSpread;
  *ok = false;
  return PlacementKind::kBestFit;
}

int64_t EstimatedRuntimeS(const JobRequest& job, int64_t fallback) {
  if (job.predicted_runtime_s > 0) {
    return job.runtime_limit_s > 0 ? std::min(job.predicted_runtime_s, job.runtime_limit_s) : job.predicted_runtime_s;
  }
  if (job.runtime_limit_s > 0) return job.runtime_limit_s;
  return fallback;
}

Round::Round(const ClusterSnapshot& cluster, std::span<const JobRequest> queue, const SchedulerOptions& options,
             PlacementKind kind)
    : cluster_(cluster), queue_(queue), options_(options), kind_(kind), state_(cluster), decided_(queue.size(), 0) {
  out_.binds.reserve(std::min<size_t>(queue.size(), static_cast<size_t>(state_.total_usable_gpus()) * 4 + 16));
  limit_ = options.max_pending_reasons < 0 ? -1 : options.max_pending_reasons;
  out_.pending.reserve(limit_ < 0 ? queue.size() : std::min<size_t>(queue.size(), static_cast<size_t>(limit_) + 16));
  for (const RunningJob& r : cluster.running) any_stopping_ = any_stopping_ || r.stopping;
}

bool Round::Admit(size_t i) {
  const JobRequest& j = queue_[i];
  const ShapeKey key = ShapeKey::Of(j);
  auto it = feasible_.find(key);
  if (it == feasible_.end()) {
    if (!capacity_) capacity_.emplace(cluster_);
    it = feasible_.emplace(key, capacity_->Check(j)).first;
  }
  if (!it->second.ok()) {
    PendingWith(i, it->second.message(), true);
    return false;
  }
  if (j.start_after > cluster_.now) {
    PendingWith(i, "waiting: start window opens at " + FormatTimestamp(j.start_after));
    return false;
  }
  if (j.finish_before > 0) {
    Status st = CheckDeadline(j, cluster_.now);
    if (!st.ok()) {
      PendingWith(i, st.message(), true);
      return false;
    }
  }
  return true;
}

const std::vector<int>& Round::Classes(size_t i) {
  const JobRequest& j = queue_[i];
  ShapeKey key{j.gpu_type, 0, 0, 0, j.memory_mib};
  auto it = classes_.find(key);
  if (it == classes_.end()) {
    std::vector<int> v;
    state_.MatchClasses(j.gpu_type, j.memory_mib, &v);
    it = classes_.emplace(key, std::move(v)).first;
  }
  return it->second;
}

bool Round::Find(size_t i, Placement* p, std::span<const int> exclude) {
  return FindPlacement(state_, queue_[i], Classes(i), kind_, exclude, p);
}

void Round::Bind(size_t i, const Placement& p) {
  Commit(state_, p);
  out_.binds.push_back(MakeBind(state_, queue_[i], p));
  decided_[i] = 1;
}

bool Round::TryBind(size_t i) {
  Placement p;
  if (!Find(i, &p)) return false;
  Bind(i, p);
  return true;
}

void Round::PendingWith(size_t i, std::string_view reason, bool never_fits) {
  decided_[i] = 1;
  if (!never_fits) {
    if (!want_reason()) {
      ++suppressed_;
      return;
    }
    ++waiting_reported_;
  }
  out_.pending.push_back(sched::Pending{queue_[i].job_id, std::string(reason), never_fits});
}

void Round::PendingNoFit(size_t i, std::string_view suffix) {
  if (!want_reason()) {
    decided_[i] = 1;
    ++suppressed_;
    return;
  }
  if (reasons_version_ != state_.version()) {
    reasons_.clear();
    reasons_version_ = state_.version();
  }
  const ShapeKey key = ShapeKey::Of(queue_[i]);
  auto it = reasons_.find(key);
  if (it == reasons_.end()) it = reasons_.emplace(key, NoFitReason(state_, queue_[i], Classes(i))).first;
  if (suffix.empty()) {
    PendingWith(i, it->second);
  } else {
    std::string r = it->second;
    r += suffix;
    PendingWith(i, r);
  }
}

void Round::PendingRest(std::string_view reason) {
  for (size_t i = 0; i < queue_.size(); ++i) {
    if (decided_[i]) continue;
    if (want_reason()) {
      PendingWith(i, reason);
    } else {
      decided_[i] = 1;
      ++suppressed_;
    }
  }
}

bool Round::NothingCanStart(bool held_usable) {
  const size_t h = held_usable ? 1 : 0;
  // Holding nodes does not change what is free in total, only what is indexed.
  const uint64_t version = held_usable ? state_.alloc_version() : state_.version();
  if (nothing_version_[h] == version) return nothing_[h];
  if (!scanned_) {
    scanned_ = true;
    min_whole_gpus_ = std::numeric_limits<int>::max();
    for (const JobRequest& j : queue_) {
      if (IsFraction(j)) {
        any_fraction_ = true;
      } else {
        min_whole_gpus_ = std::min(min_whole_gpus_, j.gpus);
      }
    }
  }
  bool nothing = true;
  if (held_usable) {
    if (any_fraction_ && (state_.free_whole_gpus() > 0 || state_.partly_free_gpus() > 0)) nothing = false;
    if (nothing && min_whole_gpus_ <= state_.LargestWholeBlock()) nothing = false;
  } else {
    int most = 0;
    bool shared = false;
    for (int c = 0; c < state_.num_classes(); ++c) {
      most = std::max(most, state_.MaxWholeFree(c));
      shared = shared || !state_.Shared(c).empty();
    }
    if (any_fraction_ && (most > 0 || shared)) nothing = false;
    if (nothing && min_whole_gpus_ <= most) nothing = false;
  }
  nothing_version_[h] = version;
  nothing_[h] = nothing;
  return nothing;
}

bool Round::CanStop(bool held_usable) {
  return limit_ >= 0 && waiting_reported_ >= limit_ && NothingCanStart(held_usable);
}

bool Round::CanStop(int64_t max_rank, std::span<const int64_t> victim_rank) {
  if (!CanStop()) return false;
  if (cluster_.running.empty() || !preemption_allowed()) return true;
  if (attempts_ >= 4 * options_.max_preemptors_per_round + 16) return true;
  if (!victims_scanned_) {
    victims_scanned_ = true;
    for (size_t r = 0; r < cluster_.running.size(); ++r) {
      const RunningJob& rj = cluster_.running[r];
      if (!rj.preemptible || rj.stopping) continue;
      min_victim_rank_ = any_victim_ ? std::min(min_victim_rank_, victim_rank[r]) : victim_rank[r];
      any_victim_ = true;
    }
  }
  return !any_victim_ || min_victim_rank_ >= max_rank;
}

bool Round::preemption_allowed() const {
  return options_.preemption && !any_stopping_ && preemptors_ < options_.max_preemptors_per_round;
}

bool Round::TryPreempt(size_t i, int64_t rank, std::span<const int64_t> victim_rank, const std::string& why) {
  if (cluster_.running.empty() || !preemption_allowed()) return false;
  // Each attempt scans the running jobs; bound the work per round.
  if (++attempts_ > 4 * options_.max_preemptors_per_round + 16) return false;
  const auto& running = cluster_.running;
  if (preempted_.empty()) preempted_.assign(running.size(), 0);
  std::vector<char> eligible(running.size(), 0);
  bool any = false;
  for (size_t r = 0; r < running.size(); ++r) {
    const RunningJob& rj = running[r];
    if (!rj.preemptible || rj.stopping || preempted_[r] || victim_rank[r] >= rank) continue;
    const UnixMillis since = std::max(rj.started_at, rj.last_preempted_at);
    if (cluster_.now - since < options_.min_runtime_ms) continue;
    eligible[r] = 1;
    any = true;
  }
  if (!any) return false;
  if (!running_index_) running_index_ = std::make_unique<RunningIndex>(state_);
  std::vector<int> victims;
  std::vector<int> nodes;
  if (!FindVictims(state_, *running_index_, queue_[i], Classes(i), eligible, victim_rank, &victims, &nodes)) {
    return false;
  }
  std::string names;
  for (int v : victims) {
    const RunningJob& rj = running[static_cast<size_t>(v)];
    preempted_[static_cast<size_t>(v)] = 1;
    out_.preemptions.push_back(Preempt{rj.job_id, "preempted by " + queue_[i].job_id + " (" + why + ")"});
    if (!names.empty()) names += ", ";
    names += rj.job_id;
  }
  std::string where;
  for (int n : nodes) {
    state_.Block(n);
    if (!where.empty()) where += ", ";
    where += state_.node_view(n).name;
  }
  ++preemptors_;
  PendingWith(i, "waiting: preempting " + names + " to make room on " + where);
  return true;
}

Decisions Round::Take() {
  // Every job gets exactly one verdict.
  PendingRest("waiting: not considered this round");
  out_.unreported = suppressed_;
  return std::move(out_);
}

}  // namespace fastgpu::sched
