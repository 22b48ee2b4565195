// Logs and their time indexes pushed by remote agents (server/nodes.h): appends idempotent by offset, whole
// records only, read back through the node's LogSource.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "agent/log_times.h"
#include "server/nodes.h"

namespace fastgpu::server {
namespace {

std::string Records(std::initializer_list<agent::LogTime> times) {
  std::string out;
  for (const auto& t : times) {
    char rec[agent::kLogTimeRecordBytes];
    agent::EncodeLogTime(t, rec);
    out.append(rec, sizeof(rec));
  }
  return out;
}

TEST(ShippedLogsTest, TimeIndexesAreAppendedByOffsetAndReadWithTheLog) {
  const std::string dir = ::testing::TempDir() + "/shipped_logs_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  ShippedLogs logs(dir);
  ASSERT_EQ(*logs.Append("gpu-b", "j-1", 0, "one\ntwo\n"), 8);
  const std::string both = Records({{0, 4, 1000}, {4, 8, 2000}});
  ASSERT_EQ(*logs.AppendTimes("gpu-b", "j-1", 0, both.substr(0, 24)), 24);
  // A push repeated after a lost answer writes nothing twice; one that goes on appends the rest.
  EXPECT_EQ(*logs.AppendTimes("gpu-b", "j-1", 0, both), 48);
  EXPECT_EQ(*logs.AppendTimes("gpu-b", "j-1", 0, both), 48);
  EXPECT_EQ(*logs.AppendTimes("gpu-b", "j-1", 24, both.substr(24)), 48);
  // Not whole records: refused.
  EXPECT_EQ(logs.AppendTimes("gpu-b", "j-1", 48, "short").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(logs.AppendTimes("gpu-b", "j-1", 5, both).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(logs.AppendTimes("gpu-b", "../x", 0, both).status().code(), ErrorCode::kInvalidArgument);

  agent::LogSource* src = logs.ForNode("gpu-b");
  auto chunk = src->ReadLog("j-1", 4, 100);
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(chunk->data, "two\n");
  EXPECT_EQ(chunk->size, 8);
  EXPECT_GT(chunk->modified_ms, 0);
  auto times = src->ReadLogTimes("j-1", 1, 10);
  ASSERT_TRUE(times.ok());
  EXPECT_EQ(times->total, 2);
  ASSERT_EQ(times->records.size(), 1u);
  EXPECT_EQ(times->records[0].start, 4);
  EXPECT_EQ(times->records[0].unix_ms, 2000);
  // Another node's copy of the same job has none.
  EXPECT_EQ(logs.ForNode("gpu-c")->ReadLogTimes("j-1", 0, 10)->total, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fastgpu::server
