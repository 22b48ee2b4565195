// A cpp-httplib server on 127.0.0.1 (any free port) for tests: register routes on srv(), then Start().
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common/clock.h"

namespace fastgpu::cli {

class TestHttpServer {
 public:
  explicit TestHttpServer(std::unique_ptr<httplib::Server> srv = std::make_unique<httplib::Server>())
      : srv_(std::move(srv)) {
    srv_->set_tcp_nodelay(true);
  }
  TestHttpServer(const TestHttpServer&) = delete;
  TestHttpServer& operator=(const TestHttpServer&) = delete;

  httplib::Server& srv() { return *srv_; }

  void Start() {
    port_ = srv_->bind_to_any_port("127.0.0.1");
    // The socket is already listening after bind_to_any_port: connections queue until accepted.
    thread_ = std::thread([this] {
      srv_->listen_after_bind();
      finished_ = true;
    });
    // stop() is a no-op until the accept loop runs, so wait for it (poll with a deadline).
    SystemClock clock;
    const int64_t deadline = clock.MonotonicNanos() + 10'000'000'000;
    while (!srv_->is_running() && clock.MonotonicNanos() < deadline) std::this_thread::yield();
  }

  ~TestHttpServer() {
    if (!thread_.joinable()) return;
    // stop() can race with the start of the accept loop; repeat it until the loop has ended.
    SystemClock clock;
    const int64_t deadline = clock.MonotonicNanos() + 10'000'000'000;
    while (!finished_ && clock.MonotonicNanos() < deadline) {
      srv_->stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    thread_.join();
  }

  int port() const { return port_; }

 private:
  std::unique_ptr<httplib::Server> srv_;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> finished_{false};
};

}  // namespace fastgpu::cli
