// Runs the CLI in-process, as a user would from a shell: the given environment, the real file system,
// `stdin_text` as standard input; returns the exit code and what it printed.
#pragma once

#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/app.h"
#include "cli/commands.h"
#include "common/clock.h"
#include "common/file_util.h"

namespace fastgpu::cli {

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

inline Outcome RunCli(const std::vector<std::string>& args, const std::map<std::string, std::string>& env,
                      const Clock& clock, const std::string& stdin_text = "") {
  std::ostringstream out, err;
  std::istringstream in(stdin_text);
  Io io{out,
        err,
        /*out_is_tty=*/false,
        [env](std::string_view k) -> std::optional<std::string> {
          auto it = env.find(std::string(k));
          if (it == env.end()) return std::nullopt;
          return it->second;
        },
        ReadSmallFile,
        clock,
        &in,
        /*in_is_tty=*/false,
        nullptr};
  Outcome r;
  r.code = RunApp(args, Hooks{}, io);
  r.out = out.str();
  r.err = err.str();
  return r;
}

}  // namespace fastgpu::cli
