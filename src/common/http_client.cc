#include "common/http_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <charconv>
#include <cstring>

namespace fastgpu::http {
namespace {

constexpr size_t kMaxHeadBytes = 64 * 1024;
constexpr size_t kReadPiece = 16 * 1024;

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

void SetTimeout(int fd, int option, int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

}  // namespace

std::string_view ErrorText(Error e) {
  switch (e) {
    case Error::kNone: return "success";
    case Error::kBadUrl: return "unusable URL";
    case Error::kConnection: return "connection refused";
    case Error::kConnectionTimeout: return "connection timed out";
    case Error::kWrite: return "could not send the request (write error)";
    case Error::kRead: return "no complete answer (read error or timeout)";
    case Error::kTlsConnection: return "TLS handshake failed";
    case Error::kTlsVerification: return "server certificate not trusted";
    case Error::kCanceled: return "canceled";
  }
  return "unknown error";
}

std::string Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) return v;
  return {};
}

bool Response::HasHeader(std::string_view name) const {
  for (const auto& h : headers)
    if (IEquals(h.first, name)) return true;
  return false;
}

// One open connection (plain or TLS) and the bytes read from it but not used yet.
struct Client::Connection {
  int fd = -1;
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx;
  std::unique_ptr<SSL, SslFree> ssl;
  // Bytes read and not used yet: buf[begin, end). Not zero-filled (a fresh 64 KiB memset and its page faults
  // would cost a short CLI call more than its answer).
  std::unique_ptr<char[]> buf;
  size_t cap = 0, begin = 0, end = 0;

  // No TLS close_notify: every answer is framed, and writing to a peer that closed could raise SIGPIPE.
  ~Connection() {
    ssl.reset();
    if (fd >= 0) ::close(fd);
  }

  size_t available() const { return end - begin; }
  std::string_view pending() const { return std::string_view(buf.get() + begin, end - begin); }
  void consume(size_t n) { begin += n; }

  // Reads more bytes after the unused ones: > 0 bytes read, 0 end of stream, < 0 error or timeout.
  ssize_t Fill() {
    if (begin == end) begin = end = 0;
    if (cap - end < kReadPiece / 4) {
      // Move the unused bytes to the front, growing the buffer when they fill most of it.
      const size_t used = end - begin;
      const size_t new_cap = std::max<size_t>(kReadPiece, used + kReadPiece);
      if (new_cap > cap) {
        auto bigger = std::make_unique_for_overwrite<char[]>(new_cap);
        if (used > 0) std::memcpy(bigger.get(), buf.get() + begin, used);
        buf = std::move(bigger);
        cap = new_cap;
      } else if (used > 0) {
        std::memmove(buf.get(), buf.get() + begin, used);
      }
      begin = 0;
      end = used;
    }
    char* dst = buf.get() + end;
    const size_t room = cap - end;
    ssize_t n;
    if (ssl) {
      ERR_clear_error();
      const int r = SSL_read(ssl.get(), dst, static_cast<int>(std::min<size_t>(room, INT_MAX)));
      if (r > 0) {
        n = r;
      } else {
        const int err = SSL_get_error(ssl.get(), r);
        n = err == SSL_ERROR_ZERO_RETURN ? 0 : -1;
      }
    } else {
      do n = ::recv(fd, dst, room, 0);
      while (n < 0 && errno == EINTR);
    }
    if (n > 0) end += static_cast<size_t>(n);
    return n;
  }

  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      ssize_t n;
      if (ssl) {
        ERR_clear_error();
        // SSL_write uses write(2), which raises SIGPIPE on a closed peer: block it for this thread
        // around the write and consume the one our write raised (not one that was already pending).
        sigset_t pipe_only, old_mask, pending;
        sigemptyset(&pipe_only);
        sigaddset(&pipe_only, SIGPIPE);
        sigpending(&pending);
        const bool was_pending = sigismember(&pending, SIGPIPE) == 1;
        pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask);
        const int r = SSL_write(ssl.get(), data.data(), static_cast<int>(data.size()));
        if (r <= 0 && !was_pending) {
          timespec zero{};
          while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
          }
        }
        pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
        n = r > 0 ? r : -1;
      } else {
        do n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
      }
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
};

Client::Client(std::string_view url, Options options) : options_(std::move(options)) {
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    rest = url.substr(8);
    https_ = true;
  } else {
    return;
  }
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) return;
  std::string_view port;
  if (authority.starts_with("[")) {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return;
    host_ = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return;
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.rfind(':');
    host_ = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (host_.empty()) return;
  if (port.empty()) {
    port_ = https_ ? "443" : "80";
  } else {
    int p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || end != port.data() + port.size() || p <= 0 || p > 65535) return;
    port_ = std::string(port);
  }
  const bool v6 = host_.find(':') != std::string::npos;
  host_header_ = v6 ? "[" + host_ + "]" : host_;
  if (!port.empty()) host_header_ += ":" + port_;
  valid_ = true;
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

