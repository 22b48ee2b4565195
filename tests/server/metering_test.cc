// Service with projects: metering written with the job's end (exactly once, RUNNING time only),
// quotas and budgets enforced at scheduling, hard budgets stopping running jobs.
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>
#include <stdlib.h>

#include <filesystem>

#include "server/service.h"

namespace fastgpu::server {
namespace {

using api::JobState;
using std::chrono::minutes;

class FakeDirectory : public ProjectDirectory {
 public:
  std::optional<ProjectRules> Rules(const std::string& project) const override {
    auto it = rules.find(project);
    if (it == rules.end()) return std::nullopt;
    return it->second;
  }
  Result<std::map<std::string, std::string>> SecretEnv(const std::string& project,
                                                       const std::vector<std::string>& names) const override {
    std::map<std::string, std::string> out;
    for (const auto& n : names) {
      if (n != "TOKEN") return NotFound("secret " + n + " does not exist in project " + project);
      out[n] = "value";
    }
    return out;
  }
  std::map<std::string, ProjectRules> rules;
};

class MeteringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-meter-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    clock_.Set(ParseTimestamp("2026-11-20T10:00:00Z").value());
    store_ = std::move(store::OpenSqliteStore(dir_ + "/db.sqlite")).value();
    svc_ = std::move(Service::Create(*store_, clock_, {})).value();
    dir_rules_.rules["ml"] = {};
    svc_->SetProjectDirectory(&dir_rules_);
    ASSERT_TRUE(svc_->SetBilling(billing::PriceCatalog::Defaults(), {}).ok());
    agent::NodeRegistration reg;
    reg.node.name = "n1";
    for (int i = 0; i < 4; ++i) {
      api::Gpu g;
      g.uuid = "SIM-" + std::to_string(i);
      g.index = i;
      g.type = "A100-80GB";
      g.memory_total_mib = 81920;
      reg.gpus.push_back(g);
    }
    ASSERT_TRUE(svc_->RegisterNode(reg).ok());
  }
  void TearDown() override {
    svc_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  api::Job Submit(int gpus, const std::string& type = "") {
    api::JobSpec s;
    s.command = {"true"};
    s.gpus_milli = gpus * 1000;
    s.gpu_type = type;
    s.project = "ml";
    auto j = svc_->Submit(s, "alice");
    EXPECT_TRUE(j.ok()) << j.status().ToString();
    return j.ok() ? *j : api::Job{};
  }
  // Schedules, takes the start commands and reports the jobs started.
  std::vector<agent::JobCommand> StartAll() {
    svc_->ScheduleOnce();
    auto cmds = svc_->WaitCommands("n1", std::chrono::milliseconds(0)).value();
    for (const auto& c : cmds)
      if (c.kind == agent::JobCommand::Kind::kStart) Report(c.job, agent::JobReport::Kind::kStarted);
    return cmds;
  }
  void Report(const api::Job& j, agent::JobReport::Kind kind, std::optional<int> code = {}) {
    agent::JobReport r;
    r.kind = kind;
    r.job_id = j.id;
    r.attempt = j.attempt;
    r.node = "n1";
    r.pid = 1234;
    r.exit_code = code;
    ASSERT_TRUE(svc_->ReportJob(r).ok());
  }

  std::string dir_;
  FakeClock clock_;
  FakeDirectory dir_rules_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Service> svc_;
};

TEST_F(MeteringTest, RunningTimeIsBilledOnceQueuedTimeIsNot) {
  api::Job job = Submit(2);
  clock_.Advance(minutes(60));  // an hour in the queue: not billed
  auto cmds = StartAll();
  ASSERT_EQ(cmds.size(), 1u);
  clock_.Advance(minutes(30));
  Report(cmds[0].job, agent::JobReport::Kind::kExited, 0);
  Report(cmds[0].job, agent::JobReport::Kind::kExited, 0);  // a repeated report changes nothing
  auto usage = store_->ListUsage({}).value();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].key, job.id + "/1");
  EXPECT_EQ(usage[0].end_ms - usage[0].start_ms, 30 * 60'000);
  EXPECT_EQ(usage[0].gpu_type, "A100-80GB");
  auto ledger = store_->ListLedger({.project = "ml"}).value();
  ASSERT_EQ(ledger.size(), 1u);
  EXPECT_EQ(ledger[0].amount_micro, 2'500'000);  // 2 GPUs x 0.5 h x $2.50
  auto spend = svc_->SpendThisMonth("ml");
  EXPECT_EQ((spend[{"ml", "A100-80GB"}].cost_micro), 2'500'000);
}

