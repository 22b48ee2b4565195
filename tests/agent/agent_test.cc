#include "agent/agent.h"
#include "common/crypto.h"
#include "common/file_util.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

namespace fastgpu::agent {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;
using namespace fastgpu::agent::testing;  // NOLINT

// Records what the agent sends and feeds it commands.
class FakeControlPlane final : public ControlPlane {
 public:
  Status RegisterNode(const NodeRegistration& reg) override {
    std::lock_guard lock(mu_);
    if (fail_registrations_ > 0) {
      --fail_registrations_;
      return Unavailable("server starting");
    }
    registrations_.push_back(reg);
    return Status::Ok();
  }
  Result<std::vector<JobCommand>> WaitCommands(const std::string& node,
                                               std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return !commands_.empty(); });
    std::vector<JobCommand> out;
    while (!commands_.empty()) {
      out.push_back(commands_.front());
      commands_.pop_front();
    }
    last_node_ = node;
    if (!out.empty()) handed_out_ns_ = clock_.MonotonicNanos();
    return out;
  }
  Status ReportJob(const JobReport& report) override {
    std::lock_guard lock(mu_);
    ++report_calls_;
    if (fail_reports_ > 0) {
      --fail_reports_;
      return Unavailable("server briefly unavailable");
    }
    reports_.push_back(report);
    if (report.kind == JobReport::Kind::kStarted) last_start_latency_ns_ = clock_.MonotonicNanos() - handed_out_ns_;
    return Status::Ok();
  }
  Status Heartbeat(const NodeHeartbeat& hb) override {
    std::lock_guard lock(mu_);
    if (unreachable_) return Unavailable("cannot connect to the server");
    heartbeats_.push_back(hb);
    return Status::Ok();
  }
  Lease CurrentLease() const override {
    std::lock_guard lock(mu_);
    return lease_;
  }
  void GrantLease(Lease l) {
    std::lock_guard lock(mu_);
    lease_ = l;
  }
  // Heartbeats fail (a network split) until called with false.
  void SetUnreachable(bool u) {
    std::lock_guard lock(mu_);
    unreachable_ = u;
  }
  Status AckCommands(const std::string&, uint64_t through_id) override {
    std::lock_guard lock(mu_);
    acked_ = std::max(acked_, through_id);
    return Status::Ok();
  }
  uint64_t Acked() const {
    std::lock_guard lock(mu_);
    return acked_;
  }

  void Push(JobCommand cmd) {
    {
      std::lock_guard lock(mu_);
      commands_.push_back(std::move(cmd));
    }
    cv_.notify_all();
  }
  void FailReports(int n) {
    std::lock_guard lock(mu_);
    fail_reports_ = n;
  }
  void FailRegistrations(int n) {
    std::lock_guard lock(mu_);
    fail_registrations_ = n;
  }
  std::vector<JobReport> Reports() const {
    std::lock_guard lock(mu_);
    return reports_;
  }
  std::vector<JobReport> ReportsFor(const std::string& id) const {
    std::vector<JobReport> out;
    for (auto& r : Reports()) {
      if (r.job_id == id) out.push_back(r);
    }
    return out;
  }
  std::vector<NodeRegistration> Registrations() const {
    std::lock_guard lock(mu_);
    return registrations_;
  }
  std::vector<NodeHeartbeat> Heartbeats() const {
    std::lock_guard lock(mu_);
    return heartbeats_;
  }
  // Time from handing out the last commands to the last kStarted report.
  int64_t LastStartLatencyNanos() const {
    std::lock_guard lock(mu_);
    return last_start_latency_ns_;
  }
  int ReportCalls() const {
    std::lock_guard lock(mu_);
    return report_calls_;
  }
  // Waits for a report of `kind` about job `id`.
  std::optional<JobReport> WaitReport(const std::string& id, JobReport::Kind kind) const {
    std::optional<JobReport> found;
    WaitUntil([&] {
      for (auto& r : ReportsFor(id)) {
        if (r.kind == kind) {
          found = r;
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<JobCommand> commands_;
  std::vector<NodeRegistration> registrations_;
  std::vector<JobReport> reports_;
  std::vector<NodeHeartbeat> heartbeats_;
  uint64_t acked_ = 0;
  Lease lease_;
  bool unreachable_ = false;
  std::string last_node_;
  int fail_reports_ = 0;
  int fail_registrations_ = 0;
  int report_calls_ = 0;
  SystemClock clock_;
  int64_t handed_out_ns_ = 0;
  int64_t last_start_latency_ns_ = 0;
};

class FakeGpuBackend final : public gpu::GpuBackend {
 public:
  std::string Name() const override { return "fake"; }
  Result<std::vector<gpu::GpuInfo>> Discover() override {
    std::vector<gpu::GpuInfo> out;
    for (int i = 0; i < 2; ++i) {
      gpu::GpuInfo g;
      g.index = i;
      g.uuid = "GPU-" + std::to_string(i);
      g.name = "NVIDIA A100-SXM4-80GB";
      g.type = "A100-80GB";
      g.pci_bus_id = "00000000:0" + std::to_string(i + 1) + ":00.0";
      g.memory_total_mib = 81920;
      out.push_back(g);
    }
    return out;
  }
  Result<std::vector<gpu::GpuMetrics>> Sample() override {
    std::vector<gpu::GpuMetrics> out;
    for (int i = 0; i < 2; ++i) {
      gpu::GpuMetrics m;
      m.uuid = "GPU-" + std::to_string(i);
      m.memory_used_mib = 1000 * (i + 1);
      m.utilization_pct = 40 + i;
      m.temperature_c = 50;
      m.power_mw = 200'000;
      m.healthy = i == 0;
      out.push_back(m);
    }
    return out;
  }
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    BecomeSubreaper();
    home_ = MakeTempDirForJobs();
    ASSERT_FALSE(home_.empty());
  }
  void TearDown() override {
    agents_.clear();  // stops them
    std::vector<int64_t> pgids;
    for (auto& r : cp_.Reports()) {
      if (r.kind == JobReport::Kind::kStarted) pgids.push_back(r.pid);
    }
    EXPECT_TRUE(KillGroupsAndReap(pgids)) << "child processes remain after the test";
    executors_.clear();
    std::error_code ec;
    std::filesystem::remove_all(home_, ec);
  }

  AgentOptions Options() {
    AgentOptions o;
    o.node_name = "node-1";
    o.home = home_;
    o.labels = {{"zone", "a"}};
    o.heartbeat_interval = std::chrono::milliseconds(60'000);
    o.command_wait = std::chrono::milliseconds(50);
    o.retry_interval = std::chrono::milliseconds(10);
    o.poll_interval = std::chrono::milliseconds(5);
    return o;
  }

  // Creates an agent with a fresh executor (as after a restart of the process).
  Agent& NewAgent(AgentOptions o, gpu::GpuBackend* backend = nullptr) {
    executors_.push_back(MakeProcessExecutor(clock_));
    agents_.push_back(std::make_unique<Agent>(std::move(o), backend ? *backend : gpus_, *executors_.back(),
                                              cp_, clock_));
    return *agents_.back();
  }

  static JobCommand StartCmd(const std::string& id, std::vector<std::string> command, int attempt = 1) {
    JobCommand c;
    c.kind = JobCommand::Kind::kStart;
    c.job.id = id;
    c.job.attempt = attempt;
    c.job.spec.command = std::move(command);
    c.run_as_uid = kTestJobUid;  // used only as root
    return c;
  }
  static JobCommand StopCmd(const std::string& id, int attempt, int64_t grace_ms, std::string reason) {
    JobCommand c;
    c.kind = JobCommand::Kind::kStop;
    c.job_id = id;
    c.attempt = attempt;
    c.grace_ms = grace_ms;
    c.reason = std::move(reason);
    return c;
  }

  std::string ReadAllLog(Agent& a, const std::string& id) {
    std::string out;
    int64_t off = 0;
    while (true) {
      auto chunk = a.ReadLog(id, off, 7);
      if (!chunk.ok()) return out;
      out += chunk->data;
      off = chunk->next_offset;
      if (chunk->eof) return out;
    }
  }

  SystemClock clock_;
  std::string home_;
  FakeControlPlane cp_;
  FakeGpuBackend gpus_;
  std::vector<std::unique_ptr<Executor>> executors_;
  std::vector<std::unique_ptr<Agent>> agents_;
};

TEST_F(AgentTest, RegistersNodeWithGpus) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  auto regs = cp_.Registrations();
  ASSERT_EQ(regs.size(), 1u);
  EXPECT_EQ(regs[0].node.name, "node-1");
  EXPECT_EQ(regs[0].node.gpu_count, 2);
  EXPECT_EQ(regs[0].node.labels.at("zone"), "a");
  ASSERT_EQ(regs[0].gpus.size(), 2u);
  EXPECT_EQ(regs[0].gpus[1].uuid, "GPU-1");
  EXPECT_EQ(regs[0].gpus[1].index, 1);
  EXPECT_EQ(regs[0].gpus[1].node, "node-1");
  EXPECT_EQ(regs[0].gpus[1].type, "A100-80GB");
  EXPECT_EQ(regs[0].gpus[1].memory_total_mib, 81920);
  EXPECT_EQ(regs[0].gpus[1].memory_used_mib, 2000);
  EXPECT_FALSE(regs[0].gpus[1].healthy);
  EXPECT_THAT(regs[0].running_job_ids, IsEmpty());
  EXPECT_THAT(regs[0].recovered, IsEmpty());
  EXPECT_TRUE(a.Registered());
  EXPECT_EQ(a.Start().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(AgentTest, RegistersWithSimulatedGpus) {
  auto sim = gpu::MakeSimulatedBackend("4xA100-80GB", "node-1");
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  Agent& a = NewAgent(Options(), sim->get());
  ASSERT_TRUE(a.Start().ok());
  auto regs = cp_.Registrations();
  ASSERT_EQ(regs.size(), 1u);
  EXPECT_EQ(regs[0].gpus.size(), 4u);
  EXPECT_TRUE(regs[0].node.simulated);
  for (const auto& g : regs[0].gpus) {
    EXPECT_TRUE(g.simulated);
    EXPECT_EQ(g.type, "A100-80GB");
  }
}

TEST_F(AgentTest, StartsJobWithGpuEnvironmentAndReportsExit) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("job-1",
                          {"sh", "-c",
                           "echo CVD=$CUDA_VISIBLE_DEVICES; echo ID=$FASTGPU_JOB_ID; "
                           "echo UUIDS=$FASTGPU_GPU_UUIDS; echo NODE=$FASTGPU_NODE; echo X=$X; "
                           "echo PWD=$(pwd); exit 4"},
                          3);
  c.job.assigned_gpus = {"GPU-0", "GPU-1"};
  c.job.assigned_gpu_indices = {0, 1};
  c.job.spec.env = {{"X", "y"}, {"CUDA_VISIBLE_DEVICES", "5"}};
  cp_.Push(c);
  auto exited = cp_.WaitReport("job-1", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  auto reports = cp_.ReportsFor("job-1");
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].kind, JobReport::Kind::kStarted);
  EXPECT_GT(reports[0].pid, 0);
  EXPECT_EQ(reports[0].attempt, 3);
  EXPECT_EQ(reports[0].node, "node-1");
  EXPECT_EQ(exited->attempt, 3);
  EXPECT_EQ(exited->exit_code, 4);
  EXPECT_EQ(exited->node, "node-1");
  const std::string workdir = std::filesystem::canonical(home_ + "/jobs/job-1/work").string();
  EXPECT_EQ(ReadAllLog(a, "job-1"),
            "CVD=0,1\nID=job-1\nUUIDS=GPU-0,GPU-1\nNODE=node-1\nX=y\nPWD=" + workdir + "\n");
  EXPECT_THAT(a.RunningJobIds(), IsEmpty());
}

TEST_F(AgentTest, UsesWorkdirFromSpec) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("wd", {"pwd"});
  c.job.spec.workdir = home_ + "/custom/dir";
  cp_.Push(c);
  ASSERT_TRUE(cp_.WaitReport("wd", JobReport::Kind::kExited).has_value());
  EXPECT_EQ(ReadAllLog(a, "wd"), std::filesystem::canonical(home_ + "/custom/dir").string() + "\n");
}

TEST_F(AgentTest, ReadLogPagesAndReportsEof) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("logs", {"sh", "-c", "printf 'abcdefghij'"}));
  ASSERT_TRUE(cp_.WaitReport("logs", JobReport::Kind::kExited).has_value());
  auto c1 = a.ReadLog("logs", 0, 4);
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(c1->data, "abcd");
  EXPECT_EQ(c1->next_offset, 4);
  EXPECT_FALSE(c1->eof);
  auto c2 = a.ReadLog("logs", 4, 100);
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->data, "efghij");
  EXPECT_EQ(c2->next_offset, 10);
  EXPECT_TRUE(c2->eof);
  auto c3 = a.ReadLog("logs", 10, 100);
  ASSERT_TRUE(c3.ok());
  EXPECT_EQ(c3->data, "");
  EXPECT_TRUE(c3->eof);
  EXPECT_EQ(a.ReadLog("nope", 0, 10).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(a.ReadLog("../etc", 0, 10).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(a.ReadLog("logs", -1, 10).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(AgentTest, StopCommandTerminatesJob) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("long", {"sleep", "30"}, 2));
  ASSERT_TRUE(cp_.WaitReport("long", JobReport::Kind::kStarted).has_value());
  EXPECT_THAT(a.RunningJobIds(), ElementsAre("long"));
  cp_.Push(StopCmd("long", 1, 5'000, "stale"));  // another attempt: ignored
  cp_.Push(StopCmd("long", 2, 5'000, "cancelled by user"));
  auto exited = cp_.WaitReport("long", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->signal, SIGTERM);
  EXPECT_EQ(exited->attempt, 2);
  EXPECT_EQ(exited->reason, "cancelled by user");
  EXPECT_THAT(a.RunningJobIds(), IsEmpty());
  cp_.Push(StopCmd("long", 2, 5'000, "again"));  // unknown job now: ignored
}

// A preemption's stop: the job gets its checkpoint signal, saves into FASTGPU_CHECKPOINT_DIR and exits; its next
// attempt sees the same directory and FASTGPU_RESTART_COUNT=1.
TEST_F(AgentTest, APreemptionStopSendsTheCheckpointSignalAndTheNextAttemptFindsTheCheckpoint) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  const std::string script =
      "echo restarts=$FASTGPU_RESTART_COUNT dir=$FASTGPU_CHECKPOINT_DIR; "
      "if [ -e \"$FASTGPU_CHECKPOINT_DIR/step\" ]; then echo resumed-at-$(cat \"$FASTGPU_CHECKPOINT_DIR/step\"); exit 0; fi; "
      "trap 'echo 7 > \"$FASTGPU_CHECKPOINT_DIR/step\"; echo checkpointed; exit 0' USR1; "
      "touch \"$FASTGPU_CHECKPOINT_DIR/up\"; while :; do sleep 0.05; done";
  const std::string dir = home_ + "/checkpoints/pre";
  cp_.Push(StartCmd("pre", {"sh", "-c", script}, 1));
  ASSERT_TRUE(cp_.WaitReport("pre", JobReport::Kind::kStarted).has_value());
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(dir + "/up"); })) << ReadAllLog(a, "pre");
  JobCommand stop = StopCmd("pre", 1, 5'000, "preempted by j-9 (priority 90)");
  stop.checkpoint_signal = SIGUSR1;
  stop.checkpoint_grace_ms = 60'000;
  cp_.Push(stop);
  auto exited = cp_.WaitReport("pre", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 0);
  EXPECT_EQ(exited->reason, "preempted by j-9 (priority 90)");
  cp_.Push(StartCmd("pre", {"sh", "-c", script}, 2));
  ASSERT_TRUE(WaitUntil([&] { return cp_.ReportsFor("pre").size() >= 4; }));
  const std::string abs = std::filesystem::absolute(dir).lexically_normal().string();
  std::string log = ReadAllLog(a, "pre");
  // sh's note when the signal also ends its foreground `sleep` (the whole process group gets it) is not ours.
  if (auto note = log.find("User defined signal 1\n"); note != std::string::npos) log.erase(note, 22);
  EXPECT_EQ(log, "restarts=0 dir=" + abs + "\ncheckpointed\nrestarts=1 dir=" + abs + "\nresumed-at-7\n");
  struct stat sb {};
  ASSERT_EQ(::stat(dir.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((home_ + "/checkpoints").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 0777, RunningAsRoot() ? 0711u : 0700u);
}

TEST_F(AgentTest, TheCheckpointRootCanBeMovedToSharedStorage) {
  AgentOptions o = Options();
  o.checkpoint_root = home_ + "/shared/ckpt/";
  Agent& a = NewAgent(o);
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("moved", {"sh", "-c", "echo $FASTGPU_CHECKPOINT_DIR; touch \"$FASTGPU_CHECKPOINT_DIR/x\""}));
  auto exited = cp_.WaitReport("moved", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 0) << ReadAllLog(a, "moved");
  EXPECT_EQ(ReadAllLog(a, "moved"), home_ + "/shared/ckpt/moved\n");
  EXPECT_TRUE(std::filesystem::exists(home_ + "/shared/ckpt/moved/x"));
  EXPECT_FALSE(std::filesystem::exists(home_ + "/checkpoints"));
}

// As root with a home that job users cannot pass (a home under /root: `fastgpu up` in a GPU container), the
// default checkpoint root moves to the fallback base, one directory per home, which the job can write.
TEST_F(AgentTest, AsRootAnUnreachableHomeKeepsCheckpointsUnderTheFallbackBase) {
  if (!RunningAsRoot()) GTEST_SKIP() << "needs root: jobs run as another uid only when the agent is root";
  AgentOptions o = Options();
  ASSERT_TRUE(MakeDirs(home_ + "/private/home").ok());
  ASSERT_EQ(::chmod((home_ + "/private").c_str(), 0700), 0);
  o.home = home_ + "/private/home";
  o.checkpoint_fallback_base = home_ + "/var/ckpt";
  Agent& a = NewAgent(o);
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("fb", {"sh", "-c", "echo $FASTGPU_CHECKPOINT_DIR; touch \"$FASTGPU_CHECKPOINT_DIR/x\""}));
  auto exited = cp_.WaitReport("fb", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  const std::string dir = home_ + "/var/ckpt/" + Sha256Hex(o.home).substr(0, 12) + "/fb";
  EXPECT_EQ(exited->exit_code, 0) << ReadAllLog(a, "fb");
  EXPECT_EQ(ReadAllLog(a, "fb"), dir + "\n");
  struct stat sb {};
  ASSERT_EQ(::stat((dir + "/x").c_str(), &sb), 0);
  EXPECT_EQ(sb.st_uid, static_cast<uid_t>(kTestJobUid));
}

TEST_F(AgentTest, CommandNotFoundIsReportedAsExit127) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("bad", {"fastgpu-no-such-command-xyz"}));
  auto exited = cp_.WaitReport("bad", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 127);
  EXPECT_THAT(exited->reason, HasSubstr("cannot run 'fastgpu-no-such-command-xyz'"));
  EXPECT_THAT(ReadAllLog(a, "bad"), HasSubstr("No such file or directory"));
}

TEST_F(AgentTest, LaunchFailureIsReportedWithoutStart) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("nowd", {"true"});
  c.job.spec.workdir = "/dev/null/sub";
  cp_.Push(c);
  auto exited = cp_.WaitReport("nowd", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 127);
  EXPECT_THAT(exited->reason, HasSubstr("/dev/null"));
  // As root, a working directory named by the spec is created by the job's user in the job's process,
  // so the failure comes after the start, like a command that cannot run.
  EXPECT_EQ(cp_.ReportsFor("nowd").size(), RunningAsRoot() ? 2u : 1u);
  cp_.Push(StartCmd("../x", {"true"}));
  auto bad = cp_.WaitReport("../x", JobReport::Kind::kExited);
  ASSERT_TRUE(bad.has_value());
  EXPECT_THAT(bad->reason, HasSubstr("invalid job id"));
}

// A job with one process per GPU runs the agent's launcher (here a script standing in for the fastgpu binary)
// with the node's layout, the command after `--`, and the rendezvous of its processes in the environment.
TEST_F(AgentTest, AJobWithOneProcessPerGpuRunsTheLauncher) {
  const std::string launcher = home_ + "/fake-fastgpu";
  {
    std::ofstream out(launcher);
    out << "#!/bin/sh\necho ARGS=\"$*\"\n"
           "echo ENV=$MASTER_ADDR:$MASTER_PORT nodes=$FASTGPU_NUM_NODES node_rank=$FASTGPU_NODE_RANK "
           "per_node=$FASTGPU_GPUS_PER_NODE cvd=$CUDA_VISIBLE_DEVICES\n";
  }
  ASSERT_EQ(::chmod(launcher.c_str(), 0755), 0);
  AgentOptions o = Options();
  o.launcher_path = launcher;
  o.stop_grace_ms = 2500;
  Agent& a = NewAgent(o);
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("pg", {"sh", "-c", "echo $RANK"});
  c.job.spec.gpus_milli = 2000;
  c.job.spec.processes = api::ProcessLayout::kPerGpu;
  c.job.assigned_gpus = {"GPU-0", "GPU-1"};
  c.job.assigned_gpu_indices = {0, 1};
  c.master_addr = "127.0.0.1";
  c.master_port = 31234;
  cp_.Push(c);
  auto exited = cp_.WaitReport("pg", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 0) << exited->reason;
  EXPECT_EQ(ReadAllLog(a, "pg"),
            "ARGS=__rank-launcher --nodes 1 --node-rank 0 --gpus-per-node 2 --grace-ms 2500 -- sh -c echo $RANK\n"
            "ENV=127.0.0.1:31234 nodes=1 node_rank=0 per_node=2 cvd=0,1\n");
}

TEST_F(AgentTest, WithoutALauncherAJobWithOneProcessPerGpuFailsToStartSayingWhy) {
  Agent& a = NewAgent(Options());  // no launcher_path
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("pg", {"true"});
  c.job.spec.gpus_milli = 1000;
  c.job.spec.processes = api::ProcessLayout::kPerGpu;
  c.job.assigned_gpus = {"GPU-0"};
  c.job.assigned_gpu_indices = {0};
  c.master_port = 31234;
  cp_.Push(c);
  auto refused = cp_.WaitReport("pg", JobReport::Kind::kExited);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->exit_code, 127);
  EXPECT_THAT(refused->reason, HasSubstr("cannot start one process per GPU on node node-1"));
  EXPECT_THAT(refused->reason, HasSubstr("own fastgpu binary"));
  EXPECT_EQ(cp_.ReportsFor("pg").size(), 1u) << "nothing started";
}

// As root the job runs as its project's uid: a launcher that uid cannot execute fails the start with a reason
// that names the file and what to do, before anything runs.
TEST_F(AgentTest, AsRootALauncherTheJobsUidCannotRunFailsTheStart) {
  if (!RunningAsRoot()) GTEST_SKIP() << "needs root: only a root agent runs jobs as other users";
  const std::string launcher = home_ + "/private-fastgpu";
  { std::ofstream(launcher) << "#!/bin/sh\necho should-not-run\n"; }
  ASSERT_EQ(::chmod(launcher.c_str(), 0700), 0);
  AgentOptions o = Options();
  o.launcher_path = launcher;
  Agent& a = NewAgent(o);
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("pg", {"true"});
  c.job.spec.gpus_milli = 2000;
  c.job.spec.processes = api::ProcessLayout::kPerGpu;
  c.job.assigned_gpus = {"GPU-0", "GPU-1"};
  c.job.assigned_gpu_indices = {0, 1};
  c.master_port = 31234;
  cp_.Push(c);
  auto exited = cp_.WaitReport("pg", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 127);
  EXPECT_THAT(exited->reason, HasSubstr("cannot start one process per GPU on node node-1"));
  EXPECT_THAT(exited->reason, HasSubstr("uid " + std::to_string(kTestJobUid) + " cannot execute '" + launcher));
  EXPECT_THAT(exited->reason, HasSubstr("/usr/local/bin"));
  EXPECT_EQ(cp_.ReportsFor("pg").size(), 1u) << "nothing started";
  EXPECT_THAT(ReadAllLog(a, "pg"), Not(HasSubstr("should-not-run")));
}

TEST_F(AgentTest, RetriesReportsInOrderWhenServerIsUnavailable) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  cp_.FailReports(5);
  cp_.Push(StartCmd("retry", {"true"}));
  ASSERT_TRUE(cp_.WaitReport("retry", JobReport::Kind::kExited).has_value());
  auto reports = cp_.ReportsFor("retry");
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].kind, JobReport::Kind::kStarted);
  EXPECT_EQ(reports[1].kind, JobReport::Kind::kExited);
  EXPECT_EQ(reports[1].exit_code, 0);
  EXPECT_GE(cp_.ReportCalls(), 7);
  EXPECT_EQ(a.PendingReports(), 0u);
}

