// Where the CLI finds the server and its token. Pure functions over injected lookups.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace fastgpu::cli {

// Reads an environment variable; nullopt when unset.
using EnvFn = std::function<std::optional<std::string>(std::string_view name)>;
// Reads a small text file; nullopt when it does not exist or cannot be read.
using ReadFileFn = std::function<std::optional<std::string>(const std::string& path)>;

// Real implementations of the lookups.
std::optional<std::string> GetEnv(std::string_view name);
std::optional<std::string> ReadSmallFile(const std::string& path);

inline constexpr std::string_view kDefaultServerUrl = "http://127.0.0.1:8400";

// Where `fastgpu up` and `fastgpu agent` keep checkpoints when they run as root with the default home and job users
// cannot pass through it (a home under /root): <this>/<hash of the home>/<job id> (docs/scheduling.md).
inline constexpr std::string_view kCheckpointFallbackBase = "/var/lib/fastgpu/checkpoints";

// $FASTGPU_HOME, else $HOME/.fastgpu, else ./.fastgpu.
std::string ResolveHome(const EnvFn& env);

// "127.0.0.1:8400" -> "http://127.0.0.1:8400"; strips trailing slashes; rejects empty text.
Result<std::string> NormalizeServerUrl(std::string_view text);

struct ClientConfig {
  std::string server_url;
  std::string token;
  std::string ca_file;      // private CA bundle for https:// URLs; empty = the system's trust store
  std::string server_from;  // "--server", "FASTGPU_SERVER", "<home>/credentials.json", "<home>/url" or "default"
  std::string token_from;   // "--token", "FASTGPU_TOKEN", "<home>/credentials.json", "<home>/admin.token" or ""
  std::string ca_from;      // "--ca", "FASTGPU_CA", "<home>/credentials.json" or ""
};

// What `fastgpu login` stores in <home>/credentials.json (mode 0600).
struct Credentials {
  std::string server;  // normalised URL
  std::string token;
  std::string ca;      // absolute path of a CA bundle, or empty
};
std::string CredentialsPath(const std::string& home);
// Strict: a JSON object with non-empty "server" and "token" strings, optional "ca".
Result<Credentials> ParseCredentials(std::string_view text);
std::string CredentialsJson(const Credentials& c);
// Creates `home` (0700) when missing and writes the file atomically with mode 0600.
Status WriteCredentials(const std::string& home, const Credentials& c);
// Removes the file; false when there was none.
Result<bool> RemoveCredentials(const std::string& home);

// The user's settings, <home>/config.json (0600): {"project": "ml"}. Keys: kConfigKeys.
inline constexpr const char* kConfigKeys[] = {"project"};
std::string UserConfigPath(const std::string& home);
// The value of `key`, or nothing (no file, no such key). A file that is not a JSON object is an error.
Result<std::optional<std::string>> ReadUserConfig(const ReadFileFn& read_file, const std::string& home,
                                                  const std::string& key);
// Sets (value) or removes (nullopt) `key`; creates the home (0700) and writes the file atomically.
Status WriteUserConfig(const ReadFileFn& read_file, const std::string& home, const std::string& key,
                       const std::optional<std::string>& value);

// Order for each of URL, token and CA file: flag > environment (FASTGPU_SERVER / FASTGPU_TOKEN /
// FASTGPU_CA) > <home>/credentials.json > files written by `fastgpu up` in the home dir (url,
// admin.token) > default (URL only). The stored token and CA are used only for the server they were
// stored for, so `--server` pointing elsewhere never receives the logged-in token.
Result<ClientConfig> ResolveClientConfig(const std::string& flag_server, const std::string& flag_token,
                                         const EnvFn& env, const ReadFileFn& read_file,
                                         const std::string& flag_ca = "");

}  // namespace fastgpu::cli
