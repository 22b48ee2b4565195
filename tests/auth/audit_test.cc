#include "auth/audit.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/file_util.h"

namespace fastgpu::auth {
namespace {

// A chain as the store would write it.
std::vector<api::AuditRecord> Chain(int n) {
  std::vector<api::AuditRecord> rows;
  for (int i = 1; i <= n; ++i) {
    api::AuditRecord r;
    r.seq = i;
    r.at = 1'700'000'000'000 + i;
    r.actor = "user:alice";
    r.source = "127.0.0.1";
    r.action = "POST /v1/jobs";
    r.target = "job:j-" + std::to_string(i);
    r.result = "ok";
    r.prev_hash = rows.empty() ? "" : rows.back().hash;
    r.hash = api::AuditHash(r);
    rows.push_back(r);
  }
  return rows;
}

TEST(VerifyAuditChain, IntactChain) {
  auto report = VerifyAuditChain(Chain(10));
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.rows, 10);
  EXPECT_EQ(report.first_bad_seq, 0);
  EXPECT_TRUE(report.problem.empty());
  EXPECT_TRUE(VerifyAuditChain(Chain(10), 10).ok);
  EXPECT_TRUE(VerifyAuditChain({}).ok);
}

TEST(VerifyAuditChain, ModifiedRow) {
  auto rows = Chain(10);
  rows[2].actor = "user:mallory";
  auto report = VerifyAuditChain(rows);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 3);
  EXPECT_NE(report.problem.find("row 3 was modified"), std::string::npos) << report.problem;
  EXPECT_EQ(report.rows, 10);
}

TEST(VerifyAuditChain, ModifiedRowWithRecomputedHashBreaksTheNextLink) {
  auto rows = Chain(10);
  rows[2].detail = "rewritten";
  rows[2].hash = api::AuditHash(rows[2]);
  auto report = VerifyAuditChain(rows);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_NE(report.problem.find("prev_hash"), std::string::npos) << report.problem;
}

TEST(VerifyAuditChain, DeletedRow) {
  auto rows = Chain(10);
  rows.erase(rows.begin() + 4);  // seq 5
  auto report = VerifyAuditChain(rows);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 5);
  EXPECT_NE(report.problem.find("row 5 is missing"), std::string::npos) << report.problem;
}

TEST(VerifyAuditChain, DeletedRowsRenumberedAreCaughtByTheLink) {
  auto rows = Chain(10);
  rows.erase(rows.begin() + 4);
  for (size_t i = 4; i < rows.size(); ++i) {
    rows[i].seq = static_cast<int64_t>(i) + 1;
    rows[i].hash = api::AuditHash(rows[i]);
  }
  auto report = VerifyAuditChain(rows);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 5);
}

TEST(VerifyAuditChain, TruncatedHead) {
  auto rows = Chain(10);
  rows.erase(rows.begin(), rows.begin() + 3);
  auto report = VerifyAuditChain(rows);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 1);
  EXPECT_NE(report.problem.find("truncated"), std::string::npos) << report.problem;
  EXPECT_NE(report.problem.find("rows 1-3"), std::string::npos) << report.problem;
}

TEST(VerifyAuditChain, TruncatedTailNeedsTheExpectedLastSeq) {
  auto rows = Chain(10);
  rows.resize(7);
  EXPECT_TRUE(VerifyAuditChain(rows).ok);
  auto report = VerifyAuditChain(rows, 10);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 8);
  EXPECT_NE(report.problem.find("rows 8-10"), std::string::npos) << report.problem;
  report = VerifyAuditChain({}, 2);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 1);
}

TEST(VerifyAuditChain, DuplicatedRow) {
  auto rows = Chain(5);
  rows.insert(rows.begin() + 3, rows[2]);
  auto report = VerifyAuditChain(rows);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 3);
}

// A database-only attacker rewrites the whole chain with plain SHA-256 (every row consistently relinked):
// with the chain keyed outside the database, verify fails; rows from before the key keep verifying.
class KeyedAuditChain : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-audit-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    store_ = std::move(store::OpenSqliteStore(dir_ + "/fastgpu.db")).value();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Append(int n) {
    for (int i = 0; i < n; ++i) {
      api::AuditRecord r{.at = 1'700'000'000'000 + i, .actor = "user:alice", .action = "POST /v1/jobs",
                         .target = "job:j-" + std::to_string(i), .result = "ok"};
      ASSERT_TRUE(store_->AppendAudit(r).ok());
    }
  }
  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

TEST_F(KeyedAuditChain, RewriteWithPlainSha256FailsVerify) {
  Append(3);  // written before the chain was keyed
  ASSERT_TRUE(KeyAuditChain(*store_, dir_ + "/audit.key", "").ok());
  Append(4);
  auto key = store_->AuditKey();
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->keyed_from, 4);
  auto rows = std::move(store_->ListAudit(0, 0)).value();
  ASSERT_EQ(rows.size(), 7u);
  EXPECT_TRUE(VerifyAuditChain(rows, 7, &*key).ok) << VerifyAuditChain(rows, 7, &*key).problem;

  // The attacker's rewrite: change a detail, recompute every hash and link with plain SHA-256.
  auto forged = rows;
  forged[5].detail = "nothing happened";
  for (size_t i = 0; i < forged.size(); ++i) {
    forged[i].prev_hash = i == 0 ? "" : forged[i - 1].hash;
    forged[i].hash = api::AuditHash(forged[i]);
  }
  EXPECT_TRUE(VerifyAuditChain(forged).ok) << "an unkeyed check cannot tell";
  auto report = VerifyAuditChain(forged, 7, &*key);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 4);
  EXPECT_NE(report.problem.find("audit key"), std::string::npos) << report.problem;

  // Rewriting only the old (plain) rows breaks the first keyed row's link.
  auto old = rows;
  old[1].detail = "rewritten";
  old[1].hash = api::AuditHash(old[1]);
  old[2].prev_hash = old[1].hash;
  old[2].hash = api::AuditHash(old[2]);
  report = VerifyAuditChain(old, 7, &*key);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_seq, 4);
}

TEST_F(KeyedAuditChain, KeyFileIsPrivateAndKeepsItsSwitchPoint) {
  Append(2);
  const std::string path = dir_ + "/audit.key";
  ASSERT_TRUE(KeyAuditChain(*store_, path, "").ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto first = *store_->AuditKey();
  EXPECT_EQ(first.keyed_from, 3);
  Append(2);
  // Restart: the same key and switch point come back from the file, whatever the database now says.
  store_ = std::move(store::OpenSqliteStore(dir_ + "/fastgpu.db")).value();
  ASSERT_TRUE(KeyAuditChain(*store_, path, "").ok());
  EXPECT_EQ(store_->AuditKey()->keyed_from, 3);
  EXPECT_EQ(store_->AuditKey()->key, first.key);
  auto rows = std::move(store_->ListAudit(0, 0)).value();
  auto key = store_->AuditKey();
  EXPECT_TRUE(VerifyAuditChain(rows, 0, &*key).ok);
  // A key file others can read is refused, with the fix.
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  Status st2 = KeyAuditChain(*store_, path, "");
  EXPECT_EQ(st2.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st2.message().find("chmod 600"), std::string::npos) << st2.message();
  // From the environment: 64 hex, optionally "@<first keyed row>".
  EXPECT_TRUE(KeyAuditChain(*store_, path, std::string(64, 'a') + "@5").ok());
  EXPECT_EQ(store_->AuditKey()->keyed_from, 5);
  EXPECT_EQ(KeyAuditChain(*store_, path, "abc").code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace fastgpu::auth
