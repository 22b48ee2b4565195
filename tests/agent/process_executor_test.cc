#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <tuple>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "agent/executor.h"
#include "agent/rank_launcher.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "test_util.h"

namespace fastgpu::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using namespace fastgpu::agent::testing;  // NOLINT

class ProcessExecutorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BecomeSubreaper();
    root_ = MakeTempDirForJobs();
    ASSERT_FALSE(root_.empty());
    exec_ = MakeProcessExecutor(clock_);
  }
  void TearDown() override {
    EXPECT_TRUE(KillGroupsAndReap(pgids_)) << "child processes remain after the test";
    exec_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  LaunchSpec Spec(const std::string& id, std::vector<std::string> argv) {
    LaunchSpec s;
    s.job_id = id;
    s.argv = std::move(argv);
    s.job_dir = root_ + "/jobs/" + id;
    s.workdir = root_ + "/jobs/" + id + "/work";
    s.log_path = root_ + "/logs/" + id + ".log";
    s.run_as_uid = kTestJobUid;  // used only as root
    s.project = "test";
    return s;
  }

  ProcessRef Launch(Executor& ex, const LaunchSpec& spec) {
    auto ref = ex.Launch(spec);
    EXPECT_TRUE(ref.ok()) << ref.status().ToString();
    if (!ref.ok()) return {};
    pgids_.push_back(ref->pid);
    return *ref;
  }

  // Polls until `id` is reported; collects other reports into `others_`.
  std::optional<ExitStatus> WaitExit(Executor& ex, const std::string& id) {
    std::optional<ExitStatus> found;
    WaitUntil([&] {
      for (auto& st : ex.Poll()) {
        if (st.job_id == id) {
          found = st;
        } else {
          others_.push_back(st);
        }
      }
      return found.has_value();
    });
    return found;
  }

  FakeClock clock_;
  std::string root_;
  std::unique_ptr<Executor> exec_;
  std::vector<int64_t> pgids_;
  std::vector<ExitStatus> others_;
};

TEST_F(ProcessExecutorTest, RunsCommandWithEnvAndRecordsExitCode) {
  LaunchSpec spec = Spec("j1", {"sh", "-c", "echo $FOO; echo err >&2; exit 3"});
  spec.env["FOO"] = "hello";
  ProcessRef ref = Launch(*exec_, spec);
  EXPECT_GT(ref.pid, 0);
  EXPECT_GT(ref.supervisor_pid, 0);
  EXPECT_NE(ref.pid, ref.supervisor_pid);
  EXPECT_EQ(ref.job_id, "j1");
  auto st = WaitExit(*exec_, "j1");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 3);
  EXPECT_FALSE(st->signal.has_value());
  EXPECT_FALSE(st->lost);
  EXPECT_EQ(ReadText(spec.log_path), "hello\nerr\n");
  EXPECT_TRUE(exec_->Running().empty());
}

TEST_F(ProcessExecutorTest, RecordsSignalExit) {
  ProcessRef ref = Launch(*exec_, Spec("sig", {"sh", "-c", "kill -USR1 $$"}));
  auto st = WaitExit(*exec_, "sig");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGUSR1);
  EXPECT_FALSE(st->exit_code.has_value());
}

TEST_F(ProcessExecutorTest, JobRunsInItsOwnProcessGroupWithStdinFromDevNull) {
  LaunchSpec spec = Spec("pg", {"sh", "-c", "ps -o pgid= -p $$ | tr -d ' '; cat; echo done"});
  ProcessRef ref = Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "pg");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  std::string log = ReadText(spec.log_path);
  if (log.find("not found") == std::string::npos) {  // ps may be absent
    EXPECT_EQ(log, std::to_string(ref.pid) + "\ndone\n");
  }
}

TEST_F(ProcessExecutorTest, TerminateSendsTermThenKillAfterGrace) {
  LaunchSpec spec = Spec("trap", {"sh", "-c",
                                  "trap 'echo got-term' TERM; echo ready; "
                                  "while true; do sleep 0.05; done"});
  Launch(*exec_, spec);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("ready") != std::string::npos; }));
  ASSERT_TRUE(exec_->Terminate("trap", std::chrono::seconds(10)).ok());
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("got-term") != std::string::npos; }));
  // Before the grace has passed (on the injected clock), the job keeps running.
  EXPECT_TRUE(exec_->Poll().empty());
  EXPECT_THAT(exec_->Running(), UnorderedElementsAre("trap"));
  // Repeated terminate is harmless and does not extend the deadline.
  ASSERT_TRUE(exec_->Terminate("trap", std::chrono::seconds(60)).ok());
  clock_.Advance(std::chrono::seconds(11));
  auto st = WaitExit(*exec_, "trap");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_TRUE(exec_->Running().empty());
  EXPECT_EQ(exec_->Terminate("trap", std::chrono::seconds(1)).code(), ErrorCode::kNotFound);
}

TEST_F(ProcessExecutorTest, TerminateStopsWholeProcessGroup) {
  LaunchSpec spec = Spec("tree", {"sh", "-c", "sleep 30 & sleep 30 & echo started; wait"});
  Launch(*exec_, spec);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("started") != std::string::npos; }));
  ASSERT_TRUE(exec_->Terminate("tree", std::chrono::seconds(10)).ok());
  auto st = WaitExit(*exec_, "tree");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGTERM);
}

TEST_F(ProcessExecutorTest, ZeroGraceKillsImmediately) {
  Launch(*exec_, Spec("now", {"sleep", "30"}));
  ASSERT_TRUE(exec_->Terminate("now", std::chrono::milliseconds(0)).ok());
  auto st = WaitExit(*exec_, "now");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGKILL);
}

TEST_F(ProcessExecutorTest, ExecFailureExits127WithMessageInLog) {
  LaunchSpec spec = Spec("nocmd", {"fastgpu-no-such-command-xyz", "arg"});
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "nocmd");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 127);
  EXPECT_THAT(ReadText(spec.log_path),
              HasSubstr("fastgpu: cannot run 'fastgpu-no-such-command-xyz': No such file or directory"));
  EXPECT_THAT(st->reason, HasSubstr("cannot run 'fastgpu-no-such-command-xyz'"));
}

TEST_F(ProcessExecutorTest, NonExecutableFileIsPermissionDenied) {
  std::filesystem::create_directories(root_ + "/bin");
  std::ofstream(root_ + "/bin/script") << "echo hi\n";
  LaunchSpec spec = Spec("noexec", {root_ + "/bin/script"});
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "noexec");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 127);
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("Permission denied"));
}

