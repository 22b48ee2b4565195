// agent::ControlPlane over HTTP+JSON: what `fastgpu agent` uses to talk to a remote `fastgpu server`
// (the in-process agent of `fastgpu up` calls the server's Service directly through the same interface).
//
// Routes (all under /v1/agent/, bearer = the node credential, header X-FastGPU-Agent-Protocol on every
// call; see docs/architecture.md "Agent protocol"):
//   POST /v1/agent/join        join token -> node credential (no credential yet)
//   POST /v1/agent/register    NodeRegistration
//   GET  /v1/agent/commands    long-poll; ?ack=<highest command id applied>&timeout_ms=
//   POST /v1/agent/reports     {"reports":[JobReport...]}
//   POST /v1/agent/heartbeat   NodeHeartbeat
//   POST /v1/agent/logs        ?job=&offset=  raw bytes of the job's log from offset; answers {"size": N}
//
// Logs are pushed: a shipper thread sends what running jobs wrote since the last push (every
// `log_interval`), and a job's final report is sent only after its log has been shipped to the end, so
// `job logs` on the server is complete once the job has ended.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "agent/control_plane.h"
#include "common/clock.h"
#include "common/http_client.h"
#include "common/status.h"

namespace fastgpu::agent {

struct HttpControlPlaneOptions {
  std::string server_url;   // https://host:port (http:// only for loopback or tests)
  std::string credential;   // fgn_… node credential
  std::string ca_file;      // PEM bundle trusted for the server's certificate (empty: system store)
  std::string node;         // this node's name (must match the credential)
  std::chrono::milliseconds log_interval{250};
  int64_t log_chunk_bytes = 512 << 10;  // per push (the server takes bodies up to 1 MiB)
  // Called (once) when the server refuses the credential (the node was removed, or joined again elsewhere):
  // retrying cannot help. `fastgpu agent` then stops with the server's message.
  std::function<void(const Status&)> on_credential_refused;
};

class HttpControlPlane final : public ControlPlane {
 public:
  HttpControlPlane(HttpControlPlaneOptions options, const Clock& clock);
  ~HttpControlPlane() override;  // StopLogShipping()
  HttpControlPlane(const HttpControlPlane&) = delete;
  HttpControlPlane& operator=(const HttpControlPlane&) = delete;

  Status RegisterNode(const NodeRegistration& reg) override;
  Result<std::vector<JobCommand>> WaitCommands(const std::string& node, std::chrono::milliseconds timeout) override;
  Status ReportJob(const JobReport& report) override { return ReportJobs({report}); }
  Status ReportJobs(const std::vector<JobReport>& reports) override;
  Status Heartbeat(const NodeHeartbeat& hb) override;
  // Remembered and sent with the next command poll.
  Status AckCommands(const std::string& node, uint64_t through_id) override;
  // From the answer to the last successful register or heartbeat call.
  Lease CurrentLease() const override;
  // GET /v1/agent/blobs?job=ID on a connection of its own, streamed to `dest` with its SHA-256 checked.
  Status FetchBlob(const std::string& node, const std::string& job_id, const std::string& sha256,
                   const std::string& dest) override;

  // POST /v1/agent/exec/output and GET /v1/agent/exec/input (long-poll), each on a connection of a small pool (exec
  // sessions call them from their own threads, side by side).
  Result<ExecOutputAck> PushExecOutput(const ExecOutput& out) override;
  Result<ExecInput> WaitExecInput(const std::string& node, const std::string& session, int64_t offset,
                                  std::chrono::milliseconds timeout) override;

  // POST /v1/agent/files (the answer to a files command), on a connection of the exec pool.
  Status PostFiles(const FilesAnswer& answer) override;

  // Where job logs are read from (the Agent), then the shipper thread starts. Call before the agent starts.
  void StartLogShipping(LogSource* logs);
  void StopLogShipping();

  // Sends the log of `job_id` to the server up to its current end (for tests and final reports).
  Status ShipLog(const std::string& job_id);

 private:
  struct Channel {  // one HTTP connection, used by one thread at a time
    std::mutex mu;
    std::unique_ptr<http::Client> client;
  };
  Result<nlohmann::json> Call(Channel& ch, const std::string& method, const std::string& target,
                              const std::string& body, const std::string& content_type, int read_timeout_ms);
  void ShipLoop();
  // Pushes the part of the job's log time index the server does not have (called with logs_.mu held).
  Status ShipLogTimes(const std::string& job_id, LogSource* src);
  void Track(const std::string& job_id);

  const HttpControlPlaneOptions opts_;
  const Clock& clock_;
  Channel poll_, calls_, logs_;
  // Idle connections for exec sessions (at most kExecPool kept); taken by one call at a time.
  static constexpr size_t kExecPool = 16;
  std::mutex exec_pool_mu_;
  std::vector<std::unique_ptr<Channel>> exec_pool_;
  std::unique_ptr<Channel> TakeExecChannel();
  void GiveExecChannel(std::unique_ptr<Channel> ch);
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t acked_ = 0;
  Lease lease_;
  std::atomic<bool> refused_{false};
  LogSource* log_source_ = nullptr;
  bool stopping_ = false;
  std::set<std::string> tracked_;           // jobs whose logs are shipped while they run
  std::map<std::string, int64_t> shipped_;  // job -> bytes the server has
  std::map<std::string, int64_t> times_shipped_;  // job -> bytes of its time index the server has
  bool times_unsupported_ = false;                // the server has no route for time indexes
  std::thread shipper_;
};

// Exchanges a one-time join token for this node's credential (POST /v1/agent/join). Returns the credential.
Result<std::string> JoinServer(const std::string& server_url, const std::string& ca_file, const std::string& join_token,
                               const std::string& node);

// Maps an HTTP answer of the server to a Status (its {"error":{"code","message"}} when present).
Status StatusFromHttp(int http_status, const std::string& body);

}  // namespace fastgpu::agent
