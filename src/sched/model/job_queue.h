// A queue of JobRequests indexed the way a policy walks it, kept up to date as jobs come and go.
//
// Scheduler::Schedule(cluster, span) has to put the whole queue in policy order on every call. A caller
// that keeps its queue between calls (the simulator) can keep a JobQueue instead, built with the
// scheduler's queue_order(): adding or removing a job costs O(log n) (plus a short memmove), and a round
// only touches the jobs it looks at. The decisions are the same as for the span of the queue's jobs in
// insertion order. Pure data: no I/O, no clock reads.
//
// Layout: jobs sit in bands keyed by (group, band) (see QueueOrder::BandOf); inside a band they are
// sorted by (QueueOrder::KeyOf, submitted_at, job_id, insertion order), submit order being the
// tie-break every policy ends with. Bands are arrays, so walking one reads memory in order.
#pragma once

#include <cassert>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "sched/model/model.h"

namespace fastgpu::sched {

// Runtime used for estimates: limit, else prediction, else `fallback` (seconds); the smaller of
// limit and prediction when both are set.
int64_t EstimatedRuntimeS(const JobRequest& job, int64_t fallback);

// How a JobQueue groups and sorts its jobs. Every policy's order is "bands in band order (merged by
// a time-dependent rank for priority aging and LAS promotion), band order inside a band".
struct QueueOrder {
  enum class Kind : uint8_t {
    kSubmit,           // one band (fifo, backfill)
    kPriority,         // band = -priority (priority)
    kProjectPriority,  // group = project, band = -priority (fair-share)
    kEstimate,         // one band, key = EstimatedRuntimeS(job, default_runtime_s) (sjf)
    kAttained,         // band = LAS queue of attained_gpu_ms under thresholds_gpu_ms (las)
    kProjectAttained,  // group = project, band = -priority * kPriorityStride + LAS queue as kAttained *
                       // kSizeClasses + SizeClass (fair-las)
  };
  Kind kind = Kind::kSubmit;
  int64_t default_runtime_s = 0;           // kEstimate
  std::vector<int64_t> thresholds_gpu_ms;  // kAttained, kProjectAttained

  bool operator==(const QueueOrder&) const = default;
  int64_t BandOf(const JobRequest& job) const;
  // kProjectAttained: size classes of a request (0 = a fraction, else the bit width of its GPU count:
  // 1 GPU -> 1, 2-3 -> 2, 4-7 -> 3, 8-15 -> 4, ...), and the LAS queue of a band.
  // kProjectAttained bands of one priority lie within kPriorityStride of each other, higher priorities first.
  static constexpr int64_t kSizeClasses = 64;
  static constexpr int64_t kPriorityStride = int64_t{1} << 32;
  static int64_t SizeClass(const JobRequest& job);
  static int64_t LasQueueOfBand(int64_t band) {
    return (band % kPriorityStride + kPriorityStride) % kPriorityStride / kSizeClasses;
  }
  static int64_t PriorityOfBand(int64_t band) {
    const int64_t low = (band % kPriorityStride + kPriorityStride) % kPriorityStride;
    return -((band - low) / kPriorityStride);
  }
  // First sort key inside a band (0 but for kEstimate, whose keys are too many for a band each).
  int64_t KeyOf(const JobRequest& job) const {
    return kind == Kind::kEstimate ? EstimatedRuntimeS(job, default_runtime_s) : 0;
  }
  std::string_view GroupOf(const JobRequest& job) const {
    return kind == Kind::kProjectPriority || kind == Kind::kProjectAttained ? std::string_view(job.project)
                                                                            : std::string_view();
  }
};

class JobQueue {
 public:
  using Handle = uint32_t;
  static constexpr Handle kNone = std::numeric_limits<Handle>::max();

  struct BandKey {
    std::string group;
    int64_t band = 0;
    auto operator<=>(const BandKey&) const = default;
  };
  // One job of a band, with what a walk needs to know before it looks at the request itself
  // (bands are arrays of these, so a walk reads memory in order).
  struct Entry {
    static constexpr uint32_t kSpecial = 0x8000'0000u;
    int64_t key;  // QueueOrder::KeyOf
    UnixMillis submitted_at;
    Handle handle;
    uint32_t shape_bits;      // Info::shape, | kSpecial when start_after or finish_before is set
    int64_t known_runtime_s;  // runtime_limit_s, else predicted_runtime_s; 0 = unknown
    uint32_t shape() const { return shape_bits & ~kSpecial; }
    // The job has a start window or a deadline: admission must look at it.
    bool special() const { return (shape_bits & kSpecial) != 0; }
  };
  // The jobs of one band in band order.
  class Band {
   public:
    size_t size() const { return entries_.size() - head_; }
    Handle at(size_t i) const { return entries_[head_ + i].handle; }
    const Entry& entry(size_t i) const { return entries_[head_ + i]; }

