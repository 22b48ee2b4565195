// Fleet mode in the service: commands delivered at least once (ids, acknowledgements, redelivery), durable
// cancels across a server restart and an agent reconnect, secrets only over a secure channel, cordon / drain
// / remove. The test plays a remote agent through PollCommands (what the HTTP routes call).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>

#include "server/service.h"
#include "service_fixture.h"
#include "store/store.h"

namespace fastgpu::server {
namespace {

using api::JobState;
using agent::JobCommand;

class FleetServiceTest : public ServiceFixture {
 protected:
  api::JobSpec Spec(int gpus) {
    api::JobSpec s;
    s.command = {"sleep", "100"};
    s.gpus_milli = gpus * 1000;
    return s;
  }
  std::vector<JobCommand> Poll(const std::string& node, uint64_t ack, bool secure = true) {
    auto c = svc_->PollCommands(node, ack, secure);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : std::vector<JobCommand>{};
  }
  void Report(const api::Job& j, const std::string& node, agent::JobReport::Kind kind, std::optional<int> code = {},
              std::optional<int> sig = {}) {
    agent::JobReport r;
    r.kind = kind;
    r.job_id = j.id;
    r.attempt = j.attempt;
    r.node = node;
    r.pid = 4242;
    r.exit_code = code;
    r.signal = sig;
    ASSERT_TRUE(svc_->ReportJobs({r}).ok());
  }
  JobState State(const std::string& id) { return svc_->GetJob(id)->state; }
  // A job (max_retries 1) RUNNING on the remote node b, which has 1 GPU; its id ("" on failure).
  std::string RunningOnRemoteNodeB() {
    if (!svc_->RegisterNode(Node("b", 1)).ok()) return "";
    svc_->SetNodeConnection("b", "http from 10.0.0.2");
    auto spec = Spec(1);
    spec.max_retries = 1;
    auto job = svc_->Submit(spec, "alice");
    svc_->ScheduleOnce();
    auto cmds = Poll("b", 0);
    if (!job.ok() || cmds.size() != 1u) return "";
    Report(cmds[0].job, "b", agent::JobReport::Kind::kStarted);
    return State(job->id) == JobState::kRunning ? job->id : "";
  }

};

// Container jobs run only where podman is (label containers=podman): the scheduler places them on such a node even
// where another one would be its first choice (best-fit: a's single GPU), and a job without an image still goes there.
TEST_F(FleetServiceTest, AContainerJobIsPlacedOnlyOnANodeWithPodman) {
  ASSERT_TRUE(svc_->RegisterNode(Node("a", 1)).ok());
  auto pod = Node("b", 2);
  pod.node.labels["containers"] = "podman";
  ASSERT_TRUE(svc_->RegisterNode(pod).ok());
  auto spec = Spec(1);
  spec.image = "localhost/train:1";
  auto ctr = svc_->Submit(spec, "alice");
  ASSERT_TRUE(ctr.ok()) << ctr.status().ToString();
  svc_->ScheduleOnce();
  EXPECT_EQ(svc_->GetJob(ctr->id)->node, "b");
  EXPECT_TRUE(Poll("a", 0).empty());
  ASSERT_EQ(Poll("b", 0).size(), 1u);
  // Another container job waits for b (full once the second one runs) while a stays free for plain jobs.
  auto ctr2 = svc_->Submit(spec, "alice");
  auto ctr3 = svc_->Submit(spec, "alice");
  ASSERT_TRUE(ctr2.ok() && ctr3.ok());
  svc_->ScheduleOnce();
  EXPECT_EQ(svc_->GetJob(ctr2->id)->node, "b");
  EXPECT_EQ(State(ctr3->id), JobState::kQueued);
  EXPECT_NE(svc_->GetJob(ctr3->id)->reason.find("containers=podman"), std::string::npos) << svc_->GetJob(ctr3->id)->reason;
  auto plain = svc_->Submit(Spec(1), "alice");
  ASSERT_TRUE(plain.ok());
  svc_->ScheduleOnce();
  EXPECT_EQ(svc_->GetJob(plain->id)->node, "a");
}

TEST_F(FleetServiceTest, UnacknowledgedCommandsAreSentAgainAndAcknowledgedOnesNot) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 2)).ok());
  auto job = svc_->Submit(Spec(1), "alice");
  ASSERT_TRUE(job.ok());
  svc_->ScheduleOnce();
  auto first = Poll("b", 0);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_GT(first[0].id, 0u);
  EXPECT_EQ(first[0].job.attempt, 1);
  EXPECT_EQ(State(job->id), JobState::kStarting);
  // The answer was lost: the agent polls again acknowledging nothing new and gets the same command.
  auto again = Poll("b", 0);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id, first[0].id);
  EXPECT_EQ(again[0].job.attempt, 1);
  EXPECT_EQ(State(job->id), JobState::kStarting);
  // Acknowledged: never sent again.
  EXPECT_TRUE(Poll("b", first[0].id).empty());
  EXPECT_TRUE(Poll("b", first[0].id).empty());
  // The start was applied twice by a confused agent: two kStarted reports of one attempt are one RUNNING.
  Report(first[0].job, "b", agent::JobReport::Kind::kStarted);
  Report(first[0].job, "b", agent::JobReport::Kind::kStarted);
  EXPECT_EQ(State(job->id), JobState::kRunning);
  auto events = svc_->Events(job->id);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 4u);  // QUEUED, SCHEDULED, STARTING, RUNNING: once each
}

