#include "auth/accounts.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>

#include "fake_store.h"
#include "common/crypto.h"

namespace fastgpu::auth {
namespace {

using api::Role;
using std::chrono::hours;
using std::chrono::milliseconds;

class AccountsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = std::move(MasterKey::Generate()).value();
    accounts_ = Open(&*key_);
  }

  std::unique_ptr<AccountService> Open(const MasterKey* key, AccountOptions options = {}) {
    auto svc = AccountService::Create(store_, clock_, key, options);
    EXPECT_TRUE(svc.ok()) << svc.status().ToString();
    return std::move(svc).value();
  }

  void AddUser(const std::string& name, bool admin = false) {
    api::User u;
    u.name = name;
    u.admin = admin;
    auto r = accounts_->CreateUser(u);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  void AddProject(const std::string& name, const std::string& owner) {
    api::Project p;
    p.name = name;
    auto r = accounts_->CreateProject(p, owner);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  std::string Token(const std::string& user, int64_t ttl_s = 0) {
    auto t = accounts_->CreateToken(user, "test", ttl_s);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return t.ok() ? t->token : "";
  }

  fakes::FakeStore store_;
  FakeClock clock_{1'795'000'000'000};
  std::optional<MasterKey> key_;
  std::unique_ptr<AccountService> accounts_;
};

bool IsHex(const std::string& s) { return s.find_first_not_of("0123456789abcdef") == std::string::npos; }

// ---- Bootstrap

TEST_F(AccountsTest, BootstrapCreatesAdminDefaultProjectAndTokenOnce) {
  const std::string token = std::move(RandomToken()).value();
  ASSERT_TRUE(accounts_->EnsureBootstrap(Sha256Hex(token)).ok());
  auto admin = accounts_->GetUser("admin");
  ASSERT_TRUE(admin.ok());
  EXPECT_TRUE(admin->admin);
  EXPECT_EQ(admin->created_at, clock_.NowMillis());
  ASSERT_TRUE(accounts_->GetProject("default").ok());
  auto members = accounts_->ListMembers("default");
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].user, "admin");
  EXPECT_EQ(members[0].role, Role::kOwner);

  auto who = accounts_->Authenticate(token);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->user, "admin");
  EXPECT_TRUE(who->admin);
  EXPECT_EQ(who->RoleIn("default"), Role::kOwner);
  EXPECT_FALSE(who->token_id.empty());

  // Idempotent: no further writes, in this process or after a restart.
  const int writes = store_.write_calls();
  ASSERT_TRUE(accounts_->EnsureBootstrap(Sha256Hex(token)).ok());
  EXPECT_EQ(store_.write_calls(), writes);
  auto reopened = Open(&*key_);
  ASSERT_TRUE(reopened->EnsureBootstrap(Sha256Hex(token)).ok());
  EXPECT_EQ(store_.write_calls(), writes);
  EXPECT_EQ(reopened->ListUsers().size(), 1u);
  EXPECT_EQ(reopened->ListTokens("admin").size(), 1u);
  EXPECT_TRUE(reopened->Authenticate(token).ok());
  // The admin token of `fastgpu up` does not expire.
  clock_.Advance(hours(24 * 400));
  EXPECT_TRUE(reopened->Authenticate(token).ok());

  // A new admin token (admin.token replaced) is added; the old one stays valid.
  const std::string token2 = std::move(RandomToken()).value();
  ASSERT_TRUE(reopened->EnsureBootstrap(Sha256Hex(token2)).ok());
  EXPECT_TRUE(reopened->Authenticate(token2).ok());
  EXPECT_EQ(reopened->ListTokens("admin").size(), 2u);
  EXPECT_EQ(reopened->ListUsers().size(), 1u);

  EXPECT_EQ(accounts_->EnsureBootstrap("not-a-hash").code(), ErrorCode::kInvalidArgument);
}

// ---- Tokens

TEST_F(AccountsTest, TokensAuthenticateUntilTheyExpire) {
  AddUser("alice");
  AddProject("ml", "alice");
  AddUser("bob");
  ASSERT_TRUE(accounts_->SetMember("ml", "bob", Role::kViewer).ok());
  auto created = accounts_->CreateToken("bob", "laptop", 0);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->token.rfind("fgp_", 0), 0u);
  EXPECT_EQ(created->token.size(), 68u);
  EXPECT_TRUE(IsHex(created->token.substr(4)));
  EXPECT_EQ(created->record.id.rfind("tok-", 0), 0u);
  EXPECT_EQ(created->record.id.size(), 16u);
  EXPECT_EQ(created->record.token_sha256, Sha256Hex(created->token));
  EXPECT_EQ(created->record.user, "bob");
  EXPECT_EQ(created->record.name, "laptop");
  EXPECT_EQ(created->record.expires_at, clock_.NowMillis() + 90LL * 86400 * 1000);

  auto who = accounts_->Authenticate(created->token);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->user, "bob");
  EXPECT_FALSE(who->admin);
  EXPECT_FALSE(who->service_account);
  EXPECT_EQ(who->token_id, created->record.id);
  EXPECT_EQ(who->roles, (std::map<std::string, Role>{{"ml", Role::kViewer}}));

  // The store never sees the token itself.
  EXPECT_EQ(store_.Dump().find(created->token), std::string::npos);

  clock_.Advance(milliseconds(90LL * 86400 * 1000 - 1));
  EXPECT_TRUE(accounts_->Authenticate(created->token).ok());
  clock_.Advance(milliseconds(1));
  auto expired = accounts_->Authenticate(created->token);
  EXPECT_EQ(expired.status().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(expired.status().message(), "invalid or expired token");
}

