// One process per GPU (`fastgpu job submit --process-per-gpu`, "processes": "per-gpu") through the real binary:
// `fastgpu up` on simulated GPUs, the agent starting the job through the binary's own launcher.
#include <gtest/gtest.h>

#include "harness.h"
#include "support/source_path.h"

namespace fastgpu::testing {
namespace {

class RanksTest : public ::testing::Test {
 protected:
  void SetUp() override { up_.Start(); }
  UpProcess up_{"2xA100-80GB"};
};

TEST_F(RanksTest, TwoGpusStartTwoProcessesWithTheirRanks) {
  auto sub = up_.Cli({"job", "submit", "--gpus", "2", "--process-per-gpu", "--", "sh", "-c",
                      "echo rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE local_world=$LOCAL_WORLD_SIZE "
                      "master=$MASTER_ADDR:$MASTER_PORT cvd=$CUDA_VISIBLE_DEVICES"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  auto wait = up_.Cli({"job", "wait", id, "--timeout", "30s"});
  EXPECT_EQ(wait.exit_code, 0) << wait.out << wait.err;
  json job = up_.Job(id);
  EXPECT_EQ(job.value("state", ""), "SUCCEEDED") << job.dump();
  EXPECT_EQ(job.value("processes", ""), "per-gpu") << job.dump();
  auto logs = up_.Cli({"job", "logs", id});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  ASSERT_EQ(job["assigned_gpu_indices"].size(), 2u) << job.dump();
  const std::string cvd = std::to_string(job["assigned_gpu_indices"][0].get<int>()) + "," +
                          std::to_string(job["assigned_gpu_indices"][1].get<int>());
  for (int r = 0; r < 2; ++r) {
    const std::string line = "rank=" + std::to_string(r) + " local=" + std::to_string(r) + " world=2 local_world=2 master=127.0.0.1:";
    EXPECT_NE(logs.out.find(line), std::string::npos) << logs.out;
  }
  // Every process sees both of the job's GPUs (torchrun's convention) and picks its own with LOCAL_RANK.
  size_t seen = 0;
  for (size_t at = logs.out.find(" cvd=" + cvd + "\n"); at != std::string::npos;
       at = logs.out.find(" cvd=" + cvd + "\n", at + 1)) {
    ++seen;
  }
  EXPECT_EQ(seen, 2u) << logs.out;
  // MASTER_PORT is the one a multi-node job would use (30000 + …), not empty.
  EXPECT_EQ(logs.out.find("master=127.0.0.1: "), std::string::npos) << logs.out;

  auto get = up_.Cli({"job", "get", id});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_NE(get.out.find("one per GPU"), std::string::npos) << get.out;
}

TEST_F(RanksTest, AFailingRankFailsTheJobWithItsExitCodeAndStopsTheOther) {
  auto sub = up_.Cli({"job", "submit", "--gpus", "2", "--process-per-gpu", "--", "sh", "-c",
                      // Rank 1 fails once rank 0 is ready to say that it was stopped (they share the working
                      // directory).
                      "if [ \"$LOCAL_RANK\" = 1 ]; then while [ ! -e ready0 ]; do sleep 0.02; done; exit 3; fi; "
                      "trap 'echo rank0-stopped; exit 0' TERM; touch ready0; while :; do sleep 0.05; done"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(up_.WaitState(id, "FAILED")) << up_.Job(id).dump();
  json job = up_.Job(id);
  EXPECT_EQ(job["exit_code"], 3) << job.dump();
  EXPECT_NE(job.value("reason", "").find("exit code 3"), std::string::npos) << job.dump();
  auto logs = up_.Cli({"job", "logs", id});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("fastgpu: rank 1 (local rank 1) exited with code 3"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("rank0-stopped"), std::string::npos) << logs.out;
  auto wait = up_.Cli({"job", "wait", id, "--timeout", "5s"});
  EXPECT_EQ(wait.exit_code, 1) << wait.out << wait.err;
}

TEST_F(RanksTest, CancelStopsEveryProcess) {
  auto sub = up_.Cli({"job", "submit", "--gpus", "2", "--process-per-gpu", "--", "sh", "-c",
                      "trap 'echo stopped-$RANK; exit 0' TERM; echo up-$RANK; while :; do sleep 0.05; done"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(WaitFor([&] {
    auto logs = up_.Cli({"job", "logs", id});
    return logs.out.find("up-0") != std::string::npos && logs.out.find("up-1") != std::string::npos;
  })) << up_.Job(id).dump();
  auto cancel = up_.Cli({"job", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(up_.WaitState(id, "CANCELLED")) << up_.Job(id).dump();
  auto logs = up_.Cli({"job", "logs", id});
  EXPECT_NE(logs.out.find("stopped-0"), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("stopped-1"), std::string::npos) << logs.out;
}

// A torch.distributed all_reduce (gloo) of two processes on one node, using only the environment they are
// given (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK), when Debian's python3-torch is installed.
TEST_F(RanksTest, ATorchAllReduceAcrossTheProcessesOfOneNode) {
  if (std::system("/usr/bin/python3 -c 'import torch.distributed' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "needs /usr/bin/python3 with torch (Debian python3-torch); not installed here";
  const std::string script = SourcePath("tests/integration/fleet/allreduce.py");
  auto sub = up_.Cli({"job", "submit", "--gpus", "2", "--process-per-gpu", "--", "/usr/bin/python3", script});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string st = up_.Job(id).value("state", "");
        return st == "SUCCEEDED" || st == "FAILED" || st == "CANCELLED";
      },
      std::chrono::seconds(120)))
      << up_.Job(id).dump();
  auto logs = up_.Cli({"job", "logs", id});
  EXPECT_NE(logs.out.find("rank 0/2 "), std::string::npos) << logs.out;
  EXPECT_NE(logs.out.find("rank 1/2 "), std::string::npos) << logs.out;
  EXPECT_EQ(logs.out.find("WRONG"), std::string::npos) << logs.out;
  EXPECT_EQ(up_.Job(id).value("state", ""), "SUCCEEDED") << up_.Job(id).dump();
}

TEST_F(RanksTest, BadValuesAreRefusedWithTheReason) {
  auto frac = up_.Cli({"job", "submit", "--gpus", "0.5", "--process-per-gpu", "--", "true"});
  EXPECT_EQ(frac.exit_code, 2) << frac.out << frac.err;
  EXPECT_NE(frac.err.find("whole GPUs"), std::string::npos) << frac.err;

  auto r = up_.Client()->Post("/v1/jobs", json{{"command", {"true"}}, {"processes", "per-core"}}.dump(),
                              "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_NE(r->body.find("per-gpu"), std::string::npos) << r->body;
}

}  // namespace
}  // namespace fastgpu::testing
