// `fastgpu agent`: runs this machine as a node of a remote `fastgpu server` (fleet mode).
#pragma once

#include <cstdint>
#include <string>

namespace fastgpu::agent {

struct AgentRunOptions {
  std::string server;       // https://HOST:PORT of the server (http:// for loopback or tests)
  std::string join_token;   // fgj_… one-time token; needed only for the first start (or to join again)
  std::string ca_file;      // PEM bundle trusted for the server's certificate
  std::string name;         // node name (default: the name it joined with, else the host name)
  std::string sim_gpus = "auto";  // as `fastgpu up --sim-gpus`
  std::string home;         // agent state: credential (node.json, 0600), jobs/, logs/
  int64_t stop_grace_ms = 10'000;
  // Where jobs keep their checkpoints (AgentOptions::checkpoint_root; empty: <home>/checkpoints). In a fleet,
  // shared storage mounted at the same path on every node.
  std::string checkpoint_root;
  std::string checkpoint_fallback_base;  // AgentOptions::checkpoint_fallback_base (set for the default home)
};

// Joins (when given a join token) or reuses the stored credential, then runs the agent until SIGINT or
// SIGTERM. Returns the process exit code; errors go to stderr as one line.
int RunAgentMain(const AgentRunOptions& options);

}  // namespace fastgpu::agent
