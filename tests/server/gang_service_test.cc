// Multi-node (gang) jobs in the service: a job asking for more GPUs than one node has is placed on several
// nodes, gets one start command per member, is RUNNING once all have started and ends once all have ended,
// with the first failing member's reason. The test plays the remote agents through PollCommands and
// ReportJobs (what the HTTP routes call).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "server/service.h"
#include "service_fixture.h"
#include "store/store.h"

namespace fastgpu::server {
namespace {

using agent::JobCommand;
using agent::JobReport;
using api::JobState;

class GangServiceTest : public ServiceFixture {
 protected:
  // Two remote 2-GPU nodes, b (10.0.0.2) and c (10.0.0.3).
  void TwoNodes() {
    for (const auto& [name, addr] : {std::pair{"b", "10.0.0.2"}, std::pair{"c", "10.0.0.3"}}) {
      svc_->SetNodeConnection(name, std::string("https from ") + addr, addr);
      ASSERT_TRUE(svc_->RegisterNode(Node(name, 2)).ok());
    }
  }
  api::JobSpec Spec(int gpus, int max_retries = 0) {
    api::JobSpec s;
    s.command = {"sh", "-c", "echo $RANK"};
    s.gpus_milli = gpus * 1000;
    s.max_retries = max_retries;
    return s;
  }
  std::vector<JobCommand> Poll(const std::string& node, uint64_t ack = 0) {
    auto c = svc_->PollCommands(node, ack, true);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : std::vector<JobCommand>{};
  }
  // Polls both nodes and returns each one's single start command, by node.
  std::map<std::string, JobCommand> Starts() {
    std::map<std::string, JobCommand> out;
    for (const std::string n : {"b", "c"}) {
      auto cmds = Poll(n);
      EXPECT_EQ(cmds.size(), 1u) << n;
      if (cmds.size() == 1) {
        EXPECT_EQ(cmds[0].kind, JobCommand::Kind::kStart);
        out[n] = cmds[0];
        (void)Poll(n, cmds[0].id);  // acknowledged
      }
    }
    return out;
  }
  void Report(const JobCommand& start, JobReport::Kind kind, std::optional<int> code = {},
              std::optional<int> sig = {}) {
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
  }
  api::Job Get(const std::string& id) { return svc_->GetJob(id).value(); }

};

TEST_F(GangServiceTest, AJobWiderThanANodeGetsOneStartPerMemberNode) {
  TwoNodes();
  auto job = svc_->Submit(Spec(4), "alice");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  svc_->ScheduleOnce();
  api::Job placed = Get(job->id);
  ASSERT_EQ(placed.state, JobState::kScheduled) << placed.reason;
  ASSERT_EQ(placed.members.size(), 2u);
  EXPECT_EQ(placed.assigned_gpus.size(), 4u);  // the union
  EXPECT_EQ(placed.node, placed.members[0].node);
  EXPECT_NE(placed.members[0].node, placed.members[1].node);
  const std::string rank0 = placed.members[0].node;
  const std::string master = rank0 == "b" ? "10.0.0.2" : "10.0.0.3";

  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  std::set<int> ranks;
  for (const auto& [node, c] : starts) {
    EXPECT_EQ(c.job.id, job->id);
    EXPECT_EQ(c.job.attempt, 1);
    EXPECT_EQ(c.job.node, node);  // the member's own view
    ASSERT_EQ(c.job.assigned_gpus.size(), 2u);
    EXPECT_EQ(c.job.assigned_gpus[0], "SIM-" + node + "-0");
    EXPECT_EQ(c.job.assigned_gpu_indices, (std::vector<int>{0, 1}));
    EXPECT_EQ(c.job.members.size(), 2u);
    EXPECT_EQ(c.job.members[static_cast<size_t>(c.rank)].node, node);
    EXPECT_EQ(c.master_addr, master);
    EXPECT_EQ(c.master_port, GangMasterPort(job->id, 1));
    EXPECT_GE(c.master_port, 30000);
    EXPECT_LT(c.master_port, 60000);
    ranks.insert(c.rank);
  }
  EXPECT_EQ(ranks, (std::set<int>{0, 1}));
  EXPECT_EQ(starts.at(rank0).rank, 0);
  // Both nodes show the job; the GPU list counts all four GPUs.
  for (const auto& n : svc_->Nodes()) EXPECT_EQ(n.jobs, std::vector<std::string>{job->id}) << n.node.name;
  int held = 0;
  for (const auto& g : svc_->ListGpus()) held += g.jobs.size() == 1;
  EXPECT_EQ(held, 4);
}

// One process per GPU: a job on one node gets the rendezvous of its processes (loopback, the port a multi-node
// job would use) in its start; a multi-node one carries the layout to every member; neither changes placement.
TEST_F(GangServiceTest, AJobWithOneProcessPerGpuCarriesItsLayoutAndRendezvous) {
  TwoNodes();
  api::JobSpec one = Spec(2);
  one.processes = api::ProcessLayout::kPerGpu;
  auto single = svc_->Submit(one, "alice");
  ASSERT_TRUE(single.ok()) << single.status().ToString();
  svc_->ScheduleOnce();
  api::Job placed = Get(single->id);
  ASSERT_EQ(placed.state, JobState::kScheduled) << placed.reason;
  EXPECT_TRUE(placed.members.empty());
  EXPECT_EQ(placed.spec.processes, api::ProcessLayout::kPerGpu);
  auto cmds = Poll(placed.node);
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].job.spec.processes, api::ProcessLayout::kPerGpu);
  EXPECT_EQ(cmds[0].rank, 0);
  EXPECT_EQ(cmds[0].master_addr, "127.0.0.1");
  EXPECT_EQ(cmds[0].master_port, GangMasterPort(single->id, 1));
  (void)Poll(placed.node, cmds[0].id);
  Report(cmds[0], JobReport::Kind::kStarted);
  Report(cmds[0], JobReport::Kind::kExited, 0);
  EXPECT_EQ(Get(single->id).state, JobState::kSucceeded);

