// Expected start times of queued jobs (what `squeue --start` shows): a pure function of the snapshot, the queued
// jobs in the order the last round considered them, and what is known of how long running jobs still run.
//
// The model (docs/scheduling.md, "Expected start times"):
// - GPUs are counted per type, not per node: a job needs gpus x nodes whole GPUs of its type (any type: the type
//   that gives the earliest start). A fraction needs one whole GPU unless a GPU of its type already has its share
//   free now. Unhealthy GPUs, unhealthy and draining nodes never count.
// - A GPU held by running jobs frees when the last of them is expected to end: started_at + runtime limit, else
//   started_at + prediction (a job past its prediction is expected to end now), else never (unknown).
// - Queued jobs are taken in the given order; each starts at the earliest time at or after its begin time at which
//   enough GPUs are free for its whole expected run (runtime limit, else prediction, else for good) without taking
//   GPUs from the jobs placed before it (conservative backfill). Reservations of other projects keep their GPUs
//   inside their windows; a reservation's own project's jobs use them first.
// - Preemption, quotas, budgets and dependencies are not modelled; jobs submitted later may still go first under
//   policies that reorder the queue. The result is an estimate, not a promise.
// Work: O(jobs x breakpoints x GPU types) with at most `max_jobs` jobs.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "sched/model/model.h"

namespace fastgpu::sched {

struct StartEstimate {
  std::string job_id;
  UnixMillis at = 0;  // expected start (>= snapshot.now); 0 = unknown
  std::string why;    // when unknown: why ("running jobs without a runtime limit or prediction hold the GPUs it needs")
};

// When a running job is expected to end: started_at (or `now` for a job not started yet) + runtime limit, else +
// prediction, at least `now`; 0 when neither is known.
UnixMillis ExpectedEnd(const RunningJob& job, UnixMillis now);

// One estimate per job of `queue` (same order), for the first `max_jobs` jobs; later ones are unknown ("more than N
// jobs ahead of it").
std::vector<StartEstimate> EstimateStarts(const ClusterSnapshot& cluster, std::span<const JobRequest> queue,
                                          size_t max_jobs = 1000);

}  // namespace fastgpu::sched