TEST_F(AccountsTest, TokenLifetimeIsCappedAndValidated) {
  AddUser("alice");
  auto t = accounts_->CreateToken("alice", "ci", 1000LL * 86400);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->record.expires_at, clock_.NowMillis() + 366LL * 86400 * 1000);
  t = accounts_->CreateToken("alice", "short", 60);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->record.expires_at, clock_.NowMillis() + 60'000);
  EXPECT_EQ(accounts_->CreateToken("alice", "x", -1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(accounts_->CreateToken("nobody", "x", 0).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->CreateToken("alice", std::string(65, 'n'), 0).status().code(), ErrorCode::kInvalidArgument);
}

TEST_F(AccountsTest, RevokedTokensAndDisabledUsersAreRejected) {
  AddUser("root", true);
  AddUser("alice");
  const std::string a1 = Token("alice"), a2 = Token("alice");
  auto list = accounts_->ListTokens("alice");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(accounts_->ListTokens("").size(), 2u);
  EXPECT_TRUE(accounts_->ListTokens("root").empty());

  auto who = accounts_->Authenticate(a1);
  ASSERT_TRUE(who.ok());
  ASSERT_TRUE(accounts_->RevokeToken(who->token_id).ok());
  EXPECT_EQ(accounts_->Authenticate(a1).status().code(), ErrorCode::kUnauthenticated);
  EXPECT_TRUE(accounts_->Authenticate(a2).ok());
  auto rec = accounts_->GetToken(who->token_id);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->revoked_at, clock_.NowMillis());
  EXPECT_TRUE(accounts_->RevokeToken(who->token_id).ok()) << "revoking twice is fine";
  EXPECT_EQ(accounts_->RevokeToken("tok-000000000000").code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->GetToken("tok-000000000000").status().code(), ErrorCode::kNotFound);

  ASSERT_TRUE(accounts_->UpdateUser("root", "alice", std::nullopt, true, std::nullopt).ok());
  EXPECT_EQ(accounts_->Authenticate(a2).status().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(accounts_->CreateToken("alice", "x", 0).status().code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(accounts_->UpdateUser("root", "alice", std::nullopt, false, std::nullopt).ok());
  EXPECT_TRUE(accounts_->Authenticate(a2).ok());

  for (const std::string& bad : std::vector<std::string>{"", "fgp_nope", std::string(4096, 'x')}) {
    auto r = accounts_->Authenticate(bad);
    EXPECT_EQ(r.status().code(), ErrorCode::kUnauthenticated);
    EXPECT_EQ(r.status().message(), "invalid or expired token");
  }
}

// ---- Service accounts

TEST_F(AccountsTest, ServiceAccountClientCredentials) {
  AddUser("alice");
  AddProject("ml", "alice");
  AddProject("web", "alice");
  auto sa = accounts_->CreateServiceAccount("ml", "ci", Role::kViewer);
  ASSERT_TRUE(sa.ok()) << sa.status().ToString();
  EXPECT_EQ(sa->account.id.rfind("sa-", 0), 0u);
  EXPECT_EQ(sa->account.id.size(), 15u);
  EXPECT_EQ(sa->account.project, "ml");
  EXPECT_EQ(sa->account.role, Role::kViewer);
  EXPECT_EQ(sa->account.secret_sha256, Sha256Hex(sa->client_secret));
  EXPECT_GE(sa->client_secret.size(), 64u);
  EXPECT_EQ(store_.Dump().find(sa->client_secret), std::string::npos);
  auto listed = accounts_->ListServiceAccounts("ml");
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, sa->account.id);
  EXPECT_TRUE(accounts_->ListServiceAccounts("web").empty());

  auto tok = accounts_->IssueAccessToken(sa->account.id, sa->client_secret);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->expires_in_s, 3600);
  EXPECT_EQ(tok->access_token.rfind("fgp_", 0), 0u);
  auto who = accounts_->Authenticate(tok->access_token);
  ASSERT_TRUE(who.ok()) << who.status().ToString();
  EXPECT_EQ(who->user, sa->account.id);
  EXPECT_TRUE(who->service_account);
  EXPECT_FALSE(who->admin);
  EXPECT_EQ(who->Actor(), "sa:" + sa->account.id);
  EXPECT_EQ(who->roles, (std::map<std::string, Role>{{"ml", Role::kViewer}}));
  EXPECT_TRUE(Authorize(*who, Action::kProjectRead, "ml", "").ok());
  EXPECT_EQ(Authorize(*who, Action::kProjectWrite, "ml", "").code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(Authorize(*who, Action::kProjectRead, "web", "").code(), ErrorCode::kNotFound);
  auto rec = accounts_->GetToken(who->token_id);
  ASSERT_TRUE(rec.ok());
  EXPECT_EQ(rec->service_account, sa->account.id);
  EXPECT_EQ(rec->project, "ml");
  EXPECT_EQ(rec->user, "sa:" + sa->account.id);

  // Wrong secret, unknown id, empty secret.
  EXPECT_EQ(accounts_->IssueAccessToken(sa->account.id, sa->client_secret + "x").status().code(),
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(accounts_->IssueAccessToken("sa-000000000000", sa->client_secret).status().code(),
            ErrorCode::kUnauthenticated);
  EXPECT_EQ(accounts_->IssueAccessToken(sa->account.id, "").status().code(), ErrorCode::kUnauthenticated);

  // Access tokens live one hour.
  clock_.Advance(hours(1));
  EXPECT_EQ(accounts_->Authenticate(tok->access_token).status().code(), ErrorCode::kUnauthenticated);

  // Deleting the account revokes its tokens.
  auto tok2 = accounts_->IssueAccessToken(sa->account.id, sa->client_secret);
  ASSERT_TRUE(tok2.ok());
  EXPECT_TRUE(accounts_->Authenticate(tok2->access_token).ok());
  EXPECT_EQ(accounts_->DeleteServiceAccount("web", sa->account.id).code(), ErrorCode::kNotFound);
  ASSERT_TRUE(accounts_->DeleteServiceAccount("ml", sa->account.id).ok());
  EXPECT_EQ(accounts_->Authenticate(tok2->access_token).status().code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(accounts_->IssueAccessToken(sa->account.id, sa->client_secret).status().code(),
            ErrorCode::kUnauthenticated);
  EXPECT_TRUE(accounts_->ListServiceAccounts("ml").empty());
  EXPECT_EQ(accounts_->CreateServiceAccount("nope", "ci", Role::kMember).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->CreateServiceAccount("ml", "Bad Name", Role::kMember).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST_F(AccountsTest, ExpiredAccessTokensArePruned) {
  AddUser("alice");
  AddProject("ml", "alice");
  auto sa = std::move(accounts_->CreateServiceAccount("ml", "ci", Role::kMember)).value();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(accounts_->IssueAccessToken(sa.account.id, sa.client_secret).ok());
  EXPECT_EQ(accounts_->ListTokens("sa:" + sa.account.id).size(), 5u);
  clock_.Advance(hours(2));
  ASSERT_TRUE(accounts_->IssueAccessToken(sa.account.id, sa.client_secret).ok());
  EXPECT_EQ(accounts_->ListTokens("sa:" + sa.account.id).size(), 1u);
  EXPECT_EQ(Open(&*key_)->ListTokens("sa:" + sa.account.id).size(), 1u);
}

// ---- Users and memberships

TEST_F(AccountsTest, UsersAreValidatedAndUnique) {
  AddUser("alice");
  api::User dup;
  dup.name = "alice";
  EXPECT_EQ(accounts_->CreateUser(dup).status().code(), ErrorCode::kAlreadyExists);
  api::User bad;
  bad.name = "Alice Smith";
  auto r = accounts_->CreateUser(bad);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("Alice Smith"), std::string::npos);
  EXPECT_EQ(accounts_->GetUser("nobody").status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->UpdateUser("alice", "nobody", true, std::nullopt, std::nullopt).status().code(),
            ErrorCode::kNotFound);
}

TEST_F(AccountsTest, AdminCannotDemoteOrDisableThemselves) {
  AddUser("root", true);
  AddUser("alice");
  auto r = accounts_->UpdateUser("root", "root", false, std::nullopt, std::nullopt);
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("another admin"), std::string::npos) << r.status().message();
  EXPECT_EQ(accounts_->UpdateUser("root", "root", std::nullopt, true, std::nullopt).status().code(),
            ErrorCode::kFailedPrecondition);
  // Harmless self-updates are fine.
  auto same = accounts_->UpdateUser("root", "root", true, false, std::string("The Root"));
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->display_name, "The Root");

  // Another admin may demote; but the last active admin stays.
  ASSERT_TRUE(accounts_->UpdateUser("root", "alice", true, std::nullopt, std::nullopt).ok());
  EXPECT_TRUE(accounts_->GetUser("alice")->admin);
  ASSERT_TRUE(accounts_->UpdateUser("alice", "root", false, std::nullopt, std::nullopt).ok());
  EXPECT_FALSE(accounts_->GetUser("root")->admin);
  EXPECT_EQ(accounts_->UpdateUser("root", "alice", false, std::nullopt, std::nullopt).status().code(),
            ErrorCode::kFailedPrecondition);
}

TEST_F(AccountsTest, LastOwnerCannotBeRemovedOrDemoted) {
  AddUser("alice");
  AddUser("bob");
  AddProject("ml", "alice");
  Status st = accounts_->RemoveMember("ml", "alice");
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("last owner"), std::string::npos) << st.message();
  EXPECT_EQ(accounts_->SetMember("ml", "alice", Role::kMember).code(), ErrorCode::kFailedPrecondition);

  ASSERT_TRUE(accounts_->SetMember("ml", "bob", Role::kOwner).ok());
  ASSERT_TRUE(accounts_->SetMember("ml", "alice", Role::kMember).ok());
  EXPECT_EQ(accounts_->RemoveMember("ml", "bob").code(), ErrorCode::kFailedPrecondition);
  ASSERT_TRUE(accounts_->RemoveMember("ml", "alice").ok());
  auto members = accounts_->ListMembers("ml");
  ASSERT_EQ(members.size(), 1u);
  EXPECT_EQ(members[0].user, "bob");
  EXPECT_EQ(accounts_->RemoveMember("ml", "alice").code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->SetMember("nope", "bob", Role::kViewer).code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->SetMember("ml", "nobody", Role::kViewer).code(), ErrorCode::kNotFound);
}

TEST_F(AccountsTest, MembershipChangesShowInTheNextAuthentication) {
  AddUser("alice");
  AddUser("bob");
  AddProject("ml", "alice");
  const std::string tok = Token("bob");
  EXPECT_TRUE(accounts_->Authenticate(tok)->roles.empty());
  ASSERT_TRUE(accounts_->SetMember("ml", "bob", Role::kMember).ok());
  EXPECT_EQ(accounts_->Authenticate(tok)->RoleIn("ml"), Role::kMember);
  ASSERT_TRUE(accounts_->RemoveMember("ml", "bob").ok());
  EXPECT_FALSE(accounts_->Authenticate(tok)->RoleIn("ml").has_value());
}

// ---- Projects

TEST_F(AccountsTest, ProjectsCreateUpdateAndValidate) {
  AddUser("alice");
  api::Project p;
  p.name = "ml";
  p.description = "ML team";
  auto created = accounts_->CreateProject(p, "alice");
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->created_at, clock_.NowMillis());
  EXPECT_EQ(accounts_->CreateProject(p, "alice").status().code(), ErrorCode::kAlreadyExists);
  p.name = "web";
  auto r = accounts_->CreateProject(p, "nobody");
  EXPECT_EQ(r.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.status().message().find("nobody"), std::string::npos);
  p.name = "-bad";
  EXPECT_EQ(accounts_->CreateProject(p, "alice").status().code(), ErrorCode::kInvalidArgument);

  api::Project next = *created;
  next.created_at = 42;  // ignored
  next.description = "Machine learning";
  next.quota.max_gpus_milli = {{"A100-80GB", 8000}, {"*", 16000}};
  next.quota.max_gpu_hours_per_month = 1000;
  next.quota.max_queued_jobs = 50;
  next.budget.monthly_limit_micro = 500'000'000;
  next.budget.hard = true;
  next.run_as_user = "mlrunner";
  auto updated = accounts_->UpdateProject(next);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ(updated->created_at, created->created_at);
  auto reloaded = Open(&*key_)->GetProject("ml");
  ASSERT_TRUE(reloaded.ok());
  EXPECT_EQ(reloaded->description, "Machine learning");
  EXPECT_EQ(reloaded->quota.max_gpus_milli, next.quota.max_gpus_milli);
  EXPECT_EQ(reloaded->quota.max_gpu_hours_per_month, 1000);
  EXPECT_EQ(reloaded->quota.max_queued_jobs, 50);
  EXPECT_EQ(reloaded->budget.monthly_limit_micro, 500'000'000);
  EXPECT_TRUE(reloaded->budget.hard);
  EXPECT_EQ(reloaded->run_as_user, "mlrunner");

  next.run_as_user = "root";
  EXPECT_EQ(accounts_->UpdateProject(next).status().code(), ErrorCode::kInvalidArgument);
  next.allow_root = true;
  EXPECT_TRUE(accounts_->UpdateProject(next).ok());
  next.run_as_user = "bad user;rm";
  EXPECT_EQ(accounts_->UpdateProject(next).status().code(), ErrorCode::kInvalidArgument);
  next.run_as_user = "";
  next.quota.max_queued_jobs = -1;
  EXPECT_EQ(accounts_->UpdateProject(next).status().code(), ErrorCode::kInvalidArgument);
  next.quota.max_queued_jobs = 0;
  next.name = "nope";
  EXPECT_EQ(accounts_->UpdateProject(next).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->ListProjects().size(), 1u);
}

