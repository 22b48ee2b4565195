// Behaviour every Store implementation must have. Each implementation adds one INSTANTIATE line at the
// bottom with a factory that opens (or reopens) a store whose data lives under a given directory.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "store_test_util.h"

namespace fastgpu::store {
namespace {

using api::Job;
using api::JobEvent;
using api::JobState;
using testing::JobNumber;
using testing::SampleJob;
using testing::SubmitEvent;
using testing::TempDir;

struct StoreFactory {
  std::string name;
  // Opens the store kept under `dir`; opening the same dir again must see the same data.
  std::function<std::unique_ptr<Store>(const std::string& dir)> open;
};

class StoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    store_ = GetParam().open(dir_.path());
    ASSERT_NE(store_, nullptr) << "factory failed to open a store in " << dir_.path();
  }

  Job Create(const std::string& name, const std::string& project = "default") {
    auto r = store_->CreateJob(SampleJob(name, project), SubmitEvent());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Job{};
  }

  // Moves `job` to `to` (compare-and-set on its current state).
  Status Transition(Job job, JobState to, const std::string& reason = "test") {
    JobUpdate u;
    u.expected_state = job.state;
    u.event.at = 1'700'000'100'000;
    u.event.from = std::string(api::JobStateName(job.state));
    u.event.to = std::string(api::JobStateName(to));
    u.event.reason = reason;
    u.event.actor = "scheduler";
    job.state = to;
    u.job = std::move(job);
    return store_->UpdateJobs({u});
  }

  Job Get(const std::string& id) {
    auto r = store_->GetJob(id);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : Job{};
  }

  static std::vector<std::string> Ids(const std::vector<Job>& jobs) {
    std::vector<std::string> out;
    for (const Job& j : jobs) out.push_back(j.id);
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

void ExpectSameJob(const Job& a, const Job& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.spec.name, b.spec.name);
  EXPECT_EQ(a.spec.command, b.spec.command);
  EXPECT_EQ(a.spec.gpus_milli, b.spec.gpus_milli);
  EXPECT_EQ(a.spec.gpu_type, b.spec.gpu_type);
  EXPECT_EQ(a.spec.memory_mib, b.spec.memory_mib);
  EXPECT_EQ(a.spec.runtime_limit_s, b.spec.runtime_limit_s);
  EXPECT_EQ(a.spec.priority, b.spec.priority);
  EXPECT_EQ(a.spec.env, b.spec.env);
  EXPECT_EQ(a.spec.workdir, b.spec.workdir);
  EXPECT_EQ(a.spec.project, b.spec.project);
  EXPECT_EQ(a.spec.max_retries, b.spec.max_retries);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.assigned_gpus, b.assigned_gpus);
  EXPECT_EQ(a.assigned_gpu_indices, b.assigned_gpu_indices);
  EXPECT_EQ(a.node, b.node);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.finished_at, b.finished_at);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.signal, b.signal);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.pid, b.pid);
}

TEST_P(StoreConformance, CreateThenGetReturnsEveryField) {
  Job in = SampleJob("train");
  in.state = JobState::kRunning;  // ignored: new jobs are always queued
  in.id = "j-999";                // ignored: the store assigns ids
  auto created = store_->CreateJob(in, SubmitEvent());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_GT(JobNumber(created->id), 0) << created->id;
  EXPECT_EQ(created->state, JobState::kQueued);

  Job expected = in;
  expected.id = created->id;
  expected.state = JobState::kQueued;
  ExpectSameJob(*created, expected);
  ExpectSameJob(Get(created->id), expected);
}

TEST_P(StoreConformance, MissingJobIsNotFound) {
  for (const std::string id : {"j-424242", "j-0", "j-", "x-1", "", "j-1x", "j--3"}) {
    auto r = store_->GetJob(id);
    ASSERT_FALSE(r.ok()) << id;
    EXPECT_EQ(r.status().code(), ErrorCode::kNotFound) << id;
    EXPECT_EQ(r.status().message(), "job " + id + " does not exist");
    auto ev = store_->ListEvents(id);
    ASSERT_FALSE(ev.ok()) << id;
    EXPECT_EQ(ev.status().code(), ErrorCode::kNotFound) << id;
  }
}