TEST_F(AgentTest, RegistrationIsRetriedWhenServerIsUnavailable) {
  cp_.FailRegistrations(3);
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return a.Registered(); }));
  EXPECT_EQ(cp_.Registrations().size(), 1u);
}

TEST_F(AgentTest, HeartbeatsCarryMetricsAndRunningJobs) {
  AgentOptions o = Options();
  o.heartbeat_interval = std::chrono::milliseconds(10);
  Agent& a = NewAgent(o);
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("hb", {"sleep", "30"});
  c.job.assigned_gpus = {"GPU-1"};
  c.job.assigned_gpu_indices = {1};
  cp_.Push(c);
  ASSERT_TRUE(cp_.WaitReport("hb", JobReport::Kind::kStarted).has_value());
  std::optional<NodeHeartbeat> seen;
  ASSERT_TRUE(WaitUntil([&] {
    for (auto& hb : cp_.Heartbeats()) {
      if (!hb.running_job_ids.empty()) seen = hb;
    }
    return seen.has_value();
  }));
  EXPECT_EQ(seen->node, "node-1");
  EXPECT_THAT(seen->running_job_ids, ElementsAre("hb"));
  ASSERT_EQ(seen->gpus.size(), 2u);
  EXPECT_THAT(seen->gpus[0].jobs, IsEmpty());
  EXPECT_THAT(seen->gpus[1].jobs, ElementsAre("hb"));
  EXPECT_EQ(seen->gpus[0].utilization_pct, 40);
  EXPECT_EQ(seen->gpus[0].power_mw, 200'000);
  cp_.Push(StopCmd("hb", 1, 0, "done"));
  auto exited = cp_.WaitReport("hb", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->signal, SIGKILL);
}

TEST_F(AgentTest, RestartAdoptsRunningJobsAndReportsRecoveredExits) {
  {
    Agent& a = NewAgent(Options());
    ASSERT_TRUE(a.Start().ok());
    cp_.Push(StartCmd("keeps-running", {"sleep", "30"}, 4));
    cp_.Push(StartCmd("ends-while-down", {"sh", "-c", "while [ ! -e go ]; do sleep 0.01; done; exit 5"}, 2));
    ASSERT_TRUE(cp_.WaitReport("keeps-running", JobReport::Kind::kStarted).has_value());
    ASSERT_TRUE(cp_.WaitReport("ends-while-down", JobReport::Kind::kStarted).has_value());
    a.Stop();  // the jobs keep running
  }
  agents_.clear();
  executors_.clear();
  std::ofstream(home_ + "/jobs/ends-while-down/work/go") << "";
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(home_ + "/jobs/ends-while-down/exit"); }));
  // A job whose process vanished without a trace while the agent was down.
  std::filesystem::create_directories(home_ + "/jobs/vanished");
  std::ofstream(home_ + "/jobs/vanished/job") << "attempt=6\ngpus=\n";
  std::ofstream(home_ + "/jobs/vanished/pid") << "999999999 1 999999998 1\n";

  Agent& b = NewAgent(Options());
  ASSERT_TRUE(b.Start().ok());
  auto regs = cp_.Registrations();
  ASSERT_EQ(regs.size(), 2u);
  EXPECT_THAT(regs[1].running_job_ids, ElementsAre("keeps-running"));
  ASSERT_EQ(regs[1].recovered.size(), 2u);
  std::map<std::string, JobReport> rec;
  for (auto& r : regs[1].recovered) rec[r.job_id] = r;
  ASSERT_EQ(rec.count("ends-while-down"), 1u);
  EXPECT_EQ(rec["ends-while-down"].kind, JobReport::Kind::kExited);
  EXPECT_EQ(rec["ends-while-down"].exit_code, 5);
  EXPECT_EQ(rec["ends-while-down"].attempt, 2);
  ASSERT_EQ(rec.count("vanished"), 1u);
  EXPECT_EQ(rec["vanished"].kind, JobReport::Kind::kLost);
  EXPECT_EQ(rec["vanished"].attempt, 6);
  EXPECT_FALSE(rec["vanished"].reason.empty());

  // The adopted job is controlled by the new agent, with its attempt kept.
  cp_.Push(StopCmd("keeps-running", 4, 5'000, "cancelled by user"));
  auto exited = cp_.WaitReport("keeps-running", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->attempt, 4);
  EXPECT_EQ(exited->signal, SIGTERM);
  ASSERT_TRUE(WaitUntil([&] { return b.PendingReports() == 0; }));
  b.Stop();
  agents_.clear();
  executors_.clear();

  // Everything was delivered: a third start has nothing to recover.
  Agent& c = NewAgent(Options());
  ASSERT_TRUE(c.Start().ok());
  regs = cp_.Registrations();
  ASSERT_EQ(regs.size(), 3u);
  EXPECT_THAT(regs[2].running_job_ids, IsEmpty());
  EXPECT_THAT(regs[2].recovered, IsEmpty());
}

// fastgpu died between writing an attempt's `started` record and forking its supervisor: after the
// restart's wait for a process record, the agent claims the launch and leaves it unreported, so the
// server starts it again; the claim stops any late supervisor from running it.
TEST_F(AgentTest, AStartThatNeverForkedIsClaimedAndNotReported) {
  std::filesystem::create_directories(home_ + "/jobs/never-forked/work");
  std::ofstream(home_ + "/jobs/never-forked/job") << "attempt=3\ngpus=\n";
  std::ofstream(home_ + "/jobs/never-forked/started") << "attempt 3\n";
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  auto regs = cp_.Registrations();
  ASSERT_EQ(regs.size(), 1u);
  EXPECT_THAT(regs[0].running_job_ids, IsEmpty());
  EXPECT_THAT(regs[0].recovered, IsEmpty());
  EXPECT_TRUE(std::filesystem::exists(home_ + "/jobs/never-forked/claim"));
  // The server starts it again (attempt 3 was never started): it runs, once.
  cp_.Push(StartCmd("never-forked", {"sh", "-c", "echo ran >> runs"}, 3));
  auto exited = cp_.WaitReport("never-forked", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 0);
  std::ifstream runs(home_ + "/jobs/never-forked/work/runs");
  std::string all((std::istreambuf_iterator<char>(runs)), std::istreambuf_iterator<char>());
  EXPECT_EQ(all, "ran\n");
}

TEST_F(AgentTest, TheLeaseIsRenewedByHeartbeatsAndAJobIsFencedWhenTheyStopGettingThrough) {
  cp_.GrantLease({.lease_ms = 1500, .grace_ms = 500});
  AgentOptions o = Options();
  o.heartbeat_interval = std::chrono::milliseconds(100);
  Agent& a = NewAgent(o);
  const int64_t before = clock_.MonotonicNanos();
  ASSERT_TRUE(a.Start().ok());
  const std::string lease = home_ + "/" + kLeaseFile;
  // Written at registration: the deadline counts from when the call was sent.
  const std::string text = ReadText(lease);
  ASSERT_FALSE(text.empty());
  const int64_t deadline = std::stoll(text);
  EXPECT_GE(deadline, before + 1'500'000'000);
  EXPECT_LE(deadline, clock_.MonotonicNanos() + 1'500'000'000);
  EXPECT_NE(text.find(" 500 1500"), std::string::npos) << text;
  cp_.Push(StartCmd("j-1", {"sleep", "60"}));
  ASSERT_TRUE(cp_.WaitReport("j-1", JobReport::Kind::kStarted).has_value());
  // Heartbeats keep renewing it: the job runs past the first deadline.
  ASSERT_TRUE(WaitUntil([&] { return clock_.MonotonicNanos() > deadline + 500'000'000; }, std::chrono::seconds(5)));
  EXPECT_TRUE(cp_.ReportsFor("j-1").size() == 1u) << "the job ended while its lease was renewed";
  EXPECT_GT(std::stoll(ReadText(lease)), deadline);
  // The server stops answering: within the lease (+ about a second) the node stops the job by itself.
  const int64_t cut = clock_.MonotonicNanos();
  cp_.SetUnreachable(true);
  auto lost = cp_.WaitReport("j-1", JobReport::Kind::kLost);
  ASSERT_TRUE(lost.has_value());
  EXPECT_NE(lost->reason.find("fenced: stopped by its node after 1 s without contact with the server"), std::string::npos)
      << lost->reason;
  std::printf("[ figure ] fenced %.2f s after the heartbeats stopped getting through (lease 1.5 s)\n",
              static_cast<double>(clock_.MonotonicNanos() - cut) / 1e9);
  // A server that grants no lease (fencing off) removes the file at the next answer.
  cp_.SetUnreachable(false);
  cp_.GrantLease({});
  ASSERT_TRUE(WaitUntil([&] { return !std::filesystem::exists(lease); }));
}

// The server moved on while an older attempt still runs here (it was given up while the node was away, or is
// being stopped): the start of the newer attempt stops it and waits for its end instead of failing.
TEST_F(AgentTest, AStartOfANewerAttemptWaitsForTheOlderOneToEnd) {
  AgentOptions o = Options();
  o.stop_grace_ms = 200;
  Agent& a = NewAgent(o);
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("j-1", {"sh", "-c", "trap 'echo old-term; sleep 0.1; exit 3' TERM; echo old; while true; do sleep 0.05; done"}, 1));
  ASSERT_TRUE(cp_.WaitReport("j-1", JobReport::Kind::kStarted).has_value());
  ASSERT_TRUE(WaitUntil([&] { return ReadAllLog(a, "j-1").find("old\n") != std::string::npos; }));
  cp_.Push(StartCmd("j-1", {"sh", "-c", "echo new"}, 2));
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& r : cp_.ReportsFor("j-1"))
      if (r.kind == JobReport::Kind::kExited && r.attempt == 2) return true;
    return false;
  }));
  std::vector<std::string> seen;
  for (const auto& r : cp_.ReportsFor("j-1")) {
    std::string what = r.kind == JobReport::Kind::kStarted ? "started" : "exited";
    if (r.kind == JobReport::Kind::kExited) what += "(" + std::to_string(r.exit_code.value_or(-1)) + ")";
    seen.push_back(what + "@" + std::to_string(r.attempt));
  }
  EXPECT_THAT(seen, ElementsAre("started@1", "exited(3)@1", "started@2", "exited(0)@2"));
  const std::string log = ReadAllLog(a, "j-1");
  EXPECT_LT(log.find("old-term"), log.find("new\n")) << log;
}

