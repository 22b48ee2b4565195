#include "api/accounts_json.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace fastgpu::api {
namespace {

using nlohmann::json;

constexpr UnixMillis kT = 1'793'491'200'123;  // 2026-11-01T00:00:00.123Z

template <typename T, typename F>
T RoundTrip(const json& j, F decode) {
  auto r = decode(json::parse(j.dump()));  // through text, as the store and HTTP do
  EXPECT_TRUE(r.ok()) << r.status().ToString() << "\n" << j.dump(2);
  return r.ok() ? *r : T{};
}

TEST(AccountsJson, User) {
  User u{"alice", "Alice A.", true, true, kT};
  json j = ToJson(u);
  EXPECT_EQ(j["name"], "alice");
  EXPECT_EQ(j["created_at"], "2026-11-01T00:00:00.123Z");
  EXPECT_EQ(j["created_at_ms"], kT);
  User back = RoundTrip<User>(j, UserFromJson);
  EXPECT_EQ(back.name, "alice");
  EXPECT_EQ(back.display_name, "Alice A.");
  EXPECT_TRUE(back.admin);
  EXPECT_TRUE(back.disabled);
  EXPECT_EQ(back.created_at, kT);
  // Text time alone is accepted, and integer ms as well.
  EXPECT_EQ(UserFromJson(json{{"name", "a"}, {"created_at", "2026-11-01T00:00:00.123Z"}})->created_at, kT);
  EXPECT_EQ(UserFromJson(json{{"name", "a"}, {"created_at", kT}})->created_at, kT);
  EXPECT_EQ(UserFromJson(json{{"name", "a"}, {"created_at", ""}})->created_at, 0);
}

TEST(AccountsJson, ProjectWithQuotaAndBudget) {
  Project p;
  p.name = "ml";
  p.description = "ML team";
  p.created_at = kT;
  p.quota.max_gpus_milli = {{"A100-80GB", 8000}, {"*", 16000}, {"H100-80GB", 500}};
  p.quota.max_gpu_hours_per_month = 1000;
  p.quota.max_queued_jobs = 50;
  p.budget = {500'000'000, true};
  p.run_as_uid = 1'900'000'007;
  p.run_as_user = "mlrunner";
  p.allow_root = true;
  json j = ToJson(p);
  // Field names the CLI and the server read.
  EXPECT_EQ(j["quota"]["max_gpus"]["A100-80GB"], "8");
  EXPECT_EQ(j["quota"]["max_gpus"]["H100-80GB"], "0.5");
  EXPECT_EQ(j["quota"]["max_gpus_milli"]["*"], 16000);
  EXPECT_EQ(j["quota"]["max_gpu_hours_per_month"], 1000);
  EXPECT_EQ(j["quota"]["max_queued_jobs"], 50);
  EXPECT_EQ(j["budget"]["monthly_limit_micro"], 500'000'000);
  EXPECT_EQ(j["budget"]["hard"], true);
  EXPECT_EQ(j["run_as_uid"], 1'900'000'007);
  EXPECT_EQ(j["run_as_user"], "mlrunner");
  EXPECT_EQ(j["allow_root"], true);
  Project back = RoundTrip<Project>(j, ProjectFromJson);
  EXPECT_EQ(back.name, "ml");
  EXPECT_EQ(back.description, "ML team");
  EXPECT_EQ(back.created_at, kT);
  EXPECT_EQ(back.quota.max_gpus_milli, p.quota.max_gpus_milli);
  EXPECT_EQ(back.quota.max_gpu_hours_per_month, 1000);
  EXPECT_EQ(back.quota.max_queued_jobs, 50);
  EXPECT_EQ(back.budget.monthly_limit_micro, 500'000'000);
  EXPECT_TRUE(back.budget.hard);
  EXPECT_EQ(back.run_as_uid, 1'900'000'007);
  EXPECT_EQ(back.run_as_user, "mlrunner");
  EXPECT_TRUE(back.allow_root);
  // Empty quota and budget round-trip too.
  Project empty = RoundTrip<Project>(ToJson(Project{.name = "x"}), ProjectFromJson);
  EXPECT_TRUE(empty.quota.max_gpus_milli.empty());
  EXPECT_EQ(empty.budget.monthly_limit_micro, 0);
}

TEST(AccountsJson, QuotaFromCountsOrMilli) {
  auto q = QuotaFromJson(json::parse(R"({"max_gpus":{"A100-80GB":"8","*":16,"T4":0.25}})"));
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->max_gpus_milli, (std::map<std::string, MilliGpu>{{"A100-80GB", 8000}, {"*", 16000}, {"T4", 250}}));
  q = QuotaFromJson(json::parse(R"({"max_gpus":{"A":"1"},"max_gpus_milli":{"A":1500}})"));
  EXPECT_EQ(q->max_gpus_milli.at("A"), 1500);
  auto bad = QuotaFromJson(json::parse(R"({"max_gpus":{"A":"lots"}})"));
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("max_gpus['A']"), std::string::npos) << bad.status().message();
  bad = QuotaFromJson(json::parse(R"({"max_gpus_milli":{"A":-1}})"));
  EXPECT_FALSE(bad.ok());
  auto b = BudgetFromJson(json::parse(R"({"monthly_limit_micro":5,"hard":false})"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->monthly_limit_micro, 5);
}

TEST(AccountsJson, Membership) {
  json j = ToJson(Membership{"ml", "bob", Role::kMember});
  EXPECT_EQ(j, json::parse(R"({"project":"ml","user":"bob","role":"member"})"));
  Membership m = RoundTrip<Membership>(j, MembershipFromJson);
  EXPECT_EQ(m.role, Role::kMember);
  auto bad = MembershipFromJson(json::parse(R"({"project":"ml","user":"bob","role":"boss"})"));
  EXPECT_NE(bad.status().message().find("'role'"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(MembershipFromJson(json::parse(R"({"project":"ml","user":"bob"})")).ok());
}

TEST(AccountsJson, TokenHidesItsHashExceptInTheStoreForm) {
  TokenRecord t{"tok-0123456789ab", std::string(64, 'f'), "sa:sa-1", "oauth", kT, kT + 1000, 0, "sa-1", "ml"};
  json api = ToJson(t);
  EXPECT_FALSE(api.contains("token_sha256"));
  EXPECT_EQ(api.dump().find(std::string(64, 'f')), std::string::npos);
  EXPECT_EQ(api["service_account"], true);
  EXPECT_EQ(api["service_account_id"], "sa-1");
  EXPECT_EQ(api["expires_at_ms"], kT + 1000);
  EXPECT_EQ(api["revoked_at"], "");
  EXPECT_EQ(api["revoked_at_ms"], 0);

  TokenRecord back = RoundTrip<TokenRecord>(TokenRecordToStoreJson(t), TokenRecordFromJson);
  EXPECT_EQ(back.id, t.id);
  EXPECT_EQ(back.token_sha256, t.token_sha256);
  EXPECT_EQ(back.user, t.user);
  EXPECT_EQ(back.name, t.name);
  EXPECT_EQ(back.created_at, t.created_at);
  EXPECT_EQ(back.expires_at, t.expires_at);
  EXPECT_EQ(back.revoked_at, 0);
  EXPECT_EQ(back.service_account, "sa-1");
  EXPECT_EQ(back.project, "ml");
  // The API form decodes too (without the hash).
  EXPECT_TRUE(RoundTrip<TokenRecord>(api, TokenRecordFromJson).token_sha256.empty());
  json user_token = ToJson(TokenRecord{.id = "tok-1", .user = "alice"});
  EXPECT_EQ(user_token["service_account"], false);
  api["service_account"] = false;
  EXPECT_FALSE(TokenRecordFromJson(api).ok());
}

TEST(AccountsJson, ServiceAccountHidesItsSecretHash) {
  ServiceAccount s{"sa-0123456789ab", "ml", "ci", Role::kViewer, std::string(64, 'e'), kT, 0};
  json api = ToJson(s);
  EXPECT_FALSE(api.contains("secret_sha256"));
  EXPECT_EQ(api["role"], "viewer");
  ServiceAccount back = RoundTrip<ServiceAccount>(ServiceAccountToStoreJson(s), ServiceAccountFromJson);
  EXPECT_EQ(back.id, s.id);
  EXPECT_EQ(back.project, "ml");
  EXPECT_EQ(back.name, "ci");
  EXPECT_EQ(back.role, Role::kViewer);
  EXPECT_EQ(back.secret_sha256, s.secret_sha256);
  EXPECT_EQ(back.created_at, kT);
}

TEST(AccountsJson, SecretHidesNonceAndCiphertext) {
  SecretRecord s{"ml", "WANDB_KEY", "0123456789abcdef", "aa", "bbbb", kT, "user:alice"};
  json api = ToJson(s);
  EXPECT_FALSE(api.contains("nonce_hex"));
  EXPECT_FALSE(api.contains("ciphertext_hex"));
  EXPECT_EQ(api["updated_at_ms"], kT);
  EXPECT_EQ(api["updated_by"], "user:alice");
  SecretRecord back = RoundTrip<SecretRecord>(SecretRecordToStoreJson(s), SecretRecordFromJson);
  EXPECT_EQ(back.project, "ml");
  EXPECT_EQ(back.name, "WANDB_KEY");
  EXPECT_EQ(back.key_id, s.key_id);
  EXPECT_EQ(back.nonce_hex, "aa");
  EXPECT_EQ(back.ciphertext_hex, "bbbb");
  EXPECT_EQ(back.updated_at, kT);
  EXPECT_EQ(back.updated_by, "user:alice");
}

TEST(AccountsJson, AuditRecord) {
  AuditRecord a{7, kT, "user:alice", "10.0.0.1", "POST /v1/jobs", "job:j-1", "ok", "d", "prev", ""};
  a.hash = AuditHash(a);
  json j = ToJson(a);
  EXPECT_EQ(j["seq"], 7);
  EXPECT_EQ(j["at_ms"], kT);
  AuditRecord back = RoundTrip<AuditRecord>(j, AuditRecordFromJson);
  EXPECT_EQ(AuditCanonical(back), AuditCanonical(a));
  EXPECT_EQ(back.hash, a.hash);
}

TEST(AccountsJson, DecodersAreStrict) {
  struct Case {
    const char* text;
    Result<int> (*decode)(const json&);
    const char* needle;
  };
  auto user = [](const json& j) -> Result<int> { RETURN_IF_ERROR(UserFromJson(j).status()); return 0; };
  auto project = [](const json& j) -> Result<int> { RETURN_IF_ERROR(ProjectFromJson(j).status()); return 0; };
  auto token = [](const json& j) -> Result<int> { RETURN_IF_ERROR(TokenRecordFromJson(j).status()); return 0; };
  auto audit = [](const json& j) -> Result<int> { RETURN_IF_ERROR(AuditRecordFromJson(j).status()); return 0; };
  auto secret = [](const json& j) -> Result<int> { RETURN_IF_ERROR(SecretRecordFromJson(j).status()); return 0; };
  auto sa = [](const json& j) -> Result<int> { RETURN_IF_ERROR(ServiceAccountFromJson(j).status()); return 0; };
  const Case cases[] = {
      {R"({"name":"a","admin":"yes"})", user, "'admin'"},
      {R"({"name":"a","colour":"red"})", user, "unknown field 'colour'"},
      {R"({"name":7})", user, "'name'"},
      {R"({})", user, "'name'"},
      {R"([1,2])", user, "JSON object"},
      {R"({"name":"a","created_at":"yesterday"})", user, "'created_at'"},
      {R"({"name":"a","created_at_ms":-5})", user, "'created_at_ms'"},
      {R"({"name":"ml","quota":{"max_queued_jobs":"many"}})", project, "'quota.max_queued_jobs'"},
      {R"({"name":"ml","quota":{"gpus":1}})", project, "unknown field 'quota.gpus'"},
      {R"({"name":"ml","quota":[]})", project, "'quota'"},
      {R"({"name":"ml","budget":{"monthly_limit_micro":1.5}})", project, "'budget.monthly_limit_micro'"},
      {R"({"name":"ml","allow_root":1})", project, "'allow_root'"},
      {R"({"id":"tok-1","expires_at_ms":"soon"})", token, "'expires_at_ms'"},
      {R"({"id":"tok-1","token":"fgp_x"})", token, "unknown field 'token'"},
      {R"({"seq":"1"})", audit, "'seq'"},
      {R"({"project":"ml","name":"X","value":"v"})", secret, "unknown field 'value'"},
      {R"({"id":"sa-1","project":"ml","role":"god"})", sa, "'role'"},
  };
  for (const auto& c : cases) {
    auto r = c.decode(json::parse(c.text));
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find(c.needle), std::string::npos) << c.text << " -> " << r.status().message();
  }
}

}  // namespace
}  // namespace fastgpu::api
