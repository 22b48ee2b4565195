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

// $FASTGPU_HOME, else $HOME/.fastgpu, else ./.fastgpu.
std::string ResolveHome(const EnvFn& env);

// "127.0.0.1:8400" -> "http://127.0.0.1:8400"; strips trailing slashes; rejects empty text.
Result<std::string> NormalizeServerUrl(std::string_view text);

struct ClientConfig {
  std::string server_url;
  std::string token;
  std::string server_from;  // "--server", "FASTGPU_SERVER", "<home>/url" or "default"
  std::string token_from;   // "--token", "FASTGPU_TOKEN", "<home>/admin.token" or "" (none)
};

// Order for each of URL and token: flag > environment > files written by `fastgpu up` in the home dir
// > default (URL only).
Result<ClientConfig> ResolveClientConfig(const std::string& flag_server, const std::string& flag_token,
                                         const EnvFn& env, const ReadFileFn& read_file);

}  // namespace fastgpu::cli
