// Crash safety: a child process creates jobs as fast as it can and reports every acknowledged id through a
// pipe; the parent SIGKILLs it at some point, reopens the store and checks that every acknowledged job is
// there. The child is this same test binary, started with posix_spawn and a filter selecting
// StoreCrashChild.CreateJobsUntilKilled (which skips itself when not started that way).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "store_test_util.h"

extern char** environ;

namespace fastgpu::store {
namespace {

using testing::JobNumber;
using testing::SampleJob;
using testing::SubmitEvent;
using testing::TempDir;

constexpr int kAckFd = 3;
constexpr const char* kDbEnv = "FASTGPU_STORE_CRASH_DB";

// Runs only inside the child process.
TEST(StoreCrashChild, CreateJobsUntilKilled) {
  const char* path = std::getenv(kDbEnv);
  if (path == nullptr) GTEST_SKIP() << "helper for StoreCrashTest; runs only when started by it";
  auto store = OpenSqliteStore(path);
  if (!store.ok()) {
    std::string line = "error " + store.status().ToString() + "\n";
    (void)!write(kAckFd, line.data(), line.size());
    std::_Exit(2);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1'000'000; ++i) {
        auto r = (*store)->CreateJob(SampleJob("crash"), SubmitEvent());
        std::string line = r.ok() ? r->id + "\n" : "error " + r.status().ToString() + "\n";
        // Lines are shorter than PIPE_BUF, so each write is atomic.
        if (write(kAckFd, line.data(), line.size()) < 0) std::_Exit(3);
      }
    });
  }
  for (auto& th : threads) th.join();
}

// Runs only inside the child process: appends audit rows, acknowledging each as "<seq> <hash>".
TEST(StoreCrashChild, AppendAuditUntilKilled) {
  const char* path = std::getenv(kDbEnv);
  if (path == nullptr) GTEST_SKIP() << "helper for StoreCrashTest; runs only when started by it";
  auto store = OpenSqliteStore(path);
  if (!store.ok()) {
    std::string line = "error " + store.status().ToString() + "\n";
    (void)!write(kAckFd, line.data(), line.size());
    std::_Exit(2);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1'000'000; ++i) {
        api::AuditRecord rec{.at = i, .actor = "user:t" + std::to_string(t), .action = "crash", .result = "ok"};
        auto r = (*store)->AppendAudit(rec);
        std::string line =
            r.ok() ? std::to_string(r->seq) + " " + r->hash + "\n" : "error " + r.status().ToString() + "\n";
        if (write(kAckFd, line.data(), line.size()) < 0) std::_Exit(3);
      }
    });
  }
  for (auto& th : threads) th.join();
}

struct ChildRun {
  std::vector<std::string> acked;
  std::vector<std::string> errors;
  bool killed = false;
};

