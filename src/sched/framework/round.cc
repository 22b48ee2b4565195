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

Round::Round(const ClusterSnapshot& cluster, const ClusterState* state, const JobQueue& queue,
             const SchedulerOptions& options, PlacementKind kind)
    : cluster_(cluster),
      queue_(queue),
      options_(options),
      kind_(kind),
      state_(state != nullptr ? ClusterState(*state) : ClusterState(cluster)),
      shapes_(queue.shape_count()),
      decided_(queue.handle_limit(), 0) {
  out_.binds.reserve(std::min<size_t>(queue.size(), static_cast<size_t>(state_.total_usable_gpus()) * 4 + 16));
  limit_ = options.max_pending_reasons < 0 ? -1 : options.max_pending_reasons;
  out_.pending.reserve(limit_ < 0 ? queue.size() : std::min<size_t>(queue.size(), static_cast<size_t>(limit_) + 16));
  for (const RunningJob& r : cluster.running) any_stopping_ = any_stopping_ || r.stopping;
  if (!cluster.reservations.empty()) InitReservations();
}

void Round::InitReservations() {
  for (const ReservationView& rv : cluster_.reservations) {
    if (rv.gpus <= 0 || rv.end <= cluster_.now || rv.end <= rv.start) continue;
    Held h;
    h.view = &rv;
    h.started = rv.start <= cluster_.now;
    h.matches.assign(static_cast<size_t>(state_.num_classes()), 0);
    bool any = false;
    for (int c = 0; c < state_.num_classes(); ++c) {
      const bool m = rv.gpu_type.empty() || state_.gpu_class(c).type == rv.gpu_type;
      h.matches[static_cast<size_t>(c)] = m ? 1 : 0;
      any = any || m;
    }
    if (!any) continue;
    for (const RunningJob& rj : cluster_.running) {
      if (rj.project != rv.project) continue;
      for (const GpuShare& sh : rj.shares) {
        const int n = state_.FindNode(sh.node);
        const int g = n < 0 ? -1 : state_.FindGpu(n, sh.gpu_uuid);
        if (g >= 0 && h.matches[static_cast<size_t>(state_.gpu(g).cls)]) ++h.used;
      }
    }
    held_.push_back(std::move(h));
  }
  if (held_.empty()) return;
  class_free_.assign(static_cast<size_t>(state_.num_classes()), 0);
  for (int g = 0; g < state_.num_gpus(); ++g) {
    const ClusterState::Gpu& gpu = state_.gpu(g);
    if (gpu.usable && gpu.free_milli == kMilliPerGpu) ++class_free_[static_cast<size_t>(gpu.cls)];
  }
}

bool Round::Applies(const Held& held, const JobRequest& job) const {
  if (job.project == held.view->project) return false;  // never held back by its own reservation
  if (held.started) return true;
  // Backfill before the window: a job whose runtime limit ends before it starts may use the GPUs.
  return !(job.runtime_limit_s > 0 && cluster_.now + job.runtime_limit_s * 1000 <= held.view->start);
}

int64_t Round::FreeMatching(const Held& held) const {
  int64_t free = 0;
  for (size_t c = 0; c < class_free_.size(); ++c) {
    if (held.matches[c]) free += class_free_[c];
  }
  return free;
}

const Round::Held* Round::Blocking(const JobRequest& job, const Placement& p) const {
  for (const Held& h : held_) {
    const int64_t unfilled = h.view->gpus - h.used;
    if (unfilled <= 0 || !Applies(h, job)) continue;
    int64_t take = 0;
    for (int g : p.gpus) {
      const ClusterState::Gpu& gpu = state_.gpu(g);
      if (h.matches[static_cast<size_t>(gpu.cls)] && gpu.free_milli == kMilliPerGpu) ++take;
    }
    if (take > 0 && FreeMatching(h) - take < unfilled) return &h;
  }
  return nullptr;
}

