#include "server/http_transport.h"

#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <future>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>

namespace fastgpu::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;

namespace {

char LowerChar(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (LowerChar(a[i]) != LowerChar(b[i])) return false;
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string ErrorJson(const std::string& code, const std::string& message) {
  nlohmann::json j = {{"error", {{"code", code}, {"message", message}}}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string_view SV(beast::string_view s) { return std::string_view(s.data(), s.size()); }

bool IsParseError(const beast::error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
}

}  // namespace

void ParseQuery(std::string_view query, std::multimap<std::string, std::string>& out) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    if (!kv.empty()) {
      auto eq = kv.find('=');
      out.emplace(PercentDecode(kv.substr(0, eq), true),
                  eq == std::string_view::npos ? std::string() : PercentDecode(kv.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(plus_is_space && c == '+' ? ' ' : c);
  }
  return out;
}

std::string Request::get_param_value(const char* name) const {
  auto it = params.find(name);
  return it == params.end() ? std::string() : it->second;
}

bool Request::has_header(const char* name) const {
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) return true;
  return false;
}

std::string Request::get_header_value(const char* name) const {
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) return v;
  return {};
}

bool Response::has_header(const char* name) const {
  for (const auto& [k, v] : headers)
    if (IEquals(k, name)) return true;
  return false;
}

// Something parked (a deferred reply or a stream waiting for data) that a notification wakes.
class Parkable {
 public:
  virtual ~Parkable() = default;
  virtual void Wake() = 0;   // thread-safe
  virtual void Close() = 0;  // thread-safe
};

struct HttpTransport::Impl {
  TransportOptions opt;
  Dispatch dispatch;
  mutable std::mutex mu;  // guards watchers, sessions, next_id
  std::unordered_map<std::string, std::map<uint64_t, std::weak_ptr<Parkable>>> watchers;
  std::map<uint64_t, std::weak_ptr<Parkable>> sessions;
  uint64_t next_id = 0;
  std::atomic<int64_t> open{0};
  std::atomic<int64_t> parked{0};
  std::atomic<int64_t> refused{0};
  std::atomic<bool> stopping{false};  // Stop() has begun: no new connections, requests or pulls
  std::optional<ssl::context> tls;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::steady_timer accept_backoff;
  asio::thread_pool workers;
  std::vector<std::thread> io_threads;
  bool started = false;
  bool stopped = false;

  Impl(TransportOptions o, Dispatch d)
      : opt(std::move(o)),
        dispatch(std::move(d)),
        ioc(std::max(1, opt.io_threads)),
        acceptor(asio::make_strand(ioc)),
        accept_backoff(acceptor.get_executor()),
        workers(static_cast<size_t>(std::max(1, opt.workers))) {}

  void Watch(const std::string& key, uint64_t id, std::weak_ptr<Parkable> p) {
    std::lock_guard lock(mu);
    watchers[key][id] = std::move(p);
  }
  void Unwatch(const std::string& key, uint64_t id) {
    std::lock_guard lock(mu);
    auto it = watchers.find(key);
    if (it == watchers.end()) return;
    it->second.erase(id);
    if (it->second.empty()) watchers.erase(it);
  }

  void Accept();
  void OnAccept(tcp::socket sock);
};

namespace {

template <class Stream>
class Session : public Parkable, public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... Args>
  Session(HttpTransport::Impl& t, uint64_t id, std::string peer, Args&&... args)
      : t_(t), id_(id), peer_(std::move(peer)), stream_(std::forward<Args>(args)...), timer_(stream_.get_executor()) {}

  ~Session() override {
    if (parked_) --t_.parked;
    if (!watch_key_.empty()) t_.Unwatch(watch_key_, id_);
    --t_.open;
    std::lock_guard lock(t_.mu);
    t_.sessions.erase(id_);
  }

  void Run() {
    asio::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  void Wake() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->OnWake(); });
  }

  void Close() override {
    asio::post(stream_.get_executor(), [self = this->shared_from_this()] { self->CloseNow(); });
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }
  size_t body_limit_ = 0;  // of the request being read

