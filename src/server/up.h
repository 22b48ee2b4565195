// Entry points of the long-running modes. Called by the CLI (src/cli) after flag parsing.
#pragma once

#include <cstdint>
#include <string>

namespace fastgpu::server {

struct UpOptions {
  std::string home;                 // resolved data dir ($FASTGPU_HOME or ~/.fastgpu when empty)
  // The database (store::Open): "sqlite:PATH" or "postgres://USER@HOST/DB". Empty: sqlite:<home>/fastgpu.db.
  std::string store;
  std::string listen = "127.0.0.1:8400";  // HOST:PORT; port 0 picks a free port
  std::string sim_gpus = "auto";    // "auto": real GPUs if NVML finds any, else 4xA100-80GB; "none"; or SPEC
  std::string node_name;           // default: hostname
  std::string policy = "default";  // scheduler queue policy ("default" = sched::kDefaultPolicy, fair-las)
  std::string placement = "best-fit";
  // Preemption: how long a job runs before it may be preempted (a duration, e.g. "5m", "0"), and whether a
  // job may preempt another project's jobs while its own project holds its fair share of the GPUs.
  std::string preempt_min_runtime = "5m";
  bool preempt_across_projects = false;
  int64_t stop_grace_ms = 10'000;   // SIGTERM -> SIGKILL grace for cancel / runtime limit
  std::string stop_grace;           // --stop-grace (a duration); when set, wins over stop_grace_ms
  std::string tls_cert;             // PEM certificate chain; with tls_key serves HTTPS
  std::string tls_key;
  bool insecure = false;            // allow plain HTTP on a non-loopback address (not recommended)
  std::string trial_credit = "0";   // USD of free-trial credit for each new project ("0" = none)
  int64_t trial_days = 30;          // how long the trial credit stays valid
  // "FIRST-LAST": the Unix uids given to projects (one each, never reused) for their jobs when the
  // agent runs as root. Empty: auth::kDefaultJobUidFirst-kDefaultJobUidLast.
  std::string job_uid_range;
  // `fastgpu up`: this process also runs an agent for this machine's GPUs. `fastgpu server`: it does not;
  // nodes join with `fastgpu agent --join-token` (fleet mode).
  bool local_agent = true;
  // Another server leads the database: wait to take over when it stops, instead of refusing to start.
  bool standby = false;
  // A remote node silent this long is DOWN (its jobs end LOST, requeued while retries remain), e.g. "10s".
  std::string node_timeout = "10s";
  std::string fence_timeout = "30s";  // 0: no fencing (see ServiceOptions::fence_timeout_ms)
  // The local agent's checkpoint root (agent::AgentOptions::checkpoint_root; empty: <home>/checkpoints).
  std::string checkpoint_root;
  // agent::AgentOptions::checkpoint_fallback_base: the CLI sets it when the home is the default one (no --home,
  // no FASTGPU_HOME), so that root's `fastgpu up` with its home under /root gives jobs usable checkpoint dirs.
  std::string checkpoint_fallback_base;
  // The largest code archive a project may upload (`job submit --sync`), MiB.
  int64_t max_sync_mib = 100;
  // A file holding the token that may scrape GET /metrics (and nothing else); only its hash is kept. Empty: only
  // admins' API tokens may scrape (docs/monitoring.md).
  std::string metrics_token_file;
};

// Runs server + local agent + SQLite in this process until SIGINT/SIGTERM. Writes <home>/url and
// <home>/admin.token (0600) once ready. Returns the process exit code.
int RunUp(const UpOptions& options);

// Benchmark of the embedded server: durable submits/s and submit->RUNNING latency.
struct ApiBenchOptions {
  std::string home;            // temp dir when empty
  int clients = 16;            // concurrent HTTP clients
  int submits = 20000;         // total submits for the throughput phase (0 = skip it)
  int latency_samples = 200;   // sequential submit->RUNNING samples
  // Load cases (0 = skip): long-polls and slow clients held open while /healthz is probed and submits go on.
  int followers = 0;           // clients following a job's log (logs?follow=true)
  int waiters = 0;             // clients in GET /wait (then all disconnect: time until their waits are freed)
  int idle = 0;                // connected sockets that send nothing
  int slowloris = 0;           // sockets that send half a request header and stop
  int big_headers = 0;         // requests with a 12.9 MB header (RSS before/after)
  int log_readers = 0;         // concurrent whole-log readers of a large log (RSS before/after)
  int log_mib = 70;            // size of that log
  // Drain (0 = skip): this many one-GPU `true` jobs submitted at once on the bench's 8 simulated GPUs
  // (in-process, `clients` submitting threads), timed from the first submit until all have ended.
  int drain = 0;
  bool json = false;
};
int RunApiBench(const ApiBenchOptions& options);

}  // namespace fastgpu::server