std::string Round::ReservedReason(const Held& held, const JobRequest& job) const {
  const ReservationView& rv = *held.view;
  std::string r = "waiting: " + std::to_string(rv.gpus) + (rv.gpu_type.empty() ? "" : " " + rv.gpu_type) +
                  " GPUs are reserved for project " + rv.project + " from " + FormatTimestamp(rv.start) + " to " +
                  FormatTimestamp(rv.end);
  if (!held.started) {
    r += job.runtime_limit_s > 0 ? "; this job's runtime limit ends after the window opens"
                                 : "; only a job whose runtime limit ends before then may use them";
  }
  return r;
}

bool Round::ReservedSlow(Handle i, Placement* p) {
  const JobRequest& job = queue_.job(i);
  const Held* blocking = Blocking(job, *p);
  if (blocking == nullptr) return false;
  // Another placement on GPU types no reservation needs (for jobs that accept several types).
  const std::vector<int>& all = Classes(i);
  std::vector<int> classes;
  for (int c : all) {
    const bool needed = std::any_of(held_.begin(), held_.end(), [&](const Held& h) {
      return h.matches[static_cast<size_t>(c)] && h.view->gpus > h.used && Applies(h, job);
    });
    if (!needed) classes.push_back(c);
  }
  if (!classes.empty() && classes.size() < all.size()) {
    Placement alt;
    if (FindPlacement(state_, job, classes, kind_, {}, &alt) && Blocking(job, alt) == nullptr) {
      *p = std::move(alt);
      return false;
    }
  }
  PendingWith(i, want_reason() ? ReservedReason(*blocking, job) : std::string());
  return true;
}

bool Round::AdmitSlow(Handle i) {
  // Only the compact Info is read unless something has to be checked or said.
  const JobQueue::Info& info = queue_.info(i);
  const Status& capacity = ShapeCapacity(info.shape);
  if (!capacity.ok()) {
    PendingWith(i, capacity.message(), true);
    return false;
  }
  if (info.start_after > cluster_.now) {
    PendingWith(i, want_reason() ? "waiting: start window opens at " + FormatTimestamp(info.start_after) : "");
    return false;
  }
  if (info.finish_before > 0) {
    Status st = CheckDeadline(queue_.job(i), cluster_.now);
    if (!st.ok()) {
      PendingWith(i, st.message(), true);
      return false;
    }
  }
  return true;
}

const Status& Round::ShapeCapacity(uint32_t shape) {
  ShapeMemo& m = shapes_[shape];
  if (m.feasible == 0) {
    m.status = state_.capacity().Check(queue_.shape_request(shape));
    m.feasible = m.status.ok() ? 1 : -1;
  }
  return m.status;
}

const std::vector<int>& Round::ShapeClasses(uint32_t shape) {
  ShapeMemo& m = shapes_[shape];
  if (!m.classes_known) {
    const JobRequest& j = queue_.shape_request(shape);
    state_.MatchClasses(j.gpu_type, j.memory_mib, j.node_labels, &m.classes);
    m.classes_known = true;
  }
  return m.classes;
}

bool Round::FindShape(uint32_t shape, Placement* p) {
  // A shape that did not fit does not fit again until the state changes.
  ShapeMemo& m = shapes_[shape];
  if (m.no_fit_version == state_.version() + 1) return false;
  if (FindPlacement(state_, queue_.shape_request(shape), ShapeClasses(shape), kind_, {}, p)) return true;
  m.no_fit_version = state_.version() + 1;
  return false;
}

bool Round::Find(Handle i, Placement* p, std::span<const int> exclude) {
  if (exclude.empty()) return FindShape(queue_.info(i).shape, p);
  return FindPlacement(state_, queue_.job(i), Classes(i), kind_, exclude, p);
}

