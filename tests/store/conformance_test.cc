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

#include "store/postgres/postgres_store.h"
#include "store/store.h"
#include "store_test_util.h"
#include "support/pg_cluster.h"

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
  // Why this store cannot be tested here ("" = it can), e.g. its server is not installed: the test skips.
  std::function<std::string()> unavailable = [] { return std::string(); };
};

class StoreConformance : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    if (std::string why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
    Reopen();
  }

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
  EXPECT_EQ(a.spec.processes, b.spec.processes);
  EXPECT_EQ(a.spec.after, b.spec.after);
  EXPECT_EQ(a.spec.after_ok, b.spec.after_ok);
  EXPECT_EQ(a.spec.preemptible, b.spec.preemptible);
  EXPECT_EQ(a.spec.checkpoint_signal, b.spec.checkpoint_signal);
  EXPECT_EQ(a.spec.checkpoint_grace_s, b.spec.checkpoint_grace_s);
  EXPECT_EQ(a.spec.begin_at, b.spec.begin_at);
  EXPECT_EQ(a.spec.deadline_at, b.spec.deadline_at);
  EXPECT_EQ(a.attained_gpu_ms, b.attained_gpu_ms);
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

// `job list --user --name --since`: each filter alone, together, with states and a limit (several seeks).
TEST_P(StoreConformance, ListJobsByUserNameAndCreationTime) {
  auto make = [&](const std::string& name, const std::string& user, UnixMillis at, const std::string& project) {
    Job j = SampleJob(name, project);
    j.user = user;
    j.created_at = at;
    auto r = store_->CreateJob(j, SubmitEvent());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->id : std::string();
  };
  std::string a = make("sweep", "alice", 1'000, "vision");
  std::string b = make("train", "alice", 2'000, "nlp");
  std::string c = make("sweep", "bob", 3'000, "vision");
  std::string d = make("sweep", "alice", 4'000, "nlp");
  auto ids = [&](const JobFilter& f) {
    auto r = store_->ListJobs(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? Ids(*r) : std::vector<std::string>{};
  };
  EXPECT_EQ(ids({.user = "alice"}), (std::vector<std::string>{d, b, a}));
  EXPECT_EQ(ids({.name = "sweep"}), (std::vector<std::string>{d, c, a}));
  EXPECT_EQ(ids({.created_since = 2'000}), (std::vector<std::string>{d, c, b}));
  EXPECT_EQ(ids({.user = "alice", .name = "sweep", .created_since = 2'000}), (std::vector<std::string>{d}));
  EXPECT_EQ(ids({.states = {JobState::kQueued, JobState::kCancelled}, .user = "alice", .limit = 2}),
            (std::vector<std::string>{d, b}));
  EXPECT_EQ(ids({.states = {JobState::kQueued}, .projects = std::vector<std::string>{"vision", "nlp"}, .name = "sweep",
                 .limit = 5}),
            (std::vector<std::string>{d, c, a}));
  EXPECT_TRUE(ids({.user = "carol"}).empty());
  EXPECT_EQ(store_->ListJobs({.created_since = -1}).status().code(), ErrorCode::kInvalidArgument);
}

TEST_P(StoreConformance, NegativeLimitIsRejected) {
  auto r = store_->ListJobs({.limit = -1});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
}

TEST_P(StoreConformance, ListJobsPagesWithCursorAndProjectSet) {
  // Three projects, jobs of two states interleaved.
  std::vector<Job> jobs;
  for (int i = 0; i < 12; ++i) {
    const char* project = i % 3 == 0 ? "vision" : (i % 3 == 1 ? "nlp" : "audio");
    jobs.push_back(Create("j" + std::to_string(i), project));
    if (i % 2 == 1) {
      ASSERT_TRUE(Transition(jobs.back(), JobState::kCancelled).ok());
    }
  }
  auto num = [](const std::string& id) { return std::stoll(id.substr(2)); };
  auto expect = [&](auto keep) {
    std::vector<std::string> out;
    for (int i = static_cast<int>(jobs.size()) - 1; i >= 0; --i) {
      if (keep(i)) out.push_back(jobs[static_cast<size_t>(i)].id);
    }
    return out;
  };
  // Page through every filter shape with pages of 2: the pages join up to the unpaged answer.
  struct Case {
    std::vector<JobState> states;
    std::string project;
    std::optional<std::vector<std::string>> projects;
  };
  const std::vector<Case> cases = {
      {{}, "", std::nullopt},
      {{JobState::kQueued}, "", std::nullopt},
      {{JobState::kQueued, JobState::kCancelled}, "", std::nullopt},
      {{}, "", std::vector<std::string>{"vision", "audio"}},
      {{JobState::kCancelled}, "", std::vector<std::string>{"vision", "nlp"}},
      {{JobState::kQueued, JobState::kCancelled}, "", std::vector<std::string>{"nlp", "audio", "nlp"}},
      {{}, "nlp", std::vector<std::string>{"nlp", "audio"}},
      {{JobState::kQueued}, "nlp", std::nullopt},
  };
  for (const auto& c : cases) {
    auto whole = store_->ListJobs({.states = c.states, .project = c.project, .projects = c.projects});
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    ASSERT_FALSE(whole->empty());
    std::vector<std::string> paged;
    int64_t before = 0;
    for (int page = 0; page < 20; ++page) {
      auto r = store_->ListJobs(
          {.states = c.states, .project = c.project, .projects = c.projects, .before_num = before, .limit = 2});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_LE(r->size(), 2u);
      for (const auto& j : *r) paged.push_back(j.id);
      if (r->size() < 2) break;
      before = num(r->back().id);
    }
    EXPECT_EQ(paged, Ids(*whole));
    // Unlimited with a bound: everything older than the bound.
    auto older = store_->ListJobs(
        {.states = c.states, .project = c.project, .projects = c.projects, .before_num = num(jobs[6].id)});
    ASSERT_TRUE(older.ok());
    for (const auto& j : *older) EXPECT_LT(num(j.id), num(jobs[6].id));
  }
  auto vision_audio = store_->ListJobs({.projects = std::vector<std::string>{"vision", "audio"}});
  ASSERT_TRUE(vision_audio.ok());
  EXPECT_EQ(Ids(*vision_audio), expect([](int i) { return i % 3 != 1; }));
  auto cancelled_nlp = store_->ListJobs(
      {.states = {JobState::kCancelled}, .projects = std::vector<std::string>{"nlp"}, .limit = 100});
  ASSERT_TRUE(cancelled_nlp.ok());
  EXPECT_EQ(Ids(*cancelled_nlp), expect([](int i) { return i % 3 == 1 && i % 2 == 1; }));
  // No visible project, or a project outside the set: nothing.
  auto none = store_->ListJobs({.projects = std::vector<std::string>{}});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto outside = store_->ListJobs({.project = "vision", .projects = std::vector<std::string>{"nlp"}, .limit = 5});
  ASSERT_TRUE(outside.ok());
  EXPECT_TRUE(outside->empty());
  // A bound below every job, and a negative bound.
  auto below = store_->ListJobs({.before_num = num(jobs[0].id), .limit = 5});
  ASSERT_TRUE(below.ok());
  EXPECT_TRUE(below->empty());
  auto negative = store_->ListJobs({.before_num = -1});
  ASSERT_FALSE(negative.ok());
  EXPECT_EQ(negative.status().code(), ErrorCode::kInvalidArgument);
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

// A multi-node job's members (node, GPUs and the progress of each rank) survive update, list and reopen.
TEST_P(StoreConformance, GangMembersRoundTrip) {
  Job j = Create("gang");
  EXPECT_TRUE(Get(j.id).members.empty());
  Job after = j;
  after.state = JobState::kRunning;
  after.node = "node-a";
  after.assigned_gpus = {"GPU-a0", "GPU-a1", "GPU-b0", "GPU-b1"};
  after.assigned_gpu_indices = {0, 1};
  api::JobMember m0{.rank = 0, .node = "node-a", .gpu_uuids = {"GPU-a0", "GPU-a1"}, .gpu_indices = {0, 1}};
  m0.started = true;
  m0.pid = 4242;
  api::JobMember m1{.rank = 1, .node = "node-b", .gpu_uuids = {"GPU-b0", "GPU-b1"}, .gpu_indices = {2, 3}};
  m1.started = true;
  m1.ended = true;
  m1.exit_code = 3;
  m1.signal = 9;
  m1.reason = "exit code 3";
  after.members = {m0, m1};
  ASSERT_TRUE(store_->UpdateJobs({{.job = after, .event = {.to = "RUNNING", .reason = "started", .actor = "server"}}}).ok());
  auto check = [&](const Job& got) {
    ASSERT_EQ(got.members.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      const api::JobMember& w = after.members[i];
      const api::JobMember& g = got.members[i];
      EXPECT_EQ(g.rank, w.rank);
      EXPECT_EQ(g.node, w.node);
      EXPECT_EQ(g.gpu_uuids, w.gpu_uuids);
      EXPECT_EQ(g.gpu_indices, w.gpu_indices);
      EXPECT_EQ(g.started, w.started);
      EXPECT_EQ(g.ended, w.ended);
      EXPECT_EQ(g.pid, w.pid);
      EXPECT_EQ(g.exit_code, w.exit_code);
      EXPECT_EQ(g.signal, w.signal);
      EXPECT_EQ(g.reason, w.reason);
    }
  };
  check(Get(j.id));
  auto listed = store_->ListJobs({.states = {JobState::kRunning}});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  check(listed->front());
  Reopen();
  check(Get(j.id));
  after.members.clear();
  ASSERT_TRUE(store_->UpdateJobs({{.job = after, .event = {.reason = "cleared", .actor = "server"}}}).ok());
  EXPECT_TRUE(Get(j.id).members.empty());
}

// A job's process layout (one per node, or one per GPU) is kept from its submit on, through updates, lists
// and reopens; submits written together in one batch keep theirs too.
TEST_P(StoreConformance, DependenciesRoundTrip) {
  Job in = SampleJob("deps");
  in.spec.after = {"j-1", "j-2"};
  in.spec.after_ok = {"j-3"};
  auto created = store_->CreateJob(in, SubmitEvent());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(Get(created->id).spec.after, in.spec.after);
  EXPECT_EQ(Get(created->id).spec.after_ok, in.spec.after_ok);
  EXPECT_TRUE(Get(Create("plain").id).spec.after.empty());
  Job after = *created;
  after.state = JobState::kCancelled;
  ASSERT_TRUE(store_->UpdateJobs({{.job = after, .event = {.to = "CANCELLED", .reason = "dep", .actor = "server"}}}).ok());
  auto listed = store_->ListJobs({.states = {JobState::kCancelled}});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().spec.after_ok, in.spec.after_ok);
  // Preemption, the time window and the attained service travel in the same column, through updates.
  Job pre = SampleJob("preemptible");
  pre.spec.preemptible = true;
  pre.spec.checkpoint_signal = 12;
  pre.spec.checkpoint_grace_s = 5;
  pre.spec.begin_at = 1'800'000'000'000;
  pre.spec.deadline_at = 1'800'003'600'000;
  auto made = store_->CreateJob(pre, SubmitEvent());
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  Job resumed = Get(made->id);
  EXPECT_TRUE(resumed.spec.preemptible);
  EXPECT_EQ(resumed.spec.checkpoint_signal, 12);
  EXPECT_EQ(resumed.spec.checkpoint_grace_s, 5);
  EXPECT_EQ(resumed.spec.begin_at, pre.spec.begin_at);
  EXPECT_EQ(resumed.spec.deadline_at, pre.spec.deadline_at);
  resumed.attained_gpu_ms = 7'200'000;
  ASSERT_TRUE(store_->UpdateJobs({{.job = resumed, .event = {.to = "QUEUED", .reason = "preempted", .actor = "server"}}}).ok());
  EXPECT_EQ(Get(made->id).attained_gpu_ms, 7'200'000);
  EXPECT_EQ(Get(made->id).spec.checkpoint_signal, 12);
  // Batched submits (the bulk path of a store that has one).
  std::vector<std::thread> threads;
  std::vector<std::string> ids(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Job j = SampleJob("b" + std::to_string(t));
      j.spec.after = {"j-" + std::to_string(t + 1)};
      auto r = store_->SubmitJob(NewJob{.job = j, .event = SubmitEvent()});
      if (r.ok()) ids[static_cast<size_t>(t)] = r->job.id;
    });
  }
  for (auto& t : threads) t.join();
  Reopen();
  for (int t = 0; t < 4; ++t) {
    ASSERT_FALSE(ids[static_cast<size_t>(t)].empty()) << t;
    EXPECT_EQ(Get(ids[static_cast<size_t>(t)]).spec.after, std::vector<std::string>{"j-" + std::to_string(t + 1)});
  }
}

TEST_P(StoreConformance, ProcessLayoutRoundTrip) {
  Job in = SampleJob("ranks");
  in.spec.gpus_milli = 2000;
  in.spec.processes = api::ProcessLayout::kPerGpu;
  auto created = store_->CreateJob(in, SubmitEvent());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->spec.processes, api::ProcessLayout::kPerGpu);
  EXPECT_EQ(Get(created->id).spec.processes, api::ProcessLayout::kPerGpu);
  EXPECT_EQ(Get(Create("plain").id).spec.processes, api::ProcessLayout::kPerNode);

  Job after = *created;
  after.state = JobState::kRunning;
  after.attempt = 1;
  ASSERT_TRUE(store_->UpdateJobs({{.job = after, .event = {.to = "RUNNING", .reason = "started", .actor = "server"}}}).ok());
  EXPECT_EQ(Get(after.id).spec.processes, api::ProcessLayout::kPerGpu);
  auto listed = store_->ListJobs({.states = {JobState::kRunning}});
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().spec.processes, api::ProcessLayout::kPerGpu);

  // Concurrent submits (batched together by the store's writer).
  constexpr int kThreads = 6;
  std::vector<std::string> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Job j = SampleJob("batch-" + std::to_string(t));
      j.spec.gpus_milli = 1000;
      j.spec.processes = t % 2 == 0 ? api::ProcessLayout::kPerGpu : api::ProcessLayout::kPerNode;
      auto r = store_->SubmitJob(NewJob{.job = j, .event = SubmitEvent()});
      if (r.ok()) ids[static_cast<size_t>(t)] = r->job.id;
    });
  }
  for (auto& t : threads) t.join();
  Reopen();
  EXPECT_EQ(Get(after.id).spec.processes, api::ProcessLayout::kPerGpu);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_FALSE(ids[static_cast<size_t>(t)].empty()) << t;
    EXPECT_EQ(Get(ids[static_cast<size_t>(t)]).spec.processes,
              t % 2 == 0 ? api::ProcessLayout::kPerGpu : api::ProcessLayout::kPerNode)
        << t;
  }
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

// ---------------------------------------------------------------------------------------------
// Records.

std::vector<std::string> Keys(const std::vector<Record>& records) {
  std::vector<std::string> out;
  for (const Record& r : records) out.push_back(r.key);
  return out;
}

// The record's version, 0 when it does not exist, -1 on error.
int64_t VersionOf(Store& store, const std::string& kind, const std::string& key) {
  auto r = store.GetRecord(kind, key);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return -1;
  return r->has_value() ? (*r)->version : 0;
}

TEST_P(StoreConformance, RecordCompareAndSet) {
  auto missing = store_->GetRecord("user", "alice");
  ASSERT_TRUE(missing.ok()) << missing.status().ToString();
  EXPECT_FALSE(missing->has_value());

  // Create: must not exist yet.
  ASSERT_TRUE(PutRecord(*store_, "user", "alice", R"({"admin":false})", 0).ok());
  auto got = store_->GetRecord("user", "alice");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->kind, "user");
  EXPECT_EQ((*got)->key, "alice");
  EXPECT_EQ((*got)->value, R"({"admin":false})");
  EXPECT_EQ((*got)->version, 1);

  Status st = PutRecord(*store_, "user", "alice", "{}", 0);
  EXPECT_EQ(st.code(), ErrorCode::kAlreadyExists) << st.ToString();
  EXPECT_NE(st.message().find("alice"), std::string::npos) << st.message();

  // Update at the expected version.
  ASSERT_TRUE(PutRecord(*store_, "user", "alice", R"({"admin":true})", 1).ok());
  EXPECT_EQ(VersionOf(*store_, "user", "alice"), 2);
  st = PutRecord(*store_, "user", "alice", "stale", 1);
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(store_->GetRecord("user", "alice")->value().value, R"({"admin":true})");

  // Blind writes always apply and still bump the version.
  ASSERT_TRUE(PutRecord(*store_, "user", "alice", "blind").ok());
  EXPECT_EQ(VersionOf(*store_, "user", "alice"), 3);
  ASSERT_TRUE(PutRecord(*store_, "user", "bob", "new blind").ok());
  EXPECT_EQ(VersionOf(*store_, "user", "bob"), 1);

  // Updating a record that does not exist at an expected version.
  st = PutRecord(*store_, "user", "carol", "x", 4);
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(VersionOf(*store_, "user", "carol"), 0);

  // The same key under another kind is another record.
  ASSERT_TRUE(PutRecord(*store_, "project", "alice", "p", 0).ok());
  EXPECT_EQ(store_->GetRecord("project", "alice")->value().value, "p");
  EXPECT_EQ(VersionOf(*store_, "user", "alice"), 3);

  // Erase with compare-and-set.
  st = store_->WriteRecords({{.kind = "user", .key = "alice", .erase = true, .expected_version = 2}});
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  st = store_->WriteRecords({{.kind = "user", .key = "alice", .erase = true, .expected_version = 0}});
  EXPECT_EQ(st.code(), ErrorCode::kAlreadyExists) << st.ToString();
  EXPECT_EQ(VersionOf(*store_, "user", "alice"), 3);
  ASSERT_TRUE(store_->WriteRecords({{.kind = "user", .key = "alice", .erase = true, .expected_version = 3}}).ok());
  EXPECT_EQ(VersionOf(*store_, "user", "alice"), 0);
  st = store_->WriteRecords({{.kind = "user", .key = "alice", .erase = true, .expected_version = 3}});
  EXPECT_EQ(st.code(), ErrorCode::kNotFound) << st.ToString();
  EXPECT_TRUE(store_->GetRecord("project", "alice")->has_value());

  // Blind deletes are idempotent.
  EXPECT_TRUE(DeleteRecord(*store_, "user", "bob").ok());
  EXPECT_TRUE(DeleteRecord(*store_, "user", "bob").ok());
  EXPECT_TRUE(DeleteRecord(*store_, "user", "never-existed").ok());
  EXPECT_EQ(VersionOf(*store_, "user", "bob"), 0);

  // A deleted record can be created again and starts over at version 1.
  ASSERT_TRUE(PutRecord(*store_, "user", "alice", "again", 0).ok());
  EXPECT_EQ(VersionOf(*store_, "user", "alice"), 1);

  // Bad input.
  EXPECT_EQ(PutRecord(*store_, "", "k", "v").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(PutRecord(*store_, "user", "", "v").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(PutRecord(*store_, "user", "alice", "v", -1).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(VersionOf(*store_, "user", "alice"), 1);
  EXPECT_TRUE(store_->WriteRecords({}).ok());

  // Values are kept byte for byte.
  const std::string odd = std::string("quote \" backslash \\ newline \n nul ") + '\0' + " end \xc3\xa9";
  ASSERT_TRUE(PutRecord(*store_, "blob", "k", odd).ok());
  EXPECT_EQ(store_->GetRecord("blob", "k")->value().value, odd);
}

TEST_P(StoreConformance, WriteRecordsIsAllOrNothing) {
  ASSERT_TRUE(PutRecord(*store_, "user", "b", "b1", 0).ok());
  ASSERT_TRUE(PutRecord(*store_, "user", "b", "b2", 1).ok());

  // The second write's compare-and-set fails: the first one must not be applied either.
  Status st = store_->WriteRecords({
      {.kind = "user", .key = "a", .value = "a1", .expected_version = 0},
      {.kind = "user", .key = "b", .value = "stale", .expected_version = 1},
      {.kind = "user", .key = "c", .value = "c1"},
  });
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(VersionOf(*store_, "user", "a"), 0);
  EXPECT_EQ(VersionOf(*store_, "user", "c"), 0);
  EXPECT_EQ(store_->GetRecord("user", "b")->value().value, "b2");

  st = store_->WriteRecords({
      {.kind = "user", .key = "a", .value = "a1"},
      {.kind = "user", .key = "b", .erase = true},
      {.kind = "user", .key = "b", .value = "dup", .expected_version = 0},  // b is gone by now: ok
      {.kind = "user", .key = "c", .value = "c1", .expected_version = 0},
      {.kind = "user", .key = "a", .value = "a2", .expected_version = 0},   // exists: fails everything
  });
  EXPECT_EQ(st.code(), ErrorCode::kAlreadyExists) << st.ToString();
  EXPECT_EQ(VersionOf(*store_, "user", "a"), 0);
  EXPECT_EQ(VersionOf(*store_, "user", "b"), 2);
  EXPECT_EQ(VersionOf(*store_, "user", "c"), 0);

  // An invalid write fails the batch before anything is applied.
  st = store_->WriteRecords({{.kind = "user", .key = "a", .value = "a1"}, {.kind = "", .key = "x"}});
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  EXPECT_EQ(VersionOf(*store_, "user", "a"), 0);

  // Writes apply in order: a later write sees the earlier ones.
  ASSERT_TRUE(store_
                  ->WriteRecords({
                      {.kind = "user", .key = "a", .value = "a1", .expected_version = 0},
                      {.kind = "user", .key = "a", .value = "a2", .expected_version = 1},
                      {.kind = "user", .key = "b", .erase = true, .expected_version = 2},
                      {.kind = "user", .key = "b", .value = "b-new", .expected_version = 0},
                      {.kind = "membership", .key = "ml/a", .value = "owner"},
                  })
                  .ok());
  auto a = store_->GetRecord("user", "a");
  ASSERT_TRUE(a.ok() && a->has_value());
  EXPECT_EQ((*a)->value, "a2");
  EXPECT_EQ((*a)->version, 2);
  EXPECT_EQ(VersionOf(*store_, "user", "b"), 1);
  EXPECT_EQ(store_->GetRecord("user", "b")->value().value, "b-new");
  EXPECT_EQ(VersionOf(*store_, "membership", "ml/a"), 1);
}

TEST_P(StoreConformance, ListRecordsByPrefixInKeyOrder) {
  for (const std::string key : {"ml/bob", "nlp/carol", "ml2/x", "ml/alice", "m", "ml"}) {
    ASSERT_TRUE(PutRecord(*store_, "membership", key, "v-" + key).ok());
  }
  ASSERT_TRUE(PutRecord(*store_, "user", "ml/zz", "other kind").ok());
  ASSERT_TRUE(PutRecord(*store_, "membership", "ml/alice", "updated").ok());

  auto all = store_->ListRecords("membership", "");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(Keys(*all), (std::vector<std::string>{"m", "ml", "ml/alice", "ml/bob", "ml2/x", "nlp/carol"}));
  ASSERT_EQ(all->size(), 6u);
  EXPECT_EQ((*all)[2].kind, "membership");
  EXPECT_EQ((*all)[2].value, "updated");
  EXPECT_EQ((*all)[2].version, 2);
  EXPECT_EQ((*all)[3].value, "v-ml/bob");
  EXPECT_EQ((*all)[3].version, 1);

  auto ml_slash = store_->ListRecords("membership", "ml/");
  ASSERT_TRUE(ml_slash.ok());
  EXPECT_EQ(Keys(*ml_slash), (std::vector<std::string>{"ml/alice", "ml/bob"}));

  auto ml = store_->ListRecords("membership", "ml");
  ASSERT_TRUE(ml.ok());
  EXPECT_EQ(Keys(*ml), (std::vector<std::string>{"ml", "ml/alice", "ml/bob", "ml2/x"}));

  auto exact = store_->ListRecords("membership", "ml/bob");
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(Keys(*exact), (std::vector<std::string>{"ml/bob"}));

  EXPECT_TRUE(store_->ListRecords("membership", "zzz")->empty());
  EXPECT_TRUE(store_->ListRecords("membership", "ml/bobby")->empty());
  EXPECT_TRUE(store_->ListRecords("nothing", "")->empty());
  EXPECT_EQ(Keys(*store_->ListRecords("user", "")), (std::vector<std::string>{"ml/zz"}));

  // Prefixes are matched byte for byte: no wildcards, and bytes at the top of the range.
  ASSERT_TRUE(PutRecord(*store_, "raw", "a%b", "1").ok());
  ASSERT_TRUE(PutRecord(*store_, "raw", "a_b", "2").ok());
  ASSERT_TRUE(PutRecord(*store_, "raw", "axb", "3").ok());
  ASSERT_TRUE(PutRecord(*store_, "raw", "z\xff", "4").ok());
  ASSERT_TRUE(PutRecord(*store_, "raw", "z\xff\xff" "a", "5").ok());
  ASSERT_TRUE(PutRecord(*store_, "raw", "z\xfe", "6").ok());
  EXPECT_EQ(Keys(*store_->ListRecords("raw", "a%")), (std::vector<std::string>{"a%b"}));
  EXPECT_EQ(Keys(*store_->ListRecords("raw", "a_")), (std::vector<std::string>{"a_b"}));
  EXPECT_EQ(Keys(*store_->ListRecords("raw", "z\xff")), (std::vector<std::string>{"z\xff", "z\xff\xff" "a"}));
  EXPECT_EQ(Keys(*store_->ListRecords("raw", "z\xff\xff")), (std::vector<std::string>{"z\xff\xff" "a"}));
  EXPECT_EQ(Keys(*store_->ListRecords("raw", "z")), (std::vector<std::string>{"z\xfe", "z\xff", "z\xff\xff" "a"}));

  // Deleted records are gone from listings.
  ASSERT_TRUE(DeleteRecord(*store_, "membership", "ml/alice").ok());
  EXPECT_EQ(Keys(*store_->ListRecords("membership", "ml/")), (std::vector<std::string>{"ml/bob"}));
}

TEST_P(StoreConformance, ConcurrentRecordCompareAndSetHasOneWinner) {
  ASSERT_TRUE(PutRecord(*store_, "project", "ml", "v1", 0).ok());
  constexpr int kThreads = 12;
  std::atomic<int> wins{0};
  std::atomic<int> conflicts{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Status st = PutRecord(*store_, "project", "ml", "writer-" + std::to_string(t), 1);
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
  EXPECT_EQ(VersionOf(*store_, "project", "ml"), 2);
}

// ---------------------------------------------------------------------------------------------
// Audit log.

api::AuditRecord MakeAudit(const std::string& actor, const std::string& action, UnixMillis at = 1'700'000'000'000) {
  api::AuditRecord r;
  r.at = at;
  r.actor = actor;
  r.source = "127.0.0.1";
  r.action = action;
  r.target = "job:j-1";
  r.result = "ok";
  r.detail = "detail with \"quotes\"; and 3:colons";
  return r;
}

// Checks that `rows` is the whole log: seq 1..n, each linked to the previous one, each hash correct.
void ExpectValidChain(const std::vector<api::AuditRecord>& rows) {
  std::string prev;
  for (size_t i = 0; i < rows.size(); ++i) {
    const api::AuditRecord& r = rows[i];
    EXPECT_EQ(r.seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(r.prev_hash, prev) << "seq " << r.seq;
    EXPECT_EQ(r.hash, api::AuditHash(r)) << "seq " << r.seq;
    EXPECT_EQ(r.hash.size(), 64u) << "seq " << r.seq;
    prev = r.hash;
  }
}

TEST_P(StoreConformance, AuditAppendsFormAHashChain) {
  auto empty = store_->ListAudit(0, 0);
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->empty());

  std::vector<api::AuditRecord> appended;
  for (int i = 0; i < 3; ++i) {
    api::AuditRecord in = MakeAudit("user:alice", "POST /v1/jobs", 1000 + i);
    in.target = "job:j-" + std::to_string(i);
    // Caller-supplied chain fields are ignored: the store assigns them.
    in.seq = 99;
    in.prev_hash = "forged";
    in.hash = "forged";
    auto r = store_->AppendAudit(in);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->seq, i + 1);
    EXPECT_EQ(r->at, 1000 + i);
    EXPECT_EQ(r->actor, in.actor);
    EXPECT_EQ(r->target, in.target);
    EXPECT_EQ(r->detail, in.detail);
    EXPECT_EQ(r->prev_hash, i == 0 ? "" : appended.back().hash);
    EXPECT_EQ(r->hash, api::AuditHash(*r));
    appended.push_back(*r);
  }

  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  ExpectValidChain(*rows);
  for (size_t i = 0; i < rows->size(); ++i) {
    const api::AuditRecord& a = appended[i];
    const api::AuditRecord& b = (*rows)[i];
    EXPECT_EQ(a.seq, b.seq);
    EXPECT_EQ(a.at, b.at);
    EXPECT_EQ(a.actor, b.actor);
    EXPECT_EQ(a.source, b.source);
    EXPECT_EQ(a.action, b.action);
    EXPECT_EQ(a.target, b.target);
    EXPECT_EQ(a.result, b.result);
    EXPECT_EQ(a.detail, b.detail);
    EXPECT_EQ(a.prev_hash, b.prev_hash);
    EXPECT_EQ(a.hash, b.hash);
  }

  // Tampering with any stored field would break the chain: the hash covers every field.
  api::AuditRecord tampered = (*rows)[1];
  tampered.detail = "rewritten";
  EXPECT_NE(api::AuditHash(tampered), (*rows)[1].hash);
}

TEST_P(StoreConformance, ConcurrentAuditAppendsFormOneChain) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::vector<api::AuditRecord>> mine(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store_->AppendAudit(MakeAudit("user:t" + std::to_string(t), "op-" + std::to_string(i)));
        if (!r.ok()) {
          failures++;
          continue;
        }
        mine[t].push_back(*r);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);

  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), static_cast<size_t>(kThreads * kPerThread));
  ExpectValidChain(*rows);
  // What each caller got back is exactly the stored row, and its own appends are in its order.
  for (int t = 0; t < kThreads; ++t) {
    int64_t last = 0;
    for (const api::AuditRecord& r : mine[t]) {
      ASSERT_GE(r.seq, 1);
      ASSERT_LE(r.seq, static_cast<int64_t>(rows->size()));
      const api::AuditRecord& stored = (*rows)[static_cast<size_t>(r.seq - 1)];
      EXPECT_EQ(stored.actor, r.actor);
      EXPECT_EQ(stored.action, r.action);
      EXPECT_EQ(stored.hash, r.hash);
      EXPECT_EQ(stored.prev_hash, r.prev_hash);
      EXPECT_GT(r.seq, last);
      last = r.seq;
    }
  }
}

TEST_P(StoreConformance, ListAuditAfterSeqWithLimit) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store_->AppendAudit(MakeAudit("user:a", "op", i)).ok());
  auto seqs = [](const std::vector<api::AuditRecord>& rows) {
    std::vector<int64_t> out;
    for (const api::AuditRecord& r : rows) out.push_back(r.seq);
    return out;
  };
  auto page = store_->ListAudit(3, 4);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  EXPECT_EQ(seqs(*page), (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ((*page)[0].at, 3);
  auto rest = store_->ListAudit(8, 0);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(seqs(*rest), (std::vector<int64_t>{9, 10}));
  auto first = store_->ListAudit(0, 1);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(seqs(*first), (std::vector<int64_t>{1}));
  EXPECT_EQ(store_->ListAudit(-5, 2)->size(), 2u);
  EXPECT_TRUE(store_->ListAudit(10, 5)->empty());
  EXPECT_TRUE(store_->ListAudit(1000, 0)->empty());
  auto bad = store_->ListAudit(0, -1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);

  // Paging through with after_seq visits every row once.
  std::vector<int64_t> paged;
  int64_t after = 0;
  while (true) {
    auto p = store_->ListAudit(after, 3);
    ASSERT_TRUE(p.ok());
    if (p->empty()) break;
    for (const api::AuditRecord& r : *p) paged.push_back(r.seq);
    after = p->back().seq;
  }
  EXPECT_EQ(paged, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

// ---------------------------------------------------------------------------------------------
// Usage and ledger.

api::UsageSegment MakeUsage(const std::string& job_id, int attempt, const std::string& project, UnixMillis start,
                            UnixMillis end) {
  api::UsageSegment u;
  u.key = job_id + "/" + std::to_string(attempt);
  u.job_id = job_id;
  u.attempt = attempt;
  u.project = project;
  u.user = "alice";
  u.gpu_type = "A100-80GB";
  u.milli = 2000;
  u.gpus = {"GPU-aaaa", "GPU-bbbb"};
  u.start_ms = start;
  u.end_ms = end;
  return u;
}

api::LedgerEntry MakeEntry(const std::string& key, const std::string& project, const std::string& month,
                           const std::string& kind, int64_t amount) {
  api::LedgerEntry e;
  e.key = key;
  e.at = 1'700'000'000'000;
  e.project = project;
  e.kind = kind;
  e.debit = "project:" + project;
  e.credit = kind == "usage" ? "revenue" : "grants";
  e.amount_micro = amount;
  e.month = month;
  return e;
}

void ExpectSameUsage(const api::UsageSegment& a, const api::UsageSegment& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.job_id, b.job_id);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.project, b.project);
  EXPECT_EQ(a.user, b.user);
  EXPECT_EQ(a.gpu_type, b.gpu_type);
  EXPECT_EQ(a.milli, b.milli);
  EXPECT_EQ(a.gpus, b.gpus);
  EXPECT_EQ(a.start_ms, b.start_ms);
  EXPECT_EQ(a.end_ms, b.end_ms);
}

// Compares every field but seq.
void ExpectSameEntry(const api::LedgerEntry& a, const api::LedgerEntry& b) {
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.at, b.at);
  EXPECT_EQ(a.project, b.project);
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.debit, b.debit);
  EXPECT_EQ(a.credit, b.credit);
  EXPECT_EQ(a.amount_micro, b.amount_micro);
  EXPECT_EQ(a.month, b.month);
  EXPECT_EQ(a.job_id, b.job_id);
  EXPECT_EQ(a.gpu_type, b.gpu_type);
  EXPECT_EQ(a.seconds, b.seconds);
  EXPECT_EQ(a.milli, b.milli);
  EXPECT_EQ(a.unit_price_micro, b.unit_price_micro);
  EXPECT_EQ(a.gross_micro, b.gross_micro);
  EXPECT_EQ(a.discount_micro, b.discount_micro);
  EXPECT_EQ(a.expires_at, b.expires_at);
  EXPECT_EQ(a.memo, b.memo);
  EXPECT_EQ(a.actor, b.actor);
}

std::vector<std::string> EntryKeys(const std::vector<api::LedgerEntry>& entries) {
  std::vector<std::string> out;
  for (const api::LedgerEntry& e : entries) out.push_back(e.key);
  return out;
}

std::vector<std::string> UsageKeys(const std::vector<api::UsageSegment>& usage) {
  std::vector<std::string> out;
  for (const api::UsageSegment& u : usage) out.push_back(u.key);
  return out;
}

TEST_P(StoreConformance, PostLedgerIsIdempotentByKey) {
  EXPECT_TRUE(store_->ListLedger({})->empty());
  EXPECT_TRUE(store_->ListUsage({})->empty());

  api::UsageSegment seg = MakeUsage("j-1", 0, "ml", 1000, 61'000);
  api::LedgerEntry usage = MakeEntry("usage/j-1/0", "ml", "2026-11", "usage", 2'500'000);
  usage.job_id = "j-1";
  usage.gpu_type = "A100-80GB";
  usage.seconds = 60;
  usage.milli = 2000;
  usage.unit_price_micro = 2'500'000;
  usage.gross_micro = 3'000'000;
  usage.discount_micro = 500'000;
  usage.memo = "memo \"quoted\"";
  usage.actor = "metering";
  api::LedgerEntry credit = MakeEntry("trial/ml", "ml", "2026-11", "trial_credit", 10'000'000);
  credit.expires_at = 1'800'000'000'000;
  credit.seq = 42;  // ignored: the store assigns seq
  ASSERT_TRUE(store_->PostLedger({seg}, {usage, credit}).ok());

  // Posting the same keys again (even with other content) changes nothing.
  api::UsageSegment seg2 = seg;
  seg2.end_ms = 999'999;
  api::LedgerEntry usage2 = usage;
  usage2.amount_micro = 1;
  ASSERT_TRUE(store_->PostLedger({seg2, seg2}, {usage2, credit}).ok());
  ASSERT_TRUE(store_->PostLedger({}, {credit}).ok());
  ASSERT_TRUE(store_->PostLedger({}, {}).ok());

  auto entries = store_->ListLedger({});
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 2u);
  ExpectSameEntry((*entries)[0], usage);
  ExpectSameEntry((*entries)[1], credit);
  EXPECT_GT((*entries)[0].seq, 0);
  EXPECT_GT((*entries)[1].seq, (*entries)[0].seq);
  auto segments = store_->ListUsage({});
  ASSERT_TRUE(segments.ok()) << segments.status().ToString();
  ASSERT_EQ(segments->size(), 1u);
  ExpectSameUsage((*segments)[0], seg);

  // A batch of old and new keys adds only the new ones, after the old ones.
  api::LedgerEntry adj = MakeEntry("adj/1", "ml", "2026-11", "adjustment", 0);
  api::UsageSegment no_gpus = MakeUsage("j-2", 1, "ml", 2000, 3000);
  no_gpus.gpus.clear();
  ASSERT_TRUE(store_->PostLedger({seg, no_gpus}, {credit, adj, usage}).ok());
  entries = store_->ListLedger({});
  ASSERT_TRUE(entries.ok());
  EXPECT_EQ(EntryKeys(*entries), (std::vector<std::string>{"usage/j-1/0", "trial/ml", "adj/1"}));
  EXPECT_GT((*entries)[2].seq, (*entries)[1].seq);
  segments = store_->ListUsage({});
  ASSERT_TRUE(segments.ok());
  ASSERT_EQ(segments->size(), 2u);
  ExpectSameUsage((*segments)[1], no_gpus);

  // Bad postings are refused whole.
  api::LedgerEntry negative = MakeEntry("neg", "ml", "2026-11", "adjustment", -5);
  Status st = store_->PostLedger({}, {MakeEntry("fine", "ml", "2026-11", "adjustment", 5), negative});
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  api::LedgerEntry no_key = MakeEntry("", "ml", "2026-11", "adjustment", 5);
  EXPECT_EQ(store_->PostLedger({}, {no_key}).code(), ErrorCode::kInvalidArgument);
  api::UsageSegment seg_no_key = MakeUsage("j-3", 0, "ml", 0, 1);
  seg_no_key.key.clear();
  EXPECT_EQ(store_->PostLedger({seg_no_key}, {MakeEntry("fine", "ml", "2026-11", "adjustment", 5)}).code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(store_->ListLedger({})->size(), 3u);
  EXPECT_EQ(store_->ListUsage({})->size(), 2u);
}

TEST_P(StoreConformance, ListUsageFilters) {
  ASSERT_TRUE(store_
                  ->PostLedger({MakeUsage("j-3", 0, "nlp", 5000, 9000), MakeUsage("j-1", 0, "ml", 1000, 2000),
                                MakeUsage("j-1", 1, "ml", 3000, 4000), MakeUsage("j-2", 0, "ml", 2500, 7000),
                                MakeUsage("j-4", 0, "nlp", 10'000, 12'000)},
                               {})
                  .ok());
  auto keys = [&](const UsageFilter& f) {
    auto r = store_->ListUsage(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? UsageKeys(*r) : std::vector<std::string>{"error"};
  };
  // Ordered by start.
  EXPECT_EQ(keys({}), (std::vector<std::string>{"j-1/0", "j-2/0", "j-1/1", "j-3/0", "j-4/0"}));
  EXPECT_EQ(keys({.project = "ml"}), (std::vector<std::string>{"j-1/0", "j-2/0", "j-1/1"}));
  EXPECT_EQ(keys({.project = "nlp"}), (std::vector<std::string>{"j-3/0", "j-4/0"}));
  EXPECT_EQ(keys({.project = "none"}), std::vector<std::string>{});
  EXPECT_EQ(keys({.job_id = "j-1"}), (std::vector<std::string>{"j-1/0", "j-1/1"}));
  EXPECT_EQ(keys({.project = "nlp", .job_id = "j-1"}), std::vector<std::string>{});
  // Time window [from, to): segments ending at or after `from` and starting before `to`.
  EXPECT_EQ(keys({.from = 4000}), (std::vector<std::string>{"j-2/0", "j-1/1", "j-3/0", "j-4/0"}));
  EXPECT_EQ(keys({.from = 4001}), (std::vector<std::string>{"j-2/0", "j-3/0", "j-4/0"}));
  EXPECT_EQ(keys({.to = 3000}), (std::vector<std::string>{"j-1/0", "j-2/0"}));
  EXPECT_EQ(keys({.from = 4500, .to = 10'000}), (std::vector<std::string>{"j-2/0", "j-3/0"}));
  EXPECT_EQ(keys({.project = "ml", .from = 2000, .to = 2600}), (std::vector<std::string>{"j-1/0", "j-2/0"}));
  EXPECT_EQ(keys({.project = "ml", .job_id = "j-1", .from = 2001}), (std::vector<std::string>{"j-1/1"}));
}

TEST_P(StoreConformance, ListLedgerFiltersInSeqOrder) {
  std::vector<api::LedgerEntry> entries = {
      MakeEntry("e1", "ml", "2026-10", "usage", 1), MakeEntry("e2", "nlp", "2026-11", "usage", 2),
      MakeEntry("e3", "ml", "2026-11", "trial_credit", 3), MakeEntry("e4", "ml", "2026-11", "usage", 4),
  };
  ASSERT_TRUE(store_->PostLedger({}, entries).ok());
  ASSERT_TRUE(store_->PostLedger({}, {MakeEntry("e0", "ml", "2026-11", "usage", 5)}).ok());
  auto keys = [&](const LedgerFilter& f) {
    auto r = store_->ListLedger(f);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return std::vector<std::string>{"error"};
    for (size_t i = 1; i < r->size(); ++i) EXPECT_GT((*r)[i].seq, (*r)[i - 1].seq);
    return EntryKeys(*r);
  };
  // Posting order, not key order.
  EXPECT_EQ(keys({}), (std::vector<std::string>{"e1", "e2", "e3", "e4", "e0"}));
  EXPECT_EQ(keys({.project = "ml"}), (std::vector<std::string>{"e1", "e3", "e4", "e0"}));
  EXPECT_EQ(keys({.month = "2026-11"}), (std::vector<std::string>{"e2", "e3", "e4", "e0"}));
  EXPECT_EQ(keys({.kind = "usage"}), (std::vector<std::string>{"e1", "e2", "e4", "e0"}));
  EXPECT_EQ(keys({.project = "ml", .month = "2026-11"}), (std::vector<std::string>{"e3", "e4", "e0"}));
  EXPECT_EQ(keys({.project = "ml", .month = "2026-11", .kind = "usage"}), (std::vector<std::string>{"e4", "e0"}));
  EXPECT_EQ(keys({.month = "2026-12"}), std::vector<std::string>{});
  EXPECT_EQ(keys({.project = "nlp", .kind = "trial_credit"}), std::vector<std::string>{});
}

TEST_P(StoreConformance, JobUpdateWritesMeteringAtomically) {
  Job j = Create("metered", "ml");
  ASSERT_TRUE(Transition(j, JobState::kScheduled).ok());
  j = Get(j.id);
  ASSERT_TRUE(Transition(j, JobState::kRunning).ok());
  j = Get(j.id);

  api::UsageSegment seg = MakeUsage(j.id, 0, "ml", 1000, 3'601'000);
  api::LedgerEntry charge = MakeEntry("usage/" + j.id + "/0", "ml", "2026-11", "usage", 5'000'000);
  charge.job_id = j.id;
  Job done = j;
  done.state = JobState::kSucceeded;
  done.exit_code = 0;
  JobUpdate finish{.job = done, .event = {.to = "SUCCEEDED", .reason = "exit 0"}, .expected_state = JobState::kRunning,
                   .usage = {seg}, .ledger = {charge}};
  ASSERT_TRUE(store_->UpdateJobs({finish}).ok());
  EXPECT_EQ(Get(j.id).state, JobState::kSucceeded);
  auto segments = store_->ListUsage({.job_id = j.id});
  ASSERT_TRUE(segments.ok());
  ASSERT_EQ(segments->size(), 1u);
  ExpectSameUsage((*segments)[0], seg);
  auto entries = store_->ListLedger({});
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  ExpectSameEntry((*entries)[0], charge);

  // The same finish replayed (say, by recovery after a crash) is a compare-and-set failure now...
  Status st = store_->UpdateJobs({finish});
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  // ...and an unconditional replay applies, but writes no second segment or ledger entry.
  JobUpdate replay = finish;
  replay.expected_state.reset();
  ASSERT_TRUE(store_->UpdateJobs({replay}).ok());
  EXPECT_EQ(store_->ListUsage({})->size(), 1u);
  EXPECT_EQ(store_->ListLedger({})->size(), 1u);
  ExpectSameEntry(store_->ListLedger({})->at(0), charge);

  // A failed compare-and-set writes no metering.
  Job other = Create("other", "ml");  // QUEUED
  Job other_done = other;
  other_done.state = JobState::kFailed;
  st = store_->UpdateJobs({{.job = other_done, .event = {.to = "FAILED"}, .expected_state = JobState::kRunning,
                            .usage = {MakeUsage(other.id, 0, "ml", 0, 10)},
                            .ledger = {MakeEntry("usage/" + other.id + "/0", "ml", "2026-11", "usage", 7)}}});
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  EXPECT_TRUE(store_->ListUsage({.job_id = other.id})->empty());
  EXPECT_EQ(store_->ListLedger({})->size(), 1u);
  EXPECT_EQ(Get(other.id).state, JobState::kQueued);

  // Nor does a batch where another update fails: metering of the good update is rolled back too.
  Job third = Create("third", "ml");
  Job third_done = third;
  third_done.state = JobState::kCancelled;
  st = store_->UpdateJobs({
      {.job = third_done, .event = {.to = "CANCELLED"}, .expected_state = JobState::kQueued,
       .usage = {MakeUsage(third.id, 0, "ml", 0, 10)},
       .ledger = {MakeEntry("usage/" + third.id + "/0", "ml", "2026-11", "usage", 9)}},
      {.job = other_done, .event = {.to = "FAILED"}, .expected_state = JobState::kRunning},
  });
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(Get(third.id).state, JobState::kQueued);
  EXPECT_EQ(store_->ListUsage({})->size(), 1u);
  EXPECT_EQ(store_->ListLedger({})->size(), 1u);

  // Invalid metering fails the update before anything is written.
  api::LedgerEntry bad = MakeEntry("", "ml", "2026-11", "usage", 9);
  st = store_->UpdateJobs({{.job = third_done, .event = {.to = "CANCELLED"}, .ledger = {bad}}});
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  EXPECT_EQ(Get(third.id).state, JobState::kQueued);

  // Metering posted separately and then again with a job update is still written once.
  api::UsageSegment pre = MakeUsage(third.id, 0, "ml", 0, 10);
  ASSERT_TRUE(store_->PostLedger({pre}, {}).ok());
  ASSERT_TRUE(store_
                  ->UpdateJobs({{.job = third_done, .event = {.to = "CANCELLED"}, .expected_state = JobState::kQueued,
                                 .usage = {pre}, .ledger = {MakeEntry("usage/" + third.id + "/0", "ml", "2026-11",
                                                                      "usage", 9)}}})
                  .ok());
  EXPECT_EQ(Get(third.id).state, JobState::kCancelled);
  EXPECT_EQ(store_->ListUsage({.job_id = third.id})->size(), 1u);
  EXPECT_EQ(EntryKeys(*store_->ListLedger({})),
            (std::vector<std::string>{"usage/" + j.id + "/0", "usage/" + third.id + "/0"}));
}

TEST_P(StoreConformance, RecordsAuditAndLedgerPersistAcrossReopen) {
  ASSERT_TRUE(PutRecord(*store_, "user", "alice", "v1", 0).ok());
  ASSERT_TRUE(PutRecord(*store_, "user", "alice", "v2", 1).ok());
  auto a1 = store_->AppendAudit(MakeAudit("user:alice", "login"));
  ASSERT_TRUE(a1.ok());
  auto a2 = store_->AppendAudit(MakeAudit("user:alice", "logout"));
  ASSERT_TRUE(a2.ok());
  api::UsageSegment seg = MakeUsage("j-1", 0, "ml", 1, 2);
  api::LedgerEntry e1 = MakeEntry("e1", "ml", "2026-11", "usage", 10);
  ASSERT_TRUE(store_->PostLedger({seg}, {e1}).ok());
  int64_t e1_seq = store_->ListLedger({})->at(0).seq;

  Reopen();
  auto rec = store_->GetRecord("user", "alice");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->value, "v2");
  EXPECT_EQ((*rec)->version, 2);
  EXPECT_EQ(PutRecord(*store_, "user", "alice", "stale", 1).code(), ErrorCode::kFailedPrecondition);

  // The chain continues where it stopped.
  auto a3 = store_->AppendAudit(MakeAudit("user:bob", "login"));
  ASSERT_TRUE(a3.ok()) << a3.status().ToString();
  EXPECT_EQ(a3->seq, 3);
  EXPECT_EQ(a3->prev_hash, a2->hash);
  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 3u);
  ExpectValidChain(*rows);
  EXPECT_EQ((*rows)[0].hash, a1->hash);

  // Idempotency keys are remembered, and ledger seqs keep increasing.
  ASSERT_TRUE(store_->PostLedger({seg}, {e1, MakeEntry("e2", "ml", "2026-11", "usage", 20)}).ok());
  auto entries = store_->ListLedger({});
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].seq, e1_seq);
  EXPECT_GT((*entries)[1].seq, e1_seq);
  EXPECT_EQ(store_->ListUsage({})->size(), 1u);
}

std::unique_ptr<Store> OpenSqlite(const std::string& dir) {
  auto r = OpenSqliteStore(dir + "/fastgpu.db");
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return nullptr;
  }
  return std::move(*r);
}

// A submit's audit row is written in the job's transaction, with the new job as its target.
TEST_P(StoreConformance, SubmitJobAppendsItsAuditRowWithTheJob) {
  ASSERT_TRUE(store_->AppendAudit(MakeAudit("user:alice", "login")).ok());
  NewJob n{.job = SampleJob("audited"), .event = SubmitEvent(), .audit = MakeAudit("user:alice", "POST /v1/jobs")};
  auto r = store_->SubmitJob(n);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->existing);
  ASSERT_TRUE(r->audit.has_value());
  EXPECT_EQ(r->audit->seq, 2);
  EXPECT_EQ(r->audit->target, "job:" + r->job.id);
  EXPECT_EQ(store_->Stats().last_audit_seq, 2);
  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 2u);
  ExpectValidChain(*rows);
  EXPECT_EQ((*rows)[1].target, "job:" + r->job.id);
  EXPECT_EQ((*rows)[1].hash, r->audit->hash);
}

