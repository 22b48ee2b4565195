// One code path: a trace replayed through the server (Service with a fake clock, nodes played by the test: each
// start is reported at once, each end after the job's duration) and through the simulator (`fastgpu simulate`'s
// engine) gets the same decisions: every job starts at the same second, on the same GPUs, for every policy that
// needs no runtime estimates. Jobs are not preemptible here: a preemption in the server stops a real process
// after its checkpoint grace, which the simulator models as a fixed overhead instead.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/clock.h"
#include "sched/scheduler.h"
#include "server/service.h"
#include "service_fixture.h"
#include "sim/cluster_spec.h"
#include "sim/simulator.h"
#include "sim/trace.h"

namespace fastgpu::server {
namespace {

constexpr UnixMillis kEpoch = 1'800'000'000'000;

// A deterministic trace: `n` jobs over about two hours, ids j-1..j-n in submit order (the server's own ids),
// 1 to 16 GPUs (16 = a gang of two 8-GPU nodes), runs of 1 minute to 2 hours, three users in two projects.
sim::Trace MakeTrace(int n) {
  sim::Trace t;
  t.source = "parity";
  uint64_t x = 88172645463325252ull;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int64_t at = 0;
  const int sizes[] = {1, 1, 1, 2, 2, 4, 8, 16};
  for (int i = 1; i <= n; ++i) {
    sim::TraceJob j;
    j.job_id = "j-" + std::to_string(i);
    at += static_cast<int64_t>(next() % 240);
    j.submit_time_s = at;
    j.num_gpus = sizes[next() % 8];
    j.duration_s = 60 + static_cast<int64_t>(next() % 7140);
    j.user = "u" + std::to_string(next() % 3);
    j.queue = j.user == "u0" ? "vision" : "nlp";
    j.status = "Pass";
    j.line = i + 1;
    t.jobs.push_back(j);
  }
  return t;
}

struct Start {
  int64_t at_s = -1;
  std::vector<std::string> gpus;  // sorted UUIDs
  bool operator==(const Start&) const = default;
};

class ReplayParity : public ServiceFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  // Replays `trace` through the service on `spec`'s nodes; the first start of each job.
  std::map<std::string, Start> ThroughTheServer(const sim::Trace& trace, const sim::ClusterSpec& spec) {
    ServiceOptions o;
    o.policy = GetParam();
    Open(o);
    const sched::ClusterSnapshot empty = sim::BuildEmptySnapshot(spec, kEpoch);
    std::vector<std::string> nodes;
    for (const auto& nv : empty.nodes) {
      agent::NodeRegistration reg;
      reg.node.name = nv.name;
      reg.node.address = nv.name + ".example";
      reg.node.simulated = true;
      for (const auto& g : nv.gpus) {
        api::Gpu gpu;
        gpu.uuid = g.uuid;
        gpu.index = g.index;
        gpu.type = g.type;
        gpu.memory_total_mib = g.memory_mib;
        gpu.simulated = true;
        reg.gpus.push_back(gpu);
      }
      EXPECT_TRUE(svc_->RegisterNode(reg).ok());
      svc_->SetNodeConnection(nv.name, "http from test");
      nodes.push_back(nv.name);
    }
    std::map<std::string, Start> starts;
    std::map<std::string, uint64_t> acks;
    // Running attempts: job -> (end second, attempt, member nodes by rank).
    struct Run {
      int64_t end_s;
      int attempt;
      std::vector<std::string> members;
    };
    std::map<std::string, Run> running;
    std::map<std::string, int64_t> duration;
    for (const auto& j : trace.jobs) duration[j.job_id] = j.duration_s;
    size_t next_arrival = 0;
    while (next_arrival < trace.jobs.size() || !running.empty()) {
      int64_t t = INT64_MAX;
      if (next_arrival < trace.jobs.size()) t = trace.jobs[next_arrival].submit_time_s;
      for (const auto& [id, r] : running) t = std::min(t, r.end_s);
      clock_.Set(kEpoch + t * 1000);
      // The batch at t: ends, then arrivals, then one round.
      std::vector<agent::JobReport> ends;
      for (auto it = running.begin(); it != running.end();) {
        if (it->second.end_s != t) {
          ++it;
          continue;
        }
        for (size_t rank = 0; rank < it->second.members.size(); ++rank) {
          agent::JobReport r;
          r.kind = agent::JobReport::Kind::kExited;
          r.job_id = it->first;
          r.attempt = it->second.attempt;
          r.node = it->second.members[rank];
          r.rank = static_cast<int>(rank);
          r.exit_code = 0;
          ends.push_back(r);
        }
        it = running.erase(it);
      }
      if (!ends.empty()) {
        EXPECT_TRUE(svc_->ReportJobs(ends).ok());
      }
      while (next_arrival < trace.jobs.size() && trace.jobs[next_arrival].submit_time_s == t) {
        const sim::TraceJob& tj = trace.jobs[next_arrival++];
        api::JobSpec s;
        s.name = tj.queue;
        s.project = tj.queue;
        s.command = {"true"};
        s.gpus_milli = tj.num_gpus * kMilliPerGpu;
        auto made = svc_->Submit(s, tj.user);
        EXPECT_TRUE(made.ok()) << made.status().ToString();
        if (made.ok()) {
          EXPECT_EQ(made->id, tj.job_id);
        }
      }
      svc_->ScheduleOnce();
      // Every node starts what it was sent, at once.
      std::map<std::string, std::vector<std::pair<int, std::string>>> members;  // job -> (rank, node)
      std::map<std::string, agent::JobCommand> cmd_of;
      std::vector<agent::JobReport> started;
      for (const auto& node : nodes) {
        auto cmds = svc_->PollCommands(node, acks[node], true);
        EXPECT_TRUE(cmds.ok()) << cmds.status().ToString();
        if (!cmds.ok()) continue;
        for (const auto& c : *cmds) {
          acks[node] = std::max(acks[node], c.id);
          if (c.kind != agent::JobCommand::Kind::kStart) continue;
          members[c.job.id].push_back({c.rank, node});
          cmd_of[c.job.id] = c;
          agent::JobReport r;
          r.kind = agent::JobReport::Kind::kStarted;
          r.job_id = c.job.id;
          r.attempt = c.job.attempt;
          r.node = node;
          r.rank = c.rank;
          r.pid = 1000 + static_cast<int64_t>(started.size());
          started.push_back(r);
        }
      }
      if (!started.empty()) {
        EXPECT_TRUE(svc_->ReportJobs(started).ok());
      }
      for (auto& [id, m] : members) {
        std::sort(m.begin(), m.end());
        Run run{t + duration[id], cmd_of[id].job.attempt, {}};
        for (const auto& [rank, node] : m) run.members.push_back(node);
        running[id] = run;
        auto job = svc_->GetJob(id);
        EXPECT_TRUE(job.ok());
        if (!job.ok()) continue;
        EXPECT_EQ(job->state, api::JobState::kRunning) << id;
        if (!starts.count(id)) {
          Start s{t, job->assigned_gpus};
          std::sort(s.gpus.begin(), s.gpus.end());
          starts[id] = s;
        }
      }
      if (t == INT64_MAX) break;
    }
    return starts;
  }
};

// The simulator's placements are not in its outcome: replay it again, recording the binds of each round.
class RecordingScheduler : public sched::Scheduler {
 public:
  explicit RecordingScheduler(std::unique_ptr<sched::Scheduler> inner) : inner_(std::move(inner)) {}
  sched::Decisions Schedule(const sched::ClusterSnapshot& c, std::span<const sched::JobRequest> q) override {
    return Record(inner_->Schedule(c, q));
  }
  sched::Decisions Schedule(const sched::ClusterSnapshot& c, const sched::JobQueue& q) override {
    return Record(inner_->Schedule(c, q));
  }
  sched::Decisions Schedule(const sched::ClusterState& s, const sched::JobQueue& q) override {
    return Record(inner_->Schedule(s, q));
  }
  sched::QueueOrder queue_order() const override { return inner_->queue_order(); }
  bool UsesRuntimeEstimates() const override { return inner_->UsesRuntimeEstimates(); }
  std::string Name() const override { return inner_->Name(); }
  std::map<std::string, std::vector<std::string>> gpus;  // first bind of each job