// A migrated job prefers other GPUs than those it left (JobRequest::avoid_gpus) when they fit: placements are found
// per shape, so its own preference is applied when it is bound.
static const Placement& Preferred(const ClusterState& state, const JobRequest& job, std::span<const int> classes,
                                  PlacementKind kind, const Placement& found, Placement* other) {
  if (job.avoid_gpus.empty()) return found;
  *other = found;
  return AvoidGpus(state, job, classes, kind, other) ? *other : found;
}

void Round::Bind(Handle i, const Placement& found) {
  Placement other;
  const Placement& p = Preferred(state_, queue_.job(i), Classes(i), kind_, found, &other);
  if (!held_.empty()) {
    const JobRequest& job = queue_.job(i);
    for (int g : p.gpus) {
      const ClusterState::Gpu& gpu = state_.gpu(g);
      const size_t c = static_cast<size_t>(gpu.cls);
      if (gpu.usable && gpu.free_milli == kMilliPerGpu) --class_free_[c];
      for (Held& h : held_) {
        if (h.matches[c] && h.view->project == job.project) ++h.used;
      }
    }
  }
  bound_.push_back(i);
  Commit(state_, p);
  out_.binds.push_back(MakeBind(state_, queue_.job(i), p));
  Decide(i);
}

bool Round::TryBind(Handle i) {
  Placement p;
  if (!Find(i, &p)) return false;
  if (Reserved(i, &p)) return true;
  Bind(i, p);
  return true;
}

void Round::PendingWith(Handle i, std::string_view reason, bool never_fits) {
  Decide(i);
  if (!never_fits) {
    if (!want_reason()) {
      ++suppressed_;
      return;
    }
    ++waiting_reported_;
  }
  out_.pending.push_back(sched::Pending{queue_.job(i).job_id, std::string(reason), never_fits});
}

void Round::PendingNoFitReason(Handle i, std::string_view suffix) {
  if (reasons_version_ != state_.version()) {
    reasons_.clear();
    reasons_version_ = state_.version();
  }
  const ShapeKey key = ShapeKey::Of(queue_.job(i));
  auto it = reasons_.find(key);
  if (it == reasons_.end()) it = reasons_.emplace(key, NoFitReason(state_, queue_.job(i), Classes(i))).first;
  if (suffix.empty()) {
    PendingWith(i, it->second);
  } else {
    std::string r = it->second;
    r += suffix;
    PendingWith(i, r);
  }
}

void Round::PendingRest(std::string_view reason) {
  // Insertion order; once no more reasons are wanted the rest are only counted.
  for (Handle i = queue_.first(); i != JobQueue::kNone && want_reason(); i = queue_.next(i)) {
    if (!decided_[i]) PendingWith(i, reason);
  }
  suppressed_ += static_cast<int64_t>(queue_.size() - decided_count_);
  decided_count_ = queue_.size();
}

bool Round::ComputeNothingCanStart(bool held_usable, uint64_t version) {
  const size_t h = held_usable ? 1 : 0;
  const bool any_fraction = queue_.any_fraction();
  const int min_whole_gpus = queue_.min_whole_gpus();
  bool nothing = true;
  if (held_usable) {
    if (any_fraction && (state_.free_whole_gpus() > 0 || state_.partly_free_gpus() > 0)) nothing = false;
    if (nothing && min_whole_gpus <= state_.LargestWholeBlock()) nothing = false;
  } else {
    int most = 0;
    bool shared = false;
    for (int c = 0; c < state_.num_classes(); ++c) {
      most = std::max(most, state_.MaxWholeFree(c));
      shared = shared || !state_.Shared(c).empty();
    }
    if (any_fraction && (most > 0 || shared)) nothing = false;
    if (nothing && min_whole_gpus <= most) nothing = false;
  }
  nothing_version_[h] = version;
  nothing_[h] = nothing;
  return nothing;
}

