// The agent's answer to a files command (`fastgpu job files` of a job on a remote node, docs/sync.md): listings and
// pieces of files under the job's work dir, never outside it; and the answer's wire form.
#include "agent/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/protocol.h"

namespace fastgpu::agent {
namespace {

namespace fs = std::filesystem;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-files-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    work_ = dir_ + "/jobs/j-1/work";
    fs::create_directories(work_ + "/out");
    std::ofstream(work_ + "/out/result.txt") << "result-42\n";
    std::ofstream(work_ + "/big.bin") << std::string(600'000, 'x') << "end";
    std::ofstream(dir_ + "/secret") << "outside";
    fs::create_symlink(dir_ + "/secret", work_ + "/link");
    fs::create_symlink(dir_, work_ + "/up");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  FilesAnswer Ask(const std::string& path, int64_t offset = 0, int64_t max = kMaxFilesChunk,
                  const std::string& job = "j-1") {
    JobCommand c;
    c.kind = JobCommand::Kind::kFiles;
    c.job_id = job;
    c.request = "f-1";
    c.files_path = path;
    c.files_offset = offset;
    c.files_max_bytes = max;
    return AnswerFiles(dir_ + "/jobs", "gpu-b", c);
  }
  std::string dir_, work_;
};

TEST_F(FilesTest, ListsTheWorkDirRecursivelyWithoutFollowingSymlinks) {
  FilesAnswer a = Ask("");
  EXPECT_EQ(a.request, "f-1");
  EXPECT_EQ(a.node, "gpu-b");
  ASSERT_TRUE(a.error_code.empty()) << a.error;
  ASSERT_TRUE(a.dir);
  EXPECT_FALSE(a.truncated);
  std::vector<std::string> paths;
  for (const FileInfo& f : a.files) paths.push_back(f.path + ":" + f.type);
  EXPECT_EQ(paths, (std::vector<std::string>{"big.bin:file", "link:symlink", "out:dir", "out/result.txt:file",
                                             "up:symlink"}));
  FilesAnswer sub = Ask("/out/");
  ASSERT_EQ(sub.files.size(), 1u);
  EXPECT_EQ(sub.files[0].path, "out/result.txt");
  EXPECT_EQ(sub.files[0].size, 10);
}

TEST_F(FilesTest, ReadsAFilePieceByPiece) {
  FilesAnswer first = Ask("big.bin");
  ASSERT_TRUE(first.error_code.empty()) << first.error;
  EXPECT_FALSE(first.dir);
  EXPECT_EQ(first.size, 600'003);
  EXPECT_EQ(first.offset, 0);
  EXPECT_EQ(first.data.size(), static_cast<size_t>(kMaxFilesChunk));
  FilesAnswer last = Ask("big.bin", 600'000, 1000);
  EXPECT_EQ(last.offset, 600'000);
  EXPECT_EQ(last.data, "end");
  FilesAnswer past = Ask("big.bin", 700'000);
  EXPECT_EQ(past.offset, 600'003);
  EXPECT_TRUE(past.data.empty());
  // At most one piece whatever is asked.
  EXPECT_EQ(Ask("big.bin", 0, int64_t{1} << 40).data.size(), static_cast<size_t>(kMaxFilesChunk));
}

TEST_F(FilesTest, NeverLeavesTheWorkDir) {
  FilesAnswer dots = Ask("out/../../secret");
  EXPECT_EQ(dots.error_code, "invalid_argument");
  EXPECT_NE(dots.error.find("'..'"), std::string::npos) << dots.error;
  FilesAnswer link = Ask("link");
  EXPECT_EQ(link.error_code, "invalid_argument");
  EXPECT_NE(link.error.find("symlink"), std::string::npos) << link.error;
  EXPECT_EQ(Ask("up/secret").error_code, "invalid_argument");
  FilesAnswer missing = Ask("nothere");
  EXPECT_EQ(missing.error_code, "not_found");
  EXPECT_EQ(missing.error, "no 'nothere' in the work dir of job j-1");
  EXPECT_EQ(Ask("", 0, kMaxFilesChunk, "../j-1").error_code, "invalid_argument");
  EXPECT_EQ(Ask("", 0, kMaxFilesChunk, "j-2").error_code, "not_found");
  ASSERT_EQ(::mkfifo((work_ + "/fifo").c_str(), 0600), 0);
  EXPECT_EQ(Ask("fifo").error_code, "invalid_argument");  // not a regular file, and never blocks
}

TEST_F(FilesTest, TheCommandAndTheAnswerTravelAsStrictJson) {
  JobCommand c;
  c.kind = JobCommand::Kind::kFiles;
  c.id = 7;
  c.job_id = "j-1";
  c.request = "f-1";
  c.files_path = "out";
  c.files_offset = 5;
  c.files_max_bytes = 100;
  auto back = JobCommandFromJson(ToJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->kind, JobCommand::Kind::kFiles);
  EXPECT_EQ(back->files_path, "out");
  EXPECT_EQ(back->files_offset, 5);
  EXPECT_EQ(back->files_max_bytes, 100);
  nlohmann::json too_much = ToJson(c);
  too_much["max_bytes"] = kMaxFilesChunk + 1;
  EXPECT_FALSE(JobCommandFromJson(too_much).ok());

  FilesAnswer piece = Ask("big.bin", 600'000);
  auto p = FilesAnswerFromJson(ToJson(piece));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->data, "end");
  EXPECT_EQ(p->size, 600'003);
  FilesAnswer listing = Ask("");
  auto l = FilesAnswerFromJson(ToJson(listing));
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_TRUE(l->dir);
  EXPECT_EQ(l->files.size(), 5u);
  nlohmann::json bad = ToJson(listing);
  bad["extra"] = 1;
  EXPECT_FALSE(FilesAnswerFromJson(bad).ok());
  bad = ToJson(Ask("nothere"));
  bad["error_code"] = "teapot";
  EXPECT_FALSE(FilesAnswerFromJson(bad).ok());
}

}  // namespace
}  // namespace fastgpu::agent
