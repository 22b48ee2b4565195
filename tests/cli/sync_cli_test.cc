#include "cli/sync_cli.h"

#include <gtest/gtest.h>

#include "cli/job_file.h"

namespace fastgpu::cli {
namespace {

TEST(SyncCliTest, AJobFilesSyncIsRelativeToTheFile) {
  auto d = SyncDirOfJobFile("command: [python, train.py]\nsync: .\n", "/home/a/proj/job.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->value_or(""), "/home/a/proj");
  d = SyncDirOfJobFile("command: [true]\nsync: src\n", "job.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->value_or(""), "src");
  d = SyncDirOfJobFile("command: [true]\nsync: /abs/dir\n", "x/job.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->value_or(""), "/abs/dir");
  d = SyncDirOfJobFile("command: [true]\n", "job.yaml");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->has_value());
  EXPECT_FALSE(SyncDirOfJobFile("command: [true]\nsync: [a, b]\n", "job.yaml").ok());
}

TEST(SyncCliTest, TheJobFileParserKnowsTheSyncField) {
  auto spec = ParseJobYaml("command: [true]\nsync: .\n");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_TRUE(spec->sync.empty());  // the directory is uploaded by submit, which sets the hash
}

}  // namespace
}  // namespace fastgpu::cli