// Starts the child on `db`, SIGKILLs it once it has acknowledged `kill_after` jobs.
ChildRun RunChildAndKill(const std::string& db, size_t kill_after,
                         const std::string& child_test = "CreateJobsUntilKilled") {
  ChildRun run;
  int fds[2];
  // Both ends close-on-exec; the dup2 below gives the child a plain copy of the write end as fd 3.
  if (pipe2(fds, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe failed";
    return run;
  }
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind(std::string(kDbEnv) + "=", 0) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back(std::string(kDbEnv) + "=" + db);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe = "/proc/self/exe";
  std::string filter = "--gtest_filter=StoreCrashChild." + child_test;
  std::vector<char*> argv = {exe.data(), filter.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], kAckFd);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, exe.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    ADD_FAILURE() << "posix_spawn failed: " << rc;
    return run;
  }

  std::string buffer;
  char chunk[4096];
  int idle_polls = 0;
  while (true) {
    pollfd p{.fd = fds[0], .events = POLLIN, .revents = 0};
    int ready = poll(&p, 1, 1000);
    if (ready == 0) {
      // No output for a long time: the child is stuck. Give up after two minutes.
      if (++idle_polls > 120) {
        ADD_FAILURE() << "child produced no output for 120 s";
        kill(pid, SIGKILL);
        run.killed = true;
      }
      continue;
    }
    idle_polls = 0;
    ssize_t n = read(fds[0], chunk, sizeof(chunk));
    if (n <= 0) break;  // EOF: the child is gone (and every line it wrote has been read)
    buffer.append(chunk, static_cast<size_t>(n));
    size_t pos;
    while ((pos = buffer.find('\n')) != std::string::npos) {
      std::string line = buffer.substr(0, pos);
      buffer.erase(0, pos + 1);
      if (line.rfind("error", 0) == 0) {
        run.errors.push_back(line);
      } else {
        run.acked.push_back(line);
      }
    }
    if (!run.killed && (run.acked.size() >= kill_after || !run.errors.empty())) {
      kill(pid, SIGKILL);
      run.killed = true;
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child exited with status " << status;
  return run;
}

TEST(StoreCrashTest, AcknowledgedJobsSurviveSigkill) {
  TempDir dir;
  const std::string db = dir.path() + "/fastgpu.db";
  std::vector<std::string> all_acked;
  int64_t max_acked = 0;
  // Kill at different points; each round also recovers the previous round's write-ahead log.
  for (size_t kill_after : {size_t{1}, size_t{300}, size_t{3000}}) {
    ChildRun run = RunChildAndKill(db, kill_after);
    ASSERT_TRUE(run.errors.empty()) << run.errors.front();
    ASSERT_GE(run.acked.size(), kill_after);
    all_acked.insert(all_acked.end(), run.acked.begin(), run.acked.end());

    auto store = OpenSqliteStore(db);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (const std::string& id : all_acked) {
      auto j = (*store)->GetJob(id);
      ASSERT_TRUE(j.ok()) << "acknowledged job lost after SIGKILL: " << id << ": " << j.status().ToString();
      EXPECT_EQ(j->state, api::JobState::kQueued);
      max_acked = std::max(max_acked, JobNumber(id));
    }
    auto events = (*store)->ListEvents(all_acked.back());
    ASSERT_TRUE(events.ok());
    EXPECT_EQ(events->size(), 1u);
    // New ids continue after everything handed out before the crash.
    auto next = (*store)->CreateJob(SampleJob("after-crash"), SubmitEvent());
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_GT(JobNumber(next->id), max_acked);
    max_acked = JobNumber(next->id);
  }
}

TEST(StoreCrashTest, AuditChainSurvivesSigkill) {
  TempDir dir;
  const std::string db = dir.path() + "/fastgpu.db";
  std::map<int64_t, std::string> acked;  // seq -> hash
  for (size_t kill_after : {size_t{1}, size_t{500}}) {
    ChildRun run = RunChildAndKill(db, kill_after, "AppendAuditUntilKilled");
    ASSERT_TRUE(run.errors.empty()) << run.errors.front();
    ASSERT_GE(run.acked.size(), kill_after);
    for (const std::string& line : run.acked) {
      size_t space = line.find(' ');
      ASSERT_NE(space, std::string::npos) << line;
      int64_t seq = std::stoll(line.substr(0, space));
      EXPECT_TRUE(acked.emplace(seq, line.substr(space + 1)).second) << "seq handed out twice: " << seq;
    }

    auto store = OpenSqliteStore(db);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    auto rows = (*store)->ListAudit(0, 0);
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    // The log is one unbroken chain, and holds every acknowledged row unchanged.
    std::string prev;
    for (size_t i = 0; i < rows->size(); ++i) {
      const api::AuditRecord& r = (*rows)[i];
      ASSERT_EQ(r.seq, static_cast<int64_t>(i + 1));
      ASSERT_EQ(r.prev_hash, prev) << "seq " << r.seq;
      ASSERT_EQ(r.hash, api::AuditHash(r)) << "seq " << r.seq;
      prev = r.hash;
    }
    for (const auto& [seq, hash] : acked) {
      ASSERT_LE(seq, static_cast<int64_t>(rows->size())) << "acknowledged audit row lost after SIGKILL: " << seq;
      EXPECT_EQ((*rows)[static_cast<size_t>(seq - 1)].hash, hash) << "seq " << seq;
    }
    // Appends continue the chain after the crash.
    auto next = (*store)->AppendAudit({.actor = "user:after-crash", .action = "check"});
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    EXPECT_EQ(next->seq, static_cast<int64_t>(rows->size()) + 1);
    EXPECT_EQ(next->prev_hash, prev);
    acked.emplace(next->seq, next->hash);
  }
}

}  // namespace
}  // namespace fastgpu::store
