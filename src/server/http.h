// HTTP API: thin handlers over Service. Routes are listed in one table so that the OpenAPI
// document and the authorisation checks can be verified against it.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "auth/accounts.h"
#include "auth/limiter.h"
#include "auth/policy.h"
#include "common/clock.h"
#include "common/status.h"
#include "server/http_transport.h"
#include "server/metrics.h"
#include "server/service.h"
#include "store/store.h"

#include <functional>
#include <regex>

namespace fastgpu::sync {
class BlobStore;
}

namespace fastgpu::server {

// Where a route finds the project it acts on (for authorisation).
enum class Scope {
  kNone,         // not project-scoped (public, any caller, admin)
  kPathProject,  // path parameter {project}
  kPathJob,      // path parameter {id}: the job's project
  kInHandler,    // the handler authorises (project in the body or the query, or a per-object rule)
};

struct RouteInfo {
  std::string method;   // "GET", "POST", "PUT", "PATCH", "DELETE"
  std::string path;     // OpenAPI style: "/v1/jobs/{id}"
  auth::Action action;  // who may call it (see auth/policy.h and docs/security.md)
  Scope scope;
  std::string summary;
};

// Every route the server serves to API tokens.
const std::vector<RouteInfo>& Routes();
// The agent protocol's routes (/v1/agent/…, http_agent.cc): authenticated by node credentials, not API
// tokens, and only for the credential's own node; not audited row by row except joins.
const std::vector<RouteInfo>& AgentRoutes();

// The OpenAPI 3 document (JSON text).
std::string OpenApiJson();

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8400;                 // 0 = pick a free port
  size_t max_body_bytes = 1 << 20;
  TransportOptions transport;      // limits, timeouts, threads (host/port/TLS/body size are taken from above)
  std::string tls_cert;            // PEM files; both set = HTTPS
  std::string tls_key;
  std::string master_key_path;     // for key rotation; empty when the key came from the environment
  // Failed authentications per minute for one credential from one address (x3 for the address), then 429.
  int auth_failures_per_minute = 20;
  billing::TrialPolicy trial;      // credit granted to each new project
  // Fleet mode: where logs pushed by remote agents are kept (<dir>/<node>/<job>.log). Empty: remote agents
  // cannot push logs (their jobs' logs are then unavailable).
  std::string node_log_dir;
  // Code sync (docs/sync.md): where uploaded code archives are kept (<dir>/<project>/<sha256>; empty: uploads
  // are refused) and the largest one taken (`--max-sync-bytes`).
  std::string blob_dir;
  int64_t max_sync_bytes = int64_t{100} << 20;
  // The in-process agent (fastgpu up): its node and its jobs' dirs (<dir>/<id>/work), for `job files`.
  std::string local_node;
  std::string local_job_root;
  // GET /metrics (docs/monitoring.md): the SHA-256 (hex) of the metrics token (--metrics-token-file), which may
  // scrape it and nothing else; admins' API tokens may too. Empty: admins only.
  std::string metrics_token_sha256;
};

struct Fleet;  // node credentials and shipped logs (nodes.h)

class HttpServer {
 public:
  HttpServer(Service& service, auth::AccountService& accounts, store::Store& store, const Clock& clock,
             HttpOptions options);
  ~HttpServer();
  // Binds the port; returns the bound port.
  Result<int> Bind();
  // Serves in a background thread until Stop().
  void Start();
  void Stop();
  // "METHOD /path" of every handler installed, for the route/OpenAPI consistency test.
  const std::vector<std::string>& RegisteredRoutes() const { return registered_; }
  TransportStats Stats() const { return transport_->Stats(); }

 private:
  struct Ctx;
  using Handler = std::function<void(Ctx&)>;
  void Install();
  void InstallAccounts();
  void InstallBilling();
  void InstallAgent();  // http_agent.cc: agent protocol + node administration
  void InstallReservations();  // http_reservations.cc
  void InstallSync();  // http_sync.cc: code archives and job files
  void InstallMetrics();  // http_metrics.cc: GET /metrics
  std::string RenderMetrics();                          // http_metrics.cc
  bool IsMetricsToken(const std::string& token) const;  // http_metrics.cc
  void InstallExec();  // http_exec.cc: exec sessions (client routes; the agent's are in http_agent.cc)
  Status CheckSyncBlob(const std::string& project, const std::string& sha256) const;  // http_sync.cc
  void ServeBlob(Ctx& ctx, const std::string& project, const std::string& sha256);      // http_sync.cc
  // `job files` of a job on a remote node, relayed through its agent (http_sync.cc).
  void RemoteFiles(Ctx& ctx, const api::Job& job, const std::string& rel);
  void Add(const std::string& method, const std::string& path, Handler handler);
  void Dispatch(Request& req, Response& res);
  void Serve(const RouteInfo& route, Handler& handler, const Request& req, Response& res);
  void Audit(const Ctx& ctx, const RouteInfo& route);
  struct Installed {
    std::string method;
    std::regex path;
    const RouteInfo* route;
    Handler handler;
    int metrics_slot = 0;  // its counters in api_metrics_
  };
  std::vector<std::string> registered_;
  std::vector<Installed> installed_;
  auth::AccountService& accounts_;
  store::Store& store_;
  const Clock& clock_;
  auth::FailureLimiter limiter_;
  std::atomic<int64_t> audit_high_{0};  // highest audit seq appended by this process
  std::mutex rotate_mu_;                // one master-key rotation at a time
  Service& service_;
  HttpOptions options_;
  std::shared_ptr<sync::BlobStore> blobs_;  // null: code sync off
  std::shared_ptr<Fleet> fleet_;  // shared_ptr: Fleet is complete only in http_agent.cc
  std::unique_ptr<ApiMetrics> api_metrics_ = std::make_unique<ApiMetrics>();  // per-route requests and latency
  std::unique_ptr<HttpTransport> transport_;
};

}  // namespace fastgpu::server