// A failing update (compare-and-set) writes neither the change nor its audit row.
TEST_P(StoreConformance, UpdateJobsAppendsTheAuditRowOnlyWithTheChange) {
  Job j = Create("cancel-me");
  JobUpdate u;
  u.job = j;
  u.job.state = JobState::kCancelled;
  u.event.to = "CANCELLED";
  u.expected_state = JobState::kRunning;  // wrong: it is QUEUED
  u.audit = MakeAudit("user:alice", "POST /v1/jobs/{id}/cancel");
  EXPECT_EQ(store_->UpdateJobs({u}).code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(store_->ListAudit(0, 0)->empty());
  u.expected_state = JobState::kQueued;
  ASSERT_TRUE(store_->UpdateJobs({u}).ok());
  auto rows = store_->ListAudit(0, 0);
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].action, "POST /v1/jobs/{id}/cancel");
  EXPECT_EQ(store_->Stats().last_audit_seq, 1);
  EXPECT_EQ(Get(j.id).state, JobState::kCancelled);
}

// One job per (scope, key), ever: the same request again returns it; another request with the key is refused;
// another scope is another key.
TEST_P(StoreConformance, IdempotencyKeyCreatesOneJob) {
  NewJob n{.job = SampleJob("once"), .event = SubmitEvent(), .audit = MakeAudit("user:alice", "POST /v1/jobs"),
           .idempotency_scope = "user:alice", .idempotency_key = "k-1", .fingerprint = "f-1"};
  auto first = store_->SubmitJob(n);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto again = store_->SubmitJob(n);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->existing);
  EXPECT_FALSE(again->audit.has_value());
  EXPECT_EQ(again->job.id, first->job.id);
  EXPECT_EQ(store_->ListAudit(0, 0)->size(), 1u) << "a replay writes no second audit row";

  NewJob other = n;
  other.fingerprint = "f-2";
  auto conflict = store_->SubmitJob(other);
  ASSERT_FALSE(conflict.ok());
  EXPECT_EQ(conflict.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(conflict.status().message().find("k-1"), std::string::npos) << conflict.status().message();

  NewJob bob = n;
  bob.idempotency_scope = "user:bob";
  auto bobs = store_->SubmitJob(bob);
  ASSERT_TRUE(bobs.ok());
  EXPECT_NE(bobs->job.id, first->job.id);

  auto found = store_->FindSubmitKey("user:alice", "k-1");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE(found->has_value());
  EXPECT_EQ((*found)->job_id, first->job.id);
  EXPECT_EQ((*found)->fingerprint, "f-1");
  EXPECT_FALSE(store_->FindSubmitKey("user:alice", "k-2")->has_value());

  Reopen();  // durable with the job
  auto after = store_->SubmitJob(n);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->existing);
  EXPECT_EQ(after->job.id, first->job.id);
  EXPECT_EQ(store_->ListJobs({})->size(), 2u);
}

