// Hand-computed replays against the real scheduling policies (sched::MakeScheduler).
#include <gtest/gtest.h>

#include <map>

#include "sched/scheduler.h"
#include "sim/simulator.h"

namespace fastgpu::sim {
namespace {

Trace MustParse(const std::string& rows) {
  auto t = ParseTrace("job_id,submit_time_s,num_gpus,duration_s,user,queue,status\n" + rows, "test.csv");
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : Trace{};
}

Result<SimResult> Replay(const std::string& policy, const std::string& rows, const std::string& cluster,
                         int64_t preemptible_permille = 1000) {
  auto s = sched::MakeScheduler(policy, "best-fit");
  if (!s.ok()) return s.status();
  SimConfig c;
  c.cluster = *ParseClusterSpec(cluster);
  c.preemptible_permille = preemptible_permille;
  c.skip_when_full = PolicyNeverPreempts(policy) || preemptible_permille == 0;
  Trace t = MustParse(rows);
  return Simulate(t, **s, c);
}

std::map<std::string, int64_t> Jct(const SimResult& r) {
  std::map<std::string, int64_t> m;
  for (const auto& j : r.jobs) m[j.job_id] = (j.end_ms - j.submit_ms) / 1000;
  return m;
}

using M = std::map<std::string, int64_t>;

TEST(PolicyReplayTest, FifoOneGpu) {
  auto r = Replay("fifo", "a,0,1,10,u,q,s\nb,0,1,5,u,q,s\nc,2,1,1,u,q,s\n", "1x1xT4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Jct(*r), (M{{"a", 10}, {"b", 15}, {"c", 14}}));
  EXPECT_DOUBLE_EQ(r->metrics.avg_jct_s, 13.0);
  EXPECT_DOUBLE_EQ(r->metrics.utilisation, 1.0);
}

// 1 node x 2 GPUs. a (1 GPU, 100 s) at 0; b (2 GPUs, 10 s) at 1; c (1 GPU, 10 s) at 2.
constexpr const char* kBlocking = "a,0,1,100,u,q,s\nb,1,2,10,u,q,s\nc,2,1,10,u,q,s\n";

TEST(PolicyReplayTest, FifoIsStrict) {
  // b blocks c: a 0-100, b 100-110, c 110-120.
  auto r = Replay("fifo", kBlocking, "1x2xT4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Jct(*r), (M{{"a", 100}, {"b", 109}, {"c", 118}}));
  EXPECT_DOUBLE_EQ(r->metrics.max_queue_s, 108.0);
}

TEST(PolicyReplayTest, SjfDoesNotBlock) {
  // No estimates yet (all default): c starts at 2 on the free GPU; b waits for a: 100-110.
  auto r = Replay("sjf", kBlocking, "1x2xT4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Jct(*r), (M{{"a", 100}, {"b", 109}, {"c", 10}}));
}

TEST(PolicyReplayTest, SjfUsesLearnedEstimates) {
  // One GPU. a (q1, 10 s) and b (q2, 20 s) at 0: no estimates, FIFO -> a 0-10. c (q2, 20) at 5, d (q1, 10) at 6.
  // At 10 q1 is known (10 s) and q2 is not (default 1 h): d 10-20, then b 20-40, c 40-60.
  auto r = Replay("sjf", "a,0,1,10,u,q1,s\nb,0,1,20,u,q2,s\nc,5,1,20,u,q2,s\nd,6,1,10,u,q1,s\n", "1x1xT4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Jct(*r), (M{{"a", 10}, {"b", 40}, {"c", 55}, {"d", 14}}));
  auto f = Replay("fifo", "a,0,1,10,u,q1,s\nb,0,1,20,u,q2,s\nc,5,1,20,u,q2,s\nd,6,1,10,u,q1,s\n", "1x1xT4");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Jct(*f), (M{{"a", 10}, {"b", 30}, {"c", 45}, {"d", 54}}));
}

TEST(PolicyReplayTest, LasPreemptsLongRunningJob) {
  // One GPU. a (2 h) runs from 0; at 4000 s it has attained more than 1 GPU-hour (LAS queue 1) when b (100 s,
  // queue 0) arrives, so a is preempted: b 4000-4100, a resumes at 4100 with 3200 s + 7 s checkpoint: ends 7307.
  auto r = Replay("las", "a,0,1,7200,u,q,s\nb,4000,1,100,u,q,s\n", "1x1xT4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Jct(*r), (M{{"a", 7307}, {"b", 100}}));
  EXPECT_EQ(r->metrics.preemptions, 1);
  EXPECT_EQ(r->metrics.busy_gpu_s, 7307);
  auto f = Replay("fifo", "a,0,1,7200,u,q,s\nb,4000,1,100,u,q,s\n", "1x1xT4");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(Jct(*f), (M{{"a", 7200}, {"b", 3300}}));
}

TEST(PolicyReplayTest, LasDoesNotPreemptWithinSameQueue) {
  // a has attained only 1000 GPU-s (queue 0, same as b): no preemption.
  auto r = Replay("las", "a,0,1,2000,u,q,s\nb,1000,1,100,u,q,s\n", "1x1xT4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Jct(*r), (M{{"a", 2000}, {"b", 1100}}));
  EXPECT_EQ(r->metrics.preemptions, 0);
}

TEST(PolicyReplayTest, GangAcrossNodes) {
  // 2 nodes x 4 GPUs: g (8 GPUs) is a gang of 2 x 4.
  auto r = Replay("fifo", "g,0,8,10,u,q,s\nh,0,2,10,u,q,s\n", "2x4xT4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Jct(*r), (M{{"g", 10}, {"h", 20}}));
}

TEST(PolicyReplayTest, EveryPolicyFinishesASmallMixedTrace) {
  std::string rows;
  for (int i = 0; i < 60; ++i) {
    rows += std::to_string(i) + "," + std::to_string(i * 17) + "," + std::to_string(1 << (i % 4)) + "," +
            std::to_string(50 + (i * 131) % 3000) + ",u" + std::to_string(i % 2) + ",q" + std::to_string(i % 3) +
            ",s\n";
  }
  for (const char* p : sched::kPolicyNames) {
    auto r = Replay(p, rows, "2x4xT4");
    ASSERT_TRUE(r.ok()) << p << ": " << r.status().ToString();
    EXPECT_EQ(r->metrics.completed, 60) << p;
    EXPECT_GT(r->metrics.utilisation, 0.0) << p;
    EXPECT_LE(r->metrics.utilisation, 1.0) << p;
  }
}

TEST(PreemptibleJobTest, FractionBySeededHash) {
  int64_t picked = 0;
  for (int i = 0; i < 10'000; ++i) {
    const std::string id = "job-" + std::to_string(i);
    EXPECT_TRUE(PreemptibleJob(id, 1000, 0));
    EXPECT_FALSE(PreemptibleJob(id, 0, 0));
    EXPECT_EQ(PreemptibleJob(id, 500, 0), PreemptibleJob(id, 500, 0));
    if (PreemptibleJob(id, 500, 0)) ++picked;
    // A larger fraction keeps every job a smaller one picked.
    if (PreemptibleJob(id, 250, 0)) {
      EXPECT_TRUE(PreemptibleJob(id, 500, 0)) << id;
    }
  }
  EXPECT_GT(picked, 4'700);
  EXPECT_LT(picked, 5'300);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string id = "job-" + std::to_string(i);
    differ += PreemptibleJob(id, 500, 0) != PreemptibleJob(id, 500, 1) ? 1 : 0;
  }
  EXPECT_GT(differ, 20);  // the seed changes the pick
}

// With half the jobs preemptible, no policy ever preempts one of the others (the replay would also fail),
// and the preemptive policies do preempt some of the preemptible ones.
TEST(PolicyReplayTest, MixedPreemptibilityNeverPreemptsPinnedJobs) {
  std::string rows;
  for (int i = 0; i < 200; ++i) {
    rows += std::to_string(i) + "," + std::to_string(i * 23) + "," + std::to_string(1 << (i % 3)) + "," +
            std::to_string(i % 5 == 0 ? 20'000 + i : 60 + (i * 131) % 2000) + ",u,q" + std::to_string(i % 3) + ",s\n";
  }
  std::vector<std::string> policies(std::begin(sched::kPolicyNames), std::end(sched::kPolicyNames));
  policies.push_back("default");
  int64_t preempted = 0;
  for (const std::string& p : policies) {
    for (int64_t permille : {0, 500, 1000}) {
      auto r = Replay(p, rows, "2x4xT4", permille);
      ASSERT_TRUE(r.ok()) << p << " " << permille << ": " << r.status().ToString();
      EXPECT_EQ(r->metrics.completed, 200) << p;
      int64_t pinned = 0;
      for (const JobOutcome& j : r->jobs) {
        if (!j.preemptible) {
          ++pinned;
          EXPECT_EQ(j.preemptions, 0) << p << " preempted " << j.job_id;
        }
      }
      EXPECT_EQ(r->metrics.preemptible_jobs, 200 - pinned);
      if (permille == 0) {
        EXPECT_EQ(r->metrics.preemptions, 0) << p;
      }
      if (permille == 500 && (p == "las" || p == "default")) preempted += r->metrics.preemptions;
    }
  }
  EXPECT_GT(preempted, 0);
}

TEST(PolicyReplayTest, DefaultIsFairLasAndBeatsFifoOnShortJobs) {
  // 1 GPU: a long job first, then short ones once it has more than 1 GPU-hour of service (a lower LAS
  // queue): fair-las preempts it (all preemptible).
  const std::string rows = "long,0,1,10000,u,q,s\ns1,4000,1,10,u,q,s\ns2,4001,1,10,u,q,s\n";
  auto d = Replay("default", rows, "1x1xT4");
  auto f = Replay("fifo", rows, "1x1xT4");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(d->metrics.policy, "fair-las/best-fit");
  EXPECT_LT(d->metrics.avg_jct_s, f->metrics.avg_jct_s);
  EXPECT_GT(d->metrics.preemptions, 0);
  // None preemptible: nothing is preempted and the short jobs wait.
  auto n = Replay("default", rows, "1x1xT4", 0);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(n->metrics.preemptions, 0);
}

TEST(PolicyReplayTest, PerProjectFigures) {
  auto r = Replay("fifo", "a,0,1,10,u,p1,s\nb,0,1,5,u,p2,s\nc,2,1,1,u,p1,s\n", "1x1xT4");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->metrics.projects.size(), 2u);
  const ProjectMetrics& p1 = r->metrics.projects[0];
  EXPECT_EQ(p1.project, "p1");
  EXPECT_EQ(p1.completed, 2);
  EXPECT_DOUBLE_EQ(p1.avg_jct_s, (10 + 14) / 2.0);  // a 0-10, b 10-15, c 15-16
  EXPECT_DOUBLE_EQ(p1.avg_queue_s, (0 + 13) / 2.0);
  EXPECT_DOUBLE_EQ(p1.max_queue_s, 13.0);
  EXPECT_EQ(r->metrics.projects[1].project, "p2");
  EXPECT_DOUBLE_EQ(r->metrics.projects[1].avg_queue_s, 10.0);
}

}  // namespace
}  // namespace fastgpu::sim

namespace fastgpu::sim {
namespace {

// A replay with one waiting reason per round (what `fastgpu simulate` uses) gives the same outcome
// for every job as one with a reason for every queued job.
TEST(PolicyReplayTest, PendingReasonLimitGivesSameReplay) {
  std::string rows;
  uint64_t x = 12345;
  auto next = [&x](uint64_t n) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return (x >> 33) % n;
  };
  int64_t t = 0;
  for (int i = 0; i < 400; ++i) {
    t += static_cast<int64_t>(next(40));
    const uint64_t g = next(10) < 6 ? 1 : (next(4) == 0 ? 16 : (1u << next(4)));
    rows += "j" + std::to_string(i) + "," + std::to_string(t) + "," + std::to_string(g) + "," +
            std::to_string(1 + next(2000)) + ",u,q" + std::to_string(next(3)) + ",s\n";
  }
  const Trace trace = MustParse(rows);
  for (const char* policy : sched::kPolicyNames) {
    SCOPED_TRACE(policy);
    SimConfig c;
    c.cluster = *ParseClusterSpec("4x8xV100-32GB");
    c.skip_when_full = PolicyNeverPreempts(policy);
    sched::SchedulerOptions o;
    o.policy = policy;
    auto full = sched::MakeScheduler(o);
    o.max_pending_reasons = 1;
    auto lim = sched::MakeScheduler(o);
    ASSERT_TRUE(full.ok() && lim.ok());
    auto a = Simulate(trace, **full, c);
    auto b = Simulate(trace, **lim, c);
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_EQ(a->jobs.size(), b->jobs.size());
    for (size_t i = 0; i < a->jobs.size(); ++i) {
      EXPECT_EQ(a->jobs[i].first_start_ms, b->jobs[i].first_start_ms) << a->jobs[i].job_id;
      EXPECT_EQ(a->jobs[i].end_ms, b->jobs[i].end_ms) << a->jobs[i].job_id;
      EXPECT_EQ(a->jobs[i].preemptions, b->jobs[i].preemptions) << a->jobs[i].job_id;
    }
    EXPECT_EQ(a->metrics.schedule_calls, b->metrics.schedule_calls);
    EXPECT_GT(a->metrics.completed, 0);
  }
}

}  // namespace
}  // namespace fastgpu::sim