// Each attempt is billed for its own running time: a preempted and resumed job's usage is exactly its two running
// intervals (the checkpoint grace included, the time it waited in the queue in between not).
TEST_F(MeteringTest, APreemptedAndResumedJobIsBilledForItsRunningIntervalsOnly) {
  api::JobSpec low_spec;
  low_spec.command = {"train"};
  low_spec.gpus_milli = 4000;
  low_spec.project = "ml";
  low_spec.priority = 10;
  low_spec.preemptible = true;
  api::Job low = svc_->Submit(low_spec, "alice").value();
  const UnixMillis t0 = clock_.NowMillis();
  ASSERT_EQ(StartAll().size(), 1u);
  clock_.Advance(minutes(10));
  api::JobSpec high_spec = low_spec;
  high_spec.priority = 90;
  high_spec.preemptible = false;
  api::Job high = svc_->Submit(high_spec, "bob").value();
  svc_->ScheduleOnce();
  auto stop = svc_->WaitCommands("n1", std::chrono::milliseconds(0)).value();
  ASSERT_EQ(stop.size(), 1u);
  ASSERT_EQ(stop[0].kind, agent::JobCommand::Kind::kStop);
  ASSERT_EQ(stop[0].checkpoint_signal, 10);
  clock_.Advance(std::chrono::seconds(20));  // saves its work within the grace
  Report(svc_->GetJob(low.id).value(), agent::JobReport::Kind::kExited, 0);
  ASSERT_EQ(svc_->GetJob(low.id)->state, JobState::kQueued);
  const UnixMillis t1 = clock_.NowMillis();
  auto high_start = StartAll();
  ASSERT_EQ(high_start.size(), 1u);
  clock_.Advance(minutes(30));  // low waits in the queue: not billed
  Report(high_start[0].job, agent::JobReport::Kind::kExited, 0);
  const UnixMillis t2 = clock_.NowMillis();
  auto resumed = StartAll();
  ASSERT_EQ(resumed.size(), 1u);
  ASSERT_EQ(resumed[0].job.id, low.id);
  clock_.Advance(minutes(15));
  Report(resumed[0].job, agent::JobReport::Kind::kExited, 0);
  const UnixMillis t3 = clock_.NowMillis();
  EXPECT_EQ(svc_->GetJob(low.id)->state, JobState::kSucceeded);

  std::vector<api::UsageSegment> mine;
  const auto usage = store_->ListUsage({}).value();
  for (const auto& u : usage)
    if (u.job_id == low.id) mine.push_back(u);
  ASSERT_EQ(mine.size(), 2u);
  std::sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.attempt < b.attempt; });
  EXPECT_EQ(mine[0].key, low.id + "/1");
  EXPECT_EQ(mine[0].start_ms, t0);
  EXPECT_EQ(mine[0].end_ms, t1);
  EXPECT_EQ(mine[1].key, low.id + "/2");
  EXPECT_EQ(mine[1].start_ms, t2);
  EXPECT_EQ(mine[1].end_ms, t3);
  EXPECT_EQ(mine[0].milli, 4000);
  // 4 GPUs x (10 min 20 s + 15 min) at $2.50 per GPU-hour.
  int64_t billed = 0;
  const auto ledger = store_->ListLedger({.project = "ml"}).value();
  for (const auto& e : ledger)
    if (e.kind == "usage" && e.job_id == low.id) billed += e.amount_micro;
  EXPECT_EQ(billed, int64_t{4} * 2'500'000 * (620 + 900) / 3600);
  (void)high;
}