TEST_F(AgentTest, AStartWaitingForAnOlderAttemptIsDroppedWhenItIsStopped) {
  AgentOptions o = Options();
  o.stop_grace_ms = 5'000;
  Agent& a = NewAgent(o);
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("j-1", {"sh", "-c", "trap 'sleep 0.3; exit 3' TERM; echo old; while true; do sleep 0.05; done"}, 1));
  ASSERT_TRUE(cp_.WaitReport("j-1", JobReport::Kind::kStarted).has_value());
  ASSERT_TRUE(WaitUntil([&] { return ReadAllLog(a, "j-1").find("old\n") != std::string::npos; }));
  cp_.Push(StartCmd("j-1", {"sh", "-c", "echo new"}, 2));
  cp_.Push(StopCmd("j-1", 2, 1000, "cancelled by user"));
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& r : cp_.ReportsFor("j-1"))
      if (r.kind == JobReport::Kind::kExited && r.attempt == 1) return true;
    return false;
  }));
  std::optional<JobReport> dropped;
  for (const auto& r : cp_.ReportsFor("j-1"))
    if (r.attempt == 2) dropped = r;
  ASSERT_TRUE(dropped.has_value());
  EXPECT_EQ(dropped->kind, JobReport::Kind::kExited);
  EXPECT_EQ(dropped->signal, SIGTERM);
  EXPECT_NE(dropped->reason.find("stopped before it started: cancelled by user"), std::string::npos) << dropped->reason;
  EXPECT_EQ(ReadAllLog(a, "j-1").find("new"), std::string::npos);
}

