// Preemption that keeps work and `fastgpu job migrate`, through the real binary (docs/scheduling.md): `fastgpu up`
// on simulated GPUs, jobs submitted with the CLI, each a shell script that saves its state in
// $FASTGPU_CHECKPOINT_DIR when it gets SIGUSR1 and resumes from it in its next attempt.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>

#include "harness.h"

namespace fastgpu::testing {
namespace {

// Saves "step-42" on SIGUSR1 and exits; resumed, prints what it saved and ends. Every attempt prints its restart
// count and its GPUs first.
constexpr const char* kCheckpointingJob =
    "echo \"attempt restarts=$FASTGPU_RESTART_COUNT gpus=$FASTGPU_GPU_UUIDS\"; "
    "if [ -f \"$FASTGPU_CHECKPOINT_DIR/state\" ]; then echo \"resumed from $(cat \"$FASTGPU_CHECKPOINT_DIR/state\")\"; "
    "exit 0; fi; "
    "trap 'echo step-42 > \"$FASTGPU_CHECKPOINT_DIR/state\"; echo checkpointed; exit 0' USR1; "
    "echo running; while :; do sleep 0.05; done";

// A checkpoint root the jobs can reach: they run as their project's uid when the tests run as root, and the
// homes of UpProcess are private (0700) temp dirs, so the default <home>/checkpoints could not be reached.
class CheckpointRoot {
 public:
  CheckpointRoot() {
    char tmpl[] = "/tmp/fastgpu-ckpt-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::chmod(dir_.c_str(), 0711);
  }
  ~CheckpointRoot() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string path() const { return dir_ + "/checkpoints"; }

