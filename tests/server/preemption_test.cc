// Preemption that keeps work, and `job migrate`, in the Service (docs/scheduling.md): the stop command carries the
// job's checkpoint signal and grace (the agent times SIGTERM after it: tests/agent), the job ends PREEMPTED and is
// requeued with the service it received, non-preemptible jobs are never preempted, and a migration is refused when
// it cannot be carried out. A real SQLite store, the real scheduler and a fake clock; the test plays the agent.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>

#include <map>

#include "server/service.h"
#include "service_fixture.h"

namespace fastgpu::server {
namespace {

using agent::JobCommand;
using agent::JobReport;
using api::JobState;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;

class PreemptionTest : public ServiceFixture {
 protected:
  void SetUp() override {
    ServiceFixture::SetUp();
    Open(Options("priority"));
  }
  static ServiceOptions Options(const std::string& policy) {
    ServiceOptions o;
    o.policy = policy;
    o.preempt_min_runtime_ms = 60'000;
    o.stop_grace_ms = 10'000;
    return o;
  }
  api::JobSpec Spec(int gpus, int priority, bool preemptible) {
    api::JobSpec s;
    s.command = {"train"};
    s.gpus_milli = gpus * 1000;
    s.priority = priority;
    s.preemptible = preemptible;
    return s;
  }
  api::Job Submit(const api::JobSpec& spec) {
    auto j = svc_->Submit(spec, "alice");
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? *j : api::Job{};
  }
  std::vector<JobCommand> Commands(const std::string& node = "n1") {
    auto c = svc_->WaitCommands(node, milliseconds(0));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : std::vector<JobCommand>{};
  }
  void Report(const api::Job& j, JobReport::Kind kind, std::optional<int> code = {}, std::optional<int> sig = {},
              const std::string& node = "n1") {
    JobReport r;
    r.kind = kind;
    r.job_id = j.id;
    r.attempt = j.attempt;
    r.node = node;
    r.pid = 4321;
    r.exit_code = code;
    r.signal = sig;
    ASSERT_TRUE(svc_->ReportJobs({r}).ok());
  }
  // Schedules and starts what the scheduler binds; returns the start commands.
  std::vector<JobCommand> StartAll(const std::string& node = "n1") {
    svc_->ScheduleOnce();
    std::vector<JobCommand> starts;
    for (auto& c : Commands(node)) {
      if (c.kind != JobCommand::Kind::kStart) continue;
      Report(c.job, JobReport::Kind::kStarted, {}, {}, node);
      starts.push_back(c);
    }
    return starts;
  }
  api::Job Get(const std::string& id) { return svc_->GetJob(id).value(); }
  std::vector<api::JobEvent> Events(const std::string& id) { return svc_->Events(id).value(); }
};

TEST_F(PreemptionTest, ALowPriorityPreemptibleJobGetsItsCheckpointSignalAndIsRequeuedWithItsService) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 2)).ok());
  api::JobSpec low_spec = Spec(2, 10, true);
  low_spec.checkpoint_signal = SIGUSR2;
  low_spec.checkpoint_grace_s = 30;
  api::Job low = Submit(low_spec);
  ASSERT_EQ(StartAll().size(), 1u);
  ASSERT_EQ(Get(low.id).state, JobState::kRunning);

  // Before its minimum runtime a running job is not preempted.
  clock_.Advance(seconds(30));
  api::Job high = Submit(Spec(2, 90, false));
  svc_->ScheduleOnce();
  EXPECT_TRUE(Commands().empty());
  EXPECT_EQ(Get(high.id).state, JobState::kQueued);

  // Then it is: the stop carries the job's checkpoint signal and grace; the agent sends SIGTERM only after it.
  clock_.Advance(seconds(31));
  svc_->ScheduleOnce();
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(cmds[0].job_id, low.id);
  EXPECT_EQ(cmds[0].attempt, 1);
  EXPECT_EQ(cmds[0].checkpoint_signal, SIGUSR2);
  EXPECT_EQ(cmds[0].checkpoint_grace_ms, 30'000);
  EXPECT_EQ(cmds[0].grace_ms, 10'000);
  EXPECT_EQ(cmds[0].reason, "preempted by " + high.id + " (priority 90)");
  api::Job stopping = Get(low.id);
  EXPECT_EQ(stopping.state, JobState::kRunning);
  EXPECT_THAT(stopping.reason, HasSubstr("preempting: SIGUSR2 sent, SIGTERM in 30s unless it exits"));

  // During the grace nothing more is sent, and the job holds its GPUs until it has stopped.
  for (int i = 0; i < 5; ++i) {
    clock_.Advance(seconds(5));
    svc_->EnforceOnce();
    svc_->ScheduleOnce();
    EXPECT_TRUE(Commands().empty());
  }
  EXPECT_EQ(Get(high.id).state, JobState::kQueued);

  // It saves its work and exits 0 within the grace: PREEMPTED (it was asked to stop), then QUEUED.
  Report(Get(low.id), JobReport::Kind::kExited, 0);
  api::Job requeued = Get(low.id);
  EXPECT_EQ(requeued.state, JobState::kQueued);
  // 2 GPUs for the 86 s it ran (61 s before the preemption, 25 s of grace).
  EXPECT_EQ(requeued.attained_gpu_ms, 2 * 86'000);
  auto ev = Events(low.id);
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev[ev.size() - 2].from, "RUNNING");
  EXPECT_EQ(ev[ev.size() - 2].to, "PREEMPTED");
  EXPECT_EQ(ev[ev.size() - 2].reason, "preempted by " + high.id + " (priority 90)");
  EXPECT_EQ(ev.back().to, "QUEUED");
  EXPECT_EQ(ev.back().reason, "requeued after preemption");

  // The high-priority job starts; the preempted one resumes (attempt 2) once it has ended.
  auto started = StartAll();
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].job.id, high.id);
  clock_.Advance(seconds(100));
  Report(started[0].job, JobReport::Kind::kExited, 0);
  started = StartAll();
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].job.id, low.id);
  EXPECT_EQ(started[0].job.attempt, 2);  // the agent's FASTGPU_RESTART_COUNT is 1

  // The service received is kept in the store (a restarted server still counts it).
  Open(Options("priority"));
  EXPECT_EQ(Get(low.id).attained_gpu_ms, 2 * 86'000);
}