// ---- Job uids: one per project, from the configured range, never shared, never reused

AccountOptions UidRange(int64_t first, int64_t last) {
  AccountOptions o;
  o.job_uids = {first, last};
  return o;
}

TEST_F(AccountsTest, EveryProjectGetsItsOwnUidFromTheRange) {
  accounts_ = Open(&*key_, UidRange(5000, 5002));
  AddUser("alice");
  ASSERT_TRUE(accounts_->EnsureBootstrap(Sha256Hex("t")).ok());
  EXPECT_EQ(accounts_->GetProject("default")->run_as_uid, 5000);
  api::Project p;
  p.name = "ml";
  p.run_as_uid = 4242;  // what a client sends is ignored
  auto ml = accounts_->CreateProject(p, "alice");
  ASSERT_TRUE(ml.ok()) << ml.status().ToString();
  EXPECT_EQ(ml->run_as_uid, 5001);
  AddProject("web", "alice");
  EXPECT_EQ(accounts_->GetProject("web")->run_as_uid, 5002);

  // The range is used up: a clear error, and nothing is created.
  p.name = "ops";
  auto full = accounts_->CreateProject(p, "alice");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(full.status().message().find("no Unix uid left for project ops"), std::string::npos)
      << full.status().message();
  EXPECT_NE(full.status().message().find("5000-5002"), std::string::npos);
  EXPECT_NE(full.status().message().find("--job-uid-range"), std::string::npos);
  EXPECT_EQ(accounts_->GetProject("ops").status().code(), ErrorCode::kNotFound);

  // An update never changes the uid.
  api::Project next = *ml;
  next.run_as_uid = 5002;
  next.description = "changed";
  auto updated = accounts_->UpdateProject(next);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->run_as_uid, 5001);
}