TEST_P(StoreConformance, ConcurrentSubmitsWithOneKeyCreateOneJob) {
  constexpr int kThreads = 8;
  std::vector<std::string> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_->SubmitJob(NewJob{.job = SampleJob("race"), .event = SubmitEvent(),
                                        .idempotency_scope = "user:alice", .idempotency_key = "same",
                                        .fingerprint = "f"});
      if (r.ok()) ids[t] = r->job.id;
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& id : ids) EXPECT_EQ(id, ids[0]);
  EXPECT_FALSE(ids[0].empty());
  EXPECT_EQ(store_->ListJobs({})->size(), 1u);
}

// Keyed from the next row on: older rows keep their plain hash, newer ones are HMACs under the key.
TEST_P(StoreConformance, KeyedAuditChainFromASwitchPoint) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->AppendAudit(MakeAudit("user:alice", "before")).ok());
  EXPECT_FALSE(store_->AuditKey().has_value());
  auto from = store_->SetAuditKey(std::string(32, 'k'), 0);
  ASSERT_TRUE(from.ok()) << from.status().ToString();
  EXPECT_EQ(*from, 4);
  ASSERT_TRUE(store_->AuditKey().has_value());
  EXPECT_EQ(store_->AuditKey()->keyed_from, 4);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(store_->AppendAudit(MakeAudit("user:alice", "after")).ok());
  auto rows = store_->ListAudit(0, 0);
  ASSERT_EQ(rows->size(), 5u);
  AuditChainKey key = *store_->AuditKey();
  for (const auto& r : *rows) {
    EXPECT_EQ(r.hash, AuditRowHash(r, &key)) << r.seq;
    EXPECT_EQ(r.hash == api::AuditHash(r), r.seq < 4) << r.seq;
  }
  EXPECT_EQ((*rows)[3].prev_hash, (*rows)[2].hash);
  EXPECT_FALSE(store_->SetAuditKey("short", 0).ok());
}