TEST_F(ProcessExecutorTest, ScriptWithoutShebangRunsWithSh) {
  std::filesystem::create_directories(root_ + "/bin");
  std::ofstream(root_ + "/bin/script") << "echo from-script $1\n";
  // Readable and executable by others too: as root, the job runs as its project's uid.
  std::filesystem::permissions(root_ + "/bin/script", std::filesystem::perms::owner_all |
                                                          std::filesystem::perms::group_read |
                                                          std::filesystem::perms::group_exec |
                                                          std::filesystem::perms::others_read |
                                                          std::filesystem::perms::others_exec);
  LaunchSpec spec = Spec("script", {"script", "x"});
  spec.env["PATH"] = root_ + "/bin:/usr/bin:/bin";
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "script");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_EQ(ReadText(spec.log_path), "from-script x\n");
}

TEST_F(ProcessExecutorTest, CreatesWorkdirWithMode0700AndRunsThere) {
  LaunchSpec spec = Spec("wd", {"pwd"});
  spec.workdir = root_ + "/deep/er/work";
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "wd");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  struct stat sb {};
  ASSERT_EQ(::stat(spec.workdir.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat(spec.job_dir.c_str(), &sb), 0);
  // As root the job runs as its project's uid, whose group alone may pass through (not list) the job dir.
  EXPECT_EQ(sb.st_mode & 0777, RunningAsRoot() ? 0710u : 0700u);
  EXPECT_EQ(ReadText(spec.log_path), std::filesystem::canonical(spec.workdir).string() + "\n");
}

TEST_F(ProcessExecutorTest, LogIsAppendedAcrossAttempts) {
  LaunchSpec spec = Spec("again", {"sh", "-c", "echo run"});
  Launch(*exec_, spec);
  ASSERT_TRUE(WaitExit(*exec_, "again").has_value());
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "again");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_EQ(ReadText(spec.log_path), "run\nrun\n");
}

TEST_F(ProcessExecutorTest, RejectsBadSpecsAndDuplicates) {
  EXPECT_EQ(exec_->Launch(Spec("empty", {})).status().code(), ErrorCode::kInvalidArgument);
  Launch(*exec_, Spec("dup", {"sleep", "30"}));
  EXPECT_EQ(exec_->Launch(Spec("dup", {"sleep", "30"})).status().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(exec_->Terminate("unknown", std::chrono::seconds(1)).code(), ErrorCode::kNotFound);
  ASSERT_TRUE(exec_->Terminate("dup", std::chrono::milliseconds(0)).ok());
  ASSERT_TRUE(WaitExit(*exec_, "dup").has_value());
}

TEST_F(ProcessExecutorTest, ReadoptsRunningJobAfterRestart) {
  LaunchSpec spec = Spec("long", {"sleep", "30"});
  ProcessRef ref = Launch(*exec_, spec);
  exec_.reset();  // "restart": the executor goes away, the job keeps running
  ASSERT_EQ(::kill(static_cast<pid_t>(ref.pid), 0), 0);
  exec_ = MakeProcessExecutor(clock_);
  auto adopted = exec_->Adopt("long", spec.job_dir);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_EQ(adopted->pid, ref.pid);
  EXPECT_EQ(adopted->supervisor_pid, ref.supervisor_pid);
  EXPECT_EQ(adopted->start_ticks, ref.start_ticks);
  EXPECT_THAT(exec_->Running(), UnorderedElementsAre("long"));
  EXPECT_TRUE(exec_->Poll().empty());
  ASSERT_EQ(::kill(static_cast<pid_t>(ref.pid), SIGKILL), 0);
  auto st = WaitExit(*exec_, "long");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_FALSE(st->lost);
}

TEST_F(ProcessExecutorTest, AdoptedJobCanBeTerminated) {
  LaunchSpec spec = Spec("adopt-term", {"sleep", "30"});
  Launch(*exec_, spec);
  exec_.reset();
  exec_ = MakeProcessExecutor(clock_);
  ASSERT_TRUE(exec_->Adopt("adopt-term", spec.job_dir).ok());
  ASSERT_TRUE(exec_->Terminate("adopt-term", std::chrono::seconds(5)).ok());
  auto st = WaitExit(*exec_, "adopt-term");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGTERM);
}

// Exits are events: a waiter with a long timeout is woken by the end of a job (launched here or
// adopted after a restart), so Poll has it after the wake-up. (Broken events would hang this test
// until its time-out, not fail on a timing.)
std::optional<ExitStatus> WaitExitByEvent(Executor& ex, const std::string& id) {
  for (int wakeups = 0; wakeups < 4; ++wakeups) {  // the launch/adopt itself may wake the waiter once
    ex.WaitForExits(std::chrono::minutes(10));
    for (auto& st : ex.Poll()) {
      if (st.job_id == id) return st;
    }
  }
  return std::nullopt;
}

TEST_F(ProcessExecutorTest, JobEndWakesAnExitWaiter) {
  ASSERT_TRUE(exec_->ExitEvents());
  ProcessRef ref = Launch(*exec_, Spec("ev", {"sleep", "30"}));
  exec_->WaitForExits(std::chrono::milliseconds(0));
  EXPECT_TRUE(exec_->Poll().empty());
  ASSERT_EQ(::kill(static_cast<pid_t>(ref.pid), SIGKILL), 0);
  auto st = WaitExitByEvent(*exec_, "ev");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGKILL);
}

TEST_F(ProcessExecutorTest, AdoptedJobEndWakesAnExitWaiter) {
  LaunchSpec spec = Spec("ev-adopt", {"sleep", "30"});
  ProcessRef ref = Launch(*exec_, spec);
  exec_.reset();  // restart
  exec_ = MakeProcessExecutor(clock_);
  ASSERT_TRUE(exec_->Adopt("ev-adopt", spec.job_dir).ok());
  ASSERT_EQ(::kill(static_cast<pid_t>(ref.pid), SIGKILL), 0);
  auto st = WaitExitByEvent(*exec_, "ev-adopt");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_FALSE(st->lost);
}

TEST_F(ProcessExecutorTest, InterruptWakesAnExitWaiter) {
  Launch(*exec_, Spec("ev-int", {"sleep", "30"}));
  exec_->WaitForExits(std::chrono::milliseconds(0));
  std::thread waiter([&] { exec_->WaitForExits(std::chrono::minutes(10)); });
  exec_->Interrupt();
  waiter.join();
  EXPECT_TRUE(exec_->Poll().empty());
  ASSERT_TRUE(exec_->Terminate("ev-int", std::chrono::milliseconds(0)).ok());
  ASSERT_TRUE(WaitExitByEvent(*exec_, "ev-int").has_value());
}

