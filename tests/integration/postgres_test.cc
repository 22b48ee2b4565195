// `fastgpu up --store postgres://...`: the real binary on a throwaway PostgreSQL (tests/support/pg_cluster.h).
#include <gtest/gtest.h>

#include <string>

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

}  // namespace
}  // namespace fastgpu::testing
