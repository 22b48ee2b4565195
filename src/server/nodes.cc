#include "server/nodes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "agent/log_times.h"
#include "agent/protocol.h"
#include "common/crypto.h"
#include "common/file_util.h"

namespace fastgpu::server {

using nlohmann::json;

namespace {

constexpr const char* kJoinTokenKind = "join_token";
constexpr const char* kCredentialKind = "node_credential";

Result<std::string> NewSecret(const char* prefix) {
  ASSIGN_OR_RETURN(std::string hex, RandomHex(32));
  return std::string(prefix) + hex;
}

bool SafeJobId(const std::string& id) {
  return !id.empty() && id.size() <= 128 && id != "." && id != ".." &&
         std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                  c == '.';
         });
}

}  // namespace

NodeCredentials::NodeCredentials(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

Result<JoinToken> NodeCredentials::CreateJoinToken(int64_t ttl_ms, const std::string& created_by,
                                                   api::AuditRecord* audit) {
  if (ttl_ms < 60'000 || ttl_ms > int64_t{30} * 24 * 3600 * 1000)
    return InvalidArgument("--ttl must be between 1m and 30d (e.g. 1h)");
  JoinToken t;
  ASSIGN_OR_RETURN(t.token, NewSecret(agent::kJoinTokenPrefix));
  t.expires_at = clock_.NowMillis() + ttl_ms;
  json v{{"expires_at_ms", t.expires_at}, {"created_by", created_by}, {"created_at_ms", clock_.NowMillis()}};
  RETURN_IF_ERROR(store_.WriteRecords(
      {{.kind = kJoinTokenKind, .key = Sha256Hex(t.token), .value = v.dump(), .expected_version = 0}}, audit));
  return t;
}

Result<std::string> NodeCredentials::Join(const std::string& join_token, const std::string& node,
                                          api::AuditRecord* audit) {
  RETURN_IF_ERROR(agent::ValidateNodeName(node));
  const std::string invalid =
      "the join token is not valid: it is unknown, expired or already used (create a new one with "
      "`fastgpu node token create` on the server)";
  if (join_token.rfind(agent::kJoinTokenPrefix, 0) != 0) return Unauthenticated(invalid);
  const std::string hash = Sha256Hex(join_token);
  ASSIGN_OR_RETURN(auto rec, store_.GetRecord(kJoinTokenKind, hash));
  if (!rec) return Unauthenticated(invalid);
  auto v = json::parse(rec->value, nullptr, false);
  const int64_t expires = v.is_object() ? v.value("expires_at_ms", int64_t{0}) : 0;
  ASSIGN_OR_RETURN(std::string credential, NewSecret(agent::kNodeCredentialPrefix));
  const std::string cred_hash = Sha256Hex(credential);
  ASSIGN_OR_RETURN(auto existing, store_.ListRecords(kCredentialKind, ""));
  std::vector<store::RecordWrite> writes;
  // Single use: the erase is a compare-and-set on the version read above, so of two joins racing with the
  // same token only one commits.
  writes.push_back({.kind = kJoinTokenKind, .key = hash, .erase = true, .expected_version = rec->version});
  if (expires <= clock_.NowMillis()) {
    (void)store_.WriteRecords(writes);  // an expired token is dropped
    return Unauthenticated(invalid);
  }
  std::vector<std::string> replaced;
  for (const auto& c : existing) {
    auto cv = json::parse(c.value, nullptr, false);
    if (cv.is_object() && cv.value("node", std::string()) == node) {
      writes.push_back({.kind = kCredentialKind, .key = c.key, .erase = true});
      replaced.push_back(c.key);
    }
  }
  json cv{{"node", node}, {"created_at_ms", clock_.NowMillis()}};
  writes.push_back({.kind = kCredentialKind, .key = cred_hash, .value = cv.dump(), .expected_version = 0});
  Status st = store_.WriteRecords(writes, audit);
  if (!st.ok()) {
    if (st.code() == ErrorCode::kFailedPrecondition || st.code() == ErrorCode::kNotFound) return Unauthenticated(invalid);
    return st;
  }
  std::lock_guard lock(mu_);
  for (const auto& h : replaced) cache_.erase(h);
  cache_[cred_hash] = node;
  return credential;
}

Result<std::string> NodeCredentials::Authenticate(const std::string& credential) {
  const std::string invalid =
      "invalid node credential: the node was removed or joined again elsewhere; join it with a new token "
      "(fastgpu node token create)";
  if (credential.rfind(agent::kNodeCredentialPrefix, 0) != 0) return Unauthenticated(invalid);
  const std::string hash = Sha256Hex(credential);
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(hash); it != cache_.end()) return it->second;
  }
  ASSIGN_OR_RETURN(auto rec, store_.GetRecord(kCredentialKind, hash));
  if (!rec) return Unauthenticated(invalid);
  auto v = json::parse(rec->value, nullptr, false);
  if (!v.is_object() || !v.contains("node") || !v["node"].is_string()) return Unauthenticated(invalid);
  std::string node = v["node"].get<std::string>();
  std::lock_guard lock(mu_);
  cache_[hash] = node;
  return node;
}

