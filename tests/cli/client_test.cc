// Round trips through the real HTTP client and the verb dispatcher against a small in-test server.
#include <gtest/gtest.h>

#include <filesystem>
#include <httplib.h>

#include <atomic>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "api/json.h"
#include "cli/app.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "test_server.h"

namespace fastgpu::cli {
namespace {

using nlohmann::json;

api::Job MakeJob(const std::string& id, api::JobState state) {
  api::Job j;
  j.id = id;
  j.spec.name = "hello";
  j.spec.command = {"true"};
  j.state = state;
  j.created_at = 1'700'000'000'000;
  return j;
}

void SendError(httplib::Response& res, const Status& st) {
  res.status = HttpStatusFor(st.code());
  res.set_content(api::ErrorBody(st), "application/json");
}

// Mimics a few routes of the FastGPU API.
class FakeServer {
 public:
  FakeServer() {
    httplib::Server& srv_ = http_.srv();
    srv_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      ++requests_;
      if (req.get_header_value("Authorization") != "Bearer secret") {
        SendError(res, Status(ErrorCode::kUnauthenticated, "missing or invalid API token"));
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    srv_.Post("/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu_);
        last_body_ = req.body;
      }
      auto spec = api::JobSpecFromJsonText(req.body);
      if (!spec.ok()) return SendError(res, spec.status());
      if (spec->gpus_milli > 8000)
        return SendError(res, Unschedulable("needs " + FormatMilliGpu(spec->gpus_milli) + " GPUs, largest node has 8"));
      api::Job j = MakeJob("j-1", api::JobState::kQueued);
      j.spec = *spec;
      res.status = 201;
      res.set_content(api::ToJson(j).dump(), "application/json");
    });
    srv_.Get(R"(/v1/jobs/([^/]+))", [](const httplib::Request& req, httplib::Response& res) {
      if (req.matches[1] != "j-1") return SendError(res, NotFound("job " + std::string(req.matches[1]) + " does not exist"));
      res.set_content(api::ToJson(MakeJob("j-1", api::JobState::kRunning)).dump(), "application/json");
    });
    srv_.Get(R"(/v1/jobs/([^/]+)/wait)", [](const httplib::Request& req, httplib::Response& res) {
      std::string id = req.matches[1];
      api::Job j = MakeJob(id, id == "j-ok" ? api::JobState::kSucceeded : api::JobState::kFailed);
      if (id == "j-slow") j.state = api::JobState::kRunning;
      if (j.state == api::JobState::kFailed) {
        j.exit_code = 3;
        j.reason = "process exited with code 3";
      }
      res.set_content(api::ToJson(j).dump(), "application/json");
    });
    srv_.Get("/v1/jobs/j-1/logs", [this](const httplib::Request& req, httplib::Response& res) {
      if (req.get_param_value("follow") != "true") {
        res.set_header("X-Next-Offset", "11");
        res.set_content("hello world", "text/plain");
        return;
      }
      int64_t offset = std::stoll(req.get_param_value("offset"));
      {
        std::lock_guard lock(mu_);
        follow_offsets_.push_back(offset);
      }
      // The first stream is cut after "hello " to exercise resuming from the last byte received.
      const std::string all = "hello world\nbye\n";
      res.set_chunked_content_provider("text/plain", [all, offset, sent = false](size_t, httplib::DataSink& sink) mutable {
        if (offset == 0) {
          if (sent) return false;  // drop the connection mid-stream
          sent = true;
          sink.write(all.data(), 6);
          return true;
        }
        std::string rest = all.substr(static_cast<size_t>(offset));
        sink.write(rest.data(), rest.size());
        sink.done();
        return true;
      });
    });
    srv_.Get("/v1/gpus", [](const httplib::Request&, httplib::Response& res) {
      api::Gpu g;
      g.uuid = "GPU-sim-0";
      g.type = "A100-80GB";
      g.node = "local";
      g.simulated = true;
      res.set_content(json{{"gpus", json::array({api::ToJson(g)})}}.dump(), "application/json");
    });
    http_.Start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(http_.port()); }
  int requests() const { return requests_; }
  std::string last_body() {
    std::lock_guard lock(mu_);
    return last_body_;
  }
  std::vector<int64_t> follow_offsets() {
    std::lock_guard lock(mu_);
    return follow_offsets_;
  }

