// The server's HTTP/1.1 transport: event-driven (Boost.Asio + Boost.Beast), so that slow clients,
// idle keep-alive sockets and long-lived requests (job wait, log follow) hold no thread.
//
// - A few I/O threads run every socket; request handlers run on a fixed worker pool and must be short.
// - A handler that has to wait returns a DeferredReply (re-checked when its key is notified, or at its
//   deadline) or a BodyStream (a chunked body pulled piece by piece; when it has nothing yet it is
//   re-pulled on a notification or after a poll interval). Neither holds a worker while it waits, and a
//   client that disconnects frees its request at once (its socket is watched while parked).
// - Limits: header bytes and field count, body bytes, time to receive a request, time to send each
//   piece of a reply, number of open connections. Violations get a JSON 4xx and the connection is closed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace fastgpu::server {

// One HTTP request, decoded. Names follow cpp-httplib's so handlers read the same.
struct Request {
  std::string method;
  std::string path;         // percent-decoded, without the query
  std::string body;
  std::string remote_addr;  // peer IP address
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::multimap<std::string, std::string> params;             // decoded query parameters
  std::vector<std::string> matches;                          // [0] = path, [1..] = route captures

  bool has_param(const char* name) const { return params.count(name) > 0; }
  std::string get_param_value(const char* name) const;
  bool has_header(const char* name) const;
  std::string get_header_value(const char* name) const;  // case-insensitive; "" when absent
};

struct Response;

// A reply that is not ready yet. `check` runs on a worker: it fills the response and returns true when
// the reply is ready; with `timed_out` it must fill it (the deadline has passed).
struct DeferredReply {
  std::string watch_key;  // re-checked when this key is notified
  int64_t timeout_ms = 30'000;
  std::function<bool(Response& res, bool timed_out)> check;
};

// A chunked body produced piece by piece, in bounded memory.
struct StreamStep {
  enum class Kind { kData, kWait, kDone, kError } kind = Kind::kDone;
  std::string data;  // kData
};
struct BodyStream {
  std::string content_type = "text/plain; charset=utf-8";
  std::string watch_key;       // on kWait: pull again when this key is notified …
  int64_t poll_ms = 250;       // … or after this long
  std::function<StreamStep()> next;  // runs on a worker
};

struct Response {
  int status = 200;
  std::string body;
  std::string content_type;
  std::vector<std::pair<std::string, std::string>> headers;
  std::shared_ptr<DeferredReply> deferred;  // set: the reply comes later (it may be a stream)
  std::shared_ptr<BodyStream> stream;       // set: a chunked body follows the headers

  void set_content(std::string content, std::string type) {
    body = std::move(content);
    content_type = std::move(type);
  }
  void set_header(std::string name, std::string value) { headers.emplace_back(std::move(name), std::move(value)); }
  bool has_header(const char* name) const;
};

struct TransportOptions {
  std::string host = "127.0.0.1";
  int port = 0;                    // 0 = pick a free port
  std::string tls_cert;            // PEM files; both set = HTTPS
  std::string tls_key;
  size_t max_body_bytes = 1 << 20;
  // When set: the body limit of a request, from its method and target (path and query), instead of max_body_bytes.
  std::function<size_t(std::string_view method, std::string_view target)> body_limit;
  size_t max_header_bytes = 16 << 10;  // request line + all header fields
  size_t max_header_fields = 100;
  int request_timeout_ms = 30'000;  // to receive a whole request, idle keep-alive time included
  int write_timeout_ms = 30'000;    // to send each piece of a reply
  size_t max_connections = 20'000;  // more are refused with 503
  int io_threads = 1;
  int workers = 32;                 // handler threads (a submit waits for its fsync on one)
};

// Figures for `bench` and tests.
struct TransportStats {
  int64_t open_connections = 0;
  int64_t parked = 0;  // deferred replies and streams waiting for data
  int64_t refused_connections = 0;
};

class HttpTransport {
 public:
  using Dispatch = std::function<void(Request&, Response&)>;
  HttpTransport(TransportOptions options, Dispatch dispatch);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // Binds the listening socket (and loads the TLS certificate); returns the bound port.
  Result<int> Bind();
  // Serves on background threads until Stop().
  void Start();
  void Stop();
  // Wakes every parked request watching `key` (thread-safe, cheap, never blocks on I/O).
  void Notify(const std::string& key);
  TransportStats Stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// "%41b+c" -> "Ab c" when `plus_is_space`; invalid escapes are kept as they are.
std::string PercentDecode(std::string_view s, bool plus_is_space);
// "a=1&b=x+y" -> {a: "1", b: "x y"} (appended to `out`).
void ParseQuery(std::string_view query, std::multimap<std::string, std::string>& out);

}  // namespace fastgpu::server