TEST_F(PreemptionTest, ANonPreemptibleJobIsNeverPreemptedByAnyPolicy) {
  for (const char* policy : {"priority", "las", "fair-las", "default"}) {
    SCOPED_TRACE(policy);
    TearDown();
    SetUp();
    Open(Options(policy));
    ASSERT_TRUE(svc_->RegisterNode(Node("n1", 2)).ok());
    api::Job low = Submit(Spec(2, 0, false));
    ASSERT_EQ(StartAll().size(), 1u);
    clock_.Advance(std::chrono::hours(30));  // far past the minimum runtime and any starvation guard
    api::Job high = Submit(Spec(2, 100, false));
    for (int i = 0; i < 3; ++i) {
      clock_.Advance(std::chrono::hours(10));
      svc_->ScheduleOnce();
      for (const auto& c : Commands()) EXPECT_NE(c.kind, JobCommand::Kind::kStop) << c.reason;
    }
    EXPECT_EQ(Get(low.id).state, JobState::kRunning);
    EXPECT_EQ(Get(high.id).state, JobState::kQueued);
  }
}

TEST_F(PreemptionTest, ACheckpointGraceOfZeroStopsWithSigtermAtOnce) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1)).ok());
  api::JobSpec spec = Spec(1, 10, true);
  spec.checkpoint_grace_s = 0;
  api::Job low = Submit(spec);
  ASSERT_EQ(StartAll().size(), 1u);
  clock_.Advance(seconds(61));
  Submit(Spec(1, 90, false));
  svc_->ScheduleOnce();
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].checkpoint_signal, 0);
  EXPECT_EQ(cmds[0].grace_ms, 10'000);
  // Killed by the SIGTERM: still PREEMPTED and requeued, not FAILED.
  Report(Get(low.id), JobReport::Kind::kExited, {}, SIGTERM);
  EXPECT_EQ(Get(low.id).state, JobState::kQueued);
}

