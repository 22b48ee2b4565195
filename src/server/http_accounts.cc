// HTTP handlers: identity (OAuth2, whoami, users, projects, members, tokens, service accounts),
// secrets and the audit log. Authorisation is done by HttpServer::Serve from the route table;
// handlers add per-object rules (yourself, admin-only fields).
#include <nlohmann/json.hpp>

#include "api/accounts_json.h"
#include "api/json.h"
#include "auth/audit.h"
#include "common/file_util.h"
#include "server/http_audit.h"
#include "server/http_internal.h"

namespace fastgpu::server {

using nlohmann::json;
using auth::Action;

namespace {

json Array(const char* key, json arr) { return json{{key, std::move(arr)}}; }

template <typename T>
json ToArray(const std::vector<T>& items) {
  json arr = json::array();
  for (const auto& i : items) arr.push_back(api::ToJson(i));
  return arr;
}

// OAuth2 (RFC 6749 section 5.2) error body.
void OAuthError(Response& res, int status, const std::string& error, const std::string& description) {
  SendJson(res, {{"error", error}, {"error_description", description}}, status);
}

Result<api::Quota> QuotaFrom(const json& j, api::Quota q) {
  if (!j.is_object()) return InvalidArgument("field 'quota' must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "max_gpus") {
      if (!it->is_object()) return InvalidArgument("field 'quota.max_gpus' must be an object of GPU type -> count");
      q.max_gpus_milli.clear();
      for (auto g = it->begin(); g != it->end(); ++g) {
        std::string text = g->is_string() ? g->get<std::string>() : g->is_number() ? g->dump() : "";
        auto m = ParseMilliGpu(text);
        if (!m.ok()) return InvalidArgument("quota.max_gpus['" + g.key() + "']: " + m.status().message());
        q.max_gpus_milli[g.key()] = *m;
      }
    } else if (it.key() == "max_gpu_hours_per_month" || it.key() == "max_queued_jobs") {
      if (!it->is_number_integer() || it->get<int64_t>() < 0)
        return InvalidArgument("field 'quota." + it.key() + "' must be a non-negative integer (0 = unlimited)");
      (it.key() == "max_queued_jobs" ? q.max_queued_jobs : q.max_gpu_hours_per_month) = it->get<int64_t>();
    } else if (it.key() != "max_gpus_milli") {
      return InvalidArgument("unknown field 'quota." + it.key() +
                             "' (known: max_gpus, max_gpu_hours_per_month, max_queued_jobs)");
    }
  }
  return q;
}

Result<api::Budget> BudgetFrom(const json& j, api::Budget b) {
  if (!j.is_object()) return InvalidArgument("field 'budget' must be an object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "monthly_limit" && it.key() != "monthly_limit_micro" && it.key() != "hard")
      return InvalidArgument("unknown field 'budget." + it.key() + "' (known: monthly_limit, monthly_limit_micro, hard)");
  ASSIGN_OR_RETURN(auto limit, OptMoney(j, "monthly_limit"));
  if (limit) {
    if (*limit < 0) return InvalidArgument("budget.monthly_limit must not be negative");
    b.monthly_limit_micro = *limit;
  }
  ASSIGN_OR_RETURN(auto hard, OptBool(j, "hard"));
  if (hard) b.hard = *hard;
  return b;
}

}  // namespace

void HttpServer::InstallAccounts() {
  Add("POST", "/oauth/token", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    std::string grant, id, secret;
    if (req.get_header_value("Content-Type").rfind("application/json", 0) == 0) {
      auto parsed = api::ParseJson(req.body, "request body");
      if (!parsed.ok()) return OAuthError(ctx.res, 400, "invalid_request", parsed.status().message());
      const json& j = *parsed;
      if (!j.is_object()) return OAuthError(ctx.res, 400, "invalid_request", "body is not a JSON object");
      auto text = [&](const char* f) {
        auto it = j.find(f);
        return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
      };
      grant = text("grant_type");
      id = text("client_id");
      secret = text("client_secret");
    } else {
      // RFC 6749 section 3.2: parameters must not be given more than once.
      for (const char* f : {"grant_type", "client_id", "client_secret"}) {
        if (req.params.count(f) > 1)
          return OAuthError(ctx.res, 400, "invalid_request", std::string("parameter '") + f + "' is given more than once");
      }
      grant = Param(req, "grant_type");
      id = Param(req, "client_id");
      secret = Param(req, "client_secret");
    }
    // Only a well-formed id ("sa-" + 12 hex) goes into the audit row: the body is the caller's.
    const bool id_ok = id.size() == 15 && id.rfind("sa-", 0) == 0 &&
                       id.find_first_not_of("0123456789abcdef", 3) == std::string::npos;
    ctx.audit_actor = id_ok ? "sa:" + id : "anonymous";
    ctx.audit_target = id_ok ? "service-account:" + id : "service-account:(invalid id)";
    // Failures are counted per (source, claimed client id) and per source, after the credentials were
    // checked: valid credentials are never refused, whoever else shares the caller's address.
    auto limited = [&] {
      const int64_t wait = limiter_.RecordFailure(req.remote_addr, id_ok ? id : auth::CredentialId(id),
                                                  clock_.NowMillis());
      if (wait <= 0) return false;
      const std::string secs = std::to_string((wait + 999) / 1000);
      ctx.res.set_header("Retry-After", secs);
      OAuthError(ctx.res, 429, "slow_down", "too many failed attempts; try again in " + secs + " s");
      return true;
    };
    if (grant != "client_credentials") {
      if (limited()) return;
      return OAuthError(ctx.res, 400, "unsupported_grant_type", "only grant_type=client_credentials is supported");
    }
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    auto tok = id_ok ? accounts_.IssueAccessToken(id, secret, &row)
                     : Result<auth::AccessToken>(Unauthenticated("bad id"));
    if (!tok.ok()) {
      if (limited()) return;
      return OAuthError(ctx.res, 401, "invalid_client", "unknown client_id or wrong client_secret");
    }
    NoteChangeAudited(ctx, row);
    ctx.res.set_header("Cache-Control", "no-store");
    SendJson(ctx.res, {{"access_token", tok->access_token}, {"token_type", "Bearer"}, {"expires_in", tok->expires_in_s}});
  });

