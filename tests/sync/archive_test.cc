#include "sync/archive.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <gtest/gtest.h>

#include "common/file_util.h"

namespace fastgpu::sync {
namespace {

namespace fs = std::filesystem;

class ArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-sync-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    src_ = tmp_ + "/src";
    fs::create_directories(src_);
  }
  void TearDown() override { fs::remove_all(tmp_); }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories(fs::path(src_ + "/" + rel).parent_path());
    std::ofstream(src_ + "/" + rel) << text;
  }
  // A raw archive with the given entries (type, path, data), for refusals.
  std::string Raw(const std::vector<std::tuple<char, std::string, std::string>>& entries) {
    std::string a = "FGSYNC1\n";
    for (const auto& [t, p, d] : entries)
      a += std::string(1, t) + " 644 " + std::to_string(d.size()) + " " + std::to_string(p.size()) + "\n" + p + d;
    a += "END\n";
    const std::string path = tmp_ + "/raw.fgs";
    std::ofstream(path) << a;
    return path;
  }
  std::string tmp_, src_;
};

TEST_F(ArchiveTest, RoundTripIsDeterministicAndHonoursIgnoreFiles) {
  Write("train.py", "print('hi')\n");
  Write("run.sh", "#!/bin/sh\necho run\n");
  ::chmod((src_ + "/run.sh").c_str(), 0700);
  Write("lib/util.py", "x = 1\n");
  Write("data/big.bin", std::string(1000, 'x'));
  Write(".gitignore", "data/\n*.pyc\n");
  Write(".fastgpuignore", "secret.txt\n");
  Write("secret.txt", "no");
  Write("lib/cache.pyc", "no");
  Write(".git/HEAD", "ref");
  fs::create_symlink("lib/util.py", src_ + "/link.py");
  fs::create_symlink("/etc/passwd", src_ + "/outside");

  auto scan = ScanTree(src_);
  ASSERT_TRUE(scan.ok()) << scan.status().message();
  std::vector<std::string> paths;
  for (const auto& e : scan->entries) paths.push_back(e.path);
  EXPECT_EQ(paths, (std::vector<std::string>{".fastgpuignore", ".gitignore", "lib/util.py", "link.py", "run.sh",
                                             "train.py"}));
  ASSERT_EQ(scan->notes.size(), 1u);
  EXPECT_NE(scan->notes[0].find("outside"), std::string::npos);

  auto h1 = WriteArchive(src_, *scan, tmp_ + "/a1");
  ASSERT_TRUE(h1.ok()) << h1.status().message();
  auto scan2 = ScanTree(src_);
  auto h2 = WriteArchive(src_, *scan2, tmp_ + "/a2");
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(*h1, *h2);
  EXPECT_EQ(h1->size(), 64u);
  EXPECT_EQ(static_cast<int64_t>(fs::file_size(tmp_ + "/a1")), scan->total_bytes);

  Write("train.py", "print('changed')\n");
  auto h3 = WriteArchive(src_, *ScanTree(src_), tmp_ + "/a3");
  ASSERT_TRUE(h3.ok());
  EXPECT_NE(*h1, *h3);

  const std::string dest = tmp_ + "/dest";
  fs::create_directories(dest);
  Status st = Unpack(tmp_ + "/a1", dest, std::nullopt);
  ASSERT_TRUE(st.ok()) << st.message();
  EXPECT_EQ(*ReadFileToString(dest + "/train.py"), "print('hi')\n");
  EXPECT_EQ(*ReadFileToString(dest + "/lib/util.py"), "x = 1\n");
  EXPECT_EQ(fs::read_symlink(dest + "/link.py").string(), "lib/util.py");
  EXPECT_FALSE(fs::exists(dest + "/data"));
  EXPECT_FALSE(fs::exists(dest + "/secret.txt"));
  struct stat st1 {};
  ASSERT_EQ(::stat((dest + "/run.sh").c_str(), &st1), 0);
  EXPECT_EQ(st1.st_mode & 0777, 0755u);
  // Unpacking again replaces files (a retry of the job).
  EXPECT_TRUE(Unpack(tmp_ + "/a3", dest, std::nullopt).ok());
  EXPECT_EQ(*ReadFileToString(dest + "/train.py"), "print('changed')\n");
}

TEST_F(ArchiveTest, SizeLimitNamesTheLargestFiles) {
  Write("a.bin", std::string(5000, 'a'));
  Write("b.txt", "b");
  auto scan = ScanTree(src_);
  ASSERT_TRUE(scan.ok());
  Status st = TooLarge(*scan, 1000, src_);
  EXPECT_NE(st.message().find("a.bin"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(".fastgpuignore"), std::string::npos);
}

TEST_F(ArchiveTest, EscapesAreRefused) {
  const std::string dest = tmp_ + "/dest";
  fs::create_directories(dest);
  EXPECT_FALSE(Unpack(Raw({{'f', "../evil", "x"}}), dest, std::nullopt).ok());
  EXPECT_FALSE(Unpack(Raw({{'f', "/abs", "x"}}), dest, std::nullopt).ok());
  EXPECT_FALSE(Unpack(Raw({{'f', "a/./b", "x"}}), dest, std::nullopt).ok());
  EXPECT_FALSE(Unpack(Raw({{'f', "a//b", "x"}}), dest, std::nullopt).ok());
  EXPECT_FALSE(Unpack(Raw({{'l', "l", "/etc"}}), dest, std::nullopt).ok());
  EXPECT_FALSE(Unpack(Raw({{'l', "a/l", "../../x"}}), dest, std::nullopt).ok());
  // Through a symlink that stays inside: still refused (never written through a link).
  EXPECT_FALSE(Unpack(Raw({{'l', "d", "."}, {'f', "d/x", "y"}}), dest, std::nullopt).ok());
  // A link already in the destination (planted by a job) is replaced, never followed.
  fs::create_directories(tmp_ + "/victim");
  fs::create_symlink(tmp_ + "/victim", dest + "/sub");
  EXPECT_FALSE(Unpack(Raw({{'f', "sub/x", "y"}}), dest, std::nullopt).ok());
  EXPECT_FALSE(fs::exists(tmp_ + "/victim/x"));
  std::ofstream(tmp_ + "/victim/file") << "keep";
  fs::create_symlink(tmp_ + "/victim/file", dest + "/f");
  EXPECT_TRUE(Unpack(Raw({{'f', "f", "new"}}), dest, std::nullopt).ok());
  EXPECT_EQ(*ReadFileToString(tmp_ + "/victim/file"), "keep");
  EXPECT_EQ(*ReadFileToString(dest + "/f"), "new");
  // Damaged archives.
  std::ofstream(tmp_ + "/junk") << "not an archive";
  EXPECT_FALSE(Unpack(tmp_ + "/junk", dest, std::nullopt).ok());
  std::ofstream(tmp_ + "/trunc") << "FGSYNC1\nf 644 10 1\nab";
  EXPECT_FALSE(Unpack(tmp_ + "/trunc", dest, std::nullopt).ok());
}

TEST(LinkTest, StaysInside) {
  EXPECT_TRUE(LinkStaysInside("a/b", "c"));
  EXPECT_TRUE(LinkStaysInside("a/b", "../c"));
  EXPECT_FALSE(LinkStaysInside("a/b", "../../c"));
  EXPECT_FALSE(LinkStaysInside("b", "/etc"));
  EXPECT_TRUE(LinkStaysInside("b", "./x/../y"));
}

}  // namespace
}  // namespace fastgpu::sync
