// The small HTTP/1.1 client (src/common/http_client.h) against a cpp-httplib server.
#include "common/http_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "cli/test_server.h"

namespace fastgpu::http {
namespace {

using cli::TestHttpServer;

std::string Url(const TestHttpServer& s) { return "http://127.0.0.1:" + std::to_string(s.port()); }

TEST(HttpClient, GetAndPostCarryTokenHeadersAndBodies) {
  TestHttpServer server;
  server.srv().Get("/hello", [](const httplib::Request& req, httplib::Response& res) {
    res.set_header("X-Next-Offset", "42");
    res.set_content("auth=" + req.get_header_value("Authorization"), "text/plain");
  });
  server.srv().Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_content(req.body + "|" + req.get_header_value("Content-Type") + "|" +
                        req.get_header_value("Idempotency-Key"),
                    "text/plain");
  });
  server.Start();
  Options o;
  o.bearer_token = "tok";
  Client c(Url(server), o);
  ASSERT_TRUE(c.valid());
  auto r = c.Get("/hello");
  ASSERT_TRUE(r.ok()) << ErrorText(r.error);
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.body, "auth=Bearer tok");
  EXPECT_EQ(r.response.Header("x-next-offset"), "42");
  EXPECT_TRUE(r.response.HasHeader("Content-Type"));
  EXPECT_FALSE(r.response.HasHeader("X-Missing"));

  r = c.Post("/echo", R"({"a":1})", "application/json", {{"Idempotency-Key", "k1"}});
  ASSERT_TRUE(r) << ErrorText(r.error);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(r->body, R"({"a":1}|application/json|k1)");

  std::string big(3 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4096) big[i] = static_cast<char>('a' + (i / 4096) % 26);
  server.srv().Get("/big", [&big](const httplib::Request&, httplib::Response& res) { res.set_content(big, "text/plain"); });
  r = c.Get("/big");
  ASSERT_TRUE(r.ok()) << ErrorText(r.error);
  EXPECT_TRUE(r->body == big);

  r = c.Get("/missing");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.response.status, 404);
}

TEST(HttpClient, ChunkedAnswersStreamIntoTheSinkWhichCanStopThem) {
  TestHttpServer server;
  server.srv().Get("/stream", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink& sink) {
      if (offset >= 5000) {
        sink.done();
        return true;
      }
      std::string piece(1000, static_cast<char>('a' + offset / 1000));
      return sink.write(piece.data(), piece.size());
    });
  });
  server.Start();
  Client c(Url(server));
  std::string got;
  auto r = c.Get("/stream", [&](int status, std::string_view data) {
    EXPECT_EQ(status, 200);
    got.append(data);
    return true;
  });
  ASSERT_TRUE(r.ok()) << ErrorText(r.error);
  EXPECT_EQ(got.size(), 5000u);
  EXPECT_EQ(got.substr(0, 3), "aaa");
  EXPECT_EQ(got.substr(4997), "eee");
  EXPECT_TRUE(r.response.body.empty());

  size_t seen = 0;
  r = c.Get("/stream", [&](int, std::string_view data) {
    seen += data.size();
    return false;
  });
  EXPECT_EQ(r.error, Error::kCanceled);
  EXPECT_GT(seen, 0u);
}

TEST(HttpClient, KeepAliveReusesTheConnectionAndReopensItWhenTheServerClosedIt) {
  TestHttpServer server;
  server.srv().set_keep_alive_max_count(2);  // the server closes every second request's connection
  server.srv().Get("/n", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.remote_addr + ":" + std::to_string(req.remote_port), "text/plain");
  });
  server.Start();
  Options o;
  o.keep_alive = true;
  Client c(Url(server), o);
  auto a = c.Get("/n");
  auto b = c.Get("/n");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->body, b->body);  // same client port: same connection
  for (int i = 0; i < 5; ++i) {
    auto r = c.Get("/n");
    ASSERT_TRUE(r.ok()) << i << ": " << ErrorText(r.error);
    EXPECT_EQ(r->status, 200);
  }
}

TEST(HttpClient, RefusedSlowAndBadUrlsAreErrorsNotExceptions) {
  int port;
  {
    TestHttpServer gone;
    gone.Start();
    port = gone.port();
  }
  Client refused("http://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(refused.Get("/").error, Error::kConnection);

  TestHttpServer server;
  server.srv().Get("/slow", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    res.set_content("late", "text/plain");
  });
  server.Start();
  Options o;
  o.read_timeout_ms = 50;
  Client slow(Url(server), o);
  EXPECT_EQ(slow.Get("/slow").error, Error::kRead);

  for (const char* bad : {"ftp://x", "http://", "http://host:0", "http://host:99999", "http://host:12ab",
                          "http://user@host", "localhost:80"}) {
    Client c(bad);
    EXPECT_FALSE(c.valid()) << bad;
    EXPECT_EQ(c.Get("/").error, Error::kBadUrl) << bad;
  }
  EXPECT_TRUE(Client("http://[::1]:8400").valid());
  EXPECT_TRUE(Client("https://gpu.example.com").valid());
  EXPECT_TRUE(Client("http://gpu.example.com:8080/").valid());
}

}  // namespace
}  // namespace fastgpu::http
