// Reservations kept by the service (validation, records across restarts), runtime predictions from history,
// expected start times, deadline warnings and begin times, on a real SQLite store with a fake clock.
#include <gtest/gtest.h>

#include "server/service.h"
#include "service_fixture.h"

namespace fastgpu::server {
namespace {

using api::JobState;

constexpr int64_t kHour = 3'600'000;

class ReservationServiceTest : public ServiceFixture {
 protected:
  api::Reservation Res(const std::string& project, int gpus, UnixMillis start, UnixMillis end,
                       const std::string& type = "") {
    api::Reservation r;
    r.project = project;
    r.gpus = gpus;
    r.gpu_type = type;
    r.start_at = start;
    r.end_at = end;
    return r;
  }
  api::JobSpec Spec(int gpus, const std::string& project = "default", int64_t limit_s = 0) {
    api::JobSpec s;
    s.command = {"train.sh"};
    s.name = "train";
    s.project = project;
    s.gpus_milli = gpus * 1000;
    s.runtime_limit_s = limit_s;
    return s;
  }
  // Starts every queued job the scheduler places and reports it running.
  void StartPlaced(const std::string& node) {
    svc_->ScheduleOnce();
    auto cmds = svc_->WaitCommands(node, std::chrono::milliseconds(0));
    ASSERT_TRUE(cmds.ok());
    for (const auto& c : *cmds) {
      if (c.kind != agent::JobCommand::Kind::kStart) continue;
      agent::JobReport r;
      r.kind = agent::JobReport::Kind::kStarted;
      r.job_id = c.job.id;
      r.attempt = c.job.attempt;
      r.node = node;
      r.pid = 100;
      ASSERT_TRUE(svc_->ReportJob(r).ok());
    }
  }
  void Exit(const std::string& id, const std::string& node, int code) {
    agent::JobReport r;
    r.kind = agent::JobReport::Kind::kExited;
    r.job_id = id;
    r.attempt = svc_->GetJob(id)->attempt;
    r.node = node;
    r.exit_code = code;
    ASSERT_TRUE(svc_->ReportJob(r).ok());
  }
  UnixMillis Now() { return clock_.NowMillis(); }
};

TEST_F(ReservationServiceTest, CreateChecksTheWindowTheGpusAndOverlaps) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 4)).ok());
  const UnixMillis now = Now();
  auto r = svc_->CreateReservation(Res("ml", 2, now + 2 * kHour, now + kHour), "user:admin");
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("end after it starts"), std::string::npos) << r.status().message();
  r = svc_->CreateReservation(Res("ml", 2, now - 2 * kHour, now - kHour), "user:admin");
  EXPECT_NE(r.status().message().find("already passed"), std::string::npos) << r.status().message();
  r = svc_->CreateReservation(Res("ml", 0, now, now + kHour), "user:admin");
  EXPECT_FALSE(r.ok());
  r = svc_->CreateReservation(Res("ml", 5, now, now + kHour), "user:admin");
  EXPECT_EQ(r.status().code(), ErrorCode::kUnschedulable);
  EXPECT_NE(r.status().message().find("the cluster has 4"), std::string::npos) << r.status().message();
  r = svc_->CreateReservation(Res("ml", 1, now, now + kHour, "H100-80GB"), "user:admin");
  EXPECT_NE(r.status().message().find("no H100-80GB GPUs"), std::string::npos) << r.status().message();

  auto first = svc_->CreateReservation(Res("ml", 3, now + kHour, now + 3 * kHour, "A100-80GB"), "user:admin");
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->id, "r-1");
  EXPECT_EQ(first->created_by, "user:admin");
  // 3 + 2 > 4 while both are open: refused, naming the other one.
  r = svc_->CreateReservation(Res("cv", 2, now + 2 * kHour, now + 4 * kHour), "user:admin");
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("r-1 (project ml"), std::string::npos) << r.status().message();
  // 3 + 1 fits; so does a window that starts when the first one ends.
  EXPECT_TRUE(svc_->CreateReservation(Res("cv", 1, now + 2 * kHour, now + 4 * kHour), "user:admin").ok());
  auto third = svc_->CreateReservation(Res("cv", 4, now + 4 * kHour, now + 5 * kHour), "user:admin");
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_EQ(third->id, "r-3");
  EXPECT_EQ(svc_->ListReservations().size(), 3u);
  std::set<std::string> only_ml = {"ml"};
  ASSERT_EQ(svc_->ListReservations(&only_ml).size(), 1u);
}

TEST_F(ReservationServiceTest, RecordsSurviveRestartsAndIdsAreNeverReused) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 4)).ok());
  const UnixMillis now = Now();
  ASSERT_TRUE(svc_->CreateReservation(Res("ml", 2, now, now + kHour), "user:admin").ok());
  ASSERT_TRUE(svc_->CreateReservation(Res("cv", 2, now, now + kHour), "user:admin").ok());
  Open();
  ASSERT_EQ(svc_->ListReservations().size(), 2u);
  EXPECT_TRUE(svc_->DeleteReservation("r-2").ok());
  EXPECT_EQ(svc_->DeleteReservation("r-2").code(), ErrorCode::kNotFound);
  Open();
  auto left = svc_->ListReservations();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id, "r-1");
  // The nodes known from the store count before their agents register again.
  auto next = svc_->CreateReservation(Res("cv", 2, now, now + kHour), "user:admin");
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->id, "r-3");
}

