#include "sched/framework/queue_walk.h"

#include <algorithm>

namespace fastgpu::sched {

QueueWalk::QueueWalk(const JobQueue& queue, Rank rank) : queue_(queue), rank_(std::move(rank)) {
  Init(queue.bands().begin(), queue.bands().end());
}

QueueWalk::QueueWalk(const JobQueue& queue, JobQueue::Bands::const_iterator begin,
                     JobQueue::Bands::const_iterator end, Rank rank)
    : queue_(queue), rank_(std::move(rank)) {
  Init(begin, end);
}

void QueueWalk::Init(JobQueue::Bands::const_iterator begin, JobQueue::Bands::const_iterator end) {
  for (auto it = begin; it != end; ++it) {
    if (it->second.size() > 0) cursors_.push_back(Cursor{&it->second, it->first.band, 0, 0});
  }
  // One band: its order is the walk's order whatever the rank.
  if (cursors_.size() <= 1) rank_ = nullptr;
  merge_ = static_cast<bool>(rank_);
  if (rank_) {
    heap_.reserve(cursors_.size());
    for (uint32_t c = 0; c < cursors_.size(); ++c) {
      Rerank(cursors_[c]);
      heap_.push_back(c);
    }
    std::make_heap(heap_.begin(), heap_.end(), Later());
  }
}

bool QueueWalk::Earlier(uint32_t a, uint32_t b) const {
  const Cursor& x = cursors_[a];
  const Cursor& y = cursors_[b];
  if (x.rank != y.rank) return x.rank < y.rank;
  return queue_.Before(x.band->entry(x.pos), y.band->entry(y.pos));
}

const JobQueue::Entry* QueueWalk::NextMerged() {
  // Merge: the band head with the smallest (rank, submit order), from a heap of the bands.
  if (heap_.empty()) return nullptr;
  std::pop_heap(heap_.begin(), heap_.end(), Later());
  const uint32_t c = heap_.back();
  Cursor& best = cursors_[c];
  band_ = best.key;
  const JobQueue::Entry* e = &best.band->entry(best.pos++);
  if (best.pos < best.band->size()) {
    Rerank(best);
    std::push_heap(heap_.begin(), heap_.end(), Later());
  } else {
    heap_.pop_back();
  }
  return e;
}

}  // namespace fastgpu::sched
