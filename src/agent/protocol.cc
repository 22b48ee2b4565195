#include "agent/protocol.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <initializer_list>
#include <stdexcept>

#include "api/json.h"
#include "common/crypto.h"

namespace fastgpu::agent {

using nlohmann::json;

namespace {

// Unknown fields are errors, as for every codec.
void CheckFields(const json& j, std::initializer_list<const char*> allowed, const char* what) {
  if (!j.is_object()) throw std::invalid_argument(std::string(what) + " must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return it.key() == a; });
    if (!known) throw std::invalid_argument("unknown field '" + it.key() + "' in " + what);
  }
}

template <typename F>
auto Guard(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("malformed ") + what + ": " + e.what());
  }
}

int64_t Int(const json& j, const char* key, int64_t def = 0) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number_integer()) throw std::invalid_argument(std::string("field '") + key + "' must be an integer");
  return it->get<int64_t>();
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (!it->is_string()) throw std::invalid_argument(std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

bool Bool(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw std::invalid_argument(std::string("field '") + key + "' must be true or false");
  return it->get<bool>();
}

template <typename T>
T Unwrap(Result<T> r) {
  if (!r.ok()) throw std::invalid_argument(r.status().message());
  return std::move(r).value();
}

const char* KindName(JobReport::Kind k) {
  switch (k) {
    case JobReport::Kind::kStarted: return "started";
    case JobReport::Kind::kExited: return "exited";
    case JobReport::Kind::kLost: return "lost";
  }
  return "lost";
}

JobReport ReportFrom(const json& j) {
  CheckFields(j, {"kind", "job_id", "attempt", "node", "pid", "exit_code", "signal", "reason", "finished_at_ms", "rank"},
              "job report");
  JobReport r;
  const std::string kind = Str(j, "kind");
  if (kind == "started") {
    r.kind = JobReport::Kind::kStarted;
  } else if (kind == "exited") {
    r.kind = JobReport::Kind::kExited;
  } else if (kind == "lost") {
    r.kind = JobReport::Kind::kLost;
  } else {
    throw std::invalid_argument("field 'kind' must be started, exited or lost, got '" + kind + "'");
  }
  r.job_id = Str(j, "job_id");
  r.attempt = static_cast<int>(Int(j, "attempt"));
  r.node = Str(j, "node");
  r.pid = Int(j, "pid");
  if (j.contains("exit_code") && !j["exit_code"].is_null()) r.exit_code = static_cast<int>(Int(j, "exit_code"));
  if (j.contains("signal") && !j["signal"].is_null()) r.signal = static_cast<int>(Int(j, "signal"));
  r.reason = Str(j, "reason");
  r.finished_at_ms = Int(j, "finished_at_ms");
  r.rank = static_cast<int>(Int(j, "rank"));
  if (r.rank < 0) throw std::invalid_argument("field 'rank' must not be negative");
  return r;
}

std::vector<api::Gpu> GpusFrom(const json& j, const char* key) {
  std::vector<api::Gpu> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) throw std::invalid_argument(std::string("field '") + key + "' must be an array");
  for (const auto& g : *it) out.push_back(Unwrap(api::GpuFromJson(g)));
  return out;
}