   private:
    friend class JobQueue;
    std::vector<Entry> entries_;  // [head_, end) are the band's jobs
    size_t head_ = 0;
  };
  using Bands = std::map<BandKey, Band>;

  explicit JobQueue(QueueOrder order = {});
  // `jobs` added in span order (one sort per band, not one insertion each).
  JobQueue(QueueOrder order, std::span<const JobRequest> jobs);
  // The jobs of `other`, in its insertion order, indexed for `order`.
  JobQueue(QueueOrder order, const JobQueue& other);
  // Indexes `jobs` without copying them (handles are span indexes): a queue for one Schedule call
  // (Scheduler::Schedule(cluster, span) uses it). `jobs` must outlive it; it cannot be changed.
  static JobQueue View(QueueOrder order, std::span<const JobRequest> jobs);
  // Move only (the shape index points into the queue's own storage).
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;
  JobQueue(JobQueue&&) = default;
  JobQueue& operator=(JobQueue&&) = default;

  Handle Add(JobRequest job);
  void Remove(Handle h);
  // Applies `change(JobRequest&)` to a queued job and re-indexes it; it keeps its insertion position.
  template <class F>
  void Modify(Handle h, F&& change) {
    assert(view_ == nullptr);
    Unindex(h);
    change(slots_[h].job);
    Index(h);
  }
  // Modify for the runtime prediction only: the job moves (within its band) only when its key changes
  // (kEstimate).
  void SetPredictedRuntime(Handle h, int64_t seconds);
  // Sets every queued job's predicted_runtime_s to `seconds_of(handle)` in one pass over the bands
  // (the same result as SetPredictedRuntime for each job).
  template <class F>
  void SetPredictedRuntimes(F&& seconds_of) {
    assert(view_ == nullptr);
    min_known_runtime_s_ = std::numeric_limits<int64_t>::max();
    // Predictions never move a job to another band, only (kEstimate) within its band: a band whose
    // keys changed is sorted again.
    for (auto& [key, band] : bands_) {
      bool moved = false;
      for (size_t k = band.head_; k < band.entries_.size(); ++k) {
        Entry& e = band.entries_[k];
        const int64_t seconds = seconds_of(e.handle);
        if (seconds != info_[e.handle].predicted_runtime_s) moved = SetPrediction(e, seconds) || moved;
        NoteKnownRuntime(e.known_runtime_s);
      }
      if (moved) SortBand(band);
    }
  }

