// PostgreSQL-specific behaviour: migrations and the schema version, URLs and their errors, several
// store instances (server replicas) on one database, append-only tables.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/json.h"
#include "store/open.h"
#include "store/postgres/postgres_store.h"
#include "store/store.h"
#include "store_test_util.h"
#include "support/pg_cluster.h"

namespace fastgpu::store {
namespace {

using fastgpu::testing::PgCluster;
using fastgpu::testing::SharedPgCluster;
using testing::SampleJob;
using testing::SubmitEvent;
using testing::TempDir;

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PgCluster::Unavailable(); !why.empty()) GTEST_SKIP() << why;
    std::string error;
    pg_ = SharedPgCluster(&error);
    ASSERT_NE(pg_, nullptr) << error;
    db_ = std::string("t_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    for (char& c : db_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    ASSERT_TRUE(pg_->CreateDatabase(db_).ok());
  }

  std::unique_ptr<Store> OpenOk() {
    auto r = OpenPostgresStore(pg_->Url(db_));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }

  PgCluster* pg_ = nullptr;
  std::string db_;
};

TEST_F(PostgresStoreTest, MigratesToTheLatestVersionOnce) {
  {
    auto store = OpenOk();
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->SchemaVersion(), PostgresLatestSchemaVersion());
  }
  auto store = OpenOk();  // a second open finds the schema current
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), PostgresLatestSchemaVersion());
  auto rows = pg_->Psql(db_, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  std::string want;
  for (int v = 1; v <= PostgresLatestSchemaVersion(); ++v) want += (v > 1 ? "," : "") + std::to_string(v);
  EXPECT_EQ(*rows, want);
}

TEST_F(PostgresStoreTest, RefusesADatabaseFromANewerFastgpu) {
  ASSERT_NE(OpenOk(), nullptr);
  const int newer = PostgresLatestSchemaVersion() + 1;
  ASSERT_TRUE(pg_->Psql(db_, "INSERT INTO schema_version(version) VALUES(" + std::to_string(newer) + ")").ok());
  auto r = OpenPostgresStore(pg_->Url(db_));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("schema version " + std::to_string(newer)), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("upgrade fastgpu"), std::string::npos) << r.status().message();
}

TEST_F(PostgresStoreTest, ConcurrentOpensMigrateOnce) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      if (OpenPostgresStore(pg_->Url(db_)).ok()) ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(*pg_->Psql(db_, "SELECT count(*) FROM schema_version"), std::to_string(PostgresLatestSchemaVersion()));
}

TEST_F(PostgresStoreTest, UnreachableServerIsOneClearLine) {
  TempDir dir;
  auto r = OpenPostgresStore("postgresql://alice:s3cret@/fastgpu?host=" + dir.path() + "&connect_timeout=2");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  const std::string& m = r.status().message();
  EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  EXPECT_EQ(m.find("s3cret"), std::string::npos) << m;
  EXPECT_NE(m.find("cannot connect to PostgreSQL"), std::string::npos) << m;
  EXPECT_NE(m.find(dir.path()), std::string::npos) << m;
}

