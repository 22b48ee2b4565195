// HTTP API: thin handlers over Service. Routes are listed in one table so that the OpenAPI
// document and the authorisation checks can be verified against it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "server/service.h"

#include <atomic>
#include <functional>
#include <thread>

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace fastgpu::server {

struct RouteInfo {
  std::string method;   // "GET", "POST"
  std::string path;     // OpenAPI style: "/v1/jobs/{id}"
  bool auth = true;     // requires a bearer token
  std::string summary;
};

// Every route the server serves.
const std::vector<RouteInfo>& Routes();

// The OpenAPI 3 document (JSON text).
std::string OpenApiJson();

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8400;                 // 0 = pick a free port
  std::string admin_token_sha256;  // hex SHA-256 of the admin token
  size_t max_body_bytes = 1 << 20;
};

class HttpServer {
 public:
  HttpServer(Service& service, HttpOptions options);
  ~HttpServer();
  // Binds the port; returns the bound port.
  Result<int> Bind();
  // Serves in a background thread until Stop().
  void Start();
  void Stop();
  // "METHOD /path" of every handler installed, for the route/OpenAPI consistency test.
  const std::vector<std::string>& RegisteredRoutes() const { return registered_; }

 private:
  void Install();
  void Add(const std::string& method, const std::string& path,
           std::function<void(const httplib::Request&, httplib::Response&)> handler);
  std::vector<std::string> registered_;
  std::atomic<bool> served_{false};
  std::thread thread_;
  Service& service_;
  HttpOptions options_;
  std::unique_ptr<httplib::Server> http_;
};

}  // namespace fastgpu::server