TEST_F(ProcessExecutorTest, AdoptReportsJobThatEndedWhileDown) {
  LaunchSpec spec = Spec("done", {"sh", "-c", "exit 7"});
  Launch(*exec_, spec);
  exec_.reset();
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(spec.job_dir + "/exit"); }));
  exec_ = MakeProcessExecutor(clock_);
  auto adopted = exec_->Adopt("done", spec.job_dir);
  EXPECT_EQ(adopted.status().code(), ErrorCode::kNotFound);
  auto polled = exec_->Poll();
  ASSERT_EQ(polled.size(), 1u);
  EXPECT_EQ(polled[0].job_id, "done");
  EXPECT_EQ(polled[0].exit_code, 7);
  EXPECT_TRUE(exec_->Running().empty());
}

TEST_F(ProcessExecutorTest, DeadProcessWithoutExitRecordIsLost) {
  const std::string dir = root_ + "/jobs/ghost";
  std::filesystem::create_directories(dir);
  // A pid beyond any pid_max, so it names no process.
  std::ofstream(dir + "/pid") << "999999999 12345 999999998 12340\n";
  auto adopted = exec_->Adopt("ghost", dir);
  EXPECT_EQ(adopted.status().code(), ErrorCode::kNotFound);
  auto polled = exec_->Poll();
  ASSERT_EQ(polled.size(), 1u);
  EXPECT_EQ(polled[0].job_id, "ghost");
  EXPECT_TRUE(polled[0].lost);
  EXPECT_THAT(polled[0].reason, HasSubstr("no exit status was recorded"));
}

TEST_F(ProcessExecutorTest, JobDirWithoutProcessRecordIsLost) {
  const std::string dir = root_ + "/jobs/never";
  std::filesystem::create_directories(dir);
  EXPECT_EQ(exec_->Adopt("never", dir).status().code(), ErrorCode::kNotFound);
  auto polled = exec_->Poll();
  ASSERT_EQ(polled.size(), 1u);
  EXPECT_TRUE(polled[0].lost);
  EXPECT_THAT(polled[0].reason, HasSubstr("no process record"));
}

TEST_F(ProcessExecutorTest, JobOutlivingItsSupervisorIsLostWhenItEnds) {
  ProcessRef ref = Launch(*exec_, Spec("orphan", {"sleep", "30"}));
  ASSERT_EQ(::kill(static_cast<pid_t>(ref.supervisor_pid), SIGKILL), 0);
  // The job keeps running without its supervisor and is still tracked.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(exec_->Poll().empty());
  EXPECT_THAT(exec_->Running(), UnorderedElementsAre("orphan"));
  ASSERT_EQ(::kill(static_cast<pid_t>(ref.pid), SIGKILL), 0);
  auto st = WaitExit(*exec_, "orphan");
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->lost);
}

TEST_F(ProcessExecutorTest, JobSurvivesSigkillOfTheLaunchingProcess) {
  LaunchSpec spec = Spec("survivor", {"sleep", "30"});
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t launcher = ::fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    // Stands in for the fastgpu process: launches, reports the pid, then waits to be killed.
    ::close(fds[0]);
    SystemClock clock;
    auto ex = MakeProcessExecutor(clock);
    auto ref = ex->Launch(spec);
    int64_t pid = ref.ok() ? ref->pid : -1;
    (void)!::write(fds[1], &pid, sizeof(pid));
    ::pause();
    ::_exit(0);
  }
  ::close(fds[1]);
  int64_t pid = 0;
  ASSERT_EQ(::read(fds[0], &pid, sizeof(pid)), static_cast<ssize_t>(sizeof(pid)));
  ::close(fds[0]);
  ASSERT_GT(pid, 0);
  pgids_.push_back(pid);
  ASSERT_EQ(::kill(launcher, SIGKILL), 0);
  int wst = 0;
  ASSERT_EQ(::waitpid(launcher, &wst, 0), launcher);
  EXPECT_EQ(::kill(static_cast<pid_t>(pid), 0), 0) << "job died with the launching process";
  auto adopted = exec_->Adopt("survivor", spec.job_dir);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  EXPECT_EQ(adopted->pid, pid);
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGTERM), 0);
  auto st = WaitExit(*exec_, "survivor");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGTERM);
  EXPECT_FALSE(st->lost);
}

TEST_F(ProcessExecutorTest, JobsNeverInheritFastgpuVariablesAndOtherUsersGetAnAllowList) {
  ::setenv("FASTGPU_MASTER_KEY", "00112233", 1);
  ::setenv("AGENT_ONLY_VAR", "x", 1);
  LaunchSpec spec = Spec("envj", {"sh", "-c",
                                  "echo k=${FASTGPU_MASTER_KEY:-none} a=${AGENT_ONLY_VAR:-none} p=${PATH:+set} "
                                  "j=${FASTGPU_JOB_ID:-none}"});
  spec.env["FASTGPU_JOB_ID"] = "envj";  // the job's own variables are always passed
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "envj");
  ::unsetenv("FASTGPU_MASTER_KEY");
  ::unsetenv("AGENT_ONLY_VAR");
  ASSERT_TRUE(st.has_value());
  // As root the job runs as another user and gets only the allow-list.
  EXPECT_EQ(ReadText(spec.log_path),
            std::string("k=none a=") + (RunningAsRoot() ? "none" : "x") + " p=set j=envj\n");
}

// ---------------------------------------------------------------------------------------------
// Job identity. The cases that switch users need root (CI runs the tests as root).

#define SKIP_UNLESS_ROOT()                                                          \
  if (!RunningAsRoot()) {                                                           \
    GTEST_SKIP() << "needs root: only a root agent runs jobs as other users";       \
  }                                                                                 \
  static_assert(true)

struct Owner {
  int64_t uid = -1, gid = -1;
  unsigned mode = 0;
};
Owner StatOf(const std::string& path) {
  struct stat sb {};
  if (::lstat(path.c_str(), &sb) != 0) return {};
  return {static_cast<int64_t>(sb.st_uid), static_cast<int64_t>(sb.st_gid), sb.st_mode & 07777u};
}

