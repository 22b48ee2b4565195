#include "api/types.h"

#include <utility>

namespace fastgpu::api {
namespace {

// Strict UTF-8 (no overlong forms, surrogates or code points above U+10FFFF): what JSON can carry.
bool IsUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

std::string_view JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued: return "QUEUED";
    case JobState::kScheduled: return "SCHEDULED";
    case JobState::kStarting: return "STARTING";
    case JobState::kRunning: return "RUNNING";
    case JobState::kSucceeded: return "SUCCEEDED";
    case JobState::kFailed: return "FAILED";
    case JobState::kCancelled: return "CANCELLED";
    case JobState::kPreempted: return "PREEMPTED";
    case JobState::kLost: return "LOST";
  }
  return "UNKNOWN";
}

Result<JobState> ParseJobState(std::string_view s) {
  for (JobState st : {JobState::kQueued, JobState::kScheduled, JobState::kStarting, JobState::kRunning,
                      JobState::kSucceeded, JobState::kFailed, JobState::kCancelled, JobState::kPreempted,
                      JobState::kLost}) {
    if (JobStateName(st) == s) return st;
  }
  return InvalidArgument("unknown job state '" + std::string(s) +
                         "' (QUEUED, SCHEDULED, STARTING, RUNNING, SUCCEEDED, FAILED, CANCELLED, "
                         "PREEMPTED, LOST)");
}

bool IsTerminal(JobState s) {
  return s == JobState::kSucceeded || s == JobState::kFailed || s == JobState::kCancelled ||
         s == JobState::kLost;
}

std::string_view ProcessLayoutName(ProcessLayout p) {
  return p == ProcessLayout::kPerGpu ? "per-gpu" : "per-node";
}

Result<ProcessLayout> ParseProcessLayout(std::string_view s) {
  if (s == "per-node") return ProcessLayout::kPerNode;
  if (s == "per-gpu") return ProcessLayout::kPerGpu;
  return InvalidArgument("processes must be \"per-node\" (one process per node, the default) or \"per-gpu\" "
                         "(one process per GPU), not '" + std::string(s.substr(0, 64)) + "'");
}

Result<int> ParseCheckpointSignal(std::string_view text) {
  std::string_view name = text;
  if (name.rfind("SIG", 0) == 0) name.remove_prefix(3);
  for (const auto& [n, sig] : kCheckpointSignals) {
    if (name == n || text == std::to_string(sig)) return sig;
  }
  std::string allowed;
  for (const auto& [n, sig] : kCheckpointSignals) allowed += (allowed.empty() ? "SIG" : ", SIG") + std::string(n);
  return InvalidArgument("checkpoint signal '" + std::string(text.substr(0, 32)) + "' is not one a job may ask for (" +
                         allowed + ")");
}

std::string CheckpointSignalName(int sig) {
  for (const auto& [n, s] : kCheckpointSignals) {
    if (s == sig) return "SIG" + std::string(n);
  }
  return "signal " + std::to_string(sig);
}

