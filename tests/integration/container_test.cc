// Container jobs (`job submit --image`, docs/containers.md) through the real binary: `fastgpu up` on simulated GPUs
// runs each job as `podman run` of a tiny local image (busybox-static imported with `podman import`, built once per
// run of this binary, in a podman storage of its own). Skipped only when podman is not installed.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "harness.h"
#include "support/podman_image.h"

namespace fastgpu::testing {
namespace {

constexpr const char* kImage = PodmanImage::kImage;

// The image, once per run of this binary; the reason to skip (podman not installed) or the error otherwise.
class PodmanEnv {
 public:
  static void SetUp() {
    const std::string why = PodmanImage::SetUp();
    if (why.rfind("skip: ", 0) == 0) {
      skip_ = why.substr(6);
    } else {
      ASSERT_TRUE(why.empty()) << why;
    }
  }
  static void TearDown() { PodmanImage::TearDown(); }
  static const std::string& skip() { return skip_; }
  static std::string Containers() { return PodmanImage::Containers(); }

 private:
  static inline std::string skip_;
};

// A directory every job uid may enter (jobs run as their project's uid when the tests run as root; the homes of
// UpProcess are private), holding a checkpoint root and a working directory with a file in it.
class SharedDir {
 public:
  SharedDir() {
    char tmpl[] = "/tmp/fastgpu-ctr-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::chmod(dir_.c_str(), 0711);
    fs::create_directories(dir_ + "/code");
    ::chmod((dir_ + "/code").c_str(), 0755);
    std::ofstream(dir_ + "/code/hello.txt") << "hello from the workdir\n";
    ::chmod((dir_ + "/code/hello.txt").c_str(), 0644);
  }
  ~SharedDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string checkpoints() const { return dir_ + "/checkpoints"; }
  std::string code() const { return dir_ + "/code"; }