// WriteRecords with an audit row: the row is appended in the records' transaction, chained like
// AppendAudit's, and the caller's copy gets its seq and hash.
TEST_P(StoreConformance, WriteRecordsAppendsItsAuditRowWithTheRecords) {
  ASSERT_TRUE(store_->AppendAudit(MakeAudit("user:root", "login")).ok());
  api::AuditRecord row = MakeAudit("user:root", "POST /v1/users");
  row.target = "user:alice";
  row.seq = 99;  // assigned by the store
  row.hash = "forged";
  ASSERT_TRUE(store_->WriteRecords({{.kind = "user", .key = "alice", .value = "a1", .expected_version = 0},
                                    {.kind = "project", .key = "alice", .value = "p1"}},
                                   &row)
                  .ok());
  EXPECT_EQ(row.seq, 2);
  EXPECT_EQ(row.target, "user:alice");
  EXPECT_EQ(row.hash, api::AuditHash(row));
  EXPECT_EQ(store_->Stats().last_audit_seq, 2);
  auto rec = store_->GetRecord("user", "alice");
  ASSERT_TRUE(rec.ok() && rec->has_value());
  EXPECT_EQ((*rec)->value, "a1");
  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 2u);
  ExpectValidChain(*rows);
  EXPECT_EQ((*rows)[1].action, "POST /v1/users");
  EXPECT_EQ((*rows)[1].hash, row.hash);

  // An empty batch with a row still appends the row (a request that changed nothing it could name).
  api::AuditRecord alone = MakeAudit("user:root", "DELETE /v1/users/{name}");
  ASSERT_TRUE(store_->WriteRecords({}, &alone).ok());
  EXPECT_EQ(alone.seq, 3);

  // Without a row nothing is appended.
  ASSERT_TRUE(store_->WriteRecords({{.kind = "user", .key = "bob", .value = "b1"}}, nullptr).ok());
  ASSERT_TRUE(store_->WriteRecords({{.kind = "user", .key = "carol", .value = "c1"}}).ok());
  EXPECT_EQ(store_->ListAudit(0, 0)->size(), 3u);
  ExpectValidChain(*store_->ListAudit(0, 0));
}

