// Reservations on the real binary: `fastgpu reservation create|list|delete`, and a reservation keeping GPUs for its
// project inside its window (`fastgpu up --sim-gpus 2xA100-80GB`).
#include <gtest/gtest.h>

#include "harness.h"

namespace fastgpu::testing {
namespace {

TEST(ReservationCli, CreateListDeleteAndClearErrors) {
  UpProcess up("2xA100-80GB");
  up.Start();
  ASSERT_EQ(up.Client()->Post("/v1/projects", json{{"name", "res"}}.dump(), "application/json")->status, 201);
  // Bad input: exit 2, one line, nothing sent; refusals by the server: exit 1 (or 3 for a missing project).
  auto bad_time = up.Cli({"reservation", "create", "--project", "res", "--gpus", "1", "--start", "soonish", "--end",
                          "now+2h"});
  EXPECT_EQ(bad_time.exit_code, 2) << bad_time.err;
  EXPECT_EQ(std::count(bad_time.err.begin(), bad_time.err.end(), '\n'), 1) << bad_time.err;
  EXPECT_NE(bad_time.err.find("--start"), std::string::npos) << bad_time.err;
  auto backwards = up.Cli({"reservation", "create", "--project", "res", "--gpus", "1", "--start", "now+2h", "--end",
                           "now+1h"});
  EXPECT_EQ(backwards.exit_code, 2) << backwards.err;
  auto too_many = up.Cli({"reservation", "create", "--project", "res", "--gpus", "3", "--start", "now+1h", "--end",
                          "now+2h"});
  EXPECT_EQ(too_many.exit_code, 1);
  EXPECT_NE(too_many.err.find("the cluster has 2"), std::string::npos) << too_many.err;
  auto no_project = up.Cli({"reservation", "create", "--project", "nope", "--gpus", "1", "--start", "now+1h",
                            "--end", "now+2h"});
  EXPECT_EQ(no_project.exit_code, 3) << no_project.err;

  auto made = up.Cli({"reservation", "create", "--project", "res", "--gpus", "2", "--gpu-type", "A100-80GB", "--start",
                      "now+1h", "--end", "now+3h", "--name", "demo"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("r-1"), std::string::npos) << made.out;
  auto overlap = up.Cli({"reservation", "create", "--project", "res", "--gpus", "1", "--start", "now+2h", "--end",
                         "now+4h"});
  EXPECT_EQ(overlap.exit_code, 1);
  EXPECT_NE(overlap.err.find("overlaps r-1"), std::string::npos) << overlap.err;
  auto list = up.Cli({"reservation", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("demo"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("upcoming"), std::string::npos) << list.out;
  auto listed = up.Cli({"reservation", "list", "--output", "json"});
  json arr = json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(arr.is_array()) << listed.out;
  ASSERT_EQ(arr.size(), 1u);
  EXPECT_EQ(arr[0]["gpus"], 2);
  auto del = up.Cli({"reservation", "delete", "r-1"});
  EXPECT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(up.Cli({"reservation", "delete", "r-1"}).exit_code, 3);
  EXPECT_NE(up.Cli({"reservation", "list"}).out.find("No reservations"), std::string::npos);
}

// The scheduler round holds reserved GPUs back from other projects (docs/scheduling.md, Reservations).
TEST(ReservationIntegration, KeepsGpusForItsProjectInsideItsWindow) {
  UpProcess up("3xA100-80GB");
  up.Start();
  for (const char* p : {"res", "other"})
    ASSERT_EQ(up.Client()->Post("/v1/projects", json{{"name", p}}.dump(), "application/json")->status, 201);
  // Every GPU for project "res" from 1 h from now to 3 h from now.
  auto made = up.Cli({"reservation", "create", "--project", "res", "--gpus", "3", "--start", "now+1h", "--end",
                      "now+3h"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  // Another project's job with no runtime limit would run into the window: it waits, saying why, while a GPU is
  // free. One whose runtime limit ends before the window starts runs; the reserved project's job starts.
  const std::string unbounded = up.Submit({{"command", {"sleep", "300"}}, {"project", "other"}, {"gpus", 1}});
  const std::string bounded =
      up.Submit({{"command", {"sleep", "300"}}, {"project", "other"}, {"gpus", 1}, {"runtime", "10m"}});
  const std::string mine = up.Submit({{"command", {"sleep", "300"}}, {"project", "res"}, {"gpus", 1}});
  EXPECT_TRUE(up.WaitState(bounded, "RUNNING")) << up.Job(bounded).dump();
  EXPECT_TRUE(up.WaitState(mine, "RUNNING")) << up.Job(mine).dump();
  json waiting = up.Job(unbounded);
  EXPECT_EQ(waiting.value("state", ""), "QUEUED") << waiting.dump();
  const std::string why = waiting.value("reason", "");
  EXPECT_TRUE(why.find("r-1") != std::string::npos || why.find("reserv") != std::string::npos) << waiting.dump();
  // Its expected start: when the window ends (estimates are refreshed every few seconds).
  EXPECT_TRUE(WaitFor([&] { return up.Job(unbounded).value("expected_start_at_ms", int64_t{0}) > 0; }));
  auto get = up.Cli({"job", "get", unbounded});
  EXPECT_NE(get.out.find("Expected start:"), std::string::npos) << get.out;
  auto list = up.Cli({"job", "list"});
  EXPECT_NE(list.out.find("START"), std::string::npos) << list.out;
}

}  // namespace
}  // namespace fastgpu::testing
