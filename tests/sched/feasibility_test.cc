#include <gtest/gtest.h>

#include "builders.h"

namespace fastgpu::sched {
namespace {

using testing::ClusterBuilder;
using testing::FindPending;
using testing::JobBuilder;
using testing::kNow;
using testing::Make;

ClusterSnapshot TwoTypes() {
  ClusterBuilder c;
  c.Node("a", 8, "A100-80GB").Node("h", 4, "H100-80GB");
  return c.Build();
}

TEST(Feasibility, TooManyGpusOnOneNode) {
  Status st = CheckFeasible(TwoTypes(), JobBuilder("j").Gpus(16));
  EXPECT_EQ(st.code(), ErrorCode::kUnschedulable);
  EXPECT_EQ(st.message(), "needs 16 GPUs on one node; the largest node has 8 A100-80GB");
}

TEST(Feasibility, UnknownType) {
  Status st = CheckFeasible(TwoTypes(), JobBuilder("j").Type("X"));
  EXPECT_EQ(st.code(), ErrorCode::kUnschedulable);
  EXPECT_EQ(st.message(), "no GPU of type 'X' in the cluster (types: A100-80GB, H100-80GB)");
}

TEST(Feasibility, TypedTooMany) {
  Status st = CheckFeasible(TwoTypes(), JobBuilder("j").Gpus(8).Type("H100-80GB"));
  EXPECT_EQ(st.message(), "needs 8 GPUs of type H100-80GB on one node; the largest node has 4 H100-80GB");
}

TEST(Feasibility, MemoryTooLarge) {
  Status st = CheckFeasible(TwoTypes(), JobBuilder("j").Memory(100000));
  EXPECT_EQ(st.code(), ErrorCode::kUnschedulable);
  EXPECT_EQ(st.message(), "needs a GPU with at least 100000 MiB of memory; the largest has 81920 MiB");
}

TEST(Feasibility, GangNeedsEnoughNodes) {
  Status st = CheckFeasible(TwoTypes(), JobBuilder("j").Gpus(8).Nodes(2));
  EXPECT_EQ(st.message(), "needs 2 nodes with 8 GPUs each; the cluster has 1 such node");
  EXPECT_TRUE(CheckFeasible(TwoTypes(), JobBuilder("j").Gpus(4).Nodes(2)).ok());
}

TEST(Feasibility, InvalidShapes) {
  EXPECT_EQ(CheckFeasible(TwoTypes(), JobBuilder("j").Gpus(0)).code(), ErrorCode::kInvalidArgument);
  JobRequest bad = JobBuilder("j").Fraction(500, 0);
  bad.gpus = 2;
  EXPECT_EQ(CheckFeasible(TwoTypes(), bad).code(), ErrorCode::kInvalidArgument);
}

TEST(Feasibility, CountsUnhealthyNodes) {
  ClusterBuilder c;
  c.Node("a", 8);
  c.node("a").healthy = false;
  EXPECT_TRUE(CheckFeasible(c.Build(), JobBuilder("j").Gpus(8)).ok());
}

TEST(Feasibility, NeverFitsReachesPending) {
  std::vector<JobRequest> q = {JobBuilder("j").Gpus(16)};
  Decisions d = Make("priority")->Schedule(TwoTypes(), q);
  const Pending* p = FindPending(d, "j");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->never_fits);
  EXPECT_EQ(p->reason, "needs 16 GPUs on one node; the largest node has 8 A100-80GB");
}

TEST(Feasibility, TypedPendingReason) {
  ClusterBuilder c;
  c.Node("a", 8, "A100-80GB");
  c.Run("r", "a", {0, 1, 2, 3, 4, 5});
  std::vector<JobRequest> q = {JobBuilder("j").Gpus(4).Type("A100-80GB")};
  Decisions d = Make("fifo")->Schedule(c.Build(), q);
  ASSERT_NE(FindPending(d, "j"), nullptr);
  EXPECT_EQ(FindPending(d, "j")->reason, "waiting: needs 4 GPUs of type A100-80GB on one node; the most free on a node is 2");
}

TEST(Deadline, RejectsJobsThatCannotFinishInTime) {
  JobRequest j = JobBuilder("j").Limit(3600).FinishBefore(kNow + 1800 * 1000);
  Status st = CheckDeadline(j, kNow);
  EXPECT_EQ(st.code(), ErrorCode::kUnschedulable);
  EXPECT_NE(st.message().find("cannot finish before"), std::string::npos) << st.message();
  EXPECT_TRUE(CheckDeadline(JobBuilder("k").Limit(600).FinishBefore(kNow + 1800 * 1000), kNow).ok());
  EXPECT_TRUE(CheckDeadline(JobBuilder("n").FinishBefore(kNow + 1), kNow).ok());  // no estimate

  std::vector<JobRequest> q = {j};
  Decisions d = Make("priority")->Schedule(TwoTypes(), q);
  ASSERT_NE(FindPending(d, "j"), nullptr);
  EXPECT_TRUE(FindPending(d, "j")->never_fits);
}

TEST(TimeWindow, NotStartedBeforeStartAfter) {
  std::vector<JobRequest> q = {JobBuilder("later").StartAfter(kNow + 60'000), JobBuilder("now").Submitted(kNow)};
  Decisions d = Make("fifo")->Schedule(TwoTypes(), q);
  ASSERT_NE(FindPending(d, "later"), nullptr);
  EXPECT_EQ(FindPending(d, "later")->reason.rfind("waiting: start window opens at ", 0), 0u);
  EXPECT_NE(testing::FindBind(d, "now"), nullptr);  // a future window does not block fifo
}

TEST(MakeScheduler, RejectsUnknownNames) {
  auto s = MakeScheduler("nope", "best-fit");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("fifo"), std::string::npos);
  EXPECT_FALSE(MakeScheduler("fifo", "diagonal").ok());
  for (const char* p : kPolicyNames) {
    for (const char* pl : kPlacementNames) EXPECT_TRUE(MakeScheduler(p, pl).ok()) << p << " " << pl;
  }
}

}  // namespace
}  // namespace fastgpu::sched
