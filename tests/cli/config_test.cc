#include "cli/config.h"

#include <gtest/gtest.h>

#include <map>

namespace fastgpu::cli {
namespace {

struct Fakes {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;
  EnvFn Env() const {
    return [this](std::string_view k) -> std::optional<std::string> {
      auto it = env.find(std::string(k));
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
  }
  ReadFileFn Files() const {
    return [this](const std::string& p) -> std::optional<std::string> {
      auto it = files.find(p);
      if (it == files.end()) return std::nullopt;
      return it->second;
    };
  }
};

TEST(ResolveHome, PrefersFastgpuHomeThenHome) {
  Fakes f;
  EXPECT_EQ(ResolveHome(f.Env()), ".fastgpu");
  f.env["HOME"] = "/home/ada";
  EXPECT_EQ(ResolveHome(f.Env()), "/home/ada/.fastgpu");
  f.env["FASTGPU_HOME"] = "/srv/fg";
  EXPECT_EQ(ResolveHome(f.Env()), "/srv/fg");
}

TEST(ResolveClientConfig, FlagBeatsEnvBeatsHomeFiles) {
  Fakes f;
  f.env["FASTGPU_HOME"] = "/h";
  f.files["/h/url"] = "http://127.0.0.1:9000\n";
  f.files["/h/admin.token"] = "file-token\n";

  auto c = ResolveClientConfig("", "", f.Env(), f.Files());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server_url, "http://127.0.0.1:9000");
  EXPECT_EQ(c->token, "file-token");
  EXPECT_EQ(c->server_from, "/h/url");

  f.env["FASTGPU_SERVER"] = "http://10.0.0.1:8400/";
  f.env["FASTGPU_TOKEN"] = "env-token";
  c = ResolveClientConfig("", "", f.Env(), f.Files());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server_url, "http://10.0.0.1:8400");
  EXPECT_EQ(c->token, "env-token");
  EXPECT_EQ(c->token_from, "FASTGPU_TOKEN");

  c = ResolveClientConfig("gpu.example:1234", "flag-token", f.Env(), f.Files());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server_url, "http://gpu.example:1234");
  EXPECT_EQ(c->token, "flag-token");
  EXPECT_EQ(c->server_from, "--server");
}

TEST(ResolveClientConfig, DefaultsWhenNothingIsConfigured) {
  Fakes f;
  f.env["HOME"] = "/nowhere";
  auto c = ResolveClientConfig("", "", f.Env(), f.Files());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server_url, kDefaultServerUrl);
  EXPECT_EQ(c->server_from, "default");
  EXPECT_EQ(c->token, "");
}

TEST(ResolveClientConfig, EmptyValuesFallThrough) {
  Fakes f;
  f.env["FASTGPU_HOME"] = "/h";
  f.env["FASTGPU_SERVER"] = "  ";
  f.files["/h/url"] = "127.0.0.1:7000";
  auto c = ResolveClientConfig("", "", f.Env(), f.Files());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server_url, "http://127.0.0.1:7000");
}

TEST(NormalizeServerUrl, AddsSchemeAndRejectsJunk) {
  EXPECT_EQ(*NormalizeServerUrl("localhost:8400"), "http://localhost:8400");
  EXPECT_EQ(*NormalizeServerUrl("https://gpu.example///"), "https://gpu.example");
  EXPECT_FALSE(NormalizeServerUrl("").ok());
  EXPECT_FALSE(NormalizeServerUrl("ftp://x").ok());
  EXPECT_FALSE(NormalizeServerUrl("http://").ok());
}

}  // namespace
}  // namespace fastgpu::cli
