#include "server/file_relay.h"

#include "common/crypto.h"

namespace fastgpu::server {

Result<std::string> FileRelay::Open(const std::string& node, std::string watch_key) {
  ASSIGN_OR_RETURN(std::string id, RandomHex(12));
  id = "f-" + id;
  const int64_t now = clock_.NowMillis();
  std::lock_guard lock(mu_);
  std::erase_if(pending_, [&](const auto& p) { return now - p.second.opened_ms > kExpireMs; });
  if (pending_.size() >= kMaxPending)
    return ResourceExhausted("too many job file requests are waiting for their nodes; try again shortly");
  pending_[id] = Pending{node, watch_key.empty() ? "files:" + id : std::move(watch_key), now, std::nullopt};
  return id;
}

Result<std::string> FileRelay::Answer(agent::FilesAnswer a) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(a.request);
  if (it == pending_.end()) return NotFound("no files request " + a.request + " is waiting (it was answered or gave up)");
  if (it->second.node != a.node)
    return PermissionDenied("files request " + a.request + " was not sent to node " + a.node);
  it->second.answer = std::move(a);
  return it->second.watch_key;
}

std::optional<agent::FilesAnswer> FileRelay::Take(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(id);
  if (it == pending_.end() || !it->second.answer) return std::nullopt;
  std::optional<agent::FilesAnswer> a = std::move(it->second.answer);
  pending_.erase(it);
  return a;
}

void FileRelay::Drop(const std::string& id) {
  std::lock_guard lock(mu_);
  pending_.erase(id);
}

}  // namespace fastgpu::server