TEST_F(AgentTest, TerminateJobsOnStopWhenAsked) {
  AgentOptions o = Options();
  o.terminate_jobs_on_stop = true;
  o.stop_grace_ms = 5'000;
  Agent& a = NewAgent(o);
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("bye", {"sleep", "30"}));
  ASSERT_TRUE(cp_.WaitReport("bye", JobReport::Kind::kStarted).has_value());
  a.Stop();
  auto exited = cp_.WaitReport("bye", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->signal, SIGTERM);
}

TEST_F(AgentTest, RepeatedStartCommandConfirmsRunningJob) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  cp_.Push(StartCmd("twice", {"sleep", "30"}));
  auto first = cp_.WaitReport("twice", JobReport::Kind::kStarted);
  ASSERT_TRUE(first.has_value());
  cp_.Push(StartCmd("twice", {"sleep", "30"}));
  ASSERT_TRUE(WaitUntil([&] { return cp_.ReportsFor("twice").size() == 2; }));
  auto reports = cp_.ReportsFor("twice");
  EXPECT_EQ(reports[1].kind, JobReport::Kind::kStarted);
  EXPECT_EQ(reports[1].pid, first->pid);
  EXPECT_THAT(a.RunningJobIds(), ElementsAre("twice"));
}

// Delivery is at least once: a start delivered again after its attempt ended must not run it twice, and
// every command applied is acknowledged.
TEST_F(AgentTest, AStartDeliveredAgainAfterTheAttemptEndedDoesNotRunItTwice) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("once", {"sh", "-c", "echo ran"});
  c.id = 7;
  cp_.Push(c);
  ASSERT_TRUE(cp_.WaitReport("once", JobReport::Kind::kExited).has_value());
  ASSERT_TRUE(WaitUntil([&] { return cp_.Acked() == 7; }));
  c.id = 8;  // the same start again (its acknowledgement was lost)
  cp_.Push(c);
  ASSERT_TRUE(WaitUntil([&] { return cp_.Acked() == 8; }));
  a.Stop();
  EXPECT_EQ(ReadAllLog(a, "once"), "ran\n");
  EXPECT_EQ(cp_.ReportsFor("once").size(), 2u);  // one start, one exit
}

