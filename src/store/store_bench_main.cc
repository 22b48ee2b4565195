// Measures durable job submissions through a store: many threads call CreateJob concurrently (as the
// server's request threads do) and every call returns only after its commit is on disk.
//
//   fastgpu_store_bench [--jobs 100000] [--threads 16,64] [--dir /path/on/the/disk/to/test]
//   fastgpu_store_bench [--jobs 100000] [--threads 16,64] --store postgres://USER@HOST/DB
//
// --audit: every create carries an audit row, written in its transaction (as the server's submits do).
// With --store the runs go to that store (sqlite:PATH or a PostgreSQL URL; see src/store/open.h): the jobs
// they create stay there, so point it at a database made for the benchmark.
//
// Prints creates/s, latency percentiles and the average number of requests per commit.
//
//   fastgpu_store_bench --scale 100000 [--dir DIR]
//
// Writes N jobs (95 % of them ended), then prints the memory it takes to hold every job in memory (what
// the server did before it kept only live ones) against only the live ones, and the time of listing pages
// (newest, deep behind a cursor, by state, by projects). With --dir the database DIR/fastgpu.db is kept,
// so that `FASTGPU_HOME=DIR fastgpu up` can be started over it and its VmRSS read.
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "store/open.h"
#include "store/store.h"

namespace fastgpu::store {
namespace {

struct Options {
  int jobs = 100'000;
  std::vector<int> threads = {16, 64};
  std::string dir;  // empty: a fresh directory under $TMPDIR or /tmp
  std::string store;  // --store URL: that store instead of a SQLite file under dir
  bool audit = false;  // --audit: each create carries its audit row, as the server's submits do
  int max_batch = SqliteOptions{}.max_batch;
  int scale = 0;  // --scale N: the many-jobs run instead
};

api::Job BenchJob(int i) {
  api::Job j;
  j.spec.name = "bench-" + std::to_string(i);
  j.spec.command = {"python", "train.py", "--epochs", "10", "--lr", "0.001"};
  j.spec.gpus_milli = 1000;
  j.spec.gpu_type = "A100-80GB";
  j.spec.runtime_limit_s = 3600;
  j.spec.env = {{"WANDB_MODE", "offline"}, {"SEED", std::to_string(i)}};
  j.spec.project = "default";
  j.user = "bench";
  return j;
}

int64_t Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

// Resident set size of this process, from /proc/self/status (VmRSS), in MiB.
double RssMiB() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  double kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "VmRSS:", 6) == 0) kb = std::atof(line + 6);
  }
  std::fclose(f);
  return kb / 1024;
}