  void Begin() {
    if constexpr (kTls) {
      Lowest().expires_after(milliseconds(t_.opt.request_timeout_ms));
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->CloseNow();
        self->ReadHeader();
      });
    } else {
      ReadHeader();
    }
  }

  void ReadHeader() {
    if (closed_) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(t_.opt.max_header_bytes));
    body_limit_ = t_.opt.max_body_bytes;
    // With a per-request limit, the header is read first (the parser checks Content-Length against its limit as
    // soon as the header is in, before the target is known) and the limit applied in OnHeader.
    parser_->body_limit(t_.opt.body_limit ? std::numeric_limits<std::uint64_t>::max() : body_limit_);
    Lowest().expires_after(milliseconds(t_.opt.request_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  // A read failed: answer what the client can act on, or just close.
  void OnReadError(const beast::error_code& ec) {
    // Too slow (idle keep-alive, or a request trickling in): the stream has closed the socket already.
    if (ec == beast::error::timeout) return CloseNow();
    if (ec == bhttp::error::header_limit)
      return Fail(431, "payload_too_large",
                  "request header is too large (limit " + std::to_string(t_.opt.max_header_bytes) + " bytes)");
    if (ec == bhttp::error::body_limit)
      return Fail(413, "payload_too_large", "request body is too large (limit " + std::to_string(body_limit_) + " bytes)");
    if (IsParseError(ec) && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
      return Fail(400, "invalid_argument", "malformed HTTP request: " + ec.message());
    CloseNow();
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& h = parser_->get();
    if (static_cast<size_t>(std::distance(h.begin(), h.end())) > t_.opt.max_header_fields)
      return Fail(431, "payload_too_large",
                  "too many request header fields (limit " + std::to_string(t_.opt.max_header_fields) + ")");
    if (t_.opt.body_limit) {
      body_limit_ = t_.opt.body_limit(SV(h.method_string()), SV(h.target()));
      if (parser_->content_length() && *parser_->content_length() > body_limit_)
        return Fail(413, "payload_too_large", "request body is too large (limit " + std::to_string(body_limit_) + " bytes)");
      parser_->body_limit(body_limit_);
    }
    if (IEquals(SV(h[bhttp::field::expect]), "100-continue")) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_, 11);
      Lowest().expires_after(milliseconds(t_.opt.write_timeout_ms));
      bhttp::async_write(stream_, *cont, [self = this->shared_from_this(), cont](beast::error_code e, size_t) {
        if (e) return self->CloseNow();
        self->ReadBody();
      });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRequest();
    Lowest().expires_after(milliseconds(t_.opt.request_timeout_ms));
    bhttp::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->OnReadError(ec);
      self->OnRequest();
    });
  }

  void OnRequest() {
    auto msg = parser_->release();
    parser_.reset();
    keep_alive_ = msg.keep_alive();
    http10_ = msg.version() < 11;
    Lowest().expires_never();
    auto req = std::make_shared<Request>();
    req->method = std::string(SV(msg.method_string()));
    std::string_view target = SV(msg.target());
    auto q = target.find('?');
    req->path = PercentDecode(target.substr(0, q), false);
    if (q != std::string_view::npos) ParseQuery(target.substr(q + 1), req->params);
    for (const auto& f : msg) {
      std::string name(SV(f.name_string()));
      for (auto& c : name) c = LowerChar(c);
      req->headers.emplace_back(std::move(name), std::string(SV(f.value())));
    }
    req->body = std::move(msg.body());
    req->remote_addr = peer_;
    // An HTML-form body carries its fields like a query (as cpp-httplib does): e.g. POST /oauth/token.
    if (IEquals(req->get_header_value("content-type").substr(0, 33), "application/x-www-form-urlencoded"))
      ParseQuery(req->body, req->params);
    if (t_.stopping.load()) return CloseNow();
    auto res = std::make_shared<Response>();
    asio::post(t_.workers, [self = this->shared_from_this(), req, res] {
      try {
        self->t_.dispatch(*req, *res);
      } catch (const std::exception& e) {
        *res = Response();
        res->status = 500;
        res->set_content(ErrorJson("internal", e.what()), "application/json");
      }
      asio::post(self->stream_.get_executor(), [self, res] { self->OnResponse(res); });
    });
  }

  void OnResponse(const std::shared_ptr<Response>& res) {
    if (closed_) return;
    if (res->deferred && res->deferred->check) return ParkDeferred(res->deferred);
    if (res->stream && res->stream->next) return StartStream(*res);
    WriteFull(*res);
  }

  template <class Message>
  void FillHead(Message& m, const Response& res) {
    m.version(11);
    m.result(static_cast<unsigned>(res.status));
    m.set(bhttp::field::server, "fastgpu");
    for (const auto& [k, v] : res.headers) m.insert(k, v);
    m.keep_alive(keep_alive_);
  }

  void WriteFull(const Response& res) {
    auto out = std::make_shared<bhttp::response<bhttp::string_body>>();
    FillHead(*out, res);
    if (!res.content_type.empty()) out->set(bhttp::field::content_type, res.content_type);
    out->body() = res.body;
    out->prepare_payload();
    Lowest().expires_after(milliseconds(t_.opt.write_timeout_ms));
    bhttp::async_write(stream_, *out, [self = this->shared_from_this(), out](beast::error_code ec, size_t) {
      if (ec) return self->CloseNow();
      if (!self->keep_alive_) return self->Shutdown();
      self->ReadHeader();
    });
  }

  void Fail(int status, const std::string& code, const std::string& message) {
    keep_alive_ = false;
    Response res;
    res.status = status;
    res.set_content(ErrorJson(code, message), "application/json");
    WriteFull(res);
  }

  // --- parking (deferred replies and streams waiting for data) ---

  // Notifications for `key` wake this session from now until StopWatching(), parked or not (a wake while
  // a check or a pull runs is remembered: no notification is lost in between).
  void StartWatching(const std::string& key) {
    StopWatching();
    watch_key_ = key;
    if (!key.empty()) t_.Watch(key, id_, this->weak_from_this());
  }
  void StopWatching() {
    if (!watch_key_.empty()) t_.Unwatch(watch_key_, id_);
    watch_key_.clear();
  }

  void Park(int64_t timeout_ms) {
    parked_ = true;
    ++gen_;
    ++t_.parked;
    timer_.expires_after(milliseconds(std::max<int64_t>(0, timeout_ms)));
    timer_.async_wait([self = this->shared_from_this(), g = gen_](beast::error_code ec) {
      if (ec || g != self->gen_ || !self->parked_) return;
      self->OnParkTimeout();
    });
    // Readable while it waits for its reply: the client went away (or sent what it must not): free it now.
    Lowest().socket().async_wait(tcp::socket::wait_read, [self = this->shared_from_this(), g = gen_](beast::error_code ec) {
      if (ec || g != self->gen_ || !self->parked_) return;
      self->CloseNow();
    });
  }

  void Unpark() {
    if (!parked_) return;
    parked_ = false;
    ++gen_;
    --t_.parked;
    timer_.cancel();
    beast::error_code ec;
    Lowest().socket().cancel(ec);  // the readability watch
  }

  void OnParkTimeout() {
    if (deferred_) return RunCheck(/*timed_out=*/true);
    Unpark();
    Pull();
  }

  void OnWake() {
    if (closed_) return;
    if (!parked_) {
      woken_ = true;
      return;
    }
    if (deferred_) return RunCheck(false);
    Unpark();
    Pull();
  }

  void ParkDeferred(std::shared_ptr<DeferredReply> d) {
    deferred_ = std::move(d);
    StartWatching(deferred_->watch_key);
    Park(deferred_->timeout_ms);
    // A change between the handler's own look and the watch above would be missed: look again now.
    RunCheck(false);
  }

  void RunCheck(bool timed_out) {
    if (checking_) {
      recheck_ = true;
      recheck_timed_out_ = recheck_timed_out_ || timed_out;
      return;
    }
    if (t_.stopping.load()) return CloseNow();
    checking_ = true;
    auto out = std::make_shared<Response>();
    asio::post(t_.workers, [self = this->shared_from_this(), d = deferred_, out, timed_out] {
      bool done = true;
      try {
        done = d->check(*out, timed_out) || timed_out;
      } catch (const std::exception& e) {
        *out = Response();
        out->status = 500;
        out->set_content(ErrorJson("internal", e.what()), "application/json");
      }
      asio::post(self->stream_.get_executor(), [self, out, done] { self->OnChecked(out, done); });
    });
  }

  void OnChecked(const std::shared_ptr<Response>& out, bool done) {
    checking_ = false;
    if (closed_ || !deferred_) return;
    if (done) {
      Unpark();
      StopWatching();
      deferred_.reset();
      recheck_ = recheck_timed_out_ = false;
      if (out->stream && out->stream->next) return StartStream(*out);  // e.g. a remote job's file, piece by piece
      return WriteFull(*out);
    }
    if (recheck_) {
      bool t = recheck_timed_out_;
      recheck_ = recheck_timed_out_ = false;
      RunCheck(t);
    }
  }

  void StartStream(const Response& res) {
    source_ = res.stream;
    StartWatching(source_->watch_key);
    auto head = std::make_shared<bhttp::response<bhttp::empty_body>>();
    FillHead(*head, res);
    head->set(bhttp::field::content_type, source_->content_type);
    // HTTP/1.0 has no chunked encoding: the body runs until the connection closes.
    if (http10_) keep_alive_ = false;
    head->keep_alive(keep_alive_);
    head->chunked(!http10_);
    auto sr = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*head);
    Lowest().expires_after(milliseconds(t_.opt.write_timeout_ms));
    bhttp::async_write_header(stream_, *sr, [self = this->shared_from_this(), head, sr](beast::error_code ec, size_t) {
      if (ec) return self->CloseNow();
      self->Pull();
    });
  }

  void Pull() {
    if (closed_ || !source_) return;
    if (t_.stopping.load()) return CloseNow();
    woken_ = false;
    asio::post(t_.workers, [self = this->shared_from_this(), s = source_] {
      auto step = std::make_shared<StreamStep>();
      try {
        *step = s->next();
      } catch (const std::exception&) {
        step->kind = StreamStep::Kind::kError;
      }
      asio::post(self->stream_.get_executor(), [self, step] { self->OnStep(*step); });
    });
  }

  void OnStep(StreamStep& step) {
    if (closed_) return;
    switch (step.kind) {
      case StreamStep::Kind::kData: {
        if (step.data.empty()) return Pull();
        chunk_ = std::move(step.data);
        Lowest().expires_after(milliseconds(t_.opt.write_timeout_ms));
        auto written = [self = this->shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->CloseNow();
          self->chunk_.clear();
          self->Pull();
        };
        if (http10_) {
          asio::async_write(stream_, asio::buffer(chunk_), std::move(written));
        } else {
          asio::async_write(stream_, bhttp::make_chunk(asio::buffer(chunk_)), std::move(written));
        }
        return;
      }
      case StreamStep::Kind::kWait:
        if (woken_) return Pull();  // notified while it pulled: there may be more now
        Lowest().expires_never();
        return Park(source_->poll_ms);
      case StreamStep::Kind::kDone:
        if (http10_) {
          source_.reset();
          StopWatching();
          return Shutdown();
        }
        Lowest().expires_after(milliseconds(t_.opt.write_timeout_ms));
        asio::async_write(stream_, bhttp::make_chunk_last(), [self = this->shared_from_this()](beast::error_code ec, size_t) {
          if (ec) return self->CloseNow();
          self->source_.reset();
          self->StopWatching();
          if (!self->keep_alive_) return self->Shutdown();
          self->ReadHeader();
        });
        return;
      case StreamStep::Kind::kError:
        return CloseNow();  // mid-body: the client sees a cut stream and may resume
    }
  }

  void Shutdown() {
    if constexpr (kTls) {
      Lowest().expires_after(milliseconds(1000));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) { self->CloseNow(); });
    } else {
      beast::error_code ec;
      Lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
      if (ec) return CloseNow();
      // Lingering close: read and drop what the client is still sending (the rest of a refused body or
      // header) for a bounded time, so that our reply is not destroyed by a reset before it is read.
      Lowest().expires_after(milliseconds(2000));
      Drain();
    }
  }

  void Drain() {
    if (drained_ > (64 << 20)) return CloseNow();
    drain_buf_.resize(16384);
    Lowest().async_read_some(asio::buffer(drain_buf_), [self = this->shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->CloseNow();
      self->drained_ += n;
      self->Drain();
    });
  }

  void CloseNow() {
    if (closed_) return;
    closed_ = true;
    Unpark();
    StopWatching();
    deferred_.reset();
    source_.reset();
    timer_.cancel();
    beast::error_code ec;
    Lowest().socket().close(ec);
  }

  HttpTransport::Impl& t_;
  const uint64_t id_;
  const std::string peer_;
  Stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bool keep_alive_ = true;
  bool http10_ = false;
  bool closed_ = false;
  // Parking state (touched only on the session's strand).
  bool parked_ = false;
  bool woken_ = false;
  uint64_t gen_ = 0;
  std::string watch_key_;
  std::shared_ptr<DeferredReply> deferred_;
  bool checking_ = false;
  bool recheck_ = false;
  bool recheck_timed_out_ = false;
  std::shared_ptr<BodyStream> source_;
  std::string chunk_;
  std::string drain_buf_;  // allocated only for a lingering close
  size_t drained_ = 0;
};

}  // namespace