Outcome Client::Send(std::string_view method, std::string_view target, std::string_view body,
                     std::string_view content_type, const Headers& headers, const BodySink& sink) {
  if (!valid_) return Outcome{Error::kBadUrl, {}, {}};
  bool reused = false;
  Outcome o = SendOnce(method, target, body, content_type, headers, sink, reused);
  // A kept-alive connection the server closed meanwhile fails before any answer byte: open a new one once.
  // A failed read may also mean the server got the request and did not answer in time: send it again only
  // when doing so twice is harmless (not a POST or PATCH, unless it carries an Idempotency-Key).
  bool repeatable = method != "POST" && method != "PATCH";
  for (const auto& h : headers) repeatable = repeatable || IEquals(h.first, "Idempotency-Key");
  if (reused && (o.error == Error::kWrite || (o.error == Error::kRead && repeatable)) && o.response.status == 0) {
    conn_.reset();
    o = SendOnce(method, target, body, content_type, headers, sink, reused);
  }
  if (!o.ok()) conn_.reset();
  return o;
}

Outcome Client::SendOnce(std::string_view method, std::string_view target, std::string_view body,
                         std::string_view content_type, const Headers& headers, const BodySink& sink,
                         bool& reused) {
  Outcome out;
  reused = conn_ != nullptr;
  if (!conn_) {
    // ---- connect ----
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    if (::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &list) != 0 || list == nullptr) {
      out.error = Error::kConnection;
      return out;
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addrs(list, &::freeaddrinfo);
    int fd = -1;
    bool timed_out = false;
    for (addrinfo* a = list; a != nullptr && fd < 0; a = a->ai_next) {
      int s = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
      if (s < 0) continue;
      int rc = ::connect(s, a->ai_addr, a->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS) {
        pollfd p{s, POLLOUT, 0};
        int ready;
        do ready = ::poll(&p, 1, options_.connect_timeout_ms);
        while (ready < 0 && errno == EINTR);
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        if (ready == 0) {
          timed_out = true;
        } else if (ready > 0 && ::getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0) {
          rc = 0;
        }
      }
      if (rc == 0) {
        fd = s;
      } else {
        ::close(s);
      }
    }
    if (fd < 0) {
      out.error = timed_out ? Error::kConnectionTimeout : Error::kConnection;
      return out;
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    SetTimeout(fd, SO_RCVTIMEO, options_.read_timeout_ms);
    SetTimeout(fd, SO_SNDTIMEO, options_.write_timeout_ms);
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;

    // ---- TLS (OpenSSL initialises itself here, on first use) ----
    if (https_) {
      conn->ctx.reset(SSL_CTX_new(TLS_client_method()));
      if (!conn->ctx) {
        out.error = Error::kTlsConnection;
        return out;
      }
      SSL_CTX_set_min_proto_version(conn->ctx.get(), TLS1_2_VERSION);
      SSL_CTX_set_verify(conn->ctx.get(), SSL_VERIFY_PEER, nullptr);
      const bool trust = options_.ca_file.empty()
                             ? SSL_CTX_set_default_verify_paths(conn->ctx.get()) == 1
                             : SSL_CTX_load_verify_locations(conn->ctx.get(), options_.ca_file.c_str(), nullptr) == 1;
      if (!trust) {
        out.error = Error::kTlsVerification;
        out.detail = "cannot load the trusted certificates" +
                     (options_.ca_file.empty() ? std::string() : " from " + options_.ca_file);
        return out;
      }
      conn->ssl.reset(SSL_new(conn->ctx.get()));
      if (!conn->ssl || SSL_set_fd(conn->ssl.get(), fd) != 1) {
        out.error = Error::kTlsConnection;
        return out;
      }
      if (IsIpLiteral(host_)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(conn->ssl.get()), host_.c_str());
      } else {
        SSL_set_tlsext_host_name(conn->ssl.get(), host_.c_str());
        SSL_set1_host(conn->ssl.get(), host_.c_str());
      }
      ERR_clear_error();
      if (SSL_connect(conn->ssl.get()) != 1) {
        const long v = SSL_get_verify_result(conn->ssl.get());
        if (v != X509_V_OK) {
          out.error = Error::kTlsVerification;
          out.detail = X509_verify_cert_error_string(v);
        } else {
          out.error = Error::kTlsConnection;
        }
        ERR_clear_error();
        return out;
      }
    }
    conn_ = std::move(conn);
  }
  Connection& c = *conn_;

  // ---- request ----
  std::string req;
  req.reserve(256 + body.size());
  req.append(method).append(" ").append(target.empty() ? "/" : target).append(" HTTP/1.1\r\nHost: ");
  req.append(host_header_).append("\r\nUser-Agent: fastgpu\r\nAccept: */*\r\n");
  if (!options_.bearer_token.empty()) req.append("Authorization: Bearer ").append(options_.bearer_token).append("\r\n");
  if (!content_type.empty()) req.append("Content-Type: ").append(content_type).append("\r\n");
  if (!body.empty() || !(method == "GET" || method == "HEAD" || method == "DELETE"))
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  req.append(options_.keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n");
  for (const auto& [k, v] : headers) req.append(k).append(": ").append(v).append("\r\n");
  req.append("\r\n");
  if (body.size() <= 16 * 1024) {
    req.append(body);
    if (!c.WriteAll(req)) {
      out.error = Error::kWrite;
      return out;
    }
  } else if (!c.WriteAll(req) || !c.WriteAll(body)) {
    out.error = Error::kWrite;
    return out;
  }

  // ---- status line and headers (1xx answers are skipped) ----
  Response& res = out.response;
  size_t head_end;
  bool http10 = false;
  while (true) {
    size_t scanned = 0;
    while ((head_end = c.pending().find("\r\n\r\n", scanned)) == std::string_view::npos) {
      if (c.available() > kMaxHeadBytes) {
        out.error = Error::kRead;
        return out;
      }
      scanned = c.available() >= 3 ? c.available() - 3 : 0;
      if (c.Fill() <= 0) {
        out.error = Error::kRead;
        return out;
      }
    }
    std::string_view head = c.pending().substr(0, head_end);
    std::string_view status_line = head.substr(0, head.find("\r\n"));
    if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) {
      out.error = Error::kRead;
      return out;
    }
    http10 = status_line[7] == '0';
    int status = 0;
    auto [end, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status);
    if (ec != std::errc() || end != status_line.data() + 12) {
      out.error = Error::kRead;
      return out;
    }
    res.headers.clear();
    std::string_view lines = head.substr(status_line.size());
    while (!lines.empty()) {
      if (lines.starts_with("\r\n")) lines.remove_prefix(2);
      std::string_view line = lines.substr(0, lines.find("\r\n"));
      lines.remove_prefix(line.size());
      const size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      res.headers.emplace_back(std::string(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1))));
    }
    c.consume(head_end + 4);
    if (status >= 100 && status < 200) continue;
    res.status = status;
    break;
  }

  // ---- body ----
  auto deliver = [&](std::string_view data) {
    if (data.empty()) return true;
    if (sink) return sink(res.status, data);
    res.body.append(data);
    return true;
  };
  const std::string connection = res.Header("Connection");
  bool reusable = options_.keep_alive && !IEquals(connection, "close") && (!http10 || IEquals(connection, "keep-alive"));
  const bool no_body = method == "HEAD" || res.status == 204 || res.status == 304;
  const std::string te = res.Header("Transfer-Encoding");
  const std::string cl = res.Header("Content-Length");
  if (no_body) {
    // nothing to read
  } else if (!te.empty() && !IEquals(te, "identity")) {
    // chunked
    while (true) {
      size_t eol;
      while ((eol = c.pending().find("\r\n")) == std::string_view::npos) {
        if (c.available() > 1024 || c.Fill() <= 0) {
          out.error = Error::kRead;
          return out;
        }
      }
      std::string_view size_line = c.pending().substr(0, eol);
      size_line = size_line.substr(0, size_line.find(';'));
      size_line = Trim(size_line);
      size_t size = 0;
      auto [end, ec] = std::from_chars(size_line.data(), size_line.data() + size_line.size(), size, 16);
      if (ec != std::errc() || end != size_line.data() + size_line.size()) {
        out.error = Error::kRead;
        return out;
      }
      c.consume(eol + 2);
      if (size == 0) {
        // trailers up to the empty line
        while (true) {
          while ((eol = c.pending().find("\r\n")) == std::string_view::npos) {
            if (c.available() > kMaxHeadBytes || c.Fill() <= 0) {
              out.error = Error::kRead;
              return out;
            }
          }
          c.consume(eol + 2);
          if (eol == 0) break;
        }
        break;
      }
      while (size > 0) {
        if (c.available() == 0 && c.Fill() <= 0) {
          out.error = Error::kRead;
          return out;
        }
        const size_t n = std::min(size, c.available());
        const bool more = deliver(c.pending().substr(0, n));
        c.consume(n);
        size -= n;
        if (!more) {
          out.error = Error::kCanceled;
          return out;
        }
      }
      while (c.available() < 2) {
        if (c.Fill() <= 0) {
          out.error = Error::kRead;
          return out;
        }
      }
      if (c.pending().substr(0, 2) != "\r\n") {
        out.error = Error::kRead;
        return out;
      }
      c.consume(2);
    }
  } else if (!cl.empty()) {
    uint64_t left = 0;
    auto [end, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), left);
    if (ec != std::errc() || end != cl.data() + cl.size()) {
      out.error = Error::kRead;
      return out;
    }
    while (left > 0) {
      if (c.available() == 0 && c.Fill() <= 0) {
        out.error = Error::kRead;
        return out;
      }
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, c.available()));
      const bool more = deliver(c.pending().substr(0, n));
      c.consume(n);
      left -= n;
      if (!more) {
        out.error = Error::kCanceled;
        return out;
      }
    }
  } else {
    // body up to the end of the stream
    reusable = false;
    while (true) {
      if (c.available() > 0) {
        const bool more = deliver(c.pending());
        c.consume(c.available());
        if (!more) {
          out.error = Error::kCanceled;
          return out;
        }
      }
      const ssize_t n = c.Fill();
      if (n == 0) break;
      if (n < 0) {
        out.error = Error::kRead;
        return out;
      }
    }
  }
  if (!reusable) conn_.reset();
  return out;
}

}  // namespace fastgpu::http
