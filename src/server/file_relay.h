// Job files of remote nodes (`fastgpu job files`, docs/sync.md). Agents never listen on a port, so the server asks a
// node's agent with a files command (agent::JobCommand::Kind::kFiles) and the agent posts its answer
// (POST /v1/agent/files); the client's request waits for it, parked without a worker, until a deadline. This holds
// the requests in flight: at most kMaxPending, each answered by the node it was asked of only, and forgotten when its
// waiter took the answer, gave up, or after kExpireMs (a waiter that went away).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "agent/control_plane.h"
#include "common/clock.h"
#include "common/status.h"

namespace fastgpu::server {

class FileRelay {
 public:
  static constexpr size_t kMaxPending = 1024;
  static constexpr int64_t kExpireMs = 120'000;

  explicit FileRelay(const Clock& clock) : clock_(clock) {}

  // A new request to `node`: its id. `watch_key` is what the answer wakes ("" = "files:<id>").
  Result<std::string> Open(const std::string& node, std::string watch_key = {});
  // The answer of `a.node` to its request: kept for the waiter; returns the key to wake. kNotFound for a request that
  // is unknown or over, kPermissionDenied for another node's.
  Result<std::string> Answer(agent::FilesAnswer a);
  // The answer once there (the request is then over); nullopt while it is awaited.
  std::optional<agent::FilesAnswer> Take(const std::string& id);
  void Drop(const std::string& id);

 private:
  struct Pending {
    std::string node;
    std::string watch_key;
    int64_t opened_ms = 0;
    std::optional<agent::FilesAnswer> answer;
  };
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, Pending> pending_;
};

}  // namespace fastgpu::server
