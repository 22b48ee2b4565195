// Node labels a job requires (JobRequest::node_labels, e.g. containers=podman for a container job): every policy,
// placement, gang, preemption, reservation (backfill, the fair-las starvation guard) and the start estimates use
// only nodes that carry them.
#include <gtest/gtest.h>

#include <set>

#include "sched/framework/cluster_state.h"
#include "sched/framework/estimate.h"
#include "sched/framework/queue_sort.h"
#include "builders.h"
#include "random_inputs.h"

namespace fastgpu::sched {
namespace {

using testing::ClusterBuilder;
using testing::FindBind;
using testing::FindPending;
using testing::JobBuilder;
using testing::kNow;
using testing::Make;

constexpr int64_t kHour = 3'600'000;

std::vector<std::string> AllPolicies() {
  std::vector<std::string> p(std::begin(kPolicyNames), std::end(kPolicyNames));
  p.emplace_back("default");
  return p;
}

JobBuilder Podman(const std::string& id) { return JobBuilder(id).NodeLabel("containers", "podman"); }

TEST(NodeLabels, EveryPolicyAndPlacementPutsALabelledJobOnANodeWithTheLabel) {
  ClusterBuilder c;
  // Best-fit would take "plain" (fewest free GPUs), spread "wide"; only "pod" has podman.
  c.Node("plain", 1).Node("pod", 2).Node("wide", 8);
  c.Label("pod", "containers", "podman").Label("wide", "containers", "docker");
  std::vector<JobRequest> q = {Podman("ctr")};
  for (const std::string& policy : AllPolicies()) {
    for (const char* placement : kPlacementNames) {
      SCOPED_TRACE(policy + "/" + placement);
      Decisions d = Make(policy, placement)->Schedule(c.Build(), q);
      ASSERT_NE(FindBind(d, "ctr"), nullptr);
      EXPECT_EQ(FindBind(d, "ctr")->nodes[0].node, "pod");
    }
  }
  // Without the label the same job goes elsewhere (the test has teeth).
  std::vector<JobRequest> plain = {JobBuilder("ctr")};
  EXPECT_EQ(FindBind(Make("fifo")->Schedule(c.Build(), plain), "ctr")->nodes[0].node, "plain");
}

TEST(NodeLabels, AJobNoNodeCanRunNeverFitsAndSaysWhichLabelsAreMissing) {
  ClusterBuilder c;
  c.Node("a", 4).Node("b", 4, "H100-80GB");
  c.Label("b", "containers", "podman");
  EXPECT_EQ(CheckFeasible(c.Build(), Podman("j").Gpus(2)).message(), "");
  EXPECT_EQ(CheckFeasible(c.Build(), Podman("j").Type("A100-80GB")).message(),
            "no node with GPUs of type A100-80GB has the labels containers=podman");
  EXPECT_EQ(CheckFeasible(c.Build(), JobBuilder("j").NodeLabel("zone", "b")).message(),
            "no node with GPUs has the labels zone=b");
  EXPECT_EQ(CheckFeasible(c.Build(), Podman("j").Gpus(2).Nodes(2)).message(),
            "needs 2 nodes with 2 GPUs (nodes labelled containers=podman) each; the cluster has 1 such node");
  for (const std::string& policy : AllPolicies()) {
    SCOPED_TRACE(policy);
    std::vector<JobRequest> q = {JobBuilder("z").NodeLabel("zone", "b"), JobBuilder("x")};
    Decisions d = Make(policy)->Schedule(c.Build(), q);
    ASSERT_NE(FindPending(d, "z"), nullptr);
    EXPECT_TRUE(FindPending(d, "z")->never_fits);
    EXPECT_NE(FindBind(d, "x"), nullptr);
  }
}

TEST(NodeLabels, ALabelledJobWaitsForItsNodesWhileOtherNodesAreFree) {
  ClusterBuilder c;
  c.Node("plain", 4).Node("pod", 1);
  c.Label("pod", "containers", "podman");
  c.Run("r", "pod", {0});
  std::vector<JobRequest> q = {Podman("ctr"), JobBuilder("other")};
  for (const std::string& policy : AllPolicies()) {
    SCOPED_TRACE(policy);
    Decisions d = Make(policy)->Schedule(c.Build(), q);
    ASSERT_NE(FindPending(d, "ctr"), nullptr);
    EXPECT_FALSE(FindPending(d, "ctr")->never_fits);
    if (policy != "fifo") {
      ASSERT_NE(FindBind(d, "other"), nullptr);
      EXPECT_EQ(FindBind(d, "other")->nodes[0].node, "plain");
    }
  }
  Decisions d = Make("priority")->Schedule(c.Build(), q);
  // It holds the node with the label, never the free one.
  EXPECT_EQ(FindPending(d, "ctr")->reason,
            "waiting: needs 1 GPU (nodes labelled containers=podman) on one node; the most free on a node is 0; "
            "holding pod for it as GPUs free up");
}

TEST(NodeLabels, AGangTakesOnlyNodesWithTheLabels) {
  ClusterBuilder c;
  c.Node("a", 2).Node("b", 2).Node("c", 2).Node("d", 2);
  c.Label("b", "containers", "podman").Label("d", "containers", "podman").Label("d", "zone", "x");
  std::vector<JobRequest> q = {Podman("gang").Gpus(2).Nodes(2)};
  for (const std::string& policy : AllPolicies()) {
    for (const char* placement : kPlacementNames) {
      SCOPED_TRACE(policy + "/" + placement);
      Decisions d = Make(policy, placement)->Schedule(c.Build(), q);
      const Bind* b = FindBind(d, "gang");
      ASSERT_NE(b, nullptr);
      ASSERT_EQ(b->nodes.size(), 2u);
      EXPECT_EQ(std::set<std::string>({b->nodes[0].node, b->nodes[1].node}), std::set<std::string>({"b", "d"}));
    }
  }
}

TEST(NodeLabels, PreemptionFreesGpusOnlyOnNodesWithTheLabels) {
  ClusterBuilder c;
  c.Node("plain", 1).Node("pod", 1);
  c.Label("pod", "containers", "podman");
  // The cheapest victim is on "plain" (priority 0, newest), which would not help the container job.
  c.Run("cheap", "plain", {0}, 0, true, kNow - 2 * kHour);
  c.Run("onpod", "pod", {0}, 10, true, kNow - 3 * kHour);
  std::vector<JobRequest> q = {Podman("ctr").Priority(90)};
  for (const char* policy : {"priority", "fair-las", "default"}) {
    SCOPED_TRACE(policy);
    Decisions d = Make(policy)->Schedule(c.Build(), q);
    ASSERT_EQ(d.preemptions.size(), 1u);
    EXPECT_EQ(d.preemptions[0].job_id, "onpod");
  }
}

TEST(NodeLabels, BackfillReservesTheHeadsLabelledNodesAndFillsTheOthers) {
  ClusterBuilder c;
  c.Node("plain", 2).Node("pod", 2);
  c.Label("pod", "containers", "podman");
  c.Run("r", "pod", {0}, 50, false, kNow - 1000);
  c.last_running().runtime_limit_s = 3600;
  std::vector<JobRequest> q = {Podman("head").Gpus(2).Submitted(1), JobBuilder("long").Gpus(2).Limit(7200).Submitted(2)};
  Decisions d = Make("backfill")->Schedule(c.Build(), q);
  ASSERT_NE(FindPending(d, "head"), nullptr);
  EXPECT_NE(FindPending(d, "head")->reason.find("reserved pod at"), std::string::npos) << FindPending(d, "head")->reason;
  ASSERT_NE(FindBind(d, "long"), nullptr);
  EXPECT_EQ(FindBind(d, "long")->nodes[0].node, "plain");
}

TEST(NodeLabels, TheStarvationGuardHoldsNodesWithTheLabels) {
  ClusterBuilder c;
  c.Node("a", 4).Node("b", 4);
  c.Label("b", "containers", "podman");
  // "a" has 3 GPUs free and would be closest for the starving job; only "b" (1 free) can run it.
  c.Run("r1", "a", {0}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  c.Run("r2", "b", {0, 1, 2}, 50, false, kNow - kHour, kMilliPerGpu, 0, "other");
  SchedulerOptions o;
  o.policy = "fair-las";
  o.starvation_mean_age_multiple = 0;
  std::vector<JobRequest> q = {Podman("gang").Gpus(4).Submitted(kNow - 30 * kHour),
                               JobBuilder("one").Gpus(1).Submitted(kNow - 60'000)};
  Decisions d = MakeScheduler(o).value()->Schedule(c.Build(), q);
  ASSERT_NE(FindPending(d, "gang"), nullptr);
  EXPECT_NE(FindPending(d, "gang")->reason.find("holding b"), std::string::npos) << FindPending(d, "gang")->reason;
  ASSERT_NE(FindBind(d, "one"), nullptr);
  EXPECT_EQ(FindBind(d, "one")->nodes[0].node, "a");
}

TEST(NodeLabels, StartEstimatesCountOnlyGpusOfNodesWithTheLabels) {
  ClusterBuilder c;
  c.Node("plain", 2).Node("pod", 2);
  c.Label("pod", "containers", "podman");
  c.Run("r", "pod", {0, 1}, 50, false, kNow - kHour);
  c.last_running().runtime_limit_s = 2 * 3600;  // ends in 1 h
  std::vector<JobRequest> q = {Podman("ctr").Gpus(2), JobBuilder("any").Gpus(2),
                               JobBuilder("z").NodeLabel("zone", "b")};
  auto e = EstimateStarts(c.Build(), q);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].at, kNow + kHour);
  EXPECT_EQ(e[1].at, kNow);
  EXPECT_EQ(e[2].at, 0);
  EXPECT_EQ(e[2].why, "it needs 1 GPUs on nodes labelled zone=b and 0 are usable now");
}

// Random clusters where some nodes carry labels and random queues where some jobs require them: no policy or
// placement binds a job to a node without its labels, through a span or a kept queue and cluster state.
TEST(NodeLabels, NoPolicyEverBindsAJobToANodeWithoutItsLabels) {
  int64_t labelled_binds = 0;
  for (uint64_t seed = 1; seed <= 80; ++seed) {
    testing::Rng rng(seed);
    ClusterSnapshot s = testing::RandomCluster(rng);
    testing::Rng lr(seed * 31 + 7);
    for (NodeView& n : s.nodes) {
      if (lr.Chance(50)) n.labels["containers"] = "podman";
      if (lr.Chance(30)) n.labels["zone"] = lr.Chance(50) ? "a" : "b";
    }
    std::vector<JobRequest> q = testing::RandomQueue(rng);
    for (JobRequest& j : q) {
      if (lr.Chance(40)) j.node_labels["containers"] = "podman";
      if (lr.Chance(10)) j.node_labels["zone"] = "b";
    }
    std::map<std::string, const NodeView*> nodes;
    for (const NodeView& n : s.nodes) nodes[n.name] = &n;
    const ClusterState state(s);
    for (const std::string& policy : AllPolicies()) {
      for (const char* placement : kPlacementNames) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " " + policy + "/" + placement);
        auto sched = Make(policy, placement);
        const Decisions d = sched->Schedule(s, q);
        for (const Bind& b : d.binds) {
          const JobRequest& j = *std::find_if(q.begin(), q.end(), [&](const JobRequest& x) { return x.job_id == b.job_id; });
          for (const NodeAssignment& a : b.nodes) {
            EXPECT_TRUE(HasLabels(nodes.at(a.node)->labels, j.node_labels)) << j.job_id << " on " << a.node;
          }
          if (!j.node_labels.empty()) ++labelled_binds;
        }
        JobQueue jq(sched->queue_order());
        for (const JobRequest& j : q) jq.Add(j);
        EXPECT_EQ(testing::Serialize(sched->Schedule(state, jq)), testing::Serialize(d));
        if (::testing::Test::HasFailure()) return;
      }
    }
  }
  EXPECT_GT(labelled_binds, 500);
}

}  // namespace
}  // namespace fastgpu::sched
