// Service (control-plane core) with a real SQLite store, the real scheduler and a fake clock;
// the test plays the agent through the ControlPlane interface.
#include "server/service.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "server/http.h"

namespace fastgpu::server {
namespace {

using api::JobState;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-svc-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    Open();
  }
  void TearDown() override {
    svc_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    svc_.reset();
    store_.reset();
    store_ = std::move(store::OpenSqliteStore(dir_ + "/db.sqlite")).value();
    ServiceOptions o;
    svc_ = std::move(Service::Create(*store_, clock_, o)).value();
  }
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

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Service> svc_;
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
  EXPECT_TRUE(svc_->ListJobs({}).empty());
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
  EXPECT_EQ(svc_->ListJobs({}).size(), 1u);
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

TEST(HttpRoutes, EveryRouteIsDocumentedAndEveryDocumentedRouteIsServed) {
  char tmpl[] = "/tmp/fastgpu-routes-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  FakeClock clock;
  auto store = std::move(store::OpenSqliteStore(dir + "/db")).value();
  auto svc = std::move(Service::Create(*store, clock, {})).value();
  auto accounts = std::move(auth::AccountService::Create(*store, clock, nullptr)).value();
  HttpServer http(*svc, *accounts, *store, clock, {});
  std::set<std::string> served(http.RegisteredRoutes().begin(), http.RegisteredRoutes().end());
  std::set<std::string> table;
  for (const auto& r : Routes()) table.insert(r.method + " " + r.path);
  EXPECT_EQ(served, table);
  std::string doc = OpenApiJson();
  for (const auto& r : Routes()) EXPECT_NE(doc.find("\"" + r.path + "\""), std::string::npos) << r.path;
  svc.reset();
  store.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fastgpu::server
