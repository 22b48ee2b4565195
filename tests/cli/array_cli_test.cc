// Job arrays in the CLI: --array and `array:` in a job file become the spec's array; bad ones name the flag or line.
#include <gtest/gtest.h>

#include <map>

#include "cli/job_file.h"

namespace fastgpu::cli {
namespace {

ReadFileFn Files(std::map<std::string, std::string> files) {
  return [files = std::move(files)](const std::string& p) -> std::optional<std::string> {
    auto it = files.find(p);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ArrayCli, FlagAndJobFile) {
  SubmitFlags f;
  f.command = {"python3", "sweep.py"};
  f.array = "0-99%8";
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->array, "0-99%8");

  auto y = ParseJobYaml("command: [x]\narray: 1,3,5-7\n", api::JobSpec{});
  ASSERT_TRUE(y.ok()) << y.status().ToString();
  EXPECT_EQ(y->array, "1,3,5-7");
  // The flag overrides the file.
  SubmitFlags g;
  g.file = "job.yaml";
  g.array = "0-9:2";
  s = BuildJobSpec(g, Files({{"job.yaml", "command: [run]\narray: 0-3\n"}}));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->array, "0-9:2");
}

TEST(ArrayCli, ErrorsNameTheFlagOrTheLine) {
  SubmitFlags f;
  f.command = {"true"};
  f.array = "0-9%0";
  auto s = BuildJobSpec(f, Files({}));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("invalid --array: array '0-9%0': the limit after '%' must be at least 1"),
            std::string::npos)
      << s.status().message();
  auto y = ParseJobYaml("command: [x]\narray: 9-1\n", api::JobSpec{});
  ASSERT_FALSE(y.ok());
  EXPECT_NE(y.status().message().find("2:"), std::string::npos) << y.status().message();
  EXPECT_NE(y.status().message().find("ends before it starts"), std::string::npos) << y.status().message();
}

TEST(ArraySpec, ListsRangesStepsAndLimits) {
  auto a = api::ParseArraySpec("5-7,1,3,3");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->indices, (std::vector<int>{1, 3, 5, 6, 7}));
  EXPECT_EQ(a->limit, 0);
  a = api::ParseArraySpec("0-10:5%2");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->indices, (std::vector<int>{0, 5, 10}));
  EXPECT_EQ(a->limit, 2);
  EXPECT_EQ(api::ParseArraySpec("0-9999")->indices.size(), 10000u);
  for (const char* bad : {"", "%2", "0-9%", "0-9%x", "1-", "-1", "3:2", "0-9:0", "0-10000", "0-2000000", "1,,2", "a"})
    EXPECT_FALSE(api::ParseArraySpec(bad).ok()) << bad;
}

}  // namespace
}  // namespace fastgpu::cli
