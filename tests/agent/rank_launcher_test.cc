#include "agent/rank_launcher.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace fastgpu::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace fastgpu::agent::testing;  // NOLINT

TEST(RankEnv, RanksAreCountedPerProcessAcrossNodes) {
  // Node 1 of 2, 4 GPUs each: global ranks 4..7.
  RankLayout l{.nodes = 2, .node_rank = 1, .gpus_per_node = 4};
  auto env = RankEnv(l, 2);
  EXPECT_EQ(env.at("RANK"), "6");
  EXPECT_EQ(env.at("LOCAL_RANK"), "2");
  EXPECT_EQ(env.at("WORLD_SIZE"), "8");
  EXPECT_EQ(env.at("LOCAL_WORLD_SIZE"), "4");
  EXPECT_EQ(env.at("GROUP_RANK"), "1");
  EXPECT_EQ(env.at("GROUP_WORLD_SIZE"), "2");
  EXPECT_EQ(env.at("NODE_RANK"), "1");
  EXPECT_EQ(RankEnv(l, 0).at("RANK"), "4");
  EXPECT_EQ(RankEnv(l, 3).at("RANK"), "7");

  // One node: ranks are the local ranks.
  RankLayout one{.nodes = 1, .node_rank = 0, .gpus_per_node = 2};
  EXPECT_EQ(RankEnv(one, 0).at("RANK"), "0");
  EXPECT_EQ(RankEnv(one, 1).at("RANK"), "1");
  EXPECT_EQ(RankEnv(one, 1).at("LOCAL_RANK"), "1");
  EXPECT_EQ(RankEnv(one, 1).at("WORLD_SIZE"), "2");
  EXPECT_EQ(RankEnv(one, 1).at("NODE_RANK"), "0");
}

TEST(RankLauncherArgs, RoundTripAndErrors) {
  RankLayout l{.nodes = 3, .node_rank = 2, .gpus_per_node = 8};
  const std::vector<std::string> cmd = {"sh", "-c", "echo x", "--", "--nodes"};
  auto argv = RankLauncherArgv("/usr/bin/fastgpu", l, 1500, cmd);
  ASSERT_GE(argv.size(), 2u);
  EXPECT_EQ(argv[0], "/usr/bin/fastgpu");
  EXPECT_EQ(argv[1], kRankLauncherVerb);
  auto parsed = ParseRankLauncherArgs(std::vector<std::string>(argv.begin() + 2, argv.end()));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->layout.nodes, 3);
  EXPECT_EQ(parsed->layout.node_rank, 2);
  EXPECT_EQ(parsed->layout.gpus_per_node, 8);
  EXPECT_EQ(parsed->grace_ms, 1500);
  EXPECT_EQ(parsed->command, cmd);

  using Args = std::vector<std::string>;
  EXPECT_FALSE(ParseRankLauncherArgs(Args{"--nodes", "1", "--node-rank", "0", "--", "true"}).ok());  // no GPUs
  EXPECT_FALSE(ParseRankLauncherArgs(Args{"--nodes", "2", "--node-rank", "2", "--gpus-per-node", "1", "--", "x"}).ok());
  EXPECT_FALSE(ParseRankLauncherArgs(Args{"--nodes", "1", "--node-rank", "0", "--gpus-per-node", "0", "--", "x"}).ok());
  EXPECT_FALSE(ParseRankLauncherArgs(Args{"--nodes", "1", "--node-rank", "0", "--gpus-per-node", "1", "--"}).ok());
  EXPECT_FALSE(ParseRankLauncherArgs(Args{"--nodes", "1", "--node-rank", "0", "--gpus-per-node", "x", "--", "y"}).ok());
  auto unknown = ParseRankLauncherArgs(Args{"--procs", "2", "--", "x"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("--procs"));
  EXPECT_FALSE(ValidateRankLayout({.nodes = 0, .node_rank = 0, .gpus_per_node = 1}).ok());
  EXPECT_TRUE(ValidateRankLayout({.nodes = 2, .node_rank = 1, .gpus_per_node = 1}).ok());
}

TEST(SelfExecutable, IsThisTestBinary) {
  auto self = SelfExecutable();
  ASSERT_TRUE(self.ok()) << self.status().ToString();
  EXPECT_EQ(std::filesystem::path(*self).filename(), "agent_test");
}