TEST_F(FleetServiceTest, ACancelJustBeforeAServerRestartIsCarriedOutAfterIt) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1)).ok());
  auto job = svc_->Submit(Spec(1), "alice");
  svc_->ScheduleOnce();
  auto cmds = Poll("b", 0);
  ASSERT_EQ(cmds.size(), 1u);
  Report(cmds[0].job, "b", agent::JobReport::Kind::kStarted);
  ASSERT_EQ(State(job->id), JobState::kRunning);
  // Cancelled; the stop is queued but the server dies before the agent polls.
  ASSERT_TRUE(svc_->Cancel(job->id, "user:alice").ok());
  Open();
  EXPECT_EQ(State(job->id), JobState::kRunning);
  // The agent registers again (its process still runs): the stop comes again.
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1, {job->id})).ok());
  auto after = Poll("b", 0);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(after[0].job_id, job->id);
  EXPECT_EQ(after[0].attempt, 1);
  auto running = svc_->GetJob(job->id);
  Report(*running, "b", agent::JobReport::Kind::kExited, std::nullopt, 15);
  EXPECT_EQ(State(job->id), JobState::kCancelled);
  // Done with: a later restart sends nothing.
  Open();
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1)).ok());
  EXPECT_TRUE(Poll("b", 0).empty());
}

TEST_F(FleetServiceTest, AStopIsSentAgainWhenTheAgentReconnects) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1)).ok());
  auto job = svc_->Submit(Spec(1), "alice");
  svc_->ScheduleOnce();
  auto cmds = Poll("b", 0);
  Report(cmds[0].job, "b", agent::JobReport::Kind::kStarted);
  ASSERT_TRUE(svc_->Cancel(job->id, "user:alice").ok());
  auto stop = Poll("b", cmds[0].id);
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].kind, JobCommand::Kind::kStop);
  // The agent restarted before applying it (its new stream acknowledges nothing): it registers again.
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1, {job->id})).ok());
  auto again = Poll("b", 0);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(again[0].job_id, job->id);
}

class SecretDirectory final : public ProjectDirectory {
 public:
  std::optional<ProjectRules> Rules(const std::string&) const override { return ProjectRules{}; }
  Result<std::map<std::string, std::string>> SecretEnv(const std::string&,
                                                       const std::vector<std::string>& names) const override {
    std::map<std::string, std::string> env;
    for (const auto& n : names) env[n] = "s3cr3t";
    return env;
  }
};

