// Flag parsing and dispatch of every `fastgpu` verb. The long-running modes (up, bench api, ...) are
// reached through Hooks so this library does not depend on the server.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "cli/config.h"
#include "common/clock.h"
#include "common/status.h"
#include "agent/agent_main.h"
#include "server/admin.h"
#include "server/up.h"

namespace fastgpu::cli {

struct Hooks {
  std::function<int(const server::UpOptions&)> run_up;               // `fastgpu up`, `fastgpu server`
  std::function<int(const server::ApiBenchOptions&)> run_api_bench;  // `fastgpu bench api`
  std::function<int(const agent::AgentRunOptions&)> run_agent;       // `fastgpu agent`
  std::function<int(const server::AdminOptions&)> run_admin;         // `fastgpu admin`
  // WIRING POINT: `fastgpu simulate` and `fastgpu bench scheduler` get their hooks here.
};

struct Io {
  std::ostream& out;
  std::ostream& err;
  bool out_is_tty = false;
  EnvFn env;
  ReadFileFn read_file;
  const Clock& clock;
  std::istream* in = nullptr;  // standard input (secret values)
  bool in_is_tty = false;
  // Reads one line from the terminal without echo (termios), after printing `prompt`.
  std::function<Result<std::string>(const std::string& prompt)> prompt_hidden;
  bool err_is_tty = false;  // stderr is a terminal: progress lines (job wait)
};

// `args` excludes the program name. Returns the process exit code.
int RunApp(const std::vector<std::string>& args, const Hooks& hooks, const Io& io);

}  // namespace fastgpu::cli