 private:
  std::string dir_;
};

class ContainerTest : public ::testing::Test {
 protected:
  // Once per run of this binary (ctest runs each test on its own: then once per test; an import takes ~0.5 s).
  static void SetUpTestSuite() { PodmanEnv::SetUp(); }
  static void TearDownTestSuite() { PodmanEnv::TearDown(); }
  void SetUp() override {
    if (!PodmanEnv::skip().empty()) GTEST_SKIP() << PodmanEnv::skip();
  }
  static std::string Logs(const UpProcess& up, const std::string& id) { return up.Cli({"job", "logs", id}).out; }
  static bool LogHas(const UpProcess& up, const std::string& id, const std::string& text) {
    return Logs(up, id).find(text) != std::string::npos;
  }
  // True once no container of this run is left (podman run --rm, and the cleanup by name).
  static bool NoContainerLeft() {
    return WaitFor([] { return Trim(PodmanEnv::Containers()).empty(); }, std::chrono::seconds(20));
  }
};

TEST_F(ContainerTest, AContainerJobGetsItsEnvironmentWorkdirAndCheckpointDirAndItsExitCodeCounts) {
  SharedDir shared;
  UpProcess up("2xA100-80GB");
  up.Start({"--checkpoint-root", shared.checkpoints()});
  auto sub = up.Cli({"job", "submit", "--image", kImage, "--workdir", shared.code(), "--env", "GREETING=hi there",
                     "--", "sh", "-c",
                     "echo \"job=$FASTGPU_JOB_ID cuda=$CUDA_VISIBLE_DEVICES greeting=$GREETING home=$HOME\"; "
                     "echo \"pwd=$(pwd)\"; cat hello.txt; echo saved > \"$FASTGPU_CHECKPOINT_DIR/state\"; "
                     "if [ -e /etc/debian_version ]; then echo host-root; fi; echo \"uid=$(id -u)\"; exit 3"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(up.WaitState(id, "FAILED", std::chrono::seconds(60))) << up.Job(id).dump() << Logs(up, id);
  json job = up.Job(id);
  EXPECT_EQ(job.value("exit_code", -1), 3) << job.dump();
  EXPECT_EQ(job.value("image", ""), kImage) << job.dump();
  const std::string log = Logs(up, id);
  EXPECT_NE(log.find("job=" + id + " cuda=0 greeting=hi there home=" + shared.code() + "\n"), std::string::npos)
      << log;
  EXPECT_NE(log.find("pwd=" + shared.code() + "\n"), std::string::npos) << log;
  EXPECT_NE(log.find("hello from the workdir\n"), std::string::npos) << log;
  EXPECT_EQ(log.find("host-root"), std::string::npos) << "the job ran on the host's files:\n" << log;
  // The checkpoint directory is mounted, and what the job wrote there is its own (its uid, not root's).
  const std::string state = shared.checkpoints() + "/" + id + "/state";
  EXPECT_EQ(ReadFile(state), "saved\n");
  struct stat sb {};
  ASSERT_EQ(::stat(state.c_str(), &sb), 0);
  if (::geteuid() == 0) {
    EXPECT_NE(sb.st_uid, 0u) << "a container job of a root agent wrote as root";
    EXPECT_NE(log.find("uid=" + std::to_string(sb.st_uid) + "\n"), std::string::npos) << log;
  }
  // `job get` names the image; a job that succeeds ends SUCCEEDED.
  EXPECT_NE(up.Cli({"job", "get", id}).out.find(kImage), std::string::npos);
  auto ok = up.Cli({"job", "submit", "--image", kImage, "--", "true"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_TRUE(up.WaitState(Trim(ok.out), "SUCCEEDED", std::chrono::seconds(60))) << up.Job(Trim(ok.out)).dump();
  EXPECT_TRUE(NoContainerLeft()) << PodmanEnv::Containers();
}

TEST_F(ContainerTest, CancelAndTheRuntimeLimitStopAContainerJobThroughItsSignalsAndLeaveNoContainer) {
  SharedDir shared;
  UpProcess up("2xA100-80GB");
  up.Start({"--checkpoint-root", shared.checkpoints(), "--stop-grace", "3s"});
  // SIGTERM reaches the job's process in the container: it says so and ends within the grace.
  auto polite = up.Cli({"job", "submit", "--image", kImage, "--", "sh", "-c",
                        "trap 'echo got TERM; exit 0' TERM; echo running; while :; do sleep 0.05; done"});
  ASSERT_EQ(polite.exit_code, 0) << polite.err;
  const std::string polite_id = Trim(polite.out);
  // One that ignores SIGTERM is killed after the grace (podman is killed; its container is removed by name).
  auto stubborn = up.Cli({"job", "submit", "--image", kImage, "--", "sh", "-c",
                          "trap '' TERM; echo running; while :; do sleep 0.05; done"});
  ASSERT_EQ(stubborn.exit_code, 0) << stubborn.err;
  const std::string stubborn_id = Trim(stubborn.out);
  ASSERT_TRUE(WaitFor([&] { return LogHas(up, polite_id, "running") && LogHas(up, stubborn_id, "running"); },
                      std::chrono::seconds(60)))
      << Logs(up, polite_id) << Logs(up, stubborn_id);
  auto cancel = up.Cli({"job", "cancel", polite_id, stubborn_id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(up.WaitState(polite_id, "CANCELLED", std::chrono::seconds(20))) << up.Job(polite_id).dump();
  EXPECT_TRUE(LogHas(up, polite_id, "got TERM\n")) << Logs(up, polite_id);
  ASSERT_TRUE(up.WaitState(stubborn_id, "CANCELLED", std::chrono::seconds(30))) << up.Job(stubborn_id).dump();
  EXPECT_TRUE(NoContainerLeft()) << PodmanEnv::Containers();

  // The runtime limit stops a container job too.
  auto limited = up.Cli({"job", "submit", "--image", kImage, "--runtime", "1s", "--", "sleep", "300"});
  ASSERT_EQ(limited.exit_code, 0) << limited.err;
  const std::string limited_id = Trim(limited.out);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string s = up.Job(limited_id).value("state", "");
        return s == "FAILED" || s == "CANCELLED";
      },
      std::chrono::seconds(40)))
      << up.Job(limited_id).dump();
  EXPECT_NE(up.Job(limited_id).dump().find("runtime"), std::string::npos) << up.Job(limited_id).dump();
  EXPECT_TRUE(NoContainerLeft()) << PodmanEnv::Containers();
}

// A job whose supervisor was killed (kill -9) still runs, watched by the agent; when it is then stopped and ignores
// SIGTERM, the agent's SIGKILL ends podman, which cannot pass that on: the agent removes the container by name.
TEST_F(ContainerTest, AStoppedJobWhoseSupervisorWasKilledLeavesNoContainer) {
  SharedDir shared;
  UpProcess up("1xA100-80GB");
  up.Start({"--checkpoint-root", shared.checkpoints(), "--stop-grace", "1s"});
  auto sub = up.Cli({"job", "submit", "--image", kImage, "--", "sh", "-c",
                     "trap '' TERM; echo running; while :; do sleep 0.05; done"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(WaitFor([&] { return LogHas(up, id, "running"); }, std::chrono::seconds(60))) << Logs(up, id);
  // <job dir>/pid: "<job pid> <job start ticks> <supervisor pid> <supervisor start ticks>".
  std::istringstream rec(ReadFile(up.home() + "/jobs/" + id + "/pid"));
  long long job_pid = 0, ticks = 0, supervisor = 0;
  rec >> job_pid >> ticks >> supervisor;
  ASSERT_GT(supervisor, 0) << ReadFile(up.home() + "/jobs/" + id + "/pid");
  ASSERT_EQ(::kill(static_cast<pid_t>(supervisor), SIGKILL), 0);
  EXPECT_NE(PodmanEnv::Containers().find("fastgpu-" + id + "-"), std::string::npos) << PodmanEnv::Containers();
  auto cancel = up.Cli({"job", "cancel", id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string s = up.Job(id).value("state", "");
        return s == "CANCELLED" || s == "LOST" || s == "FAILED";
      },
      std::chrono::seconds(30)))
      << up.Job(id).dump();
  EXPECT_TRUE(NoContainerLeft()) << PodmanEnv::Containers();
}

TEST_F(ContainerTest, JobMigrateSendsTheCheckpointSignalIntoTheContainerAndTheNextAttemptResumes) {
  SharedDir shared;
  UpProcess up("2xA100-80GB");
  up.Start({"--checkpoint-root", shared.checkpoints()});
  auto sub = up.Cli({"job", "submit", "--image", kImage, "--preemptible", "--", "sh", "-c",
                     "echo \"attempt restarts=$FASTGPU_RESTART_COUNT\"; "
                     "if [ -f \"$FASTGPU_CHECKPOINT_DIR/state\" ]; then "
                     "echo \"resumed from $(cat \"$FASTGPU_CHECKPOINT_DIR/state\")\"; exit 0; fi; "
                     "trap 'echo step-42 > \"$FASTGPU_CHECKPOINT_DIR/state\"; echo checkpointed; exit 0' USR1; "
                     "echo running; while :; do sleep 0.05; done"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(WaitFor([&] { return LogHas(up, id, "running"); }, std::chrono::seconds(60))) << Logs(up, id);
  auto moved = up.Cli({"job", "migrate", id});
  ASSERT_EQ(moved.exit_code, 0) << moved.err;
  ASSERT_TRUE(up.WaitState(id, "SUCCEEDED", std::chrono::seconds(60))) << up.Job(id).dump() << Logs(up, id);
  const std::string log = Logs(up, id);
  EXPECT_NE(log.find("checkpointed\n"), std::string::npos) << log;
  EXPECT_NE(log.find("attempt restarts=1\n"), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from step-42\n"), std::string::npos) << log;
  EXPECT_TRUE(NoContainerLeft()) << PodmanEnv::Containers();
}

// `job exec` into a container job (docs/exec.md): podman exec into its container, with the container's environment,
// input passed through and the command's exit code.
TEST_F(ContainerTest, ExecRunsInsideTheJobsContainer) {
  SharedDir shared;
  UpProcess up("2xA100-80GB");
  up.Start({"--checkpoint-root", shared.checkpoints()});
  auto sub = up.Cli({"job", "submit", "--image", kImage, "--env", "GREETING=hi", "--", "sh", "-c",
                     "echo running; exec sleep 600"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(WaitFor([&] { return LogHas(up, id, "running"); }, std::chrono::seconds(60))) << up.Job(id).dump();
  auto e = up.Cli({"job", "exec", id, "--", "sh", "-c",
                   "echo \"$FASTGPU_JOB_ID $GREETING\"; if [ -e /etc/debian_version ]; then echo host-root; fi; exit 5"});
  EXPECT_EQ(e.exit_code, 5) << e.err;
  EXPECT_EQ(e.out, id + " hi\n") << e.err;
  auto in = up.Cli({"job", "exec", "-i", id, "--", "cat"}, "through the container\n");
  EXPECT_EQ(in.exit_code, 0) << in.err;
  EXPECT_EQ(in.out, "through the container\n") << in.err;
  ASSERT_EQ(up.Cli({"job", "cancel", id}).exit_code, 0);
  ASSERT_TRUE(up.WaitState(id, "CANCELLED", std::chrono::seconds(30))) << up.Job(id).dump();
  EXPECT_TRUE(NoContainerLeft()) << PodmanEnv::Containers();
}

TEST_F(ContainerTest, AMissingImageOrABadNameIsRefusedWithAClearReason) {
  UpProcess up("1xA100-80GB");
  up.Start();
  auto bad = up.Cli({"job", "submit", "--image", "Not An Image", "--", "true"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("is not an image name"), std::string::npos) << bad.err;
  auto sub = up.Cli({"job", "submit", "--image", "localhost/missing:1", "--", "true"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(up.WaitState(id, "FAILED", std::chrono::seconds(30))) << up.Job(id).dump();
  const std::string dump = up.Job(id).dump();
  EXPECT_NE(dump.find("image localhost/missing:1 is not on node "), std::string::npos) << dump;
  EXPECT_NE(dump.find("podman pull localhost/missing:1 there"), std::string::npos) << dump;
  // The node says that it can run container jobs.
  EXPECT_NE(up.GetJson("/v1/nodes").dump().find("\"containers\":\"podman\""), std::string::npos)
      << up.GetJson("/v1/nodes").dump();
}

}  // namespace
}  // namespace fastgpu::testing