 private:
  sched::Decisions Record(sched::Decisions d) {
    for (const auto& b : d.binds) {
      if (gpus.count(b.job_id)) continue;
      std::vector<std::string> all;
      for (const auto& n : b.nodes) all.insert(all.end(), n.gpu_uuids.begin(), n.gpu_uuids.end());
      std::sort(all.begin(), all.end());
      gpus[b.job_id] = all;
    }
    return d;
  }
  std::unique_ptr<sched::Scheduler> inner_;
};

TEST_P(ReplayParity, TheServerStartsEveryJobWhenAndWhereTheSimulatorDoes) {
  const sim::Trace trace = MakeTrace(120);
  auto spec = sim::ParseClusterSpec("4x8xA100-80GB");
  ASSERT_TRUE(spec.ok());

  auto made = sched::MakeScheduler(sched::SchedulerOptions{.policy = GetParam()});
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  RecordingScheduler recording(std::move(made).value());
  sim::SimConfig config;
  config.cluster = *spec;
  config.preemptible_permille = 0;
  config.epoch_ms = kEpoch;
  config.prediction_refresh_s = 0;
  auto simulated = sim::Simulate(trace, recording, config);
  ASSERT_TRUE(simulated.ok()) << simulated.status().ToString();

  const auto served = ThroughTheServer(trace, *spec);
  int compared = 0, waited = 0;
  for (const auto& o : simulated->jobs) {
    ASSERT_FALSE(o.rejected) << o.job_id << ": " << o.reject_reason;
    auto it = served.find(o.job_id);
    ASSERT_NE(it, served.end()) << o.job_id << " never started in the server";
    EXPECT_EQ(it->second.at_s * 1000, o.first_start_ms) << o.job_id;
    EXPECT_EQ(it->second.gpus, recording.gpus[o.job_id]) << o.job_id;
    ++compared;
    if (o.first_start_ms > o.submit_ms) ++waited;
  }
  EXPECT_EQ(compared, 120);
  EXPECT_GT(waited, 20) << "the trace should keep the cluster busy enough for the order to matter";
}

INSTANTIATE_TEST_SUITE_P(Policies, ReplayParity, ::testing::Values("default", "fifo", "priority", "fair-share", "las"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

}  // namespace
}  // namespace fastgpu::server
