#include "server/http.h"

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "api/json.h"
#include "common/crypto.h"

namespace fastgpu::server {

using nlohmann::json;

namespace {

constexpr size_t kHttpThreads = 64;

const std::vector<RouteInfo> kRoutes = {
    {"GET", "/healthz", false, "Liveness check"},
    {"GET", "/v1/openapi.json", false, "This API description"},
    {"POST", "/v1/jobs", true, "Submit a job"},
    {"GET", "/v1/jobs", true, "List jobs (newest first)"},
    {"GET", "/v1/jobs/{id}", true, "Get a job"},
    {"POST", "/v1/jobs/{id}/cancel", true, "Cancel a job"},
    {"GET", "/v1/jobs/{id}/events", true, "A job's state changes"},
    {"GET", "/v1/jobs/{id}/logs", true, "A job's output (follow=true streams)"},
    {"GET", "/v1/jobs/{id}/wait", true, "Wait for a job to end (or to run)"},
    {"GET", "/v1/gpus", true, "List GPUs"},
    {"GET", "/v1/nodes", true, "List nodes"},
};

void SendError(httplib::Response& res, const Status& st) {
  res.status = HttpStatusFor(st.code());
  res.set_content(api::ErrorBody(st), "application/json");
}

void SendJson(httplib::Response& res, const json& j, int status = 200) {
  res.status = status;
  res.set_content(j.dump(), "application/json");
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
    n = n * 10 + (c - '0');
    if (n > hi) return InvalidArgument(std::string("query parameter '") + name + "' is too large (max " + std::to_string(hi) + ")");
  }
  if (n < lo) return InvalidArgument(std::string("query parameter '") + name + "' is too small");
  return n;
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

std::string ToRegex(const std::string& path) {
  return std::regex_replace(path, std::regex(R"(\{[a-z_]+\})"), "([A-Za-z0-9_.-]+)");
}

}  // namespace

const std::vector<RouteInfo>& Routes() { return kRoutes; }

HttpServer::HttpServer(Service& service, HttpOptions options)
    : service_(service), options_(std::move(options)), http_(std::make_unique<httplib::Server>()) {
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

void HttpServer::Add(const std::string& method, const std::string& path,
                     std::function<void(const httplib::Request&, httplib::Response&)> handler) {
  registered_.push_back(method + " " + path);
  if (method == "GET") {
    http_->Get(ToRegex(path), std::move(handler));
  } else {
    http_->Post(ToRegex(path), std::move(handler));
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

  std::string token_hash = options_.admin_token_sha256;
  s.set_pre_routing_handler([token_hash](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/healthz" || req.path == "/v1/openapi.json") return httplib::Server::HandlerResponse::Unhandled;
    std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    bool ok = false;
    if (auth.rfind(prefix, 0) == 0 && !token_hash.empty()) {
      std::string h = Sha256Hex(auth.substr(prefix.size()));
      ok = h.size() == token_hash.size() && CRYPTO_memcmp(h.data(), token_hash.data(), h.size()) == 0;
    }
    if (!ok) {
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer");
      res.set_content(api::ErrorBody({ErrorCode::kUnauthenticated,
                                      "missing or invalid API token: pass 'Authorization: Bearer <token>' "
                                      "(fastgpu up writes the admin token to $FASTGPU_HOME/admin.token)"}),
                      "application/json");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
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

  Add("GET", "/healthz", [](const httplib::Request&, httplib::Response& res) { SendJson(res, {{"status", "ok"}}); });
  Add("GET", "/v1/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(OpenApiJson(), "application/json");
  });

  Add("POST", "/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    auto spec = api::JobSpecFromJsonText(req.body);
    if (!spec.ok()) return SendError(res, spec.status());
    auto job = service_.Submit(std::move(spec).value(), "admin");
    if (!job.ok()) return SendError(res, job.status());
    res.set_header("Location", "/v1/jobs/" + job->id);
    SendJson(res, api::ToJson(*job), 201);
  });
  Add("GET", "/v1/jobs", [this](const httplib::Request& req, httplib::Response& res) {
    JobListQuery q;
    auto states = StatesParam(req);
    if (!states.ok()) return SendError(res, states.status());
    q.states = *states;
    q.project = Param(req, "project");
    auto limit = IntParam(req, "limit", 0, 0, 1'000'000);
    if (!limit.ok()) return SendError(res, limit.status());
    q.limit = static_cast<int>(*limit);
    json arr = json::array();
    for (const auto& j : service_.ListJobs(q)) arr.push_back(api::ToJson(j));
    SendJson(res, {{"jobs", std::move(arr)}});
  });
  Add("GET", "/v1/jobs/{id}", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = service_.GetJob(req.matches[1]);
    if (!job.ok()) return SendError(res, job.status());
    SendJson(res, api::ToJson(*job));
  });
  Add("POST", "/v1/jobs/{id}/cancel", [this](const httplib::Request& req, httplib::Response& res) {
    auto job = service_.Cancel(req.matches[1], "user:admin");
    if (!job.ok()) return SendError(res, job.status());
    SendJson(res, api::ToJson(*job));
  });
  Add("GET", "/v1/jobs/{id}/events", [this](const httplib::Request& req, httplib::Response& res) {
    auto events = service_.Events(req.matches[1]);
    if (!events.ok()) return SendError(res, events.status());
    json arr = json::array();
    for (const auto& e : *events) arr.push_back(api::ToJson(e));
    SendJson(res, {{"events", std::move(arr)}});
  });
  Add("GET", "/v1/jobs/{id}/wait", [this](const httplib::Request& req, httplib::Response& res) {
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
  Add("GET", "/v1/jobs/{id}/logs", [this](const httplib::Request& req, httplib::Response& res) {
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
  Add("GET", "/v1/gpus", [this](const httplib::Request&, httplib::Response& res) {
    json arr = json::array();
    for (const auto& g : service_.ListGpus()) arr.push_back(api::ToJson(g));
    SendJson(res, {{"gpus", std::move(arr)}});
  });
  Add("GET", "/v1/nodes", [this](const httplib::Request&, httplib::Response& res) {
    json arr = json::array();
    for (const auto& n : service_.ListNodes()) arr.push_back(api::ToJson(n));
    SendJson(res, {{"nodes", std::move(arr)}});
  });
}

}  // namespace fastgpu::server
