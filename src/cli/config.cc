#include "cli/config.h"

#include "common/file_util.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fastgpu::cli {
namespace {

std::string TrimSpace(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\n' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\n' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

std::optional<std::string> NonEmpty(std::optional<std::string> v) {
  if (!v) return std::nullopt;
  std::string t = TrimSpace(*v);
  if (t.empty()) return std::nullopt;
  return t;
}

}  // namespace

std::optional<std::string> GetEnv(std::string_view name) {
  const char* v = std::getenv(std::string(name).c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

std::optional<std::string> ReadSmallFile(const std::string& path) { return ReadFileToString(path, 1 << 20); }

std::string ResolveHome(const EnvFn& env) {
  if (auto h = NonEmpty(env("FASTGPU_HOME"))) return *h;
  if (auto h = NonEmpty(env("HOME"))) return *h + "/.fastgpu";
  return ".fastgpu";
}

Result<std::string> NormalizeServerUrl(std::string_view text) {
  std::string s = TrimSpace(text);
  if (s.empty()) return InvalidArgument("server URL is empty (example: http://127.0.0.1:8400)");
  if (s.find("://") == std::string::npos) s = "http://" + s;
  if (s.rfind("http://", 0) != 0 && s.rfind("https://", 0) != 0)
    return InvalidArgument("server URL '" + s + "' must start with http:// or https://");
  const size_t host = s.find("://") + 3;
  while (s.size() > host && s.back() == '/') s.pop_back();
  if (host >= s.size() || s[host] == '/')
    return InvalidArgument("server URL '" + std::string(text) + "' has no host");
  return s;
}

Result<ClientConfig> ResolveClientConfig(const std::string& flag_server, const std::string& flag_token,
                                         const EnvFn& env, const ReadFileFn& read_file) {
  ClientConfig cfg;
  std::string home = ResolveHome(env);
  std::string raw_url;
  if (!TrimSpace(flag_server).empty()) {
    raw_url = flag_server;
    cfg.server_from = "--server";
  } else if (auto e = NonEmpty(env("FASTGPU_SERVER"))) {
    raw_url = *e;
    cfg.server_from = "FASTGPU_SERVER";
  } else if (auto f = NonEmpty(read_file(home + "/url"))) {
    raw_url = *f;
    cfg.server_from = home + "/url";
  } else {
    raw_url = std::string(kDefaultServerUrl);
    cfg.server_from = "default";
  }
  auto url = NormalizeServerUrl(raw_url);
  if (!url.ok()) return InvalidArgument(url.status().message() + " (from " + cfg.server_from + ")");
  cfg.server_url = *url;

  if (!TrimSpace(flag_token).empty()) {
    cfg.token = TrimSpace(flag_token);
    cfg.token_from = "--token";
  } else if (auto e = NonEmpty(env("FASTGPU_TOKEN"))) {
    cfg.token = *e;
    cfg.token_from = "FASTGPU_TOKEN";
  } else if (auto f = NonEmpty(read_file(home + "/admin.token"))) {
    cfg.token = *f;
    cfg.token_from = home + "/admin.token";
  }
  return cfg;
}

}  // namespace fastgpu::cli
