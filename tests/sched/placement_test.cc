#include <gtest/gtest.h>

#include "sched/framework/cluster_state.h"
#include "sched/framework/placement.h"
#include "builders.h"

namespace fastgpu::sched {
namespace {

using testing::ClusterBuilder;
using testing::FindBind;
using testing::FindPending;
using testing::JobBuilder;
using testing::Make;

TEST(Placement, BestFitPicksFullestNodeThatFits) {
  ClusterBuilder c;
  c.Node("a", 8).Node("b", 8).Node("c", 8);
  c.Run("r1", "b", {0, 1, 2, 3, 4});  // b has 3 free
  c.Run("r2", "c", {0, 1, 2, 3, 4, 5, 6});  // c has 1 free
  std::vector<JobRequest> q = {JobBuilder("j").Gpus(2)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].nodes[0].node, "b");
  EXPECT_EQ(d.binds[0].nodes[0].gpu_indices, (std::vector<int>{5, 6}));
}

TEST(Placement, SpreadPicksEmptiestNode) {
  ClusterBuilder c;
  c.Node("a", 8).Node("b", 8);
  c.Run("r1", "a", {0});
  std::vector<JobRequest> q = {JobBuilder("j").Gpus(2)};
  Decisions d = Make("priority", "spread")->Schedule(c.Build(), q);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].nodes[0].node, "b");
}

TEST(Placement, PrefersOneNvlinkGroup) {
  ClusterBuilder c;
  c.Node("a", 8, "A100-80GB", testing::k80G, /*two_groups=*/true);
  c.Run("r1", "a", {0});  // group 0 has 3 free, group 1 has 4 free
  std::vector<JobRequest> q = {JobBuilder("j").Gpus(3), JobBuilder("k").Gpus(4).Submitted(testing::kNow)};
  Decisions d = Make("fifo")->Schedule(c.Build(), q);
  ASSERT_EQ(d.binds.size(), 2u);
  EXPECT_EQ(FindBind(d, "j")->nodes[0].gpu_indices, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(FindBind(d, "k")->nodes[0].gpu_indices, (std::vector<int>{4, 5, 6, 7}));
}

TEST(Placement, FractionsPackOntoSharedGpuFirst) {
  ClusterBuilder c;
  c.Node("a", 2).Node("b", 2);
  c.Run("r1", "b", {1}, 50, false, testing::kNow - 1000, 500, 10000);
  std::vector<JobRequest> q = {JobBuilder("j").Fraction(250, 8192)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].nodes[0].node, "b");
  EXPECT_EQ(d.binds[0].nodes[0].gpu_indices, (std::vector<int>{1}));
  EXPECT_EQ(d.binds[0].milli_per_gpu, 250);
  EXPECT_EQ(d.binds[0].memory_mib_per_gpu, 8192);
}

TEST(Placement, FractionSkipsGpuWithoutEnoughMemory) {
  ClusterBuilder c;
  c.Node("a", 1).Node("b", 1);
  c.Run("r1", "a", {0}, 50, false, testing::kNow - 1000, 250, testing::k80G - 1000);
  std::vector<JobRequest> q = {JobBuilder("j").Fraction(250, 4096)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  ASSERT_EQ(d.binds.size(), 1u);
  EXPECT_EQ(d.binds[0].nodes[0].node, "b");
}

TEST(Placement, WholeGpuJobsNeverTakeSharedGpus) {
  ClusterBuilder c;
  c.Node("a", 2);
  c.Run("r1", "a", {0}, 50, false, testing::kNow - 1000, 100, 100);
  std::vector<JobRequest> q = {JobBuilder("j").Gpus(2)};
  Decisions d = Make("fifo")->Schedule(c.Build(), q);
  EXPECT_TRUE(d.binds.empty());
  const Pending* p = FindPending(d, "j");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->reason, "waiting: needs 2 GPUs on one node; the most free on a node is 1");
  EXPECT_FALSE(p->never_fits);
}