TEST_F(FleetServiceTest, SecretsAreSentOnlyOverASecureChannel) {
  SecretDirectory dir;
  svc_->SetProjectDirectory(&dir);
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 2)).ok());
  auto spec = Spec(1);
  spec.secrets = {"API_KEY"};
  auto plain = svc_->Submit(spec, "alice");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  svc_->ScheduleOnce();
  // Plain HTTP from another machine: not sent; the job fails saying why.
  EXPECT_TRUE(Poll("b", 0, /*secure=*/false).empty());
  auto failed = svc_->GetJob(plain->id);
  EXPECT_EQ(failed->state, JobState::kFailed);
  EXPECT_NE(failed->reason.find("secrets travel only over TLS"), std::string::npos) << failed->reason;
  // Over TLS (or loopback): sent with its values.
  auto tls = svc_->Submit(spec, "alice");
  svc_->ScheduleOnce();
  auto cmds = Poll("b", 0, /*secure=*/true);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].job.id, tls->id);
  EXPECT_EQ(cmds[0].secret_env.at("API_KEY"), "s3cr3t");
  svc_->SetProjectDirectory(nullptr);
}

TEST_F(FleetServiceTest, CordonedAndDrainingNodesGetNothingNewAndKeepItAcrossRestarts) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1)).ok());
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 1)).ok());
  auto b = svc_->SetNodeCordon("b", true, false);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->cordoned);
  auto j1 = svc_->Submit(Spec(1), "alice");
  auto j2 = svc_->Submit(Spec(1), "alice");
  svc_->ScheduleOnce();
  EXPECT_EQ(svc_->GetJob(j1->id)->node, "c");
  EXPECT_EQ(State(j2->id), JobState::kQueued);  // only b is free, and it is cordoned
  // Kept across a restart and the node's registration.
  Open();
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1)).ok());
  EXPECT_TRUE(svc_->GetNode("b")->cordoned);
  svc_->ScheduleOnce();
  EXPECT_EQ(State(j2->id), JobState::kQueued);
  ASSERT_TRUE(svc_->SetNodeCordon("b", false, false).ok());
  svc_->ScheduleOnce();
  EXPECT_EQ(svc_->GetJob(j2->id)->node, "b");
  // Drain: cordoned, and the node's jobs are listed until they end; remove refuses while they run.
  auto d = svc_->SetNodeCordon("b", true, true);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->draining);
  EXPECT_EQ(d->jobs, std::vector<std::string>{j2->id});
  auto removed = svc_->RemoveNode("b");
  EXPECT_EQ(removed.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(removed.message().find(j2->id), std::string::npos) << removed.message();
  ASSERT_TRUE(svc_->Cancel(j2->id, "user:alice").ok());  // SCHEDULED: cancelled at once
  EXPECT_TRUE(svc_->GetNode("b")->jobs.empty());
  ASSERT_TRUE(svc_->RemoveNode("b").ok());
  EXPECT_EQ(svc_->GetNode("b").status().code(), ErrorCode::kNotFound);
  Open();
  EXPECT_EQ(svc_->GetNode("b").status().code(), ErrorCode::kNotFound);  // stays removed
  EXPECT_TRUE(svc_->GetNode("c").ok());
  // Joining again brings it back, not cordoned.
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1)).ok());
  EXPECT_FALSE(svc_->GetNode("b")->cordoned);
}

