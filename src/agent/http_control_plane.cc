#include "agent/http_control_plane.h"
#include "agent/log_times.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "sync/archive.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "agent/protocol.h"
#include "api/json.h"

namespace fastgpu::agent {

using nlohmann::json;

namespace {

ErrorCode CodeFromName(const std::string& name) {
  for (ErrorCode c : {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists,
                      ErrorCode::kFailedPrecondition, ErrorCode::kUnschedulable, ErrorCode::kResourceExhausted,
                      ErrorCode::kPayloadTooLarge, ErrorCode::kUnauthenticated, ErrorCode::kPermissionDenied,
                      ErrorCode::kDeadlineExceeded, ErrorCode::kUnavailable, ErrorCode::kInternal}) {
    if (ErrorCodeName(c) == name) return c;
  }
  return ErrorCode::kInternal;
}

http::Headers ProtocolHeaders() { return {{kProtocolHeader, std::to_string(kProtocolVersion)}}; }

std::string Encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
        c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status TransportError(const std::string& url, const http::Outcome& r) {
  std::string detail(http::ErrorText(r.error));
  if (!r.detail.empty()) detail += ": " + r.detail;
  if (r.error == http::Error::kTlsVerification || r.error == http::Error::kBadUrl)
    return FailedPrecondition("cannot talk to the server at " + url + ": " + detail +
                              (r.error == http::Error::kTlsVerification ? " (pass the server's CA with --ca FILE)" : ""));
  return Unavailable("cannot reach the server at " + url + ": " + detail);
}

}  // namespace

Status StatusFromHttp(int http_status, const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    const auto& e = j["error"];
    std::string code = e.value("code", std::string());
    std::string msg = e.value("message", std::string());
    return Status(CodeFromName(code), msg.empty() ? "HTTP " + std::to_string(http_status) : msg);
  }
  ErrorCode code = http_status == 401   ? ErrorCode::kUnauthenticated
                   : http_status == 403 ? ErrorCode::kPermissionDenied
                   : http_status == 404 ? ErrorCode::kNotFound
                   : http_status == 409 ? ErrorCode::kFailedPrecondition
                   : http_status == 503 ? ErrorCode::kUnavailable
                   : http_status >= 500 ? ErrorCode::kInternal
                                        : ErrorCode::kInvalidArgument;
  return Status(code, "HTTP " + std::to_string(http_status) + ": " + body.substr(0, 200));
}

Result<std::string> JoinServer(const std::string& server_url, const std::string& ca_file, const std::string& join_token,
                               const std::string& node) {
  http::Options o;
  o.ca_file = ca_file;
  http::Client c(server_url, o);
  if (!c.valid()) return InvalidArgument("--server '" + server_url + "' must be https://HOST:PORT (or http:// on loopback)");
  json body{{"token", join_token}, {"node", node}, {"protocol_version", kProtocolVersion}};
  auto r = c.Send("POST", "/v1/agent/join", body.dump(), "application/json", ProtocolHeaders());
  if (!r.ok()) return TransportError(server_url, r);
  if (r->status != 200 && r->status != 201) return StatusFromHttp(r->status, r->body);
  auto j = json::parse(r->body, nullptr, false);
  if (!j.is_object() || !j.contains("credential") || !j["credential"].is_string())
    return Internal("the server's answer to the join has no credential");
  return j["credential"].get<std::string>();
}

HttpControlPlane::HttpControlPlane(HttpControlPlaneOptions options, const Clock& clock)
    : opts_(std::move(options)), clock_(clock) {
  for (Channel* ch : {&poll_, &calls_, &logs_}) {
    http::Options o;
    o.bearer_token = opts_.credential;
    o.ca_file = opts_.ca_file;
    o.keep_alive = true;
    ch->client = std::make_unique<http::Client>(opts_.server_url, o);
  }
}

HttpControlPlane::~HttpControlPlane() { StopLogShipping(); }

namespace {

// {"lease_ms": N, "fence_grace_ms": G} in the answers to register and heartbeat; absent (an older server,
// or fencing off): no lease.
Lease LeaseFromJson(const json& j) {
  Lease l;
  if (!j.is_object()) return l;
  if (auto it = j.find("lease_ms"); it != j.end() && it->is_number_integer()) l.lease_ms = std::max<int64_t>(0, it->get<int64_t>());
  if (auto it = j.find("fence_grace_ms"); it != j.end() && it->is_number_integer())
    l.grace_ms = std::max<int64_t>(0, it->get<int64_t>());
  return l;
}

}  // namespace

