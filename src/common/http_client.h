// A small blocking HTTP/1.1 client (http:// and https://) for the CLI and the benchmarks.
//
// Why not cpp-httplib: Debian ships it as a shared library whose load-time constructor initialises all of
// OpenSSL (error strings, algorithms), and that plus the dynamic relocations of the libraries it pulls in
// cost every `fastgpu` process milliseconds before main(). This client has no static state: OpenSSL is
// touched only when a URL is https (OpenSSL initialises itself on first use).
//
// One Client holds at most one connection; with keep_alive it is reused across requests (and opened again,
// once, when the server closed it in between). Not thread-safe: use one Client per thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fastgpu::http {

enum class Error {
  kNone,
  kBadUrl,             // not http://HOST[:PORT] or https://HOST[:PORT]
  kConnection,         // name not resolved, or nothing listens (connection refused)
  kConnectionTimeout,  // no connection within connect_timeout_ms
  kWrite,              // the request could not be sent
  kRead,               // no complete answer (closed, malformed, or read timeout)
  kTlsConnection,      // TLS handshake failed (not an HTTPS server, protocol error)
  kTlsVerification,    // the server's certificate is not trusted or not for this host
  kCanceled,           // the body sink returned false
};

// Short words for an error ("connection refused", "read error or timeout", ...).
std::string_view ErrorText(Error e);

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Response {
  int status = 0;  // 0 until a status line arrived
  Headers headers;
  std::string body;  // empty when a body sink took the bytes

  // Value of the first header called `name` (case-insensitive), or "".
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

struct Outcome {
  Error error = Error::kNone;
  std::string detail;  // kTlsVerification: why the certificate was refused (OpenSSL's words)
  Response response;   // as far as it arrived

  bool ok() const { return error == Error::kNone; }
  // As cpp-httplib's Result reads: `if (!r || r->status != 200)`.
  explicit operator bool() const { return ok(); }
  const Response* operator->() const { return &response; }
  Response* operator->() { return &response; }
};

struct Options {
  std::string bearer_token;  // sent as "Authorization: Bearer ..." when not empty
  std::string ca_file;       // https: PEM bundle to trust; empty: the system's trust store
  int connect_timeout_ms = 5000;
  int read_timeout_ms = 30000;   // longest silence while waiting for answer bytes
  int write_timeout_ms = 30000;
  bool keep_alive = false;
};

// Receives answer body bytes as they arrive (status = the answer's status); false stops (kCanceled).
using BodySink = std::function<bool(int status, std::string_view data)>;

class Client {
 public:
  explicit Client(std::string_view base_url, Options options = {});
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // False when the base URL cannot be used (every request then fails with kBadUrl).
  bool valid() const { return valid_; }
  Options& options() { return options_; }

  // `target` is the path and query ("/v1/jobs?state=RUNNING"). `sink`, when given, receives the body.
  Outcome Send(std::string_view method, std::string_view target, std::string_view body = {},
               std::string_view content_type = {}, const Headers& headers = {}, const BodySink& sink = nullptr);

  Outcome Get(std::string_view target, const BodySink& sink = nullptr) {
    return Send("GET", target, {}, {}, {}, sink);
  }
  Outcome Post(std::string_view target, std::string_view body, std::string_view content_type = "application/json",
               const Headers& headers = {}) {
    return Send("POST", target, body, content_type, headers);
  }

 private:
  struct Connection;

  Outcome SendOnce(std::string_view method, std::string_view target, std::string_view body,
                   std::string_view content_type, const Headers& headers, const BodySink& sink, bool& reused);

  bool valid_ = false;
  bool https_ = false;
  std::string host_;  // without brackets
  std::string port_;
  std::string host_header_;
  Options options_;
  std::unique_ptr<Connection> conn_;
};

}  // namespace fastgpu::http