TEST_F(FleetServiceTest, ASilentNodeIsDownItsJobsAreRequeuedAndItsStaleAttemptIsStoppedWhenItReturns) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1)).ok());
  svc_->SetNodeConnection("b", "http from 10.0.0.2");
  auto spec = Spec(1);
  spec.max_retries = 1;
  auto job = svc_->Submit(spec, "alice");
  svc_->ScheduleOnce();
  auto cmds = Poll("b", 0);
  ASSERT_EQ(cmds.size(), 1u);
  Report(cmds[0].job, "b", agent::JobReport::Kind::kStarted);
  const int64_t started = svc_->GetJob(job->id)->started_at;
  clock_.Advance(std::chrono::seconds(3));
  agent::NodeHeartbeat hb;
  hb.node = "b";
  ASSERT_TRUE(svc_->Heartbeat(hb).ok());
  const int64_t last_seen = clock_.NowMillis();
  clock_.Advance(std::chrono::seconds(5));
  svc_->CheckNodesOnce();
  EXPECT_EQ(State(job->id), JobState::kRunning);  // within the timeout (10 s)
  clock_.Advance(std::chrono::seconds(6));
  svc_->CheckNodesOnce();
  // DOWN: the attempt ends LOST (billed up to the last heartbeat) and is requeued for its retry.
  auto requeued = svc_->GetJob(job->id);
  EXPECT_EQ(requeued->state, JobState::kQueued);
  EXPECT_EQ(requeued->attempt, 1);
  auto events = svc_->Events(job->id);
  ASSERT_TRUE(events.ok());
  bool lost = false;
  for (const auto& e : *events)
    lost |= e.to == "LOST" && e.reason.find("node b is down: no heartbeat for 11 s") != std::string::npos;
  EXPECT_TRUE(lost);
  auto usage = store_->ListUsage({.job_id = job->id});
  ASSERT_TRUE(usage.ok());
  ASSERT_EQ(usage->size(), 1u);
  EXPECT_EQ((*usage)[0].start_ms, started);
  EXPECT_EQ((*usage)[0].end_ms, last_seen);
  EXPECT_EQ(svc_->GetNode("b")->node.healthy, false);
  EXPECT_EQ(svc_->Heartbeat(hb).code(), ErrorCode::kNotFound);  // it must register again
  EXPECT_EQ(svc_->PollCommands("b", 0, true).status().code(), ErrorCode::kNotFound);
  // It runs on another node now, once b has stopped it by itself: b's lease (fence 30 s) ran out 30 s after
  // its last heartbeat, plus the stop grace (10 s) and a margin (2 s).
  bool held = false;
  for (const auto& e : *events)
    held |= e.to == "QUEUED" && e.reason.find("not before 31 s: the time its node takes to stop it by itself") !=
                                    std::string::npos;
  EXPECT_TRUE(held);
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 1)).ok());
  svc_->ScheduleOnce();
  EXPECT_TRUE(Poll("c", 0).empty());
  EXPECT_NE(svc_->GetJob(job->id)->reason.find("until its node has fenced it"), std::string::npos)
      << svc_->GetJob(job->id)->reason;
  clock_.Set(last_seen + 30'000 + 10'000 + kFenceMarginMs - 1);
  svc_->ScheduleOnce();
  EXPECT_TRUE(Poll("c", 0).empty());
  clock_.Advance(std::chrono::milliseconds(1));
  svc_->ScheduleOnce();
  auto on_c = Poll("c", 0);
  ASSERT_EQ(on_c.size(), 1u);
  EXPECT_EQ(on_c[0].job.attempt, 2);
  // b comes back still running attempt 1: it is told to stop it before anything else.
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1, {job->id})).ok());
  auto fence = Poll("b", 0);
  ASSERT_EQ(fence.size(), 1u);
  EXPECT_EQ(fence[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(fence[0].job_id, job->id);
  EXPECT_EQ(svc_->GetJob(job->id)->node, "c");  // the stale attempt's end changes nothing
  agent::JobReport stale;
  stale.kind = agent::JobReport::Kind::kExited;
  stale.job_id = job->id;
  stale.attempt = 1;
  stale.node = "b";
  stale.signal = 15;
  ASSERT_TRUE(svc_->ReportJobs({stale}).ok());
  EXPECT_EQ(svc_->GetJob(job->id)->state, JobState::kStarting);
}

TEST_F(FleetServiceTest, WithoutFencingARetryStartsAfterTheBackoffOnly) {
  ServiceOptions o;
  o.fence_timeout_ms = 0;
  svc_.reset();
  svc_ = std::move(Service::Create(*store_, clock_, o)).value();
  EXPECT_EQ(svc_->RemoteLease().lease_ms, 0);
  const std::string id = RunningOnRemoteNodeB();
  ASSERT_FALSE(id.empty());
  clock_.Advance(std::chrono::seconds(11));
  svc_->CheckNodesOnce();
  EXPECT_EQ(State(id), JobState::kQueued);
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 1)).ok());
  svc_->ScheduleOnce();
  EXPECT_TRUE(Poll("c", 0).empty());
  clock_.Advance(std::chrono::seconds(1));  // the backoff after a first lost attempt
  svc_->ScheduleOnce();
  EXPECT_EQ(Poll("c", 0).size(), 1u);
}

