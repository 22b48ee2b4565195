// Job arrays in the service (fake clock, a node played by the test): the limit holds, the next task starts when one
// ends, the array's state is derived from its tasks, cancel and restart.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "service_fixture.h"

namespace fastgpu::server {
namespace {

using agent::JobCommand;
using api::JobState;

class ArrayServiceTest : public ServiceFixture {
 protected:
  api::JobSpec Spec(const std::string& array) {
    api::JobSpec s;
    s.command = {"sleep", "100"};
    s.gpus_milli = 1000;
    s.array = array;
    return s;
  }
  // The start commands queued for node b since the last call.
  std::vector<JobCommand> Starts() {
    auto c = svc_->PollCommands("b", acked_, true);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    std::vector<JobCommand> out;
    if (!c.ok()) return out;
    for (const auto& cmd : *c) {
      acked_ = std::max(acked_, cmd.id);
      if (cmd.kind == JobCommand::Kind::kStart) out.push_back(cmd);
    }
    return out;
  }
  void Report(const api::Job& j, agent::JobReport::Kind kind, std::optional<int> code = {},
              std::optional<int> sig = {}) {
    agent::JobReport r;
    r.kind = kind;
    r.job_id = j.id;
    r.attempt = j.attempt;
    r.node = "b";
    r.pid = 4242;
    r.exit_code = code;
    r.signal = sig;
    ASSERT_TRUE(svc_->ReportJobs({r}).ok());
  }
  void Round() {
    svc_->ResolveArraysOnce();
    svc_->ScheduleOnce();
  }
  JobState State(const std::string& id) { return svc_->GetJob(id)->state; }
  uint64_t acked_ = 0;
};

TEST_F(ArrayServiceTest, AtMostTheLimitRunAndTheNextStartsWhenOneEndsThenTheArraySucceeds) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 4)).ok());
  auto array = svc_->Submit(Spec("0-5%2"), "alice");
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  ASSERT_EQ(array->array_tasks.size(), 6u);
  const std::string id = array->id;
  EXPECT_EQ(array->array_tasks[0].id, "j-" + std::to_string(JobNumber(id) + 1));
  EXPECT_EQ(array->array_tasks[5].index, 5);
  Round();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u) << "4 GPUs free, but %2";
  EXPECT_EQ(starts[0].job.array_index, 0);
  EXPECT_EQ(starts[1].job.array_index, 1);
  EXPECT_EQ(starts[0].job.spec.env.at("FASTGPU_ARRAY_INDEX"), "0");
  EXPECT_EQ(starts[1].job.spec.env.at("FASTGPU_ARRAY_INDEX"), "1");
  EXPECT_EQ(starts[0].job.spec.env.at("FASTGPU_ARRAY_JOB_ID"), id);
  EXPECT_EQ(starts[0].job.spec.env.at("FASTGPU_ARRAY_COUNT"), "6");
  const std::string third = array->array_tasks[2].id;
  EXPECT_EQ(svc_->GetJob(third)->reason, "waiting: array " + id + " runs at most 2 tasks at once");
  EXPECT_EQ(State(id), JobState::kQueued);
  svc_->ResolveArraysOnce();  // the reason counts as of the last pass
  EXPECT_EQ(svc_->GetJob(id)->reason, "array of 6 tasks: 2 running, 4 queued, 0 ended");
  // Listed as one row unless the tasks are asked for.
  JobListQuery q;
  q.no_array_tasks = true;
  auto page = svc_->ListJobs(q);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->jobs.size(), 1u);
  EXPECT_EQ(page->jobs[0].id, id);
  EXPECT_EQ(svc_->ListJobs(JobListQuery{})->jobs.size(), 7u);

  std::set<int> done;
  std::vector<JobCommand> running = starts;
  for (auto& s : running) Report(s.job, agent::JobReport::Kind::kStarted);
  int max_running = 2;
  while (!running.empty()) {
    // One ends: exactly one more starts (while any is left).
    JobCommand first = running.front();
    running.erase(running.begin());
    Report(svc_->GetJob(first.job.id).value(), agent::JobReport::Kind::kExited, 0);
    done.insert(first.job.array_index);
    Round();
    auto next = Starts();
    EXPECT_LE(next.size(), 1u);
    for (auto& s : next) {
      Report(s.job, agent::JobReport::Kind::kStarted);
      running.push_back(s);
    }
    max_running = std::max<int>(max_running, static_cast<int>(running.size()));
    if (done.size() == 3u) {
      Open();  // a restart in the middle: the limit still holds
      ASSERT_TRUE(svc_->RegisterNode(Node("b", 4, {running[0].job.id, running[1].job.id})).ok());
      acked_ = 0;
      Round();
      EXPECT_TRUE(Starts().empty());
    }
  }
  EXPECT_EQ(max_running, 2);
  EXPECT_EQ(done.size(), 6u);
  svc_->ResolveArraysOnce();
  auto ended = svc_->GetJob(id);
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->state, JobState::kSucceeded);
  EXPECT_EQ(ended->reason, "all 6 tasks succeeded");
  for (const auto& t : ended->array_tasks) EXPECT_EQ(t.state, JobState::kSucceeded) << t.id;
}