// Prints how long it takes from a start command arriving to the job process existing (a figure,
// not an assertion).
TEST_F(AgentTest, StartLatencyFigure) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  std::vector<int64_t> micros;
  for (int i = 0; i < 30; ++i) {
    const std::string id = "lat-" + std::to_string(i);
    cp_.Push(StartCmd(id, {"true"}));
    ASSERT_TRUE(cp_.WaitReport(id, JobReport::Kind::kStarted).has_value());
    micros.push_back(cp_.LastStartLatencyNanos() / 1000);
    ASSERT_TRUE(cp_.WaitReport(id, JobReport::Kind::kExited).has_value());
  }
  std::sort(micros.begin(), micros.end());
  std::printf("start command -> process started (kStarted): p50 %lld us, max %lld us over %zu starts\n",
              static_cast<long long>(micros[micros.size() / 2]), static_cast<long long>(micros.back()),
              micros.size());
}

// Everything under `dir` whose content contains `needle`.
std::vector<std::string> FilesContaining(const std::string& dir, const std::string& needle) {
  std::vector<std::string> hits;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code ec2;
    if (!it->is_regular_file(ec2)) continue;
    if (ReadText(it->path().string()).find(needle) != std::string::npos) hits.push_back(it->path().string());
  }
  return hits;
}

