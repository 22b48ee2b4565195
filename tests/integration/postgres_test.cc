// `fastgpu up --store postgres://...`: the real binary on a throwaway PostgreSQL (tests/support/pg_cluster.h).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "harness.h"
#include "support/pg_cluster.h"

namespace fastgpu::testing {
namespace {

class PostgresUpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = PgCluster::Unavailable(); !why.empty()) GTEST_SKIP() << why;
    std::string error;
    pg_ = SharedPgCluster(&error);
    ASSERT_NE(pg_, nullptr) << error;
  }
  PgCluster* pg_ = nullptr;
};

// Jobs (ended ones too), their events and the audit chain are in PostgreSQL and survive a restart; nothing
// is written to a SQLite file under the home.
TEST_F(PostgresUpTest, JobsEventsAndAuditLiveInPostgresAcrossRestarts) {
  ASSERT_TRUE(pg_->CreateDatabase("up_restart").ok());
  const std::string store = pg_->Url("up_restart");
  UpProcess up;
  up.Start({"--store", store});
  std::string id = up.Submit({{"command", {"/bin/sh", "-c", "exit 0"}}, {"gpus", 1}});
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(up.WaitState(id, "SUCCEEDED"));
  EXPECT_FALSE(std::filesystem::exists(up.home() + "/fastgpu.db"));
  EXPECT_EQ(*pg_->Psql("up_restart", "SELECT state FROM jobs WHERE num = " + id.substr(2)), "SUCCEEDED");

  up.Stop(SIGTERM);
  up.Start({"--store", store});
  EXPECT_EQ(up.Job(id).value("state", ""), "SUCCEEDED");  // an ended job, read from the store
  CliResult events = up.Cli({"job", "events", id});
  EXPECT_EQ(events.exit_code, 0) << events.err;
  EXPECT_NE(events.out.find("SUCCEEDED"), std::string::npos) << events.out;
  CliResult list = up.Cli({"job", "list"});
  EXPECT_NE(list.out.find(id), std::string::npos) << list.out;
  CliResult verify = up.Cli({"audit", "verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(*pg_->Psql("up_restart", "SELECT count(*) FROM audit"), "0");
}

// Two servers on one database: the second is refused, naming the first; with --standby it waits, and takes
// over (same jobs, new epoch) once the first is killed. Prints the takeover time.
TEST_F(PostgresUpTest, OneServerLeadsADatabaseAndAStandbyTakesOverWhenItDies) {
  ASSERT_TRUE(pg_->CreateDatabase("up_lead").ok());
  const std::string store = pg_->Url("up_lead");
  UpProcess a;
  a.Start({"--store", store});
  std::string id = a.Submit({{"command", {"/bin/sh", "-c", "exit 0"}}, {"gpus", 1}});
  ASSERT_TRUE(a.WaitState(id, "SUCCEEDED"));

  UpProcess b;
  CliResult refused = b.Cli({"up", "--home", b.home(), "--listen", "127.0.0.1:0", "--store", store});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("another fastgpu server leads this database"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("pid " + std::to_string(a.pid())), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--standby"), std::string::npos) << refused.err;
  EXPECT_EQ(Trim(refused.err).find('\n'), std::string::npos) << refused.err;

  std::thread standby([&] { b.Start({"--store", store, "--standby"}); });
  const std::string log = b.home() + "/../up-0.log";
  EXPECT_TRUE(WaitFor([&] { return ReadFile(log).find("waiting to take over") != std::string::npos; }))
      << ReadFile(log);
  EXPECT_FALSE(std::filesystem::exists(b.home() + "/url")) << "a standby serves nothing";
  const std::string epoch_before = *pg_->Psql("up_lead", "SELECT epoch FROM leader");
  a.Stop(SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  standby.join();
  std::printf("[ figure ] standby serving %lld ms after kill -9 of the leader\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - killed)
                                         .count()));
  EXPECT_NE(ReadFile(log).find("took the lead"), std::string::npos) << ReadFile(log);
  EXPECT_EQ(std::stoll(*pg_->Psql("up_lead", "SELECT epoch FROM leader")), std::stoll(epoch_before) + 1);
  EXPECT_EQ(b.Job(id).value("state", ""), "SUCCEEDED");
  std::string id2 = b.Submit({{"command", {"/bin/sh", "-c", "exit 0"}}, {"gpus", 1}});
  ASSERT_TRUE(b.WaitState(id2, "SUCCEEDED"));
}

// A bad URL or a database that cannot be reached stops `fastgpu up` with one line saying why.
TEST_F(PostgresUpTest, BadOrUnreachableStoreIsOneLine) {
  for (const std::string& url : {std::string("postgresql:///nodb?host=/nonexistent&password=s3cret"),
                                  std::string("mysql://db/fastgpu")}) {
    UpProcess up;
    CliResult r = up.Cli({"up", "--home", up.home(), "--listen", "127.0.0.1:0", "--store", url});
    EXPECT_NE(r.exit_code, 0) << url;
    std::string err = Trim(r.err);
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    EXPECT_EQ(err.find("s3cret"), std::string::npos) << err;
    EXPECT_TRUE(err.find("cannot connect to PostgreSQL") != std::string::npos ||
                err.find("unknown store URL") != std::string::npos)
        << err;
  }
}

// fastgpu admin: an online backup, a restore (refused while fastgpu runs), and a migration of the SQLite
// store into PostgreSQL after which the server runs on it with every job, user and the audit chain intact.
TEST_F(PostgresUpTest, AdminBackupRestoreAndMigrate) {
  UpProcess up;
  up.Start();
  std::string j1 = up.Submit({{"command", {"/bin/sh", "-c", "exit 0"}}, {"gpus", 1}});
  ASSERT_TRUE(up.WaitState(j1, "SUCCEEDED"));
  ASSERT_FALSE(up.NewUser("bob").empty());
  const std::string backup = up.home() + "/../backup.db";
  CliResult b = up.Cli({"admin", "backup", backup});
  ASSERT_EQ(b.exit_code, 0) << b.out << b.err;
  EXPECT_NE(b.out.find("backed up"), std::string::npos) << b.out;
  std::string j2 = up.Submit({{"command", {"/bin/sh", "-c", "exit 0"}}, {"gpus", 1}});
  ASSERT_TRUE(up.WaitState(j2, "SUCCEEDED"));

  CliResult busy = up.Cli({"admin", "restore", backup});
  EXPECT_NE(busy.exit_code, 0);
  EXPECT_NE(busy.err.find("stop it"), std::string::npos) << busy.err;
  ASSERT_TRUE(pg_->CreateDatabase("migrated").ok());
  const std::string store = pg_->Url("migrated");
  CliResult busy2 = up.Cli({"admin", "migrate", "--to", store});
  EXPECT_NE(busy2.exit_code, 0);

  up.Stop(SIGTERM);
  CliResult r = up.Cli({"admin", "restore", backup});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  up.Start();
  EXPECT_EQ(up.Job(j1).value("state", ""), "SUCCEEDED");
  EXPECT_NE(up.Job(j2).value("state", ""), "SUCCEEDED");  // after the backup: gone
  CliResult v = up.Cli({"audit", "verify"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  up.Stop(SIGTERM);

  CliResult m = up.Cli({"admin", "migrate", "--to", store});
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  EXPECT_NE(m.out.find("jobs"), std::string::npos) << m.out;
  up.Start({"--store", store});
  EXPECT_EQ(up.Job(j1).value("state", ""), "SUCCEEDED");
  auto users = up.GetJson("/v1/users");
  EXPECT_NE(users.dump().find("bob"), std::string::npos) << users.dump();
  CliResult v2 = up.Cli({"audit", "verify"});
  EXPECT_EQ(v2.exit_code, 0) << v2.out << v2.err;
  std::string j3 = up.Submit({{"command", {"/bin/sh", "-c", "exit 0"}}, {"gpus", 1}});
  EXPECT_EQ(j3, j2);  // numbering goes on after the restored database's last job
  ASSERT_TRUE(up.WaitState(j3, "SUCCEEDED"));
  CliResult v3 = up.Cli({"audit", "verify"});
  EXPECT_EQ(v3.exit_code, 0) << v3.out << v3.err;

  CliResult pgb = up.Cli({"admin", "backup", backup, "--store", store});
  EXPECT_NE(pgb.exit_code, 0);
  EXPECT_NE(pgb.err.find("pg_dump"), std::string::npos) << pgb.err;
}

}  // namespace
}  // namespace fastgpu::testing