std::vector<std::string> StringsFrom(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) throw std::invalid_argument(std::string("field '") + key + "' must be an array");
  for (const auto& s : *it) {
    if (!s.is_string()) throw std::invalid_argument(std::string("field '") + key + "' must hold strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

}  // namespace

std::string VersionMismatch(int server_version, int agent_version) {
  return "agent protocol version mismatch: the server speaks version " + std::to_string(server_version) +
         ", the agent version " + std::to_string(agent_version) +
         "; run the same fastgpu release on the server and its nodes";
}

json ToJson(const JobReport& r) {
  json j{{"kind", KindName(r.kind)}, {"job_id", r.job_id}, {"attempt", r.attempt}, {"node", r.node}};
  if (r.pid != 0) j["pid"] = r.pid;
  if (r.exit_code) j["exit_code"] = *r.exit_code;
  if (r.signal) j["signal"] = *r.signal;
  if (!r.reason.empty()) j["reason"] = r.reason;
  if (r.finished_at_ms != 0) j["finished_at_ms"] = r.finished_at_ms;
  if (r.rank != 0) j["rank"] = r.rank;
  return j;
}

json ToJson(const NodeRegistration& r) {
  json gpus = json::array();
  for (const auto& g : r.gpus) gpus.push_back(api::ToJson(g));
  json recovered = json::array();
  for (const auto& rep : r.recovered) recovered.push_back(ToJson(rep));
  return json{{"node", api::ToJson(r.node)},
              {"gpus", std::move(gpus)},
              {"running_job_ids", r.running_job_ids},
              {"recovered", std::move(recovered)}};
}

json ToJson(const NodeHeartbeat& h) {
  json gpus = json::array();
  for (const auto& g : h.gpus) gpus.push_back(api::ToJson(g));
  json running = json::array();
  for (const auto& a : h.running) running.push_back({{"job_id", a.job_id}, {"attempt", a.attempt}});
  return json{{"node", h.node}, {"gpus", std::move(gpus)}, {"running_job_ids", h.running_job_ids},
              {"running", std::move(running)}};
}

json ToJson(const JobCommand& c) {
  json j{{"id", c.id}};
  if (c.kind == JobCommand::Kind::kStart) {
    j["kind"] = "start";
    j["job"] = api::ToJson(c.job);
    if (c.run_as_uid != 0) j["run_as_uid"] = c.run_as_uid;
    if (!c.run_as_user.empty()) j["run_as_user"] = c.run_as_user;
    if (c.allow_root) j["allow_root"] = true;
    if (!c.secret_env.empty()) j["secret_env"] = c.secret_env;
    if (!c.job.members.empty() || c.master_port != 0) {
      j["rank"] = c.rank;
      j["master_addr"] = c.master_addr;
      j["master_port"] = c.master_port;
    }
  } else if (c.kind == JobCommand::Kind::kExec) {
    j["kind"] = "exec";
    j["job"] = api::ToJson(c.job);
    j["session"] = c.session;
    j["argv"] = c.argv;
    j["rank"] = c.rank;
    if (c.run_as_uid != 0) j["run_as_uid"] = c.run_as_uid;
    if (!c.run_as_user.empty()) j["run_as_user"] = c.run_as_user;
    if (c.allow_root) j["allow_root"] = true;
    if (c.tty) j["tty"] = true;
    if (c.stdin_open) j["stdin"] = true;
    if (c.rows > 0) j["rows"] = c.rows;
    if (c.cols > 0) j["cols"] = c.cols;
    if (!c.term.empty()) j["term"] = c.term;
  } else if (c.kind == JobCommand::Kind::kFiles) {
    j["kind"] = "files";
    j["job_id"] = c.job_id;
    j["request"] = c.request;
    j["path"] = c.files_path;
    j["offset"] = c.files_offset;
    j["max_bytes"] = c.files_max_bytes;
  } else {
    j["kind"] = "stop";
    j["job_id"] = c.job_id;
    j["attempt"] = c.attempt;
    j["reason"] = c.reason;
    j["grace_ms"] = c.grace_ms;
    if (c.checkpoint_signal != 0) {
      j["checkpoint_signal"] = c.checkpoint_signal;
      j["checkpoint_grace_ms"] = c.checkpoint_grace_ms;
    }
  }
  return j;
}

Result<JobReport> JobReportFromJson(const json& j) {
  return Guard("job report", [&]() -> Result<JobReport> { return ReportFrom(j); });
}

Result<NodeRegistration> NodeRegistrationFromJson(const json& j) {
  return Guard("node registration", [&]() -> Result<NodeRegistration> {
    CheckFields(j, {"node", "gpus", "running_job_ids", "recovered"}, "node registration");
    NodeRegistration r;
    r.node = Unwrap(api::NodeFromJson(j.at("node")));
    r.gpus = GpusFrom(j, "gpus");
    r.running_job_ids = StringsFrom(j, "running_job_ids");
    if (auto it = j.find("recovered"); it != j.end() && !it->is_null()) {
      if (!it->is_array()) throw std::invalid_argument("field 'recovered' must be an array");
      for (const auto& rep : *it) r.recovered.push_back(ReportFrom(rep));
    }
    return r;
  });
}

Result<NodeHeartbeat> NodeHeartbeatFromJson(const json& j) {
  return Guard("heartbeat", [&]() -> Result<NodeHeartbeat> {
    CheckFields(j, {"node", "gpus", "running_job_ids", "running"}, "heartbeat");
    NodeHeartbeat h;
    h.node = Str(j, "node");
    h.gpus = GpusFrom(j, "gpus");
    h.running_job_ids = StringsFrom(j, "running_job_ids");
    if (auto it = j.find("running"); it != j.end() && !it->is_null()) {
      if (!it->is_array()) throw std::invalid_argument("field 'running' must be an array");
      for (const auto& a : *it) {
        CheckFields(a, {"job_id", "attempt"}, "running attempt");
        h.running.push_back({Str(a, "job_id"), static_cast<int>(Int(a, "attempt"))});
      }
    }
    return h;
  });
}

Result<JobCommand> JobCommandFromJson(const json& j) {
  return Guard("command", [&]() -> Result<JobCommand> {
    CheckFields(j, {"id", "kind", "job", "run_as_uid", "run_as_user", "allow_root", "secret_env", "rank", "master_addr",
                    "master_port", "job_id", "attempt", "reason", "grace_ms", "checkpoint_signal", "checkpoint_grace_ms",
                    "session", "argv", "tty", "stdin", "rows", "cols", "term", "request", "path", "offset", "max_bytes"},
                "command");
    JobCommand c;
    c.id = static_cast<uint64_t>(Int(j, "id"));
    const std::string kind = Str(j, "kind");
    if (kind == "start") {
      c.kind = JobCommand::Kind::kStart;
      c.job = Unwrap(api::JobFromJson(j.at("job")));
      c.run_as_uid = Int(j, "run_as_uid");
      c.run_as_user = Str(j, "run_as_user");
      if (auto it = j.find("allow_root"); it != j.end() && !it->is_null()) {
        if (!it->is_boolean()) throw std::invalid_argument("field 'allow_root' must be true or false");
        c.allow_root = it->get<bool>();
      }
      if (auto it = j.find("secret_env"); it != j.end() && !it->is_null()) {
        if (!it->is_object()) throw std::invalid_argument("field 'secret_env' must be an object");
        for (auto e = it->begin(); e != it->end(); ++e) {
          if (!e->is_string()) throw std::invalid_argument("secret_env values must be strings");
          c.secret_env[e.key()] = e->get<std::string>();
        }
      }
      c.rank = static_cast<int>(Int(j, "rank"));
      c.master_addr = Str(j, "master_addr");
      c.master_port = static_cast<int>(Int(j, "master_port"));
      if (!c.job.members.empty() &&
          (c.rank < 0 || static_cast<size_t>(c.rank) >= c.job.members.size() || c.master_port <= 0 ||
           c.master_port > 65535))
        throw std::invalid_argument("a multi-node start needs a rank below the number of members and a master_port "
                                    "in 1-65535");
    } else if (kind == "stop") {
      c.kind = JobCommand::Kind::kStop;
      c.job_id = Str(j, "job_id");
      c.attempt = static_cast<int>(Int(j, "attempt"));
      c.reason = Str(j, "reason");
      c.grace_ms = Int(j, "grace_ms", 10'000);
      c.checkpoint_signal = static_cast<int>(Int(j, "checkpoint_signal"));
      c.checkpoint_grace_ms = Int(j, "checkpoint_grace_ms");
      if (c.checkpoint_signal < 0 || c.checkpoint_signal > 64 || c.checkpoint_grace_ms < 0 ||
          c.checkpoint_grace_ms > 24LL * 3600 * 1000)
        throw std::invalid_argument("a stop's checkpoint_signal must be 0-64 and its checkpoint_grace_ms 0-86400000");
    } else if (kind == "exec") {
      c.kind = JobCommand::Kind::kExec;
      c.job = Unwrap(api::JobFromJson(j.at("job")));
      c.session = Str(j, "session");
      c.argv = StringsFrom(j, "argv");
      c.rank = static_cast<int>(Int(j, "rank"));
      c.run_as_uid = Int(j, "run_as_uid");
      c.run_as_user = Str(j, "run_as_user");
      c.allow_root = Bool(j, "allow_root");
      c.tty = Bool(j, "tty");
      c.stdin_open = Bool(j, "stdin");
      c.rows = static_cast<int>(Int(j, "rows"));
      c.cols = static_cast<int>(Int(j, "cols"));
      c.term = Str(j, "term");
      if (c.session.empty() || c.argv.empty() || c.argv[0].empty())
        throw std::invalid_argument("an exec command needs a session and a command");
      if (c.rows < 0 || c.rows > 10'000 || c.cols < 0 || c.cols > 10'000)
        throw std::invalid_argument("an exec command's rows and cols must be 0-10000");
    } else if (kind == "files") {
      c.kind = JobCommand::Kind::kFiles;
      c.job_id = Str(j, "job_id");
      c.request = Str(j, "request");
      c.files_path = Str(j, "path");
      c.files_offset = Int(j, "offset");
      c.files_max_bytes = Int(j, "max_bytes");
      if (c.request.empty() || c.job_id.empty() || c.files_offset < 0 || c.files_max_bytes < 0 ||
          c.files_max_bytes > kMaxFilesChunk)
        throw std::invalid_argument("a files command needs a request, a job_id, an offset >= 0 and max_bytes 0-" +
                                    std::to_string(kMaxFilesChunk));
    } else {
      throw std::invalid_argument("field 'kind' must be start, stop, exec or files, got '" + kind + "'");
    }
    return c;
  });
}

json ToJson(const ExecOutput& o) {
  json j{{"session", o.session}, {"node", o.node}, {"stdout_offset", o.stdout_offset}, {"stderr_offset", o.stderr_offset}};
  if (!o.stdout_data.empty()) j["stdout"] = Base64Encode(o.stdout_data);
  if (!o.stderr_data.empty()) j["stderr"] = Base64Encode(o.stderr_data);
  if (o.exited) j["exited"] = true;
  if (o.exit_code) j["exit_code"] = *o.exit_code;
  if (o.signal) j["signal"] = *o.signal;
  if (!o.error.empty()) j["error"] = o.error;
  return j;
}

json ToJson(const ExecOutputAck& a) {
  return json{{"stdout_offset", a.stdout_offset}, {"stderr_offset", a.stderr_offset}, {"closed", a.closed}};
}

json ToJson(const ExecInput& i) {
  json j{{"offset", i.offset}};
  if (!i.data.empty()) j["data"] = Base64Encode(i.data);
  if (i.eof) j["eof"] = true;
  if (i.rows > 0) j["rows"] = i.rows;
  if (i.cols > 0) j["cols"] = i.cols;
  if (i.close) j["close"] = true;
  if (!i.close_reason.empty()) j["close_reason"] = i.close_reason;
  return j;
}

Result<ExecOutput> ExecOutputFromJson(const json& j) {
  return Guard("exec output", [&]() -> Result<ExecOutput> {
    CheckFields(j, {"session", "node", "stdout_offset", "stdout", "stderr_offset", "stderr", "exited", "exit_code",
                    "signal", "error"},
                "exec output");
    ExecOutput o;
    o.session = Str(j, "session");
    o.node = Str(j, "node");
    o.stdout_offset = Int(j, "stdout_offset");
    o.stderr_offset = Int(j, "stderr_offset");
    if (o.stdout_offset < 0 || o.stderr_offset < 0) throw std::invalid_argument("exec output offsets must be >= 0");
    o.stdout_data = Unwrap(Base64Decode(Str(j, "stdout")));
    o.stderr_data = Unwrap(Base64Decode(Str(j, "stderr")));
    o.exited = Bool(j, "exited");
    if (auto it = j.find("exit_code"); it != j.end() && !it->is_null()) o.exit_code = static_cast<int>(Int(j, "exit_code"));
    if (auto it = j.find("signal"); it != j.end() && !it->is_null()) o.signal = static_cast<int>(Int(j, "signal"));
    o.error = Str(j, "error");
    return o;
  });
}

Result<ExecOutputAck> ExecOutputAckFromJson(const json& j) {
  return Guard("exec output answer", [&]() -> Result<ExecOutputAck> {
    CheckFields(j, {"stdout_offset", "stderr_offset", "closed"}, "exec output answer");
    ExecOutputAck a;
    a.stdout_offset = Int(j, "stdout_offset");
    a.stderr_offset = Int(j, "stderr_offset");
    a.closed = Bool(j, "closed");
    return a;
  });
}

Result<ExecInput> ExecInputFromJson(const json& j) {
  return Guard("exec input", [&]() -> Result<ExecInput> {
    CheckFields(j, {"offset", "data", "eof", "rows", "cols", "close", "close_reason"}, "exec input");
    ExecInput i;
    i.offset = Int(j, "offset");
    i.data = Unwrap(Base64Decode(Str(j, "data")));
    i.eof = Bool(j, "eof");
    i.rows = static_cast<int>(Int(j, "rows"));
    i.cols = static_cast<int>(Int(j, "cols"));
    i.close = Bool(j, "close");
    i.close_reason = Str(j, "close_reason");
    return i;
  });
}

json ToJson(const FilesAnswer& a) {
  json j{{"request", a.request}, {"node", a.node}};
  if (!a.error_code.empty()) {
    j["error_code"] = a.error_code;
    j["error"] = a.error;
  } else if (a.dir) {
    json files = json::array();
    for (const FileInfo& f : a.files)
      files.push_back({{"path", f.path}, {"type", f.type}, {"size", f.size}, {"mode", f.mode},
                       {"modified_at_ms", f.modified_at_ms}});
    j["dir"] = true;
    j["files"] = std::move(files);
    j["truncated"] = a.truncated;
  } else {
    j["size"] = a.size;
    j["offset"] = a.offset;
    j["data"] = Base64Encode(a.data);
  }
  return j;
}

Result<FilesAnswer> FilesAnswerFromJson(const json& j) {
  return Guard("files answer", [&]() -> Result<FilesAnswer> {
    CheckFields(j, {"request", "node", "error_code", "error", "dir", "files", "truncated", "size", "offset", "data"},
                "files answer");
    FilesAnswer a;
    a.request = Str(j, "request");
    a.node = Str(j, "node");
    a.error_code = Str(j, "error_code");
    a.error = Str(j, "error");
    if (!a.error_code.empty() && a.error_code != "invalid_argument" && a.error_code != "not_found" &&
        a.error_code != "internal")
      throw std::invalid_argument("field 'error_code' must be invalid_argument, not_found or internal");
    a.dir = Bool(j, "dir");
    if (auto it = j.find("files"); it != j.end() && !it->is_null()) {
      if (!it->is_array()) throw std::invalid_argument("field 'files' must be an array");
      for (const json& f : *it) {
        CheckFields(f, {"path", "type", "size", "mode", "modified_at_ms"}, "file");
        a.files.push_back(FileInfo{Str(f, "path"), Str(f, "type"), Int(f, "size"), Int(f, "mode"),
                                   Int(f, "modified_at_ms")});
      }
    }
    a.truncated = Bool(j, "truncated");
    a.size = Int(j, "size");
    a.offset = Int(j, "offset");
    a.data = Unwrap(Base64Decode(Str(j, "data")));
    if (a.request.empty() || a.size < 0 || a.offset < 0 || static_cast<int64_t>(a.data.size()) > kMaxFilesChunk)
      throw std::invalid_argument("a files answer needs a request, a size and offset >= 0 and at most " +
                                  std::to_string(kMaxFilesChunk) + " bytes of data");
    return a;
  });
}

Status ValidateNodeName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 63 && name[0] != '.' && name[0] != '-' &&
            std::all_of(name.begin(), name.end(), [](char c) {
              return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '_' || c == '.';
            });
  if (ok) return Status::Ok();
  return InvalidArgument("node name '" + std::string(name) +
                         "' must be 1-63 letters, digits, '.', '_' or '-', not starting with '.' or '-'");
}

}  // namespace fastgpu::agent