TEST_F(AccountsTest, UidsSurviveARestartAndAreNeverGivenAgain) {
  accounts_ = Open(&*key_, UidRange(5000, 5999));
  AddUser("alice");
  AddProject("ml", "alice");
  AddProject("web", "alice");
  accounts_ = Open(&*key_, UidRange(5000, 5999));
  EXPECT_EQ(accounts_->GetProject("ml")->run_as_uid, 5000);
  EXPECT_EQ(accounts_->GetProject("web")->run_as_uid, 5001);
  AddProject("ops", "alice");
  EXPECT_EQ(accounts_->GetProject("ops")->run_as_uid, 5002);

  // The high-water mark is durable on its own: a uid given once is not given again even if the
  // project that had it no longer holds it (here: its record is rewritten behind our back).
  ASSERT_TRUE(store_.WriteRecords({{"project", "ops", R"({"name":"ops"})"}}).ok());
  accounts_ = Open(&*key_, UidRange(5000, 5999));
  EXPECT_EQ(accounts_->GetProject("ops")->run_as_uid, 5003);

  // A range moved higher starts at its beginning; one at or below the highest uid ever given has
  // nothing left, even where no project holds a uid now (5002 was ops's).
  accounts_ = Open(&*key_, UidRange(7000, 7999));
  AddProject("new", "alice");
  EXPECT_EQ(accounts_->GetProject("new")->run_as_uid, 7000);
  accounts_ = Open(&*key_, UidRange(5000, 5999));
  api::Project p;
  p.name = "back";
  auto back = accounts_->CreateProject(p, "alice");
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(back.status().message().find("no uid above 7000"), std::string::npos) << back.status().message();
}

