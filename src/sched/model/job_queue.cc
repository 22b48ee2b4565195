#include "sched/model/job_queue.h"

#include <algorithm>
#include <bit>
#include <cassert>

namespace fastgpu::sched {

int64_t EstimatedRuntimeS(const JobRequest& job, int64_t fallback) {
  if (job.predicted_runtime_s > 0) {
    return job.runtime_limit_s > 0 ? std::min(job.predicted_runtime_s, job.runtime_limit_s) : job.predicted_runtime_s;
  }
  if (job.runtime_limit_s > 0) return job.runtime_limit_s;
  return fallback;
}

int64_t QueueOrder::BandOf(const JobRequest& job) const {
  switch (kind) {
    case Kind::kSubmit:
      return 0;
    case Kind::kPriority:
    case Kind::kProjectPriority:
      return -static_cast<int64_t>(job.priority);
    case Kind::kEstimate:
      return 0;
    case Kind::kAttained:
    case Kind::kProjectAttained: {
      int64_t q = 0;
      for (int64_t t : thresholds_gpu_ms) {
        if (job.attained_gpu_ms >= t) ++q;
      }
      if (kind == Kind::kAttained) return q;
      return -static_cast<int64_t>(job.priority) * kPriorityStride + q * kSizeClasses + SizeClass(job);
    }
  }
  return 0;
}

int64_t QueueOrder::SizeClass(const JobRequest& job) {
  if (job.milli_per_gpu < kMilliPerGpu) return 0;
  const int64_t gpus = std::max<int64_t>(1, static_cast<int64_t>(job.gpus) * std::max(job.nodes, 1));
  return std::min<int64_t>(std::bit_width(static_cast<uint64_t>(gpus)), kSizeClasses - 1);
}

JobQueue::JobQueue(QueueOrder order) : order_(std::move(order)) {}

JobQueue::JobQueue(QueueOrder order, std::span<const JobRequest> jobs) : order_(std::move(order)) {
  slots_.reserve(jobs.size());
  for (const JobRequest& j : jobs) NewSlot(j);
  IndexAll(static_cast<Handle>(jobs.size()));
}

JobQueue JobQueue::View(QueueOrder order, std::span<const JobRequest> jobs) {
  JobQueue q(std::move(order));
  q.view_ = jobs.data();
  q.size_ = jobs.size();
  q.first_ = jobs.empty() ? kNone : 0;
  q.last_ = jobs.empty() ? kNone : static_cast<Handle>(jobs.size() - 1);
  q.info_.resize(jobs.size());
  q.IndexAll(static_cast<Handle>(jobs.size()));
  return q;
}

void JobQueue::IndexAll(Handle n) {
  for (Handle h = 0; h < n; ++h) {
    const JobRequest& job = this->job(h);
    info_[h] = Info{ShapeOf(job), job.start_after, job.finish_before, job.runtime_limit_s, job.predicted_runtime_s};
    Count(h, +1);
    Band& band = bands_[BandKey{std::string(order_.GroupOf(job)), order_.BandOf(job)}];
    band.entries_.push_back(MakeEntry(h));
    NoteKnownRuntime(band.entries_.back().known_runtime_s);
  }
  for (auto& [key, band] : bands_) {
    auto& e = band.entries_;
    // Queues usually come in submit order already: one linear check then.
    bool sorted = true;
    for (size_t i = 1; i < e.size() && sorted; ++i) sorted = Before(e[i - 1], e[i]);
    if (!sorted) std::sort(e.begin(), e.end(), [this](const Entry& a, const Entry& b) { return Before(a, b); });
  }
}

JobQueue::JobQueue(QueueOrder order, const JobQueue& other)
    : JobQueue(std::move(order), std::span<const JobRequest>(other.Jobs())) {}

std::vector<JobRequest> JobQueue::Jobs() const {
  std::vector<JobRequest> out;
  out.reserve(size_);
  for (Handle h = first_; h != kNone; h = next(h)) out.push_back(job(h));
  return out;
}

bool JobQueue::Before(const Entry& a, const Entry& b) const {
  if (a.key != b.key) return a.key < b.key;
  if (a.submitted_at != b.submitted_at) return a.submitted_at < b.submitted_at;
  const std::string& ia = job(a.handle).job_id;
  const std::string& ib = job(b.handle).job_id;
  if (ia != ib) return ia < ib;
  return seq(a.handle) < seq(b.handle);
}

JobQueue::Entry JobQueue::MakeEntry(Handle h) const {
  const JobRequest& job = this->job(h);
  uint32_t bits = info_[h].shape;
  if (job.start_after != 0 || job.finish_before != 0) bits |= Entry::kSpecial;
  return Entry{order_.KeyOf(job), job.submitted_at, h, bits,
               job.runtime_limit_s > 0 ? job.runtime_limit_s : job.predicted_runtime_s};
}

JobQueue::Entry* JobQueue::FindEntry(Band& band, Handle h) {
  auto& e = band.entries_;
  auto pos = std::lower_bound(e.begin() + static_cast<std::ptrdiff_t>(band.head_), e.end(), Probe(h),
                              [this](const Entry& a, const Entry& b) { return Before(a, b); });
  assert(pos != e.end() && pos->handle == h);
  return &*pos;
}

bool JobQueue::SetPrediction(Entry& e, int64_t seconds) {
  JobRequest& job = slots_[e.handle].job;
  job.predicted_runtime_s = seconds;
  info_[e.handle].predicted_runtime_s = seconds;
  if (job.runtime_limit_s <= 0) e.known_runtime_s = seconds;
  NoteKnownRuntime(e.known_runtime_s);
  const int64_t key = order_.KeyOf(job);
  if (key == e.key) return false;
  e.key = key;
  return true;
}

void JobQueue::SortBand(Band& band) {
  std::sort(band.entries_.begin() + static_cast<std::ptrdiff_t>(band.head_), band.entries_.end(),
            [this](const Entry& a, const Entry& b) { return Before(a, b); });
}

uint32_t JobQueue::ShapeOf(const JobRequest& job) {
  auto it = shapes_.find(
      ShapeTuple{job.gpu_type, job.gpus, job.nodes, job.milli_per_gpu, job.memory_mib, LabelsRef{&job.node_labels}});
  if (it != shapes_.end()) return it->second;
  JobRequest& r = shape_requests_.emplace_back();
  r.gpu_type = job.gpu_type;
  r.node_labels = job.node_labels;
  r.gpus = job.gpus;
  r.nodes = job.nodes;
  r.milli_per_gpu = job.milli_per_gpu;
  r.memory_mib = job.memory_mib;
  const auto id = static_cast<uint32_t>(shapes_.size());
  shapes_.emplace(ShapeTuple{r.gpu_type, r.gpus, r.nodes, r.milli_per_gpu, r.memory_mib, LabelsRef{&r.node_labels}}, id);
  shape_jobs_.push_back(0);
  return id;
}

JobQueue::Handle JobQueue::NewSlot(JobRequest job) {
  Handle h;
  if (!free_.empty()) {
    h = free_.back();
    free_.pop_back();
  } else {
    h = static_cast<Handle>(slots_.size());
    slots_.emplace_back();
    info_.emplace_back();
  }
  Slot& s = slots_[h];
  s.job = std::move(job);
  s.seq = next_seq_++;
  s.live = true;
  s.next = kNone;
  s.prev = last_;
  if (last_ != kNone) {
    slots_[last_].next = h;
  } else {
    first_ = h;
  }
  last_ = h;
  ++size_;
  return h;
}

void JobQueue::Count(Handle h, int delta) {
  const JobRequest& job = this->job(h);
  shape_jobs_[info_[h].shape] += delta;
  submitted_sum_ms_ += delta * job.submitted_at;
  if (job.finish_before > 0) deadline_jobs_ += delta;
  if (view_ == nullptr) {
    auto it = project_jobs_.find(std::string_view(job.project));
    if (it == project_jobs_.end()) it = project_jobs_.emplace(job.project, 0).first;
    it->second += delta;
    if (it->second == 0) project_jobs_.erase(it);
  }
  if (job.milli_per_gpu < kMilliPerGpu) {
    fractions_ += delta;
    return;
  }
  auto it = whole_gpus_.try_emplace(job.gpus, 0).first;
  it->second += delta;
  if (it->second == 0) whole_gpus_.erase(it);
}

const std::map<std::string, int64_t, std::less<>>& JobQueue::project_jobs() const {
  if (view_ != nullptr && !project_jobs_counted_) {
    project_jobs_counted_ = true;
    for (Handle h = 0; h < size_; ++h) {
      const std::string& project = view_[h].project;
      auto it = project_jobs_.find(std::string_view(project));
      if (it == project_jobs_.end()) it = project_jobs_.emplace(project, 0).first;
      ++it->second;
    }
  }
  return project_jobs_;
}

JobQueue::Handle JobQueue::Add(JobRequest job) {
  assert(view_ == nullptr);
  const Handle h = NewSlot(std::move(job));
  Index(h);
  return h;
}

void JobQueue::Remove(Handle h) {
  assert(view_ == nullptr && contains(h));
  Unindex(h);
  Slot& s = slots_[h];
  if (s.prev != kNone) {
    slots_[s.prev].next = s.next;
  } else {
    first_ = s.next;
  }
  if (s.next != kNone) {
    slots_[s.next].prev = s.prev;
  } else {
    last_ = s.prev;
  }
  s.live = false;
  s.prev = s.next = kNone;
  s.job = JobRequest{};
  free_.push_back(h);
  --size_;
}

void JobQueue::SetPredictedRuntime(Handle h, int64_t seconds) {
  assert(view_ == nullptr);
  if (info_[h].predicted_runtime_s == seconds) return;
  const JobRequest& job = slots_[h].job;
  auto it = bands_.find(BandKey{std::string(order_.GroupOf(job)), order_.BandOf(job)});
  assert(it != bands_.end());
  Band& band = it->second;
  Entry* e = FindEntry(band, h);
  if (!SetPrediction(*e, seconds)) return;
  // The key changed (kEstimate): move the entry to its new place.
  const Entry moved = *e;
  auto& v = band.entries_;
  v.erase(v.begin() + (e - v.data()));
  v.insert(std::lower_bound(v.begin() + static_cast<std::ptrdiff_t>(band.head_), v.end(), moved,
                            [this](const Entry& a, const Entry& b) { return Before(a, b); }),
           moved);
}

void JobQueue::Index(Handle h) {
  const JobRequest& job = slots_[h].job;
  info_[h] = Info{ShapeOf(job), job.start_after, job.finish_before, job.runtime_limit_s, job.predicted_runtime_s};
  Count(h, +1);
  Band& band = bands_[BandKey{std::string(order_.GroupOf(job)), order_.BandOf(job)}];
  auto& e = band.entries_;
  const Entry entry = MakeEntry(h);
  NoteKnownRuntime(entry.known_runtime_s);
  auto pos = std::lower_bound(e.begin() + static_cast<std::ptrdiff_t>(band.head_), e.end(), entry,
                              [this](const Entry& a, const Entry& b) { return Before(a, b); });
  if (pos == e.begin() + static_cast<std::ptrdiff_t>(band.head_) && band.head_ > 0) {
    e[--band.head_] = entry;  // in front of the band: reuse the gap left by removals
  } else {
    e.insert(pos, entry);
  }
}

void JobQueue::Unindex(Handle h) {
  const JobRequest& job = slots_[h].job;
  Count(h, -1);
  auto it = bands_.find(BandKey{std::string(order_.GroupOf(job)), order_.BandOf(job)});
  assert(it != bands_.end());
  Band& band = it->second;
  auto& e = band.entries_;
  auto pos = std::lower_bound(e.begin() + static_cast<std::ptrdiff_t>(band.head_), e.end(), Probe(h),
                              [this](const Entry& a, const Entry& b) { return Before(a, b); });
  assert(pos != e.end() && pos->handle == h);
  if (pos == e.begin() + static_cast<std::ptrdiff_t>(band.head_)) {
    ++band.head_;  // the front of a band leaves most often (fifo): no shifting
  } else {
    e.erase(pos);
  }
  if (band.size() == 0) {
    bands_.erase(it);
  } else if (band.head_ >= 64 && band.head_ * 2 >= e.size()) {
    e.erase(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(band.head_));
    band.head_ = 0;
  }
}

}  // namespace fastgpu::sched