TEST_P(StoreConformance, IdsIncrease) {
  int64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    Job j = Create("j" + std::to_string(i));
    int64_t n = JobNumber(j.id);
    EXPECT_GT(n, last) << j.id;
    last = n;
  }
}

TEST_P(StoreConformance, ListJobsNewestFirstWithFilters) {
  Job a = Create("a", "vision");
  Job b = Create("b", "nlp");
  Job c = Create("c", "vision");
  Job d = Create("d", "nlp");
  ASSERT_TRUE(Transition(b, JobState::kScheduled).ok());
  ASSERT_TRUE(Transition(c, JobState::kCancelled).ok());

  auto all = store_->ListJobs({});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{d.id, c.id, b.id, a.id}));

  auto queued = store_->ListJobs({.states = {JobState::kQueued}});
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(Ids(*queued), (std::vector<std::string>{d.id, a.id}));

  auto two_states = store_->ListJobs({.states = {JobState::kCancelled, JobState::kQueued, JobState::kQueued}});
  ASSERT_TRUE(two_states.ok());
  EXPECT_EQ(Ids(*two_states), (std::vector<std::string>{d.id, c.id, a.id}));

  auto vision = store_->ListJobs({.project = "vision"});
  ASSERT_TRUE(vision.ok());
  EXPECT_EQ(Ids(*vision), (std::vector<std::string>{c.id, a.id}));

  auto nlp_queued = store_->ListJobs({.states = {JobState::kQueued}, .project = "nlp"});
  ASSERT_TRUE(nlp_queued.ok());
  EXPECT_EQ(Ids(*nlp_queued), (std::vector<std::string>{d.id}));

  auto limited = store_->ListJobs({.limit = 3});
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(Ids(*limited), (std::vector<std::string>{d.id, c.id, b.id}));

  auto limited_filtered = store_->ListJobs({.states = {JobState::kQueued}, .project = "vision", .limit = 1});
  ASSERT_TRUE(limited_filtered.ok());
  EXPECT_EQ(Ids(*limited_filtered), (std::vector<std::string>{a.id}));

  auto two_states_limited = store_->ListJobs({.states = {JobState::kQueued, JobState::kCancelled}, .limit = 2});
  ASSERT_TRUE(two_states_limited.ok()) << two_states_limited.status().ToString();
  EXPECT_EQ(Ids(*two_states_limited), (std::vector<std::string>{d.id, c.id}));

  auto nlp_two_states = store_->ListJobs(
      {.states = {JobState::kScheduled, JobState::kQueued, JobState::kRunning}, .project = "nlp", .limit = 5});
  ASSERT_TRUE(nlp_two_states.ok()) << nlp_two_states.status().ToString();
  EXPECT_EQ(Ids(*nlp_two_states), (std::vector<std::string>{d.id, b.id}));
  ExpectSameJob((*nlp_two_states)[1], Get(b.id));

  auto none = store_->ListJobs({.states = {JobState::kRunning}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto unknown_project = store_->ListJobs({.project = "nope"});
  ASSERT_TRUE(unknown_project.ok());
  EXPECT_TRUE(unknown_project->empty());

  // Listed jobs carry full values.
  ExpectSameJob((*all)[1], Get(c.id));
}

TEST_P(StoreConformance, NegativeLimitIsRejected) {
  auto r = store_->ListJobs({.limit = -1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

TEST_P(StoreConformance, UpdatePersistsEveryField) {
  Job j = Create("run");
  Job after = j;
  after.state = JobState::kRunning;
  after.assigned_gpus = {"GPU-aaaa", "GPU-bbbb"};
  after.assigned_gpu_indices = {0, 3};
  after.node = "node-1";
  after.started_at = 1'700'000'200'000;
  after.finished_at = 1'700'000'300'000;
  after.exit_code = 0;
  after.signal = 9;
  after.reason = "running on node-1";
  after.attempt = 2;
  after.pid = 123456;
  after.spec.priority = 99;
  JobUpdate u{.job = after, .event = {.at = 5, .to = "RUNNING", .reason = "started", .actor = "agent:node-1"},
               .expected_state = JobState::kQueued};
  ASSERT_TRUE(store_->UpdateJobs({u}).ok());
  ExpectSameJob(Get(j.id), after);

  // Optional fields can be cleared again.
  after.exit_code.reset();
  after.signal.reset();
  after.assigned_gpus.clear();
  after.assigned_gpu_indices.clear();
  after.spec.env.clear();
  ASSERT_TRUE(store_->UpdateJobs({{.job = after, .event = {.reason = "cleared", .actor = "server"}}}).ok());
  ExpectSameJob(Get(j.id), after);
}

TEST_P(StoreConformance, CompareAndSet) {
  Job j = Create("cas");
  ASSERT_TRUE(Transition(j, JobState::kScheduled).ok());
  EXPECT_EQ(Get(j.id).state, JobState::kScheduled);

  // j still says QUEUED: a second transition based on it must fail and change nothing.
  Status st = Transition(j, JobState::kCancelled);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find(j.id), std::string::npos) << st.message();
  EXPECT_EQ(Get(j.id).state, JobState::kScheduled);
  auto events = store_->ListEvents(j.id);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->size(), 2u);

  // Without expected_state the update is unconditional.
  Job latest = Get(j.id);
  latest.state = JobState::kRunning;
  ASSERT_TRUE(store_->UpdateJobs({{.job = latest, .event = {.to = "RUNNING"}}}).ok());
  EXPECT_EQ(Get(j.id).state, JobState::kRunning);
}

TEST_P(StoreConformance, UpdateJobsIsAllOrNothing) {
  Job a = Create("a");
  Job b = Create("b");
  ASSERT_TRUE(Transition(b, JobState::kScheduled).ok());

  Job a2 = a;
  a2.state = JobState::kScheduled;
  a2.node = "node-1";
  Job b2 = b;  // stale: b is SCHEDULED now
  b2.state = JobState::kCancelled;
  Status st = store_->UpdateJobs({
      {.job = a2, .event = {.to = "SCHEDULED"}, .expected_state = JobState::kQueued},
      {.job = b2, .event = {.to = "CANCELLED"}, .expected_state = JobState::kQueued},
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition);
  EXPECT_EQ(Get(a.id).state, JobState::kQueued);
  EXPECT_EQ(Get(a.id).node, "");
  EXPECT_EQ(Get(b.id).state, JobState::kScheduled);
  EXPECT_EQ(store_->ListEvents(a.id)->size(), 1u);

  // An unknown job also fails the whole call.
  Job ghost = a2;
  ghost.id = "j-987654";
  st = store_->UpdateJobs({{.job = a2, .event = {.to = "SCHEDULED"}}, {.job = ghost, .event = {.to = "SCHEDULED"}}});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), ErrorCode::kNotFound);
  EXPECT_EQ(st.message(), "job j-987654 does not exist");
  EXPECT_EQ(Get(a.id).state, JobState::kQueued);

  // Empty update list is a no-op.
  EXPECT_TRUE(store_->UpdateJobs({}).ok());

  // Several jobs in one call all change.
  Job b3 = Get(b.id);
  b3.state = JobState::kRunning;
  ASSERT_TRUE(store_->UpdateJobs({
                                     {.job = a2, .event = {.to = "SCHEDULED"}, .expected_state = JobState::kQueued},
                                     {.job = b3, .event = {.to = "RUNNING"}, .expected_state = JobState::kScheduled},
                                 })
                  .ok());
  EXPECT_EQ(Get(a.id).state, JobState::kScheduled);
  EXPECT_EQ(Get(b.id).state, JobState::kRunning);
}

TEST_P(StoreConformance, EventsAreAppendedInOrder) {
  JobEvent submit = SubmitEvent(1000);
  auto created = store_->CreateJob(SampleJob("ev"), submit);
  ASSERT_TRUE(created.ok());
  Job j = *created;
  Job other = Create("other");  // interleaved events of another job must not show up
  ASSERT_TRUE(Transition(j, JobState::kScheduled, "placed").ok());
  j = Get(j.id);
  ASSERT_TRUE(Transition(other, JobState::kCancelled, "user cancelled").ok());
  ASSERT_TRUE(Transition(j, JobState::kRunning, "started").ok());
  j = Get(j.id);
  ASSERT_TRUE(Transition(j, JobState::kSucceeded, "exit 0").ok());

  auto events = store_->ListEvents(j.id);
  ASSERT_TRUE(events.ok()) << events.status().ToString();
  ASSERT_EQ(events->size(), 4u);
  const JobEvent& first = (*events)[0];
  EXPECT_EQ(first.job_id, j.id);
  EXPECT_EQ(first.from, "");
  EXPECT_EQ(first.to, "QUEUED");
  EXPECT_EQ(first.at, 1000);
  EXPECT_EQ(first.reason, "submitted");
  EXPECT_EQ(first.actor, "user:alice");
  std::vector<std::pair<std::string, std::string>> transitions;
  int64_t last_seq = 0;
  for (const JobEvent& e : *events) {
    EXPECT_EQ(e.job_id, j.id);
    EXPECT_GT(e.seq, last_seq);
    last_seq = e.seq;
    transitions.emplace_back(e.from, e.to);
  }
  EXPECT_EQ(transitions, (std::vector<std::pair<std::string, std::string>>{
                             {"", "QUEUED"}, {"QUEUED", "SCHEDULED"}, {"SCHEDULED", "RUNNING"}, {"RUNNING", "SUCCEEDED"}}));
  EXPECT_EQ((*events)[1].reason, "placed");
  EXPECT_EQ((*events)[1].actor, "scheduler");

  auto other_events = store_->ListEvents(other.id);
  ASSERT_TRUE(other_events.ok());
  ASSERT_EQ(other_events->size(), 2u);
  EXPECT_EQ((*other_events)[1].reason, "user cancelled");
}

TEST_P(StoreConformance, EventFromAndToDefaultToTheStates) {
  Job j = Create("defaults");
  Job next = j;
  next.state = JobState::kScheduled;
  ASSERT_TRUE(store_->UpdateJobs({{.job = next, .event = {.reason = "placed"}}}).ok());
  auto events = store_->ListEvents(j.id);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].from, "QUEUED");
  EXPECT_EQ((*events)[1].to, "SCHEDULED");
}