TEST_F(MeteringTest, AnExitFoundAfterARestartIsBilledUntilTheProcessEnded) {
  Submit(1);
  auto cmds = StartAll();
  ASSERT_EQ(cmds.size(), 1u);
  const UnixMillis ended = clock_.NowMillis() + 3'600'000;
  clock_.Advance(minutes(8 * 60));  // the server was down for 7 of these 8 hours
  agent::JobReport r;
  r.kind = agent::JobReport::Kind::kExited;
  r.job_id = cmds[0].job.id;
  r.attempt = cmds[0].job.attempt;
  r.node = "n1";
  r.exit_code = 0;
  r.finished_at_ms = ended;
  ASSERT_TRUE(svc_->ReportJob(r).ok());
  auto usage = store_->ListUsage({}).value();
  ASSERT_EQ(usage.size(), 1u);
  EXPECT_EQ(usage[0].end_ms, ended);
  EXPECT_EQ(svc_->GetJob(r.job_id)->finished_at, ended);
  EXPECT_EQ(store_->ListLedger({}).value().at(0).amount_micro, 2'500'000);  // 1 GPU-hour
}

TEST_F(MeteringTest, RunningJobsCountInThisMonthsSpend) {
  Submit(1);
  StartAll();
  clock_.Advance(minutes(120));
  auto spend = svc_->SpendThisMonth("");
  EXPECT_EQ((spend[{"ml", "A100-80GB"}].cost_micro), 5'000'000);
  EXPECT_TRUE(store_->ListUsage({}).value().empty());  // written only when the run ends
}

TEST_F(MeteringTest, GpuQuotaByTypeHoldsJobsWithTheReason) {
  dir_rules_.rules["ml"].quota.max_gpus_milli["A100-80GB"] = 2000;
  api::Job a = Submit(2, "A100-80GB");
  StartAll();
  api::Job b = Submit(1, "A100-80GB");
  StartAll();
  EXPECT_EQ(svc_->GetJob(a.id)->state, JobState::kRunning);
  auto held = svc_->GetJob(b.id).value();
  EXPECT_EQ(held.state, JobState::kQueued);
  EXPECT_EQ(held.reason, "quota: project ml uses 2/2 A100-80GB");
  // A job asking for any type is checked against the type it is placed on.
  api::Job c = Submit(1);
  StartAll();
  EXPECT_EQ(svc_->GetJob(c.id)->state, JobState::kQueued);
  EXPECT_NE(svc_->GetJob(c.id)->reason.find("quota: project ml uses 2/2"), std::string::npos);
}

// A job larger than its project's GPU quota could never start: refused at submit with the reason (it used to wait
// in the queue forever, held with a misleading "uses 0/2").
TEST_F(MeteringTest, AJobLargerThanItsProjectsQuotaIsRefusedAtSubmit) {
  dir_rules_.rules["ml"].quota.max_gpus_milli["A100-80GB"] = 2000;
  dir_rules_.rules["ml"].quota.max_gpus_milli["*"] = 3000;
  for (const auto& [gpus, type, limit] : {std::tuple{3000, "A100-80GB", "2 A100-80GB GPUs"}, std::tuple{4000, "", "3 GPUs"}}) {
    api::JobSpec s;
    s.command = {"true"};
    s.project = "ml";
    s.gpus_milli = gpus;
    s.gpu_type = type;
    auto r = svc_->Submit(s, "alice");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), ErrorCode::kUnschedulable);
    EXPECT_NE(r.status().message().find(std::string("quota: project ml may hold at most ") + limit + " at once"),
              std::string::npos)
        << r.status().message();
    EXPECT_NE(r.status().message().find("it could never start"), std::string::npos);
  }
  EXPECT_TRUE(svc_->ListJobs({})->jobs.empty());
  EXPECT_TRUE(svc_->Submit([] {
                    api::JobSpec s;
                    s.command = {"true"};
                    s.project = "ml";
                    s.gpus_milli = 2000;
                    s.gpu_type = "A100-80GB";
                    return s;
                  }(), "alice")
                  .ok());
}