int RunScale(const Options& opt, const Clock& clock) {
  std::string dir = opt.dir;
  if (dir.empty()) {
    std::fprintf(stderr, "--scale needs --dir (the database is kept there)\n");
    return 2;
  }
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/fastgpu.db";
  auto store = OpenSqliteStore(path);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    return 1;
  }
  const char* projects[] = {"default", "vision", "nlp", "audio"};
  // Create in parallel (group commit), then end 95 % of them in transactions of 1,000 updates.
  int64_t t0 = clock.MonotonicNanos();
  constexpr int kThreads = 64;
  std::vector<std::thread> workers;
  std::vector<std::vector<api::Job>> made(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = t; i < opt.scale; i += kThreads) {
        api::JobEvent ev;
        ev.reason = "submitted";
        ev.actor = "user:bench";
        ev.to = "QUEUED";
        api::Job j = BenchJob(i);
        j.spec.project = projects[i % 4];
        auto r = (*store)->CreateJob(j, ev);
        if (r.ok()) made[static_cast<size_t>(t)].push_back(std::move(r).value());
      }
    });
  }
  for (auto& w : workers) w.join();
  std::vector<api::Job> jobs;
  for (auto& m : made) jobs.insert(jobs.end(), std::make_move_iterator(m.begin()), std::make_move_iterator(m.end()));
  made.clear();
  double create_s = static_cast<double>(clock.MonotonicNanos() - t0) / 1e9;
  t0 = clock.MonotonicNanos();
  std::vector<JobUpdate> batch;
  int ended = 0;
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (i % 20 == 0) continue;  // 5 % stay queued
    JobUpdate u;
    u.expected_state = api::JobState::kQueued;
    u.job = jobs[i];
    u.job.state = i % 3 == 0 ? api::JobState::kCancelled : api::JobState::kSucceeded;
    u.job.reason = u.job.state == api::JobState::kCancelled ? "cancelled by user" : "exit code 0";
    u.job.finished_at = 1'700'000'000'000;
    u.event.at = u.job.finished_at;
    u.event.from = "QUEUED";
    u.event.to = std::string(api::JobStateName(u.job.state));
    u.event.reason = u.job.reason;
    u.event.actor = "bench";
    batch.push_back(std::move(u));
    if (batch.size() == 1000 || i + 1 == jobs.size()) {
      if (Status st = (*store)->UpdateJobs(batch); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        return 1;
      }
      ended += static_cast<int>(batch.size());
      batch.clear();
    }
  }
  if (!batch.empty() && (*store)->UpdateJobs(batch).ok()) ended += static_cast<int>(batch.size());
  double end_s = static_cast<double>(clock.MonotonicNanos() - t0) / 1e9;
  const int64_t total = static_cast<int64_t>(jobs.size());
  jobs.clear();
  jobs.shrink_to_fit();
  std::printf("jobs=%lld (ended %d) written: creates %.1f s, ends %.1f s; database %s\n",
              static_cast<long long>(total), ended, create_s, end_s, path.c_str());

  // Memory: every job in a table by id (the server before) against only the live ones (the server now).
  auto load = [&](const JobFilter& f, const char* what) {
    double before = RssMiB();
    int64_t l0 = clock.MonotonicNanos();
    std::unordered_map<std::string, api::Job> table;
    auto r = (*store)->ListJobs(f);
    if (!r.ok()) return;
    for (auto& j : *r) table.emplace(j.id, std::move(j));
    r->clear();
    r->shrink_to_fit();
    double ms = static_cast<double>(clock.MonotonicNanos() - l0) / 1e6;
    std::printf("  in memory, %-32s %7zu jobs  +%6.1f MiB RSS  (load %.0f ms)\n", what, table.size(),
                RssMiB() - before, ms);
  };
  std::printf("  RSS of this process before loading: %.1f MiB\n", RssMiB());
  load({.states = {api::JobState::kQueued, api::JobState::kScheduled, api::JobState::kStarting,
                   api::JobState::kRunning, api::JobState::kPreempted}},
       "live jobs only (now):");
  load({}, "every job (before):");

  // Listing: pages of 100 (p50 over repeats).
  auto page = [&](const JobFilter& f, const char* what) {
    std::vector<int64_t> lat;
    size_t n = 0;
    for (int i = 0; i < 200; ++i) {
      int64_t l0 = clock.MonotonicNanos();
      auto r = (*store)->ListJobs(f);
      lat.push_back(clock.MonotonicNanos() - l0);
      if (r.ok()) n = r->size();
    }
    std::printf("  page: %-52s %4zu jobs  p50 %.2f ms  p99 %.2f ms\n", what, n,
                static_cast<double>(Percentile(lat, 0.5)) / 1e6, static_cast<double>(Percentile(lat, 0.99)) / 1e6);
  };
  page({.limit = 101}, "newest 100");
  page({.before_num = total / 2, .limit = 101}, "100 behind a cursor in the middle");
  page({.states = {api::JobState::kSucceeded}, .before_num = total / 2, .limit = 101}, "SUCCEEDED, behind a cursor");
  page({.states = {api::JobState::kQueued, api::JobState::kRunning}, .limit = 101}, "QUEUED or RUNNING");
  page({.projects = std::vector<std::string>{"vision", "nlp"}, .limit = 101}, "projects vision+nlp (a member's view)");
  page({.states = {api::JobState::kCancelled}, .projects = std::vector<std::string>{"audio"}, .limit = 1001},
       "CANCELLED in audio, 1000");
  return 0;
}

