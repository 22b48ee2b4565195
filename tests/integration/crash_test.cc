// kill -9 of `fastgpu up`, then a restart: nothing acknowledged is lost, running jobs are
// re-adopted or marked LOST with a reason, never left RUNNING forever or run twice silently.
#include <gtest/gtest.h>

#include "harness.h"

namespace fastgpu::testing {
namespace {

TEST(CrashTest, AcknowledgedJobsSurviveKill9AndRunningJobsAreReadopted) {
  UpProcess up;
  up.Start();
  std::string done = up.Submit({{"command", {"true"}}});
  ASSERT_TRUE(up.WaitState(done, "SUCCEEDED"));
  std::string running = up.Submit({{"gpus", 4}, {"command", {"sh", "-c", "echo started; sleep 300"}}});
  ASSERT_TRUE(up.WaitState(running, "RUNNING"));
  std::vector<std::string> queued;
  for (int i = 0; i < 20; ++i) queued.push_back(up.Submit({{"gpus", 1}, {"command", {"true"}}, {"name", "q"}}));
  int64_t pid = up.Job(running)["pid"];
  ASSERT_GT(pid, 0);

  up.Stop(SIGKILL);
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), 0), 0) << "the job must survive a crash of fastgpu";
  up.Start();

  // Every acknowledged job is still there.
  EXPECT_EQ(up.Job(done)["state"], "SUCCEEDED");
  for (auto& id : queued) EXPECT_FALSE(up.Job(id).value("state", "").empty()) << id;
  // The running job was re-adopted, with an event saying so, and is still controllable.
  EXPECT_EQ(up.Job(running)["state"], "RUNNING");
  auto events = up.GetJson("/v1/jobs/" + running + "/events")["events"];
  bool readopted = false;
  for (auto& e : events) readopted |= e["reason"].get<std::string>().find("re-adopted") != std::string::npos;
  EXPECT_TRUE(readopted) << events.dump();
  EXPECT_EQ(up.Job(running)["attempt"], 1) << "must not run twice";
  up.Client()->Post("/v1/jobs/" + running + "/cancel", "", "application/json");
  ASSERT_TRUE(up.WaitState(running, "CANCELLED"));
  EXPECT_NE(::kill(static_cast<pid_t>(pid), 0), 0);
  // The queued jobs then run to completion, once each.
  for (auto& id : queued) {
    ASSERT_TRUE(up.WaitState(id, "SUCCEEDED")) << id << " " << up.Job(id).dump();
    EXPECT_EQ(up.Job(id)["attempt"], 1);
  }
}

TEST(CrashTest, JobThatDiedWhileNobodyWatchedIsMarkedLost) {
  UpProcess up;
  up.Start();
  std::string id = up.Submit({{"command", {"sleep", "300"}}});
  ASSERT_TRUE(up.WaitState(id, "RUNNING"));
  int64_t pid = up.Job(id)["pid"];
  up.Stop(SIGKILL);
  // Kill the job and its supervisor too: nobody records an exit status.
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  ASSERT_FALSE(stat.empty());
  int64_t ppid = std::stoll(stat.substr(stat.rfind(')') + 4));
  ::kill(static_cast<pid_t>(ppid), SIGKILL);
  ::kill(-static_cast<pid_t>(pid), SIGKILL);
  WaitFor([&] { return ::kill(static_cast<pid_t>(pid), 0) != 0; });
  up.Start();
  ASSERT_TRUE(up.WaitState(id, "LOST")) << up.Job(id).dump();
  EXPECT_FALSE(up.Job(id)["reason"].get<std::string>().empty());
}

TEST(CrashTest, JobThatFinishedWhileDownKeepsItsExitCode) {
  UpProcess up;
  up.Start();
  std::string id = up.Submit({{"command", {"sh", "-c", "sleep 1; exit 5"}}});
  ASSERT_TRUE(up.WaitState(id, "RUNNING"));
  int64_t pid = up.Job(id)["pid"];
  up.Stop(SIGKILL);
  // The job ends while fastgpu is down; its supervisor records the exit status for the next start.
  WaitFor([&] { return ::kill(static_cast<pid_t>(pid), 0) != 0; });
  up.Start();
  ASSERT_TRUE(up.WaitState(id, "FAILED")) << up.Job(id).dump();
  EXPECT_EQ(up.Job(id)["exit_code"], 5);
}

}  // namespace
}  // namespace fastgpu::testing