TEST_F(PostgresStoreTest, MissingDatabaseIsAClearError) {
  auto r = OpenPostgresStore(pg_->Url("no_such_db"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("no_such_db"), std::string::npos) << r.status().message();
}

// Two stores on one database (two server replicas): ids never collide and the audit chain stays one chain.
TEST_F(PostgresStoreTest, TwoInstancesShareOneDatabase) {
  auto a = OpenOk();
  auto b = OpenOk();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::vector<std::thread> threads;
  std::vector<std::string> ids[2];
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      Store& s = t == 0 ? *a : *b;
      for (int i = 0; i < 50; ++i) {
        auto j = s.CreateJob(SampleJob("j"), SubmitEvent());
        if (j.ok()) ids[t].push_back(j->id);
        api::AuditRecord r;
        r.at = 1;
        r.actor = "user:t" + std::to_string(t);
        r.action = "x";
        r.result = "ok";
        (void)s.AppendAudit(r);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all(ids[0].begin(), ids[0].end());
  all.insert(ids[1].begin(), ids[1].end());
  EXPECT_EQ(all.size(), 100u);
  auto rows = a->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 100u);
  for (size_t i = 0; i < rows->size(); ++i) {
    EXPECT_EQ((*rows)[i].seq, static_cast<int64_t>(i) + 1);
    EXPECT_EQ((*rows)[i].prev_hash, i == 0 ? "" : (*rows)[i - 1].hash);
    EXPECT_EQ((*rows)[i].hash, api::AuditHash((*rows)[i]));
  }
}

// Leadership: one store (server) leads; a second is refused naming the holder. When the leader's session
// dies (its machine is gone), another takes the lead with a higher epoch, and the old leader's writes are
// refused from then on instead of mixing with the new leader's.
TEST_F(PostgresStoreTest, OneLeaderAtATimeAndAStaleLeadersWritesAreRefused) {
  auto a = OpenOk();
  auto b = OpenOk();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  auto ea = a->TryLead("host-a pid 1", 1000);
  ASSERT_TRUE(ea.ok()) << ea.status().ToString();
  EXPECT_GE(*ea, 1);
  EXPECT_EQ(*a->TryLead("host-a pid 1", 1000), *ea);  // again: the same lead
  auto refused = b->TryLead("host-b pid 2", 2000);
  ASSERT_EQ(refused.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("another fastgpu server leads this database (host-a pid 1)"),
            std::string::npos)
      << refused.status().message();
  EXPECT_TRUE(a->CheckLead().ok());
  EXPECT_TRUE(a->PutSetting("k", "from a").ok());
  // a's lock session dies (as when its machine is gone): the lock is free.
  ASSERT_TRUE(pg_->Psql(db_, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                             "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
                  .ok());
  EXPECT_EQ(a->CheckLead().code(), ErrorCode::kUnavailable);
  auto eb = b->TryLead("host-b pid 2", 3000);
  ASSERT_TRUE(eb.ok()) << eb.status().ToString();
  EXPECT_EQ(*eb, *ea + 1);
  Status stale = a->PutSetting("k", "from a, stale");
  EXPECT_EQ(stale.code(), ErrorCode::kFailedPrecondition) << stale.ToString();
  EXPECT_NE(stale.message().find("no longer the leader"), std::string::npos) << stale.message();
  EXPECT_EQ(a->CreateJob(SampleJob("j"), SubmitEvent()).status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_TRUE(b->PutSetting("k", "from b").ok());
  EXPECT_EQ(b->GetSetting("k")->value_or(""), "from b");
  EXPECT_EQ(*pg_->Psql(db_, "SELECT holder FROM leader"), "host-b pid 2");
}

TEST_F(PostgresStoreTest, EventsAuditUsageAndLedgerAreAppendOnly) {
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(SampleJob("j"), SubmitEvent()).ok());
  api::AuditRecord r;
  r.actor = "user:a";
  ASSERT_TRUE(store->AppendAudit(r).ok());
  for (const char* sql : {"UPDATE job_events SET reason = 'x'", "DELETE FROM job_events", "TRUNCATE job_events CASCADE",
                          "UPDATE audit SET actor = 'x'", "DELETE FROM audit", "DELETE FROM usage",
                          "DELETE FROM ledger"}) {
    auto res = pg_->Psql(db_, sql);
    ASSERT_FALSE(res.ok()) << sql;
    EXPECT_NE(res.status().message().find("append-only"), std::string::npos) << res.status().message();
  }
}

TEST_F(PostgresStoreTest, TextWithANulByteIsRefusedNotCut) {
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  api::Job j = SampleJob(std::string("a\0b", 3));
  auto r = store->CreateJob(j, SubmitEvent());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << r.status().ToString();
  EXPECT_TRUE(store->ListJobs({})->empty());
}

// Concurrent submits share transactions (written together): each gets its own job, its audit row names it,
// the chain stays valid, and one bad submit among them fails alone.
TEST_F(PostgresStoreTest, ConcurrentSubmitsWithAuditRowsAndOneBadOne) {
  auto store = OpenOk();
  ASSERT_NE(store, nullptr);
  constexpr int kThreads = 16, kEach = 20;
  std::vector<std::thread> threads;
  std::vector<std::vector<CreatedJob>> made(kThreads);
  std::atomic<int> bad_failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const bool bad = t == 3 && i == 7;
        NewJob n{.job = SampleJob(bad ? std::string("a\0b", 3) : "ok"), .event = SubmitEvent()};
        n.audit = api::AuditRecord{};
        n.audit->actor = "user:t";
        n.audit->action = "POST /v1/jobs";
        if (i % 2 == 0) {
          n.idempotency_scope = "user:t";
          n.idempotency_key = "k-" + std::to_string(t) + "-" + std::to_string(i);
          n.fingerprint = "f";
        }
        auto r = store->SubmitJob(std::move(n));
        if (bad) {
          if (!r.ok() && r.status().code() == ErrorCode::kInvalidArgument) bad_failed++;
        } else if (r.ok()) {
          made[t].push_back(*r);
        } else {
          ADD_FAILURE() << r.status().ToString();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad_failed.load(), 1);
  std::set<std::string> ids;
  size_t count = 0;
  for (const auto& v : made) {
    for (const CreatedJob& c : v) {
      ids.insert(c.job.id);
      ++count;
      ASSERT_TRUE(c.audit.has_value());
      EXPECT_EQ(c.audit->target, "job:" + c.job.id);
      EXPECT_EQ(store->GetJob(c.job.id)->spec.name, "ok");
    }
  }
  EXPECT_EQ(count, size_t{kThreads * kEach - 1});
  EXPECT_EQ(ids.size(), count);
  auto rows = store->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), count);
  for (size_t i = 0; i < rows->size(); ++i) {
    EXPECT_EQ((*rows)[i].seq, static_cast<int64_t>(i) + 1);
    EXPECT_EQ((*rows)[i].prev_hash, i == 0 ? "" : (*rows)[i - 1].hash);
    EXPECT_EQ((*rows)[i].hash, api::AuditHash((*rows)[i]));
  }
  EXPECT_EQ(store->ListJobs({})->size(), count);
  StoreStats stats = store->Stats();
  EXPECT_LT(stats.commits, stats.writes);  // grouped
  // The keyed ones again: the same jobs, nothing new.
  auto again = store->SubmitJob(NewJob{.job = SampleJob("ok"), .event = SubmitEvent(), .idempotency_scope = "user:t",
                                       .idempotency_key = "k-0-0", .fingerprint = "f"});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->existing);
  EXPECT_EQ(again->job.id, made[0][0].job.id);
}