// The command is looked up through PATH as the job's user, as its shell would: a directory that user may not enter
// (root's own tools, a private virtualenv) is skipped instead of failing the start with "Permission denied".
TEST_F(ProcessExecutorTest, AsRootTheCommandIsLookedUpAsTheJobsUser) {
  SKIP_UNLESS_ROOT();
  const std::string priv = root_ + "/private-bin", pub = root_ + "/public-bin";
  for (const auto& [dir, mode, word] : {std::tuple{priv, 0700, "private"}, std::tuple{pub, 0755, "public"}}) {
    std::filesystem::create_directories(dir);
    ASSERT_EQ(::chmod(dir.c_str(), static_cast<mode_t>(mode)), 0);
    ASSERT_TRUE(WriteFileAtomic(dir + "/tool", std::string("#!/bin/sh\necho ") + word + "\n", 0755).ok());
  }
  ASSERT_EQ(::chmod(root_.c_str(), 0755), 0);
  LaunchSpec spec = Spec("lookup", {"tool"});
  spec.env["PATH"] = priv + ":" + pub + ":/usr/bin:/bin";
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "lookup");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0) << ReadText(spec.log_path);
  EXPECT_EQ(ReadText(spec.log_path), "public\n");
  // Only where no candidate runs is it refused, saying where the agent's user would have found it.
  LaunchSpec hidden = Spec("hidden", {"tool"});
  hidden.env["PATH"] = priv + ":/usr/bin:/bin";
  Launch(*exec_, hidden);
  st = WaitExit(*exec_, "hidden");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 127);
  EXPECT_THAT(ReadText(hidden.log_path),
              HasSubstr("cannot run 'tool': not found for uid " + std::to_string(kTestJobUid) + " (there is " + priv +
                        "/tool, in a directory that uid " + std::to_string(kTestJobUid) + " may not enter"));
  // A file the job's user sees but may not execute: Permission denied.
  ASSERT_EQ(::chmod(pub.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((pub + "/tool").c_str(), 0744), 0);
  LaunchSpec denied = Spec("denied", {"tool"});
  denied.env["PATH"] = pub + ":/usr/bin:/bin";
  Launch(*exec_, denied);
  st = WaitExit(*exec_, "denied");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 127);
  EXPECT_THAT(ReadText(denied.log_path), HasSubstr("cannot run 'tool': Permission denied"));
  LaunchSpec missing = Spec("missing", {"no-such-tool-anywhere"});
  Launch(*exec_, missing);
  st = WaitExit(*exec_, "missing");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 127);
  EXPECT_THAT(ReadText(missing.log_path), HasSubstr("cannot run 'no-such-tool-anywhere': No such file or directory"));
}

TEST_F(ProcessExecutorTest, AsRootJobRunsAsItsProjectsUidInItsOwnWorkdir) {
  SKIP_UNLESS_ROOT();
  LaunchSpec spec = Spec("uid", {"sh", "-c",
                                 "id -u; id -g; echo $HOME $USER $LOGNAME; pwd; umask; echo made > mine; "
                                 "touch ../forged 2>/dev/null && echo wrote-job-dir || echo job-dir-closed"});
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "uid");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0) << ReadText(spec.log_path);
  const std::string u = std::to_string(kTestJobUid);
  EXPECT_EQ(ReadText(spec.log_path), u + "\n" + u + "\n" + spec.workdir + " fastgpu-test fastgpu-test\n" +
                                         spec.workdir + "\n0077\njob-dir-closed\n");
  Owner w = StatOf(spec.workdir);
  EXPECT_EQ(w.uid, kTestJobUid);
  EXPECT_EQ(w.gid, kTestJobUid);
  EXPECT_EQ(w.mode, 0700u);
  Owner mine = StatOf(spec.workdir + "/mine");
  EXPECT_EQ(mine.uid, kTestJobUid);
  EXPECT_EQ(mine.mode, 0600u);  // umask 077
  // The agent's records and the log stay the agent's; only the job's group may pass the job dir.
  Owner log = StatOf(spec.log_path);
  EXPECT_EQ(log.uid, 0);
  EXPECT_EQ(log.mode, 0600u);
  Owner dir = StatOf(spec.job_dir);
  EXPECT_EQ(dir.uid, 0);
  EXPECT_EQ(dir.gid, kTestJobUid);
  EXPECT_EQ(dir.mode, 0710u);
  EXPECT_EQ(StatOf(spec.job_dir + "/exit").uid, 0);
  EXPECT_EQ(StatOf(spec.job_dir + "/exit").mode, 0600u);
  EXPECT_FALSE(std::filesystem::exists(spec.job_dir + "/forged"));
}

TEST_F(ProcessExecutorTest, AsRootJobCannotRegainRootAndHasNoGroups) {
  SKIP_UNLESS_ROOT();
  // /proc/self/status: real, effective, saved and fs ids, then the supplementary groups.
  LaunchSpec spec = Spec("ids", {"sh", "-c", "grep -E '^(Uid|Gid|Groups):' /proc/self/status | tr -s '\\t ' ' '"});
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "ids");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  const std::string u = std::to_string(kTestJobUid);
  std::string log = ReadText(spec.log_path);
  EXPECT_THAT(log, HasSubstr("Uid: " + u + " " + u + " " + u + " " + u + "\n"));
  EXPECT_THAT(log, HasSubstr("Gid: " + u + " " + u + " " + u + " " + u + "\n"));
  EXPECT_THAT(log, ::testing::ContainsRegex("Groups: ?\n"));
}

TEST_F(ProcessExecutorTest, AsRootJobWithoutAnIdentityIsRefused) {
  SKIP_UNLESS_ROOT();
  LaunchSpec spec = Spec("anon", {"true"});
  spec.run_as_uid = 0;
  spec.project = "ml";
  auto ref = exec_->Launch(spec);
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(ref.status().message(), HasSubstr("refusing to run job anon of project 'ml'"));
  EXPECT_THAT(ref.status().message(), HasSubstr("never run as a user shared with other projects"));
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("fastgpu: refusing to run job anon"));
  EXPECT_TRUE(exec_->Running().empty());
}

