// Fleet mode, server side: join tokens, node credentials and the logs that remote agents push.
//
// Join tokens ("fgj_" + 64 hex) are created by an admin with a time to live, stored only as their SHA-256
// (records of kind "join_token", keyed by the hash) and consumed by the first join (a compare-and-set
// erase, so two agents racing with one token cannot both get in). A join returns a node credential
// ("fgn_" + 64 hex), stored only as its hash (kind "node_credential", keyed by the hash, naming the node).
// A credential authenticates exactly one node, for the agent routes only; `node remove` revokes it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "agent/control_plane.h"
#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace fastgpu::server {

struct JoinToken {
  std::string token;       // shown once
  UnixMillis expires_at = 0;
};

class NodeCredentials {
 public:
  NodeCredentials(store::Store& store, const Clock& clock);

  // ttl_ms: 1 minute .. 30 days.
  // `audit` (optional): the request's audit row, written in the same transaction as the change.
  Result<JoinToken> CreateJoinToken(int64_t ttl_ms, const std::string& created_by, api::AuditRecord* audit = nullptr);
  // Consumes `join_token` and returns a new credential for `node` (replacing an earlier one of that node).
  Result<std::string> Join(const std::string& join_token, const std::string& node, api::AuditRecord* audit = nullptr);
  // The node a credential belongs to; kUnauthenticated when it is not (or no longer) valid.
  Result<std::string> Authenticate(const std::string& credential);
  // Revokes every credential of `node`. Durable.
  Status Revoke(const std::string& node, api::AuditRecord* audit = nullptr);
  // The writes that revoke every credential of `node`, for a caller that commits them with its own change;
  // after that commit, Forget(node) drops the cached answers.
  Result<std::vector<store::RecordWrite>> RevokeWrites(const std::string& node);
  void Forget(const std::string& node);

 private:
  store::Store& store_;
  const Clock& clock_;
  std::mutex mu_;
  std::map<std::string, std::string> cache_;  // credential hash -> node (positive answers only)
};

// Logs pushed by remote agents, one file per job and node under `dir` (<dir>/<node>/<job>.log, and its time index
// <job>.log.times). Appends are idempotent by offset, so a push repeated after a lost answer writes nothing twice.
class ShippedLogs {
 public:
  explicit ShippedLogs(std::string dir);
  ~ShippedLogs();
  // Appends the part of `data` (which starts at byte `offset` of the job's log) that the file does not have
  // yet; returns the file's size afterwards. A push that starts beyond the end writes nothing.
  Result<int64_t> Append(const std::string& node, const std::string& job_id, int64_t offset, const std::string& data);
  // The same for the log's time index (agent/log_times.h; whole records only), <dir>/<node>/<job>.log.times.
  Result<int64_t> AppendTimes(const std::string& node, const std::string& job_id, int64_t offset,
                              const std::string& data);
  // The LogSource the service reads `node`'s logs from (owned here, lives as long as this object).
  agent::LogSource* ForNode(const std::string& node);

 private:
  class NodeSource;
  std::string Path(const std::string& node, const std::string& job_id) const;
  Result<int64_t> AppendAt(const std::string& path, const std::string& node, int64_t offset, const std::string& data);
  const std::string dir_;
  std::mutex mu_;  // serialises appends (one writer per file at a time)
  std::mutex sources_mu_;  // never held across I/O (ForNode is called with a service mutex held)
  std::map<std::string, std::unique_ptr<NodeSource>> sources_;
};

}  // namespace fastgpu::server
