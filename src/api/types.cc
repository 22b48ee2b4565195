#include "api/types.h"

#include <cctype>

#include <algorithm>
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

Status ValidateImageName(std::string_view image) {
  const std::string shown = IsUtf8(std::string(image)) && image.find('\0') == std::string_view::npos
                                ? std::string(image.substr(0, 80))
                                : std::string("(not text)");
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("image '" + shown + "' is not an image name: " + why +
                           " (e.g. python:3.11, docker.io/library/ubuntu:22.04 or localhost/train:1)");
  };
  if (image.empty()) return bad("it is empty");
  if (image.size() > 255) return bad("it is longer than 255 characters");
  // name[:tag][@digest]; the name is lowercase components separated by '/', the first may be a host[:port].
  std::string_view rest = image;
  std::string_view digest;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    const size_t colon = digest.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 >= digest.size()) return bad("the digest is not ALGORITHM:HEX");
    for (char c : digest.substr(colon + 1))
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad("the digest is not ALGORITHM:HEX");
  }
  std::string_view tag;
  if (size_t slash = rest.rfind('/'), colon = rest.rfind(':');
      colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    tag = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
    if (tag.empty() || tag.size() > 128) return bad("the tag after ':' must be 1 to 128 characters");
    if (!std::isalnum(static_cast<unsigned char>(tag[0])) && tag[0] != '_') return bad("the tag must start with a letter, digit or '_'");
    for (char c : tag)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
        return bad("the tag may hold only letters, digits, '_', '.' and '-'");
  }
  if (rest.empty()) return bad("the repository name is missing");
  size_t start = 0;
  bool first = true;
  while (start <= rest.size()) {
    size_t end = rest.find('/', start);
    if (end == std::string_view::npos) end = rest.size();
    std::string_view part = rest.substr(start, end - start);
    if (part.empty()) return bad("a path component is empty");
    const bool host = first && end < rest.size() &&
                      (part.find('.') != std::string_view::npos || part.find(':') != std::string_view::npos ||
                       part == "localhost");
    for (size_t i = 0; i < part.size(); ++i) {
      const char c = part[i];
      const bool lower = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      const bool sep = c == '.' || c == '_' || c == '-';
      if (host ? !(lower || sep || c == ':' || (c >= 'A' && c <= 'Z')) : !(lower || sep))
        return bad(host ? "the registry host may hold only letters, digits, '.', '-' and ':PORT'"
                        : "the repository may hold only lowercase letters, digits, '.', '_', '-' and '/'");
      if ((i == 0 || i + 1 == part.size()) && !lower && !(host && c >= 'A' && c <= 'Z'))
        return bad("each path component must start and end with a lowercase letter or digit");
    }
    first = false;
    start = end + 1;
  }
  return Status::Ok();
}

Result<ArraySpec> ParseArraySpec(std::string_view text) {
  const std::string shown(text.substr(0, 80));
  const auto bad = [&](const std::string& why) {
    return InvalidArgument("array '" + shown + "': " + why + " (e.g. 0-99, 0-99%8, 1,3,5-7 or 0-99:2)");
  };
  ArraySpec out;
  std::string_view list = text;
  if (size_t pct = text.find('%'); pct != std::string_view::npos) {
    list = text.substr(0, pct);
    std::string_view lim = text.substr(pct + 1);
    if (lim.empty() || lim.size() > 6 || lim.find_first_not_of("0123456789") != std::string_view::npos)
      return bad("the limit after '%' must be a whole number");
    out.limit = std::stoi(std::string(lim));
    if (out.limit < 1) return bad("the limit after '%' must be at least 1");
  }
  if (list.empty()) return bad("no indices");
  const auto number = [&](std::string_view t, int* v) -> Status {
    if (t.empty() || t.size() > 7 || t.find_first_not_of("0123456789") != std::string_view::npos)
      return bad("'" + std::string(t) + "' is not an index (a whole number from 0)");
    *v = std::stoi(std::string(t));
    if (*v > kMaxArrayIndex) return bad("indices must be at most " + std::to_string(kMaxArrayIndex));
    return Status::Ok();
  };
  std::vector<int> all;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    std::string_view part = list.substr(start, end - start);
    int step = 1;
    if (size_t colon = part.find(':'); colon != std::string_view::npos) {
      RETURN_IF_ERROR(number(part.substr(colon + 1), &step));
      if (step < 1) return bad("the step after ':' must be at least 1");
      part = part.substr(0, colon);
    }
    int lo = 0, hi = 0;
    if (size_t dash = part.find('-'); dash != std::string_view::npos) {
      RETURN_IF_ERROR(number(part.substr(0, dash), &lo));
      RETURN_IF_ERROR(number(part.substr(dash + 1), &hi));
      if (hi < lo) return bad("the range " + std::string(part) + " ends before it starts");
    } else {
      if (step != 1) return bad("a step needs a range (0-99:2)");
      RETURN_IF_ERROR(number(part, &lo));
      hi = lo;
    }
    for (int64_t i = lo; i <= hi; i += step) {
      all.push_back(static_cast<int>(i));
      if (all.size() > static_cast<size_t>(kMaxArrayTasks))
        return bad("more than " + std::to_string(kMaxArrayTasks) + " tasks");
    }
    start = end + 1;
  }
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  out.indices = std::move(all);
  return out;
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
  if (!spec.image.empty()) RETURN_IF_ERROR(ValidateImageName(spec.image));
  if (!spec.array.empty()) RETURN_IF_ERROR(ParseArraySpec(spec.array).status());
  if (!spec.image.empty() && spec.processes == ProcessLayout::kPerGpu)
    return InvalidArgument("one process per GPU is not available in a container (image '" + spec.image +
                           "'): start the ranks from the container's command (e.g. torchrun) instead");
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

void CopyGpuReadings(const Gpu& from, Gpu& to) {
  to.memory_used_mib = from.memory_used_mib;
  to.utilization_pct = from.utilization_pct;
  to.temperature_c = from.temperature_c;
  to.power_mw = from.power_mw;
  to.healthy = from.healthy;
  to.memory_util_pct = from.memory_util_pct;
  to.sm_clock_mhz = from.sm_clock_mhz;
  to.power_limit_mw = from.power_limit_mw;
  to.energy_mj = from.energy_mj;
  to.ecc_corrected_volatile = from.ecc_corrected_volatile;
  to.ecc_uncorrected_volatile = from.ecc_uncorrected_volatile;
  to.ecc_corrected_aggregate = from.ecc_corrected_aggregate;
  to.ecc_uncorrected_aggregate = from.ecc_uncorrected_aggregate;
  to.remapped_rows_correctable = from.remapped_rows_correctable;
  to.remapped_rows_uncorrectable = from.remapped_rows_uncorrectable;
  to.remap_pending = from.remap_pending;
  to.remap_failure = from.remap_failure;
  to.throttle_reasons = from.throttle_reasons;
  to.last_xid = from.last_xid;
  to.xid_count = from.xid_count;
}

}  // namespace fastgpu::api
