// `fastgpu job list` follows the server's pages (cursor) up to --limit, or all of them with --all, and says
// when more jobs exist than it shows.
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "api/json.h"
#include "cli/app.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/file_util.h"
#include "run_cli.h"
#include "test_server.h"

namespace fastgpu::cli {
namespace {

using nlohmann::json;

// Serves 2,345 jobs (j-2345 newest) in pages of at most `limit` (default 100, max 1000), like the server.
class PagedJobs {
 public:
  PagedJobs() {
    http_.srv().Get("/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
      int64_t limit = req.has_param("limit") ? std::stoll(req.get_param_value("limit")) : 100;
      int64_t before = req.has_param("cursor") ? std::stoll(req.get_param_value("cursor")) : kJobs + 1;
      {
        std::lock_guard lock(mu_);
        queries_.push_back(req.target);
      }
      if (limit < 1 || limit > 1000) {
        res.status = 400;
        res.set_content(R"({"error":{"code":"invalid_argument","message":"limit"}})", "application/json");
        return;
      }
      json jobs = json::array();
      int64_t n = before - 1;
      for (; n >= 1 && static_cast<int64_t>(jobs.size()) < limit; --n) {
        api::Job j;
        j.id = "j-" + std::to_string(n);
        j.state = api::JobState::kSucceeded;
        j.user = "alice";
        j.spec.command = {"true"};
        j.spec.gpus_milli = 1000;
        j.spec.project = "ml";
        jobs.push_back(api::ToJson(j));
      }
      json body = {{"jobs", std::move(jobs)}};
      if (n >= 1) body["next_cursor"] = std::to_string(n + 1);
      res.set_content(body.dump(), "application/json");
    });
    http_.Start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_.port()); }
  std::vector<std::string> queries() {
    std::lock_guard lock(mu_);
    return queries_;
  }

  static constexpr int64_t kJobs = 2345;

 private:
  std::mutex mu_;
  std::vector<std::string> queries_;
  TestHttpServer http_;  // last: stopped first
};

class JobListCli : public ::testing::Test {
 protected:
  Outcome Cli(std::vector<std::string> args) {
    return RunCli(args, {{"FASTGPU_SERVER", server_.url()}, {"FASTGPU_TOKEN", "secret"}, {"FASTGPU_HOME", home_}},
                  clock_);
  }
  void SetUp() override {
    home_ = std::filesystem::temp_directory_path() / ("fastgpu-joblist-" + std::to_string(::getpid()));
    std::filesystem::create_directories(home_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(home_, ec);
  }
  static std::vector<std::string> Ids(const std::string& out) {
    std::vector<std::string> ids;
    const json body = json::parse(out);
    for (const auto& j : body.at("jobs")) ids.push_back(j.at("id"));
    return ids;
  }

  PagedJobs server_;
  std::string home_;
  FakeClock clock_{1'793'404'800'000};
};

TEST_F(JobListCli, DefaultShowsTheNewestAndSaysMoreExist) {
  auto r = Cli({"job", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("j-2345"), std::string::npos);
  EXPECT_NE(r.out.find("j-2296"), std::string::npos);
  EXPECT_EQ(r.out.find("j-2295"), std::string::npos);
  EXPECT_NE(r.err.find("more exist: --limit N or --all"), std::string::npos) << r.err;
  EXPECT_EQ(server_.queries(), (std::vector<std::string>{"/v1/jobs?limit=" + std::to_string(kDefaultJobListLimit) + "&tasks=false"}));
}

TEST_F(JobListCli, LimitFollowsCursorsAcrossPages) {
  auto r = Cli({"job", "list", "--limit", "1500", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto ids = Ids(r.out);
  ASSERT_EQ(ids.size(), 1500u);
  EXPECT_EQ(ids.front(), "j-2345");
  EXPECT_EQ(ids.back(), "j-846");
  EXPECT_EQ(json::parse(r.out)["next_cursor"], "846");
  EXPECT_EQ(server_.queries(), (std::vector<std::string>{"/v1/jobs?limit=1000&tasks=false", "/v1/jobs?limit=500&tasks=false&cursor=1346"}));
}

TEST_F(JobListCli, AllReadsEveryPage) {
  auto r = Cli({"job", "list", "--all", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto ids = Ids(r.out);
  ASSERT_EQ(ids.size(), static_cast<size_t>(PagedJobs::kJobs));
  EXPECT_EQ(ids.back(), "j-1");
  EXPECT_FALSE(json::parse(r.out).contains("next_cursor"));
  EXPECT_EQ(server_.queries().size(), 3u);
  // --tasks: the tasks of job arrays too (no tasks=false).
  r = Cli({"job", "list", "--tasks", "--limit", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.queries().back(), "/v1/jobs?limit=1");
  r = Cli({"job", "list", "--all"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("more exist"), std::string::npos) << r.err;
}

// --user, --name and --since travel as query parameters; --since is a duration back from now or a time.
TEST_F(JobListCli, UserNameAndSinceBecomeQueryParameters) {
  auto r = Cli({"job", "list", "--user", "alice", "--name", "sweep 1", "--since", "2h", "--limit", "5"});
  ASSERT_EQ(r.code, 0) << r.err;
  // The fake clock is at 2026-10-31T00:00:00Z; two hours earlier.
  EXPECT_EQ(server_.queries(),
            (std::vector<std::string>{"/v1/jobs?limit=5&user=alice&name=sweep%201&since=2026-10-30T22%3A00%3A00.000Z&tasks=false"}));
  r = Cli({"job", "list", "--since", "2026-10-01T00:00:00Z", "--limit", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.queries().back(), "/v1/jobs?limit=1&since=2026-10-01T00%3A00%3A00.000Z&tasks=false");
  r = Cli({"job", "list", "--since", "yesterday"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--since 'yesterday'"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fastgpu::cli
