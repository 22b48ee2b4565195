#include "cli/main.h"

#include <unistd.h>

#include <iostream>

#include "cli/app.h"
#include "server/up.h"

namespace fastgpu::cli {

int Main(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) args.emplace_back(argv[i]);
  Hooks hooks;
  hooks.run_up = [](const server::UpOptions& o) { return server::RunUp(o); };
  hooks.run_api_bench = [](const server::ApiBenchOptions& o) { return server::RunApiBench(o); };
  SystemClock clock;
  Io io{std::cout, std::cerr, ::isatty(STDOUT_FILENO) == 1, GetEnv, ReadSmallFile, clock};
  return RunApp(args, hooks, io);
}

}  // namespace fastgpu::cli