void HttpTransport::Impl::Accept() {
  acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket sock) {
    if (!acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors (EMFILE) and the like: back off briefly instead of spinning.
      accept_backoff.expires_after(milliseconds(50));
      accept_backoff.async_wait([this](beast::error_code e) {
        if (!e) Accept();
      });
      return;
    }
    OnAccept(std::move(sock));
    Accept();
  });
}

void HttpTransport::Impl::OnAccept(tcp::socket sock) {
  beast::error_code ec;
  if (stopping.load()) {
    sock.close(ec);
    return;
  }
  sock.set_option(tcp::no_delay(true), ec);
  if (static_cast<size_t>(open.load()) >= opt.max_connections) {
    ++refused;
    std::string body = ErrorJson("unavailable", "too many open connections (limit " +
                                                    std::to_string(opt.max_connections) + "); try again later");
    std::string reply = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                        "Connection: close\r\nContent-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
    if (!tls) asio::write(sock, asio::buffer(reply), ec);
    sock.close(ec);
    return;
  }
  auto ep = sock.remote_endpoint(ec);
  std::string peer = ec ? std::string() : ep.address().to_string();
  ++open;
  uint64_t id;
  {
    std::lock_guard lock(mu);
    id = next_id++;
  }
  auto start = [&](auto session) {
    {
      std::lock_guard lock(mu);
      sessions[id] = session;
    }
    session->Run();
  };
  if (tls) {
    start(std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(*this, id, peer, std::move(sock), *tls));
  } else {
    start(std::make_shared<Session<beast::tcp_stream>>(*this, id, peer, std::move(sock)));
  }
}