// Everything a SQLite store holds arrives in PostgreSQL unchanged: job numbers, events, keys, nodes, settings,
// records (bytes), the keyed audit chain (same seq and hashes), usage and ledger (same seq); numbering goes on
// after the copied rows; a second migration into the same database is refused.
TEST_F(PostgresStoreTest, MigratesASqliteStore) {
  TempDir dir;
  const std::string path = dir.path() + "/fastgpu.db";
  const std::string key(32, 'k');
  {
    auto src = OpenSqliteStore(path);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    Store& s = **src;
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s.AppendAudit(api::AuditRecord{.at = 1, .actor = "user:a"}).ok());
    ASSERT_TRUE(s.SetAuditKey(key, 0).ok());
    for (int i = 0; i < 5; ++i) {
      NewJob n{.job = SampleJob("job" + std::to_string(i), i % 2 ? "ml" : "default"), .event = SubmitEvent()};
      n.audit = api::AuditRecord{.at = 2, .actor = "user:alice", .action = "POST /v1/jobs"};
      if (i == 1) {
        n.idempotency_scope = "user:alice";
        n.idempotency_key = "key-1";
        n.fingerprint = "fp";
      }
      ASSERT_TRUE(s.SubmitJob(std::move(n)).ok());
    }
    api::Job j = *s.GetJob("j-2");
    JobUpdate u;
    u.expected_state = api::JobState::kQueued;
    u.job = j;
    u.job.state = api::JobState::kFailed;
    u.job.exit_code = 3;
    u.event = api::JobEvent{.at = 5, .reason = "exit code 3", .actor = "agent:n1"};
    u.usage = {api::UsageSegment{.key = "j-2/1", .job_id = "j-2", .attempt = 1, .project = "default",
                                 .gpus = {"GPU-1"}, .start_ms = 1, .end_ms = 9}};
    u.ledger = {api::LedgerEntry{.key = "use:j-2/1", .at = 9, .project = "default", .kind = "usage",
                                 .amount_micro = 42, .month = "2026-11"}};
    ASSERT_TRUE(s.UpdateJobs({u}).ok());
    ASSERT_TRUE(s.UpsertNode(api::Node{.name = "n1"}, {api::Gpu{.uuid = "GPU-1", .index = 0}}).ok());
    ASSERT_TRUE(s.PutSetting("cluster_id", "c-1").ok());
    ASSERT_TRUE(PutRecord(s, "user", "alice", std::string("v\0\xff", 3)).ok());
    ASSERT_TRUE(PutRecord(s, "user", "alice", "v2").ok());
    ASSERT_TRUE(PutRecord(s, "raw", "z\xff", "x").ok());
  }
  auto counts = MigrateSqliteToPostgres(path, pg_->Url(db_));
  ASSERT_TRUE(counts.ok()) << counts.status().ToString();
  EXPECT_EQ(counts->front(), (std::pair<std::string, int64_t>{"jobs", 5}));

  auto src = OpenSqliteStore(path);
  ASSERT_TRUE(src.ok());
  auto dst = OpenOk();
  ASSERT_NE(dst, nullptr);
  Store& a = **src;
  Store& b = *dst;
  auto jobs_a = *a.ListJobs({});
  auto jobs_b = *b.ListJobs({});
  ASSERT_EQ(jobs_a.size(), jobs_b.size());
  for (size_t i = 0; i < jobs_a.size(); ++i) {
    EXPECT_EQ(api::ToJson(jobs_a[i]), api::ToJson(jobs_b[i])) << jobs_a[i].id;
    auto ea = *a.ListEvents(jobs_a[i].id);
    auto eb = *b.ListEvents(jobs_b[i].id);
    ASSERT_EQ(ea.size(), eb.size());
    for (size_t k = 0; k < ea.size(); ++k) {
      EXPECT_EQ(ea[k].seq, eb[k].seq);
      EXPECT_EQ(ea[k].to, eb[k].to);
      EXPECT_EQ(ea[k].reason, eb[k].reason);
    }
  }
  EXPECT_EQ((*b.FindSubmitKey("user:alice", "key-1"))->job_id, "j-2");
  EXPECT_EQ(b.ListNodes()->size(), 1u);
  EXPECT_EQ(b.ListGpus()->at(0).uuid, "GPU-1");
  EXPECT_EQ(**b.GetSetting("cluster_id"), "c-1");
  auto rec = *b.GetRecord("user", "alice");
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->value, "v2");
  EXPECT_EQ(rec->version, 2);
  EXPECT_EQ(b.ListRecords("raw", "z\xff")->size(), 1u);
  auto audit_a = *a.ListAudit(0, 0);
  auto audit_b = *b.ListAudit(0, 0);
  ASSERT_EQ(audit_a.size(), 8u);
  ASSERT_EQ(audit_b.size(), 8u);
  AuditChainKey chain{.key = key, .keyed_from = 4};
  for (size_t i = 0; i < audit_b.size(); ++i) {
    EXPECT_EQ(audit_a[i].hash, audit_b[i].hash);
    EXPECT_EQ(audit_b[i].hash, AuditRowHash(audit_b[i], &chain)) << audit_b[i].seq;
    EXPECT_EQ(audit_b[i].prev_hash, i == 0 ? "" : audit_b[i - 1].hash);
  }
  EXPECT_EQ(b.ListUsage({})->size(), 1u);
  auto ledger = *b.ListLedger({});
  ASSERT_EQ(ledger.size(), 1u);
  EXPECT_EQ(ledger[0].seq, a.ListLedger({})->at(0).seq);
  EXPECT_EQ(ledger[0].amount_micro, 42);

  // New rows continue the numbering and the chain.
  ASSERT_TRUE(b.SetAuditKey(key, 4).ok());
  auto next = b.SubmitJob(NewJob{.job = SampleJob("after"), .event = SubmitEvent(),
                                 .audit = api::AuditRecord{.at = 3, .actor = "user:alice"}});
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_EQ(next->job.id, "j-6");
  EXPECT_EQ(next->audit->seq, 9);
  EXPECT_EQ(next->audit->prev_hash, audit_b.back().hash);

  auto again = MigrateSqliteToPostgres(path, pg_->Url(db_));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), ErrorCode::kFailedPrecondition) << again.status().ToString();
}