api::Gpu MakeGpu(const std::string& uuid, int index, const std::string& type) {
  api::Gpu g;
  g.uuid = uuid;
  g.index = index;
  g.name = type + " (simulated)";
  g.type = type;
  g.pci_bus_id = "0000:0" + std::to_string(index) + ":00.0";
  g.memory_total_mib = 81920;
  g.simulated = true;
  return g;
}

TEST_P(StoreConformance, NodesAndGpusUpsert) {
  auto empty_nodes = store_->ListNodes();
  ASSERT_TRUE(empty_nodes.ok());
  EXPECT_TRUE(empty_nodes->empty());

  api::Node n1{.name = "node-b", .address = "10.0.0.2:7070", .labels = {{"zone", "a"}}, .simulated = true,
               .last_heartbeat = 42, .gpu_count = 2};
  ASSERT_TRUE(store_->UpsertNode(n1, {MakeGpu("GPU-2", 1, "A100-80GB"), MakeGpu("GPU-1", 0, "A100-80GB")}).ok());
  api::Node n2{.name = "node-a", .address = "10.0.0.1:7070", .gpu_count = 1};
  ASSERT_TRUE(store_->UpsertNode(n2, {MakeGpu("GPU-9", 0, "H100-80GB")}).ok());

  auto nodes = store_->ListNodes();
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[0].name, "node-a");
  EXPECT_EQ((*nodes)[1].name, "node-b");
  EXPECT_EQ((*nodes)[1].address, "10.0.0.2:7070");
  EXPECT_EQ((*nodes)[1].labels, (std::map<std::string, std::string>{{"zone", "a"}}));
  EXPECT_TRUE((*nodes)[1].simulated);
  EXPECT_EQ((*nodes)[1].last_heartbeat, 42);
  EXPECT_EQ((*nodes)[1].gpu_count, 2);

  auto gpus = store_->ListGpus();
  ASSERT_TRUE(gpus.ok()) << gpus.status().ToString();
  ASSERT_EQ(gpus->size(), 3u);
  EXPECT_EQ((*gpus)[0].uuid, "GPU-9");
  EXPECT_EQ((*gpus)[0].node, "node-a");
  EXPECT_EQ((*gpus)[1].uuid, "GPU-1");
  EXPECT_EQ((*gpus)[1].node, "node-b");  // filled from the node
  EXPECT_EQ((*gpus)[1].index, 0);
  EXPECT_EQ((*gpus)[1].memory_total_mib, 81920);
  EXPECT_EQ((*gpus)[1].pci_bus_id, "0000:00:00.0");
  EXPECT_TRUE((*gpus)[1].simulated);
  EXPECT_EQ((*gpus)[2].uuid, "GPU-2");

  // Upserting replaces the node's values and its GPU set.
  n1.address = "10.0.0.3:7070";
  n1.draining = true;
  n1.gpu_count = 1;
  api::Gpu changed = MakeGpu("GPU-2", 0, "A100-80GB");
  changed.healthy = false;
  ASSERT_TRUE(store_->UpsertNode(n1, {changed}).ok());
  nodes = store_->ListNodes();
  ASSERT_TRUE(nodes.ok());
  ASSERT_EQ(nodes->size(), 2u);
  EXPECT_EQ((*nodes)[1].address, "10.0.0.3:7070");
  EXPECT_TRUE((*nodes)[1].draining);
  gpus = store_->ListGpus();
  ASSERT_TRUE(gpus.ok());
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[1].uuid, "GPU-2");
  EXPECT_EQ((*gpus)[1].index, 0);
  EXPECT_FALSE((*gpus)[1].healthy);

  // A GPU that shows up on another node moves there.
  ASSERT_TRUE(store_->UpsertNode(n2, {MakeGpu("GPU-9", 0, "H100-80GB"), MakeGpu("GPU-2", 1, "A100-80GB")}).ok());
  gpus = store_->ListGpus();
  ASSERT_TRUE(gpus.ok());
  ASSERT_EQ(gpus->size(), 2u);
  EXPECT_EQ((*gpus)[1].uuid, "GPU-2");
  EXPECT_EQ((*gpus)[1].node, "node-a");

  Status bad = store_->UpsertNode(api::Node{}, {});
  EXPECT_EQ(bad.code(), ErrorCode::kInvalidArgument);
}