 private:
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::string last_body_;
  std::vector<int64_t> follow_offsets_;
  TestHttpServer http_;  // last: stopped before the state its handlers use is destroyed
};

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

class CliRoundTrip : public ::testing::Test {
 protected:
  Outcome Cli(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
    if (!env.count("FASTGPU_SERVER")) env["FASTGPU_SERVER"] = server_.url();
    if (!env.count("FASTGPU_TOKEN")) env["FASTGPU_TOKEN"] = "secret";
    env["HOME"] = "/nonexistent-home";
    std::ostringstream out, err;
    Io io{out,
          err,
          /*out_is_tty=*/false,
          [env](std::string_view k) -> std::optional<std::string> {
            auto it = env.find(std::string(k));
            if (it == env.end()) return std::nullopt;
            return it->second;
          },
          [this](const std::string& p) -> std::optional<std::string> {
            auto it = files_.find(p);
            if (it == files_.end()) return std::nullopt;
            return it->second;
          },
          clock_};
    Hooks hooks;
    hooks.run_up = [this](const server::UpOptions& o) {
      up_ = o;
      return 0;
    };
    Outcome r;
    r.code = RunApp(args, hooks, io);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
  static int Newlines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

  FakeServer server_;
  FakeClock clock_;
  std::map<std::string, std::string> files_;
  server::UpOptions up_;
};

TEST_F(CliRoundTrip, SubmitPrintsTheIdAndSendsTheSpec) {
  auto r = Cli({"job", "submit", "--gpus", "0.25", "--runtime", "30m", "--env", "A=1", "--env", "B=2", "--name", "n",
                "--", "python", "train.py", "--lr", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "j-1\n");
  EXPECT_EQ(r.err, "");
  json body = json::parse(server_.last_body());
  EXPECT_EQ(body["gpus"], "0.25");
  EXPECT_EQ(body["runtime_limit_s"], 1800);
  EXPECT_EQ(body["env"], (json{{"A", "1"}, {"B", "2"}}));
  EXPECT_EQ(body["command"], (json{"python", "train.py", "--lr", "3"}));
}

TEST_F(CliRoundTrip, SubmitJsonPrintsTheJobAndFileFieldsAreSent) {
  files_["job.yaml"] = "name: from-file\ncommand: [sleep, '1']\npriority: 80\n";
  auto r = Cli({"job", "submit", "-f", "job.yaml", "--priority", "90", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["id"], "j-1");
  EXPECT_EQ(j["name"], "from-file");
  EXPECT_EQ(j["priority"], 90);
}

TEST_F(CliRoundTrip, BadInputIsRejectedBeforeAnythingIsSent) {
  int before = server_.requests();
  auto r = Cli({"job", "submit", "--gpus", "abc", "--", "true"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(Newlines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("fastgpu: error: --gpus must be a number of GPUs", 0), 0u) << r.err;
  files_["bad.yaml"] = "command: [x]\ncolour: blue\n";
  r = Cli({"job", "submit", "-f", "bad.yaml"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err.rfind("fastgpu: error: bad.yaml:2:1: unknown field 'colour'", 0), 0u) << r.err;
  r = Cli({"job", "submit"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(Newlines(r.err), 1) << r.err;
  EXPECT_EQ(server_.requests(), before);
}

// dstack/SkyPilot-style GPUs from a job file or --gpus TYPE:COUNT reach the server as gpu_type and gpus; a job
// file's mistakes come back as FILE:LINE:COLUMN and nothing is sent.
TEST_F(CliRoundTrip, GpuTypeAndCountFromResourcesOrTheGpusFlag) {
  files_["job.yaml"] = "command: [python, train.py]\nresources:\n  gpu: A100-80GB:2\n";
  auto r = Cli({"job", "submit", "-f", "job.yaml"});
  ASSERT_EQ(r.code, 0) << r.err;
  json body = json::parse(server_.last_body());
  EXPECT_EQ(body["gpu_type"], "A100-80GB");
  EXPECT_EQ(body["gpus"], "2");
  r = Cli({"job", "submit", "--gpus", "H100-80GB:0.5", "--", "true"});
  ASSERT_EQ(r.code, 0) << r.err;
  body = json::parse(server_.last_body());
  EXPECT_EQ(body["gpu_type"], "H100-80GB");
  EXPECT_EQ(body["gpus"], "0.5");

  int before = server_.requests();
  r = Cli({"job", "submit", "--gpus", "A100:2", "--gpu-type", "H100-80GB", "--", "true"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "fastgpu: error: --gpus A100:2 asks for GPU type A100 but --gpu-type asks for H100-80GB; give "
                   "the type once\n");
  files_["twice.yaml"] = "command: [run]\ngpus: 2\nname: a\ngpus: 4\n";
  r = Cli({"job", "submit", "-f", "twice.yaml"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "fastgpu: error: twice.yaml:4:1: 'gpus' is given twice (first on line 2)\n");
  files_["tab.yaml"] = "command: [run]\nenv:\n\tA: 1\n";
  r = Cli({"job", "submit", "-f", "tab.yaml"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "fastgpu: error: tab.yaml:3:1: a tab is used for indentation; YAML indents with spaces only\n");
  EXPECT_EQ(server_.requests(), before);
}

TEST_F(CliRoundTrip, TaskIsTheSameVerbAsJob) {
  auto r = Cli({"task", "submit", "--name", "task", "--", "task"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "j-1\n");
  json body = json::parse(server_.last_body());
  EXPECT_EQ(body["name"], "task");  // only the verb is an alias
  EXPECT_EQ(body["command"], (json{"task"}));
  r = Cli({"--output", "json", "task", "get", "j-1"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(CliRoundTrip, TheProjectComesFromTheFlagOrFastgpuProjectElseTheServerDecides) {
  ASSERT_EQ(Cli({"job", "submit", "--", "true"}).code, 0);
  EXPECT_FALSE(json::parse(server_.last_body()).contains("project"));  // the server decides
  ASSERT_EQ(Cli({"job", "submit", "--", "true"}, {{"FASTGPU_PROJECT", "ml"}}).code, 0);
  EXPECT_EQ(json::parse(server_.last_body())["project"], "ml");
  ASSERT_EQ(Cli({"job", "submit", "--project", "cv", "--", "true"}, {{"FASTGPU_PROJECT", "ml"}}).code, 0);
  EXPECT_EQ(json::parse(server_.last_body())["project"], "cv");
}

TEST_F(CliRoundTrip, WorkdirIsAbsoluteOrHere) {
  int before = server_.requests();
  auto r = Cli({"job", "submit", "--workdir", ".", "--", "true"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("workdir '.' is relative: give an absolute path on the node that runs the job"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("or --here"), std::string::npos) << r.err;
  files_["rel.yaml"] = "command: [x]\nworkdir: data/run1\n";
  r = Cli({"job", "submit", "-f", "rel.yaml"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("workdir 'data/run1' is relative"), std::string::npos) << r.err;
  r = Cli({"job", "submit", "--here", "--workdir", "/data", "--", "true"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("give --here or --workdir DIR, not both"), std::string::npos) << r.err;
  // --here with a server elsewhere: the directory would name a path on another machine.
  r = Cli({"job", "submit", "--here", "--", "true"}, {{"FASTGPU_SERVER", "https://gpu.example:8400"}});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--here runs the job in the directory you submit from, which only works with a server on this "
                       "machine"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(server_.requests(), before);
  // With the server on this machine: the current directory, absolute.
  r = Cli({"job", "submit", "--here", "--", "true"});
  ASSERT_EQ(r.code, 0) << r.err;
  json body = json::parse(server_.last_body());
  EXPECT_EQ(body["workdir"], std::filesystem::current_path().string());
}

TEST_F(CliRoundTrip, TyposGetTheNearestNameAndTheRightHelp) {
  int before = server_.requests();
  struct Case {
    std::vector<std::string> args;
    std::string line;
  };
  for (const Case& c : std::vector<Case>{
           {{"job", "sumbit", "--", "true"}, "unknown command 'sumbit' (did you mean 'submit'?); run 'fastgpu job --help'"},
           {{"jbo", "list"}, "unknown command 'jbo' (did you mean 'job'?); run 'fastgpu --help'"},
           {{"node", "lst"}, "unknown command 'lst' (did you mean 'list'?); run 'fastgpu node --help'"},
           {{"job", "submit", "--gpu", "2", "--", "true"},
            "unknown option '--gpu' (did you mean '--gpus'?); run 'fastgpu job submit --help'"},
           {{"job", "list", "--stat", "RUNNING"},
            "unknown option '--stat' (did you mean '--state'?); run 'fastgpu job list --help'"},
       }) {
    auto r = Cli(c.args);
    EXPECT_EQ(r.code, kExitUsage) << r.err;
    EXPECT_EQ(r.err, "fastgpu: error: " + c.line + "\n");
  }
  EXPECT_EQ(server_.requests(), before);
  // Words after `--` are the job's, never corrected.
  auto r = Cli({"job", "submit", "--", "sumbit"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(CliRoundTrip, ShellCompletionOffersVerbsAndFlagsFromTheSameDefinitions) {
  EXPECT_EQ(Cli({"__complete", "jo"}).out, "job\n");
  EXPECT_EQ(Cli({"__complete", "job", "su"}).out, "submit\n");
  EXPECT_EQ(Cli({"__complete", "task", "su"}).out, "submit\n");
  EXPECT_EQ(Cli({"__complete", "node", "c"}).out, "cordon\n");
  EXPECT_EQ(Cli({"__complete", "job", "submit", "--gp"}).out, "--gpu-type\n--gpus\n");
  EXPECT_EQ(Cli({"__complete", "job", "submit", "--gpus", "2", "--h"}).out, "--help\n--here\n");
  EXPECT_EQ(Cli({"__complete", "--out"}).out, "--output\n");
  EXPECT_EQ(Cli({"__complete", "job", "submit", "--", "x"}).out, "");  // the job's command: nothing to offer
  auto bash = Cli({"completion", "bash"});
  EXPECT_EQ(bash.code, 0);
  EXPECT_NE(bash.out.find("complete -o default -F _fastgpu fastgpu"), std::string::npos) << bash.out;
  EXPECT_NE(Cli({"completion", "zsh"}).out.find("bashcompinit"), std::string::npos);
  EXPECT_NE(Cli({"completion", "fish"}).out.find("complete -c fastgpu"), std::string::npos);
  auto bad = Cli({"completion", "tcsh"});
  EXPECT_EQ(bad.code, kExitUsage);
}

TEST_F(CliRoundTrip, ServerErrorsBecomeOneLine) {
  auto r = Cli({"job", "get", "j-404"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(r.err, "fastgpu: error: job j-404 does not exist\n");
  EXPECT_EQ(r.out, "");

  r = Cli({"job", "submit", "--gpus", "16", "--", "true"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_EQ(r.err, "fastgpu: error: needs 16 GPUs, largest node has 8\n");

  r = Cli({"gpu", "list"}, {{"FASTGPU_TOKEN", "wrong"}});
  EXPECT_EQ(r.code, kExitDenied);
  EXPECT_EQ(r.err, "fastgpu: error: missing or invalid API token\n");
}

TEST_F(CliRoundTrip, ConnectionRefusedExplainsWhatToDo) {
  std::string url;
  {
    FakeServer gone;  // bound, then closed: nothing listens there any more
    url = gone.url();
  }
  auto r = Cli({"job", "list"}, {{"FASTGPU_SERVER", url}});
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_EQ(r.err, "fastgpu: error: cannot reach the FastGPU server at " + url +
                       ": is `fastgpu up` running? (connection refused)\n");
  // The URL from a home other than the default: the message names it.
  files_["/srv/fg/url"] = url + "\n";
  r = Cli({"job", "list"}, {{"FASTGPU_SERVER", ""}, {"FASTGPU_HOME", "/srv/fg"}});
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_EQ(r.err, "fastgpu: error: cannot reach the FastGPU server at " + url +
                       " (from FASTGPU_HOME=/srv/fg): is `fastgpu up` running? (connection refused)\n");
}

TEST_F(CliRoundTrip, TokenAndUrlComeFromTheHomeDir) {
  files_["/h/url"] = server_.url() + "\n";
  files_["/h/admin.token"] = "secret\n";
  auto r = Cli({"job", "get", "j-1"}, {{"FASTGPU_SERVER", ""}, {"FASTGPU_TOKEN", ""}, {"FASTGPU_HOME", "/h"}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("RUNNING"), std::string::npos) << r.out;
}

TEST_F(CliRoundTrip, GetJsonAndGlobalFlagsAfterTheVerb) {
  auto r = Cli({"job", "get", "j-1", "--output", "json", "--server", server_.url(), "--token", "secret"},
               {{"FASTGPU_SERVER", "http://127.0.0.1:1"}, {"FASTGPU_TOKEN", "wrong"}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["state"], "RUNNING");
  r = Cli({"job", "get", "j-1", "--output", "yaml"});
  EXPECT_EQ(r.code, kExitUsage);
}

TEST_F(CliRoundTrip, LogsAndFollowResumesAfterACutStream) {
  auto r = Cli({"job", "logs", "j-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello world");
  r = Cli({"job", "logs", "-f", "j-1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "hello world\nbye\n");
  EXPECT_EQ(server_.follow_offsets(), (std::vector<int64_t>{0, 6}));
}

TEST_F(CliRoundTrip, WaitExitCodes) {
  auto r = Cli({"job", "wait", "j-ok"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("SUCCEEDED"), std::string::npos);
  r = Cli({"job", "wait", "j-bad", "--timeout", "30s"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "j-bad FAILED (exit code 3): process exited with code 3\n");
  r = Cli({"job", "wait", "j-slow", "--timeout", "0s"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("still RUNNING"), std::string::npos) << r.err;
  r = Cli({"job", "wait", "j-slow", "--timeout", "soon"});
  EXPECT_EQ(r.code, 2);
}

TEST_F(CliRoundTrip, GpuListLabelsSimulatedGpus) {
  auto r = Cli({"gpu", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("A100-80GB (simulated)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\033'), std::string::npos);
}

TEST_F(CliRoundTrip, GpuTopShowsEveryGpuOnce) {
  auto r = Cli({"gpu", "top", "--count", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("SM MHZ"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("A100-80GB (sim)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\033'), std::string::npos) << "not a terminal: no redraw";
  r = Cli({"gpu", "top", "--count", "1", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(Newlines(r.out), 1) << r.out;
  EXPECT_NE(r.out.find("\"gpus\""), std::string::npos) << r.out;
  r = Cli({"gpu", "top", "--interval", "0s"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(Newlines(r.err), 1) << r.err;
}

TEST_F(CliRoundTrip, HelpHasExamples) {
  auto r = Cli({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos);
  r = Cli({"job", "submit", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Examples:"), std::string::npos);
  EXPECT_NE(r.out.find("--gpus"), std::string::npos);
}

TEST_F(CliRoundTrip, UsageErrorsAreOneLine) {
  for (auto args : std::vector<std::vector<std::string>>{{}, {"job"}, {"frobnicate"}, {"job", "get"},
                                                         {"job", "list", "--limit", "x"}}) {
    auto r = Cli(args);
    EXPECT_EQ(r.code, kExitUsage);
    EXPECT_EQ(Newlines(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("fastgpu: error: ", 0), 0u) << r.err;
  }
  auto r = Cli({"job", "list", "--state", "RUNNING,SLEEPING"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("SLEEPING"), std::string::npos);
}

TEST_F(CliRoundTrip, UpFillsOptions) {
  auto r = Cli({"up", "--listen", "127.0.0.1:0", "--sim-gpus", "2xH100-80GB", "--policy", "fifo"},
               {{"FASTGPU_HOME", "/tmp/fg-home"}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(up_.home, "/tmp/fg-home");
  EXPECT_EQ(up_.listen, "127.0.0.1:0");
  EXPECT_EQ(up_.sim_gpus, "2xH100-80GB");
  EXPECT_EQ(up_.policy, "fifo");
  EXPECT_EQ(up_.placement, "best-fit");
  r = Cli({"up", "--home", "/x"});
  EXPECT_EQ(up_.home, "/x");
  EXPECT_EQ(up_.policy, "default");
  EXPECT_EQ(up_.preempt_min_runtime, "5m");
  EXPECT_FALSE(up_.preempt_across_projects);
  r = Cli({"server", "--preempt-min-runtime", "0", "--preempt-across-projects"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(up_.preempt_min_runtime, "0");
  EXPECT_TRUE(up_.preempt_across_projects);
}

TEST_F(CliRoundTrip, Version) {
  auto r = Cli({"version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out.rfind("fastgpu ", 0), 0u);
}

// Each submit sends its own Idempotency-Key and repeats it on retries (here after a 503), so a retried
// submit whose first answer was lost cannot create a second job.
TEST(ClientSubmit, RetriesWithTheSameIdempotencyKey) {
  TestHttpServer http;
  std::mutex mu;
  std::vector<std::string> keys;
  http.srv().Post("/v1/jobs", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    keys.push_back(req.get_header_value("Idempotency-Key"));
    if (keys.size() % 3 != 0) {  // two failures, then the answer
      SendError(res, Unavailable("server is restarting"));
      return;
    }
    res.status = 201;
    res.set_content(api::ToJson(MakeJob("j-7", api::JobState::kQueued)).dump(), "application/json");
  });
  http.Start();
  Client client("http://127.0.0.1:" + std::to_string(http.port()), "secret");
  client.set_submit_retries(3, std::chrono::milliseconds(1));
  api::JobSpec spec;
  spec.command = {"true"};
  spec.gpus_milli = 1000;
  auto first = client.SubmitJob(spec);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ((*first)["id"], "j-7");
  auto second = client.SubmitJob(spec);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  std::unique_lock lock(mu);
  ASSERT_EQ(keys.size(), 6u);
  EXPECT_FALSE(keys[0].empty());
  EXPECT_EQ(keys[1], keys[0]);
  EXPECT_EQ(keys[2], keys[0]);
  EXPECT_NE(keys[3], keys[0]) << "a new invocation is a new key";
  EXPECT_EQ(keys[5], keys[3]);
  // Out of tries: the last answer is the error.
  client.set_submit_retries(1, std::chrono::milliseconds(1));
  keys.clear();
  lock.unlock();
  auto failed = client.SubmitJob(spec);
  lock.lock();
  EXPECT_EQ(failed.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(keys.size(), 1u);
}

// No server at all: the submit is retried, then fails with the usual explanation.
TEST(ClientSubmit, ConnectionRefusedIsRetriedThenExplained) {
  std::string url;
  {
    TestHttpServer gone;
    gone.Start();
    url = "http://127.0.0.1:" + std::to_string(gone.port());
  }
  Client client(url, "secret");
  client.set_submit_retries(3, std::chrono::milliseconds(1));
  api::JobSpec spec;
  spec.command = {"true"};
  auto r = client.SubmitJob(spec);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.status().message().find("is `fastgpu up` running?"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace fastgpu::cli