TEST(CheckExecutableBy, NamesTheDirectoryOrFileAtFault) {
  const std::string dir = MakeTempDir();
  ASSERT_FALSE(dir.empty());
  ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
  const std::string file = dir + "/fastgpu";
  { std::ofstream(file) << "x"; }
  const uid_t owner = ::geteuid();
  const uid_t other = owner == 0 ? 1'999'990'007 : owner + 1;
  const gid_t other_gid = static_cast<gid_t>(other);

  ASSERT_EQ(::chmod(file.c_str(), 0755), 0);
  EXPECT_TRUE(CheckExecutableBy(file, other, other_gid, {}).ok());
  EXPECT_TRUE(CheckExecutableBy(file, owner, ::getegid(), {}).ok());

  ASSERT_EQ(::chmod(file.c_str(), 0750), 0);
  Status st = CheckExecutableBy(file, other, other_gid, {});
  EXPECT_EQ(st.code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("uid " + std::to_string(other) + " cannot execute '" + file + "'"));
  EXPECT_THAT(st.message(), HasSubstr("mode 0750"));
  // Through the file's group (a supplementary one).
  struct stat sb {};
  ASSERT_EQ(::stat(file.c_str(), &sb), 0);
  EXPECT_TRUE(CheckExecutableBy(file, other, other_gid, {sb.st_gid}).ok());

  ASSERT_EQ(::chmod(file.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(dir.c_str(), 0700), 0);
  st = CheckExecutableBy(file, other, other_gid, {});
  EXPECT_EQ(st.code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(st.message(), HasSubstr("cannot enter directory '" + dir + "'"));

  EXPECT_EQ(CheckExecutableBy(dir + "/missing", owner, ::getegid(), {}).code(), ErrorCode::kNotFound);
  EXPECT_EQ(CheckExecutableBy(dir, 0, 0, {}).code(), ErrorCode::kPermissionDenied);  // a directory
  EXPECT_FALSE(CheckExecutableBy("relative/fastgpu", owner, ::getegid(), {}).ok());
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Runs the launcher in a child process of its own process group (as the executor starts a job), its output
// in a log file; returns its wait status. The whole group is killed afterwards.
class RankLauncherRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_FALSE(dir_.empty());
    log_ = dir_ + "/log";
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void Start(int gpus, int64_t grace_ms, const std::vector<std::string>& command) {
    RankLayout l{.nodes = 2, .node_rank = 1, .gpus_per_node = gpus};
    auto argv = RankLauncherArgv("unused", l, grace_ms, command);
    std::vector<std::string> args(argv.begin() + 2, argv.end());
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::setpgid(0, 0);
      int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::_exit(RunRankLauncher(args));
    }
    ::setpgid(pid_, pid_);
  }

  // The launcher's wait status, or -1 when it has not ended within 10 s.
  int Wait() {
    int status = -1;
    bool ended = WaitUntil([&] {
      int st = 0;
      if (::waitpid(pid_, &st, WNOHANG) != pid_) return false;
      status = st;
      return true;
    });
    if (ended) {
      ::kill(-pid_, SIGKILL);  // what the supervisor does with the rest of the group
      pid_ = 0;
    }
    return status;
  }

  std::string Log() const { return ReadText(log_); }

  std::string dir_, log_;
  pid_t pid_ = 0;
};

TEST_F(RankLauncherRun, StartsOneProcessPerGpuWithItsRanksAndExitsZeroWhenAllDo) {
  Start(3, 1000, {"sh", "-c", "echo rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE local_world=$LOCAL_WORLD_SIZE"});
  const int st = Wait();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  const std::string log = Log();
  for (int local = 0; local < 3; ++local) {
    EXPECT_THAT(log, HasSubstr("rank=" + std::to_string(3 + local) + " local=" + std::to_string(local) +
                               " world=6 local_world=3\n"));
  }
  EXPECT_THAT(log, Not(HasSubstr("fastgpu:"))) << "nothing of its own in the log";
}

TEST_F(RankLauncherRun, AFailedProcessStopsTheOthersAndGivesItsExitCode) {
  // Rank 1 fails once the others are ready to say that they were stopped.
  const std::string ready = dir_ + "/ready-";
  Start(3, 10'000,
        {"sh", "-c", "if [ \"$LOCAL_RANK\" = 1 ]; then while [ ! -e " + ready + "0 ] || [ ! -e " + ready +
                         "2 ]; do sleep 0.02; done; exit 3; fi; trap 'echo stopped-$LOCAL_RANK; exit 0' TERM; "
                         "touch " + ready + "$LOCAL_RANK; while :; do sleep 0.05; done"});
  const int st = Wait();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 3);
  const std::string log = Log();
  EXPECT_THAT(log, HasSubstr("fastgpu: rank 4 (local rank 1) exited with code 3; stopping the job's other processes"));
  EXPECT_THAT(log, HasSubstr("stopped-0"));
  EXPECT_THAT(log, HasSubstr("stopped-2"));
}

TEST_F(RankLauncherRun, AProcessKilledByASignalKillsTheLauncherWithIt) {
  Start(2, 10'000, {"sh", "-c", "if [ \"$LOCAL_RANK\" = 0 ]; then kill -KILL $$; fi; exec sleep 30"});
  const int st = Wait();
  ASSERT_TRUE(WIFSIGNALED(st)) << st;
  EXPECT_EQ(WTERMSIG(st), SIGKILL);
  EXPECT_THAT(Log(), HasSubstr("fastgpu: rank 2 (local rank 0) was killed by signal 9"));
}

TEST_F(RankLauncherRun, ProcessesThatIgnoreTheStopAreKilledAfterTheGrace) {
  Start(2, 200, {"sh", "-c", "if [ \"$LOCAL_RANK\" = 1 ]; then exit 5; fi; trap '' TERM; while :; do sleep 0.05; done"});
  const int st = Wait();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 5);
}