// A batch that fails (compare-and-set, invalid write) writes neither its records nor its audit row, and
// leaves the caller's row as it was; the chain goes on from the last committed row.
TEST_P(StoreConformance, WriteRecordsFailureWritesNoAuditRow) {
  ASSERT_TRUE(PutRecord(*store_, "user", "alice", "a1").ok());
  api::AuditRecord row = MakeAudit("user:root", "PUT /v1/users/{name}");
  row.target = "user:alice";
  Status st = store_->WriteRecords({{.kind = "user", .key = "bob", .value = "b1"},
                                    {.kind = "user", .key = "alice", .value = "a2", .expected_version = 7}},
                                   &row);
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(row.seq, 0);
  EXPECT_TRUE(row.hash.empty());
  EXPECT_FALSE(store_->GetRecord("user", "bob")->has_value());
  EXPECT_TRUE(store_->ListAudit(0, 0)->empty());
  EXPECT_EQ(store_->Stats().last_audit_seq, 0);

  st = store_->WriteRecords({{.kind = "user", .key = "alice", .value = "a2", .expected_version = 0}}, &row);
  EXPECT_EQ(st.code(), ErrorCode::kAlreadyExists) << st.ToString();
  st = store_->WriteRecords({{.kind = "", .key = "x", .value = "v"}}, &row);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  EXPECT_TRUE(store_->ListAudit(0, 0)->empty());

  ASSERT_TRUE(store_->WriteRecords({{.kind = "user", .key = "alice", .value = "a2", .expected_version = 1}}, &row)
                  .ok());
  EXPECT_EQ(row.seq, 1);
  EXPECT_EQ((*store_->GetRecord("user", "alice"))->value, "a2");
  ASSERT_TRUE(store_->AppendAudit(MakeAudit("user:root", "login")).ok());
  auto rows = store_->ListAudit(0, 0);
  ASSERT_EQ(rows->size(), 2u);
  ExpectValidChain(*rows);
}