TEST_P(StoreConformance, Settings) {
  auto missing = store_->GetSetting("cluster_id");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  ASSERT_TRUE(store_->PutSetting("cluster_id", "c-123").ok());
  ASSERT_TRUE(store_->PutSetting("empty", "").ok());
  auto got = store_->GetSetting("cluster_id");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value_or("?"), "c-123");
  ASSERT_TRUE(store_->PutSetting("cluster_id", "c-456").ok());
  EXPECT_EQ(store_->GetSetting("cluster_id")->value_or("?"), "c-456");
  EXPECT_EQ(store_->GetSetting("empty")->value_or("?"), "");
}

TEST_P(StoreConformance, PersistsAcrossReopen) {
  Job a = Create("a");
  Job b = Create("b", "nlp");
  ASSERT_TRUE(Transition(b, JobState::kScheduled, "placed").ok());
  ASSERT_TRUE(store_->PutSetting("cluster_id", "c-1").ok());
  ASSERT_TRUE(store_->UpsertNode({.name = "n1", .gpu_count = 1}, {MakeGpu("GPU-1", 0, "A100-80GB")}).ok());
  int version = store_->SchemaVersion();
  EXPECT_GT(version, 0);
  Job b_before = Get(b.id);

  Reopen();
  ExpectSameJob(Get(a.id), a);
  ExpectSameJob(Get(b.id), b_before);
  auto events = store_->ListEvents(b.id);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[1].reason, "placed");
  EXPECT_EQ(store_->GetSetting("cluster_id")->value_or("?"), "c-1");
  EXPECT_EQ(store_->ListNodes()->size(), 1u);
  EXPECT_EQ(store_->ListGpus()->size(), 1u);
  EXPECT_EQ(store_->SchemaVersion(), version);

  // Ids keep increasing after a restart.
  Job c = Create("c");
  EXPECT_GT(JobNumber(c.id), JobNumber(b.id));
  auto all = store_->ListJobs({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Ids(*all), (std::vector<std::string>{c.id, b.id, a.id}));
}