TEST_F(AgentTest, SecretsReachTheJobsEnvironmentButNeverTheDisk) {
  const std::string secret = "s3cr3t-v4lue-7f3a9c";
  const std::string shouted = "S3CR3T-V4LUE-7F3A9C";  // what the job prints: proves it saw the value
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("sec", {"sh", "-c", "printf '%s\\n' \"$API_KEY\" | tr a-z A-Z; echo OTHER=$OTHER"});
  c.job.spec.secrets = {"API_KEY"};
  c.job.spec.env = {{"OTHER", "plain"}};
  c.secret_env = {{"API_KEY", secret}};
  cp_.Push(c);
  auto exited = cp_.WaitReport("sec", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 0);
  EXPECT_EQ(ReadAllLog(a, "sec"), shouted + "\nOTHER=plain\n");
  // A restart re-reads the state dir: nothing there may hold the value.
  a.Stop();
  agents_.clear();
  executors_.clear();
  Agent& b = NewAgent(Options());
  ASSERT_TRUE(b.Start().ok());
  EXPECT_THAT(FilesContaining(home_, secret), IsEmpty());
  ASSERT_FALSE(FilesContaining(home_, shouted).empty()) << "the scan must see the job's log";
  for (const auto& r : cp_.Reports()) EXPECT_THAT(r.reason, ::testing::Not(HasSubstr(secret)));
}

