// Queue orderings used by the policies. Every ordering ends with (submitted_at, job_id) so it is
// total and deterministic.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "sched/model/model.h"

namespace fastgpu::sched {

// Submit order.
std::vector<uint32_t> FifoOrder(std::span<const JobRequest> queue);

// Effective priority in thousandths: priority * 1000 plus 1000 per `aging_ms_per_point` waited
// (0 = no aging). Unbounded, so every job eventually reaches the head of the queue.
int64_t EffectivePriorityMilli(const JobRequest& job, UnixMillis now, int64_t aging_ms_per_point);
int64_t EffectivePriorityMilli(int priority, UnixMillis submitted_at, UnixMillis now, int64_t aging_ms_per_point);

// Effective priority descending, then FIFO.
std::vector<uint32_t> PriorityOrder(std::span<const JobRequest> queue, UnixMillis now, int64_t aging_ms_per_point);

// Ascending `keys` (one per job), then FIFO.
std::vector<uint32_t> OrderByKey(std::span<const JobRequest> queue, std::span<const int64_t> keys);

}  // namespace fastgpu::sched