  // A plain job on one node has no rendezvous.
  auto plain = svc_->Submit(Spec(1), "alice");
  svc_->ScheduleOnce();
  api::Job p = Get(plain->id);
  auto pc = Poll(p.node);
  ASSERT_EQ(pc.size(), 1u);
  EXPECT_EQ(pc[0].master_port, 0);
  (void)Poll(p.node, pc[0].id);
  Report(pc[0], JobReport::Kind::kStarted);
  Report(pc[0], JobReport::Kind::kExited, 0);

  api::JobSpec wide = Spec(4);
  wide.processes = api::ProcessLayout::kPerGpu;
  auto gang = svc_->Submit(wide, "alice");
  ASSERT_TRUE(gang.ok()) << gang.status().ToString();
  svc_->ScheduleOnce();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  for (const auto& [node, c] : starts) {
    EXPECT_EQ(c.job.spec.processes, api::ProcessLayout::kPerGpu) << node;
    EXPECT_EQ(c.job.members.size(), 2u);
    EXPECT_EQ(c.job.assigned_gpus.size(), 2u);  // the member's GPUs: its processes
    EXPECT_EQ(c.master_port, GangMasterPort(gang->id, 1));
  }
}

TEST_F(GangServiceTest, RunningOnlyOnceEveryMemberStartedAndSucceededOnceAllExitZero) {
  TwoNodes();
  auto job = svc_->Submit(Spec(4), "alice");
  svc_->ScheduleOnce();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  Report(starts.at("b"), JobReport::Kind::kStarted);
  EXPECT_EQ(Get(job->id).state, JobState::kStarting);
  Report(starts.at("b"), JobReport::Kind::kStarted);  // a repeated report changes nothing
  EXPECT_EQ(Get(job->id).state, JobState::kStarting);
  clock_.Advance(std::chrono::milliseconds(500));
  Report(starts.at("c"), JobReport::Kind::kStarted);
  api::Job running = Get(job->id);
  EXPECT_EQ(running.state, JobState::kRunning);
  EXPECT_EQ(running.started_at, clock_.NowMillis());
  clock_.Advance(std::chrono::seconds(10));
  Report(starts.at("c"), JobReport::Kind::kExited, 0);
  EXPECT_EQ(Get(job->id).state, JobState::kRunning);  // waits for the other member
  clock_.Advance(std::chrono::seconds(10));
  Report(starts.at("b"), JobReport::Kind::kExited, 0);
  api::Job done = Get(job->id);
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.reason, "exit code 0 on all 2 nodes");
  ASSERT_EQ(done.members.size(), 2u);
  EXPECT_TRUE(done.members[0].ended && done.members[1].ended);
  // Billed for every member's GPUs: 4 GPUs x 20 s.
  auto usage = store_->ListUsage({});
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  ASSERT_EQ(usage->size(), 1u);
  EXPECT_EQ(usage->front().milli, 4000);
  EXPECT_EQ(usage->front().gpus.size(), 4u);
  EXPECT_EQ(usage->front().end_ms - usage->front().start_ms, 20'000);
  // The members survive a restart of the server (stored).
  Open();
  EXPECT_EQ(Get(job->id).members.size(), 2u);
}