bool Round::CanStop(int64_t max_rank, std::span<const int64_t> victim_rank) {
  if (!CanStop()) return false;
  if (cluster_.running.empty() || !preemption_allowed()) return true;
  if (attempts_ >= 4 * options_.max_preemptors_per_round + 16) return true;
  ScanVictims(victim_rank);
  return !any_victim_ || min_victim_rank_ >= max_rank;
}

int64_t Round::Weight(std::string_view project) const {
  auto w = options_.project_weights.find(std::string(project));
  return w != options_.project_weights.end() && w->second > 0 ? w->second : 1;
}

uint32_t Round::ProjectId(std::string_view project) {
  auto [it, inserted] = project_ids_.try_emplace(project, static_cast<uint32_t>(projects_.size()));
  if (inserted) projects_.push_back(ProjectHeld{0, 0, Weight(project)});
  return it->second;
}

void Round::InitProjects() {
  projects_ready_ = true;
  const auto& running = cluster_.running;
  running_project_.resize(running.size());
  std::string_view last;
  uint32_t id = 0;
  for (size_t r = 0; r < running.size(); ++r) {
    const RunningJob& rj = running[r];
    // Running jobs of one project often come together.
    if (r == 0 || !SameText(rj.project, last)) {
      id = ProjectId(rj.project);
      last = rj.project;
    }
    running_project_[r] = id;
    for (const GpuShare& sh : rj.shares) projects_[id].milli += sh.milli;
  }
  for (const auto& [name, jobs] : queue_.project_jobs()) ProjectId(name);
  total_weight_ = 0;
  for (const ProjectHeld& p : projects_) total_weight_ += p.weight;
}

bool Round::AtFairShare(uint32_t project) {
  while (bound_project_.size() < bound_.size()) bound_project_.push_back(ProjectId(queue_.job(bound_[bound_project_.size()]).project));
  ProjectHeld& ph = projects_[project];
  for (; ph.bound_seen < bound_.size(); ++ph.bound_seen) {
    if (bound_project_[ph.bound_seen] != project) continue;
    const JobRequest& j = queue_.job(bound_[ph.bound_seen]);
    ph.milli += static_cast<int64_t>(j.milli_per_gpu) * j.gpus * std::max(j.nodes, 1);
  }
  // held / 1000 >= usable GPUs x weight / total weight
  return ph.milli * total_weight_ >= state_.total_usable_gpus() * kMilliPerGpu * ph.weight;
}

bool Round::VictimsCutIntoReservation(Handle i, const std::vector<int>& victims) {
  const JobRequest& job = queue_.job(i);
  const std::vector<int>& classes = Classes(i);
  for (const Held& h : held_) {
    const int64_t unfilled = h.view->gpus - h.used;
    if (unfilled <= 0 || !Applies(h, job)) continue;
    if (std::none_of(classes.begin(), classes.end(), [&](int c) { return h.matches[static_cast<size_t>(c)] != 0; })) {
      continue;
    }
    // The job may take reserved GPUs: preempt only if the GPUs freed leave the reservation covered.
    int64_t freed = 0;
    for (int v : victims) {
      for (const RunningIndex::Share& sh : running_index_->shares(v)) {
        if (sh.milli == kMilliPerGpu && h.matches[static_cast<size_t>(state_.gpu(sh.gpu).cls)]) ++freed;
      }
    }
    const int64_t need = IsFraction(job) ? 1 : static_cast<int64_t>(job.gpus) * std::max(job.nodes, 1);
    if (FreeMatching(h) + freed - need < unfilled) return true;
  }
  return false;
}

void Round::ScanVictims(std::span<const int64_t> victim_rank) {
  if (victims_scanned_) return;
  victims_scanned_ = true;
  for (size_t r = 0; r < cluster_.running.size(); ++r) {
    const RunningJob& rj = cluster_.running[r];
    if (!rj.preemptible || rj.stopping) continue;
    min_victim_rank_ = any_victim_ ? std::min(min_victim_rank_, victim_rank[r]) : victim_rank[r];
    any_victim_ = true;
  }
}

