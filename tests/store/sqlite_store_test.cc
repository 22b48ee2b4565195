// SQLite-specific behaviour: pragmas, migrations, append-only events, id reuse, grouping.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "store_test_util.h"

namespace fastgpu::store {
namespace {

using testing::JobNumber;
using testing::SampleJob;
using testing::SubmitEvent;
using testing::TempDir;

// A plain connection for looking at (or tampering with) the file behind the store's back.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;
  ~RawDb() { sqlite3_close(db_); }

  // Returns "" on success, else the error message.
  std::string Exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = rc == SQLITE_OK ? "" : (err != nullptr ? err : "error");
    sqlite3_free(err);
    return msg;
  }

  // The detail column of EXPLAIN QUERY PLAN, one line per row.
  std::string QueryPlan(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &s, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db_);
    std::string out;
    while (sqlite3_step(s) == SQLITE_ROW) {
      if (sqlite3_column_text(s, 3) != nullptr) out += reinterpret_cast<const char*>(sqlite3_column_text(s, 3));
      out += "\n";
    }
    sqlite3_finalize(s);
    return out;
  }

  std::string QueryText(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db_);
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr)
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

class SqliteStoreTest : public ::testing::Test {
 protected:
  std::string DbPath() const { return dir_.path() + "/fastgpu.db"; }
  std::unique_ptr<Store> Open() {
    auto r = OpenSqliteStore(DbPath());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(*r) : nullptr;
  }
  TempDir dir_;
};

TEST_F(SqliteStoreTest, UsesWalAndLatestSchema) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), SqliteLatestSchemaVersion());
  RawDb raw(DbPath());
  EXPECT_EQ(raw.QueryText("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.QueryText("PRAGMA user_version"), std::to_string(SqliteLatestSchemaVersion()));
}

TEST_F(SqliteStoreTest, ReopeningDoesNotRerunMigrations) {
  { ASSERT_NE(Open(), nullptr); }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), SqliteLatestSchemaVersion());
}

TEST_F(SqliteStoreTest, NewerSchemaIsRefused) {
  { ASSERT_NE(Open(), nullptr); }
  {
    RawDb raw(DbPath());
    ASSERT_EQ(raw.Exec("PRAGMA user_version = " + std::to_string(SqliteLatestSchemaVersion() + 5)), "");
  }
  auto r = OpenSqliteStore(DbPath());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("newer"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("upgrade fastgpu"), std::string::npos) << r.status().message();
}

// The database holds password and token hashes and sealed secrets: owner-only, also its -wal/-shm files,
// whatever the umask; files left readable by an older version are tightened on open.
TEST_F(SqliteStoreTest, DatabaseFilesAreOwnerOnly) {
  mode_t old = ::umask(022);
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateJob(SampleJob("x"), SubmitEvent()).ok());
    for (const char* suffix : {"", "-wal", "-shm"}) {
      struct stat st {};
      ASSERT_EQ(::stat((DbPath() + suffix).c_str(), &st), 0) << suffix;
      EXPECT_EQ(st.st_mode & 0777, 0600u) << DbPath() + suffix;
    }
  }
  ASSERT_EQ(::chmod(DbPath().c_str(), 0644), 0);
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    struct stat st {};
    ASSERT_EQ(::stat(DbPath().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }
  ::umask(old);
}

TEST_F(SqliteStoreTest, MissingDirectoryIsAClearError) {
  auto r = OpenSqliteStore(dir_.path() + "/no/such/dir/fastgpu.db");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("no/such/dir"), std::string::npos) << r.status().message();
  auto empty = OpenSqliteStore("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(SqliteStoreTest, NotADatabaseIsAClearError) {
  {
    FILE* f = std::fopen(DbPath().c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs("this is not a database file, just some text that is long enough to matter................", f);
    std::fclose(f);
  }
  auto r = OpenSqliteStore(DbPath());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("fastgpu.db"), std::string::npos) << r.status().message();
}

TEST_F(SqliteStoreTest, EventLogIsAppendOnly) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateJob(SampleJob("a"), SubmitEvent()).ok());
  RawDb raw(DbPath());
  EXPECT_NE(raw.Exec("UPDATE job_events SET reason = 'rewritten'"), "");
  EXPECT_NE(raw.Exec("DELETE FROM job_events"), "");
  EXPECT_EQ(raw.QueryText("SELECT count(*) FROM job_events"), "1");
}