TEST_F(RankLauncherRun, ForwardsSignalsToItsProcesses) {
  Start(2, 1000, {"sh", "-c", "trap 'echo usr1-$LOCAL_RANK; exit 0' USR1; echo ready-$LOCAL_RANK; "
                              "while :; do sleep 0.05; done"});
  ASSERT_TRUE(WaitUntil([&] {
    const std::string log = Log();
    return log.find("ready-0") != std::string::npos && log.find("ready-1") != std::string::npos;
  })) << Log();
  ASSERT_EQ(::kill(pid_, SIGUSR1), 0);  // the launcher alone, not its group
  const int st = Wait();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << Log();
  EXPECT_THAT(Log(), HasSubstr("usr1-0"));
  EXPECT_THAT(Log(), HasSubstr("usr1-1"));
}

// Any signal a job may choose as its checkpoint signal is sent to the launcher alone (ProcessExecutor::Checkpoint)
// and reaches each process once.
TEST_F(RankLauncherRun, ForwardsEveryCheckpointSignalOnce) {
  Start(2, 1000, {"sh", "-c",
                  "for s in HUP QUIT WINCH ALRM USR2; do trap \"echo $s-$LOCAL_RANK\" $s; done; "
                  "trap 'echo usr1-$LOCAL_RANK; exit 0' USR1; echo ready-$LOCAL_RANK; while :; do sleep 0.05; done"});
  ASSERT_TRUE(WaitUntil([&] {
    const std::string log = Log();
    return log.find("ready-0") != std::string::npos && log.find("ready-1") != std::string::npos;
  })) << Log();
  const std::vector<std::pair<int, std::string>> sigs = {
      {SIGHUP, "HUP"}, {SIGQUIT, "QUIT"}, {SIGWINCH, "WINCH"}, {SIGALRM, "ALRM"}, {SIGUSR2, "USR2"}};
  for (const auto& [sig, name] : sigs) {
    ASSERT_EQ(::kill(pid_, sig), 0);
    ASSERT_TRUE(WaitUntil([&, name = name] {
      const std::string log = Log();
      return log.find(name + "-0") != std::string::npos && log.find(name + "-1") != std::string::npos;
    })) << name << ": " << Log();
  }
  ASSERT_EQ(::kill(pid_, SIGUSR1), 0);
  const int st = Wait();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << Log();
  const std::string log = Log();
  for (const auto& [sig, name] : sigs) {
    for (const std::string rank : {"0", "1"}) {
      const std::string line = name + "-" + rank + "\n";
      const size_t first = log.find(line);
      EXPECT_NE(first, std::string::npos) << line;
      EXPECT_EQ(log.find(line, first + 1), std::string::npos) << line << " twice: " << log;
    }
  }
}

// A stop of the job (SIGTERM to its process group, as the executor sends it): processes that exit 0 on it make
// the launcher exit 0; processes it kills make the launcher end by the same signal. No line of its own.
TEST_F(RankLauncherRun, AStopOfTheGroupEndsLikeItsProcesses) {
  Start(2, 10'000, {"sh", "-c", "trap 'exit 0' TERM; touch " + dir_ + "/up-$LOCAL_RANK; while :; do sleep 0.05; done"});
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(dir_ + "/up-0") && std::filesystem::exists(dir_ + "/up-1"); }));
  ASSERT_EQ(::kill(-pid_, SIGTERM), 0);
  int st = Wait();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  EXPECT_THAT(Log(), Not(HasSubstr("fastgpu:")));

  Start(2, 10'000, {"sh", "-c", "touch " + dir_ + "/run-$LOCAL_RANK; exec sleep 30"});
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(dir_ + "/run-0") && std::filesystem::exists(dir_ + "/run-1"); }));
  ASSERT_EQ(::kill(-pid_, SIGTERM), 0);
  st = Wait();
  ASSERT_TRUE(WIFSIGNALED(st)) << st;
  EXPECT_EQ(WTERMSIG(st), SIGTERM);
  EXPECT_THAT(Log(), Not(HasSubstr("fastgpu:")));
}

TEST_F(RankLauncherRun, ACommandThatCannotRunFailsWith127) {
  Start(2, 1000, {"/nonexistent/fastgpu-test-program"});
  const int st = Wait();
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 127);
  EXPECT_THAT(Log(), HasSubstr("cannot run '/nonexistent/fastgpu-test-program': No such file or directory"));
}

}  // namespace
}  // namespace fastgpu::agent