TEST_F(AccountsTest, ProjectsFromOlderVersionsGetAUidAtLoadDurably) {
  ASSERT_TRUE(store_.WriteRecords({{"project", "a", R"({"name":"a"})"},
                                   {"project", "b", R"({"name":"b","run_as_user":"svc-b"})"}})
                  .ok());
  accounts_ = Open(&*key_, UidRange(5000, 5999));
  const int64_t a = accounts_->GetProject("a")->run_as_uid;
  const int64_t b = accounts_->GetProject("b")->run_as_uid;
  EXPECT_EQ(a, 5000);
  EXPECT_EQ(b, 5001);
  auto records = store_.ListRecords("project", "");
  ASSERT_TRUE(records.ok());
  for (const auto& r : *records) EXPECT_NE(r.value.find("\"run_as_uid\":500"), std::string::npos) << r.value;
  accounts_ = Open(&*key_, UidRange(5000, 5999));
  EXPECT_EQ(accounts_->GetProject("a")->run_as_uid, a);
  EXPECT_EQ(accounts_->GetProject("b")->run_as_uid, b);
}

TEST_F(AccountsTest, ANamedOsUserIsNeverSharedBetweenProjects) {
  AddUser("alice");
  AddProject("ml", "alice");
  AddProject("web", "alice");
  api::Project ml = *accounts_->GetProject("ml");
  ml.run_as_user = "mlrunner";
  ASSERT_TRUE(accounts_->UpdateProject(ml).ok());
  ASSERT_TRUE(accounts_->UpdateProject(ml).ok());  // the same project again: fine
  api::Project web = *accounts_->GetProject("web");
  web.run_as_user = "mlrunner";
  auto r = accounts_->UpdateProject(web);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("OS user 'mlrunner' already runs the jobs of project ml"), std::string::npos)
      << r.status().message();
  api::Project ops;
  ops.name = "ops";
  ops.run_as_user = "mlrunner";
  EXPECT_EQ(accounts_->CreateProject(ops, "alice").status().code(), ErrorCode::kFailedPrecondition);
  ml.run_as_user = "";
  ASSERT_TRUE(accounts_->UpdateProject(ml).ok());
  EXPECT_TRUE(accounts_->UpdateProject(web).ok());
}