TEST_F(SqliteStoreTest, AuditUsageAndLedgerAreAppendOnly) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->AppendAudit({.actor = "user:alice", .action = "login"}).ok());
  api::UsageSegment seg{.key = "j-1/0", .job_id = "j-1", .project = "ml", .gpus = {"GPU-1"}, .end_ms = 5};
  api::LedgerEntry entry{.key = "usage/j-1/0", .project = "ml", .kind = "usage", .amount_micro = 7,
                         .month = "2026-11"};
  ASSERT_TRUE(store->PostLedger({seg}, {entry}).ok());
  RawDb raw(DbPath());
  for (const std::string table : {"audit", "usage", "ledger"}) {
    std::string update = "UPDATE " + table + (table == "audit" ? " SET detail = 'x'" : " SET project = 'x'");
    EXPECT_NE(raw.Exec(update).find("append-only"), std::string::npos) << table;
    EXPECT_NE(raw.Exec("DELETE FROM " + table).find("append-only"), std::string::npos) << table;
    EXPECT_EQ(raw.QueryText("SELECT count(*) FROM " + table), "1") << table;
  }
  EXPECT_EQ(raw.QueryText("SELECT gpus FROM usage"), R"(["GPU-1"])");
  // Records are ordinary mutable rows.
  ASSERT_TRUE(PutRecord(*store, "user", "alice", "v").ok());
  EXPECT_EQ(raw.Exec("DELETE FROM records"), "");
}

TEST_F(SqliteStoreTest, LedgerFiltersUseIndexes) {
  ASSERT_NE(Open(), nullptr);
  RawDb raw(DbPath());
  EXPECT_NE(raw.QueryPlan("SELECT * FROM ledger WHERE month = '2026-11' ORDER BY seq").find("ledger_by_month"),
            std::string::npos);
  std::string by_project = raw.QueryPlan("SELECT * FROM ledger WHERE project = 'ml' AND month = '2026-11' ORDER BY seq");
  EXPECT_NE(by_project.find("ledger_by_project_month"), std::string::npos) << by_project;
  std::string records = raw.QueryPlan("SELECT * FROM records WHERE kind = 'u' AND key >= 'a' AND key < 'b' ORDER BY key");
  EXPECT_EQ(records.find("TEMP B-TREE"), std::string::npos) << records;  // no sort: the key order is the index
  EXPECT_NE(records.find("PRIMARY KEY"), std::string::npos) << records;
}

// A database written by a fastgpu at schema version 1 (jobs, nodes, settings only) is migrated on open and
// keeps its data.
TEST_F(SqliteStoreTest, MigratesVersion1Database) {
  std::string job_id;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    auto j = store->CreateJob(SampleJob("old"), SubmitEvent());
    ASSERT_TRUE(j.ok());
    job_id = j->id;
    ASSERT_TRUE(store->PutSetting("cluster_id", "c-1").ok());
  }
  {
    // Turn it back into a version 1 database: exactly what migration 1 created.
    RawDb raw(DbPath());
    ASSERT_EQ(raw.Exec("ALTER TABLE jobs DROP COLUMN depends; ALTER TABLE jobs DROP COLUMN processes; ALTER TABLE jobs DROP COLUMN members; DROP TABLE submit_keys; DROP TABLE records; DROP TABLE audit; DROP TABLE usage; DROP TABLE ledger; "
                       "DELETE FROM sqlite_sequence WHERE name = 'ledger'; PRAGMA user_version = 1"),
              "");
    ASSERT_EQ(raw.QueryText("SELECT count(*) FROM sqlite_master WHERE tbl_name IN "
                            "('records', 'audit', 'usage', 'ledger')"),
              "0");
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->SchemaVersion(), SqliteLatestSchemaVersion());
  EXPECT_GE(SqliteLatestSchemaVersion(), 2);
  {
    RawDb raw(DbPath());
    EXPECT_EQ(raw.QueryText("PRAGMA user_version"), std::to_string(SqliteLatestSchemaVersion()));
    EXPECT_EQ(raw.QueryText("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                            "('records', 'audit', 'usage', 'ledger')"),
              "4");
    EXPECT_EQ(raw.QueryText("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'ledger_by_month'"),
              "1");
  }
  // Old data is intact and the new tables work.
  auto j = store->GetJob(job_id);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ(j->spec.name, "old");
  EXPECT_EQ(j->spec.processes, api::ProcessLayout::kPerNode);  // the column's default for jobs from before it
  EXPECT_TRUE(j->spec.after.empty() && j->spec.after_ok.empty());
  EXPECT_EQ(store->GetSetting("cluster_id")->value_or("?"), "c-1");
  ASSERT_TRUE(PutRecord(*store, "user", "alice", "v", 0).ok());
  auto a = store->AppendAudit({.actor = "user:alice", .action = "login"});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->seq, 1);
  EXPECT_EQ(a->prev_hash, "");
  ASSERT_TRUE(store->PostLedger({}, {{.key = "k", .project = "ml", .kind = "trial_credit", .amount_micro = 1,
                                      .month = "2026-11"}})
                  .ok());
  EXPECT_EQ(store->ListLedger({.month = "2026-11"})->size(), 1u);
  // Skipped duplicates use up no seq numbers.
  ASSERT_TRUE(store->PostLedger({}, {{.key = "k"}, {.key = "k2"}, {.key = "k"}}).ok());
  ASSERT_TRUE(store->PostLedger({}, {{.key = "k2"}, {.key = "k3"}}).ok());
  auto entries = store->ListLedger({});
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 3u);
  EXPECT_EQ((*entries)[0].seq, 1);
  EXPECT_EQ((*entries)[1].seq, 2);
  EXPECT_EQ((*entries)[2].seq, 3);
  auto next = store->CreateJob(SampleJob("new"), SubmitEvent());
  ASSERT_TRUE(next.ok());
  EXPECT_GT(JobNumber(next->id), JobNumber(job_id));
}