TEST_F(FleetServiceTest, TheLeaseGrantedToNodesIsTheFenceTimeoutWithTheStopGrace) {
  const agent::Lease l = svc_->RemoteLease();
  EXPECT_EQ(l.lease_ms, 30'000);
  EXPECT_EQ(l.grace_ms, 10'000);
}

TEST_F(FleetServiceTest, ANodeThatDoesNotComeBackAfterAServerRestartIsDownAndItsJobsAreRetried) {
  const std::string id = RunningOnRemoteNodeB();
  ASSERT_FALSE(id.empty());
  clock_.Advance(std::chrono::seconds(5));
  Open();  // the server restarts; b never comes back (its machine died with the server down)
  const int64_t restarted = clock_.NowMillis();
  clock_.Advance(std::chrono::seconds(10));
  svc_->CheckNodesOnce();
  EXPECT_EQ(State(id), JobState::kRunning);  // it may still come back
  clock_.Advance(std::chrono::seconds(1));
  svc_->CheckNodesOnce();
  EXPECT_EQ(State(id), JobState::kQueued);
  auto events = svc_->Events(id);
  ASSERT_TRUE(events.ok());
  bool lost = false;
  for (const auto& e : *events)
    lost |= e.to == "LOST" && e.reason.find("node b is down: not back 11 s after the server restarted") != std::string::npos;
  EXPECT_TRUE(lost);
  EXPECT_FALSE(svc_->GetNode("b")->registered);
  // Its retry waits for b's fence, counted from the restart (b was last heard at most then).
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 1)).ok());
  clock_.Set(restarted + 30'000 + 10'000 + kFenceMarginMs - 1);
  svc_->ScheduleOnce();
  EXPECT_TRUE(Poll("c", 0).empty());
  clock_.Advance(std::chrono::milliseconds(1));
  svc_->ScheduleOnce();
  EXPECT_EQ(Poll("c", 0).size(), 1u);
}

TEST_F(FleetServiceTest, ARetryQueuedBeforeARestartStillWaitsForAFence) {
  const std::string id = RunningOnRemoteNodeB();
  ASSERT_FALSE(id.empty());
  clock_.Advance(std::chrono::seconds(11));
  svc_->CheckNodesOnce();
  ASSERT_EQ(State(id), JobState::kQueued);
  Open();  // the retry's hold is in memory only: the restarted server holds it a whole fence time
  const int64_t restarted = clock_.NowMillis();
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 1)).ok());
  svc_->ScheduleOnce();
  EXPECT_TRUE(Poll("c", 0).empty());
  clock_.Set(restarted + 30'000 + 10'000 + kFenceMarginMs);
  svc_->ScheduleOnce();
  EXPECT_EQ(Poll("c", 0).size(), 1u);
}