Status ValidateJobSpec(const JobSpec& spec) {
  if (spec.command.empty() || spec.command[0].empty())
    return InvalidArgument("command is empty: give the program to run after '--'");
  if (spec.command.size() > 4096) return InvalidArgument("command has more than 4096 arguments");
  if (spec.gpus_milli < 0) return InvalidArgument("gpus must not be negative");
  if (spec.gpus_milli > 1024 * kMilliPerGpu) return InvalidArgument("gpus must be at most 1024");
  if (spec.gpus_milli > kMilliPerGpu && spec.gpus_milli % kMilliPerGpu != 0)
    return InvalidArgument("gpus above 1 must be a whole number (fractions are for a single GPU)");
  if (spec.memory_mib < 0) return InvalidArgument("memory must not be negative");
  if (spec.memory_mib > 16 * 1024 * 1024) return InvalidArgument("memory must be at most 16 TiB");
  if (spec.runtime_limit_s < 0) return InvalidArgument("runtime must not be negative");
  if (spec.priority < 0 || spec.priority > 100) return InvalidArgument("priority must be between 0 and 100");
  if (spec.max_retries < 0 || spec.max_retries > 100)
    return InvalidArgument("max_retries must be between 0 and 100");
  if (spec.processes == ProcessLayout::kPerGpu && (spec.gpus_milli < kMilliPerGpu || spec.gpus_milli % kMilliPerGpu != 0))
    return InvalidArgument("one process per GPU needs whole GPUs (at least 1), but the job asks for " +
                           FormatMilliGpu(spec.gpus_milli) + " (ask for whole GPUs, or run one process per node)");
  if (spec.name.size() > 256) return InvalidArgument("name is longer than 256 characters");
  // Specs travel as JSON, which holds only UTF-8 text. (Messages do not echo the bad bytes.)
  for (const auto& [field, text] : {std::pair<const char*, const std::string*>{"name", &spec.name},
                                    {"gpu_type", &spec.gpu_type}, {"workdir", &spec.workdir},
                                    {"project", &spec.project}}) {
    if (!IsUtf8(*text)) return InvalidArgument(std::string(field) + " is not valid UTF-8 text");
    // A NUL byte would silently cut the text where it reaches C strings (exec, paths, the agent).
    if (text->find('\0') != std::string::npos)
      return InvalidArgument(std::string(field) + " contains a NUL byte (\\u0000); remove it");
  }
  if (!spec.workdir.empty() && spec.workdir[0] != '/')
    return InvalidArgument("workdir '" + spec.workdir + "' is relative: give an absolute path on the node that runs the job");
  for (size_t i = 0; i < spec.command.size(); ++i) {
    if (!IsUtf8(spec.command[i]))
      return InvalidArgument("command argument " + std::to_string(i + 1) + " is not valid UTF-8 text");
  }
  for (const auto& [k, v] : spec.env) {
    if (!IsUtf8(k)) return InvalidArgument("an env variable name is not valid UTF-8 text");
    if (!IsUtf8(v)) return InvalidArgument("env value of '" + k + "' is not valid UTF-8 text");
  }
  if (!spec.sync.empty()) {
    if (spec.sync.size() != 64 || spec.sync.find_first_not_of("0123456789abcdef") != std::string::npos)
      return InvalidArgument("sync must be the SHA-256 of an uploaded code archive (64 lowercase hex digits)");
    if (!spec.workdir.empty())
      return InvalidArgument("sync and workdir cannot be combined: a synced job starts in its own copy of the code");
  }
  for (const auto& [k, v] : spec.env) {
    if (k.find('\0') != std::string::npos)
      return InvalidArgument("an env variable name contains a NUL byte (\\u0000); remove it");
    if (k.empty() || k.find('=') != std::string::npos)
      return InvalidArgument("env name '" + k + "' is not valid (it must be non-empty and contain no '=')");
    if (v.find('\0') != std::string::npos)
      return InvalidArgument("env value of '" + k + "' contains a NUL byte (\\u0000); remove it");
  }
  for (size_t i = 0; i < spec.command.size(); ++i) {
    if (spec.command[i].find('\0') != std::string::npos)
      return InvalidArgument("command argument " + std::to_string(i + 1) + " contains a NUL byte (\\u0000); remove it");
  }
  if (CheckpointSignalName(spec.checkpoint_signal).rfind("SIG", 0) != 0)
    return InvalidArgument("checkpoint signal " + std::to_string(spec.checkpoint_signal) + " is not allowed");
  if (spec.checkpoint_grace_s < 0 || spec.checkpoint_grace_s > 3600)
    return InvalidArgument("checkpoint grace must be between 0 s and 1 h");
  if (spec.begin_at < 0 || spec.deadline_at < 0) return InvalidArgument("begin and deadline must not be negative");
  if (spec.deadline_at > 0 && spec.deadline_at <= spec.begin_at)
    return InvalidArgument("the deadline (" + FormatTimestamp(spec.deadline_at) + ") is not after the begin time (" +
                           FormatTimestamp(spec.begin_at) + ")");
  if (spec.after.size() + spec.after_ok.size() > 64) return InvalidArgument("a job may depend on at most 64 jobs");
  for (const auto* list : {&spec.after, &spec.after_ok}) {
    for (const auto& id : *list) {
      bool ok = id.size() > 2 && id.size() <= 24 && id.rfind("j-", 0) == 0;
      for (size_t i = 2; ok && i < id.size(); ++i) ok = id[i] >= '0' && id[i] <= '9';
      if (!ok) return InvalidArgument("dependency '" + (IsUtf8(id) && id.find('\0') == std::string::npos ? id : std::string("?")) + "' is not a job id (j-123)");
    }
  }
  if (spec.secrets.size() > 64) return InvalidArgument("a job may name at most 64 secrets");
  for (const auto& name : spec.secrets) {
    bool ok = !name.empty() && name.size() <= 128 && ((name[0] >= 'A' && name[0] <= 'Z') || name[0] == '_');
    for (char c : name) ok = ok && ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_');
    if (!ok) return InvalidArgument("secret name '" + name + "' is not valid (use A-Z, 0-9 and '_')");
    if (spec.env.count(name)) return InvalidArgument("'" + name + "' is both in env and in secrets");
  }
  return Status::Ok();
}

}  // namespace fastgpu::api
