#include "auth/audit.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace fastgpu::auth
