// The walkthrough, through the real CLI: gpu list, job submit/list/logs -f/wait/cancel.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include <filesystem>

#include "harness.h"

namespace fastgpu::testing {
namespace {

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { up_.Start(); }
  UpProcess up_;
};

TEST_F(CliTest, Walkthrough) {
  auto gpus = up_.Cli({"gpu", "list"});
  ASSERT_EQ(gpus.exit_code, 0) << gpus.err;
  EXPECT_NE(gpus.out.find("A100-80GB"), std::string::npos) << gpus.out;
  EXPECT_NE(gpus.out.find("simulated"), std::string::npos) << gpus.out;

  auto sub = up_.Cli({"job", "submit", "--gpus", "2", "--name", "hello", "--", "sh", "-c",
                      "echo $CUDA_VISIBLE_DEVICES; nvidia-smi || true"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  std::string id = Trim(sub.out);
  ASSERT_EQ(id.rfind("j-", 0), 0u) << sub.out;

  auto wait = up_.Cli({"job", "wait", id, "--timeout", "30s"});
  EXPECT_EQ(wait.exit_code, 0) << wait.err;
  auto logs = up_.Cli({"job", "logs", "-f", id});
  ASSERT_EQ(logs.exit_code, 0) << logs.err;
  json job = up_.Job(id);
  std::string cvd = std::to_string(job["assigned_gpu_indices"][0].get<int>()) + "," +
                    std::to_string(job["assigned_gpu_indices"][1].get<int>());
  EXPECT_EQ(logs.out.substr(0, cvd.size() + 1), cvd + "\n") << logs.out;

  auto list = up_.Cli({"job", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find(id), std::string::npos);
  EXPECT_NE(list.out.find("hello"), std::string::npos);
  EXPECT_NE(list.out.find("SUCCEEDED"), std::string::npos);

  auto js = up_.Cli({"job", "get", id, "--output", "json"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  EXPECT_EQ(json::parse(js.out)["state"], "SUCCEEDED");

  auto events = up_.Cli({"job", "events", id});
  ASSERT_EQ(events.exit_code, 0) << events.err;
  EXPECT_NE(events.out.find("RUNNING"), std::string::npos);

  auto nodes = up_.Cli({"node", "list"});
  ASSERT_EQ(nodes.exit_code, 0) << nodes.err;
}

TEST_F(CliTest, CancelAndWaitReportTheOutcome) {
  auto sub = up_.Cli({"job", "submit", "--", "sleep", "300"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  std::string id = Trim(sub.out);
  ASSERT_TRUE(up_.WaitState(id, "RUNNING"));
  auto cancel = up_.Cli({"job", "cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  auto wait = up_.Cli({"job", "wait", id, "--timeout", "30s"});
  EXPECT_NE(wait.exit_code, 0);
  EXPECT_NE(wait.err.find("CANCELLED"), std::string::npos) << wait.err;
}

// Bulk cancel: several ids at once, or --all narrowed by name (and state/project); the others are left alone.
TEST_F(CliTest, CancelSeveralJobsByIdOrByFilter) {
  std::vector<std::string> sweep, other;
  for (int i = 0; i < 3; ++i) sweep.push_back(Trim(up_.Cli({"job", "submit", "--gpus", "0.1", "--name", "sweep", "--", "sleep", "300"}).out));
  for (int i = 0; i < 2; ++i) other.push_back(Trim(up_.Cli({"job", "submit", "--gpus", "0.1", "--name", "keep", "--", "sleep", "300"}).out));
  auto none = up_.Cli({"job", "cancel"});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("name the jobs to cancel"), std::string::npos) << none.err;
  auto by_name = up_.Cli({"job", "cancel", "--all", "--name", "sweep"});
  EXPECT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_NE(by_name.out.find("3 jobs cancelled"), std::string::npos) << by_name.out;
  for (const auto& id : sweep) EXPECT_TRUE(up_.WaitState(id, "CANCELLED")) << id;
  for (const auto& id : other) EXPECT_NE(up_.Job(id).value("state", ""), "CANCELLED") << id;
  // By id, one of them unknown: the others are cancelled, the exit code says "not found".
  auto by_id = up_.Cli({"job", "cancel", other[0], "j-9999", other[1]});
  EXPECT_EQ(by_id.exit_code, 3) << by_id.err;
  EXPECT_NE(by_id.err.find("j-9999: "), std::string::npos) << by_id.err;
  for (const auto& id : other) EXPECT_TRUE(up_.WaitState(id, "CANCELLED")) << id;
}

// The project of a submit that names none: FASTGPU_PROJECT, else `fastgpu config set project`, else the server's
// choice: "default", or the caller's only project when it is in just one.
TEST_F(CliTest, DefaultProjectFromTheEnvironmentTheConfigOrTheOnlyMembership) {
  ASSERT_EQ(up_.Cli({"project", "create", "ml"}).exit_code, 0);
  ASSERT_EQ(up_.Cli({"project", "create", "cv"}).exit_code, 0);
  auto project_of = [&](const CliResult& r) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return up_.Job(Trim(r.out)).value("project", "");
  };
  EXPECT_EQ(project_of(up_.Cli({"job", "submit", "--", "true"})), "default");
  ASSERT_EQ(up_.Cli({"config", "set", "project", "ml"}).exit_code, 0);
  EXPECT_EQ(Trim(up_.Cli({"config", "get", "project"}).out), "ml");
  EXPECT_EQ(project_of(up_.Cli({"job", "submit", "--", "true"})), "ml");
  EXPECT_EQ(project_of(up_.Cli({"job", "submit", "--project", "default", "--", "true"})), "default");
  ASSERT_EQ(up_.Cli({"config", "unset", "project"}).exit_code, 0);
  EXPECT_EQ(up_.Cli({"config", "get", "project"}).out, "");
  // A user who is only in cv need not name it.
  const std::string bob = up_.NewUser("bob");
  ASSERT_FALSE(bob.empty());
  auto admin = up_.Client();
  auto put = admin->Put("/v1/projects/cv/members/bob", json{{"role", "member"}}.dump(), "application/json");
  ASSERT_TRUE(put && put->status / 100 == 2) << (put ? put->body : "no answer");
  auto sub = up_.ClientAs(bob)->Post("/v1/jobs", json{{"command", {"true"}}}.dump(), "application/json");
  ASSERT_TRUE(sub && sub->status == 201) << (sub ? sub->body : "no answer");
  EXPECT_EQ(json::parse(sub->body).value("project", ""), "cv");
}

TEST_F(CliTest, SubmitJsonAndErrors) {
  auto sub = up_.Cli({"job", "submit", "--output", "json", "--gpus", "0.25", "--runtime", "1h", "--", "true"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  json j = json::parse(sub.out);
  EXPECT_EQ(j["gpus"], "0.25");
  EXPECT_EQ(j["runtime_limit_s"], 3600);

  auto missing = up_.Cli({"job", "get", "j-424242"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;
  EXPECT_NE(missing.err.find("j-424242"), std::string::npos);

  auto bad = up_.Cli({"job", "submit", "--gpus", "-2", "--", "true"});
  EXPECT_NE(bad.exit_code, 0);
  auto empty = up_.Cli({"job", "submit"});
  EXPECT_NE(empty.exit_code, 0);
  auto never = up_.Cli({"job", "submit", "--gpus", "16", "--", "true"});
  EXPECT_NE(never.exit_code, 0);
  EXPECT_NE(never.err.find("16"), std::string::npos) << never.err;

  auto help = up_.Cli({"job", "submit", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("Example"), std::string::npos) << help.out;
}

// The everyday pattern: cd into the code, submit with --here (`task` is `job`). The job reads its code there, as
// its project's uid when fastgpu runs as root (the directory is readable by all, as code under /srv would be).
TEST_F(CliTest, HereRunsTheJobInTheSubmitDirectory) {
  const std::string proj = up_.home() + "/../proj";
  std::filesystem::create_directories(proj);
  {
    std::ofstream(proj + "/train.sh") << "echo reading $(cat input.txt) in $(pwd)\n";
    std::ofstream(proj + "/input.txt") << "data-42\n";
  }
  for (const std::string& d : {up_.home() + "/..", proj}) std::filesystem::permissions(d, std::filesystem::perms(0755));
  const auto before = std::filesystem::current_path();
  std::filesystem::current_path(proj);
  CliResult r = up_.Cli({"task", "submit", "--here", "--", "sh", "train.sh"});
  CliResult rel = up_.Cli({"job", "submit", "--workdir", ".", "--", "sh", "train.sh"});
  std::filesystem::current_path(before);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Trim(r.out);
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << up_.Job(id).dump() << up_.Cli({"job", "logs", id}).out;
  EXPECT_EQ(up_.Cli({"task", "logs", id}).out,
            "reading data-42 in " + std::filesystem::canonical(proj).string() + "\n");
  EXPECT_EQ(rel.exit_code, 2);
  EXPECT_NE(rel.err.find("workdir '.' is relative"), std::string::npos) << rel.err;
}

// The bash completion script loads in a real bash and completes through the real binary.
TEST(CliCompletion, TheBashScriptLoadsAndCompletes) {
  const std::string bin_dir = std::filesystem::path(Bin()).parent_path().string();
  const std::string script = "PATH='" + bin_dir + "':$PATH; source <(fastgpu completion bash) && complete -p fastgpu && "
                             "COMP_WORDS=(fastgpu job su); COMP_CWORD=2; _fastgpu; echo \"[${COMPREPLY[*]}]\"";
  const std::string out_file = std::filesystem::temp_directory_path().string() + "/fastgpu-completion-" +
                               std::to_string(::getpid());
  const int rc = std::system(("bash -c \"$(cat <<'EOF'\n" + script + "\nEOF\n)\" > '" + out_file + "' 2>&1").c_str());
  const std::string out = ReadFile(out_file);
  std::filesystem::remove(out_file);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("complete -o default -F _fastgpu fastgpu"), std::string::npos) << out;
  EXPECT_NE(out.find("[submit]"), std::string::npos) << out;
}

TEST(CliNoServer, ClearErrorWhenNothingIsRunning) {
  UpProcess up;  // never started
  auto r = up.Cli({"job", "list"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(r.err.empty());
}

}  // namespace
}  // namespace fastgpu::testing