// The attacks of one tenant's job on another's: environ, files (relative and absolute paths), signals,
// logs. Each is refused, and the victim keeps running.
TEST_F(ProcessExecutorTest, AsRootJobsOfTwoProjectsCannotReachEachOther) {
  SKIP_UNLESS_ROOT();
  // Like the agent's home: anyone may pass through jobs/ (not list it). The logs dir is opened up too,
  // so that only the log file's own mode protects it.
  std::filesystem::create_directories(root_ + "/jobs");
  std::filesystem::create_directories(root_ + "/logs");
  ASSERT_EQ(::chmod((root_ + "/jobs").c_str(), 0711), 0);
  ASSERT_EQ(::chmod((root_ + "/logs").c_str(), 0755), 0);
  LaunchSpec victim = Spec("victim", {"sh", "-c", "echo started; exec sleep 60"});
  victim.env["VICTIM_SECRET"] = "s3cret-victim-value";
  victim.project = "pa";
  ProcessRef vref = Launch(*exec_, victim);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(victim.log_path) == "started\n"; }));

  const std::string pid = std::to_string(vref.pid);
  LaunchSpec attacker = Spec("attacker", {"sh", "-c",
      "cat /proc/" + pid + "/environ >/dev/null 2>&1 && echo environ-read || echo environ-refused; "
      "ls ../../victim/work >/dev/null 2>&1 && echo rel-list || echo rel-list-refused; "
      "(echo x > ../../victim/work/planted) 2>/dev/null && echo rel-write || echo rel-write-refused; "
      "ls " + victim.workdir + " >/dev/null 2>&1 && echo abs-list || echo abs-list-refused; "
      "(echo x > " + victim.workdir + "/planted) 2>/dev/null && echo abs-write || echo abs-write-refused; "
      "ls ../../victim >/dev/null 2>&1 && echo jobdir-list || echo jobdir-list-refused; "
      "kill -9 " + pid + " 2>/dev/null && echo killed || echo kill-refused; "
      "cat " + victim.log_path + " >/dev/null 2>&1 && echo log-read || echo log-read-refused; "
      "cat /proc/" + pid + "/fd/1 >/dev/null 2>&1 && echo fd-read || echo fd-read-refused"});
  attacker.run_as_uid = kOtherTestJobUid;
  attacker.project = "pb";
  Launch(*exec_, attacker);
  auto st = WaitExit(*exec_, "attacker");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_EQ(ReadText(attacker.log_path),
            "environ-refused\nrel-list-refused\nrel-write-refused\nabs-list-refused\nabs-write-refused\n"
            "jobdir-list-refused\nkill-refused\nlog-read-refused\nfd-read-refused\n");
  EXPECT_FALSE(std::filesystem::exists(victim.workdir + "/planted"));
  EXPECT_THAT(exec_->Running(), ::testing::Contains("victim"));
  EXPECT_TRUE(exec_->Terminate("victim", std::chrono::milliseconds(0)).ok());
  ASSERT_TRUE(WaitExit(*exec_, "victim").has_value());
}

TEST_F(ProcessExecutorTest, AsRootJobRunsAsTheConfiguredUser) {
  SKIP_UNLESS_ROOT();
  auto [uid, gid] = UserIds("daemon");
  if (uid < 0) {
    GTEST_SKIP() << "no 'daemon' user on this machine";
  }
  LaunchSpec spec = Spec("daemon", {"sh", "-c", "id -un; id -u"});
  spec.run_as_user = "daemon";
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "daemon");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_EQ(ReadText(spec.log_path), "daemon\n" + std::to_string(uid) + "\n");
  EXPECT_EQ(StatOf(spec.workdir).uid, uid);
}

TEST_F(ProcessExecutorTest, AsRootUnknownUserFailsToStart) {
  SKIP_UNLESS_ROOT();
  LaunchSpec spec = Spec("ghost-user", {"true"});
  spec.run_as_user = "fastgpu-no-such-user";
  spec.node = "node-7";
  auto ref = exec_->Launch(spec);
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(ref.status().message(), HasSubstr("OS user 'fastgpu-no-such-user' does not exist on node node-7"));
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("fastgpu: OS user 'fastgpu-no-such-user' does not exist"));
  EXPECT_TRUE(exec_->Running().empty());
  EXPECT_FALSE(std::filesystem::exists(spec.workdir));
}

TEST_F(ProcessExecutorTest, AsRootRunningAsRootIsRefusedUnlessAllowed) {
  SKIP_UNLESS_ROOT();
  LaunchSpec spec = Spec("as-root", {"id", "-u"});
  spec.run_as_user = "root";
  spec.project = "ml";
  auto ref = exec_->Launch(spec);
  ASSERT_FALSE(ref.ok());
  EXPECT_EQ(ref.status().code(), ErrorCode::kPermissionDenied);
  EXPECT_THAT(ref.status().message(), HasSubstr("refusing to run as root: project 'ml' does not allow root"));
  EXPECT_THAT(ref.status().message(), HasSubstr("set run_as_user"));
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("fastgpu: refusing to run as root"));

  spec.allow_root = true;
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "as-root");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("\n0\n"));
}

TEST_F(ProcessExecutorTest, AsRootChosenWorkdirIsCreatedByTheJobUser) {
  SKIP_UNLESS_ROOT();
  std::filesystem::create_directories(root_ + "/shared");
  ::chmod((root_ + "/shared").c_str(), 01777);  // like /tmp
  LaunchSpec spec = Spec("chosen", {"pwd"});
  spec.workdir = root_ + "/shared/a/b";
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "chosen");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0) << ReadText(spec.log_path);
  EXPECT_EQ(ReadText(spec.log_path), spec.workdir + "\n");
  EXPECT_EQ(StatOf(root_ + "/shared").uid, 0);  // existed: left alone
  for (const std::string& d : {root_ + "/shared/a", spec.workdir}) {
    Owner o = StatOf(d);
    EXPECT_EQ(o.uid, kTestJobUid) << d;
    EXPECT_EQ(o.mode, 0700u) << d;
  }
}

TEST_F(ProcessExecutorTest, AsRootChosenWorkdirIsNotCreatedWhereTheJobUserCannot) {
  SKIP_UNLESS_ROOT();
  std::filesystem::create_directories(root_ + "/closed");
  ::chmod((root_ + "/closed").c_str(), 0755);  // root's: the job's uid may not create in it
  LaunchSpec spec = Spec("nocreate", {"pwd"});
  spec.workdir = root_ + "/closed/sub";
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "nocreate");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 127);
  EXPECT_THAT(st->reason, HasSubstr("cannot create working directory '" + spec.workdir + "': Permission denied"));
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("fastgpu: cannot create working directory"));
  EXPECT_FALSE(std::filesystem::exists(spec.workdir));
}

