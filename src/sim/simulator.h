// Trace-driven discrete-event simulator. It replays a job trace against a sched::Scheduler (the same code the
// server runs) on a simulated cluster and measures what users would have seen.
//
// Model:
//  * Events are job arrivals (submit_time_s), completions and, optionally, periodic rescheduling ticks. All
//    events with the same timestamp form one batch; after each batch the scheduler is called once with the
//    current snapshot and queue, and its preemptions and then its binds are applied at that same time.
//  * Jobs are not elastic: once started a job holds its GPUs for its remaining work. A preempted job goes back
//    to the queue with its remaining work plus a checkpoint/restore overhead (CheckpointOverhead); the time it
//    ran counts as attained service (RunningJob.attained_gpu_ms, JobRequest.attained_gpu_ms) for LAS-style
//    policies.
//  * Gangs: a job asking for more GPUs than a node has becomes a gang of nodes = ceil(num_gpus / gpus_per_node)
//    nodes with ceil(num_gpus / nodes) GPUs each (12 GPUs on 8-GPU nodes: 2 x 6). When num_gpus is not a
//    multiple of nodes the job holds the rounded-up count, and the held GPUs count as busy.
//  * Runtime estimates: JobRequest.predicted_runtime_s comes from a runtime predictor that learns only from jobs
//    of the same user and queue that have finished so far in the replay (never from the job's own duration).
//    It is set when a job is queued and refreshed for all queued jobs every prediction_refresh_s (only for
//    policies whose decisions use it, sched::Scheduler::UsesRuntimeEstimates).
//  * The scheduler is called with a sched::JobQueue (queued jobs indexed in the policy's order) and a
//    sched::ClusterState (the index of the snapshot), both kept up to date between calls; the decisions are the
//    same as for the span of queued jobs on the snapshot.
//  * Trace fields map onto JobRequest as: job_id -> job_id, user -> user, queue -> project and name,
//    num_gpus -> gpus x nodes (above), submit_time_s -> submitted_at (epoch_ms + seconds), priority 50.
//  * Jobs whose gang needs more nodes than the cluster has, or that the scheduler reports as never fitting, are
//    rejected and excluded from JCT/queueing figures (counted in jobs_rejected).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "sched/scheduler.h"
#include "sim/cluster_spec.h"
#include "sim/trace.h"

namespace fastgpu::sim {

// Seconds added to a preempted job's remaining work (checkpoint + restore). Defaults follow Helios' simulator.
struct CheckpointOverhead {
  int64_t one_gpu_s = 7;         // jobs with 1 GPU
  int64_t up_to_large_s = 30;    // jobs with 2 .. large_gpus GPUs
  int64_t larger_s = 60;         // jobs with more than large_gpus GPUs
  int large_gpus = 8;

  int64_t For(int num_gpus) const {
    if (num_gpus <= 1) return one_gpu_s;
    return num_gpus <= large_gpus ? up_to_large_s : larger_s;
  }
};

struct SimConfig {
  ClusterSpec cluster;
  CheckpointOverhead checkpoint;
  // Which jobs are marked preemptible (JobRequest/RunningJob.preemptible): a job is when
  // PreemptibleJob(job_id, preemptible_permille, preemptible_seed) holds. 1000 = every job (as the Helios
  // simulator assumes), 0 = none, 500 = about half, picked by a seeded hash of the job id.
  int64_t preemptible_permille = 1000;
  uint64_t preemptible_seed = 0;
  // When > 0, the scheduler is also called whenever this many simulated seconds pass without another event
  // while jobs are queued and running, so policies whose priorities change with time (LAS) can act between
  // arrivals and completions.
  int64_t reschedule_interval_s = 0;
  // Runtime estimates are set when a job is queued (submission, requeue after preemption) and refreshed for
  // every queued job at most once per this many simulated seconds when new jobs have finished (0 = never).
  int64_t prediction_refresh_s = 600;
  // Skips scheduler calls when no GPU is free and no job finished in the batch, and batches of arrivals none of
  // which fits the largest free block right after a call that changed nothing. Only correct for policies that
  // never preempt (see PolicyNeverPreempts); saves most calls while a backlog exists.
  bool skip_when_full = false;
  // Checks before every scheduler call that the simulator's incrementally kept cluster index equals
  // one built from its snapshot (slow; for tests).
  bool check_cluster_state = false;
  // Simulated wall time of trace second 0 (snapshot "now" = epoch_ms + seconds * 1000).
  UnixMillis epoch_ms = 1'000'000'000'000;
  // Called with (jobs finished or rejected, jobs in the trace) about every 0.5 % of progress.
  std::function<void(int64_t, int64_t)> progress;
};

// What happened to one job. Times are milliseconds since trace second 0; -1 when it never happened.
struct JobOutcome {
  std::string job_id;
  int64_t submit_ms = 0;
  int64_t first_start_ms = -1;
  int64_t end_ms = -1;
  int preemptions = 0;
  bool preemptible = false;
  bool rejected = false;
  std::string reject_reason;
};

// Figures of one project's completed jobs (trace queue), as in SimMetrics.
struct ProjectMetrics {
  std::string project;
  int64_t completed = 0;
  double avg_jct_s = 0;
  double avg_queue_s = 0;
  double max_queue_s = 0;
  int64_t preemptions = 0;
};

struct SimMetrics {
  std::string policy;      // Scheduler::Name()
  int64_t jobs = 0;        // jobs in the (filtered) trace
  int64_t completed = 0;
  int64_t rejected = 0;    // never fit this cluster
  // Over completed jobs. JCT = end - submit; queueing delay = first start - submit.
  double avg_jct_s = 0;
  double avg_queue_s = 0;
  double avg_wait_s = 0;   // JCT - duration_s: all time not spent on the job's own work (queueing before the
                           // first start, waiting while preempted, checkpoint overhead)
  double p50_queue_s = 0;  // nearest-rank percentiles
  double p99_queue_s = 0;
  double max_queue_s = 0;
  double makespan_s = 0;   // last completion - first submission
  double utilisation = 0;  // GPU-seconds held by jobs / (cluster GPUs x makespan)
  int64_t busy_gpu_s = 0;
  int64_t preemptions = 0;
  int64_t schedule_calls = 0;
  int64_t preemptible_jobs = 0;            // jobs marked preemptible (SimConfig::preemptible_permille)
  std::vector<ProjectMetrics> projects;    // by project name
};

struct SimResult {
  SimMetrics metrics;
  std::vector<JobOutcome> jobs;  // in trace order
};

// True for policies that never return preemptions (fifo, sjf, backfill, fair-share, ga), so
// SimConfig::skip_when_full is safe for them.
bool PolicyNeverPreempts(std::string_view policy);

// Whether a job is marked preemptible: every job at 1000 permille, none at 0, otherwise those whose seeded
// 64-bit FNV-1a hash of the job id, modulo 1000, is below `permille` (deterministic across runs and machines).
bool PreemptibleJob(std::string_view job_id, int64_t permille, uint64_t seed);

// Replays `trace` against `scheduler`. Fails when the scheduler returns an invalid decision (binding a GPU that
// is not free, an unknown job, a gang of the wrong shape, preempting a job not marked preemptible) or when the replay stalls (jobs queued, nothing
// running, nothing left to arrive, and the scheduler starts nothing).
Result<SimResult> Simulate(const Trace& trace, sched::Scheduler& scheduler, const SimConfig& config);

// Nearest-rank percentile (p in 0..100) of ascending `sorted`; 0 when empty.
int64_t PercentileOfSorted(const std::vector<int64_t>& sorted, double p);

}  // namespace fastgpu::sim
