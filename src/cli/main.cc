#include "cli/main.h"

#include <termios.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "agent/rank_launcher.h"
#include "cli/app.h"
#include "server/admin.h"
#include "server/up.h"

namespace fastgpu::cli {
namespace {

// Reads one line from the terminal with echo off (for secret values); echo is restored afterwards.
Result<std::string> PromptHidden(const std::string& prompt) {
  std::cerr << prompt << std::flush;
  termios old{};
  if (::tcgetattr(STDIN_FILENO, &old) != 0) return InvalidArgument("cannot read from the terminal");
  termios quiet = old;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  if (!got) return InvalidArgument("no value entered");
  return line;
}

}  // namespace

int Main(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  // The process of a job with one process per GPU (src/agent/rank_launcher.h); not a user verb.
  if (!args.empty() && args[0] == agent::kRankLauncherVerb) {
    return agent::RunRankLauncher(std::vector<std::string>(args.begin() + 1, args.end()));
  }
  Hooks hooks;
  hooks.run_up = [](const server::UpOptions& o) { return server::RunUp(o); };
  hooks.run_api_bench = [](const server::ApiBenchOptions& o) { return server::RunApiBench(o); };
  hooks.run_agent = [](const agent::AgentRunOptions& o) { return agent::RunAgentMain(o); };
  hooks.run_admin = [](const server::AdminOptions& o) { return server::RunAdmin(o); };
  SystemClock clock;
  Io io{std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1, GetEnv, ReadSmallFile, clock,
        &std::cin, ::isatty(STDIN_FILENO) == 1, PromptHidden, ::isatty(STDERR_FILENO) == 1};
  try {
    return RunApp(args, hooks, io);
  } catch (const std::exception& e) {
    // Last line of defence: one line on stderr and a non-zero exit code, never an abort.
    std::string what = e.what();
    if (what.find("UTF-8") != std::string::npos) what = "an argument or file is not valid UTF-8 text (" + what + ")";
    std::cerr << "fastgpu: error: " << what << "\n";
    return 1;
  }
}

}  // namespace fastgpu::cli
