// Job arrays on the real binary: `job submit --array 0-5%2` runs six tasks, never more than two at once, each with
// its FASTGPU_ARRAY_INDEX; `job get` shows the tasks, `job list` one row, `job logs --task`, and the API's checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "harness.h"

namespace fastgpu::testing {
namespace {

TEST(ArrayTest, ArrayWithConcurrencyLimitRunsEveryTaskAtMostTwoAtOnce) {
  UpProcess up;
  up.Start();
  auto sub = up.Cli({"job", "submit", "--array", "0-5%2", "--gpus", "0.1", "--name", "sweep", "--", "sh", "-c",
                     "echo task=$FASTGPU_ARRAY_INDEX of $FASTGPU_ARRAY_COUNT in $FASTGPU_ARRAY_JOB_ID; sleep 0.3"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_EQ(id.rfind("j-", 0), 0u) << sub.out;

  auto wait = up.Cli({"job", "wait", id, "--timeout", "60s"});
  EXPECT_EQ(wait.exit_code, 0) << wait.out << wait.err;
  json array = up.Job(id);
  EXPECT_EQ(array.value("state", ""), "SUCCEEDED") << array.dump();
  ASSERT_EQ(array["array_tasks"].size(), 6u) << array.dump();

  // Never more than two RUNNING at once, from the tasks' events.
  std::vector<std::pair<int64_t, int>> edges;  // (time, +1 start / -1 end)
  for (const auto& t : array["array_tasks"]) {
    const std::string task = t["id"].get<std::string>();
    EXPECT_EQ(t["state"], "SUCCEEDED") << task;
    json events = up.GetJson("/v1/jobs/" + task + "/events");
    int64_t started = 0, ended = 0;
    for (const auto& e : events["events"]) {
      if (e["to"] == "SCHEDULED" && started == 0) started = e["at_ms"].get<int64_t>();
      if (e["to"] == "SUCCEEDED") ended = e["at_ms"].get<int64_t>();
    }
    ASSERT_GT(started, 0) << events.dump();
    ASSERT_GE(ended, started) << events.dump();
    edges.emplace_back(started, +1);
    edges.emplace_back(ended, -1);
    // Its own index in its log.
    auto logs = up.Cli({"job", "logs", task});
    EXPECT_EQ(Trim(logs.out), "task=" + std::to_string(t["index"].get<int>()) + " of 6 in " + id) << task;
  }
  std::sort(edges.begin(), edges.end());  // an end sorts before a start at the same millisecond
  int now = 0, most = 0;
  for (const auto& [at, d] : edges) most = std::max(most, now += d);
  EXPECT_LE(most, 2);
  EXPECT_GE(most, 1);

  auto get = up.Cli({"job", "get", id});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_NE(get.out.find("0-5%2: 6 tasks (6 SUCCEEDED)"), std::string::npos) << get.out;
  EXPECT_NE(get.out.find("Tasks:"), std::string::npos) << get.out;
  auto task3 = up.Cli({"job", "logs", id, "--task", "3"});
  EXPECT_EQ(task3.exit_code, 0) << task3.err;
  EXPECT_NE(task3.out.find("task=3 of 6"), std::string::npos) << task3.out;
  auto list = up.Cli({"job", "list", "--output", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(json::parse(list.out)["jobs"].size(), 1u) << list.out;
  auto with_tasks = up.Cli({"job", "list", "--tasks", "--output", "json"});
  EXPECT_EQ(json::parse(with_tasks.out)["jobs"].size(), 7u) << with_tasks.out;
}

TEST(ArrayTest, CancelAndErrors) {
  UpProcess up;
  up.Start();
  auto bad = up.Cli({"job", "submit", "--array", "0-9%0", "--", "true"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("at least 1"), std::string::npos) << bad.err;
  // The API refuses a bad array with 400 and the reason.
  auto c = up.Client();
  auto res = c->Post("/v1/jobs", R"({"command": ["true"], "array": "3-1"})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_NE(res->body.find("ends before it starts"), std::string::npos) << res->body;
  res = c->Post("/v1/jobs", R"({"command": ["sleep", "300"], "gpus": "0.1", "array": "0-7%3"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 201) << res->body;
  json created = json::parse(res->body);
  ASSERT_EQ(created["array_tasks"].size(), 8u);
  const std::string id = created["id"];
  ASSERT_TRUE(up.WaitState(created["array_tasks"][2]["id"], "RUNNING"));
  EXPECT_EQ(up.Job(created["array_tasks"][3]["id"])["reason"],
            "waiting: array " + id + " runs at most 3 tasks at once");
  auto cancel = up.Cli({"job", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_TRUE(up.WaitState(id, "CANCELLED"));
  for (const auto& t : up.Job(id)["array_tasks"]) EXPECT_EQ(t["state"], "CANCELLED") << t.dump();
  auto wait = up.Cli({"job", "wait", id, "--timeout", "10s"});
  EXPECT_NE(wait.exit_code, 0);
}

}  // namespace
}  // namespace fastgpu::testing
