// `fastgpu bench api`: durable submits/s with concurrent clients and submit->RUNNING latency on the
// embedded server (SQLite, group commit, simulated GPUs, real processes).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "server/bench_load.h"
#include "server/embedded.h"
#include "server/service.h"
#include "server/up.h"

namespace fastgpu::server {

namespace {

std::unique_ptr<http::Client> MakeClient(const std::string& url, const std::string& token) {
  http::Options o;
  o.keep_alive = true;
  o.read_timeout_ms = 60'000;
  o.bearer_token = token;
  auto c = std::make_unique<http::Client>(url, std::move(o));
  return c;
}

struct DrainResult {
  int jobs = 0;
  int failed = 0;  // submits refused or jobs that did not succeed
  double seconds = 0;
  std::vector<double> to_running_ms;  // created -> started (server timestamps)
  std::vector<double> running_ms;     // started -> finished
  std::vector<double> to_end_ms;      // created -> finished
};

// Submits `n` one-GPU `true` jobs from `threads` in-process submitters at once and waits until all
// have ended. Timed from the first submit until the last job ended.
Status RunDrain(Embedded& up, int n, int threads, const Clock& clock, DrainResult& out) {
  Service& svc = up.service();
  std::vector<std::string> ids(static_cast<size_t>(n));
  std::atomic<int> next{0}, failed{0};
  const int64_t t0 = clock.MonotonicNanos();
  std::vector<std::thread> submitters;
  for (int t = 0; t < threads; ++t) {
    submitters.emplace_back([&] {
      for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
        api::JobSpec spec;
        spec.name = "drain";
        spec.command = {"true"};
        auto job = svc.Submit(std::move(spec), "admin", "user:admin");
        if (!job.ok()) {
          failed.fetch_add(1);
          continue;
        }
        ids[static_cast<size_t>(i)] = job->id;
      }
    });
  }
  for (auto& th : submitters) th.join();
  for (const std::string& id : ids) {
    if (id.empty()) continue;
    for (int tries = 0;; ++tries) {
      auto j = svc.Wait(id, 60'000, false);
      if (!j.ok()) return j.status();
      if (api::IsTerminal(j->state)) break;
      if (tries >= 10) return DeadlineExceeded("drain: job " + id + " did not end within 10 minutes");
    }
  }
  out.seconds = static_cast<double>(clock.MonotonicNanos() - t0) / 1e9;
  out.jobs = n;
  out.failed = failed.load();
  for (const std::string& id : ids) {
    if (id.empty()) continue;
    auto j = svc.GetJob(id);
    if (!j.ok()) return j.status();
    if (j->state != api::JobState::kSucceeded) {
      ++out.failed;
      continue;
    }
    out.to_running_ms.push_back(static_cast<double>(j->started_at - j->created_at));
    out.running_ms.push_back(static_cast<double>(j->finished_at - j->started_at));
    out.to_end_ms.push_back(static_cast<double>(j->finished_at - j->created_at));
  }
  return Status::Ok();
}

}  // namespace

int RunApiBench(const ApiBenchOptions& o) {
  if (o.clients < 1 || o.clients > 256) {
    std::cerr << "fastgpu: error: --clients must be between 1 and 256\n";
    return 2;
  }
  if (o.submits < 0 || o.submits > 10'000'000 || (o.submits == 0 && o.drain == 0)) {
    std::cerr << "fastgpu: error: --submits must be between 1 and 10000000 (0 only with --drain)\n";
    return 2;
  }
  if (o.drain < 0 || o.drain > 1'000'000) {
    std::cerr << "fastgpu: error: --drain must be between 0 and 1000000\n";
    return 2;
  }
  SystemClock clock;
  std::string home = o.home;
  bool temp = home.empty();
  if (temp) {
    char tmpl[] = "/tmp/fastgpu-bench-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::cerr << "fastgpu: error: cannot create a temp dir\n";
      return 1;
    }
    home = tmpl;
  }
  UpOptions up_opts;
  up_opts.home = home;
  up_opts.listen = "127.0.0.1:0";
  up_opts.sim_gpus = "8xA100-80GB";
  up_opts.stop_grace_ms = 1000;
  Embedded up;
  if (Status st = up.Start(up_opts); !st.ok()) {
    std::cerr << "fastgpu: error: " << st.message() << "\n";
    return 1;
  }
  bool tty = ::isatty(STDERR_FILENO);
  auto progress = [&](const char* what) {
    if (tty) std::cerr << "bench: " << what << "...\n";
  };

