#include "cli/client.h"

#include <sys/random.h>

#include <cerrno>

#include <thread>

#include <nlohmann/json.hpp>

#include "api/json.h"
#include "cli/job_file.h"
#include "common/file_util.h"
#include "common/http_client.h"

namespace fastgpu::cli {

using nlohmann::json;

namespace {

constexpr int kConnectTimeoutS = 5;

ErrorCode CodeFromName(std::string_view name, int http_status) {
  for (int c = static_cast<int>(ErrorCode::kInvalidArgument); c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    if (ErrorCodeName(static_cast<ErrorCode>(c)) == name) return static_cast<ErrorCode>(c);
  }
  switch (http_status) {
    case 400: return ErrorCode::kInvalidArgument;
    case 401: return ErrorCode::kUnauthenticated;
    case 403: return ErrorCode::kPermissionDenied;
    case 404: return ErrorCode::kNotFound;
    case 409: return ErrorCode::kFailedPrecondition;
    case 413: return ErrorCode::kPayloadTooLarge;
    case 422: return ErrorCode::kUnschedulable;
    case 429: return ErrorCode::kResourceExhausted;
    case 503: return ErrorCode::kUnavailable;
    case 504: return ErrorCode::kDeadlineExceeded;
    default: return http_status >= 500 ? ErrorCode::kInternal : ErrorCode::kInvalidArgument;
  }
}

using HttpPtr = std::unique_ptr<http::Client>;

Result<HttpPtr> MakeHttp(const std::string& base_url, const std::string& token, const std::string& ca_file,
                         int read_timeout_s) {
  const bool https = base_url.rfind("https://", 0) == 0;
  if (!https && base_url.rfind("http://", 0) != 0)
    return InvalidArgument("cannot use server URL '" + base_url + "' (use http://HOST:PORT or https://HOST:PORT)");
  if (https && !ca_file.empty() && !ReadFileToString(ca_file, 4 << 20))
    return InvalidArgument("cannot read the CA file '" + ca_file + "' given with --ca or FASTGPU_CA");
  http::Options options;
  options.bearer_token = token;
  if (https) options.ca_file = ca_file;
  options.connect_timeout_ms = kConnectTimeoutS * 1000;
  options.read_timeout_ms = read_timeout_s * 1000;
  options.write_timeout_ms = 30'000;
  auto c = std::make_unique<http::Client>(base_url, std::move(options));
  if (!c->valid()) return InvalidArgument("cannot use server URL '" + base_url + "'");
  return c;
}

Status FromHttpError(const std::string& base_url, const http::Outcome& r) {
  switch (r.error) {
    case http::Error::kTlsVerification: {
      const std::string why = r.detail.empty() ? "it was issued for another host name" : r.detail;
      return Unavailable("TLS certificate of " + base_url + " is not trusted: " + why +
                         " (pass --ca FILE for a private CA)");
    }
    case http::Error::kTlsConnection:
      return Unavailable("TLS handshake with " + base_url + " failed (is it an HTTPS server? use http:// if not)");
    default:
      return TransportStatus(base_url, r.error == http::Error::kConnection, http::ErrorText(r.error));
  }
}

Result<json> ParseBody(const http::Response& r) {
  if (r.body.empty()) return json();  // 204 No Content
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Internal("server answered with malformed JSON (HTTP " + std::to_string(r.status) + ")");
  return j;
}

Result<json> Finish(const std::string& base_url, const http::Outcome& r) {
  if (!r.ok()) return FromHttpError(base_url, r);
  if (r.response.status < 200 || r.response.status >= 300) return StatusFromErrorBody(r.response.status, r.response.body);
  return ParseBody(r.response);
}

std::string JobPath(const std::string& id) { return "/v1/jobs/" + UrlEncode(id); }

// A request that got no answer may or may not have reached the server: safe to repeat only with an
// idempotency key. TLS trust failures are not retried (they will not heal).
bool TransientTransportError(http::Error err) {
  return err == http::Error::kConnection || err == http::Error::kConnectionTimeout || err == http::Error::kRead ||
         err == http::Error::kWrite;
}

// 128 random bits as hex, straight from the kernel (no TLS library start-up for a plain submit).
Result<std::string> NewIdempotencyKey() {
  unsigned char buf[16];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t n = ::getrandom(buf + got, sizeof(buf) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Internal("cannot get random bytes for the Idempotency-Key");
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "fgk-";
  for (unsigned char c : buf) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace

Status StatusFromErrorBody(int http_status, std::string_view body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_object()) {
    const json& e = j["error"];
    std::string code = e.value("code", "");
    std::string message = e.contains("message") && e["message"].is_string() ? e["message"].get<std::string>() : "";
    if (!message.empty()) return Status(CodeFromName(code, http_status), message);
  }
  std::string first(body.substr(0, body.find('\n')));
  if (first.size() > 200) first = first.substr(0, 200) + "...";
  std::string msg = "server answered HTTP " + std::to_string(http_status);
  if (!first.empty()) msg += ": " + first;
  return Status(CodeFromName("", http_status), msg);
}

Status TransportStatus(const std::string& base_url, bool refused, std::string_view detail) {
  if (refused) {
    return Unavailable("cannot reach the FastGPU server at " + base_url + ": is `fastgpu up` running? (" +
                       std::string(detail) + ")");
  }
  return Unavailable("request to the FastGPU server at " + base_url + " failed: " + std::string(detail));
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Client::Client(std::string base_url, std::string token, std::string ca_file)
    : base_url_(std::move(base_url)), described_url_(base_url_), token_(std::move(token)), ca_file_(std::move(ca_file)) {}

Result<json> Client::GetJson(const std::string& path_and_query, int read_timeout_s) const {
  ASSIGN_OR_RETURN(auto http, MakeHttp(base_url_, token_, ca_file_, read_timeout_s));
  return Finish(described_url_, http->Get(path_and_query));
}

Result<json> Client::PostJson(const std::string& path, const std::string& body) const {
  ASSIGN_OR_RETURN(auto http, MakeHttp(base_url_, token_, ca_file_, 30));
  return Finish(described_url_, http->Post(path, body));
}

Result<json> Client::PutJson(const std::string& path, const std::string& body) const {
  ASSIGN_OR_RETURN(auto http, MakeHttp(base_url_, token_, ca_file_, 30));
  return Finish(described_url_, http->Send("PUT", path, body, "application/json"));
}

Result<json> Client::PatchJson(const std::string& path, const std::string& body) const {
  ASSIGN_OR_RETURN(auto http, MakeHttp(base_url_, token_, ca_file_, 30));
  return Finish(described_url_, http->Send("PATCH", path, body, "application/json"));
}

Result<json> Client::Delete(const std::string& path) const {
  ASSIGN_OR_RETURN(auto http, MakeHttp(base_url_, token_, ca_file_, 30));
  return Finish(described_url_, http->Send("DELETE", path));
}

Result<TextBody> Client::GetText(const std::string& path_and_query) const {
  ASSIGN_OR_RETURN(auto http, MakeHttp(base_url_, token_, ca_file_, 60));
  auto r = http->Get(path_and_query);
  if (!r.ok()) return FromHttpError(described_url_, r);
  if (r.response.status < 200 || r.response.status >= 300)
    return StatusFromErrorBody(r.response.status, r.response.body);
  return TextBody{std::move(r.response.body), r.response.Header("Content-Type")};
}

Result<json> Client::Health() const { return GetJson("/healthz"); }

Result<json> Client::SubmitJob(const api::JobSpec& spec) const {
  ASSIGN_OR_RETURN(std::string key, NewIdempotencyKey());
  return SubmitJob(spec, key);
}

Result<json> Client::SubmitJob(const api::JobSpec& spec, const std::string& idempotency_key) const {
  const std::string body = JobSpecRequestBody(spec);
  const http::Headers headers{{"Idempotency-Key", idempotency_key}};
  std::chrono::milliseconds backoff = submit_backoff_;
  for (int attempt = 1;; ++attempt) {
    ASSIGN_OR_RETURN(auto http, MakeHttp(base_url_, token_, ca_file_, 30));
    auto r = http->Post("/v1/jobs", body, "application/json", headers);
    const bool again = !r.ok() ? TransientTransportError(r.error) : r.response.status == 503;
    if (!again || attempt >= submit_tries_) return Finish(described_url_, r);
    std::this_thread::sleep_for(backoff);  // back off before the retry (not a wait for an event)
    backoff *= 2;
  }
}

Result<json> Client::ListJobs(const JobListQuery& q) const {
  std::string path = "/v1/jobs";
  std::vector<std::string> params;
  if (!q.states.empty()) {
    std::string s;
    for (size_t i = 0; i < q.states.size(); ++i) s += (i ? "," : "") + q.states[i];
    params.push_back("state=" + UrlEncode(s));
  }
  if (q.limit > 0) params.push_back("limit=" + std::to_string(q.limit));
  if (!q.project.empty()) params.push_back("project=" + UrlEncode(q.project));
  if (!q.user.empty()) params.push_back("user=" + UrlEncode(q.user));
  if (!q.name.empty()) params.push_back("name=" + UrlEncode(q.name));
  if (q.since > 0) params.push_back("since=" + UrlEncode(FormatTimestamp(q.since)));
  if (q.no_array_tasks) params.push_back("tasks=false");
  if (!q.cursor.empty()) params.push_back("cursor=" + UrlEncode(q.cursor));
  for (size_t i = 0; i < params.size(); ++i) path += (i ? "&" : "?") + params[i];
  return GetJson(path);
}

Result<json> Client::GetJob(const std::string& id) const { return GetJson(JobPath(id)); }

Result<json> Client::CancelJob(const std::string& id) const { return PostJson(JobPath(id) + "/cancel", "{}"); }
Result<json> Client::MigrateJob(const std::string& id, const std::string& reason, bool force) const {
  json body = json::object();
  if (!reason.empty()) body["reason"] = reason;
  if (force) body["force"] = true;
  return PostJson(JobPath(id) + "/migrate", body.dump());
}

Result<json> Client::JobEvents(const std::string& id) const { return GetJson(JobPath(id) + "/events"); }

Result<json> Client::WaitJob(const std::string& id, int64_t timeout_s) const {
  if (timeout_s < 0) timeout_s = 0;
  return GetJson(JobPath(id) + "/wait?timeout=" + std::to_string(timeout_s) + "s",
                 static_cast<int>(timeout_s) + 30);
}

Result<json> Client::ListGpus() const { return GetJson("/v1/gpus"); }

Result<json> Client::ListNodes() const { return GetJson("/v1/nodes"); }

namespace {

// The query of a log read: where, which member, and the options (tail only on a first read: a resumed stream
// goes on from its offset).
std::string LogQuery(int64_t offset, bool follow, int rank, const LogOptions& opts, bool first) {
  std::string q = "/logs?offset=" + std::to_string(offset) + (follow ? "&follow=true" : "&follow=false");
  if (rank != 0) q += "&rank=" + std::to_string(rank);
  if (first && opts.tail >= 0) q += "&tail=" + std::to_string(opts.tail);
  if (opts.since > 0) q += "&since=" + UrlEncode(FormatTimestamp(opts.since));
  if (opts.timestamps) q += "&timestamps=true";
  return q;
}

// Counts the log's own bytes in output stamped with times ("<time> " before each line), to resume a cut stream.
class UnstampedCounter {
 public:
  int64_t Count(std::string_view data) {
    int64_t n = 0;
    for (char c : data) {
      if (in_prefix_) {
        in_prefix_ = c != ' ';
        continue;
      }
      if (line_start_) {
        line_start_ = false;
        in_prefix_ = true;
        continue;
      }
      ++n;
      line_start_ = c == '\n';
    }
    return n;
  }

 private:
  bool line_start_ = true;
  bool in_prefix_ = false;
};

}  // namespace

Result<LogChunk> Client::ReadLogs(const std::string& id, int64_t offset, int rank, const LogOptions& opts) const {
  ASSIGN_OR_RETURN(auto http, MakeHttp(base_url_, token_, ca_file_, 60));
  auto r = http->Get(JobPath(id) + LogQuery(offset, false, rank, opts, true));
  if (!r.ok()) return FromHttpError(described_url_, r);
  if (r.response.status != 200) return StatusFromErrorBody(r.response.status, r.response.body);
  LogChunk chunk;
  chunk.times_unknown = r.response.Header("X-FastGPU-Log-Times") == "none";
  chunk.data = std::move(r.response.body);
  chunk.next_offset = offset + static_cast<int64_t>(chunk.data.size());
  if (r.response.HasHeader("X-Next-Offset")) {
    try {
      chunk.next_offset = std::stoll(r.response.Header("X-Next-Offset"));
    } catch (const std::exception&) {
      // keep the computed offset
    }
  }
  return chunk;
}

Status Client::FollowLogs(const std::string& id, int64_t offset, const std::function<bool(std::string_view)>& sink,
                          int rank, const LogOptions& opts, bool* times_unknown) const {
  // A silent job produces no bytes for a long time: a read timeout only means "reconnect".
  constexpr int kIdleReadTimeoutS = 60;
  int failures_without_progress = 0;
  bool first = true;
  UnstampedCounter unstamped;
  while (true) {
    auto made = MakeHttp(base_url_, token_, ca_file_, kIdleReadTimeoutS);
    if (!made.ok()) return made.status();
    auto& http = *made;
    int status = 0;
    std::string error_body;
    bool stopped = false;
    int64_t before = offset;
    // With tail or since the stream starts where the server says (X-FastGPU-Log-Offset); bytes are counted from
    // the request's offset until that is known.
    int64_t received = 0;
    auto r = http->Get(JobPath(id) + LogQuery(offset, true, rank, opts, first),
                       [&](int answer_status, std::string_view data) {
                         if (answer_status != 200) {
                           if (error_body.size() < 64 * 1024) error_body.append(data);
                           return true;
                         }
                         received += opts.timestamps ? unstamped.Count(data) : static_cast<int64_t>(data.size());
                         if (!sink(data)) {
                           stopped = true;
                           return false;
                         }
                         return true;
                       });
    status = r.response.status;
    if (status == 200) {
      first = false;
      if (times_unknown && r.response.Header("X-FastGPU-Log-Times") == "none") *times_unknown = true;
      if (r.response.HasHeader("X-FastGPU-Log-Offset")) {
        try {
          offset = std::stoll(r.response.Header("X-FastGPU-Log-Offset"));
        } catch (const std::exception&) {
          // an old server: the stream started at the offset asked for
        }
      }
      offset += received;
    }
    if (stopped) return Status::Ok();
    if (r.ok()) {
      if (status != 200) return StatusFromErrorBody(status, error_body);
      return Status::Ok();  // the server ends the stream once the job is terminal and all output is sent
    }
    // Stream cut or silent for a long time after a good start: resume from the last byte received (a
    // server that cannot serve the log any more answers the next request with its error). Without
    // progress, pause briefly first rather than spin.
    if (status == 200) {
      failures_without_progress = 0;
      if (offset == before) std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    if (status != 0) return StatusFromErrorBody(status, error_body);
    if (r.error == http::Error::kConnection || r.error == http::Error::kTlsVerification ||
        r.error == http::Error::kTlsConnection)
      return FromHttpError(described_url_, r);
    failures_without_progress = offset > before ? 0 : failures_without_progress + 1;
    if (failures_without_progress >= 3) return FromHttpError(described_url_, r);
  }
}

}  // namespace fastgpu::cli