TEST_F(ProcessExecutorTest, AsRootExistingWorkdirIsEnteredWithTheJobUsersPermissions) {
  SKIP_UNLESS_ROOT();
  std::filesystem::create_directories(root_ + "/private");
  ::chmod((root_ + "/private").c_str(), 0700);  // root's, not the job's
  LaunchSpec spec = Spec("noentry", {"pwd"});
  spec.workdir = root_ + "/private";
  Launch(*exec_, spec);
  auto st = WaitExit(*exec_, "noentry");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 127);
  // The reason names the directory its uid may not enter, and what to do.
  EXPECT_THAT(st->reason, HasSubstr("cannot use working directory '" + spec.workdir + "' (uid " +
                                    std::to_string(kTestJobUid) + " cannot enter directory '" + spec.workdir +
                                    "' (mode 0700"));
  EXPECT_THAT(st->reason, HasSubstr("the job runs as uid " + std::to_string(kTestJobUid) + ": use a directory that uid may enter"));
  EXPECT_THAT(st->reason, HasSubstr("): Permission denied"));
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("Permission denied"));
}

// Without root, jobs run as the agent's own user whatever run_as_user says. As root, this is tested in
// a child process that gives up root first.
TEST_F(ProcessExecutorTest, WithoutRootJobRunsAsTheAgentsUser) {
  const int64_t unpriv_uid = kTestJobUid, unpriv_gid = kTestJobUid;  // an unprivileged uid to give up root to
  const bool drop = RunningAsRoot();
  const std::string dir = root_ + "/unprivileged";
  std::filesystem::create_directories(dir);
  if (drop) {
    ASSERT_EQ(::chown(dir.c_str(), static_cast<uid_t>(unpriv_uid), static_cast<gid_t>(unpriv_gid)), 0);
  }
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (drop && (::setgroups(0, nullptr) != 0 || ::setgid(static_cast<gid_t>(unpriv_gid)) != 0 ||
                 ::setuid(static_cast<uid_t>(unpriv_uid)) != 0)) {
      ::_exit(10);
    }
    SystemClock clock;
    auto ex = MakeProcessExecutor(clock);
    LaunchSpec spec;
    spec.job_id = "mine";
    spec.argv = {"id", "-u"};
    spec.job_dir = dir + "/jobs/mine";
    spec.log_path = dir + "/logs/mine.log";
    spec.run_as_user = "root";  // ignored: not root
    auto ref = ex->Launch(spec);
    if (!ref.ok()) ::_exit(11);
    std::optional<ExitStatus> done;
    WaitUntil([&] {
      for (auto& s : ex->Poll()) done = s;
      return done.has_value();
    });
    if (!done || done->exit_code != 0) ::_exit(12);
    if (ReadText(spec.log_path) != std::to_string(::getuid()) + "\n") ::_exit(13);
    struct stat sb {};
    if (::stat((spec.job_dir + "/work").c_str(), &sb) != 0 || (sb.st_mode & 0777) != 0700) ::_exit(14);
    if (::stat(spec.job_dir.c_str(), &sb) != 0 || (sb.st_mode & 0777) != 0700) ::_exit(15);
    ::_exit(0);
  }
  int wst = 0;
  ASSERT_EQ(::waitpid(child, &wst, 0), child);
  ASSERT_TRUE(WIFEXITED(wst));
  EXPECT_EQ(WEXITSTATUS(wst), 0) << "10: cannot give up root, 11: launch failed, 12: job failed, 13: wrong uid, "
                                    "14/15: wrong directory mode";
}

// ---- Fencing: the supervisor stops the job itself once the node's lease has run out.

// Writes the lease file as the agent does: "<CLOCK_MONOTONIC deadline ns> <grace ms> <lease ms>".
void WriteLease(const std::string& path, int64_t deadline_ns, int64_t grace_ms, int64_t lease_ms) {
  ASSERT_TRUE(WriteFileAtomic(path, std::to_string(deadline_ns) + " " + std::to_string(grace_ms) + " " +
                                        std::to_string(lease_ms) + "\n")
                  .ok());
}

// Fencing tests: a job with the lease file root_/lease, granted for a minute, started and past its "ready" line.
class FencingTest : public ProcessExecutorTest {
 protected:
  LaunchSpec LaunchLeased(const std::string& id, const std::string& script, int64_t grace_ms, int64_t lease_ms) {
    WriteLease(LeasePath(), real_.MonotonicNanos() + 60'000'000'000, grace_ms, lease_ms);
    LaunchSpec spec = Spec(id, {"sh", "-c", script});
    spec.lease_path = LeasePath();
    Launch(*exec_, spec);
    EXPECT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("ready") != std::string::npos; }));
    return spec;
  }
  // The lease runs out now (the server has not answered the node for the whole lease).
  void RunOut(int64_t grace_ms, int64_t lease_ms) { WriteLease(LeasePath(), real_.MonotonicNanos(), grace_ms, lease_ms); }

  SystemClock real_;  // the lease is in CLOCK_MONOTONIC time, which the supervisor reads itself
  std::string LeasePath() const { return root_ + "/lease"; }
};