bool Round::preemption_allowed() const {
  return options_.preemption && !any_stopping_ && preemptors_ < options_.max_preemptors_per_round;
}

bool Round::TryPreempt(Handle i, int64_t rank, std::span<const int64_t> victim_rank,
                       const std::function<std::string()>& why) {
  if (cluster_.running.empty() || !preemption_allowed()) return false;
  // Each attempt scans the running jobs; bound the work per round.
  if (++attempts_ > 4 * options_.max_preemptors_per_round + 16) return false;
  // No running job ranks below this one: nothing to scan.
  ScanVictims(victim_rank);
  if (!any_victim_ || min_victim_rank_ >= rank) return false;
  // The outcome depends on the shape, the rank, the state and the victims taken so far (taking
  // victims blocks nodes, which changes the state version): failures are memoised.
  // (When the cross-project rule left some victims out it depends on the job's project too.)
  ShapeMemo& m = shapes_[queue_.info(i).shape];
  const uint64_t version = state_.version() + 1;
  if (m.no_victims_version == version && m.no_victims_rank == rank) return false;
  const JobRequest& job = queue_.job(i);
  const uint64_t shape_key = static_cast<uint64_t>(queue_.info(i).shape) << 32;
  int64_t job_project = -1;  // its project id, once the cross-project rule is looked at
  if (!no_victims_by_project_.empty()) {
    job_project = ProjectId(job.project);
    auto f = no_victims_by_project_.find(shape_key | static_cast<uint64_t>(job_project));
    if (f != no_victims_by_project_.end() && f->second == std::pair<uint64_t, int64_t>{version, rank}) return false;
  }
  const auto& running = cluster_.running;
  if (preempted_.empty()) preempted_.assign(running.size(), 0);
  std::vector<char> eligible(running.size(), 0);
  bool any = false;
  bool job_specific = false;
  int at_share = -1;  // the job's project holds its fair share (1), not (0), not known yet (-1)
  for (size_t r = 0; r < running.size(); ++r) {
    const RunningJob& rj = running[r];
    if (!rj.preemptible || rj.stopping || preempted_[r] || victim_rank[r] >= rank) continue;
    const UnixMillis since = std::max(rj.started_at, rj.last_preempted_at);
    if (cluster_.now - since < options_.min_runtime_ms) continue;
    if (!options_.preempt_across_projects) {
      if (!projects_ready_) InitProjects();
      if (job_project < 0) job_project = ProjectId(job.project);
    }
    if (!options_.preempt_across_projects && running_project_[r] != static_cast<uint32_t>(job_project)) {
      if (at_share < 0) at_share = AtFairShare(static_cast<uint32_t>(job_project)) ? 1 : 0;
      if (at_share == 1) {
        job_specific = true;
        continue;
      }
    }
    eligible[r] = 1;
    any = true;
  }
  const auto fail = [&] {
    if (job_specific) {
      no_victims_by_project_[shape_key | static_cast<uint64_t>(job_project)] = {version, rank};
    } else {
      m.no_victims_version = version;
      m.no_victims_rank = rank;
    }
    return false;
  };
  if (!any) return fail();
  if (!running_index_) running_index_ = std::make_unique<RunningIndex>(state_);
  std::vector<int> victims;
  std::vector<int> nodes;
  if (!FindVictims(state_, *running_index_, job, Classes(i), eligible, victim_rank, &victims, &nodes)) {
    return fail();
  }
  if (!held_.empty() && VictimsCutIntoReservation(i, victims)) return false;
  std::string names;
  const std::string because = " (" + why() + ")";
  for (int v : victims) {
    const RunningJob& rj = running[static_cast<size_t>(v)];
    preempted_[static_cast<size_t>(v)] = 1;
    out_.preemptions.push_back(Preempt{rj.job_id, "preempted by " + queue_.job(i).job_id + because});
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
