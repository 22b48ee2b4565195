// Helpers shared by the agent tests: temp dirs, deadline polling, process cleanup.
#pragma once

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace fastgpu::agent::testing {

inline std::string MakeTempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "fastgpu-agent-test-XXXXXX").string();
  char* dir = ::mkdtemp(tmpl.data());
  return dir == nullptr ? std::string() : std::string(dir);
}

// Project uids the tests run jobs as when they run as root (in the default job uid range, far from
// what a real server allocates first).
inline constexpr int64_t kTestJobUid = 1'999'990'001;
inline constexpr int64_t kOtherTestJobUid = 1'999'990'002;

// As root, the executor runs jobs as other uids, which create working directories named by a job spec
// themselves: the test's temp dir is then open to them, like /tmp.
inline std::string MakeTempDirForJobs() {
  std::string dir = MakeTempDir();
  if (!dir.empty() && ::geteuid() == 0) ::chmod(dir.c_str(), 01777);
  return dir;
}

inline bool RunningAsRoot() { return ::geteuid() == 0; }

// uid/gid of an OS user; -1 when it does not exist.
inline std::pair<int64_t, int64_t> UserIds(const std::string& name) {
  struct passwd* pw = ::getpwnam(name.c_str());  // tests are single-threaded here
  if (pw == nullptr) return {-1, -1};
  return {pw->pw_uid, pw->pw_gid};
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Polls `pred` until it holds or `timeout` passes (real time). Returns the last value of `pred`.
inline bool WaitUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(10'000)) {
  SystemClock clock;
  const int64_t deadline = clock.MonotonicNanos() + timeout.count() * 1'000'000;
  while (true) {
    if (pred()) return true;
    if (clock.MonotonicNanos() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Makes orphaned descendants (jobs whose supervisor died) children of the test process, so they
// can be reaped by ReapAllChildren.
inline void BecomeSubreaper() { ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

// SIGKILLs the given process groups and reaps every child of this process. True when no children
// remain.
inline bool KillGroupsAndReap(const std::vector<int64_t>& pgids) {
  for (int64_t pg : pgids) {
    if (pg > 0) ::kill(static_cast<pid_t>(-pg), SIGKILL);
  }
  return WaitUntil([] {
    while (true) {
      int st = 0;
      pid_t r = ::waitpid(-1, &st, WNOHANG);
      if (r > 0) continue;
      return r < 0 && errno == ECHILD;
    }
  });
}

}  // namespace fastgpu::agent::testing