int RunOne(const Options& opt, int threads, const Clock& clock) {
  std::string dir = opt.dir;
  bool remove_dir = false;
  if (dir.empty() && opt.store.empty()) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/fastgpu-store-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      std::fprintf(stderr, "cannot create a temporary directory from %s: %s\n", tmpl.c_str(), std::strerror(errno));
      return 1;
    }
    dir = tmpl;
    remove_dir = true;
  }
  std::string path = dir + "/bench-" + std::to_string(threads) + ".db";
  SqliteOptions sopt;
  sopt.max_batch = opt.max_batch;
  int rc = 0;
  {
    auto store = opt.store.empty() ? OpenSqliteStore(path, sopt) : Open(opt.store);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    std::vector<std::vector<int64_t>> lat(static_cast<size_t>(threads));
    std::vector<int> failures(static_cast<size_t>(threads), 0);
    std::vector<std::thread> workers;
    // Job numbers of this run (a --store database may hold earlier runs' jobs): the first one created.
    int64_t first_num = 0;
    {
      api::JobEvent ev;
      ev.reason = "submitted";
      ev.actor = "user:bench";
      auto r = (*store)->CreateJob(BenchJob(-1), ev);
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
        return 1;
      }
      first_num = std::atoll(r->id.c_str() + 2);
    }
    StoreStats before = (*store)->Stats();
    int64_t start = clock.MonotonicNanos();
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        auto& my = lat[static_cast<size_t>(t)];
        my.reserve(static_cast<size_t>(opt.jobs / threads + 1));
        for (int i = t; i < opt.jobs; i += threads) {
          api::JobEvent ev;
          ev.reason = "submitted";
          ev.actor = "user:bench";
          int64_t t0 = clock.MonotonicNanos();
          NewJob n{.job = BenchJob(i), .event = ev};
          if (opt.audit) {
            n.audit = api::AuditRecord{};
            n.audit->at = 1'700'000'000'000;
            n.audit->actor = "user:bench";
            n.audit->source = "127.0.0.1";
            n.audit->action = "POST /v1/jobs";
            n.audit->result = "201";
          }
          auto r = (*store)->SubmitJob(std::move(n));
          my.push_back(clock.MonotonicNanos() - t0);
          if (!r.ok()) failures[static_cast<size_t>(t)]++;
        }
      });
    }
    for (auto& w : workers) w.join();
    double secs = static_cast<double>(clock.MonotonicNanos() - start) / 1e9;

    std::vector<int64_t> all;
    for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
    int failed = 0;
    for (int f : failures) failed += f;
    StoreStats stats = (*store)->Stats();
    stats.writes -= before.writes;
    stats.commits -= before.commits;
    double per_commit = stats.commits > 0 ? static_cast<double>(stats.writes) / static_cast<double>(stats.commits) : 0;
    std::printf("threads=%-3d jobs=%d  %.0f creates/s  p50=%.2f ms  p99=%.2f ms  max=%.2f ms  "
                "commits=%lld (%.1f per commit, largest %lld)  failed=%d\n",
                threads, opt.jobs, static_cast<double>(opt.jobs) / secs, static_cast<double>(Percentile(all, 0.50)) / 1e6,
                static_cast<double>(Percentile(all, 0.99)) / 1e6,
                static_cast<double>(*std::max_element(all.begin(), all.end())) / 1e6,
                static_cast<long long>(stats.commits), per_commit, static_cast<long long>(stats.max_batch), failed);

    // Read side, on the same data: a page of the newest queued jobs and a point lookup.
    constexpr int kReads = 2000;
    int64_t r0 = clock.MonotonicNanos();
    for (int i = 0; i < kReads; ++i) {
      auto page = (*store)->ListJobs({.states = {api::JobState::kQueued}, .limit = 100});
      if (!page.ok() || page->size() != 100) rc = 1;
    }
    double list_us = static_cast<double>(clock.MonotonicNanos() - r0) / 1e3 / kReads;
    r0 = clock.MonotonicNanos();
    for (int i = 0; i < kReads * 10; ++i) {
      if (!(*store)->GetJob("j-" + std::to_string(first_num + (i * 7919) % opt.jobs)).ok()) rc = 1;
    }
    double get_us = static_cast<double>(clock.MonotonicNanos() - r0) / 1e3 / (kReads * 10);
    std::printf("            ListJobs(QUEUED, limit 100): %.0f us   GetJob: %.1f us\n", list_us, get_us);
    if (failed > 0) rc = 1;
  }
  std::error_code ec;
  if (!opt.store.empty()) {
    // kept: the store is the caller's
  } else if (remove_dir) {
    std::filesystem::remove_all(dir, ec);
  } else {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
  }
  return rc;
}

int Main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--jobs") {
      opt.jobs = std::atoi(next().c_str());
    } else if (a == "--threads") {
      opt.threads.clear();
      std::string list = next();
      size_t pos = 0;
      while (pos <= list.size()) {
        size_t comma = list.find(',', pos);
        if (comma == std::string::npos) comma = list.size();
        opt.threads.push_back(std::atoi(list.substr(pos, comma - pos).c_str()));
        pos = comma + 1;
      }
    } else if (a == "--dir") {
      opt.dir = next();
    } else if (a == "--store") {
      opt.store = next();
    } else if (a == "--audit") {
      opt.audit = true;
    } else if (a == "--scale") {
      opt.scale = std::atoi(next().c_str());
    } else if (a == "--max-batch") {
      opt.max_batch = std::atoi(next().c_str());
    } else {
      std::fprintf(stderr, "usage: %s [--jobs N] [--threads 16,64] [--dir DIR | --store URL] [--audit] [--max-batch N] | --scale N --dir DIR\n", argv[0]);
      return 2;
    }
  }
  if (opt.jobs <= 0 || opt.threads.empty() ||
      std::any_of(opt.threads.begin(), opt.threads.end(), [](int t) { return t <= 0; })) {
    std::fprintf(stderr, "--jobs and --threads must be positive\n");
    return 2;
  }
  SystemClock clock;
  if (opt.scale > 0) return RunScale(opt, clock);
  int rc = 0;
  for (int t : opt.threads) rc |= RunOne(opt, t, clock);
  return rc;
}

}  // namespace
}  // namespace fastgpu::store

int main(int argc, char** argv) { return fastgpu::store::Main(argc, argv); }
