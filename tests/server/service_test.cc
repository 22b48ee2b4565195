// Service (control-plane core) with a real SQLite store, the real scheduler and a fake clock;
// the test plays the agent through the ControlPlane interface.
#include "server/service.h"
#include "service_fixture.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "server/http.h"

namespace fastgpu::server {
namespace {

using api::JobState;

class ServiceTest : public ServiceFixture {
 protected:
  agent::NodeRegistration Node(int gpus, std::vector<std::string> running = {},
                               std::vector<agent::JobReport> recovered = {}) {
    agent::NodeRegistration reg;
    reg.node.name = "n1";
    reg.node.simulated = true;
    for (int i = 0; i < gpus; ++i) {
      api::Gpu g;
      g.uuid = "SIM-" + std::to_string(i);
      g.index = i;
      g.type = "A100-80GB";
      g.memory_total_mib = 81920;
      g.simulated = true;
      reg.gpus.push_back(g);
    }
    reg.running_job_ids = std::move(running);
    reg.recovered = std::move(recovered);
    return reg;
  }
  api::JobSpec Spec(int gpus, int priority = 50) {
    api::JobSpec s;
    s.command = {"true"};
    s.gpus_milli = gpus * 1000;
    s.priority = priority;
    return s;
  }
  std::vector<agent::JobCommand> Commands() {
    auto c = svc_->WaitCommands("n1", std::chrono::milliseconds(0));
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : std::vector<agent::JobCommand>{};
  }
  void Report(const api::Job& j, agent::JobReport::Kind kind, std::optional<int> code = {},
              std::optional<int> sig = {}) {
    agent::JobReport r;
    r.kind = kind;
    r.job_id = j.id;
    r.attempt = j.attempt;
    r.node = "n1";
    r.pid = 1234;
    r.exit_code = code;
    r.signal = sig;
    ASSERT_TRUE(svc_->ReportJob(r).ok());
  }
  JobState State(const std::string& id) { return svc_->GetJob(id)->state; }

};

TEST_F(ServiceTest, JobLifecycle) {
  ASSERT_TRUE(svc_->RegisterNode(Node(4)).ok());
  auto job = svc_->Submit(Spec(2), "alice");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(job->state, JobState::kQueued);
  svc_->ScheduleOnce();
  EXPECT_EQ(State(job->id), JobState::kScheduled);
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].kind, agent::JobCommand::Kind::kStart);
  EXPECT_EQ(cmds[0].job.assigned_gpus.size(), 2u);
  EXPECT_EQ(State(job->id), JobState::kStarting);
  Report(cmds[0].job, agent::JobReport::Kind::kStarted);
  EXPECT_EQ(State(job->id), JobState::kRunning);
  Report(cmds[0].job, agent::JobReport::Kind::kExited, 0);
  EXPECT_EQ(State(job->id), JobState::kSucceeded);
  auto events = svc_->Events(job->id);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 5u);
}

TEST_F(ServiceTest, NeverFittingJobIsRejectedAtSubmit) {
  ASSERT_TRUE(svc_->RegisterNode(Node(4)).ok());
  auto job = svc_->Submit(Spec(8), "alice");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), ErrorCode::kUnschedulable);
  auto spec = Spec(1);
  spec.gpu_type = "H100-80GB";
  job = svc_->Submit(spec, "alice");
  EXPECT_EQ(job.status().code(), ErrorCode::kUnschedulable);
  EXPECT_TRUE(svc_->ListJobs({})->jobs.empty());
}

// A container job when no node has podman (agents with it register the label containers=podman) would never run.
TEST_F(ServiceTest, AContainerJobIsRefusedWhenNoNodeHasPodman) {
  ASSERT_TRUE(svc_->RegisterNode(Node(4)).ok());
  auto spec = Spec(1);
  spec.image = "localhost/train:1";
  auto job = svc_->Submit(spec, "alice");
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), ErrorCode::kUnschedulable);
  EXPECT_NE(job.status().message().find("no node can run container jobs (image localhost/train:1): none has podman"),
            std::string::npos)
      << job.status().message();
  auto with_podman = Node(4);
  with_podman.node.labels["containers"] = "podman";
  ASSERT_TRUE(svc_->RegisterNode(with_podman).ok());
  job = svc_->Submit(spec, "alice");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  svc_->ScheduleOnce();
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].job.spec.image, "localhost/train:1");  // the agent gets it
}