  Add("GET", "/v1/whoami", [](Ctx& ctx) {
    const auto& p = ctx.principal;
    json projects = json::array();
    for (const auto& [name, role] : p.roles) projects.push_back({{"project", name}, {"role", api::RoleName(role)}});
    SendJson(ctx.res, {{"user", p.user},
                       {"admin", p.admin},
                       {"service_account", p.service_account},
                       {"token_id", p.token_id},
                       {"projects", projects}});
  });

  // ---- Users
  Add("POST", "/v1/users", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"name", "display_name", "admin"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    api::User u;
    auto name = OptString(*body, "name");
    auto display = OptString(*body, "display_name");
    auto admin = OptBool(*body, "admin");
    for (const Status& st : {name.status(), display.status(), admin.status()})
      if (!st.ok()) return SendError(ctx.res, st);
    if (!*name) return SendError(ctx.res, InvalidArgument("field 'name' is required"));
    u.name = **name;
    u.display_name = display->value_or("");
    u.admin = admin->value_or(false);
    ctx.audit_target = "user:" + u.name;
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    auto created = accounts_.CreateUser(u, &row);
    if (!created.ok()) return SendError(ctx.res, created.status());
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, api::ToJson(*created), 201);
  });
  Add("GET", "/v1/users", [this](Ctx& ctx) { SendJson(ctx.res, Array("users", ToArray(accounts_.ListUsers()))); });
  Add("GET", "/v1/users/{name}", [this](Ctx& ctx) {
    std::string name = ctx.req.matches[1];
    if (!ctx.principal.admin && (ctx.principal.service_account || ctx.principal.user != name))
      return SendError(ctx.res, NotFound("user " + name + " does not exist"));
    auto u = accounts_.GetUser(name);
    if (!u.ok()) return SendError(ctx.res, u.status());
    SendJson(ctx.res, api::ToJson(*u));
  });
  Add("PATCH", "/v1/users/{name}", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"admin", "disabled", "display_name"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto admin = OptBool(*body, "admin");
    auto disabled = OptBool(*body, "disabled");
    auto display = OptString(*body, "display_name");
    for (const Status& st : {admin.status(), disabled.status(), display.status()})
      if (!st.ok()) return SendError(ctx.res, st);
    std::string name = ctx.req.matches[1];
    ctx.audit_target = "user:" + name;
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    auto u = accounts_.UpdateUser(ctx.principal.user, name, *admin, *disabled, *display, &row);
    if (!u.ok()) return SendError(ctx.res, u.status());
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, api::ToJson(*u));
  });

  // ---- Projects
  Add("POST", "/v1/projects", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"name", "description", "owner"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto name = OptString(*body, "name");
    auto desc = OptString(*body, "description");
    auto owner = OptString(*body, "owner");
    for (const Status& st : {name.status(), desc.status(), owner.status()})
      if (!st.ok()) return SendError(ctx.res, st);
    if (!*name) return SendError(ctx.res, InvalidArgument("field 'name' is required"));
    api::Project p;
    p.name = **name;
    p.description = desc->value_or("");
    ctx.audit_target = "project:" + p.name;
    UnixMillis now = clock_.NowMillis();
    api::AuditRecord row = ChangeAuditRow(ctx, now);
    // The project's records, its trial credit and the audit row in one transaction: all or none.
    std::vector<api::LedgerEntry> trial;
    if (options_.trial.amount_micro > 0) {
      auto e = billing::TrialCredit(p.name, options_.trial.amount_micro, now,
                                    now + options_.trial.lifetime_days * 86'400'000);
      if (e.ok()) trial.push_back(*e);
    }
    auto created = accounts_.CreateProject(p, owner->value_or(ctx.principal.user), &row, trial);
    if (!created.ok()) return SendError(ctx.res, created.status());
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, api::ToJson(*created), 201);
  });
  Add("GET", "/v1/projects", [this](Ctx& ctx) {
    json arr = json::array();
    for (const auto& p : accounts_.ListProjects())
      if (ctx.principal.admin || ctx.principal.RoleIn(p.name)) arr.push_back(api::ToJson(p));
    SendJson(ctx.res, Array("projects", std::move(arr)));
  });
  Add("GET", "/v1/projects/{project}", [this](Ctx& ctx) {
    auto p = accounts_.GetProject(ctx.project);
    if (!p.ok()) return SendError(ctx.res, p.status());
    json j = api::ToJson(*p);
    // Spend so far this month (written usage + running jobs), so members see how close the budget is.
    int64_t spent = 0;
    for (const auto& [key, s] : service_.SpendThisMonth(ctx.project)) spent += s.cost_micro;
    j["spent_this_month_micro"] = spent;
    SendJson(ctx.res, j);
  });
  Add("PATCH", "/v1/projects/{project}", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"description", "quota", "budget", "run_as_user", "allow_root"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto p = accounts_.GetProject(ctx.project);
    if (!p.ok()) return SendError(ctx.res, p.status());
    for (const char* admin_only : {"quota", "run_as_user", "allow_root"}) {
      if (body->contains(admin_only) && !ctx.principal.admin)
        return SendError(ctx.res, PermissionDenied(std::string("only an admin may change '") + admin_only + "'"));
    }
    api::Project next = *p;
    auto desc = OptString(*body, "description");
    auto run_as = OptString(*body, "run_as_user");
    auto root = OptBool(*body, "allow_root");
    for (const Status& st : {desc.status(), run_as.status(), root.status()})
      if (!st.ok()) return SendError(ctx.res, st);
    if (*desc) next.description = **desc;
    if (*run_as) next.run_as_user = **run_as;
    if (*root) next.allow_root = **root;
    if (auto q = body->find("quota"); q != body->end()) {
      auto quota = QuotaFrom(*q, next.quota);
      if (!quota.ok()) return SendError(ctx.res, quota.status());
      next.quota = *quota;
    }
    if (auto b = body->find("budget"); b != body->end()) {
      auto budget = BudgetFrom(*b, next.budget);
      if (!budget.ok()) return SendError(ctx.res, budget.status());
      next.budget = *budget;
    }
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    auto updated = accounts_.UpdateProject(next, &row);
    if (!updated.ok()) return SendError(ctx.res, updated.status());
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, api::ToJson(*updated));
  });
  Add("GET", "/v1/projects/{project}/members", [this](Ctx& ctx) {
    SendJson(ctx.res, Array("members", ToArray(accounts_.ListMembers(ctx.project))));
  });
  Add("PUT", "/v1/projects/{project}/members/{user}", [this](Ctx& ctx) {
    std::string user = ctx.req.matches[2];
    ctx.audit_target = "member:" + ctx.project + "/" + user;
    auto body = ObjectBody(ctx.req, {"role"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto role_text = OptString(*body, "role");
    if (!role_text.ok()) return SendError(ctx.res, role_text.status());
    auto role = api::ParseRole(role_text->value_or(""));
    if (!role.ok()) return SendError(ctx.res, role.status());
    ctx.audit_detail = "role " + std::string(api::RoleName(*role));
    RETURN_IF_SEND_ERROR(ctx.res, auth::MayGrantRole(ctx.principal, ctx.project, *role, "add or change members"));
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    RETURN_IF_SEND_ERROR(ctx.res, accounts_.SetMember(ctx.project, user, *role, &row));
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, {{"project", ctx.project}, {"user", user}, {"role", api::RoleName(*role)}});
  });
  Add("DELETE", "/v1/projects/{project}/members/{user}", [this](Ctx& ctx) {
    std::string user = ctx.req.matches[2];
    ctx.audit_target = "member:" + ctx.project + "/" + user;
    RETURN_IF_SEND_ERROR(ctx.res, auth::MayManageIdentities(ctx.principal, "remove members"));
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    RETURN_IF_SEND_ERROR(ctx.res, accounts_.RemoveMember(ctx.project, user, &row));
    NoteChangeAudited(ctx, row);
    ctx.res.status = 204;
  });

  // ---- Tokens
  Add("POST", "/v1/tokens", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"name", "expires_in", "user"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    RETURN_IF_SEND_ERROR(ctx.res, auth::MayManageIdentities(ctx.principal,
                                                            "create API tokens (a service account gets one-hour "
                                                            "access tokens from POST /oauth/token)"));
    auto name = OptString(*body, "name");
    auto user = OptString(*body, "user");
    for (const Status& st : {name.status(), user.status()})
      if (!st.ok()) return SendError(ctx.res, st);
    int64_t ttl = 0;
    if (auto e = body->find("expires_in"); e != body->end() && !e->is_null()) {
      if (e->is_number_integer()) {
        ttl = e->get<int64_t>();
      } else if (e->is_string()) {
        auto d = ParseDurationSeconds(e->get<std::string>());
        if (!d.ok()) return SendError(ctx.res, d.status());
        ttl = *d;
      } else {
        return SendError(ctx.res, InvalidArgument("field 'expires_in' must be seconds or a duration like \"30d\""));
      }
      if (ttl <= 0) return SendError(ctx.res, InvalidArgument("field 'expires_in' must be positive"));
    }
    std::string owner = user->value_or(ctx.principal.user);
    if (owner != ctx.principal.user && !ctx.principal.admin)
      return SendError(ctx.res, PermissionDenied("only an admin may create tokens for another user"));
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    row.target.clear();  // "token:<new id>", filled in by the service before it writes the row
    auto created = accounts_.CreateToken(owner, name->value_or(""), ttl, &row);
    if (!created.ok()) return SendError(ctx.res, created.status());
    ctx.audit_target = "token:" + created->record.id;
    NoteChangeAudited(ctx, row);
    json out = api::ToJson(created->record);
    out["token"] = created->token;
    ctx.res.set_header("Cache-Control", "no-store");
    SendJson(ctx.res, out, 201);
  });
  Add("GET", "/v1/tokens", [this](Ctx& ctx) {
    std::string user = Param(ctx.req, "user");
    bool all = Param(ctx.req, "all") == "true";
    // A service account's tokens are owned by "sa:<id>", never by a user of the same name.
    const std::string self = ctx.principal.service_account ? "sa:" + ctx.principal.user : ctx.principal.user;
    if ((all || (!user.empty() && user != self)) && !ctx.principal.admin)
      return SendError(ctx.res, PermissionDenied("only an admin may list other users' tokens"));
    if (user.empty() && !all) user = self;
    SendJson(ctx.res, Array("tokens", ToArray(accounts_.ListTokens(all ? "" : user))));
  });
  Add("DELETE", "/v1/tokens/{id}", [this](Ctx& ctx) {
    std::string id = ctx.req.matches[1];
    ctx.audit_target = "token:" + id;
    auto tok = accounts_.GetToken(id);
    const std::string self = ctx.principal.service_account ? "sa:" + ctx.principal.user : ctx.principal.user;
    if (!tok.ok() || (!ctx.principal.admin && tok->user != self))
      return SendError(ctx.res, NotFound("token " + id + " does not exist"));
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    RETURN_IF_SEND_ERROR(ctx.res, accounts_.RevokeToken(id, &row));
    NoteChangeAudited(ctx, row);
    ctx.res.status = 204;
  });

  // ---- Service accounts
  Add("POST", "/v1/projects/{project}/service-accounts", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"name", "role"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto name = OptString(*body, "name");
    auto role_text = OptString(*body, "role");
    for (const Status& st : {name.status(), role_text.status()})
      if (!st.ok()) return SendError(ctx.res, st);
    auto role = api::ParseRole(role_text->value_or("member"));
    if (!role.ok()) return SendError(ctx.res, role.status());
    RETURN_IF_SEND_ERROR(ctx.res, auth::MayGrantRole(ctx.principal, ctx.project, *role, "create service accounts"));
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    row.target.clear();  // "service-account:<new id>", filled in by the service before it writes the row
    auto created = accounts_.CreateServiceAccount(ctx.project, name->value_or(""), *role, &row);
    if (!created.ok()) return SendError(ctx.res, created.status());
    ctx.audit_target = "service-account:" + created->account.id;
    NoteChangeAudited(ctx, row);
    json out = api::ToJson(created->account);
    out["client_id"] = created->account.id;
    out["client_secret"] = created->client_secret;
    ctx.res.set_header("Cache-Control", "no-store");
    SendJson(ctx.res, out, 201);
  });
  Add("GET", "/v1/projects/{project}/service-accounts", [this](Ctx& ctx) {
    SendJson(ctx.res, Array("service_accounts", ToArray(accounts_.ListServiceAccounts(ctx.project))));
  });
  Add("DELETE", "/v1/projects/{project}/service-accounts/{id}", [this](Ctx& ctx) {
    std::string id = ctx.req.matches[2];
    ctx.audit_target = "service-account:" + id;
    RETURN_IF_SEND_ERROR(ctx.res, auth::MayManageIdentities(ctx.principal, "delete service accounts"));
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    RETURN_IF_SEND_ERROR(ctx.res, accounts_.DeleteServiceAccount(ctx.project, id, &row));
    NoteChangeAudited(ctx, row);
    ctx.res.status = 204;
  });

  // ---- Secrets (values go in, never out)
  Add("PUT", "/v1/projects/{project}/secrets/{name}", [this](Ctx& ctx) {
    std::string name = ctx.req.matches[2];
    ctx.audit_target = "secret:" + ctx.project + "/" + name;
    auto body = ObjectBody(ctx.req, {"value"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto value = OptString(*body, "value");
    if (!value.ok()) return SendError(ctx.res, value.status());
    if (!*value) return SendError(ctx.res, InvalidArgument("field 'value' is required"));
    // The row names the secret, never its value.
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    RETURN_IF_SEND_ERROR(ctx.res, accounts_.SetSecret(ctx.project, name, **value, ctx.principal.Actor(), &row));
    NoteChangeAudited(ctx, row);
    for (const auto& s : accounts_.ListSecrets(ctx.project))
      if (s.name == name) return SendJson(ctx.res, api::ToJson(s));
    SendJson(ctx.res, {{"project", ctx.project}, {"name", name}});
  });
  Add("GET", "/v1/projects/{project}/secrets", [this](Ctx& ctx) {
    SendJson(ctx.res, Array("secrets", ToArray(accounts_.ListSecrets(ctx.project))));
  });
  Add("DELETE", "/v1/projects/{project}/secrets/{name}", [this](Ctx& ctx) {
    std::string name = ctx.req.matches[2];
    ctx.audit_target = "secret:" + ctx.project + "/" + name;
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    RETURN_IF_SEND_ERROR(ctx.res, accounts_.DeleteSecret(ctx.project, name, &row));
    NoteChangeAudited(ctx, row);
    ctx.res.status = 204;
  });
  Add("POST", "/v1/admin/rotate-key", [this](Ctx& ctx) {
    if (options_.master_key_path.empty())
      return SendError(ctx.res, FailedPrecondition(
                                    "the master key comes from FASTGPU_MASTER_KEY: rotate by setting a new key "
                                    "there and restarting (see docs/security.md)"));
    auto key = auth::MasterKey::Generate();
    if (!key.ok()) return SendError(ctx.res, key.status());
    // Order: new key durable on disk first (as <path>.new), then re-encrypt in one transaction, then
    // rename over the old key. A crash in between is resolved at start-up (embedded.cc).
    std::string next = options_.master_key_path + ".new";
    // One rotation at a time: two interleaved ones could leave secrets sealed by a key that is on no disk.
    std::unique_lock rotating(rotate_mu_, std::try_to_lock);
    if (!rotating.owns_lock())
      return SendError(ctx.res, FailedPrecondition("a key rotation is already running; try again when it is done"));
    RETURN_IF_SEND_ERROR(ctx.res, key->WriteFile(next));
    ctx.audit_detail = "rotation to key " + key->id();  // for a failure row; the service's row counts them
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    row.detail.clear();  // "rotated <n> secrets to key <id>", filled in by the service before it writes the row
    auto n = accounts_.RotateKey(*key, &row);
    if (!n.ok()) return SendError(ctx.res, n.status());
    NoteChangeAudited(ctx, row);
    ctx.audit_detail = row.detail;
    if (::rename(next.c_str(), options_.master_key_path.c_str()) != 0)
      return SendError(ctx.res, Internal("secrets were re-encrypted but the new key could not replace " +
                                         options_.master_key_path + "; it is in " + next));
    SendJson(ctx.res, {{"rotated", *n}, {"key_id", key->id()}});
  });

  // ---- Audit
  Add("GET", "/v1/audit", [this](Ctx& ctx) {
    auto after = IntParam(ctx.req, "after", 0, 0, int64_t{1} << 60);
    auto limit = IntParam(ctx.req, "limit", 100, 1, 10'000);
    for (const Status& st : {after.status(), limit.status()})
      if (!st.ok()) return SendError(ctx.res, st);
    auto rows = store_.ListAudit(*after, static_cast<int>(*limit));
    if (!rows.ok()) return SendError(ctx.res, rows.status());
    SendJson(ctx.res, Array("records", ToArray(*rows)));
  });
  Add("GET", "/v1/audit/verify", [this](Ctx& ctx) {
    auto rows = store_.ListAudit(0, 0);
    if (!rows.ok()) return SendError(ctx.res, rows.status());
    auto key = store_.AuditKey();
    auto report = auth::VerifyAuditChain(*rows, audit_high_.load(), key ? &*key : nullptr);
    SendJson(ctx.res, {{"ok", report.ok},
                       {"rows", report.rows},
                       {"first_bad_seq", report.first_bad_seq},
                       {"problem", report.problem}});
  });
}

}  // namespace fastgpu::server
