#include "sched/framework/queue_sort.h"

#include <algorithm>
#include <numeric>

namespace fastgpu::sched {

std::vector<uint32_t> OrderByKey(std::span<const JobRequest> queue, std::span<const int64_t> keys) {
  std::vector<uint32_t> order(queue.size());
  std::iota(order.begin(), order.end(), 0u);
  auto less = [&](uint32_t a, uint32_t b) {
    if (keys[a] != keys[b]) return keys[a] < keys[b];
    const JobRequest& ja = queue[a];
    const JobRequest& jb = queue[b];
    if (ja.submitted_at != jb.submitted_at) return ja.submitted_at < jb.submitted_at;
    if (ja.job_id != jb.job_id) return ja.job_id < jb.job_id;
    return a < b;
  };
  // Queues usually arrive in submit order already (FIFO-like keys): one linear check then.
  bool sorted = true;
  for (size_t i = 1; i < order.size() && sorted; ++i) sorted = less(order[i - 1], order[i]);
  if (!sorted) std::sort(order.begin(), order.end(), less);
  return order;
}

std::vector<uint32_t> FifoOrder(std::span<const JobRequest> queue) {
  std::vector<int64_t> keys(queue.size(), 0);
  return OrderByKey(queue, keys);
}

int64_t EffectivePriorityMilli(const JobRequest& job, UnixMillis now, int64_t aging_ms_per_point) {
  return EffectivePriorityMilli(job.priority, job.submitted_at, now, aging_ms_per_point);
}

int64_t EffectivePriorityMilli(int priority, UnixMillis submitted_at, UnixMillis now, int64_t aging_ms_per_point) {
  int64_t eff = static_cast<int64_t>(priority) * 1000;
  if (aging_ms_per_point > 0 && now > submitted_at) {
    const int64_t waited = now - submitted_at;
    eff += waited / aging_ms_per_point * 1000 + (waited % aging_ms_per_point) * 1000 / aging_ms_per_point;
  }
  return eff;
}

std::vector<uint32_t> PriorityOrder(std::span<const JobRequest> queue, UnixMillis now, int64_t aging_ms_per_point) {
  std::vector<int64_t> keys(queue.size());
  for (size_t i = 0; i < queue.size(); ++i) keys[i] = -EffectivePriorityMilli(queue[i], now, aging_ms_per_point);
  return OrderByKey(queue, keys);
}

}  // namespace fastgpu::sched