TEST_F(ServiceTest, RuntimeLimitStopsTheJobWithReason) {
  ASSERT_TRUE(svc_->RegisterNode(Node(1)).ok());
  auto spec = Spec(1);
  spec.runtime_limit_s = 60;
  auto job = svc_->Submit(spec, "alice");
  svc_->ScheduleOnce();
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  Report(cmds[0].job, agent::JobReport::Kind::kStarted);
  svc_->Start();
  clock_.Advance(std::chrono::seconds(61));
  std::vector<agent::JobCommand> stop;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (stop.empty() && std::chrono::steady_clock::now() < deadline) {
    stop = *svc_->WaitCommands("n1", std::chrono::milliseconds(200));
  }
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].kind, agent::JobCommand::Kind::kStop);
  Report(cmds[0].job, agent::JobReport::Kind::kExited, std::nullopt, 15);
  EXPECT_EQ(State(job->id), JobState::kFailed);
  EXPECT_EQ(svc_->GetJob(job->id)->reason, "runtime limit");
  svc_->Stop();
}

TEST_F(ServiceTest, CancelQueuedAndRunning) {
  ASSERT_TRUE(svc_->RegisterNode(Node(1)).ok());
  auto a = svc_->Submit(Spec(1), "alice");
  auto b = svc_->Submit(Spec(1), "alice");
  svc_->ScheduleOnce();
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  Report(cmds[0].job, agent::JobReport::Kind::kStarted);
  ASSERT_TRUE(svc_->Cancel(b->id, "user:alice").ok());
  EXPECT_EQ(State(b->id), JobState::kCancelled);
  ASSERT_TRUE(svc_->Cancel(a->id, "user:alice").ok());
  auto stop = Commands();
  ASSERT_EQ(stop.size(), 1u);
  EXPECT_EQ(stop[0].kind, agent::JobCommand::Kind::kStop);
  Report(cmds[0].job, agent::JobReport::Kind::kExited, std::nullopt, 15);
  EXPECT_EQ(State(a->id), JobState::kCancelled);
  EXPECT_EQ(svc_->Cancel(a->id, "user:alice").status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(svc_->Cancel("j-999", "user:alice").status().code(), ErrorCode::kNotFound);
}

TEST_F(ServiceTest, RestartReadoptsOrMarksLost) {
  ASSERT_TRUE(svc_->RegisterNode(Node(4)).ok());
  auto alive = svc_->Submit(Spec(1), "u");
  auto gone = svc_->Submit(Spec(1), "u");
  auto finished = svc_->Submit(Spec(1), "u");
  auto retry_spec = Spec(1);
  retry_spec.max_retries = 1;
  auto retried = svc_->Submit(retry_spec, "u");
  svc_->ScheduleOnce();
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 4u);
  for (auto& c : cmds) Report(c.job, agent::JobReport::Kind::kStarted);
  // "Crash": reopen everything from the store.
  Open();
  agent::JobReport rec;
  rec.kind = agent::JobReport::Kind::kExited;
  rec.job_id = finished->id;
  rec.attempt = 1;
  rec.node = "n1";
  rec.exit_code = 3;
  ASSERT_TRUE(svc_->RegisterNode(Node(4, {alive->id}, {rec})).ok());
  EXPECT_EQ(State(alive->id), JobState::kRunning);
  EXPECT_EQ(State(gone->id), JobState::kLost);
  EXPECT_NE(svc_->GetJob(gone->id)->reason.find("not found"), std::string::npos);
  EXPECT_EQ(State(finished->id), JobState::kFailed);
  EXPECT_EQ(svc_->GetJob(finished->id)->exit_code, 3);
  EXPECT_EQ(State(retried->id), JobState::kQueued);
}

