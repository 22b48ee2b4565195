// `fastgpu bench api --followers N --waiters N --idle N --slowloris N --big-headers N --log-readers N`:
// the load cases that used to stop the API (long-polls, idle and half-sent requests, huge headers, many
// readers of a big log), reproduced against the embedded server while /healthz is probed and submits go on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "server/bench_load.h"

#include "common/http_client.h"
#include "server/service.h"

namespace fastgpu::server {

namespace {

int PortOf(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// A raw client socket (the load cases need thousands of them without a thread each).
class RawSocket {
 public:
  explicit RawSocket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Close();
  }
  RawSocket(RawSocket&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  ~RawSocket() { Close(); }
  bool ok() const { return fd_ >= 0; }
  bool Send(std::string_view data) {
    while (!data.empty() && fd_ >= 0) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return fd_ >= 0;
  }
  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

int64_t RssKiB() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  return 0;
}

// Peak RSS while `fn` runs (sampled every 5 ms).
template <class Fn>
int64_t PeakRssDuring(Fn&& fn) {
  std::atomic<bool> done{false};
  std::atomic<int64_t> peak{RssKiB()};
  std::thread sampler([&] {
    while (!done.load()) {
      int64_t r = RssKiB();
      if (r > peak.load()) peak.store(r);
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  fn();
  done = true;
  sampler.join();
  return peak.load();
}

std::unique_ptr<http::Client> Client(const std::string& url, const std::string& token, bool keep_alive) {
  http::Options o;
  o.keep_alive = keep_alive;
  o.read_timeout_ms = 60'000;
  o.connect_timeout_ms = 10'000;
  o.bearer_token = token;
  return std::make_unique<http::Client>(url, std::move(o));
}

std::string Submit(http::Client& c, const std::string& name, const std::string& script) {
  nlohmann::json body = {{"name", name}, {"gpus", 1}, {"command", {"sh", "-c", script}}};
  auto r = c.Post("/v1/jobs", body.dump(), "application/json");
  if (!r || r->status != 201) return {};
  return nlohmann::json::parse(r->body)["id"].get<std::string>();
}

}  // namespace

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

Status RunLoadCases(Embedded& up, const ApiBenchOptions& o, const Clock& clock, nlohmann::json& out) {
  const int port = PortOf(up.url());
  auto admin = Client(up.url(), up.token(), true);
  auto ms_since = [&](int64_t t0) { return static_cast<double>(clock.MonotonicNanos() - t0) / 1e6; };

  // 1. Long-polls, idle and half-sent requests held open.
  if (o.followers + o.waiters + o.idle + o.slowloris > 0) {
    std::string ticker = Submit(*admin, "ticker", "while true; do echo tick; sleep 1; done");
    if (ticker.empty()) return Internal("cannot submit the job the followers follow");
    admin->Get("/v1/jobs/" + ticker + "/wait?for=running&timeout=30s");
    std::string auth = "Authorization: Bearer " + up.token() + "\r\n";
    std::vector<RawSocket> followers, waiters, idle, slow;
    int64_t t0 = clock.MonotonicNanos();
    auto open_many = [&](std::vector<RawSocket>& v, int n, const std::string& request) -> Status {
      for (int i = 0; i < n; ++i) {
        RawSocket s(port);
        if (!s.ok() || (!request.empty() && !s.Send(request)))
          return Unavailable("cannot open load connection " + std::to_string(i) + " (file descriptor limit?)");
        v.push_back(std::move(s));
      }
      return Status::Ok();
    };
    RETURN_IF_ERROR(open_many(followers, o.followers,
                              "GET /v1/jobs/" + ticker + "/logs?follow=true HTTP/1.1\r\nHost: b\r\n" + auth + "\r\n"));
    RETURN_IF_ERROR(open_many(waiters, o.waiters,
                              "GET /v1/jobs/" + ticker + "/wait?timeout=300s HTTP/1.1\r\nHost: b\r\n" + auth + "\r\n"));
    RETURN_IF_ERROR(open_many(idle, o.idle, ""));
    RETURN_IF_ERROR(open_many(slow, o.slowloris, "GET /healthz HTTP/1.1\r\nHost: b\r\nX-Slow: "));
    double open_ms = ms_since(t0);
    // Wait until the server holds them all (parked long-polls: followers between ticks and waiters).
    int64_t deadline = clock.MonotonicNanos() + 20'000'000'000LL;
    int64_t want = o.followers + o.waiters + o.idle + o.slowloris;
    while (up.http_stats().open_connections < want && clock.MonotonicNanos() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    TransportStats held = up.http_stats();

    // /healthz probes: over one keep-alive connection and over a new connection each.
    std::vector<double> keep, fresh;
    auto probe = Client(up.url(), up.token(), true);
    for (int i = 0; i < 300; ++i) {
      int64_t s = clock.MonotonicNanos();
      auto r = probe->Get("/healthz");
      if (r && r->status == 200) keep.push_back(ms_since(s));
    }
    for (int i = 0; i < 100; ++i) {
      auto c = Client(up.url(), up.token(), false);
      int64_t s = clock.MonotonicNanos();
      auto r = c->Get("/healthz");
      if (r && r->status == 200) fresh.push_back(ms_since(s));
    }
    // Submits go on meanwhile: 8 clients for 2 s.
    std::atomic<int> ok{0}, bad{0};
    int64_t s0 = clock.MonotonicNanos();
    std::vector<std::thread> th;
    for (int t = 0; t < 8; ++t)
      th.emplace_back([&] {
        auto c = Client(up.url(), up.token(), true);
        std::string body = R"({"name":"during-load","gpus":1,"command":["true"],"priority":0})";
        while (clock.MonotonicNanos() - s0 < 2'000'000'000LL) {
          auto r = c->Post("/v1/jobs", body, "application/json");
          (r && r->status == 201 ? ok : bad).fetch_add(1);
        }
      });
    for (auto& t : th) t.join();
    double submit_rate = ok.load() / (ms_since(s0) / 1000.0);

    // The waiters disconnect: how long until the server has let go of them.
    int64_t before = up.http_stats().open_connections;
    int64_t d0 = clock.MonotonicNanos();
    waiters.clear();
    deadline = clock.MonotonicNanos() + 30'000'000'000LL;
    while (up.http_stats().open_connections > before - o.waiters && clock.MonotonicNanos() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    double release_ms = ms_since(d0);
    bool released = up.http_stats().open_connections <= before - o.waiters;

    // 100 requests with bad tokens from this address: the admin's valid token must still be served.
    int limited = 0;
    auto guesser = Client(up.url(), "fgp_" + std::string(64, '0'), true);
    for (int i = 0; i < 100; ++i) {
      auto r = guesser->Get("/v1/jobs?limit=1");
      if (r && r->status == 429) ++limited;
    }
    auto adm = admin->Get("/v1/whoami");
    int admin_status = adm ? adm->status : 0;

    out["load"] = {{"followers", o.followers},
                   {"waiters", o.waiters},
                   {"idle_sockets", o.idle},
                   {"slowloris_sockets", o.slowloris},
                   {"open_ms", open_ms},
                   {"server_open_connections", held.open_connections},
                   {"server_parked", held.parked},
                   {"healthz_keepalive_ms_p50", Percentile(keep, 0.5)},
                   {"healthz_keepalive_ms_p99", Percentile(keep, 0.99)},
                   {"healthz_keepalive_ok", keep.size()},
                   {"healthz_new_connection_ms_p50", Percentile(fresh, 0.5)},
                   {"healthz_new_connection_ms_p99", Percentile(fresh, 0.99)},
                   {"healthz_new_connection_ok", fresh.size()},
                   {"submits_per_s_during_load", submit_rate},
                   {"submits_failed_during_load", bad.load()},
                   {"bad_token_requests_limited", limited},
                   {"admin_status_after_bad_tokens", admin_status},
                   {"waiters_released", released},
                   {"waiters_release_ms", release_ms}};
    followers.clear();
    idle.clear();
    slow.clear();
    admin->Post("/v1/jobs/" + ticker + "/cancel", "", "application/json");
  }

  // 2. Huge unauthenticated headers: refused after the header limit, memory does not grow.
  if (o.big_headers > 0) {
    std::string big = "GET /healthz HTTP/1.1\r\nHost: b\r\nX-Big: " + std::string(12'900'000, 'a') + "\r\n\r\n";
    int64_t before = RssKiB();
    int64_t peak = PeakRssDuring([&] {
      std::vector<std::thread> th;
      for (int i = 0; i < o.big_headers; ++i)
        th.emplace_back([&] {
          RawSocket s(port);
          s.Send(big);  // the server answers 431 and closes long before the end
        });
      for (auto& t : th) t.join();
    });
    out["big_headers"] = {{"requests", o.big_headers},
                          {"header_bytes", big.size()},
                          {"rss_before_mib", before / 1024},
                          {"rss_peak_mib", peak / 1024},
                          {"rss_growth_mib", (peak - before) / 1024}};
  }

  // 3. Many readers of a big log: streamed, so memory stays bounded.
  if (o.log_readers > 0) {
    std::string id = Submit(*admin, "big-log", "yes 0123456789abcdef | head -c " +
                                                  std::to_string(int64_t{o.log_mib} << 20));
    if (id.empty()) return Internal("cannot submit the big-log job");
    admin->Get("/v1/jobs/" + id + "/wait?timeout=120s");
    std::atomic<int64_t> bytes{0};
    int64_t before = RssKiB();
    int64_t r0 = clock.MonotonicNanos();
    int64_t peak = PeakRssDuring([&] {
      std::vector<std::thread> th;
      for (int i = 0; i < o.log_readers; ++i)
        th.emplace_back([&] {
          auto c = Client(up.url(), up.token(), false);
          c->Get("/v1/jobs/" + id + "/logs", [&](int, std::string_view data) {
            bytes.fetch_add(static_cast<int64_t>(data.size()));
            return true;
          });
        });
      for (auto& t : th) t.join();
    });
    double secs = ms_since(r0) / 1000.0;
    out["log_readers"] = {{"readers", o.log_readers},
                          {"log_mib", o.log_mib},
                          {"bytes_read", bytes.load()},
                          {"seconds", secs},
                          {"rss_before_mib", before / 1024},
                          {"rss_peak_mib", peak / 1024},
                          {"rss_growth_mib", (peak - before) / 1024}};
  }
  return Status::Ok();
}

void PrintLoadCases(const nlohmann::json& out) {
  if (out.contains("load")) {
    const auto& l = out["load"];
    std::printf("load: %d followers, %d waiters, %d idle, %d slowloris sockets (server holds %lld connections)\n",
                l["followers"].get<int>(), l["waiters"].get<int>(), l["idle_sockets"].get<int>(),
                l["slowloris_sockets"].get<int>(), static_cast<long long>(l["server_open_connections"].get<int64_t>()));
    std::printf("  /healthz keep-alive p50 / p99        %8.2f / %.2f ms\n", l["healthz_keepalive_ms_p50"].get<double>(),
                l["healthz_keepalive_ms_p99"].get<double>());
    std::printf("  /healthz new connection p50 / p99    %8.2f / %.2f ms\n",
                l["healthz_new_connection_ms_p50"].get<double>(), l["healthz_new_connection_ms_p99"].get<double>());
    std::printf("  submits/s meanwhile (8 clients)      %8.0f  (%d failed)\n",
                l["submits_per_s_during_load"].get<double>(), l["submits_failed_during_load"].get<int>());
    std::printf("  waiters disconnect -> freed          %8.1f ms%s\n", l["waiters_release_ms"].get<double>(),
                l["waiters_released"].get<bool>() ? "" : "  (NOT all freed)");
    std::printf("  100 bad tokens from one address      %8d refused with 429; admin token then gets HTTP %d\n",
                l["bad_token_requests_limited"].get<int>(), l["admin_status_after_bad_tokens"].get<int>());
  }
  if (out.contains("big_headers")) {
    const auto& b = out["big_headers"];
    std::printf("big headers: %d x %.1f MB requests: RSS %lld -> peak %lld MiB\n", b["requests"].get<int>(),
                static_cast<double>(b["header_bytes"].get<int64_t>()) / 1e6,
                static_cast<long long>(b["rss_before_mib"].get<int64_t>()),
                static_cast<long long>(b["rss_peak_mib"].get<int64_t>()));
  }
  if (out.contains("log_readers")) {
    const auto& b = out["log_readers"];
    std::printf("log readers: %d x %d MiB log in %.2f s: RSS %lld -> peak %lld MiB\n", b["readers"].get<int>(),
                b["log_mib"].get<int>(), b["seconds"].get<double>(),
                static_cast<long long>(b["rss_before_mib"].get<int64_t>()),
                static_cast<long long>(b["rss_peak_mib"].get<int64_t>()));
  }
}

}  // namespace fastgpu::server
