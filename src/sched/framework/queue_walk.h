// Walks a JobQueue in a policy's order, one job at a time, touching only the jobs it returns.
//
// The order is the one queue_sort.h computes over a whole span (ascending key, then submitted_at,
// job_id and queue position): bands in key order with submit order inside, or, when the key depends
// on the time (priority aging, LAS promotion), the bands merged by a rank that never decreases
// along a band.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "sched/model/job_queue.h"

namespace fastgpu::sched {

class QueueWalk {
 public:
  // rank(band entry, band key); must not decrease along a band (submit order). It sees only the
  // entry (submitted_at, shape, known runtime) and the band, not the request. Empty: bands concatenated.
  using Rank = std::function<int64_t(const JobQueue::Entry&, int64_t)>;

  // Every band of the queue (all groups).
  explicit QueueWalk(const JobQueue& queue, Rank rank = nullptr);
  // The bands of one group.
  QueueWalk(const JobQueue& queue, JobQueue::Bands::const_iterator begin, JobQueue::Bands::const_iterator end,
            Rank rank = nullptr);

  // The next job's band entry, or nullptr at the end.
  const JobQueue::Entry* NextEntry() {
    if (!merge_) {
      while (current_ < cursors_.size()) {
        Cursor& c = cursors_[current_];
        if (c.pos < c.band->size()) {
          band_ = c.key;
          return &c.band->entry(c.pos++);
        }
        ++current_;
      }
      return nullptr;
    }
    return NextMerged();
  }
  // The band key of the job NextEntry() or Next() returned last.
  int64_t band() const { return band_; }
  // The next job, or JobQueue::kNone at the end.
  JobQueue::Handle Next() {
    const JobQueue::Entry* e = NextEntry();
    return e != nullptr ? e->handle : JobQueue::kNone;
  }

 private:
  struct Cursor {
    const JobQueue::Band* band;
    int64_t key;
    size_t pos;
    int64_t rank;
  };
  void Init(JobQueue::Bands::const_iterator begin, JobQueue::Bands::const_iterator end);
  const JobQueue::Entry* NextMerged();
  // Whether band cursor a's next job comes before cursor b's.
  bool Earlier(uint32_t a, uint32_t b) const;
  auto Later() const {
    return [this](uint32_t a, uint32_t b) { return Earlier(b, a); };
  }
  void Rerank(Cursor& c) { c.rank = rank_(c.band->entry(c.pos), c.key); }

  const JobQueue& queue_;
  Rank rank_;
  std::vector<Cursor> cursors_;
  std::vector<uint32_t> heap_;  // merge: cursors not exhausted, earliest head on top
  bool merge_ = false;
  int64_t band_ = 0;
  size_t current_ = 0;  // concatenation: the band being walked
};

}  // namespace fastgpu::sched