TEST_F(PreemptionTest, ACancelDuringTheCheckpointGraceWinsAndTheJobIsNotRequeued) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1)).ok());
  api::Job low = Submit(Spec(1, 10, true));
  ASSERT_EQ(StartAll().size(), 1u);
  clock_.Advance(seconds(61));
  Submit(Spec(1, 90, false));
  svc_->ScheduleOnce();
  ASSERT_EQ(Commands().size(), 1u);
  ASSERT_TRUE(svc_->Cancel(low.id, "user:alice").ok());
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].reason, "cancelled by user");
  EXPECT_EQ(cmds[0].checkpoint_signal, 0);  // SIGTERM at once
  Report(Get(low.id), JobReport::Kind::kExited, {}, SIGTERM);
  EXPECT_EQ(Get(low.id).state, JobState::kCancelled);
}

TEST_F(PreemptionTest, MigrateIsRefusedForJobsThatAreNotRunningOrNotPreemptible) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1)).ok());
  api::Job rigid = Submit(Spec(1, 50, false));
  api::Job waiting = Submit(Spec(1, 50, true));
  ASSERT_EQ(StartAll().size(), 1u);

  auto queued = svc_->Migrate(waiting.id, "", "user:alice");
  ASSERT_FALSE(queued.ok());
  EXPECT_EQ(queued.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(queued.status().message(), "job " + waiting.id + " is QUEUED, not RUNNING; only a running job can be migrated");

  auto not_preemptible = svc_->Migrate(rigid.id, "", "user:alice");
  ASSERT_FALSE(not_preemptible.ok());
  EXPECT_EQ(not_preemptible.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_THAT(not_preemptible.status().message(), HasSubstr("is not preemptible"));
  EXPECT_THAT(not_preemptible.status().message(), HasSubstr("--force"));
  EXPECT_TRUE(Commands().empty());  // a refusal changes nothing

  EXPECT_EQ(svc_->Migrate("j-999", "", "user:alice").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(svc_->Migrate(rigid.id, std::string(501, 'x'), "user:alice").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(svc_->Migrate(rigid.id, "two\nlines", "user:alice").status().code(), ErrorCode::kInvalidArgument);

  // --force: stopped without a checkpoint signal, requeued.
  auto forced = svc_->Migrate(rigid.id, "maintenance", "user:admin", /*force=*/true);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_EQ(forced->state, JobState::kRunning);
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(cmds[0].checkpoint_signal, 0);
  EXPECT_EQ(cmds[0].reason, "migrated off GPU SIM-n1-0 on n1 by admin: maintenance");
  // A cancel-like refusal once it is being stopped; a second migrate changes nothing.
  EXPECT_TRUE(svc_->Migrate(rigid.id, "again", "user:admin", true).ok());
  EXPECT_TRUE(Commands().empty());
  Report(Get(rigid.id), JobReport::Kind::kExited, {}, SIGTERM);
  EXPECT_EQ(Get(rigid.id).state, JobState::kQueued);

  // An ended job.
  ASSERT_TRUE(svc_->Cancel(waiting.id, "user:alice").ok());
  auto ended = svc_->Migrate(waiting.id, "", "user:alice");
  ASSERT_FALSE(ended.ok());
  EXPECT_EQ(ended.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(ended.status().message(), "job " + waiting.id + " has ended (CANCELLED); only a running job can be migrated");
}

TEST_F(PreemptionTest, AMigratedJobCheckpointsIsRequeuedAndAvoidsTheGpusItLeft) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 4)).ok());
  api::Job job = Submit(Spec(2, 50, true));
  auto started = StartAll();
  ASSERT_EQ(started.size(), 1u);
  const std::vector<std::string> left = started[0].job.assigned_gpus;
  ASSERT_EQ(left.size(), 2u);
  clock_.Advance(seconds(10));  // no minimum runtime for a migration

  auto m = svc_->Migrate(job.id, "ECC errors on GPU 0", "user:alice");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_THAT(m->reason, HasSubstr("migrating: SIGUSR1 sent, SIGTERM in 1m unless it exits"));
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].checkpoint_signal, SIGUSR1);
  EXPECT_EQ(cmds[0].checkpoint_grace_ms, 60'000);
  const std::string why = "migrated off GPUs " + left[0] + ", " + left[1] + " on n1 by alice: ECC errors on GPU 0";
  EXPECT_EQ(cmds[0].reason, why);

  // A restart of the server before the job has stopped: the migration is carried out all the same.
  Open(Options("priority"));
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 4, {job.id})).ok());
  cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(cmds[0].checkpoint_signal, SIGUSR1);
  EXPECT_EQ(cmds[0].reason, why);

  clock_.Advance(seconds(5));
  Report(Get(job.id), JobReport::Kind::kExited, 0);
  api::Job requeued = Get(job.id);
  EXPECT_EQ(requeued.state, JobState::kQueued);
  EXPECT_EQ(requeued.attained_gpu_ms, 2 * 15'000);
  auto ev = Events(job.id);
  ASSERT_GE(ev.size(), 2u);
  EXPECT_EQ(ev[ev.size() - 2].to, "PREEMPTED");
  EXPECT_EQ(ev[ev.size() - 2].reason, why);
  EXPECT_EQ(ev.back().reason, "requeued after migration");

  // The next attempt takes the other two GPUs.
  started = StartAll();
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].job.attempt, 2);
  for (const auto& u : started[0].job.assigned_gpus) EXPECT_THAT(left, ::testing::Not(::testing::Contains(u)));
}