 private:
  std::string dir_;
};

std::string Events(const UpProcess& up, const std::string& id) {
  auto ev = up.Cli({"job", "events", id, "--output", "json"});
  return ev.out;
}

bool LogHas(const UpProcess& up, const std::string& id, const std::string& text) {
  return up.Cli({"job", "logs", id}).out.find(text) != std::string::npos;
}

TEST(PreemptionTest, APreemptedJobCheckpointsOnSigusr1IsRequeuedAndResumesFromItsCheckpoint) {
  CheckpointRoot ckpt;
  UpProcess up("1xA100-80GB");
  up.Start({"--preempt-min-runtime", "0", "--checkpoint-root", ckpt.path()});
  auto low = up.Cli({"job", "submit", "--name", "low", "--priority", "10", "--preemptible", "--checkpoint-grace",
                     "60s", "--", "sh", "-c", kCheckpointingJob});
  ASSERT_EQ(low.exit_code, 0) << low.err;
  const std::string low_id = Trim(low.out);
  ASSERT_TRUE(up.WaitState(low_id, "RUNNING")) << up.Job(low_id).dump();
  ASSERT_TRUE(WaitFor([&] { return LogHas(up, low_id, "running"); })) << up.Cli({"job", "logs", low_id}).out;

  // A more urgent job on the full cluster: the low-priority one gets SIGUSR1, saves, exits and goes back to the
  // queue; the urgent one runs; then the first resumes from its checkpoint.
  auto high = up.Cli({"job", "submit", "--name", "high", "--priority", "90", "--", "sh", "-c", "echo high-done"});
  ASSERT_EQ(high.exit_code, 0) << high.err;
  const std::string high_id = Trim(high.out);
  ASSERT_TRUE(up.WaitState(high_id, "SUCCEEDED", std::chrono::seconds(30))) << up.Job(high_id).dump()
                                                                             << Events(up, low_id);
  ASSERT_TRUE(up.WaitState(low_id, "SUCCEEDED", std::chrono::seconds(30))) << up.Job(low_id).dump()
                                                                           << Events(up, low_id);

  const std::string log = up.Cli({"job", "logs", low_id}).out;
  EXPECT_NE(log.find("attempt restarts=0 "), std::string::npos) << log;
  EXPECT_NE(log.find("checkpointed\n"), std::string::npos) << log;
  EXPECT_NE(log.find("attempt restarts=1 "), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from step-42\n"), std::string::npos) << log;
  EXPECT_LT(log.find("checkpointed"), log.find("attempt restarts=1")) << log;

  json job = up.Job(low_id);
  EXPECT_EQ(job.value("attempt", 0), 2) << job.dump();
  EXPECT_GT(job.value("attained_gpu_ms", int64_t{0}), 0) << job.dump();
  const std::string events = Events(up, low_id);
  EXPECT_NE(events.find("preempted by " + high_id), std::string::npos) << events;
  EXPECT_NE(events.find("requeued after preemption"), std::string::npos) << events;
  // The checkpoint directory is kept after the job has ended (<checkpoint root>/<id>).
  EXPECT_EQ(Trim(ReadFile(ckpt.path() + "/" + low_id + "/state")), "step-42");
  // The urgent job never waited for the low-priority one to finish.
  EXPECT_EQ(up.Job(high_id).value("attempt", 0), 1);
}

TEST(PreemptionTest, JobMigrateMovesARunningJobToOtherGpusAndRefusesWhatItCannotMove) {
  CheckpointRoot ckpt;
  UpProcess up("2xA100-80GB");
  up.Start({"--checkpoint-root", ckpt.path()});
  auto sub = up.Cli({"job", "submit", "--preemptible", "--", "sh", "-c", kCheckpointingJob});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(up.WaitState(id, "RUNNING")) << up.Job(id).dump();
  ASSERT_TRUE(WaitFor([&] { return LogHas(up, id, "running"); }));
  const std::string first_gpu = up.Job(id)["assigned_gpus"][0].get<std::string>();

  auto moved = up.Cli({"job", "migrate", id, "--reason", "ECC errors"});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  EXPECT_NE(moved.out.find(id + " RUNNING (migrating: SIGUSR1 sent"), std::string::npos) << moved.out;
  ASSERT_TRUE(up.WaitState(id, "SUCCEEDED", std::chrono::seconds(30))) << up.Job(id).dump() << Events(up, id);
  const std::string log = up.Cli({"job", "logs", id}).out;
  EXPECT_NE(log.find("checkpointed\n"), std::string::npos) << log;
  EXPECT_NE(log.find("attempt restarts=1 "), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from step-42\n"), std::string::npos) << log;
  // The next attempt ran on the other GPU.
  json job = up.Job(id);
  ASSERT_EQ(job["assigned_gpus"].size(), 1u) << job.dump();
  EXPECT_NE(job["assigned_gpus"][0].get<std::string>(), first_gpu) << job.dump();
  const std::string events = Events(up, id);
  EXPECT_NE(events.find("migrated off GPU " + first_gpu + " on "), std::string::npos) << events;
  EXPECT_NE(events.find(": ECC errors"), std::string::npos) << events;
  EXPECT_NE(events.find("requeued after migration"), std::string::npos) << events;

  // Refusals: one line on stderr, exit code 1, nothing changed.
  auto ended = up.Cli({"job", "migrate", id});
  EXPECT_EQ(ended.exit_code, 1);
  EXPECT_NE(ended.err.find("only a running job can be migrated"), std::string::npos) << ended.err;
  EXPECT_EQ(std::count(ended.err.begin(), ended.err.end(), '\n'), 1) << ended.err;
  auto rigid = up.Cli({"job", "submit", "--", "sh", "-c", "trap 'exit 0' TERM; echo up; while :; do sleep 0.05; done"});
  ASSERT_EQ(rigid.exit_code, 0) << rigid.err;
  const std::string rigid_id = Trim(rigid.out);
  ASSERT_TRUE(up.WaitState(rigid_id, "RUNNING")) << up.Job(rigid_id).dump();
  auto refused = up.Cli({"job", "migrate", rigid_id});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("is not preemptible"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  EXPECT_EQ(up.Job(rigid_id).value("state", ""), "RUNNING");
  // --force: SIGTERM at once, requeued, and it runs again.
  auto forced = up.Cli({"job", "migrate", rigid_id, "--force", "--output", "json"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  ASSERT_TRUE(WaitFor([&] { return up.Job(rigid_id).value("attempt", 0) == 2; }, std::chrono::seconds(30)))
      << up.Job(rigid_id).dump() << Events(up, rigid_id);
  EXPECT_NE(Events(up, rigid_id).find("requeued after migration"), std::string::npos) << Events(up, rigid_id);
}

}  // namespace
}  // namespace fastgpu::testing
