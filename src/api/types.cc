#include "api/types.h"

namespace fastgpu::api {

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
  if (spec.name.size() > 256) return InvalidArgument("name is longer than 256 characters");
  for (const auto& [k, v] : spec.env) {
    if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
      return InvalidArgument("env name '" + k + "' is not valid");
    if (v.find('\0') != std::string::npos) return InvalidArgument("env value of '" + k + "' contains NUL");
  }
  for (const auto& a : spec.command)
    if (a.find('\0') != std::string::npos) return InvalidArgument("command argument contains NUL");
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