TEST(StoreUrlTest, ParsesTheForms) {
  auto s = ParseStoreUrl("sqlite:/var/lib/fastgpu/fastgpu.db");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->kind, StoreUrl::Kind::kSqlite);
  EXPECT_EQ(s->target, "/var/lib/fastgpu/fastgpu.db");
  EXPECT_EQ(ParseStoreUrl("sqlite:///abs/x.db")->target, "/abs/x.db");
  EXPECT_EQ(ParseStoreUrl("sqlite:rel.db")->target, "rel.db");
  auto p = ParseStoreUrl("postgres://fastgpu@db.internal/fastgpu");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->kind, StoreUrl::Kind::kPostgres);
  EXPECT_EQ(p->target, "postgres://fastgpu@db.internal/fastgpu");
  EXPECT_EQ(ParseStoreUrl("postgresql:///fastgpu?host=/run/postgresql")->kind, StoreUrl::Kind::kPostgres);

  for (const char* bad : {"", "mysql://x/y", "sqlite:", "postgres://", "/var/lib/fastgpu.db"}) {
    auto r = ParseStoreUrl(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(ParseStoreUrl("mysql://x/y").status().message().find("sqlite:PATH or postgres://"), std::string::npos);
}

TEST(StoreUrlTest, RedactsPasswords) {
  EXPECT_EQ(RedactStoreUrl("postgres://alice:s3cret@db/fastgpu"), "postgres://alice:***@db/fastgpu");
  EXPECT_EQ(RedactStoreUrl("postgres://db/fastgpu?user=a&password=s3cret&sslmode=require"),
            "postgres://db/fastgpu?user=a&password=***&sslmode=require");
  EXPECT_EQ(RedactStoreUrl("postgres://alice@db/fastgpu"), "postgres://alice@db/fastgpu");
  EXPECT_EQ(RedactStoreUrl("sqlite:/x.db"), "sqlite:/x.db");
}

TEST(StoreUrlTest, OpensSqlite) {
  TempDir dir;
  auto s = Open("sqlite:" + dir.path() + "/f.db");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE((*s)->CreateJob(SampleJob("x"), SubmitEvent()).ok());
}

}  // namespace
}  // namespace fastgpu::store