// After a crash, attempts the node never started go back to the queue with their attempt uncounted; one
// it may have started (a recovered "lost" report) is LOST, counted, and retried only as max_retries allows.
TEST_F(ServiceTest, RestartRequeuesStartsTheNodeNeverBegan) {
  ASSERT_TRUE(svc_->RegisterNode(Node(4)).ok());
  auto never = svc_->Submit(Spec(1), "u");
  auto maybe = svc_->Submit(Spec(1), "u");
  auto third = svc_->Submit(Spec(1), "u");
  svc_->ScheduleOnce();
  auto cmds = Commands();  // all three are STARTING
  ASSERT_EQ(cmds.size(), 3u);
  EXPECT_EQ(State(never->id), JobState::kStarting);
  EXPECT_EQ(svc_->GetJob(never->id)->attempt, 1);
  Open();
  agent::JobReport lost;
  lost.kind = agent::JobReport::Kind::kLost;
  lost.job_id = maybe->id;
  lost.attempt = 1;
  lost.node = "n1";
  lost.reason = "process lost: no process record";
  ASSERT_TRUE(svc_->RegisterNode(Node(4, {}, {lost})).ok());
  EXPECT_EQ(State(never->id), JobState::kQueued);
  EXPECT_EQ(svc_->GetJob(never->id)->attempt, 0);
  EXPECT_NE(svc_->GetJob(never->id)->reason.find("never started"), std::string::npos)
      << svc_->GetJob(never->id)->reason;
  EXPECT_EQ(State(third->id), JobState::kQueued);
  EXPECT_EQ(State(maybe->id), JobState::kLost);
  EXPECT_EQ(svc_->GetJob(maybe->id)->attempt, 1);
  // Started again, it is attempt 1: one start, one attempt.
  svc_->ScheduleOnce();
  auto again = Commands();
  ASSERT_EQ(again.size(), 2u);
  for (const auto& c : again) EXPECT_EQ(c.job.attempt, 1) << c.job.id;
}

// The audit row of a submit and of a cancel is written in the change's own transaction.
TEST_F(ServiceTest, SubmitAndCancelWriteTheirAuditRowsWithTheChange) {
  ASSERT_TRUE(svc_->RegisterNode(Node(1)).ok());
  api::AuditRecord submit_row{.actor = "user:alice", .action = "POST /v1/jobs", .result = "ok"};
  auto job = svc_->Submit(Spec(1), "alice", SubmitOptions{.actor = "user:alice", .audit = &submit_row});
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_EQ(submit_row.seq, 1);
  EXPECT_EQ(submit_row.target, "job:" + job->job.id);
  api::AuditRecord cancel_row{.actor = "user:alice", .action = "POST /v1/jobs/{id}/cancel", .result = "ok"};
  ASSERT_TRUE(svc_->Cancel(job->job.id, "user:alice", &cancel_row).ok());
  EXPECT_GT(cancel_row.seq, 0);
  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].target, "job:" + job->job.id);
  EXPECT_EQ((*rows)[1].action, "POST /v1/jobs/{id}/cancel");
  // A refused cancel writes nothing (the HTTP layer records the failure).
  api::AuditRecord refused{.actor = "user:alice", .action = "POST /v1/jobs/{id}/cancel"};
  EXPECT_FALSE(svc_->Cancel(job->job.id, "user:alice", &refused).ok());
  EXPECT_EQ(refused.seq, 0);
  EXPECT_EQ(store_->ListAudit(0, 0)->size(), 2u);
}

// The same Idempotency-Key returns the same job, also across a restart; with another request it is refused;
// keys are per principal.
TEST_F(ServiceTest, IdempotencyKeyReturnsTheSameJob) {
  ASSERT_TRUE(svc_->RegisterNode(Node(1)).ok());
  SubmitOptions o{.actor = "user:alice", .idempotency_key = "key-1"};
  auto first = svc_->Submit(Spec(1), "alice", o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_FALSE(first->replayed);
  auto again = svc_->Submit(Spec(1), "alice", o);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->job.id, first->job.id);
  Open();
  again = svc_->Submit(Spec(1), "alice", o);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->job.id, first->job.id);
  EXPECT_EQ(svc_->ListJobs({})->jobs.size(), 1u);
  auto other = svc_->Submit(Spec(1, 90), "alice", o);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("key-1"), std::string::npos);
  auto bob = svc_->Submit(Spec(1), "bob", SubmitOptions{.actor = "user:bob", .idempotency_key = "key-1"});
  ASSERT_TRUE(bob.ok());
  EXPECT_NE(bob->job.id, first->job.id);
  EXPECT_EQ(svc_->Submit(Spec(1), "alice", SubmitOptions{.actor = "user:alice", .idempotency_key = "has space"})
                .status()
                .code(),
            ErrorCode::kInvalidArgument);
}