TEST_F(FencingTest, AJobWhoseLeaseRunsOutIsStoppedByItsSupervisorAndEndsLost) {
  LaunchLeased("fenced", "echo ready; exec sleep 60", 2000, 30'000);
  const int64_t ran_out = real_.MonotonicNanos();
  RunOut(2000, 30'000);
  auto st = WaitExit(*exec_, "fenced");
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->lost);
  EXPECT_EQ(st->signal, SIGTERM);  // sleep ends at the SIGTERM, before the grace
  EXPECT_THAT(st->reason, HasSubstr("fenced: stopped by its node after 30 s without contact with the server"));
  // Within about a second of the deadline (the supervisor checks once a second).
  EXPECT_LT(real_.MonotonicNanos() - ran_out, 5'000'000'000);
}

TEST_F(FencingTest, AFencedJobThatIgnoresTermIsKilledAfterTheLeasesGrace) {
  LaunchSpec spec =
      LaunchLeased("stubborn", "trap 'echo got-term' TERM; echo ready; while true; do sleep 0.05; done", 300, 10'000);
  RunOut(300, 10'000);
  auto st = WaitExit(*exec_, "stubborn");
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->lost);
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_THAT(ReadText(spec.log_path), HasSubstr("got-term"));
}

TEST_F(FencingTest, ALiveLeaseOrNoLeaseFileFencesNothing) {
  WriteLease(LeasePath(), real_.MonotonicNanos() + 60'000'000'000, 0, 30'000);
  LaunchSpec a = Spec("leased", {"sh", "-c", "sleep 1.5; exit 4"});
  a.lease_path = LeasePath();
  LaunchSpec b = Spec("unleased", {"sh", "-c", "sleep 1.5; exit 5"});
  b.lease_path = root_ + "/no-such-lease";
  Launch(*exec_, a);
  Launch(*exec_, b);
  auto sa = WaitExit(*exec_, "leased");
  ASSERT_TRUE(sa.has_value());
  EXPECT_FALSE(sa->lost);
  EXPECT_EQ(sa->exit_code, 4);
  std::optional<ExitStatus> sb;
  for (const auto& o : others_)
    if (o.job_id == "unleased") sb = o;
  if (!sb) sb = WaitExit(*exec_, "unleased");
  ASSERT_TRUE(sb.has_value());
  EXPECT_FALSE(sb->lost);
  EXPECT_EQ(sb->exit_code, 5);
}

TEST_F(FencingTest, AnAdoptedJobIsFencedWithoutTheAgent) {
  // The agent is gone (a new executor adopts later): the supervisor alone stops the job.
  LaunchSpec spec = LaunchLeased("orphan", "echo ready; exec sleep 60", 0, 30'000);
  exec_.reset();
  RunOut(0, 30'000);
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(spec.job_dir + "/exit"); }));
  exec_ = MakeProcessExecutor(clock_);
  EXPECT_EQ(exec_->Adopt("orphan", spec.job_dir).status().code(), ErrorCode::kNotFound);  // ended: reported by Poll
  auto st = WaitExit(*exec_, "orphan");
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->lost);
  EXPECT_THAT(st->reason, HasSubstr("fenced"));
}

// ---------------------------------------------------------------------------------------------
// Preemption and migration: the checkpoint signal, its grace (on the injected clock), then SIGTERM and SIGKILL.

// The log without the notes sh writes when a signal ends its foreground `sleep` ("Terminated", "User defined
// signal 2"): only the lines the test scripts echo.
std::string Echoed(const std::string& log) {
  std::string out;
  size_t pos = 0;
  while (pos < log.size()) {
    size_t eol = log.find('\n', pos);
    if (eol == std::string::npos) eol = log.size();
    const std::string line = log.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("Terminated", 0) == 0 || line.rfind("User defined signal", 0) == 0 || line.rfind("Killed", 0) == 0)
      continue;
    out += line + "\n";
  }
  return out;
}

TEST_F(ProcessExecutorTest, ACheckpointSignalComesFirstAndSigtermOnlyAfterTheCheckpointGrace) {
  LaunchSpec spec = Spec("ckpt", {"sh", "-c",
                                  "trap 'echo got-usr1' USR1; trap 'echo got-term' TERM; echo ready; "
                                  "while true; do sleep 0.05; done"});
  Launch(*exec_, spec);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("ready") != std::string::npos; }));
  ASSERT_TRUE(exec_->Checkpoint("ckpt", SIGUSR1, std::chrono::seconds(60), std::chrono::seconds(10)).ok());
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("got-usr1") != std::string::npos; }));
  // Within the checkpoint grace: no SIGTERM, the job runs on; a second stop of the same kind changes nothing.
  clock_.Advance(std::chrono::seconds(59));
  EXPECT_TRUE(exec_->Poll().empty());
  ASSERT_TRUE(exec_->Checkpoint("ckpt", SIGUSR1, std::chrono::seconds(60), std::chrono::seconds(10)).ok());
  EXPECT_TRUE(exec_->Poll().empty());
  EXPECT_THAT(exec_->Running(), UnorderedElementsAre("ckpt"));
  EXPECT_EQ(Echoed(ReadText(spec.log_path)), "ready\ngot-usr1\n");
  // The grace is over: SIGTERM (the job traps it and runs on), then SIGKILL after the stop grace.
  clock_.Advance(std::chrono::seconds(2));
  EXPECT_TRUE(exec_->Poll().empty());
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("got-term") != std::string::npos; }));
  clock_.Advance(std::chrono::seconds(9));
  EXPECT_TRUE(exec_->Poll().empty());
  EXPECT_THAT(exec_->Running(), UnorderedElementsAre("ckpt"));
  clock_.Advance(std::chrono::seconds(2));
  auto st = WaitExit(*exec_, "ckpt");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->signal, SIGKILL);
  EXPECT_EQ(Echoed(ReadText(spec.log_path)), "ready\ngot-usr1\ngot-term\n");
  EXPECT_EQ(exec_->Checkpoint("ckpt", SIGUSR1, std::chrono::seconds(1), std::chrono::seconds(1)).code(),
            ErrorCode::kNotFound);
}

TEST_F(ProcessExecutorTest, AJobThatSavesItsWorkAndExitsWithinTheGraceGetsNoSigterm) {
  LaunchSpec spec = Spec("saves", {"sh", "-c",
                                   "trap 'echo saved; exit 0' USR2; trap 'echo got-term' TERM; echo ready; "
                                   "while true; do sleep 0.05; done"});
  Launch(*exec_, spec);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("ready") != std::string::npos; }));
  ASSERT_TRUE(exec_->Checkpoint("saves", SIGUSR2, std::chrono::seconds(60), std::chrono::seconds(10)).ok());
  auto st = WaitExit(*exec_, "saves");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_EQ(Echoed(ReadText(spec.log_path)), "ready\nsaved\n");
}

TEST_F(ProcessExecutorTest, ACancelDuringTheCheckpointGraceSendsSigtermAtOnce) {
  LaunchSpec spec = Spec("cancelled", {"sh", "-c",
                                       "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 0' TERM; echo ready; "
                                       "while true; do sleep 0.05; done"});
  Launch(*exec_, spec);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("ready") != std::string::npos; }));
  ASSERT_TRUE(exec_->Checkpoint("cancelled", SIGUSR1, std::chrono::seconds(60), std::chrono::seconds(10)).ok());
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("got-usr1") != std::string::npos; }));
  ASSERT_TRUE(exec_->Terminate("cancelled", std::chrono::seconds(10)).ok());
  auto st = WaitExit(*exec_, "cancelled");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_EQ(Echoed(ReadText(spec.log_path)), "ready\ngot-usr1\ngot-term\n");
}

