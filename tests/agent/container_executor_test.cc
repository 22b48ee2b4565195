// The process executor with an image (docs/containers.md): podman run under the job's supervisor. Uses a tiny
// local image (tests/support/podman_image.h); skipped only when podman is not installed.
#include <signal.h>
#include <unistd.h>

#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/executor.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "support/podman_image.h"
#include "test_util.h"

namespace fastgpu::agent {
namespace {

using ::testing::HasSubstr;
using namespace fastgpu::agent::testing;  // NOLINT
using fastgpu::testing::PodmanImage;

class ContainerExecutorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { why_ = PodmanImage::SetUp(); }
  static void TearDownTestSuite() { PodmanImage::TearDown(); }
  void SetUp() override {
    if (why_.rfind("skip: ", 0) == 0) GTEST_SKIP() << why_.substr(6);
    ASSERT_TRUE(why_.empty()) << why_;
    root_ = MakeTempDirForJobs();
    ASSERT_FALSE(root_.empty());
    exec_ = MakeProcessExecutor(clock_);
  }
  void TearDown() override {
    if (!exec_) return;
    EXPECT_TRUE(KillGroupsAndReap(pgids_)) << "child processes remain after the test";
    exec_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  LaunchSpec Spec(const std::string& id, const std::string& script) {
    LaunchSpec s;
    s.job_id = id;
    s.argv = {"sh", "-c", script};
    s.job_dir = root_ + "/jobs/" + id;
    s.log_path = root_ + "/logs/" + id + ".log";
    s.run_as_uid = kTestJobUid;  // used only as root
    s.project = "test";
    s.image = PodmanImage::kImage;
    return s;
  }
  std::optional<ExitStatus> WaitExit(const std::string& id) {
    std::optional<ExitStatus> found;
    WaitUntil(
        [&] {
          for (auto& st : exec_->Poll())
            if (st.job_id == id) found = st;
          return found.has_value();
        },
        std::chrono::seconds(30));
    return found;
  }
  static bool NoContainerLeft() {
    return WaitUntil([] { return PodmanImage::Containers().find_first_not_of(" \n") == std::string::npos; },
                     std::chrono::seconds(20));
  }

  static inline std::string why_;
  FakeClock clock_;
  SystemClock real_;  // the lease is in CLOCK_MONOTONIC time, which the supervisor reads itself
  std::string root_;
  std::unique_ptr<Executor> exec_;
  std::vector<int64_t> pgids_;
};

// The environment reaches the container (secrets included) but never podman's command line, which every user of
// the node can read in /proc.
TEST_F(ContainerExecutorTest, TheEnvironmentReachesTheContainerButNotPodmansCommandLine) {
  LaunchSpec spec = Spec("env", "echo \"secret=$API_KEY\"; echo ready; sleep 30");
  spec.env["API_KEY"] = "s3cr3t-value with spaces";
  auto ref = exec_->Launch(spec);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  pgids_.push_back(ref->pid);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("ready") != std::string::npos; },
                        std::chrono::seconds(30)))
      << ReadText(spec.log_path);
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("secret=s3cr3t-value with spaces\n"));
  const std::string cmdline = ReadText("/proc/" + std::to_string(ref->pid) + "/cmdline");
  EXPECT_THAT(cmdline, HasSubstr("podman"));
  EXPECT_EQ(cmdline.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(ReadText("/proc/" + std::to_string(ref->pid) + "/environ").find("s3cr3t"), std::string::npos);
  ASSERT_TRUE(exec_->Terminate("env", std::chrono::seconds(5)).ok());
  ASSERT_TRUE(WaitExit("env").has_value());
  EXPECT_TRUE(NoContainerLeft()) << PodmanImage::Containers();

  // A value with a line break cannot pass through podman's env-file: refused, saying so.
  LaunchSpec multi = Spec("multi", "true");
  multi.env["PEM"] = "line1\nline2";
  auto refused = exec_->Launch(multi);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("environment variable PEM of job multi holds a line break"));
}

// A fenced container job that ignores SIGTERM: the supervisor kills podman after the lease's grace and removes the
// container by name before it records the (lost) end.
TEST_F(ContainerExecutorTest, AFencedContainerJobIsStoppedAndItsContainerRemoved) {
  const std::string lease = root_ + "/lease";
  ASSERT_TRUE(WriteFileAtomic(lease, std::to_string(real_.MonotonicNanos() + 60'000'000'000) + " 300 10000\n").ok());
  LaunchSpec spec = Spec("fenced", "trap 'echo got-term' TERM; echo ready; while :; do sleep 0.05; done");
  spec.lease_path = lease;
  auto ref = exec_->Launch(spec);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  pgids_.push_back(ref->pid);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("ready") != std::string::npos; },
                        std::chrono::seconds(30)))
      << ReadText(spec.log_path);
  EXPECT_NE(PodmanImage::Containers().find(ContainerName("fenced", 0, spec.job_dir)), std::string::npos);
  ASSERT_TRUE(WriteFileAtomic(lease, std::to_string(real_.MonotonicNanos()) + " 300 10000\n").ok());
  auto st = WaitExit("fenced");
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->lost);
  EXPECT_THAT(st->reason, HasSubstr("fenced"));
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("got-term"));  // SIGTERM reached the container's process
  // Removed before the end was recorded: nothing to wait for.
  EXPECT_EQ(PodmanImage::Containers().find_first_not_of(" \n"), std::string::npos) << PodmanImage::Containers();
}

}  // namespace
}  // namespace fastgpu::agent