TEST_F(ReservationServiceTest, ExpectedStartRespectsReservationsOfOtherProjects) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 4)).ok());
  const UnixMillis now = Now();
  ASSERT_TRUE(svc_->CreateReservation(Res("res", 4, now + kHour, now + 3 * kHour), "user:admin").ok());
  auto other = svc_->Submit(Spec(1, "x"), "bob");  // no runtime limit: would run into the window
  ASSERT_TRUE(other.ok()) << other.status().ToString();
  auto mine = svc_->Submit(Spec(4, "res", 1800), "alice");
  ASSERT_TRUE(mine.ok());
  svc_->EstimateStartsOnce();
  EXPECT_EQ(svc_->GetJob(other->id)->expected_start_at, now + 3 * kHour);
  EXPECT_EQ(svc_->GetJob(mine->id)->expected_start_at, now);
  // The API shows it too (ListJobs).
  auto page = svc_->ListJobs({});
  ASSERT_TRUE(page.ok());
  for (const auto& j : page->jobs) EXPECT_GT(j.expected_start_at, 0) << j.id;
}

TEST_F(ReservationServiceTest, BeginTimeHoldsTheJobUntilItsTime) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1)).ok());
  auto spec = Spec(1);
  spec.begin_at = Now() + kHour;
  auto job = svc_->Submit(spec, "alice");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  EXPECT_NE(svc_->GetJob(job->id)->reason.find("not before its begin time"), std::string::npos);
  svc_->ScheduleOnce();
  auto got = svc_->GetJob(job->id);
  EXPECT_EQ(got->state, JobState::kQueued);
  EXPECT_NE(got->reason.find("start window opens at " + FormatTimestamp(spec.begin_at)), std::string::npos)
      << got->reason;
  svc_->EstimateStartsOnce();
  EXPECT_EQ(svc_->GetJob(job->id)->expected_start_at, spec.begin_at);
  clock_.Advance(std::chrono::minutes(59));
  svc_->ScheduleOnce();
  EXPECT_EQ(svc_->GetJob(job->id)->state, JobState::kQueued);
  clock_.Advance(std::chrono::minutes(1));
  svc_->ScheduleOnce();
  EXPECT_EQ(svc_->GetJob(job->id)->state, JobState::kScheduled);
}

TEST_F(ReservationServiceTest, RuntimesLearntFromSucceededJobsPredictWhenGpusFreeAlsoAfterARestart) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1)).ok());
  // Two runs of "train" in project p: 10 and 20 minutes (a failed run does not count).
  for (int minutes : {10, 20, 1}) {
    auto j = svc_->Submit(Spec(1, "p"), "alice");
    ASSERT_TRUE(j.ok());
    StartPlaced("n1");
    clock_.Advance(std::chrono::minutes(minutes));
    Exit(j->id, "n1", minutes == 1 ? 1 : 0);
  }
  // The same job again, running without a limit: expected to take 15 minutes.
  auto running = svc_->Submit(Spec(1, "p"), "alice");
  StartPlaced("n1");
  const UnixMillis started = svc_->GetJob(running->id)->started_at;
  // Same user and name in another project: no history, so it holds the GPU for good once it starts, and the job
  // behind it cannot be estimated.
  auto other_project = svc_->Submit(Spec(1, "q"), "alice");
  auto behind = svc_->Submit(Spec(1, "p"), "alice");
  auto check = [&] {
    svc_->EstimateStartsOnce();
    EXPECT_EQ(svc_->GetJob(other_project->id)->expected_start_at, started + 15 * 60'000);
    auto unknown = svc_->GetJob(behind->id);
    EXPECT_EQ(unknown->expected_start_at, 0);
    EXPECT_NE(unknown->expected_start_note.find("no runtime limit or prediction"), std::string::npos)
        << unknown->expected_start_note;
  };
  check();
  // A restart learns the same from the store.
  Open();
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1, {running->id})).ok());
  check();
}

TEST_F(ReservationServiceTest, DeadlineWarningWhenTheExpectedStartMakesItUnlikely) {
  ASSERT_TRUE(svc_->RegisterNode(Node("n1", 1)).ok());
  auto first = svc_->Submit(Spec(1, "p", 2 * 3600), "alice");
  StartPlaced("n1");
  auto spec = Spec(1, "p", 3600);
  spec.deadline_at = Now() + 150 * 60'000;  // 2 h 30 min: 1 h would fit now, not after the 2 h job
  auto late = svc_->Submit(spec, "alice");
  ASSERT_TRUE(late.ok()) << late.status().ToString();
  spec.deadline_at = Now() + 4 * kHour;
  auto fine = svc_->Submit(spec, "alice");
  svc_->EstimateStartsOnce();
  auto got = svc_->GetJob(late->id);
  EXPECT_EQ(got->expected_start_at, Now() + 2 * kHour);
  EXPECT_EQ(got->deadline_warning.rfind("deadline unlikely: ", 0), 0u) << got->deadline_warning;
  EXPECT_NE(got->deadline_warning.find("(its runtime limit)"), std::string::npos) << got->deadline_warning;
  EXPECT_EQ(svc_->GetJob(fine->id)->deadline_warning, "");
  (void)first;
}

}  // namespace
}  // namespace fastgpu::server
