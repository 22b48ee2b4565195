// Starts the real `fastgpu` binary on port 0 with a temp home and simulated GPUs, and drives it
// through the CLI and the HTTP API. Waits on conditions with deadlines, never fixed sleeps.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fastgpu::testing {

namespace fs = std::filesystem;
using nlohmann::json;

inline std::string Bin() {
  const char* b = std::getenv("FASTGPU_BIN");
  return b ? b : "fastgpu";
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

// Polls `cond` until it is true or `timeout` passes. Returns the final value.
inline bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval, not a wait for an event
  }
  return cond();
}

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class UpProcess {
 public:
  explicit UpProcess(std::string sim_gpus = "4xA100-80GB") : sim_gpus_(std::move(sim_gpus)) {
    char tmpl[] = "/tmp/fastgpu-it-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    home_ = dir_ + "/home";
  }
  ~UpProcess() {
    CancelAll();
    Stop(SIGTERM);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  const std::string& home() const { return home_; }
  const std::string& url() const { return url_; }
  const std::string& token() const { return token_; }
  pid_t pid() const { return pid_; }

  // Starts `fastgpu up` and waits until it has written its URL and answers /healthz.
  void Start(std::vector<std::string> extra = {}) {
    fs::remove(home_ + "/url");
    std::vector<std::string> args = {Bin(), "up", "--home", home_, "--listen", "127.0.0.1:0", "--sim-gpus", sim_gpus_};
    for (auto& e : extra) args.push_back(e);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string log = dir_ + "/up-" + std::to_string(starts_++) + ".log";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    ASSERT_EQ(posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ), 0) << "cannot start " << Bin();
    posix_spawn_file_actions_destroy(&fa);
    bool up = WaitFor([&] {
      if (!fs::exists(home_ + "/url")) return false;
      url_ = Trim(ReadFile(home_ + "/url"));
      token_ = Trim(ReadFile(home_ + "/admin.token"));
      httplib::Client c(url_);
      if (!tls_ca_.empty()) c.set_ca_cert_path(tls_ca_.c_str());
      auto r = c.Get("/healthz");
      return r && r->status == 200;
    });
    ASSERT_TRUE(up) << "fastgpu up did not become ready; its output:\n" << ReadFile(log);
  }

  // Starts with TLS flags; the readiness probe trusts `ca_file`.
  void StartTls(std::vector<std::string> extra, const std::string& ca_file) {
    tls_ca_ = ca_file;
    Start(std::move(extra));
  }

  void Stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // A client that presents `token` (another user's, a service account's).
  std::unique_ptr<httplib::Client> ClientAs(const std::string& token) const {
    auto c = std::make_unique<httplib::Client>(url_);
    c->set_read_timeout(60, 0);
    c->set_bearer_token_auth(token);
    return c;
  }
  // Creates user `name` (as the admin) with an API token and returns the token.
  std::string NewUser(const std::string& name) const {
    auto admin = Client();
    auto u = admin->Post("/v1/users", json{{"name", name}}.dump(), "application/json");
    EXPECT_TRUE(u && u->status == 201) << (u ? u->body : "no response");
    auto t = admin->Post("/v1/tokens", json{{"user", name}, {"name", "it"}}.dump(), "application/json");
    json tok = t ? json::parse(t->body, nullptr, false) : json();
    return tok.is_object() ? tok.value("token", "") : "";
  }
  std::unique_ptr<httplib::Client> Client(bool auth = true) const {
    auto c = std::make_unique<httplib::Client>(url_);
    c->set_read_timeout(60, 0);
    if (auth) c->set_bearer_token_auth(token_);
    return c;
  }

  json GetJson(const std::string& path) const {
    auto r = Client()->Get(path);
    if (!r) return json();
    return json::parse(r->body, nullptr, false);
  }

  json Job(const std::string& id) const { return GetJson("/v1/jobs/" + id); }

  bool WaitState(const std::string& id, const std::string& state,
                 std::chrono::milliseconds timeout = std::chrono::seconds(20)) const {
    return WaitFor([&] { return Job(id).value("state", "") == state; }, timeout);
  }

  // Runs the CLI with FASTGPU_HOME pointing at this instance.
  CliResult Cli(const std::vector<std::string>& args, const std::string& stdin_text = "") const {
    std::string cmd = "FASTGPU_HOME='" + home_ + "' '" + Bin() + "'";
    for (const auto& a : args) {
      std::string q;
      for (char c : a) {
        if (c == '\'') q += "'\\''";
        else q += c;
      }
      cmd += " '" + q + "'";
    }
    std::string out = dir_ + "/cli.out", err = dir_ + "/cli.err", in = dir_ + "/cli.in";
    {
      std::ofstream f(in);
      f << stdin_text;
    }
    cmd += " <'" + in + "' >'" + out + "' 2>'" + err + "'";
    int rc = std::system(cmd.c_str());
    CliResult r;
    r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    r.out = ReadFile(out);
    r.err = ReadFile(err);
    return r;
  }

  void CancelAll() {
    if (url_.empty() || pid_ <= 0) return;
    auto jobs = GetJson("/v1/jobs?state=QUEUED,SCHEDULED,STARTING,RUNNING");
    if (!jobs.is_object()) return;
    for (auto& j : jobs["jobs"]) {
      Client()->Post("/v1/jobs/" + j["id"].get<std::string>() + "/cancel", "", "application/json");
    }
    for (auto& j : jobs["jobs"]) {
      WaitFor([&] {
        auto s = Job(j["id"]).value("state", "");
        return s == "CANCELLED" || s == "SUCCEEDED" || s == "FAILED" || s == "LOST";
      });
    }
  }

  std::string Submit(const json& spec) const {
    auto r = Client()->Post("/v1/jobs", spec.dump(), "application/json");
    if (!r || r->status != 201) {
      ADD_FAILURE() << "submit failed: " << (r ? r->body : "no response");
      return "";
    }
    return json::parse(r->body)["id"];
  }

 private:
  std::string sim_gpus_;
  std::string tls_ca_;
  std::string dir_, home_, url_, token_;
  pid_t pid_ = -1;
  int starts_ = 0;
};

}  // namespace fastgpu::testing
