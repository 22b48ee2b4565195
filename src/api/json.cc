#include "api/json.h"

#include "api/json_internal.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

namespace fastgpu::api {

using nlohmann::json;

namespace {

json OptInt(const std::optional<int>& v) { return v ? json(*v) : json(nullptr); }

Status CheckFields(const json& j, const std::set<std::string>& allowed, std::string_view what) {
  if (!j.is_object()) return InvalidArgument(std::string(what) + " must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!allowed.count(it.key()))
      return InvalidArgument("unknown field '" + it.key() + "' in " + std::string(what));
  }
  return Status::Ok();
}

Result<std::string> GetString(const json& j, const char* key, std::string def = "") {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_string()) return InvalidArgument(std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

Result<int64_t> GetInt(const json& j, const char* key, int64_t def, int64_t lo, int64_t hi) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number_integer())
    return InvalidArgument(std::string("field '") + key + "' must be an integer");
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi))
    return InvalidArgument(std::string("field '") + key + "' is out of range");
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi)
    return InvalidArgument(std::string("field '") + key + "' must be between " + std::to_string(lo) +
                           " and " + std::to_string(hi) + ", got " + std::to_string(v));
  return v;
}

Result<bool> GetBool(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) return InvalidArgument(std::string("field '") + key + "' must be true or false");
  return it->get<bool>();
}

// A time as an RFC 3339 string ("2026-12-08T10:00:00Z") or Unix milliseconds; 0 when absent.
Result<UnixMillis> GetTime(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return UnixMillis{0};
  if (it->is_string()) {
    auto t = ParseTimestamp(it->get<std::string>());
    if (!t.ok()) return InvalidArgument(std::string("field '") + key + "': " + t.status().message());
    return *t;
  }
  return GetInt(j, key, 0, 0, 253402300799000LL);
}

json OptTime(UnixMillis t) { return t ? json(FormatTimestamp(t)) : json(nullptr); }

Result<MilliGpu> GetGpus(const json& j) {
  auto it = j.find("gpus");
  if (it == j.end() || it->is_null()) return kMilliPerGpu;
  if (it->is_string()) return ParseMilliGpu(it->get<std::string>());
  if (it->is_number_integer()) {
    if (it->is_number_unsigned() && it->get<uint64_t>() > 1'000'000)
      return InvalidArgument("field 'gpus' is absurdly large");
    int64_t v = it->get<int64_t>();
    if (v < 0) return InvalidArgument("field 'gpus' must not be negative");
    if (v > 1'000'000) return InvalidArgument("field 'gpus' is absurdly large");
    return v * kMilliPerGpu;
  }
  if (it->is_number_float()) {
    // Convert through text with 3 decimals so 0.25 stays exact.
    double d = it->get<double>();
    if (!std::isfinite(d) || d < 0) return InvalidArgument("field 'gpus' must be a non-negative number");
    if (d > 1e6) return InvalidArgument("field 'gpus' is absurdly large");
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6f", d);
    std::string s(buf);
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
    return ParseMilliGpu(s);
  }
  return InvalidArgument("field 'gpus' must be a number such as 2 or 0.25");
}

}  // namespace

