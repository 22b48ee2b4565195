// The authorisation matrix: every route in the route table x every kind of caller x own/other project.
// A route without a request template here fails the test, so no route ships without a checked policy.
#include <gtest/gtest.h>
#include <httplib.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "auth/accounts.h"
#include "common/crypto.h"
#include "server/directory.h"
#include "server/http.h"
#include "server/service.h"
#include "store/store.h"

namespace fastgpu::server {
namespace {

using auth::Action;
using nlohmann::json;

enum class Caller { kAnonymous, kAdmin, kOwner, kMember, kViewer, kStranger };
const char* CallerName(Caller c) {
  switch (c) {
    case Caller::kAnonymous: return "anonymous";
    case Caller::kAdmin: return "admin";
    case Caller::kOwner: return "owner";
    case Caller::kMember: return "member";
    case Caller::kViewer: return "viewer";
    case Caller::kStranger: return "stranger";
  }
  return "?";
}

struct Request {
  std::string method, path, body;
};

class AuthzTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-authz-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    clock_.Set(1'795'000'000'000);
    store_ = std::move(store::OpenSqliteStore(dir_ + "/db")).value();
    key_ = std::move(auth::MasterKey::Generate()).value();
    accounts_ = std::move(auth::AccountService::Create(*store_, clock_, &*key_)).value();
    admin_token_ = std::move(RandomToken()).value();
    ASSERT_TRUE(accounts_->EnsureBootstrap(Sha256Hex(admin_token_)).ok());
    svc_ = std::move(Service::Create(*store_, clock_, {})).value();
    directory_ = std::make_unique<AccountDirectory>(*accounts_);
    svc_->SetProjectDirectory(directory_.get());
    ASSERT_TRUE(svc_->SetBilling(billing::PriceCatalog::Defaults(), {}).ok());
    // Two tenants: "own" (owner/member/viewer) and "other" (its own owner). "stranger" is in neither.
    for (const char* u : {"owner", "member", "viewer", "stranger", "otherowner", "dummy"}) {
      api::User user;
      user.name = u;
      ASSERT_TRUE(accounts_->CreateUser(user).ok()) << u;
    }
    api::Project own, other;
    own.name = "own";
    other.name = "other";
    ASSERT_TRUE(accounts_->CreateProject(own, "owner").ok());
    ASSERT_TRUE(accounts_->CreateProject(other, "otherowner").ok());
    ASSERT_TRUE(accounts_->SetMember("own", "member", api::Role::kMember).ok());
    ASSERT_TRUE(accounts_->SetMember("own", "viewer", api::Role::kViewer).ok());
    tokens_[Caller::kAdmin] = admin_token_;
    tokens_[Caller::kOwner] = Token("owner");
    tokens_[Caller::kMember] = Token("member");
    tokens_[Caller::kViewer] = Token("viewer");
    tokens_[Caller::kStranger] = Token("stranger");
    HttpOptions o;
    o.port = 0;
    o.master_key_path = dir_ + "/master.key";
    o.auth_failures_per_minute = 100000;
    o.blob_dir = dir_ + "/blobs";  // code archives (docs/sync.md)
    ASSERT_TRUE(key_->WriteFile(o.master_key_path).ok());
    http_ = std::make_unique<HttpServer>(*svc_, *accounts_, *store_, clock_, o);
    port_ = std::move(http_->Bind()).value();
    http_->Start();
  }

