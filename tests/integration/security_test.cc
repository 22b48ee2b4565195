// End-to-end: tenants, tokens, secrets, audit, TLS and billing against the real binary.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "harness.h"
#include "support/self_signed_cert.h"

namespace fastgpu::testing {
namespace {

json Parse(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override { up_.Start(); }

  // Creates a user with a token and returns the token.
  std::string NewUser(const std::string& name) { return up_.NewUser(name); }
  std::unique_ptr<httplib::Client> As(const std::string& token) { return up_.ClientAs(token); }
  UpProcess up_;
};

TEST_F(SecurityTest, TenantsCannotSeeEachOthersJobsSecretsOrBills) {
  auto admin = up_.Client();
  std::string alice = NewUser("alice"), bob = NewUser("bob");
  ASSERT_EQ(admin->Post("/v1/projects", R"({"name":"ml","owner":"alice"})", "application/json")->status, 201);
  ASSERT_EQ(admin->Post("/v1/projects", R"({"name":"web","owner":"bob"})", "application/json")->status, 201);
  auto job = Parse(As(alice)->Post("/v1/jobs", R"({"command":["true"],"project":"ml"})", "application/json"));
  std::string id = job.value("id", "");
  ASSERT_FALSE(id.empty()) << job.dump();
  EXPECT_EQ(As(bob)->Get("/v1/jobs/" + id)->status, 404);
  EXPECT_EQ(As(bob)->Post("/v1/jobs/" + id + "/cancel", "", "application/json")->status, 404);
  EXPECT_EQ(As(bob)->Get("/v1/jobs/" + id + "/logs")->status, 404);
  EXPECT_EQ(As(bob)->Get("/v1/projects/ml/secrets")->status, 404);
  EXPECT_EQ(As(bob)->Get("/v1/projects/ml/bill")->status, 404);
  EXPECT_EQ(As(bob)->Post("/v1/jobs", R"({"command":["true"],"project":"ml"})", "application/json")->status, 404);
  EXPECT_EQ(Parse(As(bob)->Get("/v1/jobs"))["jobs"].size(), 0u);
  EXPECT_EQ(As(alice)->Get("/v1/jobs/" + id)->status, 200);
  // Revoked tokens stop working at once.
  auto mine = Parse(As(alice)->Get("/v1/whoami"));
  ASSERT_EQ(As(alice)->Delete("/v1/tokens/" + mine.value("token_id", ""))->status, 204);
  EXPECT_EQ(As(alice)->Get("/v1/whoami")->status, 401);
}

TEST_F(SecurityTest, SecretReachesTheJobButNoLogEventOrAuditRow) {
  auto admin = up_.Client();
  ASSERT_EQ(admin->Put("/v1/projects/default/secrets/WANDB_KEY", R"({"value":"s3cr3t-value-42"})", "application/json")
                ->status,
            200);
  auto listed = up_.GetJson("/v1/projects/default/secrets");
  EXPECT_EQ(listed.dump().find("s3cr3t"), std::string::npos);
  // The job proves it got the value without the value appearing in its spec: length and last part.
  std::string id = up_.Submit({{"command", {"sh", "-c", "echo \"len=${#WANDB_KEY} tail=${WANDB_KEY##*-}\""}},
                               {"secrets", {"WANDB_KEY"}}});
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << up_.Job(id).dump();
  EXPECT_NE(up_.Client()->Get("/v1/jobs/" + id + "/logs")->body.find("len=15 tail=42"), std::string::npos);
  EXPECT_EQ(up_.Job(id).dump().find("s3cr3t"), std::string::npos);
  EXPECT_EQ(up_.GetJson("/v1/jobs/" + id + "/events").dump().find("s3cr3t"), std::string::npos);
  EXPECT_EQ(up_.GetJson("/v1/audit?limit=10000").dump().find("s3cr3t"), std::string::npos);
  // Nothing under the data dir holds the value in clear text (SQLite, agent state, logs).
  for (const auto& e : fs::recursive_directory_iterator(up_.home())) {
    if (!e.is_regular_file()) continue;
    EXPECT_EQ(ReadFile(e.path()).find("s3cr3t-value-42"), std::string::npos) << e.path();
  }
  // A job naming a secret that does not exist is refused at submit.
  auto r = admin->Post("/v1/jobs", R"({"command":["true"],"secrets":["NOPE"]})", "application/json");
  EXPECT_EQ(r->status, 404) << r->body;
}

TEST_F(SecurityTest, AuditVerifyDetectsAModifiedRow) {
  up_.Submit({{"command", {"true"}}});
  auto ok = up_.Cli({"audit", "verify"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  up_.Stop(SIGTERM);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((up_.home() + "/fastgpu.db").c_str(), &db), SQLITE_OK);
  // The store refuses UPDATE on the audit table; an attacker with file access drops the guard first.
  EXPECT_NE(sqlite3_exec(db, "UPDATE audit SET actor = 'user:mallory' WHERE seq = 1", nullptr, nullptr, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DROP TRIGGER audit_no_update; UPDATE audit SET actor = 'user:mallory' WHERE seq = 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  up_.Start();
  auto bad = up_.Cli({"audit", "verify"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE((bad.out + bad.err).find("1"), std::string::npos);
  auto report = up_.GetJson("/v1/audit/verify");
  EXPECT_FALSE(report.value("ok", true));
  EXPECT_EQ(report.value("first_bad_seq", 0), 1);
}

TEST(SecurityUp, PublicListenNeedsTlsOrInsecure) {
  char tmpl[] = "/tmp/fastgpu-tls-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  std::string cmd = "'" + Bin() + "' up --home '" + dir + "/h' --listen 0.0.0.0:0 --sim-gpus 1xA10-24GB >'" + dir +
                    "/out' 2>&1";
  int rc = std::system(cmd.c_str());
  EXPECT_NE(WEXITSTATUS(rc), 0);
  std::string out = ReadFile(dir + "/out");
  EXPECT_NE(out.find("--tls-cert"), std::string::npos) << out;
  EXPECT_NE(out.find("--insecure"), std::string::npos) << out;
  fs::remove_all(dir);
}

TEST(SecurityUp, ServesHttpsWithACertificateTheClientVerifies) {
  UpProcess up("1xA10-24GB");
  char tmpl[] = "/tmp/fastgpu-cert-XXXXXX";
  std::string dir = ::mkdtemp(tmpl);
  testing_support::WriteSelfSignedCert(dir + "/cert.pem", dir + "/key.pem");
  up.StartTls({"--tls-cert", dir + "/cert.pem", "--tls-key", dir + "/key.pem"}, dir + "/cert.pem");
  EXPECT_EQ(up.url().rfind("https://", 0), 0u) << up.url();
  // Without the CA the CLI refuses the certificate; with --ca it works.
  auto untrusted = up.Cli({"gpu", "list"});
  EXPECT_NE(untrusted.exit_code, 0);
  auto trusted = up.Cli({"--ca", dir + "/cert.pem", "gpu", "list"});
  EXPECT_EQ(trusted.exit_code, 0) << trusted.err;
  fs::remove_all(dir);
}

TEST_F(SecurityTest, BillingMetersARunAndPricesADryRun) {
  auto admin = up_.Client();
  auto dry = Parse(admin->Post("/v1/jobs?dry_run=true", R"({"command":["true"],"gpus":2,"runtime":"2h"})",
                               "application/json"));
  ASSERT_TRUE(dry.value("dry_run", false)) << dry.dump();
  EXPECT_GT(dry.value("price_per_hour_micro", 0), 0);
  EXPECT_EQ(dry.value("estimate_micro", 0), dry.value("price_per_hour_micro", 0) * 2);
  EXPECT_EQ(up_.GetJson("/v1/jobs")["jobs"].size(), 0u);  // nothing was created

  std::string id = up_.Submit({{"command", {"sleep", "1.2"}}, {"gpus", 1}});
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED"));
  json bill;
  ASSERT_TRUE(WaitFor([&] {
    bill = up_.GetJson("/v1/projects/default/bill");
    return bill.is_object() && !bill["lines"].empty();
  })) << bill.dump();
  EXPECT_GT(bill.value("usage_total_micro", 0), 0);
  auto csv = admin->Get("/v1/projects/default/bill?format=csv");
  EXPECT_NE(csv->body.find("A100-80GB"), std::string::npos) << csv->body;
  auto usage = up_.GetJson("/v1/usage");
  EXPECT_EQ(usage.value("total_micro", -1), bill.value("usage_total_micro", -2)) << usage.dump();
  EXPECT_EQ(up_.GetJson("/v1/projects/default").value("spent_this_month_micro", -1),
            bill.value("usage_total_micro", -2));
}

}  // namespace
}  // namespace fastgpu::testing