  const QueueOrder& order() const { return order_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool contains(Handle h) const { return view_ != nullptr ? h < size_ : h < slots_.size() && slots_[h].live; }
  const JobRequest& job(Handle h) const { return view_ != nullptr ? view_[h] : slots_[h].job; }
  // Every handle is below this (arrays indexed by handle can be this long).
  Handle handle_limit() const { return static_cast<Handle>(view_ != nullptr ? size_ : slots_.size()); }

  // Insertion order (kNone at the end).
  Handle first() const { return first_; }
  Handle next(Handle h) const {
    if (view_ != nullptr) return h + 1 < size_ ? h + 1 : kNone;
    return slots_[h].next;
  }
  std::vector<JobRequest> Jobs() const;

  const Bands& bands() const { return bands_; }
  // Band order: (key, submitted_at, job_id, insertion order). Jobs of different bands compare as if
  // they were in one.
  bool Before(const Entry& a, const Entry& b) const;

  // What a round needs to know of a job before it looks at the request itself: jobs with the same
  // shape (gpu_type, gpus, nodes, milli_per_gpu, memory_mib, node_labels) fit or fail the same way.
  struct Info {
    uint32_t shape = 0;  // dense id, < shape_count(); never reused for another shape
    UnixMillis start_after = 0;
    UnixMillis finish_before = 0;
    int64_t runtime_limit_s = 0;
    int64_t predicted_runtime_s = 0;
  };
  const Info& info(Handle h) const { return info_[h]; }
  uint32_t shape_count() const { return static_cast<uint32_t>(shape_requests_.size()); }
  // A request with only the shape's fields set, and how many queued jobs have the shape.
  const JobRequest& shape_request(uint32_t shape) const { return shape_requests_[shape]; }
  int64_t shape_jobs(uint32_t shape) const { return shape_jobs_[shape]; }
  // Queued jobs with a deadline (finish_before > 0).
  int64_t deadline_jobs() const { return deadline_jobs_; }
  // Mean submitted_at of the queued jobs (0 when empty), rounded down: now minus it is their mean age.
  UnixMillis mean_submitted_at() const {
    return size_ == 0 ? 0 : submitted_sum_ms_ / static_cast<int64_t>(size_);
  }
  // No queued job has a positive known runtime (Entry::known_runtime_s) below this; INT64_MAX when
  // none has one. A lower bound: exact after construction and SetPredictedRuntimes, while removals
  // and single updates may leave it lower than the true minimum.
  int64_t min_known_runtime_s() const { return min_known_runtime_s_; }

  // Queued jobs per project (projects with none are left out). Kept up to date as jobs come and go; for a
  // View() counted on first use (a call that never asks pays nothing).
  const std::map<std::string, int64_t, std::less<>>& project_jobs() const;

  // Smallest `gpus` among whole-GPU requests (INT_MAX when none) and whether any request is a fraction.
  int min_whole_gpus() const { return whole_gpus_.empty() ? std::numeric_limits<int>::max() : whole_gpus_.begin()->first; }
  bool any_fraction() const { return fractions_ > 0; }

 private:
  struct Slot {
    JobRequest job;
    uint64_t seq = 0;
    Handle prev = kNone;
    Handle next = kNone;
    bool live = false;
  };
  // A request's node labels compared by value (the map lives in the request a ShapeTuple comes from).
  struct LabelsRef {
    const std::map<std::string, std::string>* labels;
    bool operator==(const LabelsRef& o) const { return *labels == *o.labels; }
    auto operator<=>(const LabelsRef& o) const { return *labels <=> *o.labels; }
  };
  using ShapeTuple = std::tuple<std::string_view, int, int, MilliGpu, MiB, LabelsRef>;
  uint64_t seq(Handle h) const { return view_ != nullptr ? h : slots_[h].seq; }
  // Indexes the jobs of handles [0, n) (bulk: one sort per band).
  void IndexAll(Handle n);
  // An entry to look `h` up with (the fields the order compares).
  Entry Probe(Handle h) const { return Entry{order_.KeyOf(job(h)), job(h).submitted_at, h, 0, 0}; }
  Entry MakeEntry(Handle h) const;
  // Sets the prediction of the job of `e` (request, Info and entry); true when the entry's key
  // changed, so that it may be out of place in its band.
  bool SetPrediction(Entry& e, int64_t seconds);
  void SortBand(Band& band);
  Entry* FindEntry(Band& band, Handle h);
  void NoteKnownRuntime(int64_t s) {
    if (s > 0 && s < min_known_runtime_s_) min_known_runtime_s_ = s;
  }
  uint32_t ShapeOf(const JobRequest& job);
  Handle NewSlot(JobRequest job);
  void Count(Handle h, int delta);
  void Index(Handle h);
  void Unindex(Handle h);

  QueueOrder order_;
  const JobRequest* view_ = nullptr;  // View(): the jobs, by handle (slots_ unused)
  std::vector<Slot> slots_;
  std::vector<Info> info_;  // by handle
  std::vector<Handle> free_;
  Handle first_ = kNone;
  Handle last_ = kNone;
  uint64_t next_seq_ = 0;
  size_t size_ = 0;
  Bands bands_;
  std::deque<JobRequest> shape_requests_;  // by shape; owns the type strings and labels ShapeTuple points at
  std::map<ShapeTuple, uint32_t> shapes_;
  std::vector<int64_t> shape_jobs_;
  int64_t deadline_jobs_ = 0;
  int64_t submitted_sum_ms_ = 0;  // sum of queued jobs' submitted_at
  int64_t min_known_runtime_s_ = std::numeric_limits<int64_t>::max();
  std::map<int, int64_t> whole_gpus_;  // gpus -> whole-GPU requests asking for that many
  mutable std::map<std::string, int64_t, std::less<>> project_jobs_;
  mutable bool project_jobs_counted_ = false;  // View(): project_jobs_ was counted
  int64_t fractions_ = 0;
};

}  // namespace fastgpu::sched