  void TearDown() override {
    http_.reset();
    svc_.reset();
    accounts_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A fresh server whose failed-authentication limit is `per_minute` (the fixture's is effectively off).
  void RestartWithAuthFailureLimit(int per_minute) {
    http_.reset();
    HttpOptions o;
    o.port = 0;
    o.auth_failures_per_minute = per_minute;
    http_ = std::make_unique<HttpServer>(*svc_, *accounts_, *store_, clock_, o);
    port_ = std::move(http_->Bind()).value();
    http_->Start();
  }

  // A node with one GPU (reservations hold at most the cluster's GPUs), registered once.
  void GpuNode() {
    if (gpu_node_) return;
    agent::NodeRegistration reg;
    reg.node.name = "gpu-node";
    api::Gpu g;
    g.uuid = "SIM-gpu-node-0";
    g.type = "A100-80GB";
    g.memory_total_mib = 81920;
    reg.gpus.push_back(g);
    ASSERT_TRUE(svc_->RegisterNode(reg).ok());
    gpu_node_ = true;
  }

  std::string Token(const std::string& user) { return std::move(accounts_->CreateToken(user, "t", 0)).value().token; }

  std::string Job(const std::string& project) {
    api::JobSpec spec;
    spec.command = {"true"};
    spec.project = project;
    return std::move(svc_->Submit(spec, "owner")).value().id;
  }

  // Objects each request acts on are created fresh, so destructive calls do not disturb later ones.
  Request Build(const RouteInfo& r, const std::string& p) {
    std::string path = r.path;
    auto sub = [&](const std::string& from, const std::string& to) {
      auto at = path.find(from);
      if (at != std::string::npos) path.replace(at, from.size(), to);
    };
    std::string body;
    const std::string key = r.method + " " + r.path;
    std::string owner_of_p = p == "own" ? "owner" : "otherowner";
    sub("{project}", p);
    if (key == "POST /v1/jobs") body = json{{"command", {"true"}}, {"project", p}}.dump();
    if (path.find("{id}") != std::string::npos && r.path.rfind("/v1/jobs", 0) == 0) sub("{id}", Job(p));
    if (key == "DELETE /v1/tokens/{id}") sub("{id}", accounts_->CreateToken(owner_of_p, "x", 0)->record.id);
    if (key == "DELETE /v1/projects/{project}/service-accounts/{id}")
      sub("{id}", accounts_->CreateServiceAccount(p, "ci", api::Role::kMember)->account.id);
    if (r.path.find("/secrets/{name}") != std::string::npos) {
      EXPECT_TRUE(accounts_->SetSecret(p, "S1", "v", "test").ok());
      sub("{name}", "S1");
    }
    if (key == "PUT /v1/projects/{project}/secrets/{name}") body = R"({"value":"x"})";
    if (r.path.find("/blobs/{hash}") != std::string::npos) {
      body = "FGSYNC1\nEND\n";  // an empty code archive, named by its SHA-256
      sub("{hash}", Sha256Hex(body));
    }
    if (r.path.find("/members/{user}") != std::string::npos) {
      EXPECT_TRUE(accounts_->SetMember(p, "dummy", api::Role::kViewer).ok());
      sub("{user}", "dummy");
    }
    if (key == "PUT /v1/projects/{project}/members/{user}") body = R"({"role":"member"})";
    // Per-user routes: "own" targets the caller's own record, "other" somebody else's.
    if (key == "GET /v1/users/{name}") sub("{name}", p == "own" ? "@self" : "dummy");
    if (key == "PATCH /v1/users/{name}") {
      sub("{name}", "dummy");
      body = R"({"display_name":"D"})";
    }
    if (key == "POST /v1/users") body = json{{"name", "u" + std::to_string(++serial_)}}.dump();
    if (r.path.rfind("/v1/nodes/{name}", 0) == 0) {
      agent::NodeRegistration reg;  // a fresh node for each request (remove forgets it)
      reg.node.name = "n" + std::to_string(++serial_);
      EXPECT_TRUE(svc_->RegisterNode(reg).ok());
      sub("{name}", reg.node.name);
    }
    if (key == "POST /v1/node-tokens") body = R"({"ttl":"1h"})";
    if (key == "POST /v1/reservations") {
      GpuNode();
      const UnixMillis start = clock_.NowMillis() + ++serial_ * 7'200'000;  // windows that do not overlap
      body = json{{"project", p}, {"gpus", 1}, {"start_at", start}, {"end_at", start + 3'600'000}}.dump();
    }
    if (key == "DELETE /v1/reservations/{id}") {
      GpuNode();
      api::Reservation res;
      res.project = p;
      res.gpus = 1;
      res.start_at = clock_.NowMillis() + ++serial_ * 7'200'000;
      res.end_at = res.start_at + 3'600'000;
      sub("{id}", std::move(svc_->CreateReservation(res, "user:admin")).value().id);
    }
    if (key == "POST /v1/projects") body = json{{"name", "p" + std::to_string(++serial_)}, {"owner", "dummy"}}.dump();
    if (key == "PATCH /v1/projects/{project}") body = R"({"description":"d"})";
    if (key == "POST /v1/tokens") body = R"({"name":"n"})";
    if (key == "POST /v1/projects/{project}/service-accounts") body = R"({"name":"ci"})";
    if (key == "POST /v1/prices") body = R"({"gpu_type":"A10","price":"1.00"})";
    if (key == "POST /v1/projects/{project}/credits") body = R"({"kind":"adjustment","amount":"5.00"})";
    if (key == "GET /v1/jobs/{id}/wait") path += "?timeout=0s";
    // Exec: the jobs built here are QUEUED (opening is refused with 409 after authorisation); a session route names
    // a session nobody opened (404 "no exec session" after authorisation, told apart by its message).
    if (key == "POST /v1/jobs/{id}/exec") body = R"({"command":["true"]})";
    sub("{session}", "x-0000000000000000");
    if (key == "GET /v1/jobs/{id}/exec/{session}/output") path += "?timeout_ms=0";
    if (key == "POST /v1/jobs/{id}/exec/{session}/input") body = R"({"offset":0})";
    if (key == "GET /v1/usage" || key == "GET /v1/jobs" || key == "GET /v1/reservations") path += "?project=" + p;
    if (key == "POST /oauth/token") {
      auto sa = accounts_->CreateServiceAccount(p, "ci", api::Role::kMember);
      body = json{{"grant_type", "client_credentials"}, {"client_id", sa->account.id},
                  {"client_secret", sa->client_secret}}.dump();
    }
    return {r.method, path, body};
  }

  // The rule each route must follow, for routes whose handler authorises (Scope::kInHandler).
  static Action EffectiveAction(const RouteInfo& r) {
    const std::string key = r.method + " " + r.path;
    if (key == "POST /v1/jobs") return Action::kProjectWrite;
    if (key == "GET /v1/jobs" || key == "GET /v1/usage" || key == "GET /v1/reservations")
      return Action::kProjectRead;  // ?project= given
    return r.action;
  }

  // Expected class of outcome: 2xx-ish ("ok"), 401, 403 or 404.
  std::string Expected(const RouteInfo& r, Caller c, const std::string& p) {
    const std::string key = r.method + " " + r.path;
    Action a = EffectiveAction(r);
    if (a == Action::kPublic) return "ok";
    if (c == Caller::kAnonymous) return "401";
    if (c == Caller::kAdmin) return "ok";
    if (key == "GET /v1/users/{name}") return p == "own" ? "ok" : "404";  // yourself only
    if (key == "DELETE /v1/tokens/{id}") return p == "own" && c == Caller::kOwner ? "ok" : "404";
    if (a == Action::kAuthenticated) return "ok";
    std::optional<api::Role> role;
    if (p == "own" && c == Caller::kOwner) role = api::Role::kOwner;
    if (p == "own" && c == Caller::kMember) role = api::Role::kMember;
    if (p == "own" && c == Caller::kViewer) role = api::Role::kViewer;
    if (a == Action::kAdmin) return r.scope == Scope::kPathProject && !role ? "404" : "403";
    if (!role) return "404";
    api::Role need = a == Action::kProjectRead ? api::Role::kViewer
                     : a == Action::kProjectWrite ? api::Role::kMember
                                                  : api::Role::kOwner;
    return static_cast<int>(*role) >= static_cast<int>(need) ? "ok" : "403";
  }

  int Send(const Request& rq, Caller c, std::string* body_out = nullptr) {
    httplib::Client cli("127.0.0.1", port_);
    httplib::Headers h;
    if (c != Caller::kAnonymous) h.emplace("Authorization", "Bearer " + tokens_[c]);
    std::string path = rq.path;
    if (auto at = path.find("@self"); at != std::string::npos) {
      const char* names[] = {"someone", "admin", "owner", "member", "viewer", "stranger"};
      path.replace(at, 5, names[static_cast<int>(c)]);
    }
    auto send = [&]() -> httplib::Result {
      if (rq.method == "GET") return cli.Get(path, h);
      if (rq.method == "POST") return cli.Post(path, h, rq.body, "application/json");
      if (rq.method == "PUT") return cli.Put(path, h, rq.body, "application/json");
      if (rq.method == "PATCH") return cli.Patch(path, h, rq.body, "application/json");
      return cli.Delete(path, h);
    };
    auto res = send();
    if (res && body_out != nullptr) *body_out = res->body;
    return res ? res->status : -1;
  }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::optional<auth::MasterKey> key_;
  std::unique_ptr<auth::AccountService> accounts_;
  std::unique_ptr<Service> svc_;
  std::unique_ptr<AccountDirectory> directory_;
  std::unique_ptr<HttpServer> http_;
  std::string admin_token_;
  std::map<Caller, std::string> tokens_;
  int port_ = 0;
  int serial_ = 0;
  bool gpu_node_ = false;
};

TEST_F(AuthzTest, EveryRouteEveryCallerOwnAndOtherProject) {
  int checked = 0;
  for (const auto& r : Routes()) {
    for (const std::string p : {"own", "other"}) {
      for (Caller c : {Caller::kAnonymous, Caller::kAdmin, Caller::kOwner, Caller::kMember, Caller::kViewer,
                       Caller::kStranger}) {
        Request rq = Build(r, p);
        std::string body;
        int status = Send(rq, c, &body);
        if (r.path == "/v1/jobs/{id}/exec" && status == 409) status = 200;
        if (r.path.find("/exec/{session}") != std::string::npos && status == 404 &&
            body.find("no exec session") != std::string::npos)
          status = 200;
        // The jobs built here are QUEUED: a migrate that passed authorisation is refused with 409 (not running).
        if (r.method == "POST" && r.path == "/v1/jobs/{id}/migrate" && status == 409) status = 200;
        // Likewise the files of a job that has not been placed on a node yet.
        if (r.path == "/v1/jobs/{id}/files" && status == 409) status = 200;
        std::string want = Expected(r, c, p);
        std::string got = status == 401 ? "401" : status == 403 ? "403" : status == 404 ? "404" : "ok";
        if (want == "ok") {
          EXPECT_TRUE(status >= 200 && status < 400)
              << r.method << " " << r.path << " as " << CallerName(c) << " on " << p << ": HTTP " << status;
        } else {
          EXPECT_EQ(got, want) << r.method << " " << r.path << " as " << CallerName(c) << " on " << p << ": HTTP "
                               << status;
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, static_cast<int>(Routes().size()) * 12);
}

TEST_F(AuthzTest, CrossTenantJobReadsLookLikeMissingJobs) {
  std::string theirs = Job("other");
  httplib::Client cli("127.0.0.1", port_);
  httplib::Headers h{{"Authorization", "Bearer " + tokens_[Caller::kOwner]}};
  auto existing = cli.Get("/v1/jobs/" + theirs, h);
  auto missing = cli.Get("/v1/jobs/j-999999", h);
  ASSERT_TRUE(existing && missing);
  EXPECT_EQ(existing->status, 404);
  EXPECT_EQ(missing->status, 404);
  // Listing never shows the other tenant's jobs.
  auto list = cli.Get("/v1/jobs", h);
  ASSERT_TRUE(list);
  EXPECT_EQ(list->body.find(theirs + "\""), std::string::npos);
}

// Issue 11: 21 bad tokens from a job on 127.0.0.1 locked the admin and every user out for 60 s. Failed
// attempts are limited per (address, presented token) and per address, and a valid token is never refused.
TEST_F(AuthzTest, BadTokensFromOneAddressNeverLockOutValidTokens) {
  RestartWithAuthFailureLimit(20);
  httplib::Client cli("127.0.0.1", port_);
  const httplib::Headers admin{{"Authorization", "Bearer " + admin_token_}};
  const httplib::Headers member{{"Authorization", "Bearer " + tokens_[Caller::kMember]}};
  // Every other attempt repeats one wrong guess; the rest are new random tokens each time.
  const std::string guess = "fgp_" + std::string(64, 'a');
  std::vector<int> statuses;
  for (int i = 0; i < 100; ++i) {
    const std::string bad = i % 2 == 0 ? guess : std::move(RandomToken()).value();
    auto r = cli.Get("/v1/gpus", httplib::Headers{{"Authorization", "Bearer " + bad}});
    ASSERT_TRUE(r);
    statuses.push_back(r->status);
    if (r->status == 429) {
      EXPECT_FALSE(r->get_header_value("Retry-After").empty());
      EXPECT_NE(r->body.find("too many failed authentication attempts"), std::string::npos) << r->body;
    } else {
      EXPECT_EQ(r->status, 401) << i;
    }
    if (i % 10 == 9) {
      EXPECT_EQ(cli.Get("/v1/gpus", admin)->status, 200) << "admin locked out after " << i + 1 << " bad tokens";
      EXPECT_EQ(cli.Get("/v1/jobs?project=own", member)->status, 200) << "member locked out after " << i + 1;
    }
  }
  // The repeated guess is limited after 20 failures; the address as a whole after 3 x 20.
  for (int i = 0; i < 40; ++i) EXPECT_EQ(statuses[i], 401) << i;
  EXPECT_EQ(statuses[42], 429);
  for (int i = 60; i < 100; ++i) EXPECT_EQ(statuses[i], 429) << i;
  // A missing token counts like a bad one.
  EXPECT_EQ(cli.Get("/v1/gpus")->status, 429);
  // Valid tokens still work, also brand-new ones, and a window later the address starts afresh.
  EXPECT_EQ(cli.Get("/v1/whoami", httplib::Headers{{"Authorization", "Bearer " + Token("viewer")}})->status, 200);
  clock_.Advance(std::chrono::milliseconds(61'000));
  EXPECT_EQ(cli.Get("/v1/gpus", httplib::Headers{{"Authorization", "Bearer " + guess}})->status, 401);
}

TEST_F(AuthzTest, BadClientSecretsNeverLockOutTheServiceAccount) {
  RestartWithAuthFailureLimit(20);
  auto sa = accounts_->CreateServiceAccount("own", "ci", api::Role::kMember);
  ASSERT_TRUE(sa.ok()) << sa.status().ToString();
  httplib::Client cli("127.0.0.1", port_);
  auto exchange = [&](const std::string& secret) {
    return cli.Post("/oauth/token",
                    json{{"grant_type", "client_credentials"}, {"client_id", sa->account.id},
                         {"client_secret", secret}}.dump(),
                    "application/json");
  };
  int limited = 0;
  for (int i = 0; i < 100; ++i) {
    auto r = exchange("fgs_wrong" + std::to_string(i));
    ASSERT_TRUE(r);
    if (r->status == 429) {
      ++limited;
      EXPECT_FALSE(r->get_header_value("Retry-After").empty());
      EXPECT_NE(r->body.find("slow_down"), std::string::npos);
    } else {
      EXPECT_EQ(r->status, 401);
      EXPECT_EQ(limited, 0) << "once limited, stays limited in the window";
    }
  }
  EXPECT_EQ(limited, 80);
  auto ok = exchange(sa->client_secret);
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(cli.Get("/v1/gpus", httplib::Headers{{"Authorization", "Bearer " + admin_token_}})->status, 200);
}

TEST_F(AuthzTest, TheAuthSchemeWordIsCaseInsensitive) {
  httplib::Client cli("127.0.0.1", port_);
  for (const char* scheme : {"Bearer ", "bearer ", "BEARER ", "bEaReR   "}) {
    auto r = cli.Get("/v1/whoami", httplib::Headers{{"Authorization", scheme + admin_token_}});
    EXPECT_EQ(r->status, 200) << scheme;
  }
  for (const std::string& header : {"Basic " + admin_token_, "Bearer" + admin_token_, admin_token_}) {
    auto r = cli.Get("/v1/whoami", httplib::Headers{{"Authorization", header}});
    EXPECT_EQ(r->status, 401) << header;
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
  }
}

TEST_F(AuthzTest, DuplicateJsonKeysAndNulBytesAreRefused) {
  httplib::Client cli("127.0.0.1", port_);
  const httplib::Headers owner{{"Authorization", "Bearer " + tokens_[Caller::kOwner]}};
  auto message = [](const httplib::Result& r) { return json::parse(r->body)["error"]["message"].get<std::string>(); };
  // Which project would this job be in? Neither: 400.
  auto job = cli.Post("/v1/jobs", owner, R"({"command":["true"],"project":"own","project":"other"})",
                      "application/json");
  EXPECT_EQ(job->status, 400);
  EXPECT_NE(message(job).find("'project' more than once"), std::string::npos) << job->body;
  // Bodies read through ObjectBody too.
  auto member = cli.Put("/v1/projects/own/members/dummy", owner, R"({"role":"viewer","role":"owner"})",
                        "application/json");
  EXPECT_EQ(member->status, 400);
  EXPECT_NE(message(member).find("'role' more than once"), std::string::npos) << member->body;
  EXPECT_FALSE(accounts_->ListMembers("own").empty());
  for (const auto& m : accounts_->ListMembers("own")) EXPECT_NE(m.user, "dummy");
  // And the OAuth token endpoint.
  auto oauth = cli.Post("/oauth/token",
                        R"({"grant_type":"client_credentials","client_id":"sa-000000000000","client_id":"sa-1"})",
                        "application/json");
  EXPECT_EQ(oauth->status, 400);
  EXPECT_NE(oauth->body.find("invalid_request"), std::string::npos);
  // NUL bytes in a job's name or workdir.
  for (const char* body : {R"({"command":["true"],"project":"own","name":"a\u0000b"})",
                           R"({"command":["true"],"project":"own","workdir":"/tmp/a\u0000/etc"})"}) {
    auto r = cli.Post("/v1/jobs", owner, body, "application/json");
    EXPECT_EQ(r->status, 400) << body;
    EXPECT_NE(message(r).find("contains a NUL byte"), std::string::npos) << r->body;
  }
}

// A service account never hands out more than it holds: no user tokens, no service accounts, no roles.
TEST_F(AuthzTest, ServiceAccountsCannotCreateCredentialsOrGrantRoles) {
  auto owner_sa = accounts_->CreateServiceAccount("own", "deployer", api::Role::kOwner);
  auto member_sa = accounts_->CreateServiceAccount("own", "ci", api::Role::kMember);
  ASSERT_TRUE(owner_sa.ok() && member_sa.ok());
  httplib::Client cli("127.0.0.1", port_);
  auto bearer = [&](const auth::CreatedServiceAccount& sa) {
    auto r = cli.Post("/oauth/token",
                      json{{"grant_type", "client_credentials"}, {"client_id", sa.account.id},
                           {"client_secret", sa.client_secret}}.dump(),
                      "application/json");
    EXPECT_EQ(r->status, 200) << r->body;
    return httplib::Headers{{"Authorization", "Bearer " + json::parse(r->body)["access_token"].get<std::string>()}};
  };
  const httplib::Headers h = bearer(*owner_sa);
  const auto tokens_before = accounts_->ListTokens("").size();
  const auto members_before = accounts_->ListMembers("own").size();
  auto status = [](const httplib::Result& r) { return r ? r->status : -1; };
  // No long-lived user token, for itself or for anybody else.
  EXPECT_EQ(status(cli.Post("/v1/tokens", h, R"({"name":"x"})", "application/json")), 403);
  EXPECT_EQ(status(cli.Post("/v1/tokens", h, R"({"name":"x","user":"admin"})", "application/json")), 403);
  EXPECT_EQ(status(cli.Post("/v1/tokens", h, R"({"name":"x","user":"owner","expires_in":"366d"})",
                            "application/json")),
            403);
  // No service account, whatever the role, in its project or another one.
  for (const char* role : {"owner", "member", "viewer"}) {
    auto r = cli.Post("/v1/projects/own/service-accounts", h, json{{"name", "x"}, {"role", role}}.dump(),
                      "application/json");
    EXPECT_EQ(status(r), 403) << role;
    EXPECT_NE(r->body.find("service accounts may not create service accounts"), std::string::npos) << r->body;
  }
  EXPECT_EQ(status(cli.Post("/v1/projects/other/service-accounts", h, R"({"name":"x","role":"owner"})",
                            "application/json")),
            404);
  EXPECT_EQ(status(cli.Post("/v1/projects/own/service-accounts", bearer(*member_sa), R"({"name":"x","role":"owner"})",
                            "application/json")),
            403);
  EXPECT_EQ(status(cli.Delete("/v1/projects/own/service-accounts/" + member_sa->account.id, h)), 403);
  // No roles for people either.
  EXPECT_EQ(status(cli.Put("/v1/projects/own/members/stranger", h, R"({"role":"viewer"})", "application/json")), 403);
  EXPECT_EQ(status(cli.Put("/v1/projects/own/members/member", h, R"({"role":"owner"})", "application/json")), 403);
  EXPECT_EQ(status(cli.Delete("/v1/projects/own/members/member", h)), 403);
  EXPECT_EQ(accounts_->ListServiceAccounts("own").size(), 2u);
  EXPECT_EQ(accounts_->ListMembers("own").size(), members_before);
  EXPECT_EQ(accounts_->ListTokens("").size(), tokens_before + 1);  // the member SA's access token above
  // It still does its job: project settings, and giving up its own access token.
  EXPECT_EQ(status(cli.Patch("/v1/projects/own", h, R"({"description":"deployed"})", "application/json")), 200);
  auto mine = json::parse(cli.Get("/v1/tokens", h)->body)["tokens"];
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(status(cli.Delete("/v1/tokens/" + mine[0]["id"].get<std::string>(), h)), 204);
  EXPECT_EQ(status(cli.Get("/v1/projects/own", h)), 401);
  // People who are owners still manage identities.
  const httplib::Headers owner{{"Authorization", "Bearer " + tokens_[Caller::kOwner]}};
  EXPECT_EQ(status(cli.Post("/v1/projects/own/service-accounts", owner, R"({"name":"x","role":"owner"})",
                            "application/json")),
            201);
}

TEST_F(AuthzTest, StateChangesAndFailedLoginsAreAuditedWithoutSecretValues) {
  httplib::Client cli("127.0.0.1", port_);
  httplib::Headers h{{"Authorization", "Bearer " + tokens_[Caller::kMember]}};
  ASSERT_EQ(cli.Put("/v1/projects/own/secrets/API_KEY", h, R"({"value":"hunter2-secret"})", "application/json")->status,
            200);
  EXPECT_EQ(cli.Get("/v1/gpus", httplib::Headers{{"Authorization", "Bearer nope"}})->status, 401);
  auto rows = std::move(store_->ListAudit(0, 0)).value();
  bool saw_secret = false, saw_failure = false;
  for (const auto& r : rows) {
    EXPECT_EQ(api::AuditCanonical(r).find("hunter2"), std::string::npos);
    saw_secret |= r.target == "secret:own/API_KEY" && r.actor == "user:member" && r.result == "ok";
    saw_failure |= r.actor == "anonymous" && r.result == "unauthenticated";
  }
  EXPECT_TRUE(saw_secret);
  EXPECT_TRUE(saw_failure);
}

TEST_F(AuthzTest, ReservationsAreAdminMadeAuditedCheckedAndListedPerProject) {
  GpuNode();
  httplib::Client cli("127.0.0.1", port_);
  httplib::Headers admin{{"Authorization", "Bearer " + admin_token_}};
  httplib::Headers member{{"Authorization", "Bearer " + tokens_[Caller::kMember]}};
  const UnixMillis now = clock_.NowMillis();
  auto post = [&](const json& body) { return cli.Post("/v1/reservations", admin, body.dump(), "application/json"); };
  // RFC 3339 or Unix ms.
  auto own = post({{"project", "own"}, {"gpus", 1}, {"start_at", FormatTimestamp(now + 3'600'000)},
                   {"end_at", now + 7'200'000}, {"name", "demo"}});
  ASSERT_EQ(own->status, 201) << own->body;
  auto created = json::parse(own->body);
  EXPECT_EQ(created["id"], "r-1");
  EXPECT_EQ(created["state"], "upcoming");
  EXPECT_EQ(created["start_at_ms"], now + 3'600'000);
  ASSERT_EQ(post({{"project", "other"}, {"gpus", 1}, {"start_at", now + 7'200'000}, {"end_at", now + 9'000'000}})->status,
            201);
  // Clear errors, nothing written.
  auto overlap = post({{"project", "other"}, {"gpus", 1}, {"start_at", now}, {"end_at", now + 4'000'000}});
  EXPECT_EQ(overlap->status, 409);
  EXPECT_NE(overlap->body.find("r-1 (project own"), std::string::npos) << overlap->body;
  EXPECT_EQ(post({{"project", "nope"}, {"gpus", 1}, {"start_at", now}, {"end_at", now + 1000}})->status, 404);
  EXPECT_EQ(post({{"project", "own"}, {"gpus", 2}, {"start_at", now}, {"end_at", now + 1000}})->status, 422);
  EXPECT_EQ(post({{"project", "own"}, {"gpus", 1}, {"start_at", now}, {"end_at", now}})->status, 400);
  EXPECT_EQ(post({{"project", "own"}, {"gpus", 1}, {"start_at", "tomorrow"}, {"end_at", now}})->status, 400);
  EXPECT_EQ(post({{"project", "own"}, {"gpus", 1}, {"start_at", now}, {"end_at", now + 1000}, {"x", 1}})->status, 400);
  // A member lists its project's only; an admin all.
  auto mine = json::parse(cli.Get("/v1/reservations", member)->body)["reservations"];
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0]["project"], "own");
  EXPECT_EQ(json::parse(cli.Get("/v1/reservations", admin)->body)["reservations"].size(), 2u);
  EXPECT_EQ(cli.Delete("/v1/reservations/r-1", member)->status, 403);
  EXPECT_EQ(cli.Delete("/v1/reservations/r-1", admin)->status, 200);
  EXPECT_EQ(cli.Delete("/v1/reservations/r-1", admin)->status, 404);
  // Audited: the create and the delete in their own transactions, the refusals after them.
  bool saw_create = false, saw_delete = false, saw_refused = false;
  auto rows = std::move(store_->ListAudit(0, 0)).value();
  for (const auto& r : rows) {
    saw_create |= r.action == "POST /v1/reservations" && r.target == "reservation:r-1" && r.result == "ok";
    saw_delete |= r.action == "DELETE /v1/reservations/{id}" && r.target == "reservation:r-1" && r.result == "ok";
    saw_refused |= r.action == "POST /v1/reservations" && r.result == "failed_precondition";
  }
  EXPECT_TRUE(saw_create);
  EXPECT_TRUE(saw_delete);
  EXPECT_TRUE(saw_refused);
  // In the OpenAPI document.
  auto doc = json::parse(cli.Get("/v1/openapi.json")->body);
  EXPECT_TRUE(doc["paths"]["/v1/reservations"].contains("post"));
  EXPECT_TRUE(doc["components"]["schemas"].contains("Reservation"));
}

TEST_F(AuthzTest, ServiceAccountExchangesClientCredentialsForAProjectScopedToken) {
  auto sa = accounts_->CreateServiceAccount("own", "ci", api::Role::kMember);
  ASSERT_TRUE(sa.ok()) << sa.status().ToString();
  httplib::Client cli("127.0.0.1", port_);
  auto bad = cli.Post("/oauth/token",
                      json{{"grant_type", "client_credentials"}, {"client_id", sa->account.id},
                           {"client_secret", "fgs_wrong"}}.dump(),
                      "application/json");
  EXPECT_EQ(bad->status, 401);
  auto ok = cli.Post("/oauth/token",
                     json{{"grant_type", "client_credentials"}, {"client_id", sa->account.id},
                          {"client_secret", sa->client_secret}}.dump(),
                     "application/json");
  ASSERT_EQ(ok->status, 200) << ok->body;
  auto body = json::parse(ok->body);
  EXPECT_EQ(body["token_type"], "Bearer");
  EXPECT_EQ(body["expires_in"], 3600);
  httplib::Headers h{{"Authorization", "Bearer " + body["access_token"].get<std::string>()}};
  EXPECT_EQ(cli.Get("/v1/jobs?project=own", h)->status, 200);
  EXPECT_EQ(cli.Get("/v1/jobs?project=other", h)->status, 404);
  EXPECT_EQ(cli.Get("/v1/users", h)->status, 403);
  // The access token expires.
  clock_.Advance(std::chrono::seconds(3601));
  EXPECT_EQ(cli.Get("/v1/jobs?project=own", h)->status, 401);
}

TEST_F(AuthzTest, AuditVerifyDetectsDeletedRowsInTheMiddleAndAtTheEnd) {
  httplib::Client cli("127.0.0.1", port_);
  httplib::Headers admin{{"Authorization", "Bearer " + tokens_[Caller::kAdmin]}};
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(cli.Post("/v1/users", admin, json{{"name", "audited" + std::to_string(i)}}.dump(), "application/json")
                  ->status,
              201);
  auto verify = [&] { return json::parse(cli.Get("/v1/audit/verify", admin)->body); };
  EXPECT_TRUE(verify()["ok"].get<bool>()) << verify().dump();
  int64_t last = std::move(store_->ListAudit(0, 0)).value().back().seq;
  auto exec = [&](const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ + "/db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  };
  // The newest row disappears: the server remembers the last seq it wrote.
  exec("DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE seq = " + std::to_string(last));
  auto report = verify();
  EXPECT_FALSE(report["ok"].get<bool>()) << report.dump();
  EXPECT_EQ(report["first_bad_seq"], last);
  // A row in the middle disappears: a gap in the chain.
  exec("DELETE FROM audit WHERE seq = 2");
  report = verify();
  EXPECT_FALSE(report["ok"].get<bool>());
  EXPECT_EQ(report["first_bad_seq"], 2) << report.dump();
}

TEST_F(AuthzTest, InvalidUtf8InPathsAndQueriesGetsAJsonErrorNotACrash) {
  httplib::Client cli("127.0.0.1", port_);
  httplib::Headers admin{{"Authorization", "Bearer " + tokens_[Caller::kAdmin]}};
  for (const char* path : {"/v1/jobs/j-%FF", "/v1/no-such-route/%FF%FE", "/v1/projects/%E9x", "/v1/jobs?project=%FF"}) {
    for (const auto& h : {admin, httplib::Headers{}}) {
      auto r = cli.Get(path, h);
      ASSERT_TRUE(r) << path << ": the server must answer";
      EXPECT_TRUE(r->status == 200 || r->status >= 400) << path << ": " << r->status;
      EXPECT_FALSE(json::parse(r->body, nullptr, false).is_discarded()) << path << ": " << r->body;
    }
  }
  EXPECT_EQ(cli.Get("/healthz")->status, 200);
}

TEST_F(AuthzTest, HostileInputToPublicAndAdminRoutesIsBounded) {
  httplib::Client cli("127.0.0.1", port_);
  // A huge client_id is refused without landing in the audit log.
  std::string huge(100'000, 'a');
  auto r = cli.Post("/oauth/token",
                    json{{"grant_type", "client_credentials"}, {"client_id", huge}, {"client_secret", "x"}}.dump(),
                    "application/json");
  EXPECT_EQ(r->status, 401);
  r = cli.Post("/oauth/token", R"({"grant_type":5,"client_id":[1]})", "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
  auto rows = store_->ListAudit(0, 0);
  ASSERT_TRUE(rows.ok());
  for (const auto& row : *rows) EXPECT_LT(api::AuditCanonical(row).size(), 2000u);
  httplib::Headers admin{{"Authorization", "Bearer " + tokens_[Caller::kAdmin]}};
  // Prices change from now on, never retroactively; absurd prices and quotas are refused.
  r = cli.Post("/v1/prices", admin, R"({"gpu_type":"A10","price":"1.00","effective_from":"2020-01-01T00:00:00Z"})",
               "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
  r = cli.Post("/v1/prices", admin, R"({"gpu_type":"A10","price":"99999999"})", "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
  r = cli.Patch("/v1/projects/own", admin, R"({"quota":{"max_gpu_hours_per_month":99999999999}})", "application/json");
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(cli.Get("/v1/audit?after=99999999999999999999", admin)->status, 400);
}

TEST_F(AuthzTest, GpuListingsHideOtherTenantsJobs) {
  agent::NodeRegistration reg;
  reg.node.name = "n1";
  api::Gpu g;
  g.uuid = "SIM-0";
  g.type = "A100-80GB";
  g.memory_total_mib = 81920;
  reg.gpus.push_back(g);
  ASSERT_TRUE(svc_->RegisterNode(reg).ok());
  api::JobSpec spec;
  spec.command = {"true"};
  spec.project = "own";
  auto job = svc_->Submit(spec, "owner");
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  svc_->ScheduleOnce();
  httplib::Client cli("127.0.0.1", port_);
  auto jobs_on_gpu = [&](Caller c) {
    auto r = cli.Get("/v1/gpus", httplib::Headers{{"Authorization", "Bearer " + tokens_[c]}});
    return json::parse(r->body)["gpus"][0]["jobs"].size();
  };
  EXPECT_EQ(jobs_on_gpu(Caller::kMember), 1u);
  EXPECT_EQ(jobs_on_gpu(Caller::kAdmin), 1u);
  EXPECT_EQ(jobs_on_gpu(Caller::kStranger), 0u);
}

}  // namespace
}  // namespace fastgpu::server