TEST_F(MeteringTest, QueuedJobLimitIsEnforcedAtSubmit) {
  dir_rules_.rules["ml"].quota.max_queued_jobs = 1;
  Submit(1);
  api::JobSpec s;
  s.command = {"true"};
  s.project = "ml";
  auto second = svc_->Submit(s, "alice");
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("1"), std::string::npos) << second.status().message();
  EXPECT_EQ(svc_->ListJobs({})->jobs.size(), 1u);
}

TEST_F(MeteringTest, GpuHourQuotaHoldsNewJobs) {
  dir_rules_.rules["ml"].quota.max_gpu_hours_per_month = 1;
  auto cmds = StartAll();
  Submit(1);
  cmds = StartAll();
  ASSERT_EQ(cmds.size(), 1u);
  clock_.Advance(minutes(61));
  Report(cmds[0].job, agent::JobReport::Kind::kExited, 0);
  api::Job next = Submit(1);
  StartAll();
  auto j = svc_->GetJob(next.id).value();
  EXPECT_EQ(j.state, JobState::kQueued);
  EXPECT_EQ(j.reason, "quota: project ml used 1/1 GPU-hours this month");
}

TEST_F(MeteringTest, BudgetWarnsThenHoldsThenStopsWhenHard) {
  dir_rules_.rules["ml"].budget = {.monthly_limit_micro = 10'000'000, .hard = true};
  Submit(2);
  auto cmds = StartAll();
  ASSERT_EQ(cmds.size(), 1u);
  clock_.Advance(minutes(100));  // 2 GPUs x 100 min x $2.50/h = $8.33: over 80 %
  svc_->EnforceOnce();
  auto audit = store_->ListAudit(0, 0).value();
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action, "budget.warning");
  EXPECT_EQ(audit[0].result, "warning");
  EXPECT_TRUE(svc_->WaitCommands("n1", std::chrono::milliseconds(0)).value().empty());  // still running
  clock_.Advance(minutes(20));  // $10.00: the limit
  svc_->EnforceOnce();
  auto stops = svc_->WaitCommands("n1", std::chrono::milliseconds(0)).value();
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(stops[0].kind, agent::JobCommand::Kind::kStop);
  EXPECT_NE(stops[0].reason.find("budget: project ml reached its hard monthly limit of $10.00"), std::string::npos);
  api::Job next = Submit(1);
  svc_->ScheduleOnce();
  auto held = svc_->GetJob(next.id).value();
  EXPECT_EQ(held.state, JobState::kQueued);
  EXPECT_EQ(held.reason, "budget: project ml spent $10.00 of $10.00 this month");
  EXPECT_EQ(store_->ListAudit(0, 0).value().size(), 2u);  // one warning per level and month
}

TEST_F(MeteringTest, SoftBudgetOnlyHoldsNewJobs) {
  dir_rules_.rules["ml"].budget = {.monthly_limit_micro = 1'000'000, .hard = false};
  Submit(1);
  StartAll();
  clock_.Advance(minutes(60));
  svc_->EnforceOnce();
  EXPECT_TRUE(svc_->WaitCommands("n1", std::chrono::milliseconds(0)).value().empty());
  api::Job next = Submit(1);
  svc_->ScheduleOnce();
  EXPECT_EQ(svc_->GetJob(next.id)->state, JobState::kQueued);
}

TEST_F(MeteringTest, SecretsGoInTheStartCommandOnly) {
  api::JobSpec s;
  s.command = {"true"};
  s.project = "ml";
  s.secrets = {"TOKEN"};
  auto job = svc_->Submit(s, "alice");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  auto cmds = StartAll();
  ASSERT_EQ(cmds.size(), 1u);
  EXPECT_EQ(cmds[0].secret_env.at("TOKEN"), "value");
  EXPECT_EQ(svc_->GetJob(job->id)->spec.env.count("TOKEN"), 0u);
  s.secrets = {"MISSING"};
  EXPECT_EQ(svc_->Submit(s, "alice").status().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fastgpu::server