TEST(Placement, TypeAndMemoryConstraints) {
  ClusterBuilder c;
  c.Node("a", 4, "A100-40GB", 40960).Node("h", 4, "H100-80GB", testing::k80G);
  std::vector<JobRequest> q = {JobBuilder("typed").Gpus(1).Type("H100-80GB"),
                               JobBuilder("big").Gpus(1).Memory(60000).Submitted(testing::kNow)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  ASSERT_EQ(d.binds.size(), 2u);
  EXPECT_EQ(FindBind(d, "typed")->nodes[0].node, "h");
  EXPECT_EQ(FindBind(d, "big")->nodes[0].node, "h");
  EXPECT_EQ(FindBind(d, "big")->memory_mib_per_gpu, testing::k80G);
}

TEST(Placement, SkipsUnhealthyAndDraining) {
  ClusterBuilder c;
  c.Node("sick", 8).Node("drain", 8).Node("ok", 8);
  c.node("sick").healthy = false;
  c.node("drain").draining = true;
  c.node("ok").gpus[0].healthy = false;
  std::vector<JobRequest> q = {JobBuilder("j").Gpus(7), JobBuilder("k").Gpus(1).Submitted(testing::kNow)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  ASSERT_NE(FindBind(d, "j"), nullptr);
  EXPECT_EQ(FindBind(d, "j")->nodes[0].node, "ok");
  EXPECT_EQ(FindBind(d, "j")->nodes[0].gpu_indices, (std::vector<int>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_NE(FindPending(d, "k"), nullptr);
}

TEST(Placement, GangIsAllOrNothingOnDistinctNodes) {
  ClusterBuilder c;
  c.Node("a", 8).Node("b", 8).Node("c", 8);
  c.Run("r1", "c", {0});
  std::vector<JobRequest> q = {JobBuilder("g2").Gpus(8).Nodes(2),
                               JobBuilder("g3").Gpus(8).Nodes(2).Submitted(testing::kNow)};
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  const Bind* b = FindBind(d, "g2");
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->nodes.size(), 2u);
  EXPECT_NE(b->nodes[0].node, b->nodes[1].node);
  EXPECT_EQ(b->nodes[0].gpu_uuids.size(), 8u);
  const Pending* p = FindPending(d, "g3");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->reason.rfind("waiting: needs 2 nodes with 8 free GPUs each; 0 nodes have that many free", 0), 0u)
      << p->reason;
}

TEST(ClusterState, IndexesFollowAllocations) {
  ClusterBuilder c;
  c.Node("a", 4).Node("b", 2);
  ClusterSnapshot snap = c.Build();
  ClusterState s(snap);
  EXPECT_EQ(s.num_classes(), 1);
  EXPECT_EQ(s.MaxWholeFree(0), 4);
  s.Allocate(0, kMilliPerGpu, testing::k80G);
  EXPECT_EQ(s.MaxWholeFree(0), 3);
  EXPECT_EQ(s.BucketCount(0, 3), 1);
  s.Allocate(1, 300, 10);
  EXPECT_EQ(s.Shared(0).size(), 1u);
  s.Block(0);
  EXPECT_EQ(s.MaxWholeFree(0), 2);
  EXPECT_TRUE(s.Shared(0).empty());
  s.Unblock(0);
  EXPECT_EQ(s.Shared(0).size(), 1u);
  s.Release(1, 300, 10);
  s.Release(0, kMilliPerGpu, testing::k80G);
  EXPECT_EQ(s.MaxWholeFree(0), 4);
  EXPECT_TRUE(s.Shared(0).empty());
  EXPECT_EQ(s.gpu(1).free_mem, testing::k80G);
}

TEST(NodeBitset, FindFirstAndLast) {
  NodeBitset b;
  b.Resize(200);
  b.Set(3);
  b.Set(70);
  b.Set(199);
  EXPECT_EQ(b.FindFirst(0), 3);
  EXPECT_EQ(b.FindFirst(4), 70);
  EXPECT_EQ(b.FindFirst(71), 199);
  EXPECT_EQ(b.FindFirst(200), -1);
  EXPECT_EQ(b.FindLast(198), 70);
  EXPECT_EQ(b.FindLast(2), -1);
  b.Clear(70);
  EXPECT_EQ(b.FindFirst(4), 199);
}

// A migrated job (JobRequest::avoid_gpus) prefers other GPUs: another node first, else other GPUs of the same node,
// else the ones it left rather than waiting; with every policy, since the preference is applied when a job is bound.
TEST(Placement, AMigratedJobAvoidsTheGpusItLeftWhenOthersFit) {
  for (const char* policy : {"priority", "las", "fair-las", "fifo", "sjf", "backfill", "fair-share"}) {
    SCOPED_TRACE(policy);
    {
      ClusterBuilder c;
      c.Node("a", 4).Node("b", 4);
      c.Run("r", "b", {0});  // best-fit alone would pick b
      JobRequest j = JobBuilder("j").Gpus(2);
      j.avoid_gpus = {"b-GPU-1"};
      Decisions d = Make(policy)->Schedule(c.Build(), std::vector<JobRequest>{j});
      ASSERT_EQ(d.binds.size(), 1u);
      EXPECT_EQ(d.binds[0].nodes[0].node, "a");
    }
    {
      // One node: other GPUs of it.
      ClusterBuilder c;
      c.Node("a", 4);
      JobRequest j = JobBuilder("j").Gpus(2);
      j.avoid_gpus = {"a-GPU-0", "a-GPU-1"};
      Decisions d = Make(policy)->Schedule(c.Build(), std::vector<JobRequest>{j});
      ASSERT_EQ(d.binds.size(), 1u);
      EXPECT_EQ(d.binds[0].nodes[0].gpu_uuids, (std::vector<std::string>{"a-GPU-2", "a-GPU-3"}));
    }
    {
      // Nothing else fits: the GPUs it left, rather than waiting.
      ClusterBuilder c;
      c.Node("a", 2);
      c.Run("r", "a", {1});
      JobRequest j = JobBuilder("j").Gpus(1);
      j.avoid_gpus = {"a-GPU-0"};
      Decisions d = Make(policy)->Schedule(c.Build(), std::vector<JobRequest>{j});
      ASSERT_EQ(d.binds.size(), 1u);
      EXPECT_EQ(d.binds[0].nodes[0].gpu_uuids, (std::vector<std::string>{"a-GPU-0"}));
    }
    {
      // A fraction: another GPU of the node that has room.
      ClusterBuilder c;
      c.Node("a", 2);
      JobRequest j = JobBuilder("j").Fraction(500, 1024);
      j.avoid_gpus = {"a-GPU-0"};
      Decisions d = Make(policy)->Schedule(c.Build(), std::vector<JobRequest>{j});
      ASSERT_EQ(d.binds.size(), 1u);
      EXPECT_EQ(d.binds[0].nodes[0].gpu_uuids, (std::vector<std::string>{"a-GPU-1"}));
    }
  }
}

}  // namespace
}  // namespace fastgpu::sched
