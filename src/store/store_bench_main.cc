// Measures durable job submissions through the SQLite store: many threads call CreateJob concurrently
// (as the server's request threads do) and every call returns only after its commit is on disk.
//
//   fastgpu_store_bench [--jobs 100000] [--threads 16,64] [--dir /path/on/the/disk/to/test]
//
// Prints creates/s, latency percentiles and the average number of requests per commit.
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "store/store.h"

namespace fastgpu::store {
namespace {

struct Options {
  int jobs = 100'000;
  std::vector<int> threads = {16, 64};
  std::string dir;  // empty: a fresh directory under $TMPDIR or /tmp
  int max_batch = SqliteOptions{}.max_batch;
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

int RunOne(const Options& opt, int threads, const Clock& clock) {
  std::string dir = opt.dir;
  bool remove_dir = false;
  if (dir.empty()) {
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
    auto store = OpenSqliteStore(path, sopt);
    if (!store.ok()) {
      std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
      return 1;
    }
    std::vector<std::vector<int64_t>> lat(static_cast<size_t>(threads));
    std::vector<int> failures(static_cast<size_t>(threads), 0);
    std::vector<std::thread> workers;
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
          auto r = (*store)->CreateJob(BenchJob(i), ev);
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
      if (!(*store)->GetJob("j-" + std::to_string(1 + (i * 7919) % opt.jobs)).ok()) rc = 1;
    }
    double get_us = static_cast<double>(clock.MonotonicNanos() - r0) / 1e3 / (kReads * 10);
    std::printf("            ListJobs(QUEUED, limit 100): %.0f us   GetJob: %.1f us\n", list_us, get_us);
    if (failed > 0) rc = 1;
  }
  std::error_code ec;
  if (remove_dir) {
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
    } else if (a == "--max-batch") {
      opt.max_batch = std::atoi(next().c_str());
    } else {
      std::fprintf(stderr, "usage: %s [--jobs N] [--threads 16,64] [--dir DIR] [--max-batch N]\n", argv[0]);
      return 2;
    }
  }
  if (opt.jobs <= 0 || opt.threads.empty() ||
      std::any_of(opt.threads.begin(), opt.threads.end(), [](int t) { return t <= 0; })) {
    std::fprintf(stderr, "--jobs and --threads must be positive\n");
    return 2;
  }
  SystemClock clock;
  int rc = 0;
  for (int t : opt.threads) rc |= RunOne(opt, t, clock);
  return rc;
}

}  // namespace
}  // namespace fastgpu::store

int main(int argc, char** argv) { return fastgpu::store::Main(argc, argv); }