// Only live jobs are kept in memory; ended ones are read from the store (after a restart, none is cached)
// and behave as before: get, events, wait, cancel, stale reports.
TEST_F(ServiceTest, EndedJobsAreReadFromTheStore) {
  ASSERT_TRUE(svc_->RegisterNode(Node(1)).ok());
  auto done = svc_->Submit(Spec(1), "alice");
  ASSERT_TRUE(done.ok());
  svc_->ScheduleOnce();
  auto cmds = Commands();
  ASSERT_EQ(cmds.size(), 1u);
  Report(cmds[0].job, agent::JobReport::Kind::kStarted);
  Report(cmds[0].job, agent::JobReport::Kind::kExited, 0);
  auto cancelled = svc_->Submit(Spec(1), "alice");
  ASSERT_TRUE(cancelled.ok());
  ASSERT_TRUE(svc_->Cancel(cancelled->id, "user:alice").ok());
  auto queued = svc_->Submit(Spec(1), "alice");
  ASSERT_TRUE(queued.ok());
  Open();
  auto got = svc_->GetJob(done->id);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->state, JobState::kSucceeded);
  EXPECT_EQ(got->exit_code, 0);
  auto events = svc_->Events(done->id);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 5u);
  auto waited = svc_->Wait(cancelled->id, 60'000, false);  // ended: returns at once
  ASSERT_TRUE(waited.ok());
  EXPECT_EQ(waited->state, JobState::kCancelled);
  auto again = svc_->Cancel(done->id, "user:alice");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(again.status().message().find("SUCCEEDED"), std::string::npos);
  agent::JobReport stale;
  stale.kind = agent::JobReport::Kind::kExited;
  stale.job_id = done->id;
  stale.attempt = 1;
  stale.node = "n1";
  stale.exit_code = 1;
  EXPECT_TRUE(svc_->ReportJob(stale).ok());
  EXPECT_EQ(State(done->id), JobState::kSucceeded);
  stale.job_id = "j-999";
  EXPECT_EQ(svc_->ReportJob(stale).code(), ErrorCode::kNotFound);
  EXPECT_EQ(svc_->GetJob("j-999").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(svc_->Cancel("j-999", "user:alice").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(svc_->GetJob("nope").status().code(), ErrorCode::kNotFound);
  auto log = svc_->ReadLog(cancelled->id, 0, 100);  // never ran: empty and done
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(log->data.empty());
  // The live job is still scheduled after the restart.
  ASSERT_TRUE(svc_->RegisterNode(Node(1)).ok());
  svc_->ScheduleOnce();
  EXPECT_EQ(State(queued->id), JobState::kScheduled);
}

TEST_F(ServiceTest, ListJobsPagesWithCursorAndFiltersInTheStore) {
  std::vector<std::string> ids;  // submit order
  for (int i = 0; i < 7; ++i) {
    auto s = Spec(1);
    s.project = i % 2 ? "odd" : "even";
    auto j = svc_->Submit(s, "alice");
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    ids.push_back(j->id);
  }
  ASSERT_TRUE(svc_->Cancel(ids[2], "user:alice").ok());
  ASSERT_TRUE(svc_->Cancel(ids[5], "user:alice").ok());
  // Newest first, 3 at a time, following cursors.
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = svc_->ListJobs({.limit = 3, .cursor = cursor});
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    for (const auto& j : page->jobs) seen.push_back(j.id);
    cursor = page->next_cursor;
    ++pages;
  } while (!cursor.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, (std::vector<std::string>{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}));
  // An exact fit has no next page.
  auto exact = svc_->ListJobs({.limit = 7});
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(exact->jobs.size(), 7u);
  EXPECT_TRUE(exact->next_cursor.empty());
  // Filters: state, project, visible projects.
  auto queued = svc_->ListJobs({.states = {JobState::kQueued}, .project = "even", .limit = 10});
  ASSERT_TRUE(queued.ok());
  ASSERT_EQ(queued->jobs.size(), 3u);
  EXPECT_EQ(queued->jobs[0].id, ids[6]);
  EXPECT_EQ(queued->jobs[0].reason, "waiting to be scheduled");
  std::set<std::string> visible = {"odd"};
  auto odd = svc_->ListJobs({.visible = &visible, .limit = 2});
  ASSERT_TRUE(odd.ok());
  ASSERT_EQ(odd->jobs.size(), 2u);
  EXPECT_EQ(odd->jobs[0].id, ids[5]);
  EXPECT_EQ(odd->jobs[1].id, ids[3]);
  auto odd2 = svc_->ListJobs({.visible = &visible, .limit = 2, .cursor = odd->next_cursor});
  ASSERT_TRUE(odd2.ok());
  ASSERT_EQ(odd2->jobs.size(), 1u);
  EXPECT_EQ(odd2->jobs[0].id, ids[1]);
  EXPECT_TRUE(odd2->next_cursor.empty());
  std::set<std::string> none;
  auto nothing = svc_->ListJobs({.visible = &none});
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(nothing->jobs.empty());
  auto outside = svc_->ListJobs({.project = "even", .visible = &visible});
  ASSERT_TRUE(outside.ok());
  EXPECT_TRUE(outside->jobs.empty());
  for (const char* bad : {"x", "j-3", "-1", "0", "99999999999999999999"}) {
    auto r = svc_->ListJobs({.limit = 2, .cursor = bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

TEST(HttpRoutes, EveryRouteIsDocumentedAndEveryDocumentedRouteIsServed) {
  char tmpl[] = "/tmp/fastgpu-routes-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  FakeClock clock;
  auto store = std::move(store::OpenSqliteStore(dir + "/db")).value();
  auto svc = std::move(Service::Create(*store, clock, {})).value();
  auto accounts = std::move(auth::AccountService::Create(*store, clock, nullptr)).value();
  auto http = std::make_unique<HttpServer>(*svc, *accounts, *store, clock, HttpOptions{});
  std::set<std::string> served(http->RegisteredRoutes().begin(), http->RegisteredRoutes().end());
  std::set<std::string> table;
  for (const auto& r : Routes()) table.insert(r.method + " " + r.path);
  for (const auto& r : AgentRoutes()) table.insert(r.method + " " + r.path);
  EXPECT_EQ(served, table);
  std::string doc = OpenApiJson();
  for (const auto& r : Routes()) EXPECT_NE(doc.find("\"" + r.path + "\""), std::string::npos) << r.path;
  http.reset();  // it holds the service (and listens to its changes): it goes first
  svc.reset();
  store.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fastgpu::server

namespace fastgpu::server {
namespace {

TEST_F(ServiceTest, ReportJobsRecordsStartsAndExitsOfABatchTogetherAndSkipsStaleOnes) {
  ASSERT_TRUE(svc_->RegisterNode(Node(4)).ok());
  auto a = svc_->Submit(Spec(1), "alice");
  auto b = svc_->Submit(Spec(1), "alice");
  ASSERT_TRUE(a.ok() && b.ok());
  svc_->ScheduleOnce();
  ASSERT_EQ(Commands().size(), 2u);
  auto report = [&](const std::string& id, agent::JobReport::Kind kind, int attempt, std::optional<int> code) {
    agent::JobReport r;
    r.kind = kind;
    r.job_id = id;
    r.attempt = attempt;
    r.node = "n1";
    r.pid = 4321;
    r.exit_code = code;
    return r;
  };
  using K = agent::JobReport::Kind;
  const std::vector<agent::JobReport> batch = {
      report(a->id, K::kStarted, 1, {}), report(a->id, K::kExited, 1, 0), report(b->id, K::kStarted, 1, {}),
      report(b->id, K::kExited, 7, 0),      // an attempt b never had: ignored
      report("j-999999", K::kExited, 1, 0)  // unknown job: ignored
  };
  ASSERT_TRUE(svc_->ReportJobs(batch).ok());
  EXPECT_EQ(State(a->id), JobState::kSucceeded);
  EXPECT_EQ(State(b->id), JobState::kRunning);
  auto events = svc_->Events(a->id);
  ASSERT_TRUE(events.ok());
  ASSERT_GE(events->size(), 2u);
  EXPECT_EQ((*events)[events->size() - 2].to, "RUNNING");
  EXPECT_EQ(events->back().to, "SUCCEEDED");
  // The same batch again (the agent retries when it got no answer): nothing changes.
  const size_t before = events->size();
  ASSERT_TRUE(svc_->ReportJobs(batch).ok());
  EXPECT_EQ(svc_->Events(a->id)->size(), before);
  EXPECT_EQ(State(b->id), JobState::kRunning);
}

}  // namespace
}  // namespace fastgpu::server
