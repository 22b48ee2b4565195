// `fastgpu job exec ID [-i] [-t] [--rank R] -- CMD…` and `fastgpu job attach ID` (docs/exec.md): a command inside a
// running job, its output streamed back live, its exit code as ours. With -t the remote command gets a
// pseudo-terminal and this terminal is put in raw mode (restored on every way out), its size passed on and updated
// on SIGWINCH.
#pragma once

#include <string>
#include <vector>

#include "cli/commands.h"

namespace fastgpu::cli {

struct ExecFlags {
  std::string id;
  std::vector<std::string> command;
  bool stdin_open = false;  // -i: forward standard input
  bool tty = false;         // -t: a pseudo-terminal on the node
  int rank = 0;             // a multi-node job: the member whose node runs it
  bool attach = false;      // `job attach`: an interactive shell (needs a terminal)
  std::string term;         // $TERM, given to the remote terminal
};

// The shell `job attach` runs: bash where the job has it, else sh.
std::vector<std::string> AttachShell();

// Returns the command's exit code (128 + N when a signal N ended it), or a FastGPU exit code (1-5) when the session
// could not be opened or was lost, 130 after Ctrl-C / SIGTERM without a terminal.
int JobExec(Context& ctx, const ExecFlags& flags);

}  // namespace fastgpu::cli