Result<json> ParseJson(std::string_view text, std::string_view what) {
  std::vector<std::set<std::string, std::less<>>> keys;  // keys seen in each open object
  std::string duplicate;
  bool too_deep = false;
  json::parser_callback_t check = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        [[fallthrough]];
      case json::parse_event_t::array_start:
        too_deep = too_deep || depth >= kMaxJsonDepth;
        break;
      case json::parse_event_t::key:
        if (!keys.empty() && !keys.back().insert(parsed.get_ref<const std::string&>()).second && duplicate.empty())
          duplicate = parsed.get<std::string>();
        break;
      case json::parse_event_t::object_end:
        if (!keys.empty()) keys.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  json j = json::parse(text, check, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(std::string(what) + " is not valid JSON");
  if (!duplicate.empty()) {
    if (duplicate.size() > 64) duplicate = duplicate.substr(0, 64) + "...";
    return InvalidArgument(std::string(what) + " has the key '" + duplicate +
                           "' more than once in one object; give each field once");
  }
  if (too_deep)
    return InvalidArgument(std::string(what) + " nests objects or arrays deeper than " +
                           std::to_string(kMaxJsonDepth) + " levels");
  return j;
}

json ToJson(const JobSpec& s) {
  return json{{"name", s.name},
              {"command", s.command},
              {"gpus", FormatMilliGpu(s.gpus_milli)},
              {"gpus_milli", s.gpus_milli},
              {"gpu_type", s.gpu_type},
              {"memory_mib", s.memory_mib},
              {"runtime_limit_s", s.runtime_limit_s},
              {"priority", s.priority},
              {"env", s.env},
              {"sync", s.sync},
              {"workdir", s.workdir},
              {"project", s.project},
              {"max_retries", s.max_retries},
              {"secrets", s.secrets},
              {"processes", std::string(ProcessLayoutName(s.processes))},
              {"after", s.after},
              {"after_ok", s.after_ok},
              {"preemptible", s.preemptible},
              {"checkpoint_signal", CheckpointSignalName(s.checkpoint_signal)},
              {"checkpoint_grace_s", s.checkpoint_grace_s},
              {"begin_at", OptTime(s.begin_at)},
              {"deadline_at", OptTime(s.deadline_at)},
              {"image", s.image},
              {"array", s.array}};
}

json ToJson(const Job& j) {
  json out{{"id", j.id},
           {"name", j.spec.name},
           {"state", std::string(JobStateName(j.state))},
           {"gpus", FormatMilliGpu(j.spec.gpus_milli)},
           {"gpus_milli", j.spec.gpus_milli},
           {"gpu_type", j.spec.gpu_type},
           {"memory_mib", j.spec.memory_mib},
           {"assigned_gpus", j.assigned_gpus},
           {"assigned_gpu_indices", j.assigned_gpu_indices},
           {"node", j.node},
           {"members", ToJson(j.members)},
           {"priority", j.spec.priority},
           {"command", j.spec.command},
           {"env", j.spec.env},
           {"workdir", j.spec.workdir},
           {"image", j.spec.image},
           {"project", j.spec.project},
           {"user", j.user},
           {"runtime_limit_s", j.spec.runtime_limit_s},
           {"max_retries", j.spec.max_retries},
           {"secrets", j.spec.secrets},
           {"sync", j.spec.sync},
           {"processes", std::string(ProcessLayoutName(j.spec.processes))},
           {"after", j.spec.after},
           {"after_ok", j.spec.after_ok},
           {"preemptible", j.spec.preemptible},
           {"checkpoint_signal", CheckpointSignalName(j.spec.checkpoint_signal)},
           {"checkpoint_grace_s", j.spec.checkpoint_grace_s},
           {"begin_at", OptTime(j.spec.begin_at)},
           {"deadline_at", OptTime(j.spec.deadline_at)},
           {"begin_at_ms", j.spec.begin_at},
           {"deadline_at_ms", j.spec.deadline_at},
           {"attained_gpu_ms", j.attained_gpu_ms},
           {"expected_start_at", OptTime(j.expected_start_at)},
           {"expected_start_at_ms", j.expected_start_at},
           {"expected_start_note", j.expected_start_note},
           {"deadline_warning", j.deadline_warning},
           {"created_at", FormatTimestamp(j.created_at)},
           {"started_at", j.started_at ? json(FormatTimestamp(j.started_at)) : json(nullptr)},
           {"finished_at", j.finished_at ? json(FormatTimestamp(j.finished_at)) : json(nullptr)},
           {"created_at_ms", j.created_at},
           {"started_at_ms", j.started_at},
           {"finished_at_ms", j.finished_at},
           {"exit_code", OptInt(j.exit_code)},
           {"signal", OptInt(j.signal)},
           {"reason", j.reason},
           {"attempt", j.attempt},
           {"pid", j.pid},
           {"array", j.spec.array},
           {"array_parent", j.array_parent},
           {"array_index", j.array_index}};
  if (!j.gpu_usage.empty()) {
    json usage = json::array();
    for (const auto& u : j.gpu_usage) {
      usage.push_back({{"uuid", u.uuid},
                       {"node", u.node},
                       {"samples", u.samples},
                       {"avg_util_pct", u.AverageUtilPct()},
                       {"peak_util_pct", u.peak_util_pct},
                       {"peak_memory_mib", u.peak_memory_mib},
                       {"energy_j", u.energy_mj / 1000},
                       {"energy_mj", u.energy_mj}});
    }
    out["gpu_usage"] = std::move(usage);
  }
  if (!j.array_tasks.empty()) {
    json tasks = json::array();
    for (const auto& t : j.array_tasks) {
      json o{{"index", t.index}, {"id", t.id}, {"state", std::string(JobStateName(t.state))}};
      if (t.exit_code) o["exit_code"] = *t.exit_code;
      if (!t.reason.empty()) o["reason"] = t.reason;
      tasks.push_back(std::move(o));
    }
    out["array_tasks"] = std::move(tasks);
  }
  return out;
}

json ToJson(const std::vector<JobMember>& members) {
  json out = json::array();
  for (const auto& m : members) {
    json o{{"rank", m.rank}, {"node", m.node}, {"gpu_uuids", m.gpu_uuids}, {"gpu_indices", m.gpu_indices}};
    if (m.started) o["started"] = true;
    if (m.ended) o["ended"] = true;
    if (m.pid != 0) o["pid"] = m.pid;
    if (m.exit_code) o["exit_code"] = *m.exit_code;
    if (m.signal) o["signal"] = *m.signal;
    if (!m.reason.empty()) o["reason"] = m.reason;
    out.push_back(std::move(o));
  }
  return out;
}

json ToJson(const JobEvent& e) {
  return json{{"seq", e.seq},       {"job_id", e.job_id}, {"at", FormatTimestamp(e.at)}, {"at_ms", e.at},
              {"from", e.from},     {"to", e.to},         {"reason", e.reason},        {"actor", e.actor}};
}

json ToJson(const Gpu& g) {
  return json{{"uuid", g.uuid},
              {"index", g.index},
              {"name", g.name},
              {"type", g.type},
              {"node", g.node},
              {"pci_bus_id", g.pci_bus_id},
              {"memory_total_mib", g.memory_total_mib},
              {"memory_used_mib", g.memory_used_mib},
              {"utilization_pct", g.utilization_pct},
              {"temperature_c", g.temperature_c},
              {"power_mw", g.power_mw},
              {"simulated", g.simulated},
              {"healthy", g.healthy},
              {"allocated_milli", g.allocated_milli},
              {"jobs", g.jobs},
              {"memory_util_pct", g.memory_util_pct},
              {"sm_clock_mhz", g.sm_clock_mhz},
              {"power_limit_mw", g.power_limit_mw},
              {"energy_mj", g.energy_mj},
              {"ecc_corrected_volatile", g.ecc_corrected_volatile},
              {"ecc_uncorrected_volatile", g.ecc_uncorrected_volatile},
              {"ecc_corrected_aggregate", g.ecc_corrected_aggregate},
              {"ecc_uncorrected_aggregate", g.ecc_uncorrected_aggregate},
              {"remapped_rows_correctable", g.remapped_rows_correctable},
              {"remapped_rows_uncorrectable", g.remapped_rows_uncorrectable},
              {"remap_pending", g.remap_pending},
              {"remap_failure", g.remap_failure},
              {"throttle_reasons", g.throttle_reasons},
              {"last_xid", g.last_xid},
              {"xid_count", g.xid_count}};
}

json ToJson(const Node& n) {
  return json{{"name", n.name},
              {"address", n.address},
              {"labels", n.labels},
              {"healthy", n.healthy},
              {"draining", n.draining},
              {"simulated", n.simulated},
              {"last_heartbeat", FormatTimestamp(n.last_heartbeat)},
              {"last_heartbeat_ms", n.last_heartbeat},
              {"gpu_count", n.gpu_count}};
}

Result<JobSpec> JobSpecFromJson(const json& j) {
  RETURN_IF_ERROR(CheckFields(j,
                              {"name", "sync", "command", "gpus", "gpu_type", "memory_mib", "runtime", "runtime_limit_s",
                               "priority", "env", "workdir", "project", "max_retries", "secrets", "processes", "after",
                               "after_ok", "preemptible", "checkpoint_signal", "checkpoint_grace", "checkpoint_grace_s",
                               "begin_at", "deadline_at", "image", "array"},
                              "job spec"));
  JobSpec s;
  ASSIGN_OR_RETURN(s.name, GetString(j, "name"));
  ASSIGN_OR_RETURN(s.sync, GetString(j, "sync"));
  auto cmd = j.find("command");
  if (cmd == j.end() || cmd->is_null()) return InvalidArgument("field 'command' is required");
  if (cmd->is_string()) {
    s.command = {"sh", "-c", cmd->get<std::string>()};
  } else if (cmd->is_array()) {
    for (const auto& a : *cmd) {
      if (!a.is_string()) return InvalidArgument("field 'command' must be an array of strings");
      s.command.push_back(a.get<std::string>());
    }
  } else {
    return InvalidArgument("field 'command' must be an array of strings or a shell string");
  }
  ASSIGN_OR_RETURN(s.gpus_milli, GetGpus(j));
  ASSIGN_OR_RETURN(s.gpu_type, GetString(j, "gpu_type"));
  ASSIGN_OR_RETURN(s.memory_mib, GetInt(j, "memory_mib", 0, 0, 16LL * 1024 * 1024));
  ASSIGN_OR_RETURN(s.runtime_limit_s, GetInt(j, "runtime_limit_s", 0, 0, 10LL * 365 * 86400));
  if (auto it = j.find("runtime"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      ASSIGN_OR_RETURN(s.runtime_limit_s, ParseDurationSeconds(it->get<std::string>()));
    } else {
      ASSIGN_OR_RETURN(s.runtime_limit_s, GetInt(j, "runtime", 0, 0, 10LL * 365 * 86400));
    }
  }
  ASSIGN_OR_RETURN(int64_t prio, GetInt(j, "priority", 50, 0, 100));
  s.priority = static_cast<int>(prio);
  ASSIGN_OR_RETURN(int64_t retries, GetInt(j, "max_retries", 0, 0, 100));
  s.max_retries = static_cast<int>(retries);
  if (auto it = j.find("env"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return InvalidArgument("field 'env' must be an object of strings");
    for (auto e = it->begin(); e != it->end(); ++e) {
      if (!e->is_string()) return InvalidArgument("env value of '" + e.key() + "' must be a string");
      s.env[e.key()] = e->get<std::string>();
    }
  }
  if (auto it = j.find("secrets"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return InvalidArgument("field 'secrets' must be an array of secret names");
    for (const auto& e : *it) {
      if (!e.is_string()) return InvalidArgument("field 'secrets' must be an array of secret names");
      s.secrets.push_back(e.get<std::string>());
    }
  }
  for (const auto& [field, into] : {std::pair<const char*, std::vector<std::string>*>{"after", &s.after},
                                    {"after_ok", &s.after_ok}}) {
    auto it = j.find(field);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_array()) return InvalidArgument(std::string("field '") + field + "' must be an array of job ids");
    for (const auto& e : *it) {
      if (!e.is_string()) return InvalidArgument(std::string("field '") + field + "' must be an array of job ids");
      into->push_back(e.get<std::string>());
    }
  }
  ASSIGN_OR_RETURN(s.workdir, GetString(j, "workdir"));
  ASSIGN_OR_RETURN(s.image, GetString(j, "image"));
  ASSIGN_OR_RETURN(s.array, GetString(j, "array"));
  ASSIGN_OR_RETURN(s.project, GetString(j, "project", "default"));
  ASSIGN_OR_RETURN(std::string processes, GetString(j, "processes", "per-node"));
  ASSIGN_OR_RETURN(s.processes, ParseProcessLayout(processes));
  if (s.project.empty()) s.project = "default";
  ASSIGN_OR_RETURN(s.preemptible, GetBool(j, "preemptible", false));
  if (auto it = j.find("checkpoint_signal"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      ASSIGN_OR_RETURN(s.checkpoint_signal, ParseCheckpointSignal(it->get<std::string>()));
    } else if (it->is_number_integer()) {
      ASSIGN_OR_RETURN(s.checkpoint_signal, ParseCheckpointSignal(std::to_string(it->get<int64_t>())));
    } else {
      return InvalidArgument("field 'checkpoint_signal' must be a signal name such as \"SIGUSR1\"");
    }
  }
  ASSIGN_OR_RETURN(s.checkpoint_grace_s, GetInt(j, "checkpoint_grace_s", 60, 0, 3600));
  if (auto it = j.find("checkpoint_grace"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      ASSIGN_OR_RETURN(s.checkpoint_grace_s, ParseDurationSeconds(it->get<std::string>()));
    } else {
      ASSIGN_OR_RETURN(s.checkpoint_grace_s, GetInt(j, "checkpoint_grace", 60, 0, 3600));
    }
  }
  ASSIGN_OR_RETURN(s.begin_at, GetTime(j, "begin_at"));
  ASSIGN_OR_RETURN(s.deadline_at, GetTime(j, "deadline_at"));
  RETURN_IF_ERROR(ValidateJobSpec(s));
  return s;
}

std::string EncodeJobExtras(const Job& job) {
  const JobSpec& spec = job.spec;
  const JobSpec defaults;
  json j = json::object();
  if (!spec.after.empty()) j["after"] = spec.after;
  if (!spec.after_ok.empty()) j["after_ok"] = spec.after_ok;
  if (spec.preemptible) j["preemptible"] = true;
  if (!spec.sync.empty()) j["sync"] = spec.sync;
  if (spec.checkpoint_signal != defaults.checkpoint_signal) j["checkpoint_signal"] = spec.checkpoint_signal;
  if (spec.checkpoint_grace_s != defaults.checkpoint_grace_s) j["checkpoint_grace_s"] = spec.checkpoint_grace_s;
  if (spec.begin_at) j["begin_at_ms"] = spec.begin_at;
  if (spec.deadline_at) j["deadline_at_ms"] = spec.deadline_at;
  if (job.attained_gpu_ms) j["attained_gpu_ms"] = job.attained_gpu_ms;
  if (!spec.image.empty()) j["image"] = spec.image;
  if (!spec.array.empty()) j["array"] = spec.array;
  if (!job.array_parent.empty()) {
    j["array_parent"] = job.array_parent;
    j["array_index"] = job.array_index;
  }
  if (!job.gpu_usage.empty()) {
    json usage = json::array();
    for (const auto& u : job.gpu_usage) {
      usage.push_back({{"uuid", u.uuid}, {"node", u.node}, {"samples", u.samples}, {"util_pct_sum", u.util_pct_sum},
                       {"peak_util_pct", u.peak_util_pct}, {"peak_memory_mib", u.peak_memory_mib},
                       {"energy_mj", u.energy_mj}});
    }
    j["gpu_usage"] = std::move(usage);
  }
  return j.empty() ? "{}" : j.dump();
}

Status DecodeJobExtras(std::string_view text, Job* job) {
  if (text == "{}" || text.empty()) return Status::Ok();
  ASSIGN_OR_RETURN(json j, ParseJson(text, "stored job extras"));
  JobSpec* spec = &job->spec;
  for (const auto& [field, into] : {std::pair<const char*, std::vector<std::string>*>{"after", &spec->after},
                                    {"after_ok", &spec->after_ok}}) {
    auto it = j.find(field);
    if (it == j.end()) continue;
    if (!it->is_array()) return InvalidArgument(std::string("stored job extras: '") + field + "' is not a list");
    for (const auto& e : *it) {
      if (!e.is_string()) return InvalidArgument(std::string("stored job extras: '") + field + "' is not a list");
      into->push_back(e.get<std::string>());
    }
  }
  return internal::Guard([&]() -> Status {
    spec->preemptible = j.value("preemptible", false);
    spec->sync = j.value("sync", "");
    spec->checkpoint_signal = j.value("checkpoint_signal", spec->checkpoint_signal);
    spec->checkpoint_grace_s = j.value("checkpoint_grace_s", spec->checkpoint_grace_s);
    spec->begin_at = j.value("begin_at_ms", int64_t{0});
    spec->deadline_at = j.value("deadline_at_ms", int64_t{0});
    job->attained_gpu_ms = j.value("attained_gpu_ms", int64_t{0});
    spec->image = j.value("image", "");
    spec->array = j.value("array", "");
    job->array_parent = j.value("array_parent", "");
    job->array_index = j.value("array_index", -1);
    if (auto u = j.find("gpu_usage"); u != j.end() && u->is_array()) {
      for (const auto& e : *u) {
        JobGpuUsage g;
        g.uuid = e.value("uuid", "");
        g.node = e.value("node", "");
        g.samples = internal::IntOr<int64_t>(e, "samples", 0);
        g.util_pct_sum = internal::IntOr<int64_t>(e, "util_pct_sum", 0);
        g.peak_util_pct = internal::IntOr<int>(e, "peak_util_pct", 0);
        g.peak_memory_mib = internal::IntOr<int64_t>(e, "peak_memory_mib", 0);
        g.energy_mj = internal::IntOr<int64_t>(e, "energy_mj", 0);
        job->gpu_usage.push_back(std::move(g));
      }
    }
    return Status::Ok();
  });
}

Result<JobSpec> JobSpecFromJsonText(std::string_view text) {
  ASSIGN_OR_RETURN(json j, ParseJson(text, "request body"));
  return JobSpecFromJson(j);
}

using internal::Guard;
using internal::IntAt;
using internal::IntOr;
using internal::IntsOr;

Result<Job> JobFromJson(const json& j) {
  return Guard([&]() -> Result<Job> {
    Job out;
    out.id = j.at("id").get<std::string>();
    out.spec.name = j.value("name", "");
    out.spec.command = j.at("command").get<std::vector<std::string>>();
    out.spec.gpus_milli = IntOr<MilliGpu>(j, "gpus_milli", kMilliPerGpu);
    out.spec.gpu_type = j.value("gpu_type", "");
    out.spec.memory_mib = IntOr<int64_t>(j, "memory_mib", 0);
    out.spec.runtime_limit_s = IntOr<int64_t>(j, "runtime_limit_s", 0);
    out.spec.priority = IntOr<int>(j, "priority", 50);
    out.spec.env = j.value("env", std::map<std::string, std::string>{});
    out.spec.workdir = j.value("workdir", "");
    out.spec.image = j.value("image", "");
    out.spec.project = j.value("project", "default");
    out.spec.max_retries = IntOr<int>(j, "max_retries", 0);
    out.spec.secrets = j.value("secrets", std::vector<std::string>{});
    out.spec.sync = j.value("sync", "");
    ASSIGN_OR_RETURN(out.spec.processes, ParseProcessLayout(j.value("processes", "per-node")));
    out.spec.after = j.value("after", std::vector<std::string>{});
    out.spec.after_ok = j.value("after_ok", std::vector<std::string>{});
    out.spec.preemptible = j.value("preemptible", false);
    if (auto sig = j.find("checkpoint_signal"); sig != j.end() && sig->is_string()) {
      ASSIGN_OR_RETURN(out.spec.checkpoint_signal, ParseCheckpointSignal(sig->get<std::string>()));
    }
    out.spec.checkpoint_grace_s = IntOr<int64_t>(j, "checkpoint_grace_s", 60);
    out.spec.begin_at = IntOr<int64_t>(j, "begin_at_ms", 0);
    out.spec.deadline_at = IntOr<int64_t>(j, "deadline_at_ms", 0);
    out.attained_gpu_ms = IntOr<int64_t>(j, "attained_gpu_ms", 0);
    out.expected_start_at = IntOr<int64_t>(j, "expected_start_at_ms", 0);
    out.expected_start_note = j.value("expected_start_note", "");
    out.deadline_warning = j.value("deadline_warning", "");
    ASSIGN_OR_RETURN(out.state, ParseJobState(j.at("state").get<std::string>()));
    out.user = j.value("user", "");
    out.assigned_gpus = j.value("assigned_gpus", std::vector<std::string>{});
    out.assigned_gpu_indices = IntsOr<int>(j, "assigned_gpu_indices");
    out.node = j.value("node", "");
    if (auto m = j.find("members"); m != j.end() && !m->is_null()) {
      ASSIGN_OR_RETURN(out.members, JobMembersFromJson(*m));
    }
    out.created_at = IntOr<int64_t>(j, "created_at_ms", 0);
    out.started_at = IntOr<int64_t>(j, "started_at_ms", 0);
    out.finished_at = IntOr<int64_t>(j, "finished_at_ms", 0);
    if (j.contains("exit_code") && !j["exit_code"].is_null()) out.exit_code = IntAt<int>(j, "exit_code");
    if (j.contains("signal") && !j["signal"].is_null()) out.signal = IntAt<int>(j, "signal");
    out.reason = j.value("reason", "");
    out.attempt = IntOr<int>(j, "attempt", 0);
    out.pid = IntOr<int64_t>(j, "pid", 0);
    out.spec.array = j.value("array", "");
    out.array_parent = j.value("array_parent", "");
    out.array_index = IntOr<int>(j, "array_index", -1);
    if (auto u = j.find("gpu_usage"); u != j.end() && u->is_array()) {
      for (const auto& e : *u) {
        JobGpuUsage g;
        g.uuid = e.value("uuid", "");
        g.node = e.value("node", "");
        g.samples = IntOr<int64_t>(e, "samples", 0);
        g.util_pct_sum = g.samples * IntOr<int64_t>(e, "avg_util_pct", 0);
        g.peak_util_pct = IntOr<int>(e, "peak_util_pct", 0);
        g.peak_memory_mib = IntOr<int64_t>(e, "peak_memory_mib", 0);
        g.energy_mj = IntOr<int64_t>(e, "energy_mj", 0);
        out.gpu_usage.push_back(std::move(g));
      }
    }
    if (auto t = j.find("array_tasks"); t != j.end() && t->is_array()) {
      for (const auto& e : *t) {
        api::ArrayTask task;
        task.index = IntOr<int>(e, "index", 0);
        task.id = e.value("id", "");
        ASSIGN_OR_RETURN(task.state, ParseJobState(e.value("state", "QUEUED")));
        if (e.contains("exit_code") && !e["exit_code"].is_null()) task.exit_code = IntAt<int>(e, "exit_code");
        task.reason = e.value("reason", "");
        out.array_tasks.push_back(std::move(task));
      }
    }
    return out;
  });
}

Result<std::vector<JobMember>> JobMembersFromJson(const json& j) {
  return Guard([&]() -> Result<std::vector<JobMember>> {
    std::vector<JobMember> out;
    for (const auto& o : j.get_ref<const json::array_t&>()) {
      for (auto it = o.begin(); it != o.end(); ++it) {
        static constexpr const char* kFields[] = {"rank", "node", "gpu_uuids", "gpu_indices", "started",
                                                  "ended", "pid", "exit_code", "signal", "reason"};
        if (std::find_if(std::begin(kFields), std::end(kFields), [&](const char* f) { return it.key() == f; }) ==
            std::end(kFields))
          return InvalidArgument("unknown field '" + it.key() + "' in job member");
      }
      JobMember m;
      m.rank = IntAt<int>(o, "rank");
      m.node = o.at("node").get<std::string>();
      m.gpu_uuids = o.value("gpu_uuids", std::vector<std::string>{});
      m.gpu_indices = IntsOr<int>(o, "gpu_indices");
      m.started = o.value("started", false);
      m.ended = o.value("ended", false);
      m.pid = IntOr<int64_t>(o, "pid", 0);
      if (o.contains("exit_code") && !o["exit_code"].is_null()) m.exit_code = IntAt<int>(o, "exit_code");
      if (o.contains("signal") && !o["signal"].is_null()) m.signal = IntAt<int>(o, "signal");
      m.reason = o.value("reason", "");
      out.push_back(std::move(m));
    }
    return out;
  });
}

Result<Gpu> GpuFromJson(const json& j) {
  return Guard([&]() -> Result<Gpu> {
    Gpu g;
    g.uuid = j.at("uuid").get<std::string>();
    g.index = IntOr<int>(j, "index", 0);
    g.name = j.value("name", "");
    g.type = j.value("type", "");
    g.node = j.value("node", "");
    g.pci_bus_id = j.value("pci_bus_id", "");
    g.memory_total_mib = IntOr<int64_t>(j, "memory_total_mib", 0);
    g.memory_used_mib = IntOr<int64_t>(j, "memory_used_mib", 0);
    g.utilization_pct = IntOr<int>(j, "utilization_pct", 0);
    g.temperature_c = IntOr<int>(j, "temperature_c", 0);
    g.power_mw = IntOr<int>(j, "power_mw", 0);
    g.simulated = j.value("simulated", false);
    g.healthy = j.value("healthy", true);
    g.allocated_milli = IntOr<int64_t>(j, "allocated_milli", 0);
    g.jobs = j.value("jobs", std::vector<std::string>{});
    g.memory_util_pct = IntOr<int>(j, "memory_util_pct", 0);
    g.sm_clock_mhz = IntOr<int>(j, "sm_clock_mhz", 0);
    g.power_limit_mw = IntOr<int>(j, "power_limit_mw", 0);
    g.energy_mj = IntOr<int64_t>(j, "energy_mj", 0);
    g.ecc_corrected_volatile = IntOr<int64_t>(j, "ecc_corrected_volatile", 0);
    g.ecc_uncorrected_volatile = IntOr<int64_t>(j, "ecc_uncorrected_volatile", 0);
    g.ecc_corrected_aggregate = IntOr<int64_t>(j, "ecc_corrected_aggregate", 0);
    g.ecc_uncorrected_aggregate = IntOr<int64_t>(j, "ecc_uncorrected_aggregate", 0);
    g.remapped_rows_correctable = IntOr<int64_t>(j, "remapped_rows_correctable", 0);
    g.remapped_rows_uncorrectable = IntOr<int64_t>(j, "remapped_rows_uncorrectable", 0);
    g.remap_pending = j.value("remap_pending", false);
    g.remap_failure = j.value("remap_failure", false);
    g.throttle_reasons = IntOr<uint64_t>(j, "throttle_reasons", 0);
    g.last_xid = IntOr<int>(j, "last_xid", 0);
    g.xid_count = IntOr<int64_t>(j, "xid_count", 0);
    return g;
  });
}

Result<Node> NodeFromJson(const json& j) {
  return Guard([&]() -> Result<Node> {
    Node n;
    n.name = j.at("name").get<std::string>();
    n.address = j.value("address", "");
    n.labels = j.value("labels", std::map<std::string, std::string>{});
    n.healthy = j.value("healthy", true);
    n.draining = j.value("draining", false);
    n.simulated = j.value("simulated", false);
    n.last_heartbeat = IntOr<int64_t>(j, "last_heartbeat_ms", 0);
    n.gpu_count = IntOr<int>(j, "gpu_count", 0);
    return n;
  });
}

Result<JobEvent> JobEventFromJson(const json& j) {
  return Guard([&]() -> Result<JobEvent> {
    JobEvent e;
    e.seq = IntOr<int64_t>(j, "seq", 0);
    e.job_id = j.at("job_id").get<std::string>();
    e.at = IntOr<int64_t>(j, "at_ms", 0);
    e.from = j.value("from", "");
    e.to = j.value("to", "");
    e.reason = j.value("reason", "");
    e.actor = j.value("actor", "");
    return e;
  });
}

std::string ErrorBody(const Status& st) {
  json j{{"error", {{"code", std::string(ErrorCodeName(st.code()))}, {"message", st.message()}}}};
  // Messages may quote request text that is not valid UTF-8 (a path, a query value): replace, never throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace fastgpu::api