HttpTransport::HttpTransport(TransportOptions options, Dispatch dispatch)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(dispatch))) {}

HttpTransport::~HttpTransport() { Stop(); }

Result<int> HttpTransport::Bind() {
  auto& t = *impl_;
  const auto& o = t.opt;
  if (!o.tls_cert.empty() && !o.tls_key.empty()) {
    t.tls.emplace(ssl::context::tls_server);
    t.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    beast::error_code ec;
    t.tls->use_certificate_chain_file(o.tls_cert, ec);
    if (ec) return InvalidArgument("cannot load TLS certificate " + o.tls_cert + ": " + ec.message());
    t.tls->use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (ec) return InvalidArgument("cannot load TLS key " + o.tls_key + ": " + ec.message());
  }
  auto fail = [&](const std::string& why) -> Result<int> {
    return Unavailable("cannot listen on " + o.host + ":" + std::to_string(o.port) + " (" + why +
                       "); choose another with --listen HOST:PORT");
  };
  beast::error_code ec;
  tcp::resolver resolver(t.ioc);
  auto results = resolver.resolve(o.host, std::to_string(o.port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) return fail("address not available");
  tcp::endpoint ep = results.begin()->endpoint();
  t.acceptor.open(ep.protocol(), ec);
  if (ec) return fail(ec.message());
  t.acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  t.acceptor.bind(ep, ec);
  if (ec) return fail(ec == asio::error::address_in_use ? "address in use" : ec.message());
  t.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail(ec.message());
  return static_cast<int>(t.acceptor.local_endpoint().port());
}

void HttpTransport::Start() {
  auto& t = *impl_;
  if (t.started) return;
  t.started = true;
  t.Accept();
  for (int i = 0; i < std::max(1, t.opt.io_threads); ++i) t.io_threads.emplace_back([&t] { t.ioc.run(); });
}

void HttpTransport::Stop() {
  auto& t = *impl_;
  if (!t.started || t.stopped) return;
  t.stopped = true;
  t.stopping = true;
  auto closed = std::make_shared<std::promise<void>>();
  auto acceptor_closed = closed->get_future();
  asio::post(t.acceptor.get_executor(), [&t, closed] {
    beast::error_code ec;
    t.acceptor.close(ec);
    t.accept_backoff.cancel();
    closed->set_value();
  });
  // From here no connection is accepted, so the snapshot below holds every session there will be.
  acceptor_closed.wait_for(std::chrono::seconds(5));
  std::vector<std::shared_ptr<Parkable>> live;
  {
    std::lock_guard lock(t.mu);
    for (auto& [id, w] : t.sessions)
      if (auto s = w.lock()) live.push_back(std::move(s));
  }
  for (auto& s : live) s->Close();
  live.clear();
  // Requests being handled finish (their replies are dropped); nothing else runs after this.
  t.workers.join();
  t.ioc.stop();
  for (auto& th : t.io_threads) th.join();
  t.io_threads.clear();
}

void HttpTransport::Notify(const std::string& key) {
  std::vector<std::shared_ptr<Parkable>> wake;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->watchers.find(key);
    if (it == impl_->watchers.end()) return;
    for (auto& [id, w] : it->second)
      if (auto s = w.lock()) wake.push_back(std::move(s));
  }
  for (auto& s : wake) s->Wake();
}

TransportStats HttpTransport::Stats() const {
  return {impl_->open.load(), impl_->parked.load(), impl_->refused.load()};
}

}  // namespace fastgpu::server
