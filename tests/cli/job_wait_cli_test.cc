// `fastgpu job wait` on a terminal redraws the job's state on one stderr line while it waits, and erases it
// before the outcome; without a terminal it prints only the outcome.
#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "api/json.h"
#include "cli/app.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "test_server.h"

namespace fastgpu::cli {
namespace {

// Answers /v1/jobs/j-7/wait with QUEUED, then RUNNING, then SUCCEEDED.
class WaitingJob {
 public:
  WaitingJob() {
    http_.srv().Get("/v1/jobs/j-7/wait", [this](const httplib::Request& req, httplib::Response& res) {
      int n;
      {
        std::lock_guard lock(mu_);
        n = calls_++;
        timeouts_.push_back(req.get_param_value("timeout"));
      }
      api::Job j;
      j.id = "j-7";
      j.spec.command = {"true"};
      j.created_at = 1'793'404'790'000;
      j.state = n == 0 ? api::JobState::kQueued : n == 1 ? api::JobState::kRunning : api::JobState::kSucceeded;
      j.reason = n == 0 ? "waiting: needs 2 GPUs, 1 free" : "";
      if (n >= 1) {
        j.started_at = 1'793'404'795'000;
        j.node = "node-1";
      }
      if (n >= 2) {
        j.finished_at = 1'793'404'800'000;
        j.exit_code = 0;
      }
      res.set_content(api::ToJson(j).dump(), "application/json");
    });
    http_.Start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_.port()); }
  std::vector<std::string> timeouts() {
    std::lock_guard lock(mu_);
    return timeouts_;
  }

 private:
  std::mutex mu_;
  int calls_ = 0;
  std::vector<std::string> timeouts_;
  TestHttpServer http_;  // last: stopped first
};

struct WaitRun {
  int code;
  std::string out, err;
};

WaitRun Wait(const std::string& url, bool err_is_tty) {
  FakeClock clock{1'793'404'800'000};
  std::ostringstream out, err;
  std::istringstream in;
  std::map<std::string, std::string> env = {{"FASTGPU_SERVER", url}, {"FASTGPU_TOKEN", "t"}, {"FASTGPU_HOME", "/nonexistent"}, {"TERM", "xterm"}};
  Io io{out, err, false,
        [env](std::string_view k) -> std::optional<std::string> {
          auto it = env.find(std::string(k));
          if (it == env.end()) return std::nullopt;
          return it->second;
        },
        ReadSmallFile, clock, &in, false, nullptr, err_is_tty};
  int code = RunApp({"job", "wait", "j-7"}, Hooks{}, io);
  return {code, out.str(), err.str()};
}

TEST(JobWaitCli, ATerminalSeesTheStateWhileItWaits) {
  WaitingJob server;
  WaitRun r = Wait(server.url(), /*err_is_tty=*/true);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("\r\033[Kj-7 QUEUED since submit, 10s: waiting: needs 2 GPUs, 1 free"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\r\033[Kj-7 RUNNING for 5s on node-1"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.substr(r.err.size() - 4), "\r\033[K");  // erased before the outcome
  EXPECT_NE(r.out.find("SUCCEEDED"), std::string::npos) << r.out;
  EXPECT_EQ(server.timeouts(), (std::vector<std::string>{"2s", "2s", "2s"}));
}

TEST(JobWaitCli, WithoutATerminalOnlyTheOutcome) {
  WaitingJob server;
  WaitRun r = Wait(server.url(), /*err_is_tty=*/false);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_NE(r.out.find("SUCCEEDED"), std::string::npos) << r.out;
  EXPECT_EQ(server.timeouts(), (std::vector<std::string>{"30s", "30s", "30s"}));
}

TEST(WaitProgressLine, LongReasonsAreCutOnOneLine) {
  api::Job j;
  j.id = "j-1";
  j.state = api::JobState::kQueued;
  j.created_at = 1'000;
  j.reason = "waiting: " + std::string(200, 'x');
  std::string line = WaitProgressLine(j, 61'000);
  EXPECT_EQ(line.size(), 100u);
  EXPECT_EQ(line.substr(0, 30), "j-1 QUEUED since submit, 1m: w");
  EXPECT_EQ(line.substr(97), "...");
}

}  // namespace
}  // namespace fastgpu::cli