Result<json> HttpControlPlane::Call(Channel& ch, const std::string& method, const std::string& target,
                                    const std::string& body, const std::string& content_type, int read_timeout_ms) {
  std::lock_guard lock(ch.mu);
  if (!ch.client->valid())
    return FailedPrecondition("--server '" + opts_.server_url + "' must be https://HOST:PORT (or http:// on loopback)");
  ch.client->options().read_timeout_ms = read_timeout_ms;
  auto r = ch.client->Send(method, target, body, content_type, ProtocolHeaders());
  if (!r.ok()) return TransportError(opts_.server_url, r);
  if (r->status < 200 || r->status >= 300) {
    Status st = StatusFromHttp(r->status, r->body);
    if (st.code() == ErrorCode::kUnauthenticated && opts_.on_credential_refused && !refused_.exchange(true))
      opts_.on_credential_refused(st);
    return st;
  }
  if (r->body.empty()) return json::object();
  auto j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) return Internal("the server answered " + target + " with something that is not JSON");
  return j;
}

Status HttpControlPlane::FetchBlob(const std::string& node, const std::string& job_id, const std::string& sha256,
                                   const std::string& dest) {
  (void)node;  // the credential names it
  http::Options o;
  o.bearer_token = opts_.credential;
  o.ca_file = opts_.ca_file;
  o.read_timeout_ms = 60'000;
  http::Client c(opts_.server_url, o);
  if (!c.valid()) return FailedPrecondition("--server '" + opts_.server_url + "' is not a URL");
  int fd = ::open(dest.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot create " + dest + ": " + std::strerror(errno));
  sync::Sha256 sha;
  bool write_failed = false;
  std::string error_body;
  auto r = c.Send("GET", "/v1/agent/blobs?job=" + job_id, {}, {}, ProtocolHeaders(),
                  [&](int status, std::string_view data) {
                    if (status != 200) {
                      if (error_body.size() < 4096) error_body.append(data);
                      return true;
                    }
                    sha.Update(data.data(), data.size());
                    for (size_t off = 0; off < data.size();) {
                      ssize_t w = ::write(fd, data.data() + off, data.size() - off);
                      if (w < 0 && errno == EINTR) continue;
                      if (w <= 0) {
                        write_failed = true;
                        return false;
                      }
                      off += static_cast<size_t>(w);
                    }
                    return true;
                  });
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (write_failed || !synced) return Internal("cannot write " + dest + ": " + std::strerror(errno));
  if (!r.ok()) return TransportError(opts_.server_url, r);
  if (r->status != 200) return StatusFromHttp(r->status, error_body);
  if (sha.HexDigest() != sha256)
    return Unavailable("the code archive received does not have the SHA-256 " + sha256 + " (cut off? it is retried)");
  return Status::Ok();
}

std::unique_ptr<HttpControlPlane::Channel> HttpControlPlane::TakeExecChannel() {
  {
    std::lock_guard lock(exec_pool_mu_);
    if (!exec_pool_.empty()) {
      auto ch = std::move(exec_pool_.back());
      exec_pool_.pop_back();
      return ch;
    }
  }
  auto ch = std::make_unique<Channel>();
  http::Options o;
  o.bearer_token = opts_.credential;
  o.ca_file = opts_.ca_file;
  o.keep_alive = true;
  ch->client = std::make_unique<http::Client>(opts_.server_url, o);
  return ch;
}

void HttpControlPlane::GiveExecChannel(std::unique_ptr<Channel> ch) {
  std::lock_guard lock(exec_pool_mu_);
  if (exec_pool_.size() < kExecPool) exec_pool_.push_back(std::move(ch));
}

Result<ExecOutputAck> HttpControlPlane::PushExecOutput(const ExecOutput& out) {
  auto ch = TakeExecChannel();
  auto r = Call(*ch, "POST", "/v1/agent/exec/output", ToJson(out).dump(), "application/json", 30'000);
  GiveExecChannel(std::move(ch));
  if (!r.ok()) return r.status();
  return ExecOutputAckFromJson(*r);
}

Result<ExecInput> HttpControlPlane::WaitExecInput(const std::string& node, const std::string& session, int64_t offset,
                                                  std::chrono::milliseconds timeout) {
  (void)node;  // the credential names it
  const int64_t ms = std::clamp<int64_t>(timeout.count(), 0, 60'000);
  auto ch = TakeExecChannel();
  auto r = Call(*ch, "GET",
                "/v1/agent/exec/input?session=" + Encode(session) + "&offset=" + std::to_string(offset) +
                    "&timeout_ms=" + std::to_string(ms),
                "", "", static_cast<int>(ms) + 30'000);
  GiveExecChannel(std::move(ch));
  if (!r.ok()) return r.status();
  return ExecInputFromJson(*r);
}

Status HttpControlPlane::PostFiles(const FilesAnswer& answer) {
  auto ch = TakeExecChannel();
  // File names need not be UTF-8: such bytes become U+FFFD rather than failing the answer.
  auto r = Call(*ch, "POST", "/v1/agent/files", ToJson(answer).dump(-1, ' ', false, json::error_handler_t::replace),
                "application/json", 30'000);
  GiveExecChannel(std::move(ch));
  return r.ok() ? Status::Ok() : r.status();
}

Status HttpControlPlane::RegisterNode(const NodeRegistration& reg) {
  // Logs of attempts that ended while the agent was away go first, so they are complete once the server
  // records those ends.
  for (const auto& rep : reg.recovered) (void)ShipLog(rep.job_id);
  auto r = Call(calls_, "POST", "/v1/agent/register", ToJson(reg).dump(), "application/json", 30'000);
  if (!r.ok()) return r.status();
  std::lock_guard lock(mu_);
  lease_ = LeaseFromJson(*r);
  acked_ = 0;  // a new registration starts a new command stream
  for (const auto& id : reg.running_job_ids) tracked_.insert(id);
  return Status::Ok();
}

Result<std::vector<JobCommand>> HttpControlPlane::WaitCommands(const std::string& node, std::chrono::milliseconds timeout) {
  (void)node;  // the credential names the node
  uint64_t ack;
  {
    std::lock_guard lock(mu_);
    ack = acked_;
  }
  const int64_t ms = std::max<int64_t>(0, timeout.count());
  auto r = Call(poll_, "GET", "/v1/agent/commands?ack=" + std::to_string(ack) + "&timeout_ms=" + std::to_string(ms), "", "",
                static_cast<int>(ms + 15'000));
  if (!r.ok()) return r.status();
  std::vector<JobCommand> out;
  if (!r->contains("commands") || !(*r)["commands"].is_array()) return Internal("the server's command answer has no list");
  for (const auto& c : (*r)["commands"]) {
    ASSIGN_OR_RETURN(JobCommand cmd, JobCommandFromJson(c));
    if (cmd.kind == JobCommand::Kind::kStart) {
      std::lock_guard lock(mu_);
      tracked_.insert(cmd.job.id);
    }
    out.push_back(std::move(cmd));
  }
  return out;
}

Status HttpControlPlane::AckCommands(const std::string& node, uint64_t through_id) {
  (void)node;
  std::lock_guard lock(mu_);
  acked_ = std::max(acked_, through_id);
  return Status::Ok();
}

Status HttpControlPlane::ReportJobs(const std::vector<JobReport>& reports) {
  for (const auto& r : reports) {
    if (r.kind == JobReport::Kind::kStarted) {
      std::lock_guard lock(mu_);
      tracked_.insert(r.job_id);
    } else {
      // The whole log reaches the server before the end of the job does.
      (void)ShipLog(r.job_id);
    }
  }
  json arr = json::array();
  for (const auto& r : reports) arr.push_back(ToJson(r));
  auto res = Call(calls_, "POST", "/v1/agent/reports", json{{"reports", std::move(arr)}}.dump(), "application/json", 30'000);
  if (!res.ok()) return res.status();
  std::lock_guard lock(mu_);
  for (const auto& r : reports) {
    if (r.kind == JobReport::Kind::kStarted) continue;
    tracked_.erase(r.job_id);
    shipped_.erase(r.job_id);
  }
  return Status::Ok();
}

Status HttpControlPlane::Heartbeat(const NodeHeartbeat& hb) {
  auto r = Call(calls_, "POST", "/v1/agent/heartbeat", ToJson(hb).dump(), "application/json", 30'000);
  if (!r.ok()) return r.status();
  std::lock_guard lock(mu_);
  lease_ = LeaseFromJson(*r);
  return Status::Ok();
}

Lease HttpControlPlane::CurrentLease() const {
  std::lock_guard lock(mu_);
  return lease_;
}

void HttpControlPlane::StartLogShipping(LogSource* logs) {
  std::lock_guard lock(mu_);
  if (shipper_.joinable()) return;
  log_source_ = logs;
  stopping_ = false;
  shipper_ = std::thread([this] { ShipLoop(); });
}

void HttpControlPlane::StopLogShipping() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (shipper_.joinable()) shipper_.join();
}

Status HttpControlPlane::ShipLog(const std::string& job_id) {
  LogSource* src;
  int64_t offset;
  {
    std::lock_guard lock(mu_);
    src = log_source_;
    offset = shipped_.count(job_id) ? shipped_[job_id] : -1;
  }
  if (src == nullptr) return Status::Ok();
  std::lock_guard one(logs_.mu);  // one shipment at a time (keeps each job's offsets in order)
  // The time index first: the server then has the times of the bytes it gets (a failure costs only times).
  (void)ShipLogTimes(job_id, src);
  // The server appends what it does not have yet and answers its size; the next push starts there.
  auto push = [&](int64_t at, const std::string& data) -> Result<int64_t> {
    const std::string target = "/v1/agent/logs?job=" + Encode(job_id) + "&offset=" + std::to_string(at);
    logs_.client->options().read_timeout_ms = 30'000;
    auto r = logs_.client->Send("POST", target, data, "application/octet-stream", ProtocolHeaders());
    if (!r.ok()) return TransportError(opts_.server_url, r);
    if (r->status != 200) return StatusFromHttp(r->status, r->body);
    auto j = json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j.contains("size") || !j["size"].is_number_integer())
      return Internal("the server's answer to a log push has no size");
    const int64_t size = j["size"].get<int64_t>();
    std::lock_guard lock(mu_);
    shipped_[job_id] = size;
    return size;
  };
  if (offset < 0) {
    // Nothing written yet: nothing to send (most short jobs), no request.
    auto probe = src->ReadLog(job_id, 0, 1);
    if (!probe.ok() || probe->data.empty()) return Status::Ok();
    // First push of this job since the agent started: ask how much the server has (after a restart of the
    // agent, part of the log may be there already).
    ASSIGN_OR_RETURN(offset, push(0, ""));
  }
  for (int round = 0; round < 4096; ++round) {
    auto chunk = src->ReadLog(job_id, offset, opts_.log_chunk_bytes);
    if (!chunk.ok()) return chunk.status().code() == ErrorCode::kNotFound ? Status::Ok() : chunk.status();
    if (chunk->data.empty()) return Status::Ok();
    ASSIGN_OR_RETURN(int64_t size, push(offset, chunk->data));
    if (size == offset) return Status::Ok();  // refused (the server is ahead or behind: retried next time)
    offset = size;
    if (chunk->eof && offset >= chunk->next_offset) return Status::Ok();
  }
  return Status::Ok();
}

Status HttpControlPlane::ShipLogTimes(const std::string& job_id, LogSource* src) {
  int64_t offset;
  {
    std::lock_guard lock(mu_);
    if (times_unsupported_) return Status::Ok();
    auto it = times_shipped_.find(job_id);
    offset = it == times_shipped_.end() ? -1 : it->second;
  }
  auto push = [&](int64_t at, const std::string& data) -> Result<int64_t> {
    const std::string target = "/v1/agent/log-times?job=" + Encode(job_id) + "&offset=" + std::to_string(at);
    logs_.client->options().read_timeout_ms = 30'000;
    auto r = logs_.client->Send("POST", target, data, "application/octet-stream", ProtocolHeaders());
    if (!r.ok()) return TransportError(opts_.server_url, r);
    if (r->status != 200) {
      Status st = StatusFromHttp(r->status, r->body);
      if (st.code() == ErrorCode::kNotFound && st.message().rfind("no route", 0) == 0) {
        std::lock_guard lock(mu_);
        times_unsupported_ = true;  // a server that keeps no times: its logs are shown without them
      }
      return st;
    }
    auto j = json::parse(r->body, nullptr, false);
    if (!j.is_object() || !j.contains("size") || !j["size"].is_number_integer())
      return Internal("the server's answer to a log time push has no size");
    const int64_t size = j["size"].get<int64_t>();
    std::lock_guard lock(mu_);
    times_shipped_[job_id] = size;
    return size;
  };
  if (offset < 0) {
    auto probe = src->ReadLogTimes(job_id, 0, 1);
    if (!probe.ok() || probe->total == 0) return Status::Ok();
    ASSIGN_OR_RETURN(offset, push(0, ""));
  }
  constexpr int64_t kRecordsPerPush = 4096;  // 96 KiB
  for (int round = 0; round < 4096; ++round) {
    ASSIGN_OR_RETURN(LogTimes t, src->ReadLogTimes(job_id, offset / kLogTimeRecordBytes, kRecordsPerPush));
    if (t.records.empty()) return Status::Ok();
    std::string data(t.records.size() * kLogTimeRecordBytes, '\0');
    for (size_t i = 0; i < t.records.size(); ++i) EncodeLogTime(t.records[i], data.data() + i * kLogTimeRecordBytes);
    const int64_t at = offset - offset % kLogTimeRecordBytes;
    ASSIGN_OR_RETURN(int64_t size, push(at, data));
    if (size <= offset) return Status::Ok();  // refused or nothing new: retried next time
    offset = size;
    if (static_cast<int64_t>(t.records.size()) < kRecordsPerPush) return Status::Ok();
  }
  return Status::Ok();
}

void HttpControlPlane::ShipLoop() {
  while (true) {
    std::vector<std::string> jobs;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, opts_.log_interval, [&] { return stopping_; });
      if (stopping_) return;
      jobs.assign(tracked_.begin(), tracked_.end());
    }
    for (const auto& id : jobs) (void)ShipLog(id);
  }
}

}  // namespace fastgpu::agent
