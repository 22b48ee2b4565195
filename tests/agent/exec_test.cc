// Exec sessions on the node (src/agent/exec.h): starting the command (pipes or a pseudo-terminal), the job's
// environment and directory, and the relay of a session through a ControlPlane.
#include "agent/exec.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>

#include <condition_variable>
#include <mutex>

#include "agent/protocol.h"
#include "common/crypto.h"
#include "test_util.h"

#include <nlohmann/json.hpp>

extern char** environ;  // NOLINT: POSIX

namespace fastgpu::agent {
namespace {

using testing::WaitUntil;

// Reads everything from `fd` until EOF (or EIO: a terminal whose other side closed).
std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10'000) <= 0) break;
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

int Reap(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

ExecSpawn Sh(const std::string& script) {
  ExecSpawn s;
  s.argv = {"sh", "-c", script};
  s.env = {"PATH=/usr/bin:/bin", "FOO=bar"};
  return s;
}

TEST(SpawnExecTest, OutputErrorsAndExitCodeWithoutATerminal) {
  auto p = SpawnExec(Sh("echo out $FOO; echo err >&2; test -t 1 || echo notty; exit 7"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_LT(p->in_fd, 0);  // no input asked for: /dev/null
  EXPECT_EQ(ReadAll(p->out_fd), "out bar\nnotty\n");
  EXPECT_EQ(ReadAll(p->err_fd), "err\n");
  EXPECT_EQ(Reap(p->pid), 7);
  for (int fd : {p->out_fd, p->err_fd, p->pidfd}) ::close(fd);
}

TEST(SpawnExecTest, StandardInputRoundTrip) {
  ExecSpawn s = Sh("cat; echo done");
  s.stdin_open = true;
  auto p = SpawnExec(s);
  ASSERT_TRUE(p.ok());
  ASSERT_GE(p->in_fd, 0);
  ASSERT_EQ(::write(p->in_fd, "abc\n", 4), 4);
  ::close(p->in_fd);
  EXPECT_EQ(ReadAll(p->out_fd), "abc\ndone\n");
  EXPECT_EQ(Reap(p->pid), 0);
  for (int fd : {p->out_fd, p->err_fd, p->pidfd}) ::close(fd);
}

TEST(SpawnExecTest, APseudoTerminalWithTheWindowSizeAndItsOwnSession) {
  ExecSpawn s = Sh("test -t 0 && test -t 1 && test -t 2 && echo TTY; stty size; read line; echo got:$line");
  s.tty = true;
  s.rows = 33;
  s.cols = 77;
  auto p = SpawnExec(s);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_LT(p->err_fd, 0);  // stderr is the terminal too
  ASSERT_GE(p->in_fd, 0);
  ASSERT_EQ(::write(p->in_fd, "hi\n", 3), 3);
  const std::string out = ReadAll(p->out_fd);
  EXPECT_NE(out.find("TTY"), std::string::npos) << out;
  EXPECT_NE(out.find("33 77"), std::string::npos) << out;
  EXPECT_NE(out.find("got:hi"), std::string::npos) << out;
  EXPECT_EQ(Reap(p->pid), 0);
  for (int fd : {p->in_fd, p->out_fd, p->pidfd}) ::close(fd);
}

TEST(SpawnExecTest, ACommandThatDoesNotExistSaysSoAndExits127) {
  ExecSpawn s;
  s.argv = {"no-such-command-fastgpu"};
  s.env = {"PATH=/usr/bin:/bin"};
  auto p = SpawnExec(s);
  ASSERT_TRUE(p.ok());
  EXPECT_NE(ReadAll(p->err_fd).find("cannot run 'no-such-command-fastgpu': command not found"), std::string::npos);
  EXPECT_EQ(Reap(p->pid), 127);
  for (int fd : {p->out_fd, p->err_fd, p->pidfd}) ::close(fd);
}

TEST(PlanExecTest, ARunningJobsEnvironmentAndWorkingDirectory) {
  const std::string dir = testing::MakeTempDir();
  ASSERT_FALSE(dir.empty());
  std::filesystem::create_directories(dir + "/jobs/j-1/work");
  // A stand-in for the job's process, with the job's environment.
  std::string e1 = "FASTGPU_JOB_ID=j-1", e2 = "CUDA_VISIBLE_DEVICES=0,1", e3 = "SECRET_TOKEN=s3cr3t";
  char* envp[] = {e1.data(), e2.data(), e3.data(), nullptr};
  std::string a0 = "/bin/sleep", a1 = "30";
  char* argv[] = {a0.data(), a1.data(), nullptr};
  pid_t job = 0;
  ASSERT_EQ(::posix_spawn(&job, argv[0], nullptr, nullptr, argv, envp), 0);
  // Its environment is readable once its exec has set it up (posix_spawn may return a moment before).
  ASSERT_TRUE(WaitUntil([&] { return !testing::ReadText("/proc/" + std::to_string(job) + "/environ").empty(); }));
  JobCommand cmd;
  cmd.kind = JobCommand::Kind::kExec;
  cmd.job.id = "j-1";
  cmd.argv = {"env"};
  cmd.tty = true;
  cmd.term = "xterm-256color";
  cmd.run_as_uid = static_cast<int64_t>(::getuid());
  cmd.allow_root = true;  // the stand-in runs as the test's user, root in CI
  auto plan = PlanExec(cmd, ExecTarget{job, dir + "/jobs/j-1", "n1"});
  ::kill(job, SIGKILL);
  Reap(job);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  auto has = [&](const std::string& kv) {
    return std::find(plan->env.begin(), plan->env.end(), kv) != plan->env.end();
  };
  EXPECT_TRUE(has("FASTGPU_JOB_ID=j-1"));
  EXPECT_TRUE(has("CUDA_VISIBLE_DEVICES=0,1"));
  EXPECT_TRUE(has("SECRET_TOKEN=s3cr3t"));
  EXPECT_TRUE(has("TERM=xterm-256color"));
  EXPECT_EQ(plan->workdir, std::filesystem::path(dir + "/jobs/j-1/work").lexically_normal().string());
  EXPECT_TRUE(plan->chdir_before_identity);
  EXPECT_EQ(plan->argv, std::vector<std::string>{"env"});
  EXPECT_EQ(plan->set_identity, ::geteuid() == 0);
  if (::geteuid() == 0) {
    EXPECT_EQ(plan->uid, 0u);
  }
  // A job whose process is gone cannot be exec'd into.
  auto gone = PlanExec(cmd, ExecTarget{job, dir + "/jobs/j-1", "n1"});
  EXPECT_FALSE(gone.ok());
  std::filesystem::remove_all(dir);
}

// A server for one session, in memory: records pushes, hands out scripted input.
class FakeExecServer final : public ControlPlane {
 public:
  Status RegisterNode(const NodeRegistration&) override { return Status::Ok(); }
  Result<std::vector<JobCommand>> WaitCommands(const std::string&, std::chrono::milliseconds) override {
    return std::vector<JobCommand>{};
  }
  Status ReportJob(const JobReport&) override { return Status::Ok(); }
  Status Heartbeat(const NodeHeartbeat&) override { return Status::Ok(); }

  Result<ExecOutputAck> PushExecOutput(const ExecOutput& o) override {
    std::lock_guard lock(mu);
    if (o.stdout_offset == static_cast<int64_t>(out.size())) out += o.stdout_data;
    if (o.stderr_offset == static_cast<int64_t>(err.size())) err += o.stderr_data;
    if (o.exited) {
      exited = true;
      exit_code = o.exit_code;
      signal = o.signal;
      error = o.error;
    }
    cv.notify_all();
    return ExecOutputAck{static_cast<int64_t>(out.size()), static_cast<int64_t>(err.size()), closed};
  }
  Result<ExecInput> WaitExecInput(const std::string&, const std::string&, int64_t offset,
                                  std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu);
    cv.wait_for(lock, timeout, [&] {
      return closed || exited || static_cast<int64_t>(input.size()) > offset || (eof && !eof_sent);
    });
    ExecInput in;
    in.offset = offset;
    if (static_cast<int64_t>(input.size()) > offset) in.data = input.substr(static_cast<size_t>(offset));
    in.eof = eof;
    eof_sent = eof;
    in.close = closed || exited;
    return in;
  }
  void Send(const std::string& data, bool end) {
    std::lock_guard lock(mu);
    input += data;
    eof = end;
    cv.notify_all();
  }
  void Close() {
    std::lock_guard lock(mu);
    closed = true;
    cv.notify_all();
  }
  bool WaitExit() {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return exited; });
  }

  std::mutex mu;
  std::condition_variable cv;
  std::string out, err, input, error;
  bool eof = false, eof_sent = false, closed = false, exited = false;
  std::optional<int> exit_code, signal;
};

TEST(ExecRunnerTest, RelaysInputOutputAndTheExitCode) {
  FakeExecServer server;
  ExecRunner runner(server, "n1", std::chrono::milliseconds(1'000), std::chrono::milliseconds(20));
  ExecSpawn s = Sh("read x; echo got:$x; echo oops >&2; exit 4");
  s.stdin_open = true;
  runner.Start("x-1", "j-1", s);
  server.Send("hello\n", true);
  ASSERT_TRUE(server.WaitExit());
  EXPECT_EQ(server.out, "got:hello\n");
  EXPECT_EQ(server.err, "oops\n");
  EXPECT_EQ(server.exit_code, 4);
  // A command delivered again is not run twice.
  runner.Start("x-1", "j-1", s);
  EXPECT_TRUE(WaitUntil([&] { return runner.Live() == 0; }));
}

TEST(ExecRunnerTest, ClosingTheSessionKillsTheCommand) {
  FakeExecServer server;
  ExecRunner runner(server, "n1", std::chrono::milliseconds(1'000), std::chrono::milliseconds(20));
  runner.Start("x-2", "j-1", Sh("echo started; exec sleep 600"));
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard lock(server.mu);
    return server.out == "started\n";
  }));
  server.Close();
  ASSERT_TRUE(server.WaitExit());
  EXPECT_EQ(server.signal, SIGKILL);
}

TEST(ExecRunnerTest, TheJobsEndKillsItsCommands) {
  FakeExecServer server;
  ExecRunner runner(server, "n1", std::chrono::milliseconds(1'000), std::chrono::milliseconds(20));
  runner.Start("x-3", "j-9", Sh("echo started; exec sleep 600"));
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard lock(server.mu);
    return !server.out.empty();
  }));
  runner.KillJob("j-9");
  ASSERT_TRUE(server.WaitExit());
  EXPECT_EQ(server.signal, SIGKILL);
}

TEST(ExecRunnerTest, ACommandThatCannotStartEndsTheSessionWithTheReason) {
  FakeExecServer server;
  ExecRunner runner(server, "n1", std::chrono::milliseconds(1'000), std::chrono::milliseconds(20));
  runner.Start("x-4", "j-1", FailedPrecondition("job j-1 (attempt 2) is not running on node n1"));
  ASSERT_TRUE(server.WaitExit());
  EXPECT_EQ(server.exit_code, 127);
  EXPECT_NE(server.err.find("is not running on node n1"), std::string::npos) << server.err;
  EXPECT_EQ(server.error, "job j-1 (attempt 2) is not running on node n1");
}

TEST(ExecProtocolTest, Base64MatchesRfc4648AndRefusesGarbage) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},  {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, coded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), coded);
    auto back = Base64Decode(coded);
    ASSERT_TRUE(back.ok()) << coded;
    EXPECT_EQ(*back, plain);
  }
  for (const char* bad : {"Zg=", "Z===", "Zm9v!A==", "Zg==Zg==", "=Zg="}) EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
}