Result<std::vector<store::RecordWrite>> NodeCredentials::RevokeWrites(const std::string& node) {
  ASSIGN_OR_RETURN(auto existing, store_.ListRecords(kCredentialKind, ""));
  std::vector<store::RecordWrite> writes;
  for (const auto& c : existing) {
    auto cv = json::parse(c.value, nullptr, false);
    if (cv.is_object() && cv.value("node", std::string()) == node)
      writes.push_back({.kind = kCredentialKind, .key = c.key, .erase = true});
  }
  return writes;
}

void NodeCredentials::Forget(const std::string& node) {
  std::lock_guard lock(mu_);
  std::erase_if(cache_, [&](const auto& kv) { return kv.second == node; });
}

Status NodeCredentials::Revoke(const std::string& node, api::AuditRecord* audit) {
  ASSIGN_OR_RETURN(auto writes, RevokeWrites(node));
  if (!writes.empty()) RETURN_IF_ERROR(store_.WriteRecords(writes, audit));
  Forget(node);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

class ShippedLogs::NodeSource final : public agent::LogSource {
 public:
  NodeSource(const ShippedLogs& logs, std::string node) : logs_(logs), node_(std::move(node)) {}
  Result<agent::LogChunk> ReadLog(const std::string& job_id, int64_t offset, int64_t max_bytes) override {
    if (!SafeJobId(job_id)) return NotFound("no log for job '" + job_id + "'");
    if (offset < 0) return InvalidArgument("log offset must be >= 0");
    max_bytes = std::clamp<int64_t>(max_bytes, 1, 8 << 20);
    const std::string path = logs_.Path(node_, job_id);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return NotFound("no log for job " + job_id + " from node " + node_ + " yet");
      return Internal("cannot open " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    ::fstat(fd, &st);
    agent::LogChunk chunk;
    const int64_t size = st.st_size;
    chunk.size = size;
    chunk.modified_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    const int64_t want = std::max<int64_t>(0, std::min(max_bytes, size - offset));
    chunk.data = PreadUpTo(fd, offset, want);
    ::close(fd);
    chunk.next_offset = offset + static_cast<int64_t>(chunk.data.size());
    chunk.eof = chunk.next_offset >= size;
    return chunk;
  }
  Result<agent::LogTimes> ReadLogTimes(const std::string& job_id, int64_t first, int64_t max_records) override {
    if (!SafeJobId(job_id)) return NotFound("no log for job '" + job_id + "'");
    return agent::ReadLogTimesFile(agent::LogTimesPath(logs_.Path(node_, job_id)), first, max_records);
  }

 private:
  const ShippedLogs& logs_;
  const std::string node_;
};

ShippedLogs::ShippedLogs(std::string dir) : dir_(std::move(dir)) {}
ShippedLogs::~ShippedLogs() = default;

std::string ShippedLogs::Path(const std::string& node, const std::string& job_id) const {
  return dir_ + "/" + node + "/" + job_id + ".log";
}

agent::LogSource* ShippedLogs::ForNode(const std::string& node) {
  std::lock_guard lock(sources_mu_);
  auto& s = sources_[node];
  if (!s) s = std::make_unique<NodeSource>(*this, node);
  return s.get();
}

Result<int64_t> ShippedLogs::Append(const std::string& node, const std::string& job_id, int64_t offset,
                                    const std::string& data) {
  RETURN_IF_ERROR(agent::ValidateNodeName(node));
  if (!SafeJobId(job_id)) return InvalidArgument("invalid job id '" + job_id + "'");
  if (offset < 0) return InvalidArgument("offset must be >= 0");
  return AppendAt(Path(node, job_id), node, offset, data);
}

Result<int64_t> ShippedLogs::AppendTimes(const std::string& node, const std::string& job_id, int64_t offset,
                                         const std::string& data) {
  RETURN_IF_ERROR(agent::ValidateNodeName(node));
  if (!SafeJobId(job_id)) return InvalidArgument("invalid job id '" + job_id + "'");
  if (offset < 0 || offset % agent::kLogTimeRecordBytes != 0 ||
      static_cast<int64_t>(data.size()) % agent::kLogTimeRecordBytes != 0) {
    return InvalidArgument("log time records are " + std::to_string(agent::kLogTimeRecordBytes) +
                           " bytes each: offset and body size must be multiples of it");
  }
  return AppendAt(agent::LogTimesPath(Path(node, job_id)), node, offset, data);
}

Result<int64_t> ShippedLogs::AppendAt(const std::string& path, const std::string& node, int64_t offset,
                                      const std::string& data) {
  std::lock_guard lock(mu_);
  RETURN_IF_ERROR(MakeDirs(dir_ + "/" + node));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  int64_t size = st.st_size;
  if (offset <= size && offset + static_cast<int64_t>(data.size()) > size) {
    const char* p = data.data() + (size - offset);
    size_t left = data.size() - static_cast<size_t>(size - offset);
    while (left > 0) {
      ssize_t w = ::write(fd, p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int e = errno;
        ::close(fd);
        return Internal("cannot write " + path + ": " + std::strerror(e));
      }
      p += w;
      left -= static_cast<size_t>(w);
      size += w;
    }
  }
  ::close(fd);
  return size;
}

}  // namespace fastgpu::server
