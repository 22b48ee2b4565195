#include "sync/ignore.h"

#include <gtest/gtest.h>

namespace fastgpu::sync {
namespace {

TEST(GlobTest, StarsQuestionMarksClasses) {
  EXPECT_TRUE(GlobMatch("*.pt", "model.pt"));
  EXPECT_FALSE(GlobMatch("*.pt", "a/model.pt"));
  EXPECT_TRUE(GlobMatch("data?.csv", "data1.csv"));
  EXPECT_FALSE(GlobMatch("data?.csv", "data12.csv"));
  EXPECT_TRUE(GlobMatch("[a-c]x", "bx"));
  EXPECT_FALSE(GlobMatch("[!a-c]x", "bx"));
  EXPECT_TRUE(GlobMatch("**/cache", "cache"));
  EXPECT_TRUE(GlobMatch("**/cache", "a/b/cache"));
  EXPECT_TRUE(GlobMatch("logs/**", "logs/a/b.txt"));
  EXPECT_TRUE(GlobMatch("a/**/b", "a/b"));
  EXPECT_TRUE(GlobMatch("a/**/b", "a/x/y/b"));
  EXPECT_FALSE(GlobMatch("a/**/b", "a/x/y/c"));
  EXPECT_TRUE(GlobMatch("\\*lit", "*lit"));
  EXPECT_FALSE(GlobMatch("\\*lit", "xlit"));
}

TEST(IgnoreTest, GitRules) {
  IgnoreRules r;
  r.AddFile("", "# comment\n\n*.ckpt\n!keep.ckpt\nbuild/\n/top.txt\ndocs/*.md\n**/__pycache__\n");
  EXPECT_TRUE(r.Ignored("model.ckpt", false));
  EXPECT_TRUE(r.Ignored("sub/model.ckpt", false));
  EXPECT_FALSE(r.Ignored("keep.ckpt", false));
  EXPECT_TRUE(r.Ignored("build", true));
  EXPECT_FALSE(r.Ignored("build", false));  // dir-only
  EXPECT_TRUE(r.Ignored("a/build", true));
  EXPECT_TRUE(r.Ignored("top.txt", false));
  EXPECT_FALSE(r.Ignored("sub/top.txt", false));  // anchored
  EXPECT_TRUE(r.Ignored("docs/x.md", false));
  EXPECT_FALSE(r.Ignored("docs/a/x.md", false));
  EXPECT_TRUE(r.Ignored("x/y/__pycache__", true));
  EXPECT_FALSE(r.Ignored("train.py", false));
}

TEST(IgnoreTest, NestedFilesApplyBelowTheirDirectoryAndLaterWins) {
  IgnoreRules r;
  r.AddFile("", "*.log\n");
  r.AddFile("sub", "!important.log\n/local.txt\n");
  EXPECT_TRUE(r.Ignored("a.log", false));
  EXPECT_TRUE(r.Ignored("other/important.log", false));
  EXPECT_FALSE(r.Ignored("sub/important.log", false));
  EXPECT_TRUE(r.Ignored("sub/local.txt", false));
  EXPECT_FALSE(r.Ignored("local.txt", false));
}

TEST(IgnoreTest, TrailingSpacesAndEscapes) {
  IgnoreRules r;
  r.AddFile("", "big.bin   \n\\#hash\n\\!bang\n");
  EXPECT_TRUE(r.Ignored("big.bin", false));
  EXPECT_TRUE(r.Ignored("#hash", false));
  EXPECT_TRUE(r.Ignored("!bang", false));
}

}  // namespace
}  // namespace fastgpu::sync
