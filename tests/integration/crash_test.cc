// kill -9 of `fastgpu up`, then a restart: nothing acknowledged is lost, running jobs are
// re-adopted or marked LOST with a reason, never left RUNNING forever or run twice silently.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

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

// kill -9 while a burst of jobs is being started: after the restart, no job that never started ends LOST,
// every job runs exactly once and ends SUCCEEDED, and its attempt counts its one start.
TEST(CrashTest, KillDuringABurstOfStartsRunsEveryJobOnce) {
  // Each run of a job appends a line to runs/<job id> (world-writable: as root, jobs run as their
  // project's own uid).
  char tmpl[] = "/tmp/fastgpu-runs-XXXXXX";
  std::string runs = ::mkdtemp(tmpl);
  ASSERT_EQ(::chmod(runs.c_str(), 0777), 0);
  UpProcess up("8xA100-80GB");
  up.Start();
  const json spec = {{"gpus", "0.01"},
                     {"command", {"sh", "-c", "echo run >> " + runs + "/$FASTGPU_JOB_ID"}}};
  std::vector<std::string> ids;
  int requeued_unstarted = 0;
  for (int round = 0; round < 3; ++round) {
    // A burst: more jobs than fit at once, so starts are in flight when the server dies.
    for (int i = 0; i < 100; ++i) ids.push_back(up.Submit(spec));
    ASSERT_TRUE(WaitFor([&] {
      auto starting = up.GetJson("/v1/jobs?state=STARTING&limit=1");
      return starting.is_object() && !starting["jobs"].empty();
    })) << "no start in flight";
    up.Stop(SIGKILL);
    up.Start();
    for (const auto& id : ids) {
      ASSERT_TRUE(WaitFor([&] {
        std::string st = up.Job(id).value("state", "");
        return st == "SUCCEEDED" || st == "FAILED" || st == "LOST" || st == "CANCELLED";
      }, std::chrono::seconds(60)))
          << id << " " << up.Job(id).dump();
    }
  }
  for (const auto& id : ids) {
    json job = up.Job(id);
    std::string ran = ReadFile(runs + "/" + id);
    int starts = static_cast<int>(std::count(ran.begin(), ran.end(), '\n'));
    EXPECT_EQ(job["state"], "SUCCEEDED") << id << " ran " << starts << " times: " << job.dump() << "\nevents: "
                                         << up.GetJson("/v1/jobs/" + id + "/events").dump();
    EXPECT_EQ(starts, 1) << id << " must run exactly once";
    EXPECT_EQ(job["attempt"], starts) << id << ": attempt counts starts";
    for (auto& e : up.GetJson("/v1/jobs/" + id + "/events")["events"])
      requeued_unstarted += e["reason"].get<std::string>().find("never started") != std::string::npos;
  }
  std::printf("crash test: %zu jobs over 3 kills, %d starts in flight requeued unstarted\n", ids.size(),
              requeued_unstarted);
  std::error_code ec;
  fs::remove_all(runs, ec);
}

// The same Idempotency-Key returns the same job, also after kill -9; another body with it is refused.
TEST(CrashTest, IdempotencyKeySurvivesKill9) {
  UpProcess up;
  up.Start();
  const std::string body = json{{"command", {"true"}}, {"name", "once"}}.dump();
  httplib::Headers key{{"Idempotency-Key", "retry-me-1"}};
  auto first = up.Client()->Post("/v1/jobs", key, body, "application/json");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 201) << first->body;
  std::string id = json::parse(first->body)["id"];
  up.Stop(SIGKILL);
  up.Start();
  auto again = up.Client()->Post("/v1/jobs", key, body, "application/json");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200) << again->body;
  EXPECT_EQ(again->get_header_value("Idempotent-Replayed"), "true");
  EXPECT_EQ(json::parse(again->body)["id"], id);
  auto other = up.Client()->Post("/v1/jobs", key, json{{"command", {"false"}}}.dump(), "application/json");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 409) << other->body;
  EXPECT_NE(other->body.find(id), std::string::npos) << other->body;
  EXPECT_EQ(up.GetJson("/v1/jobs?limit=10")["jobs"].size(), 1u);
  // The submit's audit row exists (written with the job) and the chain verifies.
  auto verify = up.GetJson("/v1/audit/verify");
  EXPECT_EQ(verify["ok"], true) << verify.dump();
}

}  // namespace
}  // namespace fastgpu::testing