TEST(JobUidRangeTest, ParsesAndRefusesBadRanges) {
  auto r = ParseJobUidRange("200000-299999");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->first, 200000);
  EXPECT_EQ(r->last, 299999);
  EXPECT_EQ(FormatJobUidRange(*r), "200000-299999");
  for (const char* bad : {"", "200000", "a-b", "5-2000", "3000-2000", "1000-4294967295", "-1-5", "1000-2000x"}) {
    auto st = ParseJobUidRange(bad);
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.status().message().find("FIRST-LAST"), std::string::npos) << bad;
  }
  AccountOptions o;
  o.job_uids = {10, 20};
  fakes::FakeStore store;
  FakeClock clock{0};
  EXPECT_EQ(AccountService::Create(store, clock, nullptr, o).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_GE(kDefaultJobUidFirst, 1'879'048'192);  // above useradd's subuids and nspawn's container range
  EXPECT_LT(kDefaultJobUidLast, 2'147'483'648);
}

// ---- Secrets

TEST_F(AccountsTest, SecretsAreSealedAndOpenOnlyForTheirProject) {
  AddUser("alice");
  AddProject("ml", "alice");
  AddProject("web", "alice");
  ASSERT_TRUE(accounts_->SetSecret("ml", "WANDB_KEY", "s3cr3t-value", "user:alice").ok());
  ASSERT_TRUE(accounts_->SetSecret("ml", "HF_TOKEN", "hf-value", "user:alice").ok());
  EXPECT_EQ(store_.Dump().find("s3cr3t-value"), std::string::npos);
  auto list = accounts_->ListSecrets("ml");
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].name, "HF_TOKEN");
  EXPECT_EQ(list[1].name, "WANDB_KEY");
  EXPECT_EQ(list[1].updated_by, "user:alice");
  EXPECT_EQ(list[1].updated_at, clock_.NowMillis());
  EXPECT_EQ(list[1].key_id, key_->id());
  EXPECT_TRUE(accounts_->ListSecrets("web").empty());

  auto values = accounts_->OpenSecretValues("ml", {"WANDB_KEY", "HF_TOKEN"});
  ASSERT_TRUE(values.ok()) << values.status().ToString();
  EXPECT_EQ(*values, (std::map<std::string, std::string>{{"WANDB_KEY", "s3cr3t-value"}, {"HF_TOKEN", "hf-value"}}));
  auto missing = accounts_->OpenSecretValues("web", {"WANDB_KEY"});
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("WANDB_KEY"), std::string::npos);
  EXPECT_TRUE(accounts_->OpenSecretValues("web", {})->empty());

  // Overwrite, delete, validation.
  ASSERT_TRUE(accounts_->SetSecret("ml", "WANDB_KEY", "new-value", "user:bob").ok());
  EXPECT_EQ(accounts_->OpenSecretValues("ml", {"WANDB_KEY"})->at("WANDB_KEY"), "new-value");
  ASSERT_TRUE(accounts_->DeleteSecret("ml", "WANDB_KEY").ok());
  EXPECT_EQ(accounts_->DeleteSecret("ml", "WANDB_KEY").code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->SetSecret("ml", "lower", "v", "x").code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(accounts_->SetSecret("nope", "X", "v", "x").code(), ErrorCode::kNotFound);
  EXPECT_EQ(accounts_->SetSecret("ml", "BIG", std::string(64 * 1024 + 1, 'x'), "x").code(),
            ErrorCode::kInvalidArgument);

  // Survives a restart with the same key; another key cannot open it.
  EXPECT_EQ(Open(&*key_)->OpenSecretValues("ml", {"HF_TOKEN"})->at("HF_TOKEN"), "hf-value");
  auto other = std::move(MasterKey::Generate()).value();
  EXPECT_EQ(Open(&other)->OpenSecretValues("ml", {"HF_TOKEN"}).status().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(AccountsTest, SecretsNeedAMasterKey) {
  auto keyless = Open(nullptr);
  AddUser("alice");
  AddProject("ml", "alice");
  keyless = Open(nullptr);
  Status st = keyless->SetSecret("ml", "X", "v", "user:alice");
  EXPECT_EQ(st.code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("master key"), std::string::npos);
  ASSERT_TRUE(accounts_->SetSecret("ml", "X", "v", "user:alice").ok());
  keyless = Open(nullptr);
  EXPECT_EQ(keyless->OpenSecretValues("ml", {"X"}).status().code(), ErrorCode::kFailedPrecondition);
}

TEST_F(AccountsTest, RotateKeyReencryptsEverySecretInOneBatch) {
  AddUser("alice");
  AddProject("ml", "alice");
  AddProject("web", "alice");
  ASSERT_TRUE(accounts_->SetSecret("ml", "A", "alpha", "user:alice").ok());
  ASSERT_TRUE(accounts_->SetSecret("ml", "B", "beta", "user:alice").ok());
  ASSERT_TRUE(accounts_->SetSecret("web", "C", "gamma", "user:alice").ok());
  const UnixMillis set_at = clock_.NowMillis();
  clock_.Advance(hours(1));
  auto new_key = std::move(MasterKey::Generate()).value();
  const int writes = store_.write_calls();
  auto n = accounts_->RotateKey(new_key);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 3);
  EXPECT_EQ(store_.write_calls(), writes + 1);
  for (const char* p : {"ml", "web"}) {
    for (const auto& s : accounts_->ListSecrets(p)) {
      EXPECT_EQ(s.key_id, new_key.id());
      EXPECT_EQ(s.updated_at, set_at) << "re-encryption is not an update of the value";
    }
  }
  EXPECT_EQ(accounts_->OpenSecretValues("ml", {"A", "B"})->at("B"), "beta");
  EXPECT_EQ(accounts_->OpenSecretValues("web", {"C"})->at("C"), "gamma");
  ASSERT_TRUE(accounts_->SetSecret("ml", "D", "delta", "user:alice").ok());
  EXPECT_EQ(accounts_->ListSecrets("ml").back().key_id, new_key.id());

  // After a restart only the new key opens them.
  EXPECT_EQ(Open(&new_key)->OpenSecretValues("web", {"C"})->at("C"), "gamma");
  EXPECT_EQ(Open(&*key_)->OpenSecretValues("web", {"C"}).status().code(), ErrorCode::kFailedPrecondition);
  // Rotating again to the same key is a no-op.
  EXPECT_EQ(*accounts_->RotateKey(new_key), 0);
}

TEST_F(AccountsTest, FailedRotationKeepsTheOldKey) {
  AddUser("alice");
  AddProject("ml", "alice");
  ASSERT_TRUE(accounts_->SetSecret("ml", "A", "alpha", "user:alice").ok());
  auto new_key = std::move(MasterKey::Generate()).value();
  store_.FailNextWrite(Internal("disk full"));
  auto n = accounts_->RotateKey(new_key);
  EXPECT_EQ(n.status().code(), ErrorCode::kInternal);
  EXPECT_EQ(accounts_->ListSecrets("ml")[0].key_id, key_->id());
  EXPECT_EQ(accounts_->OpenSecretValues("ml", {"A"})->at("A"), "alpha");
  EXPECT_EQ(Open(&*key_)->OpenSecretValues("ml", {"A"})->at("A"), "alpha");
}

// ---- Store behaviour

TEST_F(AccountsTest, EverythingSurvivesARestart) {
  const std::string admin_token = std::move(RandomToken()).value();
  ASSERT_TRUE(accounts_->EnsureBootstrap(Sha256Hex(admin_token)).ok());
  AddUser("alice");
  AddProject("ml", "alice");
  ASSERT_TRUE(accounts_->SetMember("ml", "admin", Role::kViewer).ok());
  const std::string tok = Token("alice");
  auto sa = std::move(accounts_->CreateServiceAccount("ml", "ci", Role::kOwner)).value();
  ASSERT_TRUE(accounts_->SetSecret("ml", "K", "v", "user:alice").ok());

  auto again = Open(&*key_);
  EXPECT_EQ(again->ListUsers().size(), 2u);
  EXPECT_EQ(again->ListProjects().size(), 2u);
  EXPECT_EQ(again->ListMembers("ml").size(), 2u);
  EXPECT_EQ(again->Authenticate(tok)->RoleIn("ml"), Role::kOwner);
  EXPECT_EQ(again->Authenticate(admin_token)->RoleIn("ml"), Role::kViewer);
  auto access = again->IssueAccessToken(sa.account.id, sa.client_secret);
  ASSERT_TRUE(access.ok());
  EXPECT_EQ(again->Authenticate(access->access_token)->RoleIn("ml"), Role::kOwner);
  EXPECT_EQ(again->OpenSecretValues("ml", {"K"})->at("K"), "v");
  // Further writes from the restarted service pass the compare-and-set checks.
  EXPECT_TRUE(again->SetMember("ml", "admin", Role::kMember).ok());
  EXPECT_TRUE(again->RemoveMember("ml", "admin").ok());
  EXPECT_TRUE(again->SetSecret("ml", "K", "v2", "user:alice").ok());
  EXPECT_TRUE(again->DeleteServiceAccount("ml", sa.account.id).ok());
}

TEST_F(AccountsTest, FailedStoreWriteLeavesTheCacheUnchanged) {
  AddUser("alice");
  store_.FailNextWrite(Internal("disk full"));
  api::Project p;
  p.name = "ml";
  auto r = accounts_->CreateProject(p, "alice");
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  EXPECT_EQ(accounts_->GetProject("ml").status().code(), ErrorCode::kNotFound);
  EXPECT_TRUE(accounts_->ListMembers("ml").empty());
  EXPECT_TRUE(accounts_->CreateProject(p, "alice").ok());
}

// Every change of accounts writes the request's audit row in the change's own store transaction: a
// transaction that fails writes neither (the row keeps seq 0, so the caller writes a failure row), one
// that commits carries the row (seq filled) together with the records it changed.
TEST_F(AccountsTest, EveryChangeWritesItsAuditRowInTheSameTransaction) {
  AddUser("alice", /*admin=*/true);
  AddUser("bob");
  AddProject("ml", "alice");
  std::string token_id, sa_id;
  const MasterKey next_key = std::move(MasterKey::Generate()).value();
  struct Change {
    std::string what;
    std::string kind;  // record kind the change writes
    std::function<Status(api::AuditRecord*)> run;
  };
  auto status = [](const auto& r) { return r.status(); };
  const std::vector<Change> changes = {
      {"create user", "user",
       [&](api::AuditRecord* a) {
         api::User u;
         u.name = "carol";
         return status(accounts_->CreateUser(u, a));
       }},
      {"update user", "user",
       [&](api::AuditRecord* a) {
         return status(accounts_->UpdateUser("alice", "carol", std::nullopt, std::nullopt, "Carol", a));
       }},
      {"create project", "project",
       [&](api::AuditRecord* a) {
         api::Project p;
         p.name = "web";
         return status(accounts_->CreateProject(p, "bob", a));
       }},
      {"update project", "project",
       [&](api::AuditRecord* a) {
         api::Project p = *accounts_->GetProject("web");
         p.budget.monthly_limit_micro = 5'000'000;
         return status(accounts_->UpdateProject(p, a));
       }},
      {"set role", "member", [&](api::AuditRecord* a) { return accounts_->SetMember("ml", "bob", Role::kMember, a); }},
      {"remove member", "member", [&](api::AuditRecord* a) { return accounts_->RemoveMember("ml", "bob", a); }},
      {"create token", "token",
       [&](api::AuditRecord* a) {
         auto t = accounts_->CreateToken("bob", "ci", 0, a);
         if (t.ok()) token_id = t->record.id;
         return t.status();
       }},
      {"revoke token", "token", [&](api::AuditRecord* a) { return accounts_->RevokeToken(token_id, a); }},
      {"create service account", "sa",
       [&](api::AuditRecord* a) {
         auto sa = accounts_->CreateServiceAccount("ml", "ci", Role::kMember, a);
         if (sa.ok()) sa_id = sa->account.id;
         return sa.status();
       }},
      {"delete service account", "sa",
       [&](api::AuditRecord* a) { return accounts_->DeleteServiceAccount("ml", sa_id, a); }},
      {"put secret", "secret",
       [&](api::AuditRecord* a) { return accounts_->SetSecret("ml", "API_KEY", "hunter2", "user:alice", a); }},
      {"rotate key", "secret",
       [&](api::AuditRecord* a) { return status(accounts_->RotateKey(next_key, a)); }},
      {"delete secret", "secret", [&](api::AuditRecord* a) { return accounts_->DeleteSecret("ml", "API_KEY", a); }},
  };
  for (const Change& c : changes) {
    SCOPED_TRACE(c.what);
    const size_t rows_before = store_.ListAudit(0, 0)->size();
    const std::string records_before = store_.Dump();
    api::AuditRecord failed{.at = clock_.NowMillis(), .actor = "user:alice", .action = c.what, .result = "ok"};
    store_.FailNextWrite(Unavailable("the database is gone"));
    EXPECT_EQ(c.run(&failed).code(), ErrorCode::kUnavailable);
    EXPECT_EQ(failed.seq, 0) << "no row without the change";
    EXPECT_EQ(store_.ListAudit(0, 0)->size(), rows_before);
    EXPECT_EQ(store_.Dump(), records_before) << "no change without the row";

    api::AuditRecord row{.at = clock_.NowMillis(), .actor = "user:alice", .action = c.what, .result = "ok"};
    Status st = c.run(&row);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(row.seq, static_cast<int64_t>(rows_before) + 1);
    auto batch = store_.last_batch();
    ASSERT_TRUE(batch.audit.has_value()) << "the row was written apart from the change";
    EXPECT_EQ(batch.audit->seq, row.seq);
    EXPECT_EQ(batch.audit->action, c.what);
    bool wrote_kind = false;
    for (const auto& w : batch.writes) wrote_kind |= w.kind == c.kind;
    EXPECT_TRUE(wrote_kind) << "the row's transaction did not change any " << c.kind;
    EXPECT_EQ(store_.ListAudit(0, 0)->back().seq, row.seq);
    EXPECT_EQ(api::AuditCanonical(row).find("hunter2"), std::string::npos);
  }
  auto rows = std::move(store_.ListAudit(0, 0)).value();
  ASSERT_EQ(rows.size(), changes.size());
  // The service names what it created, and counts what it re-encrypted.
  EXPECT_EQ(rows[6].target, "token:" + token_id);
  EXPECT_EQ(rows[8].target, "service-account:" + sa_id);
  EXPECT_EQ(rows[11].detail.rfind("rotated 1 secrets to key ", 0), 0u) << rows[11].detail;

  // A change that changes nothing writes no row (the caller writes its own).
  api::AuditRecord noop{.actor = "user:alice", .action = "set role"};
  const int writes = store_.write_calls();
  ASSERT_TRUE(accounts_->SetMember("ml", "alice", Role::kOwner, &noop).ok());
  EXPECT_EQ(noop.seq, 0);
  EXPECT_EQ(store_.write_calls(), writes);
}

// Ledger entries given to CreateProject (a trial credit) are written in the project's own transaction,
// with its records and audit row: all or none.
TEST_F(AccountsTest, CreateProjectPostsItsLedgerEntriesWithItsRecords) {
  AddUser("alice");
  api::LedgerEntry trial{.key = "trial/ml", .at = clock_.NowMillis(), .project = "ml", .kind = "trial_credit",
                         .amount_micro = 10'000'000};
  api::Project p;
  p.name = "ml";
  api::AuditRecord failed{.actor = "user:alice", .action = "POST /v1/projects", .result = "ok"};
  store_.FailNextWrite(Unavailable("the database is gone"));
  EXPECT_EQ(accounts_->CreateProject(p, "alice", &failed, {trial}).status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(failed.seq, 0);
  EXPECT_TRUE(store_.ListLedger({})->empty());
  EXPECT_FALSE(store_.GetRecord("project", "ml")->has_value());
  EXPECT_EQ(accounts_->GetProject("ml").status().code(), ErrorCode::kNotFound);

  // Another process created the project meanwhile: the version check fails, no credit is posted.
  ASSERT_TRUE(store_.WriteRecords({{.kind = "project", .key = "ml", .value = R"({"name":"ml"})"}}).ok());
  api::AuditRecord conflict{.actor = "user:alice", .action = "POST /v1/projects", .result = "ok"};
  EXPECT_EQ(accounts_->CreateProject(p, "alice", &conflict, {trial}).status().code(), ErrorCode::kAlreadyExists);
  EXPECT_EQ(conflict.seq, 0);
  EXPECT_TRUE(store_.ListLedger({})->empty());
  ASSERT_TRUE(store_.WriteRecords({{.kind = "project", .key = "ml", .erase = true}}).ok());
  accounts_ = Open(&*key_);

  api::AuditRecord row{.actor = "user:alice", .action = "POST /v1/projects", .result = "ok"};
  auto created = accounts_->CreateProject(p, "alice", &row, {trial});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(row.seq, 1);
  auto batch = store_.last_batch();
  ASSERT_TRUE(batch.audit.has_value());
  EXPECT_EQ(batch.audit->seq, row.seq);
  ASSERT_EQ(batch.entries.size(), 1u);
  EXPECT_EQ(batch.entries[0].key, "trial/ml");
  bool wrote_project = false;
  for (const auto& w : batch.writes) wrote_project |= w.kind == "project" && w.key == "ml";
  EXPECT_TRUE(wrote_project);
  EXPECT_EQ(store_.ListLedger({})->size(), 1u);
}

TEST_F(AccountsTest, IssuedAccessTokenIsAuditedWithItsRecord) {
  AddUser("alice");
  AddProject("ml", "alice");
  auto sa = accounts_->CreateServiceAccount("ml", "ci", Role::kMember);
  ASSERT_TRUE(sa.ok());
  api::AuditRecord row{.actor = "sa:" + sa->account.id, .action = "POST /oauth/token",
                       .target = "service-account:" + sa->account.id, .result = "ok"};
  ASSERT_TRUE(accounts_->IssueAccessToken(sa->account.id, sa->client_secret, &row).ok());
  EXPECT_EQ(row.seq, 1);
  auto batch = store_.last_batch();
  ASSERT_TRUE(batch.audit.has_value());
  ASSERT_FALSE(batch.writes.empty());
  EXPECT_EQ(batch.writes[0].kind, "token");
  api::AuditRecord wrong{.action = "POST /oauth/token"};
  EXPECT_FALSE(accounts_->IssueAccessToken(sa->account.id, "fgs_wrong", &wrong).ok());
  EXPECT_EQ(wrong.seq, 0);
  EXPECT_EQ(store_.ListAudit(0, 0)->size(), 1u);
}

TEST_F(AccountsTest, ConcurrentWriterIsDetectedAndTheCacheReloaded) {
  AddUser("alice");
  AddUser("bob");
  AddProject("ml", "alice");
  // Another process changes the project behind this one's back.
  auto other = Open(&*key_);
  api::Project p = *other->GetProject("ml");
  p.description = "from the other process";
  ASSERT_TRUE(other->UpdateProject(p).ok());
  ASSERT_TRUE(other->SetMember("ml", "bob", Role::kOwner).ok());

  p.description = "from this process";
  auto r = accounts_->UpdateProject(p);
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("try again"), std::string::npos);
  // Reloaded: sees the other process's writes, and a retry succeeds.
  EXPECT_EQ(accounts_->GetProject("ml")->description, "from the other process");
  EXPECT_EQ(accounts_->ListMembers("ml").size(), 2u);
  EXPECT_TRUE(accounts_->UpdateProject(p).ok());
  // A record created elsewhere is not overwritten.
  api::User carol;
  carol.name = "carol";
  carol.display_name = "first";
  ASSERT_TRUE(other->CreateUser(carol).ok());
  carol.display_name = "second";
  EXPECT_FALSE(accounts_->CreateUser(carol).ok());
  EXPECT_EQ(accounts_->GetUser("carol")->display_name, "first");
}

TEST_F(AccountsTest, MalformedRecordsFailTheLoadWithTheirName) {
  ASSERT_TRUE(store_.WriteRecords({{"user", "alice", R"({"name":"alice","admin":"yes"})"}}).ok());
  auto r = AccountService::Create(store_, clock_, &*key_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  EXPECT_NE(r.status().message().find("alice"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("admin"), std::string::npos) << r.status().message();
}

// Records go through the one strict JSON reader: a key given twice is damage, not "the last one wins".
TEST_F(AccountsTest, RecordsWithDuplicateKeysFailTheLoad) {
  ASSERT_TRUE(store_.WriteRecords({{"user", "bob", R"({"name":"bob","admin":false,"admin":true})"}}).ok());
  auto r = AccountService::Create(store_, clock_, &*key_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  EXPECT_NE(r.status().message().find("stored user record 'bob' has the key 'admin' more than once"),
            std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace fastgpu::auth