// Concurrent record batches with rows and plain appends form one chain, one row per committed batch.
TEST_P(StoreConformance, ConcurrentWriteRecordsWithAuditFormOneChain) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        api::AuditRecord row = MakeAudit("user:t" + std::to_string(t), "PUT /v1/x");
        // Every thread creates the same keys: one creation wins per key, the others conflict.
        Status st = store_->WriteRecords(
            {{.kind = "k", .key = std::to_string(i), .value = std::to_string(t), .expected_version = 0}}, &row);
        if (!st.ok()) {
          EXPECT_EQ(st.code(), ErrorCode::kAlreadyExists) << st.ToString();
          conflicts++;
        }
        if (i % 5 == 0) {
          EXPECT_TRUE(store_->AppendAudit(MakeAudit("user:t", "login")).ok());
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(conflicts.load(), (kThreads - 1) * kPerThread);
  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), static_cast<size_t>(kPerThread + kThreads * kPerThread / 5));
  ExpectValidChain(*rows);
}

// Rows written with records follow the chain's key like AppendAudit's.
TEST_P(StoreConformance, WriteRecordsAuditRowFollowsTheKeyedChain) {
  ASSERT_TRUE(store_->AppendAudit(MakeAudit("user:alice", "before")).ok());
  ASSERT_TRUE(store_->SetAuditKey(std::string(32, 'k'), 0).ok());
  api::AuditRecord row = MakeAudit("user:alice", "POST /v1/secrets");
  ASSERT_TRUE(store_->WriteRecords({{.kind = "secret", .key = "p/s", .value = "sealed"}}, &row).ok());
  EXPECT_EQ(row.seq, 2);
  AuditChainKey key = *store_->AuditKey();
  EXPECT_EQ(row.hash, AuditRowHash(row, &key));
  EXPECT_NE(row.hash, api::AuditHash(row));
  auto rows = store_->ListAudit(0, 0);
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[1].prev_hash, (*rows)[0].hash);
  EXPECT_EQ((*rows)[1].hash, row.hash);
}

