#include "cli/config.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "common/file_util.h"

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

std::string CredentialsPath(const std::string& home) { return home + "/credentials.json"; }

Result<Credentials> ParseCredentials(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto str = [&](const char* k) -> std::string {
    auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (j.is_discarded() || !j.is_object() || str("server").empty() || str("token").empty())
    return InvalidArgument("credentials file is damaged (expected JSON with \"server\" and \"token\"); run "
                           "`fastgpu login` again");
  for (const auto& [k, v] : j.items()) {
    if ((k != "server" && k != "token" && k != "ca") || !v.is_string())
      return InvalidArgument("credentials file has an unexpected field '" + k + "'; run `fastgpu login` again");
  }
  Credentials c{str("server"), TrimSpace(str("token")), str("ca")};
  auto url = NormalizeServerUrl(c.server);
  if (!url.ok()) return InvalidArgument("credentials file: " + url.status().message());
  c.server = *url;
  return c;
}

std::string CredentialsJson(const Credentials& c) {
  nlohmann::json j = {{"server", c.server}, {"token", c.token}};
  if (!c.ca.empty()) j["ca"] = c.ca;
  return j.dump(2) + "\n";
}

Status WriteCredentials(const std::string& home, const Credentials& c) {
  RETURN_IF_ERROR(MakeDirs(home, 0700));
  return WriteFileAtomic(CredentialsPath(home), CredentialsJson(c), 0600, /*sync=*/true);
}

std::string UserConfigPath(const std::string& home) { return home + "/config.json"; }

namespace {

Result<nlohmann::json> LoadUserConfig(const ReadFileFn& read_file, const std::string& home) {
  auto text = read_file(UserConfigPath(home));
  if (!text || TrimSpace(*text).empty()) return nlohmann::json::object();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (!j.is_object())
    return InvalidArgument(UserConfigPath(home) + " is not a JSON object; fix it or remove it (fastgpu config unset KEY)");
  return j;
}

}  // namespace

Result<std::optional<std::string>> ReadUserConfig(const ReadFileFn& read_file, const std::string& home,
                                                  const std::string& key) {
  ASSIGN_OR_RETURN(nlohmann::json j, LoadUserConfig(read_file, home));
  auto it = j.find(key);
  if (it == j.end() || !it->is_string() || it->get<std::string>().empty()) return std::optional<std::string>();
  return std::optional<std::string>(it->get<std::string>());
}

Status WriteUserConfig(const ReadFileFn& read_file, const std::string& home, const std::string& key,
                       const std::optional<std::string>& value) {
  ASSIGN_OR_RETURN(nlohmann::json j, LoadUserConfig(read_file, home));
  if (value) {
    j[key] = *value;
  } else {
    j.erase(key);
  }
  RETURN_IF_ERROR(MakeDirs(home, 0700));
  return WriteFileAtomic(UserConfigPath(home), j.dump(2) + "\n", 0600, /*sync=*/true);
}

Result<bool> RemoveCredentials(const std::string& home) {
  const std::string path = CredentialsPath(home);
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT) return false;
  return Internal("cannot remove " + path + ": " + std::strerror(errno));
}

Result<ClientConfig> ResolveClientConfig(const std::string& flag_server, const std::string& flag_token,
                                         const EnvFn& env, const ReadFileFn& read_file,
                                         const std::string& flag_ca) {
  ClientConfig cfg;
  std::string home = ResolveHome(env);
  const std::string creds_path = CredentialsPath(home);
  std::optional<Result<Credentials>> creds;
  if (auto text = read_file(creds_path)) creds = ParseCredentials(*text);
  auto creds_error = [&] { return InvalidArgument(creds_path + ": " + creds->status().message()); };

  std::string raw_url;
  if (!TrimSpace(flag_server).empty()) {
    raw_url = flag_server;
    cfg.server_from = "--server";
  } else if (auto e = NonEmpty(env("FASTGPU_SERVER"))) {
    raw_url = *e;
    cfg.server_from = "FASTGPU_SERVER";
  } else if (creds) {
    if (!creds->ok()) return creds_error();
    raw_url = (*creds)->server;
    cfg.server_from = creds_path;
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
  // The stored token and CA belong to the server they were stored for.
  const Credentials* stored = creds && creds->ok() && (*creds)->server == cfg.server_url ? &**creds : nullptr;

  if (!TrimSpace(flag_token).empty()) {
    cfg.token = TrimSpace(flag_token);
    cfg.token_from = "--token";
  } else if (auto e = NonEmpty(env("FASTGPU_TOKEN"))) {
    cfg.token = *e;
    cfg.token_from = "FASTGPU_TOKEN";
  } else if (stored != nullptr) {
    cfg.token = stored->token;
    cfg.token_from = creds_path;
  } else if (auto f = NonEmpty(read_file(home + "/admin.token"))) {
    cfg.token = *f;
    cfg.token_from = home + "/admin.token";
  }

  if (!TrimSpace(flag_ca).empty()) {
    cfg.ca_file = TrimSpace(flag_ca);
    cfg.ca_from = "--ca";
  } else if (auto e = NonEmpty(env("FASTGPU_CA"))) {
    cfg.ca_file = *e;
    cfg.ca_from = "FASTGPU_CA";
  } else if (stored != nullptr && !stored->ca.empty()) {
    cfg.ca_file = stored->ca;
    cfg.ca_from = creds_path;
  }
  return cfg;
}

}  // namespace fastgpu::cli
