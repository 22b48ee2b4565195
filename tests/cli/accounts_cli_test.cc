// The account, security and billing verbs end to end through the real HTTP client, against a small
// in-test server that speaks the REST contract.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/app.h"
#include "cli/commands.h"
#include "common/file_util.h"
#include "support/self_signed_cert.h"
#include "run_cli.h"
#include "test_server.h"

namespace fastgpu::cli {
namespace {

using nlohmann::json;

struct Request {
  std::string method, path, query, body;
};

// Routes of the contract, with canned answers; every request is recorded.
class ContractServer {
 public:
  explicit ContractServer(std::unique_ptr<httplib::Server> srv = std::make_unique<httplib::Server>())
      : http_(std::move(srv)) {
    auto& s = http_.srv();
    // Recorded after routing: the body is read only then.
    s.set_post_routing_handler([this](const httplib::Request& req, httplib::Response&) {
      std::string query;
      for (const auto& [k, v] : req.params) query += (query.empty() ? "" : "&") + k + "=" + v;
      std::lock_guard lock(mu_);
      requests_.push_back({req.method, req.path, query, req.body});
    });
    s.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("Authorization") != "Bearer secret") {
        res.status = 401;
        res.set_content(R"({"error":{"code":"unauthenticated","message":"missing or invalid API token"}})",
                        "application/json");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    auto reply = [](json j, int status = 200) {
      return [j, status](const httplib::Request&, httplib::Response& res) {
        res.status = status;
        res.set_content(j.dump(), "application/json");
      };
    };
    s.Get("/v1/whoami", reply({{"user", "alice"}, {"admin", false}, {"service_account", false}, {"token_id", "tok-1"},
                               {"projects", json::array({{{"project", "ml"}, {"role", "owner"}}})}}));
    s.Get("/v1/audit/verify", [this](const httplib::Request&, httplib::Response& res) {
      json j = audit_ok_ ? json{{"ok", true}, {"rows", 120}, {"first_bad_seq", 0}, {"problem", ""}}
                         : json{{"ok", false}, {"rows", 120}, {"first_bad_seq", 17}, {"problem", "hash mismatch"}};
      res.set_content(j.dump(), "application/json");
    });
    s.Get("/v1/projects/ml/bill", [](const httplib::Request& req, httplib::Response& res) {
      if (req.get_param_value("format") == "csv") {
        res.set_content("gpu_type,gpu_hours,unit_price_usd,gross_usd,discount_usd,total_usd\n"
                        "A100-80GB,12.345,2.50,30.86,0.00,30.86\n",
                        "text/csv");
        return;
      }
      json inv = {{"project", "ml"}, {"month", "2026-11"},
                  {"lines", json::array({{{"gpu_type", "A100-80GB"}, {"unit_price_micro", 2'500'000},
                                          {"gpu_hours_milli", 12'345}, {"gross_micro", 30'862'500},
                                          {"discount_micro", 0}, {"total_micro", 30'862'500}}})},
                  {"usage_total_micro", 30'862'500},
                  {"credits", json::array({{{"kind", "trial_credit"}, {"key", "trial"}, {"amount_micro", 10'000'000}}})},
                  {"credits_total_micro", 10'000'000}, {"amount_due_micro", 20'862'500}};
      res.set_content(inv.dump(), "application/json");
    });
    s.Get("/v1/projects/ml",
          reply({{"name", "ml"}, {"description", "ML team"}, {"created_at", "2026-11-01T00:00:00Z"},
                 {"created_at_ms", 1'793'404'800'000},
                 {"quota", {{"max_gpus", {{"A100-80GB", "8"}}}, {"max_gpus_milli", {{"A100-80GB", 8000}}},
                            {"max_gpu_hours_per_month", 100}, {"max_queued_jobs", 50}}},
                 {"budget", {{"monthly_limit_micro", 500'000'000}, {"hard", false}}},
                 {"run_as_user", ""}, {"allow_root", false}}));
    s.Patch("/v1/projects/ml", reply({{"name", "ml"}}));
    s.Put(R"(/v1/projects/ml/secrets/([A-Z_]+))", reply({{"project", "ml"}, {"name", "X"}}));
    s.Post("/v1/jobs", reply({{"dry_run", true}, {"gpu_type", "A100-80GB"}, {"gpus_milli", 2000},
                              {"price_per_gpu_hour_micro", 2'500'000}, {"price_per_hour_micro", 5'000'000},
                              {"runtime_limit_s", 7200}, {"estimate_micro", 10'000'000}}));
    s.Get("/v1/usage", reply({{"month", "2026-11"},
                              {"rows", json::array({{{"project", "ml"}, {"gpu_type", "A100-80GB"},
                                                     {"gpu_hours_milli", 12'345}, {"cost_micro", 30'862'500},
                                                     {"running_cost_micro", 417}}})},
                              {"total_micro", 30'862'917}}));
    s.Post("/v1/tokens", reply({{"id", "tok-9"}, {"token", "fgp_0123abcd"}, {"name", "ci"}, {"user", "alice"},
                                {"created_at", "2026-11-01T00:00:00Z"}, {"expires_at", "2026-12-01T00:00:00Z"},
                                {"expires_at_ms", 1'795'996'800'000}},
                               201));
    s.Delete("/v1/tokens/tok-9", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
    s.Get("/v1/prices", reply({{"prices", json::array({{{"gpu_type", "A100-80GB"}, {"price_per_gpu_hour_micro", 2'500'000},
                                                        {"price", "$2.50"}, {"effective_from", "2026-11-01T00:00:00Z"},
                                                        {"effective_from_ms", 1'793'404'800'000}, {"set_by", "admin"}}})}}));
    http_.Start();
  }

  std::string url(const std::string& scheme = "http") const {
    return scheme + "://127.0.0.1:" + std::to_string(http_.port());
  }
  std::vector<Request> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }
  Request last() {
    std::lock_guard lock(mu_);
    return requests_.empty() ? Request{} : requests_.back();
  }
  void set_audit_ok(bool ok) { audit_ok_ = ok; }

 private:
  std::mutex mu_;
  std::vector<Request> requests_;
  std::atomic<bool> audit_ok_{true};
  TestHttpServer http_;  // last: stopped first
};

class TempDir {
 public:
  TempDir() {
    std::string t = std::filesystem::temp_directory_path() / "fastgpu-cli-XXXXXX";
    if (::mkdtemp(t.data()) != nullptr) path_ = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class AccountsCli : public ::testing::Test {
 protected:
  // Runs the CLI with the real file system (home = a temp dir) and `stdin_text` as standard input.
  Outcome Cli(std::vector<std::string> args, std::map<std::string, std::string> env = {},
              const std::string& stdin_text = "") {
    if (!env.count("FASTGPU_SERVER")) env["FASTGPU_SERVER"] = server_.url();
    if (!env.count("FASTGPU_TOKEN")) env["FASTGPU_TOKEN"] = "secret";
    env["FASTGPU_HOME"] = home_.path();
    return RunCli(args, env, clock_, stdin_text);
  }
  static int Newlines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

  ContractServer server_;
  TempDir home_;
  FakeClock clock_{1'793'404'800'000};
};

TEST_F(AccountsCli, LoginVerifiesAndWritesA0600CredentialsFile) {
  const std::string creds = home_.path() + "/credentials.json";
  auto r = Cli({"login", "--server", server_.url(), "--token", "secret"}, {{"FASTGPU_SERVER", ""}, {"FASTGPU_TOKEN", ""}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "logged in to " + server_.url() + " as alice\n");
  EXPECT_EQ(server_.last().path, "/v1/whoami");
  struct stat st {};
  ASSERT_EQ(::stat(creds.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  json j = json::parse(*ReadFileToString(creds));
  EXPECT_EQ(j["server"], server_.url());
  EXPECT_EQ(j["token"], "secret");

  // Later commands use the stored credentials.
  r = Cli({"whoami"}, {{"FASTGPU_SERVER", ""}, {"FASTGPU_TOKEN", ""}});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("alice"), std::string::npos);
  EXPECT_NE(r.out.find("ml (owner)"), std::string::npos) << r.out;

  r = Cli({"logout"});
  EXPECT_EQ(r.code, 0);
  EXPECT_FALSE(std::filesystem::exists(creds));
  r = Cli({"logout"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("not logged in"), std::string::npos);
}

TEST_F(AccountsCli, LoginWithABadTokenStoresNothing) {
  auto r = Cli({"login", "--server", server_.url(), "--token", "wrong"});
  EXPECT_EQ(r.code, kExitDenied);
  EXPECT_EQ(r.err, "fastgpu: error: login to " + server_.url() + " failed: missing or invalid API token\n");
  EXPECT_FALSE(std::filesystem::exists(home_.path() + "/credentials.json"));
  r = Cli({"login"}, {{"FASTGPU_SERVER", ""}, {"FASTGPU_TOKEN", ""}});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(Newlines(r.err), 1);
}

// The token from stdin (kept out of argv and history); later logins reuse the server this home knows.
TEST_F(AccountsCli, LoginReadsTheTokenFromStdinAndReusesTheStoredServer) {
  const std::map<std::string, std::string> none = {{"FASTGPU_SERVER", ""}, {"FASTGPU_TOKEN", ""}};
  auto r = Cli({"login", "--server", server_.url(), "--token-stdin"}, none, "secret\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "logged in to " + server_.url() + " as alice\n");
  EXPECT_EQ(json::parse(*ReadFileToString(home_.path() + "/credentials.json"))["token"], "secret");
  // No --server: the stored one.
  r = Cli({"login", "--token-stdin"}, none, "secret\r\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "logged in to " + server_.url() + " as alice\n");
  r = Cli({"login", "--token-stdin"}, none, "\n");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "fastgpu: error: --token-stdin: standard input holds no token\n");
  r = Cli({"login", "--token", "x", "--token-stdin"}, none, "secret\n");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("not both"), std::string::npos) << r.err;
  // Not a terminal and no token: say how to give one.
  r = Cli({"login"}, none);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--token-stdin"), std::string::npos) << r.err;
}

TEST_F(AccountsCli, AuditVerifyExitCode) {
  auto r = Cli({"audit", "verify"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "audit log intact: 120 rows, hash chain verified\n");
  server_.set_audit_ok(false);
  r = Cli({"audit", "verify"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "fastgpu: error: audit log is broken at seq 17: hash mismatch (120 rows checked)\n");
  r = Cli({"audit", "verify", "--output", "json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(json::parse(r.out)["first_bad_seq"], 17);
}

TEST_F(AccountsCli, BillShowCsvTableAndJson) {
  auto r = Cli({"bill", "show", "--project", "ml", "--month", "2026-11", "--output", "csv"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out,
            "gpu_type,gpu_hours,unit_price_usd,gross_usd,discount_usd,total_usd\n"
            "A100-80GB,12.345,2.50,30.86,0.00,30.86\n");
  EXPECT_EQ(server_.last().query, "format=csv&month=2026-11");

  r = Cli({"bill", "show", "--project", "ml"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* want : {"Invoice for project ml, 2026-11", "12.345", "$2.50", "$30.8625", "-$10.00", "$20.8625"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;

  r = Cli({"bill", "show", "--project", "ml", "--output", "json"});
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(json::parse(r.out)["amount_due_micro"], 20'862'500);

  // csv is only for verbs with an export; bad months are caught before sending.
  EXPECT_EQ(Cli({"usage", "--output", "csv"}).code, kExitUsage);
  EXPECT_EQ(Cli({"bill", "show", "--project", "ml", "--month", "11-2026"}).code, kExitUsage);
}

TEST_F(AccountsCli, ProjectSetMergesTheQuotaAndSendsOnlyGivenFields) {
  auto r = Cli({"project", "set", "ml", "--quota-gpus", "*=16", "--quota-gpus", "H100-80GB=0.5", "--quota-queued", "10"});
  ASSERT_EQ(r.code, 0) << r.err;
  auto reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[1].method, "PATCH");
  json body = json::parse(reqs[1].body);
  EXPECT_EQ(body, (json{{"quota",
                         {{"max_gpus", {{"A100-80GB", "8"}, {"*", "16"}, {"H100-80GB", "0.5"}}},
                          {"max_gpu_hours_per_month", 100},
                          {"max_queued_jobs", 10}}}}));

  r = Cli({"project", "set", "ml", "--budget-hard"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(server_.last().body),
            (json{{"budget", {{"monthly_limit_micro", 500'000'000}, {"hard", true}}}}));

  const size_t before = server_.requests().size();
  r = Cli({"project", "set", "ml", "--description", "new", "--allow-root", "false"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.requests().size(), before + 1);  // no GET needed
  EXPECT_EQ(json::parse(server_.last().body), (json{{"description", "new"}, {"allow_root", false}}));
}

TEST_F(AccountsCli, BadFlagsAreRejectedBeforeAnythingIsSent) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"project", "set", "ml", "--quota-gpus", "A100=x"},
           {"project", "set", "ml"},
           {"project", "set", "ml", "--budget", "lots"},
           {"project", "set", "ml", "--budget-hard", "--budget-soft"},
           {"project", "set", "ml", "--allow-root", "maybe"},
           {"member", "add", "ml", "bob", "--role", "boss"},
           {"credit", "add", "--project", "ml", "--amount", "-5", "--kind", "prepaid"},
           {"credit", "add", "--project", "ml", "--amount", "5", "--months", "6"},
           {"price", "set", "A100-80GB", "cheap"},
           {"token", "create", "--expires", "soon"},
           {"secret", "set", "K", "--project", "ml"}}) {  // empty stdin
    auto r = Cli(args);
    EXPECT_EQ(r.code, kExitUsage) << args[0] << " " << args[1] << ": " << r.err;
    EXPECT_EQ(Newlines(r.err), 1) << r.err;
    EXPECT_EQ(r.err.rfind("fastgpu: error: ", 0), 0u) << r.err;
  }
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(AccountsCli, SecretSetReadsTheValueFromStdin) {
  auto r = Cli({"secret", "set", "WANDB_KEY", "--project", "ml"}, {}, "s3cret\n");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "secret WANDB_KEY set in project ml\n");
  EXPECT_EQ(server_.last().method, "PUT");
  EXPECT_EQ(server_.last().path, "/v1/projects/ml/secrets/WANDB_KEY");
  EXPECT_EQ(json::parse(server_.last().body), (json{{"value", "s3cret"}}));
}

TEST_F(AccountsCli, DryRunPricesTheJobAndCreatesNothing) {
  auto r = Cli({"job", "submit", "--dry-run", "--gpus", "2", "--runtime", "2h", "--secret", "WANDB_KEY", "--", "python",
                "train.py"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.last().query, "dry_run=true");
  EXPECT_EQ(json::parse(server_.last().body)["secrets"], json{"WANDB_KEY"});
  for (const char* want : {"nothing was submitted", "$5.00 ($2.50 per GPU-hour)", "$10.00", "2h"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
}

TEST_F(AccountsCli, UsagePricesAndTokens) {
  auto r = Cli({"usage", "--month", "2026-11", "--project", "ml"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(server_.last().query, "month=2026-11&project=ml");
  for (const char* want : {"GPU-HOURS", "12.345", "$30.8625", "$0.000417", "Total for 2026-11: $30.862917"})
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;

  r = Cli({"price", "list"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("$2.50"), std::string::npos) << r.out;

  r = Cli({"token", "create", "--name", "ci", "--expires", "30d"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "fgp_0123abcd\n");  // alone on stdout
  EXPECT_NE(r.err.find("not shown again"), std::string::npos) << r.err;
  EXPECT_EQ(json::parse(server_.last().body), (json{{"name", "ci"}, {"expires_in", 30 * 86400}}));

  r = Cli({"token", "revoke", "tok-9"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "revoked token tok-9\n");
  r = Cli({"token", "revoke", "tok-9", "--output", "json"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "");  // 204: nothing to print
}

TEST_F(AccountsCli, RequestsFollowTheContract) {
  // The fake answers 404 to these routes; what matters is what was sent.
  Cli({"user", "disable", "bob"});
  EXPECT_EQ(server_.last().method, "PATCH");
  EXPECT_EQ(server_.last().path, "/v1/users/bob");
  EXPECT_EQ(json::parse(server_.last().body), (json{{"disabled", true}}));
  Cli({"user", "set", "bob", "--admin", "true"});
  EXPECT_EQ(json::parse(server_.last().body), (json{{"admin", true}}));
  Cli({"user", "create", "carol", "--display-name", "Carol"});
  EXPECT_EQ(json::parse(server_.last().body), (json{{"name", "carol"}, {"admin", false}, {"display_name", "Carol"}}));
  Cli({"member", "add", "ml", "bob", "--role", "viewer"});
  EXPECT_EQ(server_.last().method, "PUT");
  EXPECT_EQ(server_.last().path, "/v1/projects/ml/members/bob");
  EXPECT_EQ(json::parse(server_.last().body), (json{{"role", "viewer"}}));
  Cli({"credit", "add", "--project", "ml", "--amount", "-25", "--memo", "fix"});
  EXPECT_EQ(server_.last().path, "/v1/projects/ml/credits");
  EXPECT_EQ(json::parse(server_.last().body), (json{{"kind", "adjustment"}, {"amount_micro", -25'000'000}, {"memo", "fix"}}));
  Cli({"credit", "add", "--project", "ml", "--amount", "600", "--kind", "prepaid", "--months", "6"});
  EXPECT_EQ(json::parse(server_.last().body), (json{{"kind", "prepaid"}, {"amount_micro", 600'000'000}, {"months", 6}}));
  Cli({"price", "set", "A100-80GB", "2.50", "--effective", "2026-12-01T00:00:00Z"});
  EXPECT_EQ(json::parse(server_.last().body),
            (json{{"gpu_type", "A100-80GB"}, {"price_per_gpu_hour_micro", 2'500'000}, {"effective_from", 1'796'083'200'000}}));
  Cli({"sa", "create", "ml", "ci"});
  EXPECT_EQ(server_.last().path, "/v1/projects/ml/service-accounts");
  EXPECT_EQ(json::parse(server_.last().body), (json{{"name", "ci"}, {"role", "member"}}));
  Cli({"token", "list", "--all"});
  EXPECT_EQ(server_.last().query, "all=true");
  Cli({"audit", "list", "--after", "1200", "--limit", "5"});
  EXPECT_EQ(server_.last().query, "after=1200&limit=5");
  auto r = Cli({"user", "get", "nobody"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_EQ(Newlines(r.err), 1);
}

TEST_F(AccountsCli, EveryVerbHasHelpWithAnExample) {
  for (auto args : std::vector<std::vector<std::string>>{
           {"login"}, {"logout"}, {"whoami"}, {"user", "create"}, {"user", "list"}, {"user", "get"},
           {"user", "disable"}, {"user", "enable"}, {"user", "set"}, {"project", "create"}, {"project", "list"},
           {"project", "get"}, {"project", "set"}, {"member", "add"}, {"member", "list"}, {"member", "remove"},
           {"token", "create"}, {"token", "list"}, {"token", "revoke"}, {"sa", "create"}, {"sa", "list"},
           {"sa", "delete"}, {"secret", "set"}, {"secret", "list"}, {"secret", "delete"}, {"secret", "rotate-key"},
           {"audit", "list"}, {"audit", "verify"}, {"price", "list"}, {"price", "set"}, {"usage"}, {"bill", "show"},
           {"credit", "list"}, {"credit", "add"}}) {
    args.push_back("--help");
    auto r = Cli(args);
    EXPECT_EQ(r.code, 0) << args[0];
    EXPECT_NE(r.out.find("Example"), std::string::npos) << args[0] << " " << args[1] << "\n" << r.out;
  }
}

// ---- TLS ---------------------------------------------------------------------------------------------


TEST(TlsCli, CertificatesAreVerifiedAndAPrivateCaCanBeTrusted) {
  TempDir dir;
  const std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  testing_support::WriteSelfSignedCert(cert, key);
  ContractServer server(std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str()));
  const std::string url = server.url("https");
  FakeClock clock;
  auto run = [&](std::vector<std::string> args) {
    return RunCli(args, {{"FASTGPU_HOME", dir.path()}, {"FASTGPU_TOKEN", "secret"}}, clock);
  };

  auto r = run({"whoami", "--server", url});
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_EQ(r.err.rfind("fastgpu: error: TLS certificate of " + url + " is not trusted: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("(pass --ca FILE for a private CA)\n"), std::string::npos) << r.err;

  r = run({"whoami", "--server", url, "--ca", cert});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("alice"), std::string::npos);

  // login stores the CA with the server, so later commands trust it too.
  r = run({"login", "--server", url, "--ca", cert});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(*ReadFileToString(dir.path() + "/credentials.json"))["ca"], cert);
  r = run({"price", "list"});
  EXPECT_EQ(r.code, 0) << r.err;

  r = run({"whoami", "--server", url, "--ca", dir.path() + "/missing.pem"});
  EXPECT_EQ(r.code, kExitFailure);
  EXPECT_NE(r.err.find("cannot read the CA file"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace fastgpu::cli
