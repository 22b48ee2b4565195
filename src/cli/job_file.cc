#include "cli/job_file.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "api/json.h"
#include "common/quantity.h"

namespace fastgpu::cli {
namespace {

Result<int64_t> ParseInt(std::string_view text, std::string_view what, int64_t lo, int64_t hi) {
  std::string s(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  s = s.substr(b);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
    return InvalidArgument(std::string(what) + " must be a whole number, got '" + std::string(text) + "'");
  if (v < lo || v > hi)
    return InvalidArgument(std::string(what) + " must be between " + std::to_string(lo) + " and " +
                           std::to_string(hi) + ", got " + std::to_string(v));
  return v;
}

Status Prefix(const Status& st, const std::string& prefix) {
  if (st.ok()) return st;
  return Status(st.code(), prefix + st.message());
}

template <typename T>
Result<T> Prefix(Result<T> r, const std::string& prefix) {
  if (r.ok()) return r;
  return Prefix(r.status(), prefix);
}

std::string Where(const YAML::Node& n) {
  const YAML::Mark m = n.Mark();
  if (m.line < 0) return "";
  return " (line " + std::to_string(m.line + 1) + ")";
}

Result<std::string> Scalar(const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) return InvalidArgument("field '" + key + "' must be a single value" + Where(n));
  return n.Scalar();
}

Status ApplyYaml(const YAML::Node& root, api::JobSpec& spec) {
  if (root.IsNull()) return InvalidArgument("job file is empty");
  if (!root.IsMap()) return InvalidArgument("job file must be a mapping of fields (name: ..., command: ...)");
  static const std::set<std::string> kKnown = {"name",    "command", "gpus",    "gpu_type",
                                                "memory",  "memory_mib", "runtime", "runtime_limit_s",
                                                "priority", "env",     "workdir", "project",
                                                "max_retries", "secrets", "processes"};
  for (const auto& kv : root) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (!kKnown.count(key)) {
      return InvalidArgument("unknown field '" + key + "'" + Where(kv.first) +
                             "; known fields: name, command, gpus, gpu_type, memory, runtime, priority, env, "
                             "workdir, project, max_retries, secrets, processes");
    }
    if (v.IsNull()) continue;
    if (key == "command") {
      if (v.IsScalar()) {
        spec.command = {"sh", "-c", v.Scalar()};
      } else if (v.IsSequence()) {
        spec.command.clear();
        for (const auto& a : v) {
          if (!a.IsScalar()) return InvalidArgument("field 'command' must be a list of strings" + Where(a));
          spec.command.push_back(a.Scalar());
        }
      } else {
        return InvalidArgument("field 'command' must be a list of strings or a shell string" + Where(v));
      }
    } else if (key == "secrets") {
      // A single name is accepted as a one-element list.
      if (!v.IsSequence() && !v.IsScalar())
        return InvalidArgument("field 'secrets' must be a list of secret names" + Where(v));
      spec.secrets.clear();
      if (v.IsScalar()) spec.secrets.push_back(v.Scalar());
      for (const auto& a : v) {
        if (!a.IsScalar()) return InvalidArgument("field 'secrets' must be a list of secret names" + Where(a));
        spec.secrets.push_back(a.Scalar());
      }
    } else if (key == "env") {
      if (!v.IsMap()) return InvalidArgument("field 'env' must be a mapping of NAME: value" + Where(v));
      for (const auto& e : v) {
        std::string name = e.first.as<std::string>();
        if (!e.second.IsScalar() && !e.second.IsNull())
          return InvalidArgument("env value of '" + name + "' must be a string" + Where(e.second));
        RETURN_IF_ERROR(Prefix(ParseEnvAssignment(name + "=").status(), "field 'env': "));
        spec.env[name] = e.second.IsNull() ? "" : e.second.Scalar();
      }
    } else {
      ASSIGN_OR_RETURN(std::string s, Scalar(v, key));
      std::string where = "field '" + key + "'" + Where(v) + ": ";
      if (key == "name") {
        spec.name = s;
      } else if (key == "gpus") {
        ASSIGN_OR_RETURN(spec.gpus_milli, Prefix(ParseMilliGpu(s), where));
      } else if (key == "gpu_type") {
        spec.gpu_type = s;
      } else if (key == "memory" || key == "memory_mib") {
        ASSIGN_OR_RETURN(spec.memory_mib, Prefix(ParseMemoryMiB(s), where));
      } else if (key == "runtime" || key == "runtime_limit_s") {
        ASSIGN_OR_RETURN(spec.runtime_limit_s, Prefix(ParseDurationSeconds(s), where));
      } else if (key == "priority") {
        ASSIGN_OR_RETURN(int64_t p, ParseInt(s, "field 'priority'" + Where(v), 0, 100));
        spec.priority = static_cast<int>(p);
      } else if (key == "workdir") {
        spec.workdir = s;
      } else if (key == "project") {
        spec.project = s;
      } else if (key == "max_retries") {
        ASSIGN_OR_RETURN(int64_t r, ParseInt(s, "field 'max_retries'" + Where(v), 0, 100));
        spec.max_retries = static_cast<int>(r);
      } else if (key == "processes") {
        ASSIGN_OR_RETURN(spec.processes, Prefix(api::ParseProcessLayout(s), where));
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<std::pair<std::string, std::string>> ParseEnvAssignment(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgument("'" + std::string(text) + "' is not NAME=VALUE (example: --env BATCH=64)");
  std::string key(text.substr(0, eq));
  if (key.empty()) return InvalidArgument("'" + std::string(text) + "' has an empty variable name");
  bool ok = std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_';
  for (char c : key) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok)
    return InvalidArgument("'" + key + "' is not a valid environment variable name (letters, digits, _)");
  return std::make_pair(key, std::string(text.substr(eq + 1)));
}

Result<api::JobSpec> ParseJobYaml(std::string_view text, api::JobSpec base) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    RETURN_IF_ERROR(ApplyYaml(root, base));
    return base;
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.line >= 0 ? " at line " + std::to_string(e.mark.line + 1) : "";
    return InvalidArgument("job file is not valid YAML" + where + ": " + e.msg);
  }
}

Result<api::JobSpec> BuildJobSpec(const SubmitFlags& flags, const ReadFileFn& read_file) {
  api::JobSpec spec;
  spec.project.clear();  // none named unless the file or a flag names one (then the server decides)
  if (flags.file) {
    auto text = read_file(*flags.file);
    if (!text) return InvalidArgument("cannot read job file '" + *flags.file + "'");
    auto parsed = ParseJobYaml(*text, spec);
    if (!parsed.ok()) return Prefix(parsed.status(), *flags.file + ": ");
    spec = std::move(parsed).value();
  }
  if (flags.name) spec.name = *flags.name;
  if (flags.gpus) {
    ASSIGN_OR_RETURN(spec.gpus_milli, Prefix(ParseMilliGpu(*flags.gpus), "invalid --gpus: "));
  }
  if (flags.gpu_type) spec.gpu_type = *flags.gpu_type;
  if (flags.memory) {
    ASSIGN_OR_RETURN(spec.memory_mib, Prefix(ParseMemoryMiB(*flags.memory), "invalid --memory: "));
  }
  if (flags.runtime) {
    ASSIGN_OR_RETURN(spec.runtime_limit_s, Prefix(ParseDurationSeconds(*flags.runtime), "invalid --runtime: "));
  }
  if (flags.priority) {
    ASSIGN_OR_RETURN(int64_t p, ParseInt(*flags.priority, "--priority", 0, 100));
    spec.priority = static_cast<int>(p);
  }
  if (flags.workdir) spec.workdir = *flags.workdir;
  if (flags.here && flags.workdir) return InvalidArgument("give --here or --workdir DIR, not both");
  if (!spec.workdir.empty() && spec.workdir[0] != '/') {
    return InvalidArgument("workdir '" + spec.workdir + "' is relative: give an absolute path on the node that runs "
                           "the job (e.g. /data/run1), or --here to run in the directory you submit from");
  }
  if (flags.project) spec.project = *flags.project;
  if (flags.max_retries) {
    ASSIGN_OR_RETURN(int64_t r, ParseInt(*flags.max_retries, "--max-retries", 0, 100));
    spec.max_retries = static_cast<int>(r);
  }
  for (const auto& e : flags.env) {
    ASSIGN_OR_RETURN(auto kv, Prefix(ParseEnvAssignment(e), "invalid --env: "));
    spec.env[kv.first] = kv.second;
  }
  // --secret adds to the file's list; a name given twice is sent once.
  for (const auto& name : flags.secrets) {
    if (std::find(spec.secrets.begin(), spec.secrets.end(), name) == spec.secrets.end()) spec.secrets.push_back(name);
  }
  if (flags.process_per_gpu) spec.processes = api::ProcessLayout::kPerGpu;
  if (!flags.command.empty()) spec.command = flags.command;
  if (spec.command.empty()) {
    return InvalidArgument(
        "no command to run: put it after '--' (fastgpu job submit --gpus 1 -- python train.py) or set "
        "'command' in the job file");
  }
  // No project named: the server decides ("default", or the caller's only project).
  RETURN_IF_ERROR(api::ValidateJobSpec(spec));
  return spec;
}

std::string JobSpecRequestBody(const api::JobSpec& spec) {
  nlohmann::json j = api::ToJson(spec);
  j.erase("gpus_milli");  // the request carries the exact text form ("0.25")
  if (spec.project.empty()) j.erase("project");
  return j.dump();
}

}  // namespace fastgpu::cli
