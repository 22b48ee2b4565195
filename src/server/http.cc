#include "server/http.h"

#include <nlohmann/json.hpp>
#include <regex>

#include "agent/log_times.h"
#include "agent/protocol.h"
#include "api/json.h"
#include "common/crypto.h"
#include "server/console.h"
#include "server/http_audit.h"
#include "server/http_internal.h"

namespace fastgpu::server {

using nlohmann::json;
using auth::Action;

namespace {

// Every route with its authorisation rule. A route served without an entry here aborts at start-up,
// and tests/server/authz_test.cc checks each entry against every role.
const std::vector<RouteInfo> kRoutes = {
    {"GET", "/healthz", Action::kPublic, Scope::kNone, "Liveness check"},
    {"GET", "/v1/openapi.json", Action::kPublic, Scope::kNone, "This API description"},
    {"GET", "/metrics", Action::kAdmin, Scope::kNone,
     "Prometheus metrics: GPUs (DCGM-exporter names), jobs, queue, scheduler, API, store, spend (metrics token or admin)"},
    {"POST", "/oauth/token", Action::kPublic, Scope::kNone, "OAuth2 client credentials: access token for a service account"},
    {"GET", "/v1/whoami", Action::kAuthenticated, Scope::kNone, "The caller, their projects and roles"},
    // Jobs
    {"POST", "/v1/jobs", Action::kProjectWrite, Scope::kInHandler, "Submit a job (dry_run=true: price it only)"},
    {"GET", "/v1/jobs", Action::kAuthenticated, Scope::kInHandler, "List jobs of your projects (newest first)"},
    {"GET", "/v1/jobs/{id}", Action::kProjectRead, Scope::kPathJob, "Get a job"},
    {"POST", "/v1/jobs/{id}/cancel", Action::kProjectWrite, Scope::kPathJob, "Cancel a job"},
    {"POST", "/v1/jobs/{id}/migrate", Action::kProjectWrite, Scope::kPathJob,
     "Move a running job: checkpoint signal, grace, stop, then requeue on other GPUs"},
    {"GET", "/v1/jobs/{id}/events", Action::kProjectRead, Scope::kPathJob, "A job's state changes"},
    {"GET", "/v1/jobs/{id}/logs", Action::kProjectRead, Scope::kPathJob, "A job's output (follow=true streams)"},
    {"GET", "/v1/jobs/{id}/wait", Action::kProjectRead, Scope::kPathJob, "Wait for a job to end (or to run)"},
    // Exec sessions (http_exec.cc, docs/exec.md): members who may change jobs; a session only for who opened it.
    {"POST", "/v1/jobs/{id}/exec", Action::kProjectWrite, Scope::kPathJob,
     "Run a command inside a running job (body: command, tty, stdin, rank, rows, cols, term): an exec session"},
    {"GET", "/v1/jobs/{id}/exec/{session}/output", Action::kProjectWrite, Scope::kPathJob,
     "Long-poll an exec session's output from stdout_offset/stderr_offset (base64), and its end"},
    {"POST", "/v1/jobs/{id}/exec/{session}/input", Action::kProjectWrite, Scope::kPathJob,
     "Send an exec session input from offset (base64 data, eof) and its window size (rows, cols)"},
    {"DELETE", "/v1/jobs/{id}/exec/{session}", Action::kProjectWrite, Scope::kPathJob,
     "End an exec session: its command is killed"},
    // Code sync (http_sync.cc)
    {"GET", "/v1/jobs/{id}/files", Action::kProjectRead, Scope::kPathJob,
     "Files under a job's work dir: a listing (a directory) or the bytes (a file); ?path=P"},
    {"GET", "/v1/projects/{project}/blobs/{hash}", Action::kProjectRead, Scope::kPathProject,
     "Whether the project has this code archive (present, size) and the largest upload taken (max_bytes)"},
    {"PUT", "/v1/projects/{project}/blobs/{hash}", Action::kProjectWrite, Scope::kPathProject,
     "Upload a code archive (job submit --sync); the body's SHA-256 must be the one in the path"},
    {"GET", "/v1/gpus", Action::kAuthenticated, Scope::kNone, "List GPUs"},
    {"GET", "/v1/nodes", Action::kAuthenticated, Scope::kNone, "List nodes"},
    // Reservations (http_reservations.cc)
    {"POST", "/v1/reservations", Action::kAdmin, Scope::kNone,
     "Reserve GPUs for a project in a time window (body: project, gpus, gpu_type, start_at, end_at, name)"},
    {"GET", "/v1/reservations", Action::kAuthenticated, Scope::kInHandler,
     "List reservations of your projects (admin: all; ?project=P)"},
    {"DELETE", "/v1/reservations/{id}", Action::kAdmin, Scope::kNone, "Delete a reservation"},
    // Node administration (fleet mode; http_agent.cc)
    {"GET", "/v1/nodes/{name}", Action::kAuthenticated, Scope::kNone, "Get a node (state, jobs, connection)"},
    {"POST", "/v1/nodes/{name}/cordon", Action::kAdmin, Scope::kNone, "Place nothing new on a node"},
    {"POST", "/v1/nodes/{name}/uncordon", Action::kAdmin, Scope::kNone, "Place jobs on a node again"},
    {"POST", "/v1/nodes/{name}/drain", Action::kAdmin, Scope::kNone,
     "Place nothing new on a node and let its jobs finish (wait=true: until none runs there)"},
    {"DELETE", "/v1/nodes/{name}", Action::kAdmin, Scope::kNone, "Remove a node and revoke its credential"},
    {"POST", "/v1/node-tokens", Action::kAdmin, Scope::kNone, "Create a one-time join token for a node (shown once)"},
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

Result<std::vector<api::JobState>> StatesParam(const Request& req) {
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

std::string CodeOf(const Response& res) {
  if (res.status < 400) return "ok";
  auto j = json::parse(res.body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object() && j["error"].contains("code") &&
      j["error"]["code"].is_string())
    return j["error"]["code"].get<std::string>();
  if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
  return "http_" + std::to_string(res.status);
}

}  // namespace

void SendError(Response& res, const Status& st) {
  res.status = HttpStatusFor(st.code());
  res.set_content(api::ErrorBody(st), "application/json");
}

void SendJson(Response& res, const json& j, int status) {
  res.status = status;
  // Text from the request (paths, query values) may be invalid UTF-8: replace such bytes, never throw.
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

std::string Param(const Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : std::string();
}

Result<int64_t> IntParam(const Request& req, const char* name, int64_t def, int64_t lo, int64_t hi) {
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

namespace {

// true / false / 1 / 0; absent: false.
Result<bool> BoolParam(const Request& req, const char* name) {
  const std::string v = Param(req, name);
  if (v.empty() || v == "false" || v == "0") return false;
  if (v == "true" || v == "1") return true;
  return InvalidArgument(std::string("query parameter '") + name + "' must be true or false");
}

// A job's log (one rank) as the log readers of agent/log_times.h read it.
class JobLogReader final : public agent::LogReader {
 public:
  JobLogReader(Service& service, std::string id, int rank) : service_(service), id_(std::move(id)), rank_(rank) {}
  Result<agent::LogChunk> Read(int64_t offset, int64_t max_bytes) override {
    return service_.ReadLog(id_, offset, max_bytes, rank_);
  }
  Result<agent::LogTimes> Times(int64_t first, int64_t max_records) override {
    return service_.ReadLogTimes(id_, first, max_records, rank_);
  }

 private:
  Service& service_;
  const std::string id_;
  const int rank_;
};

}  // namespace

Result<json> ObjectBody(const Request& req, std::initializer_list<const char*> allowed) {
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
TransportOptions MakeTransportOptions(const HttpOptions& o) {
  TransportOptions t = o.transport;
  t.host = o.host;
  t.port = o.port;
  t.tls_cert = o.tls_cert;
  t.tls_key = o.tls_key;
  t.max_body_bytes = o.max_body_bytes;
  // Code archives (PUT /v1/projects/P/blobs/H) may be larger than other bodies, and so may a node's answer with a
  // job's files listing (POST /v1/agent/files; the agent keeps it under agent::kMaxFilesAnswerBytes).
  const size_t normal = o.max_body_bytes, sync = o.max_sync_bytes > 0 ? static_cast<size_t>(o.max_sync_bytes) : 0;
  t.body_limit = [normal, sync](std::string_view method, std::string_view target) {
    if (sync > 0 && method == "PUT" && target.rfind("/v1/projects/", 0) == 0 &&
        target.find("/blobs/") != std::string_view::npos)
      return std::max(normal, sync);
    if (method == "POST" && target.rfind("/v1/agent/files", 0) == 0)
      return std::max(normal, static_cast<size_t>(agent::kMaxFilesAnswerBytes) + (64 << 10));
    return normal;
  };
  return t;
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
      transport_(std::make_unique<HttpTransport>(MakeTransportOptions(options_),
                                                 [this](Request& req, Response& res) { Dispatch(req, res); })) {
  Install();
  // Parked requests (job wait, log follow) watch their job: wake them when it changes.
  service_.SetJobChangeListener([this](const std::string& job_id) {
    transport_->Notify(job_id);
    transport_->Notify("nodes");  // `node drain --wait` (jobs leaving a node)
  });
  // Agents' command long-polls watch their node.
  service_.SetCommandListener([this](const std::string& node) { transport_->Notify("node:" + node); });
}

HttpServer::~HttpServer() {
  Stop();
  service_.SetJobChangeListener(nullptr);
  service_.SetCommandListener(nullptr);
  service_.Exec().SetListener(nullptr);
}

Result<int> HttpServer::Bind() { return transport_->Bind(); }

void HttpServer::Start() { transport_->Start(); }

void HttpServer::Stop() {
  if (transport_) transport_->Stop();
}

void HttpServer::Add(const std::string& method, const std::string& path, Handler handler) {
  const RouteInfo* route = nullptr;
  for (const auto& r : kRoutes)
    if (r.method == method && r.path == path) route = &r;
  for (const auto& r : AgentRoutes())
    if (r.method == method && r.path == path) route = &r;
  if (!route) {
    // A route without an authorisation rule must never be served.
    std::fprintf(stderr, "internal error: route %s %s has no entry in the route table\n", method.c_str(), path.c_str());
    std::abort();
  }
  registered_.push_back(method + " " + path);
  installed_.push_back({method, std::regex(ToRegex(path)), route, std::move(handler), api_metrics_->AddRoute(method, path)});
}

void HttpServer::Dispatch(Request& req, Response& res) {
  // The web console's own files (/, /assets/…): public and static, outside the API's route table.
  if (ServeConsole(req, res)) return;
  const int64_t started = clock_.MonotonicNanos();
  bool path_known = false;
  for (auto& r : installed_) {
    std::smatch m;
    if (!std::regex_match(req.path, m, r.path)) continue;
    path_known = true;
    if (r.method != req.method) continue;
    req.matches.clear();
    for (const auto& sub : m) req.matches.push_back(sub.str());
    Serve(*r.route, r.handler, req, res);
    api_metrics_->Record(r.metrics_slot, res.status, static_cast<double>(clock_.MonotonicNanos() - started) / 1e9);
    return;
  }
  // No route: counted under route="unmatched" (never the raw path, which would make a series per URL).
  struct CountUnmatched {
    HttpServer& s;
    Response& res;
    int64_t started;
    ~CountUnmatched() {
      s.api_metrics_->Record(s.api_metrics_->Unmatched(), res.status,
                             static_cast<double>(s.clock_.MonotonicNanos() - started) / 1e9);
    }
  } count_unmatched{*this, res, started};
  if (path_known) {
    res.set_header("Allow", [&] {
      std::string allow;
      for (const auto& r : installed_)
        if (std::regex_match(req.path, r.path)) allow += (allow.empty() ? "" : ", ") + r.method;
      return allow;
    }());
    SendError(res, {ErrorCode::kInvalidArgument, "method " + req.method + " is not allowed on " + req.path});
    res.status = 405;
    return;
  }
  SendError(res, NotFound("no route " + req.method + " " + req.path + " (see /v1/openapi.json)"));
}

void HttpServer::Serve(const RouteInfo& route, Handler& handler, const Request& req, Response& res) {
  Ctx ctx{req, res};
  ctx.route = &route;
  bool audited = route.method != "GET" || route.path == "/v1/whoami";
  if (route.action != Action::kPublic) {
    const std::string& source = req.remote_addr;
    const std::optional<std::string> token = auth::BearerToken(req.get_header_value("Authorization"));
    if (token && route.path == "/metrics" && IsMetricsToken(*token)) {
      // The metrics token (--metrics-token-file) scrapes /metrics and nothing else.
      ctx.principal.user = "metrics";
      ctx.authenticated = true;
      return handler(ctx);
    }
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
  if (ctx.audited) {
    // Written by the service in the change's own transaction.
    int64_t written = ctx.audited_seq;
    int64_t seen = audit_high_.load();
    while (written > seen && !audit_high_.compare_exchange_weak(seen, written)) {
    }
    return;
  }
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
    // No project named: a caller who is not in "default" but in exactly one project means that one.
    if (spec->project == "default" && !ctx.principal.admin && ctx.principal.roles.size() == 1 &&
        !ctx.principal.RoleIn("default") && req.body.find("\"project\"") == std::string::npos) {
      spec->project = ctx.principal.roles.begin()->first;
    }
    RETURN_IF_SEND_ERROR(res, auth::Authorize(ctx.principal, Action::kProjectWrite, spec->project,
                                              "project " + spec->project + " does not exist"));
    if (!spec->sync.empty()) RETURN_IF_SEND_ERROR(res, CheckSyncBlob(spec->project, spec->sync));
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
    // The audit row goes into the job's transaction (target "job:<id>" filled in there); failures are
    // audited by Serve as usual.
    api::AuditRecord audit = ChangeAuditRow(ctx, clock_.NowMillis());
    audit.target.clear();
    SubmitOptions opts{.actor = ctx.principal.Actor(), .audit = &audit,
                       .idempotency_key = req.get_header_value("Idempotency-Key")};
    auto submitted = service_.Submit(std::move(spec).value(), ctx.principal.user, opts);
    if (!submitted.ok()) return SendError(res, submitted.status());
    const api::Job& job = submitted->job;
    ctx.audit_target = "job:" + job.id;
    NoteChangeAudited(ctx, audit);
    res.set_header("Location", "/v1/jobs/" + job.id);
    if (submitted->replayed) {
      // The same Idempotency-Key again: the job it created, as it is now (200, not 201), audited apart.
      ctx.audit_detail = "idempotent replay";
      res.set_header("Idempotent-Replayed", "true");
      return SendJson(res, api::ToJson(job), 200);
    }
    SendJson(res, api::ToJson(job), 201);
  });
  Add("GET", "/v1/jobs", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    JobListQuery q;
    auto states = StatesParam(req);
    if (!states.ok()) return SendError(res, states.status());
    q.states = *states;
    q.project = Param(req, "project");
    q.user = Param(req, "user");
    q.name = Param(req, "name");
    if (std::string since = Param(req, "since"); !since.empty()) {
      auto t = ParseTimestamp(since);
      if (!t.ok()) {
        return SendError(res, InvalidArgument("since '" + since.substr(0, 64) +
                                              "' is not a time; give RFC 3339 such as 2026-12-08T10:00:00Z"));
      }
      q.created_since = *t;
    }
    // tasks=false: a job array is one row (its tasks are left out).
    if (std::string t = Param(req, "tasks"); t == "false") {
      q.no_array_tasks = true;
    } else if (!t.empty() && t != "true") {
      return SendError(res, InvalidArgument("tasks must be true or false, got '" + t.substr(0, 16) + "'"));
    }
    std::set<std::string> visible;
    if (!ctx.principal.admin) {
      if (!q.project.empty()) {
        RETURN_IF_SEND_ERROR(res, auth::Authorize(ctx.principal, Action::kProjectRead, q.project,
                                                  "project " + q.project + " does not exist"));
      }
      for (const auto& [p, role] : ctx.principal.roles) visible.insert(p);
      q.visible = &visible;
    }
    // Pages of `limit` jobs (default 100, at most 1000), newest first; `cursor` = the previous page's
    // next_cursor. Filtered and paged in the store.
    constexpr int64_t kDefaultJobPage = 100;
    constexpr int64_t kMaxJobPage = 1000;
    auto limit = IntParam(req, "limit", kDefaultJobPage, 1, kMaxJobPage);
    if (!limit.ok()) return SendError(res, limit.status());
    q.limit = static_cast<int>(*limit);
    q.cursor = Param(req, "cursor");
    auto page = service_.ListJobs(q);
    if (!page.ok()) return SendError(res, page.status());
    json arr = json::array();
    for (const auto& j : page->jobs) arr.push_back(api::ToJson(j));
    json body = {{"jobs", std::move(arr)}};
    if (!page->next_cursor.empty()) body["next_cursor"] = page->next_cursor;
    SendJson(res, body);
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
    api::AuditRecord audit = ChangeAuditRow(ctx, clock_.NowMillis());
    auto job = service_.Cancel(req.matches[1], ctx.principal.Actor(), &audit);
    if (!job.ok()) return SendError(res, job.status());
    NoteChangeAudited(ctx, audit);
    SendJson(res, api::ToJson(*job));
  });
  Add("POST", "/v1/jobs/{id}/migrate", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    auto body = ObjectBody(req, {"reason", "force"});
    if (!body.ok()) return SendError(res, body.status());
    auto reason = OptString(*body, "reason");
    if (!reason.ok()) return SendError(res, reason.status());
    auto force = OptBool(*body, "force");
    if (!force.ok()) return SendError(res, force.status());
    api::AuditRecord audit = ChangeAuditRow(ctx, clock_.NowMillis());
    auto job = service_.Migrate(req.matches[1], reason->value_or(""), ctx.principal.Actor(), force->value_or(false),
                                &audit);
    if (!job.ok()) return SendError(res, job.status());
    NoteChangeAudited(ctx, audit);
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
    // Parked in the transport (no thread held) until the job changes, the deadline passes or the
    // client disconnects.
    auto reply = std::make_shared<DeferredReply>();
    reply->watch_key = req.matches[1];
    reply->timeout_ms = timeout_s * 1000;
    reply->check = [this, id = req.matches[1], until_running = until == "running"](Response& out, bool timed_out) {
      auto job = service_.GetJob(id);
      if (!job.ok()) {
        SendError(out, job.status());
        return true;
      }
      bool done = api::IsTerminal(job->state) || (until_running && job->state == api::JobState::kRunning);
      if (!done && !timed_out) return false;
      SendJson(out, api::ToJson(*job));
      return true;
    };
    res.deferred = std::move(reply);
  });
  Add("GET", "/v1/jobs/{id}/logs", [this](Ctx& ctx) {
    const auto& req = ctx.req;
    auto& res = ctx.res;
    std::string id = req.matches[1];
    auto offset = IntParam(req, "offset", 0, 0, int64_t{1} << 50);
    if (!offset.ok()) return SendError(res, offset.status());
    // A multi-node job: which member's log (each node keeps its own); 0 = rank 0 (and a job on one node).
    auto rank_param = IntParam(req, "rank", 0, 0, 1 << 20);
    if (!rank_param.ok()) return SendError(res, rank_param.status());
    const int rank = static_cast<int>(*rank_param);
    auto follow = BoolParam(req, "follow");
    if (!follow.ok()) return SendError(res, follow.status());
    // tail=N: the last N lines; since=T: lines written at or after T (RFC 3339, or a duration back from now);
    // timestamps=true: each line prefixed with its time (agent/log_times.h). The reply starts at the latest of
    // offset, the tail's start and since's; X-FastGPU-Log-Offset says where (the log's byte offset).
    int64_t tail = -1;
    if (std::string t = Param(req, "tail"); !t.empty() && t != "all") {
      auto n = IntParam(req, "tail", -1, 0, int64_t{1} << 31);
      if (!n.ok()) return SendError(res, InvalidArgument("query parameter 'tail' must be a number of lines (0 or "
                                                         "more) or 'all'"));
      tail = *n;
    }
    std::optional<UnixMillis> since;
    if (std::string t = Param(req, "since"); !t.empty()) {
      if (auto at = ParseTimestamp(t); at.ok()) {
        since = *at;
      } else if (auto back = ParseDurationSeconds(t); back.ok() && *back >= 0) {
        since = clock_.NowMillis() - *back * 1000;
      } else {
        return SendError(res, InvalidArgument("query parameter 'since' must be a time (RFC 3339, e.g. "
                                              "2026-12-08T10:00:00Z) or a duration back from now (10m, 2h, 1d), "
                                              "not '" + t.substr(0, 64) + "'"));
      }
    }
    auto timestamps = BoolParam(req, "timestamps");
    if (!timestamps.ok()) return SendError(res, timestamps.status());
    auto job = service_.GetJob(id);
    if (!job.ok()) return SendError(res, job.status());
    // Streamed in pieces of at most 256 KiB as the client reads them: memory stays bounded for any log
    // size and any number of readers. Without follow the stream ends at the end of the log as it is;
    // with follow it waits for more (no thread held) until the job has ended and all output is sent.
    const bool follow_on = *follow;
    // Errors known now (the job's node is unreachable) get a proper status, not a cut 200.
    auto probe = service_.ReadLog(id, *offset, 1, rank);
    if (!probe.ok()) return SendError(res, probe.status());
    auto log = std::make_shared<JobLogReader>(service_, id, rank);
    int64_t start = *offset;
    bool skip_partial = false;  // since's start may be inside a line that is older: skip to the next line
    if (tail >= 0 || since) {
      auto head = service_.ReadLog(id, 0, 1, rank);
      if (!head.ok()) return SendError(res, head.status());
      if (tail >= 0) {
        auto at = agent::TailStart(*log, head->size, tail);
        if (!at.ok()) return SendError(res, at.status());
        start = std::max(start, *at);
      }
      if (since) {
        auto at = agent::SinceStart(*log, *since, head->size, head->modified_ms);
        if (!at.ok()) return SendError(res, at.status());
        if (*at > start) {
          start = *at;
          skip_partial = true;
          if (start <= head->size) {
            auto line = agent::AtLineStart(*log, start);
            if (!line.ok()) return SendError(res, line.status());
            skip_partial = !*line;
          }
          // The rest of a line that started before: skipped here as far as the log goes (then in the stream).
          while (skip_partial && start < head->size) {
            auto piece = service_.ReadLog(id, start, 64 << 10, rank);
            if (!piece.ok()) return SendError(res, piece.status());
            if (piece->data.empty()) break;
            const size_t nl = piece->data.find('\n');
            start += static_cast<int64_t>(nl == std::string::npos ? piece->data.size() : nl + 1);
            skip_partial = nl == std::string::npos;
          }
        }
      }
    }
    if ((*timestamps || since) && probe->size > 0) {
      auto times = service_.ReadLogTimes(id, 0, 1, rank);
      if (!times.ok()) return SendError(res, times.status());
      // A log written before times were recorded: lines are shown with "-" and since keeps them all.
      if (times->total == 0) res.set_header("X-FastGPU-Log-Times", "none");
    }
    res.set_header("X-FastGPU-Log-Offset", std::to_string(start));
    auto stream = std::make_shared<BodyStream>();
    stream->watch_key = id;
    stream->poll_ms = 250;
    std::shared_ptr<agent::LogStamper> stamper;
    stream->next = [this, id, follow_on, rank, off = start, skip_partial, stamp = *timestamps, log, stamper,
                    waits = 0]() mutable {
      bool ended = true;
      if (follow_on) {
        auto job = service_.GetJob(id);
        if (!job.ok()) return StreamStep{StreamStep::Kind::kError, {}};
        ended = api::IsTerminal(job->state);
      }
      // Stamped pieces are smaller: a piece of short lines grows with their times.
      std::string data;
      bool eof = true;
      for (int piece = 0; piece < 64; ++piece) {  // skipping the rest of a line: at most 16 MiB per pull
        auto chunk = service_.ReadLog(id, off, stamp ? 64 << 10 : 256 << 10, rank);
        if (!chunk.ok()) return StreamStep{StreamStep::Kind::kError, {}};
        data = std::move(chunk->data);
        eof = chunk->eof;
        if (!skip_partial || data.empty()) break;
        const size_t nl = data.find('\n');
        const size_t drop = nl == std::string::npos ? data.size() : nl + 1;
        off += static_cast<int64_t>(drop);
        data.erase(0, drop);
        skip_partial = nl == std::string::npos;
        if (!data.empty() || eof) break;
      }
      if (data.empty()) return StreamStep{ended && eof ? StreamStep::Kind::kDone : StreamStep::Kind::kWait, {}};
      if (!stamp) {
        off += static_cast<int64_t>(data.size());
        return StreamStep{StreamStep::Kind::kData, std::move(data)};
      }
      if (!stamper) {
        auto line = agent::AtLineStart(*log, off);
        if (!line.ok()) return StreamStep{StreamStep::Kind::kError, {}};
        stamper = std::make_shared<agent::LogStamper>(*log, off, *line);
      }
      // A line whose time may still come (recorded a few ms after the write, pushed by a remote node next) waits
      // for it while the job runs, for at most ~2 s (8 pulls): then its time is unknown.
      const bool final = !follow_on || ended || waits >= 8;
      std::string out;
      auto used = stamper->Stamp(data, final, &out);
      if (!used.ok()) return StreamStep{StreamStep::Kind::kError, {}};
      off += static_cast<int64_t>(*used);
      if (*used == 0) {
        ++waits;
        return StreamStep{StreamStep::Kind::kWait, {}};
      }
      waits = 0;
      return StreamStep{StreamStep::Kind::kData, std::move(out)};
    };
    res.stream = std::move(stream);
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
    for (const auto& n : service_.Nodes()) arr.push_back(NodeJson(n));
    SendJson(res, {{"nodes", std::move(arr)}});
  });
  InstallAccounts();
  InstallAgent();
  InstallBilling();
  InstallReservations();
  InstallSync();
  InstallExec();
  InstallMetrics();
}

}  // namespace fastgpu::server
