// The event-driven HTTP transport: decoding, limits, parked replies and streams that hold no worker,
// disconnects that free a parked request at once, idle and half-sent requests timing out.
#include "server/http_transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace fastgpu::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

// Polls `cond` until it holds or `ms` pass.
bool Eventually(const std::function<bool()>& cond, int ms = 5000) {
  auto end = steady_clock::now() + milliseconds(ms);
  while (steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return cond();
}

class Raw {
 public:
  explicit Raw(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  }
  ~Raw() { Close(); }
  void Send(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  // Reads until the peer closes, `until` has been received, or `ms` pass.
  std::string ReadAll(int ms = 5000, const std::string& until = "") {
    std::string out;
    auto end = steady_clock::now() + milliseconds(ms);
    while (steady_clock::now() < end && (until.empty() || out.find(until) == std::string::npos)) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

class TransportTest : public ::testing::Test {
 protected:
  void StartWith(TransportOptions o) {
    o.host = "127.0.0.1";
    o.port = 0;
    transport_ = std::make_unique<HttpTransport>(o, [this](Request& req, Response& res) { Handle(req, res); });
    auto port = transport_->Bind();
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    port_ = *port;
    transport_->Start();
  }
  void SetUp() override {}
  void TearDown() override {
    if (transport_) transport_->Stop();
  }

  void Handle(Request& req, Response& res) {
    if (req.path == "/echo") {
      std::string out = req.method + " " + req.path + " a=" + req.get_param_value("a") +
                        " b=" + req.get_param_value("b") + " x=" + req.get_header_value("X-Thing") +
                        " from=" + req.remote_addr + " body=" + req.body;
      res.set_content(out, "text/plain");
      return;
    }
    if (req.path == "/wait") {
      auto d = std::make_shared<DeferredReply>();
      d->watch_key = "k";
      d->timeout_ms = std::stoi(req.get_param_value("ms"));
      d->check = [this](Response& out, bool timed_out) {
        if (!ready_.load() && !timed_out) return false;
        out.set_content(timed_out && !ready_.load() ? "timeout" : "ready", "text/plain");
        return true;
      };
      res.deferred = d;
      return;
    }
    if (req.path == "/stream") {
      auto s = std::make_shared<BodyStream>();
      s->watch_key = "k";
      s->poll_ms = 60'000;  // only a notification wakes it
      s->next = [this, sent = 0]() mutable {
        int avail = pieces_.load();
        if (sent < avail) return StreamStep{StreamStep::Kind::kData, "piece" + std::to_string(sent++) + ";"};
        if (ended_.load()) return StreamStep{StreamStep::Kind::kDone, {}};
        return StreamStep{StreamStep::Kind::kWait, {}};
      };
      res.stream = s;
      return;
    }
    if (req.path == "/slow") {  // a handler that takes a worker for a while
      std::this_thread::sleep_for(milliseconds(200));
      res.set_content("slow", "text/plain");
      return;
    }
    res.status = 404;
    res.set_content("{}", "application/json");
  }

  httplib::Client Client() {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(10, 0);
    return c;
  }

  std::unique_ptr<HttpTransport> transport_;
  int port_ = 0;
  std::atomic<bool> ready_{false};
  std::atomic<int> pieces_{0};
  std::atomic<bool> ended_{false};
};

TEST_F(TransportTest, DecodesPathQueryHeadersFormBodyAndPeer) {
  StartWith({});
  auto c = Client();
  Raw s(port_);
  s.Send("GET /ech%6F?a=1%202&b=x+y HTTP/1.1\r\nHost: h\r\nx-THING: v\r\nConnection: close\r\n\r\n");
  std::string out = s.ReadAll();
  EXPECT_EQ(out.rfind("HTTP/1.1 200", 0), 0u) << out;
  EXPECT_NE(out.find("Server: fastgpu"), std::string::npos) << out;
  EXPECT_NE(out.find("\r\n\r\nGET /echo a=1 2 b=x y x=v from=127.0.0.1 body="), std::string::npos) << out;
  auto r = c.Get("/echo?a=%2B");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "GET /echo a=+ b= x= from=127.0.0.1 body=");
  r = c.Post("/echo", "a=form&b=%41", "application/x-www-form-urlencoded");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "POST /echo a=form b=A x= from=127.0.0.1 body=a=form&b=%41");
}

TEST_F(TransportTest, HeaderBodyAndFramingLimitsGetJson4xxAndChangeNothing) {
  TransportOptions o;
  o.max_header_bytes = 4096;
  o.max_header_fields = 10;
  o.max_body_bytes = 1000;
  StartWith(o);
  {
    Raw s(port_);
    s.Send("GET /echo HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(100'000, 'a') + "\r\n\r\n");
    std::string out = s.ReadAll();
    EXPECT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out.substr(0, 200);
    EXPECT_NE(out.find("\"code\":\"payload_too_large\""), std::string::npos);
  }
  {
    std::string many = "GET /echo HTTP/1.1\r\nHost: h\r\n";
    for (int i = 0; i < 20; ++i) many += "X-" + std::to_string(i) + ": 1\r\n";
    Raw s(port_);
    s.Send(many + "\r\n");
    std::string out = s.ReadAll();
    EXPECT_EQ(out.rfind("HTTP/1.1 431", 0), 0u) << out.substr(0, 200);
    EXPECT_NE(out.find("too many request header fields"), std::string::npos);
  }
  {
    // The whole oversized body is sent: the client still gets its 413 (no reset before it is read).
    Raw s(port_);
    s.Send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n" + std::string(2'000'000, 'x'));
    std::string out = s.ReadAll();
    EXPECT_EQ(out.rfind("HTTP/1.1 413", 0), 0u) << out.substr(0, 200);
  }
  {
    Raw s(port_);
    s.Send("POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n");
    std::string out = s.ReadAll();
    EXPECT_EQ(out.rfind("HTTP/1.1 400", 0), 0u) << out.substr(0, 200);
    EXPECT_NE(out.find("malformed HTTP request"), std::string::npos);
  }
  EXPECT_TRUE(Eventually([&] { return transport_->Stats().open_connections == 0; }));
}

TEST_F(TransportTest, IdleAndHalfSentRequestsTimeOutWithoutHoldingAWorker) {
  TransportOptions o;
  o.request_timeout_ms = 300;
  o.workers = 1;
  StartWith(o);
  Raw idle(port_);
  Raw half(port_);
  half.Send("GET /echo HTTP/1.1\r\nHost: h\r\nX-Slow: ");
  // Meanwhile the one worker serves others at once.
  auto c = Client();
  auto r = c.Get("/echo?a=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  // Both are closed at the deadline, without a word (the socket is gone when the timer fires).
  auto t0 = steady_clock::now();
  EXPECT_EQ(half.ReadAll(), "");
  EXPECT_EQ(idle.ReadAll(), "");
  EXPECT_LT(steady_clock::now() - t0, milliseconds(4000));
  EXPECT_TRUE(Eventually([&] { return transport_->Stats().open_connections == 0; }));
}

TEST_F(TransportTest, ParkedRepliesHoldNoWorkerAndWakeOnNotify) {
  TransportOptions o;
  o.workers = 2;
  StartWith(o);
  std::vector<std::unique_ptr<Raw>> waiters;
  for (int i = 0; i < 50; ++i) {
    waiters.push_back(std::make_unique<Raw>(port_));
    waiters.back()->Send("GET /wait?ms=60000 HTTP/1.1\r\nHost: h\r\n\r\n");
  }
  ASSERT_TRUE(Eventually([&] { return transport_->Stats().parked == 50; }));
  // 50 parked waits and 2 workers: other requests are still served.
  auto c = Client();
  auto r = c.Get("/echo?a=2");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ready_ = true;
  transport_->Notify("k");
  for (auto& w : waiters) {
    std::string out = w->ReadAll(5000, "ready");
    EXPECT_NE(out.find("ready"), std::string::npos) << out;
  }
  EXPECT_EQ(transport_->Stats().parked, 0);
}

TEST_F(TransportTest, ADeferredReplyAnswersAtItsDeadline) {
  StartWith({});
  auto c = Client();
  auto r = c.Get("/wait?ms=50");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body, "timeout");
}

TEST_F(TransportTest, AClientThatDisconnectsFreesItsWaitAtOnce) {
  StartWith({});
  {
    Raw w(port_);
    w.Send("GET /wait?ms=300000 HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_TRUE(Eventually([&] { return transport_->Stats().parked == 1; }));
  }
  EXPECT_TRUE(Eventually([&] { return transport_->Stats().parked == 0 && transport_->Stats().open_connections == 0; },
                         2000));
}

TEST_F(TransportTest, StreamsPiecesAsTheyComeAndEndsTheChunkedBody) {
  StartWith({});
  std::string got;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    auto c = Client();
    auto r = c.Get("/stream", [&](const char* d, size_t n) {
      got.append(d, n);
      return true;
    });
    EXPECT_TRUE(r);
    done = true;
  });
  ASSERT_TRUE(Eventually([&] { return transport_->Stats().parked == 1; }));
  pieces_ = 2;
  transport_->Notify("k");
  ASSERT_TRUE(Eventually([&] { return transport_->Stats().parked == 1 && pieces_ == 2; }));
  ended_ = true;
  transport_->Notify("k");
  ASSERT_TRUE(Eventually([&] { return done.load(); }));
  reader.join();
  EXPECT_EQ(got, "piece0;piece1;");
}

TEST_F(TransportTest, AnHttp10ClientGetsAStreamWithoutChunkFramingEndedByClose) {
  StartWith({});
  pieces_ = 2;
  ended_ = true;
  Raw s(port_);
  s.Send("GET /stream HTTP/1.0\r\n\r\n");
  std::string out = s.ReadAll();
  EXPECT_EQ(out.rfind("HTTP/1.0 200", 0) == 0 || out.rfind("HTTP/1.1 200", 0) == 0, true) << out;
  EXPECT_EQ(out.find("chunked"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.find("\r\n\r\n") + 4), "piece0;piece1;") << out;
}

TEST_F(TransportTest, BeyondTheConnectionLimitNewClientsGet503) {
  TransportOptions o;
  o.max_connections = 2;
  StartWith(o);
  Raw a(port_), b(port_);
  ASSERT_TRUE(Eventually([&] { return transport_->Stats().open_connections == 2; }));
  Raw c(port_);
  std::string out = c.ReadAll();
  EXPECT_EQ(out.rfind("HTTP/1.1 503", 0), 0u) << out;
  EXPECT_EQ(transport_->Stats().refused_connections, 1);
}

TEST(PercentDecode, DecodesEscapesAndKeepsBadOnes) {
  EXPECT_EQ(PercentDecode("a%20b+c", false), "a b+c");
  EXPECT_EQ(PercentDecode("a%20b+c", true), "a b c");
  EXPECT_EQ(PercentDecode("%zz%4", false), "%zz%4");
  EXPECT_EQ(PercentDecode("%FF", false), "\xFF");
}

}  // namespace
}  // namespace fastgpu::server