  // Phase 1: submit->RUNNING latency, one job at a time on an idle cluster.
  progress("latency phase");
  std::vector<double> client_ms, server_ms;
  {
    auto c = MakeClient(up.url(), up.token());
    std::string body = R"({"name":"lat","gpus":1,"command":["true"]})";
    for (int i = 0; i < o.latency_samples; ++i) {
      int64_t t0 = clock.MonotonicNanos();
      auto r = c->Post("/v1/jobs", body, "application/json");
      if (!r || r->status != 201) {
        std::cerr << "fastgpu: error: submit failed during the latency phase\n";
        return 1;
      }
      std::string id = nlohmann::json::parse(r->body)["id"];
      auto w = c->Get("/v1/jobs/" + id + "/wait?for=running&timeout=30s");
      int64_t t1 = clock.MonotonicNanos();
      if (!w || w->status != 200) {
        std::cerr << "fastgpu: error: wait failed during the latency phase\n";
        return 1;
      }
      auto j = nlohmann::json::parse(w->body);
      client_ms.push_back(static_cast<double>(t1 - t0) / 1e6);
      int64_t started = j["started_at_ms"].get<int64_t>();
      if (started > 0) server_ms.push_back(static_cast<double>(started - j["created_at_ms"].get<int64_t>()));
      // Let it finish so the next sample finds the cluster idle.
      c->Get("/v1/jobs/" + id + "/wait?timeout=30s");
    }
  }

  // Phase 2 (when asked): slow clients, long-polls, huge headers, big-log readers.
  nlohmann::json load = nlohmann::json::object();
  if (o.followers + o.waiters + o.idle + o.slowloris + o.big_headers + o.log_readers > 0) {
    progress("load cases");
    if (Status st = RunLoadCases(up, o, clock, load); !st.ok()) {
      std::cerr << "fastgpu: error: " << st.message() << "\n";
      return 1;
    }
  }

  // Phase 3 (when asked): drain many short jobs through the 8 GPUs (before the throughput phase, whose
  // jobs would hold the GPUs).
  DrainResult drain;
  if (o.drain > 0) {
    progress("drain phase");
    if (Status st = RunDrain(up, o.drain, o.clients, clock, drain); !st.ok()) {
      std::cerr << "fastgpu: error: " << st.message() << "\n";
      return 1;
    }
  }