TEST_P(StoreConformance, ConcurrentCreatesGetUniqueIds) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 40;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::atomic<int> failures{0};
  std::atomic<bool> writers_done{false};
  std::atomic<int> reads{0};
  std::vector<std::thread> threads;
  // Readers run alongside the writers.
  std::thread reader([&] {
    while (!writers_done.load()) {
      auto r = store_->ListJobs({.states = {JobState::kQueued}, .limit = 50});
      if (!r.ok()) failures++;
      reads++;
    }
  });
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store_->CreateJob(SampleJob("t" + std::to_string(t) + "-" + std::to_string(i)), SubmitEvent());
        if (!r.ok()) {
          failures++;
          continue;
        }
        ids[t].push_back(r->id);
      }
    });
  }
  for (auto& th : threads) th.join();
  writers_done = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(reads.load(), 0);

  std::set<std::string> unique;
  for (int t = 0; t < kThreads; ++t) {
    // Each thread sees its own ids increase.
    for (size_t i = 1; i < ids[t].size(); ++i) EXPECT_GT(JobNumber(ids[t][i]), JobNumber(ids[t][i - 1]));
    unique.insert(ids[t].begin(), ids[t].end());
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const std::string& id : unique) {
    auto r = store_->GetJob(id);
    ASSERT_TRUE(r.ok()) << id << ": " << r.status().ToString();
    auto ev = store_->ListEvents(id);
    ASSERT_TRUE(ev.ok());
    EXPECT_EQ(ev->size(), 1u);
  }
  auto all = store_->ListJobs({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), unique.size());
}

TEST_P(StoreConformance, ConcurrentCompareAndSetHasOneWinner) {
  Job j = Create("contended");
  constexpr int kThreads = 12;
  std::atomic<int> wins{0};
  std::atomic<int> conflicts{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Job next = j;
      next.state = JobState::kScheduled;
      next.node = "node-" + std::to_string(t);
      Status st = store_->UpdateJobs({{.job = next, .event = {.to = "SCHEDULED"}, .expected_state = JobState::kQueued}});
      if (st.ok()) {
        wins++;
      } else if (st.code() == ErrorCode::kFailedPrecondition) {
        conflicts++;
      } else {
        other++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(conflicts.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(store_->ListEvents(j.id)->size(), 2u);
}

std::unique_ptr<Store> OpenSqlite(const std::string& dir) {
  auto r = OpenSqliteStore(dir + "/fastgpu.db");
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return nullptr;
  }
  return std::move(*r);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Values(StoreFactory{"sqlite", OpenSqlite}),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; });

}  // namespace
}  // namespace fastgpu::store
