// SQLite-specific behaviour: pragmas, migrations, append-only events, id reuse, grouping.
#include <gtest/gtest.h>
#include <sqlite3.h>

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
