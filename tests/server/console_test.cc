// The web console's embedded files: served at / and /assets/… with their types, ETags and security
// headers; nothing inline that the Content-Security-Policy would refuse; API paths untouched.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "server/console.h"

namespace fastgpu::server {
namespace {

std::string Header(const Response& res, const std::string& name) {
  for (const auto& [k, v] : res.headers)
    if (k == name) return v;
  return "";
}

Request Get(const std::string& path) {
  Request req;
  req.method = "GET";
  req.path = path;
  return req;
}

TEST(Console, ServesTheIndexWithSecurityHeaders) {
  Response res;
  ASSERT_TRUE(ServeConsole(Get("/"), res));
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "text/html; charset=utf-8");
  EXPECT_NE(res.body.find("<script type=\"module\" src=\"/assets/app.js\"></script>"), std::string::npos);
  const std::string csp = Header(res, "Content-Security-Policy");
  EXPECT_NE(csp.find("default-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("script-src 'self';"), std::string::npos);
  EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-eval"), std::string::npos);
  EXPECT_EQ(Header(res, "X-Frame-Options"), "DENY");
  EXPECT_EQ(Header(res, "X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(Header(res, "Referrer-Policy"), "no-referrer");
  EXPECT_EQ(Header(res, "Cache-Control"), "no-cache");
  EXPECT_FALSE(Header(res, "ETag").empty());
  Response again;
  ASSERT_TRUE(ServeConsole(Get("/index.html"), again));
  EXPECT_EQ(again.body, res.body);
}

TEST(Console, ServesAssetsWithTheirTypesAndAnswers304ToTheirETag) {
  for (const auto& [path, type] : std::initializer_list<std::pair<const char*, const char*>>{
           {"/assets/app.js", "text/javascript; charset=utf-8"},
           {"/assets/api.js", "text/javascript; charset=utf-8"},
           {"/assets/app.css", "text/css; charset=utf-8"},
           {"/assets/favicon.svg", "image/svg+xml"}}) {
    Response res;
    ASSERT_TRUE(ServeConsole(Get(path), res)) << path;
    EXPECT_EQ(res.status, 200) << path;
    EXPECT_EQ(res.content_type, type) << path;
    EXPECT_FALSE(res.body.empty()) << path;
    const std::string etag = Header(res, "ETag");
    ASSERT_EQ(etag.size(), 22u) << path;  // quoted 20 hex digits
    Request cond = Get(path);
    cond.headers.emplace_back("if-none-match", "\"other\", W/" + etag);
    Response not_modified;
    ASSERT_TRUE(ServeConsole(cond, not_modified));
    EXPECT_EQ(not_modified.status, 304) << path;
    EXPECT_TRUE(not_modified.body.empty());
    EXPECT_EQ(Header(not_modified, "X-Frame-Options"), "DENY");
    Request stale = Get(path);
    stale.headers.emplace_back("if-none-match", "\"0000\"");
    Response full;
    ASSERT_TRUE(ServeConsole(stale, full));
    EXPECT_EQ(full.status, 200);
  }
}

TEST(Console, LeavesEverythingElseToTheApi) {
  for (const char* path : {"/v1/jobs", "/healthz", "/assets/missing.js", "/assets/../CMakeLists.txt", "/assets/",
                           "/index.htm", "/v1/openapi.json"}) {
    Response res;
    EXPECT_FALSE(ServeConsole(Get(path), res)) << path;
    EXPECT_TRUE(res.headers.empty()) << path;
  }
  Request post = Get("/");
  post.method = "POST";
  Response res;
  EXPECT_FALSE(ServeConsole(post, res));
}

TEST(Console, NoEmbeddedFileNeedsWhatTheCspForbids) {
  ASSERT_FALSE(ConsoleAssets().empty());
  const std::regex inline_script(R"(<script(?![^>]*\bsrc=)[^>]*>)");
  const std::regex inline_handler(R"(<[^>]+\son[a-z]+\s*=)", std::regex::icase);
  const std::regex style_attr(R"(<[^>]+\sstyle\s*=)", std::regex::icase);
  for (const auto& asset : ConsoleAssets()) {
    std::string body(asset.body);
    EXPECT_NE(ConsoleContentType(asset.path), "application/octet-stream") << asset.path;
    if (ConsoleContentType(asset.path).starts_with("text/html")) {
      EXPECT_FALSE(std::regex_search(body, inline_script)) << asset.path << ": inline <script>";
      EXPECT_FALSE(std::regex_search(body, inline_handler)) << asset.path << ": on…= handler";
      EXPECT_FALSE(std::regex_search(body, style_attr)) << asset.path << ": style attribute";
      EXPECT_EQ(body.find("<style"), std::string::npos) << asset.path << ": <style> element";
    }
    if (ConsoleContentType(asset.path).starts_with("text/javascript")) {
      EXPECT_EQ(body.find("innerHTML"), std::string::npos) << asset.path << ": text goes in through textContent";
      EXPECT_EQ(body.find("eval("), std::string::npos) << asset.path;
      EXPECT_EQ(body.find("localStorage"), std::string::npos) << asset.path << ": the token stays in sessionStorage";
    }
  }
}

}  // namespace
}  // namespace fastgpu::server