// PostLedger with an audit row (a credit granted by a request): the row is appended with the entries,
// not at all when the posting fails, and also when every entry was already posted.
TEST_P(StoreConformance, PostLedgerAppendsItsAuditRowWithTheEntries) {
  api::LedgerEntry credit = MakeEntry("adj-1", "ml", "2026-11", "adjustment", 5'000'000);
  api::AuditRecord row = MakeAudit("user:root", "POST /v1/projects/{project}/credits");
  row.target = "credits:ml";
  ASSERT_TRUE(store_->PostLedger({}, {credit}, &row).ok());
  EXPECT_EQ(row.seq, 1);
  EXPECT_EQ(row.hash, api::AuditHash(row));
  EXPECT_EQ(store_->Stats().last_audit_seq, 1);
  EXPECT_EQ(store_->ListLedger({.project = "ml"})->size(), 1u);

  api::LedgerEntry negative = MakeEntry("adj-2", "ml", "2026-11", "adjustment", 1);
  negative.amount_micro = -1;
  api::AuditRecord failed = MakeAudit("user:root", "POST /v1/projects/{project}/credits");
  Status st = store_->PostLedger({}, {MakeEntry("adj-3", "ml", "2026-11", "adjustment", 7), negative}, &failed);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  EXPECT_EQ(failed.seq, 0);
  EXPECT_EQ(store_->ListLedger({.project = "ml"})->size(), 1u);
  EXPECT_EQ(store_->ListAudit(0, 0)->size(), 1u);

  api::AuditRecord again = MakeAudit("user:root", "POST /v1/projects/{project}/credits");
  ASSERT_TRUE(store_->PostLedger({}, {credit}, &again).ok());  // already posted: skipped, the row is written
  EXPECT_EQ(again.seq, 2);
  EXPECT_EQ(store_->ListLedger({.project = "ml"})->size(), 1u);
  ASSERT_TRUE(store_->PostLedger({}, {MakeEntry("adj-4", "ml", "2026-11", "adjustment", 9)}).ok());
  auto rows = store_->ListAudit(0, 0);
  ASSERT_EQ(rows->size(), 2u);
  ExpectValidChain(*rows);
}

