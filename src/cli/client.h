// HTTP client of the FastGPU REST API (base URL + bearer token). Non-2xx answers become Status values
// carrying the server's own error message.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "api/types.h"
#include "common/status.h"

namespace fastgpu::cli {

// Status for a non-2xx response: the server's {"error":{"code","message"}} when present, otherwise the
// HTTP status and the first line of the body.
Status StatusFromErrorBody(int http_status, std::string_view body);

// Status for a request that got no response. `refused`: nothing listens at the URL.
Status TransportStatus(const std::string& base_url, bool refused, std::string_view detail);

// Percent-encodes one path segment or query value.
std::string UrlEncode(std::string_view s);

struct JobListQuery {
  std::vector<std::string> states;  // upper-case state names; empty = all
  int limit = 0;                    // 0 = the server's default page size
  std::string project;
  std::string user;                 // "" = any
  std::string name;                 // "" = any
  UnixMillis since = 0;             // created at or after (0 = any)
  bool no_array_tasks = false;      // tasks=false: each job array as one row
  std::string cursor;               // next_cursor of the previous page ("" = newest jobs)
};

struct LogChunk {
  std::string data;
  int64_t next_offset = 0;
  bool times_unknown = false;  // the log has no recorded times (written before they were kept)
};

// What part of a job's output to read, and how (GET /v1/jobs/{id}/logs).
struct LogOptions {
  int64_t tail = -1;        // the last N lines (-1: all)
  UnixMillis since = 0;     // lines written at or after this time (0: all)
  bool timestamps = false;  // each line prefixed with its time (RFC 3339 UTC), "-" where none is known
};

// Raw body of a non-JSON answer (CSV exports).
struct TextBody {
  std::string body;
  std::string content_type;
};

// http:// and https:// URLs. For https the server certificate is always verified, against `ca_file`
// (a PEM bundle) when given, else against the system's trust store.
class Client {
 public:
  Client(std::string base_url, std::string token, std::string ca_file = "");

  const std::string& base_url() const { return base_url_; }
  // Where the URL came from, named in "cannot reach" messages ("from FASTGPU_HOME=/srv/fg"); empty: nothing.
  void set_url_origin(const std::string& origin) {
    described_url_ = origin.empty() ? base_url_ : base_url_ + " (" + origin + ")";
  }

  Result<nlohmann::json> Health() const;
  // The created job object. Sends a new random Idempotency-Key with each call, and retries with the same
  // key (backing off) when the request gets no answer or 503: the server then returns the job the
  // first try created instead of a second one.
  Result<nlohmann::json> SubmitJob(const api::JobSpec& spec) const;
  Result<nlohmann::json> SubmitJob(const api::JobSpec& spec, const std::string& idempotency_key) const;
  // Tries of a submit in all (>= 1), and the wait before the first retry (doubled for each next one).
  void set_submit_retries(int tries, std::chrono::milliseconds first_backoff) {
    submit_tries_ = tries < 1 ? 1 : tries;
    submit_backoff_ = first_backoff;
  }
  Result<nlohmann::json> ListJobs(const JobListQuery& q) const;      // {"jobs":[...]}
  Result<nlohmann::json> GetJob(const std::string& id) const;
  Result<nlohmann::json> CancelJob(const std::string& id) const;
  // POST /v1/jobs/{id}/migrate: the job as it is (still RUNNING while it checkpoints and stops).
  Result<nlohmann::json> MigrateJob(const std::string& id, const std::string& reason, bool force) const;
  Result<nlohmann::json> JobEvents(const std::string& id) const;     // {"events":[...]}
  // One long poll: the job once terminal, or as it is after `timeout_s` seconds.
  Result<nlohmann::json> WaitJob(const std::string& id, int64_t timeout_s) const;
  Result<nlohmann::json> ListGpus() const;                           // {"gpus":[...]}
  Result<nlohmann::json> ListNodes() const;                          // {"nodes":[...]}

  // Output written so far from `offset`.
  // `rank`: the member of a multi-node job (0 = rank 0, or a job on one node).
  Result<LogChunk> ReadLogs(const std::string& id, int64_t offset, int rank = 0, const LogOptions& opts = {}) const;
  // Streams output from `offset` into `sink` until the job is terminal and all output is delivered.
  // Reconnects from the last byte received when the stream is cut. `sink` returns false to stop early.
  // `times_unknown` (optional) is set when the server says the log has no recorded times.
  Status FollowLogs(const std::string& id, int64_t offset, const std::function<bool(std::string_view)>& sink,
                    int rank = 0, const LogOptions& opts = {}, bool* times_unknown = nullptr) const;

  // Raw JSON calls, for paths without a helper.
  Result<nlohmann::json> GetJson(const std::string& path_and_query, int read_timeout_s = 30) const;
  Result<nlohmann::json> PostJson(const std::string& path, const std::string& body) const;
  Result<nlohmann::json> PutJson(const std::string& path, const std::string& body) const;
  Result<nlohmann::json> PatchJson(const std::string& path, const std::string& body) const;
  // An empty answer (204) becomes a null JSON value.
  Result<nlohmann::json> Delete(const std::string& path) const;
  Result<TextBody> GetText(const std::string& path_and_query) const;

 private:
  std::string base_url_;
  std::string described_url_;  // base_url_, and where it came from (set_url_origin)
  std::string token_;
  std::string ca_file_;
  int submit_tries_ = 5;                          // about 3 s of retries in all
  std::chrono::milliseconds submit_backoff_{200};
};

}  // namespace fastgpu::cli