  // Phase 4: durable submit throughput with concurrent clients. The jobs queue behind 8 long ones.
  if (o.submits > 0) progress("throughput phase");
  std::atomic<int> next{0}, failed{0};
  std::vector<std::vector<double>> lat(o.clients);
  int64_t t0 = clock.MonotonicNanos();
  std::vector<std::thread> threads;
  for (int t = 0; t < o.clients; ++t) {
    threads.emplace_back([&, t] {
      auto c = MakeClient(up.url(), up.token());
      std::string body = R"({"name":"tput","gpus":1,"command":["sleep","600"]})";
      while (next.fetch_add(1) < o.submits) {
        int64_t s = clock.MonotonicNanos();
        auto r = c->Post("/v1/jobs", body, "application/json");
        if (!r || r->status != 201) {
          failed.fetch_add(1);
          continue;
        }
        lat[t].push_back(static_cast<double>(clock.MonotonicNanos() - s) / 1e6);
      }
    });
  }
  for (auto& th : threads) th.join();
  double secs = static_cast<double>(clock.MonotonicNanos() - t0) / 1e9;
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());

  // Clean up: cancel everything (in-process; not measured).
  progress("cleanup");
  auto live = up.service().ListJobs(
      {{api::JobState::kQueued, api::JobState::kScheduled, api::JobState::kStarting, api::JobState::kRunning}});
  for (const auto& j : live.ok() ? live->jobs : std::vector<api::Job>{}) (void)up.service().Cancel(j.id, "bench");
  auto stopping = up.service().ListJobs({{api::JobState::kRunning, api::JobState::kStarting}});
  for (const auto& j : stopping.ok() ? stopping->jobs : std::vector<api::Job>{}) (void)up.service().Wait(j.id, 5000, false);
  up.Stop();
  if (temp) {
    std::error_code ec;
    std::filesystem::remove_all(home, ec);
  }

  double rate = secs > 0 ? static_cast<double>(all.size()) / secs : 0;
  nlohmann::json out = {
      {"clients", o.clients},
      {"submits", all.size()},
      {"failed", failed.load()},
      {"seconds", secs},
      {"submits_per_s", rate},
      {"submit_latency_ms_p50", Percentile(all, 0.5)},
      {"submit_latency_ms_p99", Percentile(all, 0.99)},
      {"latency_samples", client_ms.size()},
      {"submit_to_running_ms_p50", Percentile(client_ms, 0.5)},
      {"submit_to_running_ms_p99", Percentile(client_ms, 0.99)},
      {"server_submit_to_running_ms_p50", Percentile(server_ms, 0.5)},
      {"server_submit_to_running_ms_p99", Percentile(server_ms, 0.99)},
      {"store", "sqlite (WAL, synchronous=FULL, group commit)"},
      {"cpus", std::thread::hardware_concurrency()},
  };
  for (auto& [k, v] : load.items()) out[k] = v;
  const double drain_rate = drain.seconds > 0 ? static_cast<double>(drain.jobs - drain.failed) / drain.seconds : 0;
  if (o.drain > 0) {
    out["drain_jobs"] = drain.jobs;
    out["drain_failed"] = drain.failed;
    out["drain_seconds"] = drain.seconds;
    out["drain_jobs_per_s"] = drain_rate;
    out["drain_ms_per_job_per_gpu"] = drain.jobs > 0 ? drain.seconds * 1000.0 * 8 / drain.jobs : 0;
    out["drain_submit_to_running_ms_p50"] = Percentile(drain.to_running_ms, 0.5);
    out["drain_submit_to_running_ms_p99"] = Percentile(drain.to_running_ms, 0.99);
    out["drain_running_to_ended_ms_p50"] = Percentile(drain.running_ms, 0.5);
    out["drain_running_to_ended_ms_p99"] = Percentile(drain.running_ms, 0.99);
  }
  if (o.json) {
    std::cout << out.dump(2) << "\n";
  } else {
    if (o.submits > 0) {
      std::printf("durable submits/s            %10.0f  (%d clients, %zu submits, %d failed, %.2f s)\n", rate,
                  o.clients, all.size(), failed.load(), secs);
      std::printf("submit latency p50 / p99     %10.2f / %.2f ms\n", Percentile(all, 0.5), Percentile(all, 0.99));
    }
    if (!client_ms.empty()) {
      std::printf("submit->RUNNING p50 / p99    %10.2f / %.2f ms  (client-observed, %zu samples)\n",
                  Percentile(client_ms, 0.5), Percentile(client_ms, 0.99), client_ms.size());
      std::printf("  server timestamps p50/p99  %10.2f / %.2f ms\n", Percentile(server_ms, 0.5),
                  Percentile(server_ms, 0.99));
    }
    if (o.drain > 0) {
      std::printf("drain: jobs/s                %10.1f  (%d one-GPU `true` jobs on 8 simulated GPUs, %d failed, %.2f s)\n",
                  drain_rate, drain.jobs, drain.failed, drain.seconds);
      std::printf("  per job per GPU            %10.1f ms\n",
                  drain.jobs > 0 ? drain.seconds * 1000.0 * 8 / drain.jobs : 0.0);
      std::printf("  submit->RUNNING p50 / p99  %10.0f / %.0f ms  (server timestamps; includes queueing)\n",
                  Percentile(drain.to_running_ms, 0.5), Percentile(drain.to_running_ms, 0.99));
      std::printf("  RUNNING->ended p50 / p99   %10.0f / %.0f ms\n", Percentile(drain.running_ms, 0.5),
                  Percentile(drain.running_ms, 0.99));
    }
    std::printf("machine: %u CPUs; store: SQLite WAL synchronous=FULL with group commit\n",
                std::thread::hardware_concurrency());
    PrintLoadCases(load);
  }
  return failed.load() == 0 && drain.failed == 0 ? 0 : 1;
}

}  // namespace fastgpu::server