// PostLedger with record writes (a prepaid plan with its credit, a project with its trial credit): the
// records, the usage, the entries and the row commit together; a record whose version check fails (or an
// invalid record write or entry) leaves none of them, and the caller's row as it was.
TEST_P(StoreConformance, PostLedgerWritesRecordsEntriesAndRowInOneTransaction) {
  ASSERT_TRUE(PutRecord(*store_, "project", "ml", "p1").ok());
  api::LedgerEntry prepaid = MakeEntry("pre-1", "ml", "2026-11", "prepaid", 6'000'000);
  api::UsageSegment seg = MakeUsage("j-1", 0, "ml", 1000, 2000);
  api::AuditRecord row = MakeAudit("user:root", "POST /v1/projects/{project}/credits");
  row.target = "credits:ml";
  ASSERT_TRUE(store_
                  ->PostLedger({seg}, {prepaid}, &row,
                               {{.kind = "plan", .key = "ml/1", .value = "plan1"},
                                {.kind = "project", .key = "ml", .value = "p2", .expected_version = 1}})
                  .ok());
  EXPECT_EQ(row.seq, 1);
  EXPECT_EQ(row.hash, api::AuditHash(row));
  EXPECT_EQ(store_->Stats().last_audit_seq, 1);
  auto plan = store_->GetRecord("plan", "ml/1");
  ASSERT_TRUE(plan.ok() && plan->has_value());
  EXPECT_EQ((*plan)->value, "plan1");
  EXPECT_EQ((*plan)->version, 1);
  EXPECT_EQ((*store_->GetRecord("project", "ml"))->version, 2);
  EXPECT_EQ(store_->ListLedger({.project = "ml"})->size(), 1u);
  EXPECT_EQ(store_->ListUsage({.project = "ml"})->size(), 1u);

  // A stale version: nothing of the call is written, not even the records before it in the batch.
  api::AuditRecord failed = MakeAudit("user:root", "POST /v1/projects");
  failed.target = "project:nlp";
  Status st = store_->PostLedger({MakeUsage("j-2", 0, "nlp", 1000, 2000)},
                                 {MakeEntry("trial-nlp", "nlp", "2026-11", "trial_credit", 10)}, &failed,
                                 {{.kind = "project", .key = "nlp", .value = "n1", .expected_version = 0},
                                  {.kind = "project", .key = "ml", .value = "p3", .expected_version = 1}});
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition) << st.ToString();
  EXPECT_EQ(failed.seq, 0);
  EXPECT_TRUE(failed.hash.empty());
  EXPECT_FALSE(store_->GetRecord("project", "nlp")->has_value());
  EXPECT_EQ((*store_->GetRecord("project", "ml"))->value, "p2");
  EXPECT_TRUE(store_->ListLedger({.project = "nlp"})->empty());
  EXPECT_TRUE(store_->ListUsage({.project = "nlp"})->empty());
  EXPECT_EQ(store_->ListAudit(0, 0)->size(), 1u);
  EXPECT_EQ(store_->Stats().last_audit_seq, 1);

  // Must be new but exists: kAlreadyExists, nothing written.
  st = store_->PostLedger({}, {MakeEntry("trial-ml", "ml", "2026-11", "trial_credit", 10)}, &failed,
                          {{.kind = "project", .key = "ml", .value = "p3", .expected_version = 0}});
  EXPECT_EQ(st.code(), ErrorCode::kAlreadyExists) << st.ToString();
  // An invalid record write or an invalid entry: kInvalidArgument, nothing written.
  st = store_->PostLedger({}, {MakeEntry("trial-ml", "ml", "2026-11", "trial_credit", 10)}, &failed,
                          {{.kind = "", .key = "x", .value = "v"}});
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  api::LedgerEntry negative = MakeEntry("neg", "ml", "2026-11", "adjustment", 1);
  negative.amount_micro = -1;
  st = store_->PostLedger({}, {negative}, &failed, {{.kind = "plan", .key = "ml/2", .value = "plan2"}});
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  EXPECT_FALSE(store_->GetRecord("plan", "ml/2")->has_value());
  EXPECT_EQ(store_->ListLedger({.project = "ml"})->size(), 1u);
  EXPECT_EQ(failed.seq, 0);
  EXPECT_EQ(store_->ListAudit(0, 0)->size(), 1u);

  // Ledger keys stay idempotent: an entry already posted is skipped, the records and the row are written.
  api::AuditRecord again = MakeAudit("user:root", "POST /v1/projects/{project}/credits");
  ASSERT_TRUE(
      store_->PostLedger({}, {prepaid}, &again, {{.kind = "plan", .key = "ml/1", .value = "plan1b"}}).ok());
  EXPECT_EQ(again.seq, 2);
  EXPECT_EQ((*store_->GetRecord("plan", "ml/1"))->value, "plan1b");
  EXPECT_EQ(store_->ListLedger({.project = "ml"})->size(), 1u);
  // Records alone, without a row or entries; then an erase.
  ASSERT_TRUE(store_->PostLedger({}, {}, nullptr, {{.kind = "plan", .key = "ml/3", .value = "plan3"}}).ok());
  EXPECT_TRUE(store_->GetRecord("plan", "ml/3")->has_value());
  ASSERT_TRUE(store_->PostLedger({}, {}, nullptr, {{.kind = "plan", .key = "ml/3", .erase = true}}).ok());
  EXPECT_FALSE(store_->GetRecord("plan", "ml/3")->has_value());
  auto rows = store_->ListAudit(0, 0);
  ASSERT_EQ(rows->size(), 2u);
  ExpectValidChain(*rows);
}

// Concurrent PostLedger calls with records share commits: the call whose version check fails rolls back
// alone, with its entries and row; the winners' records, entries and rows are all there, in one chain.
TEST_P(StoreConformance, ConcurrentPostLedgerWithRecordsFailsAlone) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20;
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string tag = std::to_string(t) + "-" + std::to_string(i);
        api::AuditRecord row = MakeAudit("user:t" + std::to_string(t), "POST /v1/projects");
        // Every thread creates the same projects: one creation wins per key, the others conflict.
        Status st = store_->PostLedger({}, {MakeEntry("trial-" + tag, "p" + std::to_string(i), "2026-11",
                                                      "trial_credit", 10)},
                                       &row,
                                       {{.kind = "project", .key = std::to_string(i), .value = std::to_string(t),
                                         .expected_version = 0}});
        if (!st.ok()) {
          EXPECT_EQ(st.code(), ErrorCode::kAlreadyExists) << st.ToString();
          EXPECT_EQ(row.seq, 0);
          conflicts++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(conflicts.load(), (kThreads - 1) * kPerThread);
  auto ledger = store_->ListLedger({});
  ASSERT_TRUE(ledger.ok());
  ASSERT_EQ(ledger->size(), static_cast<size_t>(kPerThread));
  for (int i = 0; i < kPerThread; ++i) {
    auto rec = store_->GetRecord("project", std::to_string(i));
    ASSERT_TRUE(rec.ok() && rec->has_value());
    // The entry of the winning thread is the one posted.
    const std::string key = "trial-" + (*rec)->value + "-" + std::to_string(i);
    EXPECT_EQ(std::count_if(ledger->begin(), ledger->end(), [&](const api::LedgerEntry& e) { return e.key == key; }),
              1)
        << key;
  }
  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->size(), static_cast<size_t>(kPerThread));
  ExpectValidChain(*rows);
}

// A job array: the array job and its tasks in one transaction, numbered consecutively, the tasks naming their array;
// listings can leave the tasks out; the same idempotency key again creates nothing.
TEST_P(StoreConformance, AJobGroupGetsConsecutiveIdsAndItsTasksNameTheirArray) {
  Create("before");
  NewJob parent{.job = SampleJob("sweep"), .event = SubmitEvent()};
  parent.job.spec.array = "0-2";
  parent.idempotency_scope = "user:alice";
  parent.idempotency_key = "k-1";
  parent.fingerprint = "f";
  std::vector<NewJob> tasks;
  for (int i = 0; i < 3; ++i) {
    NewJob t{.job = SampleJob("sweep"), .event = SubmitEvent()};
    t.job.array_index = i;
    tasks.push_back(std::move(t));
  }
  auto created = store_->SubmitJobGroup(parent, tasks);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(created->existing);
  const int64_t n = JobNumber(created->job.id);
  Create("after");
  Reopen();
  EXPECT_EQ(Get(created->job.id).spec.array, "0-2");
  for (int i = 0; i < 3; ++i) {
    Job t = Get("j-" + std::to_string(n + 1 + i));
    EXPECT_EQ(t.array_parent, created->job.id);
    EXPECT_EQ(t.array_index, i);
    EXPECT_EQ(t.state, JobState::kQueued);
    auto events = store_->ListEvents(t.id);
    ASSERT_TRUE(events.ok());
    EXPECT_EQ(events->size(), 1u);
  }
  JobFilter f;
  f.no_array_tasks = true;
  auto listed = store_->ListJobs(f);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 3u) << "before, the array and after";
  auto all = store_->ListJobs(JobFilter{});
  EXPECT_EQ(all->size(), 6u);
  auto again = store_->SubmitJobGroup(parent, tasks);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->existing);
  EXPECT_EQ(again->job.id, created->job.id);
  EXPECT_EQ(store_->ListJobs(JobFilter{})->size(), 6u);
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreConformance, ::testing::Values(StoreFactory{"sqlite", OpenSqlite}),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; });

// PostgreSQL: a throwaway cluster per test process (tests/support/pg_cluster.h); each directory maps to its
// own database, so reopening the same directory reconnects to the same data.
std::unique_ptr<Store> OpenPostgres(const std::string& dir) {
  std::string error;
  fastgpu::testing::PgCluster* pg = fastgpu::testing::SharedPgCluster(&error);
  if (pg == nullptr) {
    ADD_FAILURE() << "cannot start PostgreSQL: " << error;
    return nullptr;
  }
  std::string db = "t_" + std::to_string(std::hash<std::string>{}(dir));
  if (Status st = pg->CreateDatabase(db); !st.ok()) {
    ADD_FAILURE() << st.ToString();
    return nullptr;
  }
  auto r = OpenPostgresStore(pg->Url(db));
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return nullptr;
  }
  return std::move(*r);
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreConformance,
                         ::testing::Values(StoreFactory{"postgres", OpenPostgres, fastgpu::testing::PgCluster::Unavailable}),
                         [](const ::testing::TestParamInfo<StoreFactory>& info) { return info.param.name; });

}  // namespace
}  // namespace fastgpu::store
