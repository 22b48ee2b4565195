#include "cli/config.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "common/file_util.h"

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

TEST(ResolveClientConfig, CredentialsSitBetweenEnvAndUpFiles) {
  Fakes f;
  f.env["FASTGPU_HOME"] = "/h";
  f.files["/h/url"] = "http://127.0.0.1:8400\n";
  f.files["/h/admin.token"] = "admin-token\n";
  f.files["/h/credentials.json"] =
      R"({"server":"https://gpu.example.com","token":"login-token","ca":"/etc/ca.pem"})";

  // Credentials beat the files of `fastgpu up`.
  auto c = ResolveClientConfig("", "", f.Env(), f.Files());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server_url, "https://gpu.example.com");
  EXPECT_EQ(c->token, "login-token");
  EXPECT_EQ(c->ca_file, "/etc/ca.pem");
  EXPECT_EQ(c->server_from, "/h/credentials.json");
  EXPECT_EQ(c->token_from, "/h/credentials.json");

  // Environment beats credentials, field by field.
  f.env["FASTGPU_TOKEN"] = "env-token";
  f.env["FASTGPU_CA"] = "/env/ca.pem";
  c = ResolveClientConfig("", "", f.Env(), f.Files());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->server_url, "https://gpu.example.com");
  EXPECT_EQ(c->token, "env-token");
  EXPECT_EQ(c->ca_file, "/env/ca.pem");
  EXPECT_EQ(c->ca_from, "FASTGPU_CA");

  // Flags beat everything.
  c = ResolveClientConfig("https://gpu.example.com", "flag-token", f.Env(), f.Files(), "/flag/ca.pem");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->token, "flag-token");
  EXPECT_EQ(c->ca_file, "/flag/ca.pem");
  EXPECT_EQ(c->ca_from, "--ca");
}

TEST(ResolveClientConfig, StoredTokenIsOnlySentToItsServer) {
  Fakes f;
  f.env["FASTGPU_HOME"] = "/h";
  f.files["/h/admin.token"] = "admin-token";
  f.files["/h/credentials.json"] = R"({"server":"https://gpu.example.com/","token":"login-token","ca":"/ca.pem"})";

  // Another server: the local admin token (from `fastgpu up`), not the logged-in one.
  auto c = ResolveClientConfig("http://127.0.0.1:8400", "", f.Env(), f.Files());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->token, "admin-token");
  EXPECT_EQ(c->ca_file, "");

  // The same server given explicitly (URL normalised): the stored token and CA apply.
  f.env["FASTGPU_SERVER"] = "https://gpu.example.com";
  c = ResolveClientConfig("", "", f.Env(), f.Files());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->token, "login-token");
  EXPECT_EQ(c->ca_file, "/ca.pem");
}

TEST(ResolveClientConfig, DamagedCredentialsSayWhatToDo) {
  Fakes f;
  f.env["FASTGPU_HOME"] = "/h";
  f.files["/h/credentials.json"] = "{not json";
  auto c = ResolveClientConfig("", "", f.Env(), f.Files());
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("/h/credentials.json"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("fastgpu login"), std::string::npos);
  // Not needed when the server is given.
  EXPECT_TRUE(ResolveClientConfig("http://x:1", "t", f.Env(), f.Files()).ok());
}

TEST(Credentials, RoundTripAndStrictParsing) {
  Credentials c{"https://gpu.example.com", "fgp_abc", "/etc/ca.pem"};
  auto back = ParseCredentials(CredentialsJson(c));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->server, c.server);
  EXPECT_EQ(back->token, c.token);
  EXPECT_EQ(back->ca, c.ca);
  EXPECT_EQ(ParseCredentials(R"({"server":"gpu:8400","token":"t"})")->server, "http://gpu:8400");
  EXPECT_FALSE(ParseCredentials(R"({"server":"http://x"})").ok());
  EXPECT_FALSE(ParseCredentials(R"({"server":"http://x","token":"t","extra":1})").ok());
  EXPECT_FALSE(ParseCredentials(R"([1])").ok());
}

TEST(Credentials, WrittenWithMode0600AndRemoved) {
  std::string base = std::filesystem::temp_directory_path() / "fastgpu-creds-XXXXXX";
  ASSERT_NE(::mkdtemp(base.data()), nullptr);
  const std::string home = base + "/nested/home";  // created on demand
  ASSERT_TRUE(WriteCredentials(home, {"http://127.0.0.1:1", "tok", ""}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(CredentialsPath(home).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(home.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(ParseCredentials(*ReadFileToString(CredentialsPath(home)))->token, "tok");
  EXPECT_EQ(*RemoveCredentials(home), true);
  EXPECT_EQ(*RemoveCredentials(home), false);
  std::filesystem::remove_all(base);
}

}  // namespace
}  // namespace fastgpu::cli