TEST(ExecProtocolTest, AnExecCommandAndTheSessionsBytesSurviveTheWire) {
  JobCommand c;
  c.kind = JobCommand::Kind::kExec;
  c.id = 7;
  c.job.id = "j-3";
  c.job.attempt = 2;
  c.session = "x-0123456789abcdef";
  c.argv = {"sh", "-c", "echo 'a b'"};
  c.rank = 1;
  c.run_as_uid = 1'900'000'001;
  c.tty = true;
  c.stdin_open = true;
  c.rows = 40;
  c.cols = 120;
  c.term = "xterm-256color";
  auto back = JobCommandFromJson(ToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->kind, JobCommand::Kind::kExec);
  EXPECT_EQ(back->session, c.session);
  EXPECT_EQ(back->argv, c.argv);
  EXPECT_EQ(back->job.id, "j-3");
  EXPECT_EQ(back->job.attempt, 2);
  EXPECT_EQ(back->rank, 1);
  EXPECT_EQ(back->run_as_uid, c.run_as_uid);
  EXPECT_TRUE(back->tty && back->stdin_open);
  EXPECT_EQ(back->rows, 40);
  EXPECT_EQ(back->cols, 120);
  EXPECT_EQ(back->term, "xterm-256color");
  nlohmann::json no_cmd = ToJson(c);
  no_cmd["argv"] = nlohmann::json::array();
  EXPECT_FALSE(JobCommandFromJson(no_cmd).ok());

  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  ExecOutput o;
  o.session = c.session;
  o.node = "n1";
  o.stdout_offset = 5;
  o.stdout_data = every_byte;
  o.stderr_offset = 9;
  o.stderr_data = "\xff\xfe";
  o.exited = true;
  o.signal = 9;
  o.error = "job j-3 ended";
  auto out = ExecOutputFromJson(ToJson(o));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->stdout_data, every_byte);
  EXPECT_EQ(out->stderr_data, "\xff\xfe");
  EXPECT_EQ(out->stdout_offset, 5);
  EXPECT_EQ(out->stderr_offset, 9);
  EXPECT_TRUE(out->exited);
  EXPECT_EQ(out->signal, 9);
  EXPECT_FALSE(out->exit_code.has_value());
  EXPECT_EQ(out->error, "job j-3 ended");
  nlohmann::json extra = ToJson(o);
  extra["surprise"] = 1;
  EXPECT_FALSE(ExecOutputFromJson(extra).ok());

  ExecInput i;
  i.offset = 3;
  i.data = every_byte;
  i.eof = true;
  i.rows = 24;
  i.cols = 80;
  i.close = true;
  i.close_reason = "ended by user:alice";
  auto in = ExecInputFromJson(ToJson(i));
  ASSERT_TRUE(in.ok()) << in.status().ToString();
  EXPECT_EQ(in->data, every_byte);
  EXPECT_EQ(in->offset, 3);
  EXPECT_TRUE(in->eof && in->close);
  EXPECT_EQ(in->close_reason, "ended by user:alice");
  auto ack = ExecOutputAckFromJson(ToJson(ExecOutputAck{10, 20, true}));
  ASSERT_TRUE(ack.ok());
  EXPECT_EQ(ack->stdout_offset, 10);
  EXPECT_EQ(ack->stderr_offset, 20);
  EXPECT_TRUE(ack->closed);
}

}  // namespace
}  // namespace fastgpu::agent