TEST_F(SqliteStoreTest, IdsAreNeverReused) {
  std::string last;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    for (int i = 0; i < 3; ++i) last = store->CreateJob(SampleJob("a"), SubmitEvent())->id;
  }
  {
    // Remove the newest job row (as a manual repair might); its number must still not come back.
    RawDb raw(DbPath());
    ASSERT_EQ(raw.Exec("PRAGMA foreign_keys = OFF; DELETE FROM jobs WHERE num = " +
                       std::to_string(JobNumber(last))),
              "");
  }
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto next = store->CreateJob(SampleJob("b"), SubmitEvent());
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  EXPECT_GT(JobNumber(next->id), JobNumber(last));
}

TEST_F(SqliteStoreTest, OneFailingRequestDoesNotFailItsBatch) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto j = store->CreateJob(SampleJob("a"), SubmitEvent());
  ASSERT_TRUE(j.ok());
  // Many concurrent writers, half of which fail their compare-and-set; whatever batches they share,
  // only the failing calls fail.
  constexpr int kThreads = 16;
  std::atomic<int> create_failures{0};
  std::atomic<int> cas_ok{0};
  std::atomic<int> cas_conflict{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        if (t % 2 == 0) {
          if (!store->CreateJob(SampleJob("x"), SubmitEvent()).ok()) create_failures++;
        } else {
          api::Job stale = *j;
          stale.state = api::JobState::kRunning;
          Status st = store->UpdateJobs(
              {{.job = stale, .event = {.to = "RUNNING"}, .expected_state = api::JobState::kScheduled}});
          if (st.ok()) {
            cas_ok++;
          } else if (st.code() == ErrorCode::kFailedPrecondition) {
            cas_conflict++;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(create_failures.load(), 0);
  EXPECT_EQ(cas_ok.load(), 0);
  EXPECT_EQ(cas_conflict.load(), kThreads / 2 * 20);
  auto all = store->ListJobs({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u + kThreads / 2 * 20);
  EXPECT_EQ(store->ListEvents(j->id)->size(), 1u);

  StoreStats stats = store->Stats();
  EXPECT_EQ(stats.writes, 1 + kThreads * 20);
  EXPECT_GE(stats.commits, 1);
  EXPECT_LE(stats.commits, stats.writes);
  EXPECT_GE(stats.max_batch, 1);
}

// One server leads a database file: a second (another `fastgpu server --store sqlite:` on the same file) is
// refused naming the first, and may lead once the first has closed it.
TEST_F(SqliteStoreTest, OneLeaderPerDatabaseFile) {
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(a->TryLead("host-a pid 1", 0).ok());
  auto refused = b->TryLead("host-b pid 2", 0);
  ASSERT_EQ(refused.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("another fastgpu server uses the database"), std::string::npos);
  EXPECT_NE(refused.status().message().find("(host-a pid 1)"), std::string::npos) << refused.status().message();
  EXPECT_TRUE(a->CheckLead().ok());
  a.reset();
  EXPECT_TRUE(b->TryLead("host-b pid 2", 0).ok());
}

TEST_F(SqliteStoreTest, ConcurrentStoresOnOneFileSerialize) {
  // Two stores on one file (e.g. a second process during an upgrade) must not corrupt it.
  auto a = Open();
  auto b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (Store* s : {a.get(), b.get()}) {
    threads.emplace_back([&, s] {
      for (int i = 0; i < 50; ++i) {
        if (!s->CreateJob(SampleJob("x"), SubmitEvent()).ok()) failures++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(a->ListJobs({})->size(), 100u);
  EXPECT_EQ(b->ListJobs({})->size(), 100u);
}

}  // namespace
}  // namespace fastgpu::store