// --after / --after-ok: a job waits for its dependencies to end; --after-ok whose dependency failed is cancelled.
TEST_F(FleetServiceTest, DependenciesHoldAJobUntilTheyEndAndAFailedAfterOkCancelsIt) {
  const std::string a = RunningOnRemoteNodeB();
  ASSERT_FALSE(a.empty());
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 2)).ok());
  auto spec = Spec(1);
  spec.after = {a};
  auto any = svc_->Submit(spec, "alice");
  ASSERT_TRUE(any.ok()) << any.status().ToString();
  spec.after.clear();
  spec.after_ok = {a};
  auto ok_only = svc_->Submit(spec, "alice");
  ASSERT_TRUE(ok_only.ok()) << ok_only.status().ToString();
  svc_->ResolveDependenciesOnce();
  svc_->ScheduleOnce();
  EXPECT_TRUE(Poll("c", 0).empty()) << "free GPUs, but the dependency runs";
  EXPECT_EQ(svc_->GetJob(any->id)->reason, "waiting for " + a + " (RUNNING)");
  // Unknown dependencies are refused at submit.
  spec.after_ok = {"j-999"};
  auto unknown = svc_->Submit(spec, "alice");
  EXPECT_EQ(unknown.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("dependency j-999 does not exist"), std::string::npos);
  // The dependency fails: --after runs, --after-ok is cancelled with the reason.
  Report(svc_->GetJob(a).value(), "b", agent::JobReport::Kind::kExited, 3);
  ASSERT_EQ(State(a), JobState::kFailed);
  svc_->ResolveDependenciesOnce();
  svc_->ScheduleOnce();
  EXPECT_EQ(State(ok_only->id), JobState::kCancelled);
  EXPECT_EQ(svc_->GetJob(ok_only->id)->reason, "cancelled: dependency " + a + " ended FAILED (--after-ok)");
  EXPECT_EQ(State(any->id), JobState::kScheduled);  // on b (free again) or c
}

TEST_F(FleetServiceTest, NodeChangesWriteTheRequestsAuditRowInTheirOwnTransaction) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 1)).ok());
  api::AuditRecord cordon;
  cordon.actor = "user:admin";
  cordon.action = "POST /v1/nodes/{name}/cordon";
  cordon.target = "/v1/nodes/b/cordon";
  cordon.result = "ok";
  ASSERT_TRUE(svc_->SetNodeCordon("b", true, false, &cordon).ok());
  EXPECT_GT(cordon.seq, 0);
  // A removal whose transaction fails (here: a credential write that must not exist yet but does not match)
  // writes neither the removal nor its row, and the node stays.
  api::AuditRecord remove = cordon;
  remove.seq = 0;
  remove.action = "DELETE /v1/nodes/{name}";
  std::vector<store::RecordWrite> bad = {{.kind = "node_credential", .key = "k", .erase = true, .expected_version = 7}};
  EXPECT_FALSE(svc_->RemoveNode("b", bad, &remove).ok());
  EXPECT_EQ(remove.seq, 0);
  EXPECT_TRUE(svc_->GetNode("b").ok());
  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ(rows->back().action, "POST /v1/nodes/{name}/cordon");
  // A removal that commits carries its row and the extra writes (the node's credentials revoked).
  ASSERT_TRUE(store_->WriteRecords({{.kind = "node_credential", .key = "k", .value = "{\"node\":\"b\"}"}}).ok());
  std::vector<store::RecordWrite> revoke = {{.kind = "node_credential", .key = "k", .erase = true}};
  ASSERT_TRUE(svc_->RemoveNode("b", revoke, &remove).ok());
  EXPECT_GT(remove.seq, cordon.seq);
  EXPECT_FALSE(svc_->GetNode("b").ok());
  auto cred = store_->GetRecord("node_credential", "k");
  ASSERT_TRUE(cred.ok());
  EXPECT_FALSE(cred->has_value());
}

TEST(RetryBackoffTest, DoublesFromOneSecondUpToAMinute) {
  EXPECT_EQ(RetryBackoffMs(1), 1'000);
  EXPECT_EQ(RetryBackoffMs(2), 2'000);
  EXPECT_EQ(RetryBackoffMs(3), 4'000);
  EXPECT_EQ(RetryBackoffMs(7), 60'000);
  EXPECT_EQ(RetryBackoffMs(100), 60'000);
  EXPECT_EQ(RetryBackoffMs(0), 1'000);
}

TEST_F(FleetServiceTest, PollingAnUnregisteredNodeSaysSo) {
  auto r = svc_->PollCommands("ghost", 0, true);
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fastgpu::server