TEST_F(GangServiceTest, AFailedMemberStopsTheOthersAndTheJobFailsWithItsReason) {
  TwoNodes();
  auto job = svc_->Submit(Spec(4), "alice");
  svc_->ScheduleOnce();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  const JobCommand& r0 = starts.at(Get(job->id).members[0].node);
  const JobCommand& r1 = starts.at(Get(job->id).members[1].node);
  Report(r0, JobReport::Kind::kStarted);
  Report(r1, JobReport::Kind::kStarted);
  ASSERT_EQ(Get(job->id).state, JobState::kRunning);
  Report(r1, JobReport::Kind::kExited, 3);
  EXPECT_EQ(Get(job->id).state, JobState::kRunning);  // until rank 0 has stopped too
  auto stop = Poll(r0.job.node);
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(stop[0].job_id, job->id);
  EXPECT_EQ(stop[0].attempt, 1);
  EXPECT_NE(stop[0].reason.find("rank 1 on " + r1.job.node + ": exit code 3"), std::string::npos) << stop[0].reason;
  EXPECT_TRUE(Poll(r1.job.node).empty());  // nothing to stop where it ended
  Report(r0, JobReport::Kind::kExited, std::nullopt, 15);
  api::Job failed = Get(job->id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.reason, "rank 1 on " + r1.job.node + ": exit code 3");
  EXPECT_EQ(failed.exit_code, 3);
}

TEST_F(GangServiceTest, AMemberThatFailsToStartFailsTheGang) {
  TwoNodes();
  auto job = svc_->Submit(Spec(4), "alice");
  svc_->ScheduleOnce();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  const JobCommand& r0 = starts.at(Get(job->id).members[0].node);
  const JobCommand& r1 = starts.at(Get(job->id).members[1].node);
  Report(r0, JobReport::Kind::kStarted);
  Report(r1, JobReport::Kind::kExited, 127);  // exec failed there
  EXPECT_EQ(Get(job->id).state, JobState::kStarting);
  auto stop = Poll(r0.job.node);
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].kind, JobCommand::Kind::kStop);
  Report(r0, JobReport::Kind::kExited, std::nullopt, 15);
  api::Job failed = Get(job->id);
  EXPECT_EQ(failed.state, JobState::kFailed);
  EXPECT_EQ(failed.reason, "rank 1 on " + r1.job.node + ": exit code 127");
}

TEST_F(GangServiceTest, CancelStopsEveryMember) {
  TwoNodes();
  auto job = svc_->Submit(Spec(4), "alice");
  svc_->ScheduleOnce();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  Report(starts.at("b"), JobReport::Kind::kStarted);
  Report(starts.at("c"), JobReport::Kind::kStarted);
  ASSERT_TRUE(svc_->Cancel(job->id, "user:alice").ok());
  for (const std::string n : {"b", "c"}) {
    auto stop = Poll(n);
    ASSERT_EQ(stop.size(), 1u) << n;
    EXPECT_EQ(stop[0].kind, JobCommand::Kind::kStop);
    EXPECT_EQ(stop[0].job_id, job->id);
    EXPECT_EQ(stop[0].reason, "cancelled by user");
  }
  Report(starts.at("b"), JobReport::Kind::kExited, std::nullopt, 15);
  EXPECT_EQ(Get(job->id).state, JobState::kRunning);
  Report(starts.at("c"), JobReport::Kind::kExited, std::nullopt, 15);
  api::Job cancelled = Get(job->id);
  EXPECT_EQ(cancelled.state, JobState::kCancelled);
  EXPECT_EQ(cancelled.reason, "cancelled by user");
}

TEST_F(GangServiceTest, ALostMemberNodeLosesTheWholeJobWhichIsRequeued) {
  TwoNodes();
  auto job = svc_->Submit(Spec(4, /*max_retries=*/1), "alice");
  svc_->ScheduleOnce();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  Report(starts.at("b"), JobReport::Kind::kStarted);
  Report(starts.at("c"), JobReport::Kind::kStarted);
  // c goes silent; b keeps sending heartbeats.
  clock_.Advance(std::chrono::seconds(11));
  ASSERT_TRUE(svc_->Heartbeat({.node = "b"}).ok());
  svc_->CheckNodesOnce();
  api::Job requeued = Get(job->id);
  EXPECT_EQ(requeued.state, JobState::kQueued);
  EXPECT_TRUE(requeued.members.empty());
  auto events = svc_->Events(job->id);
  ASSERT_TRUE(events.ok());
  bool lost = false;
  for (const auto& e : *events)
    lost |= e.to == "LOST" && e.reason.find("on node c is down") != std::string::npos;
  EXPECT_TRUE(lost);
  // The member on b is stopped.
  auto stop = Poll("b");
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(stop[0].attempt, 1);
}