TEST_F(ArrayServiceTest, AFailedTaskFailsTheArrayOnceAllHaveEnded) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 4)).ok());
  auto array = svc_->Submit(Spec("1,3,5"), "alice");
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  Round();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 3u) << "no limit";
  for (auto& s : starts) Report(s.job, agent::JobReport::Kind::kStarted);
  Report(svc_->GetJob(starts[1].job.id).value(), agent::JobReport::Kind::kExited, 3);
  svc_->ResolveArraysOnce();
  EXPECT_EQ(State(array->id), JobState::kQueued) << "two tasks still run";
  for (int i : {0, 2}) Report(svc_->GetJob(starts[i].job.id).value(), agent::JobReport::Kind::kExited, 0);
  svc_->ResolveArraysOnce();
  auto ended = svc_->GetJob(array->id);
  EXPECT_EQ(ended->state, JobState::kFailed);
  EXPECT_EQ(ended->exit_code, 3);
  EXPECT_NE(ended->reason.find("1 of 3 tasks failed (first: task 3, " + starts[1].job.id), std::string::npos)
      << ended->reason;
}

TEST_F(ArrayServiceTest, CancellingTheArrayCancelsEveryTaskNotEnded) {
  ASSERT_TRUE(svc_->RegisterNode(Node("b", 4)).ok());
  auto array = svc_->Submit(Spec("0-9%2"), "alice");
  ASSERT_TRUE(array.ok()) << array.status().ToString();
  Round();
  auto starts = Starts();
  ASSERT_EQ(starts.size(), 2u);
  for (auto& s : starts) Report(s.job, agent::JobReport::Kind::kStarted);
  auto cancelled = svc_->Cancel(array->id, "user:alice");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  EXPECT_EQ(cancelled->state, JobState::kQueued) << "two tasks are being stopped";
  for (size_t i = 2; i < 10; ++i) EXPECT_EQ(State(array->array_tasks[i].id), JobState::kCancelled);
  // The running ones got stop commands; they end.
  for (auto& s : starts) Report(svc_->GetJob(s.job.id).value(), agent::JobReport::Kind::kExited, {}, 15);
  Round();
  EXPECT_TRUE(Starts().empty());
  auto ended = svc_->GetJob(array->id);
  EXPECT_EQ(ended->state, JobState::kCancelled);
  EXPECT_EQ(ended->reason, "10 of 10 tasks cancelled, 0 succeeded");
  EXPECT_EQ(svc_->Cancel(array->id, "user:alice").status().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(ArrayServiceTest, BadArraysAreRefusedWithTheReason) {
  for (const auto& [array, words] : std::vector<std::pair<std::string, std::string>>{
           {"5-1", "ends before it starts"},
           {"0-10000", "more than 10000 tasks"},
           {"0-9%0", "at least 1"},
           {"a-b", "is not an index"},
           {"", ""}}) {
    if (array.empty()) continue;
    auto r = svc_->Submit(Spec(array), "alice");
    ASSERT_FALSE(r.ok()) << array;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(words), std::string::npos) << r.status().message();
  }
  auto big = api::ParseArraySpec("0-9999:3%8");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->indices.size(), 3334u);
  EXPECT_EQ(big->limit, 8);
  EXPECT_TRUE(svc_->ListJobs(JobListQuery{})->jobs.empty()) << "nothing created";
}

}  // namespace
}  // namespace fastgpu::server