TEST_F(AgentTest, SecretsDoNotOverrideTheGpuEnvironment) {
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());
  JobCommand c = StartCmd("sec-gpu", {"sh", "-c", "echo CVD=$CUDA_VISIBLE_DEVICES"});
  c.job.assigned_gpu_indices = {1};
  c.secret_env = {{"CUDA_VISIBLE_DEVICES", "0,1"}};
  cp_.Push(c);
  ASSERT_TRUE(cp_.WaitReport("sec-gpu", JobReport::Kind::kExited).has_value());
  EXPECT_EQ(ReadAllLog(a, "sec-gpu"), "CVD=1\n");
}

TEST_F(AgentTest, AsRootJobsRunAsTheProjectsUidOrUserAndRootIsRefused) {
  if (!RunningAsRoot()) {
    GTEST_SKIP() << "needs root: only a root agent runs jobs as other users";
  }
  Agent& a = NewAgent(Options());
  ASSERT_TRUE(a.Start().ok());

  cp_.Push(StartCmd("default-user", {"id", "-u"}));
  auto exited = cp_.WaitReport("default-user", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 0);
  EXPECT_EQ(ReadAllLog(a, "default-user"), std::to_string(kTestJobUid) + "\n");

  // Without the project's uid (an older server), nothing runs rather than a shared user.
  JobCommand anon = StartCmd("no-uid", {"id", "-u"});
  anon.run_as_uid = 0;
  cp_.Push(anon);
  exited = cp_.WaitReport("no-uid", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 127);
  EXPECT_THAT(exited->reason, HasSubstr("the server sent no Unix uid for the project"));

  JobCommand root = StartCmd("root-job", {"id", "-u"});
  root.job.spec.project = "vision";
  root.run_as_user = "root";
  cp_.Push(root);
  exited = cp_.WaitReport("root-job", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 127);
  EXPECT_THAT(exited->reason, HasSubstr("refusing to run as root: project 'vision' does not allow root"));
  EXPECT_EQ(cp_.ReportsFor("root-job").size(), 1u);  // never started
  EXPECT_THAT(ReadAllLog(a, "root-job"), HasSubstr("refusing to run as root"));

  root.job.id = "root-allowed";
  root.allow_root = true;
  cp_.Push(root);
  exited = cp_.WaitReport("root-allowed", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 0);
  EXPECT_EQ(ReadAllLog(a, "root-allowed"), "0\n");

  JobCommand ghost = StartCmd("ghost", {"true"});
  ghost.run_as_user = "fastgpu-no-such-user";
  cp_.Push(ghost);
  exited = cp_.WaitReport("ghost", JobReport::Kind::kExited);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code, 127);
  EXPECT_THAT(exited->reason, HasSubstr("OS user 'fastgpu-no-such-user' does not exist on node node-1"));
}

}  // namespace
}  // namespace fastgpu::agent