// The server restarts while a gang is STARTING: rank 0 started on b, rank 1 never started on c. The gang never ran
// as a whole, so it is not lost: b's member is stopped and the job goes back to the queue, not counted as a retry.
TEST_F(GangServiceTest, AGangStartingAtARestartWithAMemberThatNeverStartedIsRequeuedNotLost) {
  TwoNodes();
  auto job = svc_->Submit(Spec(4, /*max_retries=*/0), "alice");
  svc_->ScheduleOnce();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  Report(starts.at("b"), JobReport::Kind::kStarted);
  ASSERT_EQ(Get(job->id).state, JobState::kStarting);
  Open();
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 2, {job->id})).ok());
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 2)).ok());
  api::Job j = Get(job->id);
  EXPECT_EQ(j.state, JobState::kStarting) << "waits for b's member to stop";
  auto stop = Poll("b");
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].kind, JobCommand::Kind::kStop);
  EXPECT_EQ(stop[0].attempt, 1);
  EXPECT_NE(stop[0].reason.find("rank 1 on c never started"), std::string::npos) << stop[0].reason;
  (void)Poll("b", stop[0].id);  // acknowledged
  EXPECT_TRUE(Poll("c").empty()) << "nothing to stop on c";
  Report(starts.at("b"), JobReport::Kind::kExited, {}, 15);
  j = Get(job->id);
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.attempt, 1);  // kept: b ran a member of attempt 1
  EXPECT_TRUE(j.members.empty());
  auto events = svc_->Events(job->id);
  ASSERT_TRUE(events.ok());
  for (const auto& e : *events) EXPECT_NE(e.to, "LOST") << e.reason;
  EXPECT_NE(j.reason.find("requeued: rank 1 on c never started"), std::string::npos) << j.reason;
  // It starts again although max_retries is 0: an attempt that never ran as a whole is not a retry.
  svc_->ScheduleOnce();
  auto again = Starts();
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again.at("b").job.attempt, 2);
}

TEST_F(GangServiceTest, AGangWhoseMembersAllNeverStartedIsRequeuedAtOnce) {
  TwoNodes();
  auto job = svc_->Submit(Spec(4), "alice");
  svc_->ScheduleOnce();
  ASSERT_EQ(Starts().size(), 2u);
  ASSERT_EQ(Get(job->id).state, JobState::kStarting);
  Open();
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 2)).ok());
  ASSERT_TRUE(svc_->RegisterNode(Node("c", 2)).ok());
  api::Job j = Get(job->id);
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.attempt, 0);
}

TEST_F(GangServiceTest, AJobThatFitsOneNodeStaysOnOneNode) {
  TwoNodes();
  auto job = svc_->Submit(Spec(2), "alice");
  svc_->ScheduleOnce();
  api::Job placed = Get(job->id);
  EXPECT_EQ(placed.state, JobState::kScheduled);
  EXPECT_TRUE(placed.members.empty());
  EXPECT_EQ(placed.assigned_gpus.size(), 2u);
  // More GPUs than the whole cluster has: refused at submit.
  EXPECT_FALSE(svc_->Submit(Spec(6), "alice").ok());
}

TEST_F(GangServiceTest, LogsOfEachRankComeFromItsNode) {
  struct Source final : agent::LogSource {
    explicit Source(std::string text) : text(std::move(text)) {}
    Result<agent::LogChunk> ReadLog(const std::string&, int64_t offset, int64_t) override {
      return agent::LogChunk{text.substr(static_cast<size_t>(offset)), static_cast<int64_t>(text.size()), true};
    }
    std::string text;
  };
  Source b("from b\n"), c("from c\n");
  svc_->SetLogSource("b", &b);
  svc_->SetLogSource("c", &c);
  TwoNodes();
  auto job = svc_->Submit(Spec(4), "alice");
  svc_->ScheduleOnce();
  auto starts = Starts();
  api::Job j = Get(job->id);
  for (int rank = 0; rank < 2; ++rank) {
    auto chunk = svc_->ReadLog(job->id, 0, 1024, rank);
    ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
    EXPECT_EQ(chunk->data, "from " + j.members[static_cast<size_t>(rank)].node + "\n");
  }
  EXPECT_EQ(svc_->ReadLog(job->id, 0, 1024, 2).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace fastgpu::server