// A multi-node job: every member node gets the checkpoint signal; the job is PREEMPTED and requeued once all members
// have ended, however each ended (one saved and exited 0, the other was stopped by SIGTERM after the grace).
TEST_F(PreemptionTest, EveryMemberOfAMultiNodeJobGetsTheCheckpointSignal) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 2)).ok());
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 2)).ok());
  api::Job low = Submit(Spec(4, 10, true));
  svc_->ScheduleOnce();
  std::map<std::string, JobCommand> starts;
  for (const std::string n : {"b", "c"}) {
    auto cmds = Commands(n);
    ASSERT_EQ(cmds.size(), 1u) << n;
    starts[n] = cmds[0];
  }
  auto report = [&](const JobCommand& start, JobReport::Kind kind, std::optional<int> code, std::optional<int> sig) {
    JobReport r;
    r.kind = kind;
    r.job_id = start.job.id;
    r.attempt = start.job.attempt;
    r.node = start.job.node;
    r.rank = start.rank;
    r.pid = 100 + start.rank;
    r.exit_code = code;
    r.signal = sig;
    ASSERT_TRUE(svc_->ReportJobs({r}).ok());
  };
  report(starts.at("b"), JobReport::Kind::kStarted, {}, {});
  report(starts.at("c"), JobReport::Kind::kStarted, {}, {});
  ASSERT_EQ(Get(low.id).state, JobState::kRunning);
  clock_.Advance(seconds(61));
  api::Job high = Submit(Spec(4, 90, false));
  svc_->ScheduleOnce();
  for (const std::string n : {"b", "c"}) {
    auto cmds = Commands(n);
    ASSERT_EQ(cmds.size(), 1u) << n;
    EXPECT_EQ(cmds[0].kind, JobCommand::Kind::kStop) << n;
    EXPECT_EQ(cmds[0].checkpoint_signal, SIGUSR1) << n;
    EXPECT_EQ(cmds[0].checkpoint_grace_ms, 60'000) << n;
  }
  report(starts.at("b"), JobReport::Kind::kExited, 0, {});
  EXPECT_EQ(Get(low.id).state, JobState::kRunning);  // waits for the other member
  clock_.Advance(seconds(70));
  report(starts.at("c"), JobReport::Kind::kExited, {}, SIGTERM);
  api::Job requeued = Get(low.id);
  EXPECT_EQ(requeued.state, JobState::kQueued);
  EXPECT_EQ(requeued.attained_gpu_ms, 4 * 131'000);
  svc_->ScheduleOnce();
  EXPECT_EQ(Get(high.id).state, JobState::kScheduled);
}

// Fleet mode: a preemption's stop sent again after the agent reconnects still carries the checkpoint signal.
TEST_F(PreemptionTest, APreemptionStopSentAgainAfterAReconnectKeepsItsCheckpointSignal) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1)).ok());
  api::Job low = Submit(Spec(1, 10, true));
  ASSERT_EQ(StartAll().size(), 1u);
  clock_.Advance(seconds(61));
  api::Job high = Submit(Spec(1, 90, false));
  svc_->ScheduleOnce();
  ASSERT_EQ(Commands().size(), 1u);
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1, {low.id})).ok());
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(cmds[0].checkpoint_signal, SIGUSR1);
  EXPECT_EQ(cmds[0].checkpoint_grace_ms, 60'000);
  EXPECT_EQ(cmds[0].reason, "preempted by " + high.id + " (priority 90)");
}

}  // namespace
}  // namespace fastgpu::server