TEST_F(ProcessExecutorTest, TheCheckpointSignalReachesTheWholeProcessGroup) {
  LaunchSpec spec = Spec("group", {"sh", "-c",
                                   "trap 'echo parent-usr1' USR1; "
                                   "(trap 'echo child-usr1; exit 0' USR1; echo child-ready; "
                                   "while true; do sleep 0.05; done) & "
                                   "wait; wait"});
  Launch(*exec_, spec);
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("child-ready") != std::string::npos; }));
  ASSERT_TRUE(exec_->Checkpoint("group", SIGUSR1, std::chrono::seconds(60), std::chrono::seconds(10)).ok());
  auto st = WaitExit(*exec_, "group");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  const std::string log = ReadText(spec.log_path);
  EXPECT_THAT(log, HasSubstr("child-usr1"));
  EXPECT_THAT(log, HasSubstr("parent-usr1"));
}

// A per-GPU job's process is the rank launcher, which passes the signal on to each rank: the executor signals it
// alone (here a script in the launcher's place: only it sees the signal, not its child), also after an adoption.
TEST_F(ProcessExecutorTest, APerGpuLauncherAloneGetsTheCheckpointSignal) {
  LaunchSpec spec = Spec("ranks", {"sh", kRankLauncherVerb});
  std::filesystem::create_directories(spec.workdir);
  std::ofstream(spec.workdir + "/" + kRankLauncherVerb)
      << "trap 'echo leader-usr1; kill -TERM $child 2>/dev/null; exit 0' USR1\n"
         "(trap 'echo child-usr1' USR1; echo child-ready; while true; do sleep 0.05; done) &\n"
         "child=$!\nwait\nwait\n";
  ::chmod(spec.workdir.c_str(), 0755);
  ::chmod((spec.workdir + "/" + kRankLauncherVerb).c_str(), 0644);
  Launch(*exec_, spec);
  ASSERT_TRUE(std::filesystem::exists(spec.job_dir + "/" + kForwardsSignalsFile));
  ASSERT_TRUE(WaitUntil([&] { return ReadText(spec.log_path).find("child-ready") != std::string::npos; }))
      << ReadText(spec.log_path);
  // After a restart of the agent the adopted job is still told apart.
  exec_ = MakeProcessExecutor(clock_);
  ASSERT_TRUE(exec_->Adopt("ranks", spec.job_dir).ok());
  ASSERT_TRUE(exec_->Checkpoint("ranks", SIGUSR1, std::chrono::seconds(60), std::chrono::seconds(10)).ok());
  auto st = WaitExit(*exec_, "ranks");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0) << ReadText(spec.log_path);
  EXPECT_EQ(Echoed(ReadText(spec.log_path)), "child-ready\nleader-usr1\n");
  // A job that is not a launcher leaves no such record.
  LaunchSpec plain = Spec("ranks", {"true"});
  Launch(*exec_, plain);
  ASSERT_TRUE(WaitExit(*exec_, "ranks").has_value());
  EXPECT_FALSE(std::filesystem::exists(spec.job_dir + "/" + kForwardsSignalsFile));
}

TEST_F(ProcessExecutorTest, TheCheckpointDirIsPrivateToTheJobAndKeptAcrossAttempts) {
  const std::string ckpt_root = root_ + "/checkpoints";
  ASSERT_TRUE(MakeDirs(ckpt_root, 0711).ok());
  LaunchSpec first = Spec("keeps", {"sh", "-c", "echo step-41 > \"$CKPT/state\"; echo saved"});
  first.checkpoint_dir = ckpt_root + "/keeps";
  first.env["CKPT"] = first.checkpoint_dir;
  Launch(*exec_, first);
  auto st = WaitExit(*exec_, "keeps");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0) << ReadText(first.log_path);
  Owner dir = StatOf(first.checkpoint_dir);
  EXPECT_EQ(dir.mode, 0700u);
  if (RunningAsRoot()) {
    EXPECT_EQ(dir.uid, kTestJobUid);
    EXPECT_EQ(dir.gid, kTestJobUid);
    EXPECT_EQ(StatOf(first.checkpoint_dir + "/state").uid, kTestJobUid);
  }
  // The next attempt finds what the first one saved.
  LaunchSpec second = first;
  second.argv = {"sh", "-c", "cat \"$CKPT/state\""};
  second.attempt = 2;
  Launch(*exec_, second);
  st = WaitExit(*exec_, "keeps");
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->exit_code, 0);
  EXPECT_EQ(ReadText(first.log_path), "saved\nstep-41\n");
  // A symlink in its place is never followed: the start fails, saying why.
  const std::string elsewhere = root_ + "/elsewhere";
  ASSERT_TRUE(MakeDirs(elsewhere, 0700).ok());
  std::filesystem::create_directory_symlink(elsewhere, ckpt_root + "/linked");
  LaunchSpec linked = Spec("linked", {"true"});
  linked.checkpoint_dir = ckpt_root + "/linked";
  auto refused = exec_->Launch(linked);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("cannot give directory '" + linked.checkpoint_dir + "'"));
  EXPECT_THAT(ReadText(linked.log_path), HasSubstr("fastgpu: cannot give directory"));
  EXPECT_EQ(StatOf(elsewhere).uid, static_cast<int64_t>(::geteuid()));
}

TEST_F(ProcessExecutorTest, AsRootAnotherProjectsJobCannotEnterACheckpointDir) {
  SKIP_UNLESS_ROOT();
  const std::string ckpt_root = root_ + "/checkpoints";
  ASSERT_TRUE(MakeDirs(ckpt_root, 0711).ok());
  ASSERT_EQ(::chmod(ckpt_root.c_str(), 0711), 0);
  LaunchSpec owner = Spec("owner", {"sh", "-c", "echo secret > \"$FASTGPU_CHECKPOINT_DIR/w\""});
  owner.checkpoint_dir = ckpt_root + "/owner";
  owner.env["FASTGPU_CHECKPOINT_DIR"] = owner.checkpoint_dir;
  Launch(*exec_, owner);
  ASSERT_TRUE(WaitExit(*exec_, "owner").has_value());
  LaunchSpec other = Spec("other", {"sh", "-c",
                                    "ls " + owner.checkpoint_dir + " 2>/dev/null && echo listed || echo no-list; "
                                    "cat " + owner.checkpoint_dir + "/w 2>/dev/null || echo no-read; "
                                    "ls " + ckpt_root + " 2>/dev/null && echo listed-root || echo no-root"});
  other.run_as_uid = kOtherTestJobUid;
  other.project = "other";
  Launch(*exec_, other);
  ASSERT_TRUE(WaitExit(*exec_, "other").has_value());
  EXPECT_EQ(ReadText(other.log_path), "no-list\nno-read\nno-root\n");
}

}  // namespace
}  // namespace fastgpu::agent
