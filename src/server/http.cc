#include "server/http.h"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "api/json.h"
#include "common/crypto.h"
#include "server/http_internal.h"

namespace fastgpu::server {

using nlohmann::json;
using auth::Action;

namespace {

constexpr size_t kHttpThreads = 64;

// Every route with its authorisation rule. A route served without an entry here aborts at start-up,
// and tests/server/authz_test.cc checks each entry against every role.
const std::vector<RouteInfo> kRoutes = {
    {"GET", "/healthz", Action::kPublic, Scope::kNone, "Liveness check"},
    {"GET", "/v1/openapi.json", Action::kPublic, Scope::kNone, "This API description"},
    {"POST", "/oauth/token", Action::kPublic, Scope::kNone, "OAuth2 client credentials: access token for a service account"},
    {"GET", "/v1/whoami", Action::kAuthenticated, Scope::kNone, "The caller, their projects and roles"},
    // Jobs
    {"POST", "/v1/jobs", Action::kProjectWrite, Scope::kInHandler, "Submit a job (dry_run=true: price it only)"},
    {"GET", "/v1/jobs", Action::kAuthenticated, Scope::kInHandler, "List jobs of your projects (newest first)"},
    {"GET", "/v1/jobs/{id}", Action::kProjectRead, Scope::kPathJob, "Get a job"},
    {"POST", "/v1/jobs/{id}/cancel", Action::kProjectWrite, Scope::kPathJob, "Cancel a job"},
    {"GET", "/v1/jobs/{id}/events", Action::kProjectRead, Scope::kPathJob, "A job's state changes"},
    {"GET", "/v1/jobs/{id}/logs", Action::kProjectRead, Scope::kPathJob, "A job's output (follow=true streams)"},
    {"GET", "/v1/jobs/{id}/wait", Action::kProjectRead, Scope::kPathJob, "Wait for a job to end (or to run)"},
    {"GET", "/v1/gpus", Action::kAuthenticated, Scope::kNone, "List GPUs"},
    {"GET", "/v1/nodes", Action::kAuthenticated, Scope::kNone, "List nodes"},
    // Users, projects, members
    {"POST", "/v1/users", Action::kAdmin, Scope::kNone, "Create a user"},
    {"GET", "/v1/users", Action::kAdmin, Scope::kNone, "List users"},
    {"GET", "/v1/users/{name}", Action::kAuthenticated, Scope::kInHandler, "Get a user (admin, or yourself)"},
    {"PATCH", "/v1/users/{name}", Action::kAdmin, Scope::kNone, "Change a user (admin flag, disabled, display name)"},
    {"POST", "/v1/projects", Action::kAdmin, Scope::kNone, "Create a project"},
    {"GET", "/v1/projects", Action::kAuthenticated, Scope::kInHandler, "List your projects (admin: all)"},
    {"GET", "/v1/projects/{project}", Action::kProjectRead, Scope::kPathProject, "Get a project"},
    {"PATCH", "/v1/projects/{project}", Action::kProjectManage, Scope::kPathProject,
     "Change a project (quota, run_as_user, allow_root: admin only)"},
    {"GET", "/v1/projects/{project}/members", Action::kProjectRead, Scope::kPathProject, "List members"},
    {"PUT", "/v1/projects/{project}/members/{user}", Action::kProjectManage, Scope::kPathProject, "Add or change a member"},
    {"DELETE", "/v1/projects/{project}/members/{user}", Action::kProjectManage, Scope::kPathProject, "Remove a member"},
    // Tokens and service accounts
    {"POST", "/v1/tokens", Action::kAuthenticated, Scope::kInHandler, "Create an API token (shown once)"},
    {"GET", "/v1/tokens", Action::kAuthenticated, Scope::kInHandler, "List your tokens (admin: ?user= or ?all=true)"},
    {"DELETE", "/v1/tokens/{id}", Action::kAuthenticated, Scope::kInHandler, "Revoke a token (yours; admin: any)"},
    {"POST", "/v1/projects/{project}/service-accounts", Action::kProjectManage, Scope::kPathProject,
     "Create a service account (client secret shown once)"},
    {"GET", "/v1/projects/{project}/service-accounts", Action::kProjectManage, Scope::kPathProject, "List service accounts"},
    {"DELETE", "/v1/projects/{project}/service-accounts/{id}", Action::kProjectManage, Scope::kPathProject,
     "Delete a service account and revoke its tokens"},
    // Secrets
    {"PUT", "/v1/projects/{project}/secrets/{name}", Action::kProjectWrite, Scope::kPathProject, "Set a secret"},
    {"GET", "/v1/projects/{project}/secrets", Action::kProjectRead, Scope::kPathProject, "List secret names (never values)"},
    {"DELETE", "/v1/projects/{project}/secrets/{name}", Action::kProjectWrite, Scope::kPathProject, "Delete a secret"},
    {"POST", "/v1/admin/rotate-key", Action::kAdmin, Scope::kNone, "Re-encrypt all secrets under a new master key"},
    // Audit
    {"GET", "/v1/audit", Action::kAdmin, Scope::kNone, "Audit log rows"},
    {"GET", "/v1/audit/verify", Action::kAdmin, Scope::kNone, "Check the audit log's hash chain"},
    // Billing
    {"GET", "/v1/prices", Action::kAuthenticated, Scope::kNone, "GPU prices in force (all=true: history)"},
    {"POST", "/v1/prices", Action::kAdmin, Scope::kNone, "Set a GPU type's price from a date"},
    {"GET", "/v1/usage", Action::kAuthenticated, Scope::kInHandler, "Spend this month by project and GPU type"},
    {"GET", "/v1/projects/{project}/bill", Action::kProjectRead, Scope::kPathProject, "A project's invoice for a month"},
    {"GET", "/v1/projects/{project}/credits", Action::kProjectRead, Scope::kPathProject, "Credit balance and grants"},
    {"POST", "/v1/projects/{project}/credits", Action::kAdmin, Scope::kPathProject,
     "Add credit: adjustment, prepaid plan purchase or trial"},
};

std::string ToRegex(const std::string& path) {
  return std::regex_replace(path, std::regex(R"(\{[a-z_]+\})"), "([A-Za-z0-9_.-]+)");
}

Result<std::vector<api::JobState>> StatesParam(const httplib::Request& req) {
  std::vector<api::JobState> out;
  std::string v = Param(req, "state");
  size_t start = 0;
  while (start < v.size()) {
    size_t comma = v.find(',', start);
    std::string tok = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    for (auto& c : tok) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (!tok.empty()) {
      ASSIGN_OR_RETURN(auto st, api::ParseJobState(tok));
      out.push_back(st);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string CodeOf(const httplib::Response& res) {
  if (res.status < 400) return "ok";
  auto j = json::parse(res.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("code") &&
      j["error"]["code"].is_string())
    return j["error"]["code"].get<std::string>();
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  return "http_" + std::to_string(res.status);
}

}  // namespace

void SendError(httplib::Response& res, const Status& st) {
  res.status = HttpStatusFor(st.code());
  res.set_content(api::ErrorBody(st), "application/json");
}

void SendJson(httplib::Response& res, const json& j, int status) {
  res.status = status;
  // Text from the request (paths, query values) may be invalid UTF-8: replace such bytes, never throw.
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

std::string Param(const httplib::Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : std::string();
}

Result<int64_t> IntParam(const httplib::Request& req, const char* name, int64_t def, int64_t lo, int64_t hi) {
  std::string v = Param(req, name);
  if (v.empty()) return def;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return InvalidArgument(std::string("query parameter '") + name + "' must be a non-negative integer");
    if (n > (hi - (c - '0')) / 10) return InvalidArgument(std::string("query parameter '") + name + "' is too large (max " + std::to_string(hi) + ")");
    n = n * 10 + (c - '0');
  }
  if (n < lo) return InvalidArgument(std::string("query parameter '") + name + "' is too small");
  return n;
}

Result<json> ObjectBody(const httplib::Request& req, std::initializer_list<const char*> allowed) {
  json j = json::object();
  if (!req.body.empty()) {
    ASSIGN_OR_RETURN(j, api::ParseJson(req.body, "request body"));
  }
  if (!j.is_object()) return InvalidArgument("request body must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    std::string list;
    for (const char* a : allowed) {
      known = known || it.key() == a;
      list += list.empty() ? a : std::string(", ") + a;
    }
    if (!known) return InvalidArgument("unknown field '" + it.key() + "' (known: " + list + ")");
  }
  return j;
}

Result<std::optional<std::string>> OptString(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return InvalidArgument(std::string("field '") + field + "' must be a string");
  return std::optional<std::string>(it->get<std::string>());
}

Result<std::optional<bool>> OptBool(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return InvalidArgument(std::string("field '") + field + "' must be true or false");
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<int64_t>> OptInt(const json& j, const char* field, int64_t lo, int64_t hi) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::optional<int64_t>();
  if (!it->is_number_integer())
    return InvalidArgument(std::string("field '") + field + "' must be an integer");
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    return InvalidArgument(std::string("field '") + field + "' must be between " + std::to_string(lo) + " and " +
                           std::to_string(hi));
  return std::optional<int64_t>(v);
}

std::string Timestamp(UnixMillis ms) { return ms ? FormatTimestamp(ms) : std::string(); }

const std::vector<RouteInfo>& Routes() { return kRoutes; }

namespace {
std::unique_ptr<httplib::Server> MakeServer(const HttpOptions& o) {
  if (!o.tls_cert.empty() && !o.tls_key.empty())
    return std::make_unique<httplib::SSLServer>(o.tls_cert.c_str(), o.tls_key.c_str());
  return std::make_unique<httplib::Server>();
}
}  // namespace

HttpServer::HttpServer(Service& service, auth::AccountService& accounts, store::Store& store, const Clock& clock,
                       HttpOptions options)
    : accounts_(accounts),
      store_(store),
      clock_(clock),
      limiter_(options.auth_failures_per_minute, 60'000),
      service_(service),
      options_(std::move(options)),
      http_(MakeServer(options_)) {
  Install();
}

HttpServer::~HttpServer() { Stop(); }

Result<int> HttpServer::Bind() {
  int port;
  if (options_.port == 0) {
    port = http_->bind_to_any_port(options_.host);
  } else {
    port = http_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (port < 0)
    return Unavailable("cannot listen on " + options_.host + ":" + std::to_string(options_.port) +
                       " (address in use or not available); choose another with --listen HOST:PORT");
  return port;
}

void HttpServer::Start() {
  thread_ = std::thread([this] {
    http_->listen_after_bind();
    served_ = true;
  });
}

void HttpServer::Stop() {
  if (!http_) return;
  // stop() is a no-op if it lands before the accept loop has started: repeat until it has ended.
  while (thread_.joinable() && !served_) {
    http_->stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Add(const std::string& method, const std::string& path, Handler handler) {
  const RouteInfo* route = nullptr;
  for (const auto& r : kRoutes)
    if (r.method == method && r.path == path) route = &r;
  if (!route) {
    // A route without an authorisation rule must never be served.
    std::fprintf(stderr, "internal error: route %s %s has no entry in the route table\n", method.c_str(), path.c_str());
    std::abort();
  }
  registered_.push_back(method + " " + path);
  auto fn = [this, route, h = std::move(handler)](const httplib::Request& req, httplib::Response& res) mutable {
    Serve(*route, h, req, res);
  };
  std::string re = ToRegex(path);
  if (method == "GET") {
    http_->Get(re, std::move(fn));
  } else if (method == "POST") {
    http_->Post(re, std::move(fn));
  } else if (method == "PUT") {
    http_->Put(re, std::move(fn));
  } else if (method == "PATCH") {
    http_->Patch(re, std::move(fn));
  } else {
    http_->Delete(re, std::move(fn));
  }
}

void HttpServer::Serve(const RouteInfo& route, Handler& handler, const httplib::Request& req, httplib::Response& res) {
  Ctx ctx{req, res};
  bool audited = route.method != "GET" || route.path == "/v1/whoami";
  if (route.action != Action::kPublic) {
    const std::string& source = req.remote_addr;
    const std::optional<std::string> token = auth::BearerToken(req.get_header_value("Authorization"));
    Result<auth::Principal> who = token ? accounts_.Authenticate(*token) : Unauthenticated("missing API token");
    if (!who.ok()) {
      // The limiter is asked only after the token failed: a valid token is never refused, so nobody
      // sharing the caller's address (a job on this host, a proxy) can lock its holder out.
      const int64_t wait =
          limiter_.RecordFailure(source, token ? auth::CredentialId(*token) : "", clock_.NowMillis());
      res.set_header("WWW-Authenticate", "Bearer");
      if (wait > 0) {
        // Not audited row by row: a flood of bad tokens must not turn into a flood of durable writes.
        const std::string secs = std::to_string((wait + 999) / 1000);
        res.set_header("Retry-After", secs);
        return SendError(res, ResourceExhausted("invalid API token, and too many failed authentication attempts "
                                                "from " + source + "; try again in " + secs + " s"));
      }
      SendError(res, Unauthenticated(
                         "missing or invalid API token: pass 'Authorization: Bearer <token>' (fastgpu login, or "
                         "the admin token fastgpu up writes to $FASTGPU_HOME/admin.token)"));
      ctx.audit_actor = "anonymous";
      ctx.audit_detail = "authentication failed";
      Audit(ctx, route);
      return;
    }
    ctx.principal = std::move(who).value();
    ctx.authenticated = true;
    Status allowed = Status::Ok();
    if (route.scope == Scope::kPathProject) {
      ctx.project = req.matches[1];
      allowed = auth::Authorize(ctx.principal, route.action, ctx.project,
                                "project " + ctx.project + " does not exist");
      // Admin-only routes on a project: a non-admin member gets 403, a stranger 404.
      if (allowed.ok() && route.action == Action::kAdmin) allowed = auth::Authorize(ctx.principal, Action::kAdmin, "", "");
      if (!allowed.ok() && route.action == Action::kAdmin && !ctx.principal.RoleIn(ctx.project))
        allowed = NotFound("project " + ctx.project + " does not exist");
      if (allowed.ok() && !accounts_.GetProject(ctx.project).ok())
        allowed = NotFound("project " + ctx.project + " does not exist");
    } else if (route.scope == Scope::kPathJob) {
      std::string id = req.matches[1];
      auto job = service_.GetJob(id);
      if (!job.ok()) {
        allowed = job.status();
      } else {
        ctx.project = job->spec.project;
        allowed = auth::Authorize(ctx.principal, route.action, ctx.project, "job " + id + " does not exist");
      }
    } else if (route.scope == Scope::kNone) {
      allowed = auth::Authorize(ctx.principal, route.action, "", "");
    }
    if (!allowed.ok()) {
      SendError(res, allowed);
      if (audited) Audit(ctx, route);
      return;
    }
  }
  handler(ctx);
  if (audited) Audit(ctx, route);
}

void HttpServer::Audit(const Ctx& ctx, const RouteInfo& route) {
  api::AuditRecord rec;
  rec.at = clock_.NowMillis();
  rec.actor = !ctx.audit_actor.empty() ? ctx.audit_actor : ctx.authenticated ? ctx.principal.Actor() : "anonymous";
  rec.source = ctx.req.remote_addr;
  rec.action = route.path == "/v1/whoami" ? "login" : route.method + " " + route.path;
  rec.target = ctx.audit_target.empty() ? ctx.req.path : ctx.audit_target;
  rec.result = CodeOf(ctx.res);
  rec.detail = ctx.audit_detail;
  auto st = store_.AppendAudit(std::move(rec));
  if (!st.ok()) {
    std::fprintf(stderr, "fastgpu: cannot write audit row: %s\n", st.status().ToString().c_str());
    return;
  }
  // The newest row this process wrote: `audit verify` then also detects deletion of the newest rows.
  int64_t seen = audit_high_.load();
  while (st->seq > seen && !audit_high_.compare_exchange_weak(seen, st->seq)) {
  }
}

void HttpServer::Install() {
  auto& s = *http_;
  s.set_tcp_nodelay(true);
  s.set_payload_max_length(options_.max_body_bytes);
  s.set_keep_alive_max_count(100000);
  s.set_read_timeout(30, 0);
  // Each keep-alive connection holds a worker thread: size the pool for many concurrent clients.
  // (Debian's cpp-httplib is a compiled library, so CPPHTTPLIB_THREAD_POOL_COUNT would be ignored.)
  // httplib takes ownership of the returned pool and deletes it.
  s.new_task_queue = [] { return std::make_unique<httplib::ThreadPool>(kHttpThreads).release(); };
  s.set_write_timeout(30, 0);

  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    Status st;
    if (res.status == 404) {
      st = NotFound("no route " + req.method + " " + req.path + " (see /v1/openapi.json)");
    } else if (res.status == 413) {
      st = {ErrorCode::kPayloadTooLarge, "request body is too large"};
    } else if (res.status == 405) {
      st = {ErrorCode::kInvalidArgument, "method " + req.method + " is not allowed on " + req.path};
    } else if (res.status == 400) {
      st = InvalidArgument("malformed HTTP request");
    } else {
      st = {ErrorCode::kInternal, "HTTP error " + std::to_string(res.status)};
    }
    res.set_content(api::ErrorBody(st), "application/json");
  });
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unexpected error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    SendError(res, Internal(what));
  });

  Add("GET", "/healthz", [](Ctx& ctx) {
    auto& res = ctx.res; SendJson(res, {{"status", "ok"}}); });
  Add("GET", "/v1/openapi.json", [](Ctx& ctx) {
    auto& res = ctx.res;
    res.set_content(OpenApiJson(), "application/json");
  });

  Add("POST", "/v1/jobs", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    auto spec = api::JobSpecFromJsonText(req.body);
    if (!spec.ok()) return SendError(res, spec.status());
    RETURN_IF_SEND_ERROR(res, auth::Authorize(ctx.principal, Action::kProjectWrite, spec->project,
                                              "project " + spec->project + " does not exist"));
    std::string dry = Param(req, "dry_run");
    if (dry == "true" || dry == "1") {
      auto est = service_.EstimateCost(*spec);
      if (!est.ok()) return SendError(res, est.status());
      ctx.audit_detail = "dry run";
      return SendJson(res, {{"dry_run", true},
                            {"gpu_type", est->gpu_type},
                            {"gpus_milli", spec->gpus_milli},
                            {"price_per_gpu_hour_micro", est->price_per_gpu_hour_micro},
                            {"price_per_hour_micro", est->price_per_hour_micro},
                            {"runtime_limit_s", est->runtime_limit_s},
                            {"estimate_micro", est->estimate_micro}});
    }
    auto job = service_.Submit(std::move(spec).value(), ctx.principal.user, ctx.principal.Actor());
    if (!job.ok()) return SendError(res, job.status());
    ctx.audit_target = "job:" + job->id;
    res.set_header("Location", "/v1/jobs/" + job->id);
    SendJson(res, api::ToJson(*job), 201);
  });
  Add("GET", "/v1/jobs", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    JobListQuery q;
    auto states = StatesParam(req);
    if (!states.ok()) return SendError(res, states.status());
    q.states = *states;
    q.project = Param(req, "project");
    std::set<std::string> visible;
    if (!ctx.principal.admin) {
      if (!q.project.empty()) {
        RETURN_IF_SEND_ERROR(res, auth::Authorize(ctx.principal, Action::kProjectRead, q.project,
                                                  "project " + q.project + " does not exist"));
      }
      for (const auto& [p, role] : ctx.principal.roles) visible.insert(p);
      q.visible = &visible;
    }
    auto limit = IntParam(req, "limit", 0, 0, 1'000'000);
    if (!limit.ok()) return SendError(res, limit.status());
    q.limit = static_cast<int>(*limit);
    json arr = json::array();
    for (const auto& j : service_.ListJobs(q)) arr.push_back(api::ToJson(j));
    SendJson(res, {{"jobs", std::move(arr)}});
  });
  Add("GET", "/v1/jobs/{id}", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    auto job = service_.GetJob(req.matches[1]);
    if (!job.ok()) return SendError(res, job.status());
    SendJson(res, api::ToJson(*job));
  });
  Add("POST", "/v1/jobs/{id}/cancel", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    auto job = service_.Cancel(req.matches[1], ctx.principal.Actor());
    if (!job.ok()) return SendError(res, job.status());
    SendJson(res, api::ToJson(*job));
  });
  Add("GET", "/v1/jobs/{id}/events", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    auto events = service_.Events(req.matches[1]);
    if (!events.ok()) return SendError(res, events.status());
    json arr = json::array();
    for (const auto& e : *events) arr.push_back(api::ToJson(e));
    SendJson(res, {{"events", std::move(arr)}});
  });
  Add("GET", "/v1/jobs/{id}/wait", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    std::string t = Param(req, "timeout");
    int64_t timeout_s = 30;
    if (!t.empty()) {
      auto d = ParseDurationSeconds(t);
      if (!d.ok()) return SendError(res, d.status());
      timeout_s = std::min<int64_t>(*d, 300);
    }
    std::string until = Param(req, "for");
    if (!until.empty() && until != "running" && until != "end")
      return SendError(res, InvalidArgument("query parameter 'for' must be 'running' or 'end'"));
    auto job = service_.Wait(req.matches[1], timeout_s * 1000, until == "running");
    if (!job.ok()) return SendError(res, job.status());
    SendJson(res, api::ToJson(*job));
  });
  Add("GET", "/v1/jobs/{id}/logs", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    std::string id = req.matches[1];
    auto offset = IntParam(req, "offset", 0, 0, int64_t{1} << 50);
    if (!offset.ok()) return SendError(res, offset.status());
    std::string follow = Param(req, "follow");
    if (!follow.empty() && follow != "true" && follow != "false" && follow != "1" && follow != "0")
      return SendError(res, InvalidArgument("query parameter 'follow' must be true or false"));
    auto job = service_.GetJob(id);
    if (!job.ok()) return SendError(res, job.status());
    if (follow != "true" && follow != "1") {
      std::string out;
      int64_t off = *offset;
      while (out.size() < (64u << 20)) {
        auto chunk = service_.ReadLog(id, off, 1 << 20);
        if (!chunk.ok()) return SendError(res, chunk.status());
        out += chunk->data;
        off = chunk->next_offset;
        if (chunk->eof || chunk->data.empty()) break;
      }
      res.set_header("X-Next-Offset", std::to_string(off));
      res.set_content(out, "text/plain; charset=utf-8");
      return;
    }
    int64_t start = *offset;
    res.set_chunked_content_provider(
        "text/plain; charset=utf-8", [this, id, off = start](size_t, httplib::DataSink& sink) mutable {
          while (true) {
            auto job = service_.GetJob(id);
            if (!job.ok()) return false;
            bool ended = api::IsTerminal(job->state);
            auto chunk = service_.ReadLog(id, off, 256 << 10);
            if (!chunk.ok()) return false;
            if (!chunk->data.empty()) {
              off = chunk->next_offset;
              if (!sink.write(chunk->data.data(), chunk->data.size())) return false;
              return true;  // called again
            }
            if (ended) {
              sink.done();
              return true;
            }
            if (!sink.is_writable()) return false;
            service_.WaitForChange(id, 100);
          }
        });
  });
  Add("GET", "/v1/gpus", [this](Ctx& ctx) {
    auto& res = ctx.res;
    json arr = json::array();
    for (auto g : service_.ListGpus()) {
      // Other tenants' job ids are not shown (their existence must not leak); the allocation still is.
      if (!ctx.principal.admin) {
        std::erase_if(g.jobs, [&](const std::string& id) {
          auto job = service_.GetJob(id);
          return !job.ok() || !ctx.principal.RoleIn(job->spec.project).has_value();
        });
      }
      arr.push_back(api::ToJson(g));
    }
    SendJson(res, {{"gpus", std::move(arr)}});
  });
  Add("GET", "/v1/nodes", [this](Ctx& ctx) {
    auto& res = ctx.res;
    json arr = json::array();
    for (const auto& n : service_.ListNodes()) arr.push_back(api::ToJson(n));
    SendJson(res, {{"nodes", std::move(arr)}});
  });
  InstallAccounts();
  InstallBilling();
}

}  // namespace fastgpu::server
