#include "cli/render.h"

#include <algorithm>
#include <cstdio>
#include <map>

#include "cli/table.h"
#include "common/quantity.h"

namespace fastgpu::cli {
namespace {

Color StateColor(api::JobState s) {
  switch (s) {
    case api::JobState::kSucceeded: return Color::kGreen;
    case api::JobState::kRunning: return Color::kCyan;
    case api::JobState::kFailed:
    case api::JobState::kLost: return Color::kRed;
    case api::JobState::kCancelled: return Color::kDim;
    case api::JobState::kQueued:
    case api::JobState::kPreempted: return Color::kYellow;
    case api::JobState::kScheduled:
    case api::JobState::kStarting: return Color::kBlue;
  }
  return Color::kNone;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string JobDuration(const api::Job& j, UnixMillis now) {
  if (j.started_at <= 0) return "-";
  UnixMillis end = j.finished_at > 0 ? j.finished_at : now;
  return ShortDuration(end - j.started_at);
}

std::string Age(UnixMillis t, UnixMillis now) {
  if (t <= 0) return "-";
  return ShortDuration(std::max<int64_t>(0, now - t));
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

std::string QuoteArg(const std::string& a) {
  bool plain = !a.empty();
  for (char c : a) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./=:,@%+").find(c) != std::string_view::npos))
      plain = false;
  }
  if (plain) return a;
  std::string out = "'";
  for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// A queued job's expected start: "now", "in 2h 5m" or "unknown" ("-" for other states).
std::string ExpectedStart(const api::Job& j, UnixMillis now) {
  if (j.state != api::JobState::kQueued) return "-";
  if (j.expected_start_at <= 0) return "unknown";
  if (j.expected_start_at <= now) return "now";
  return "in " + ShortDuration(j.expected_start_at - now);
}

// A job array's tasks, consecutive tasks in the same state (and with the same reason) on one row:
// "0-41  j-13..j-54  SUCCEEDED  exit code 0".
std::string RenderArrayTasks(const std::vector<api::ArrayTask>& tasks, bool color) {
  Table t({"TASKS", "IDS", "STATE", "REASON"});
  for (size_t i = 0; i < tasks.size();) {
    size_t k = i + 1;
    while (k < tasks.size() && tasks[k].state == tasks[i].state && tasks[k].reason == tasks[i].reason) ++k;
    const api::ArrayTask& a = tasks[i];
    const api::ArrayTask& b = tasks[k - 1];
    const bool one = k == i + 1;
    const std::string indices = one ? std::to_string(a.index)
                                    : std::to_string(a.index) + (k == i + 2 ? "," : "-") + std::to_string(b.index);
    t.AddRow({indices + (one ? "" : " (" + std::to_string(k - i) + ")"), one ? a.id : a.id + ".." + b.id,
              Cell(std::string(api::JobStateName(a.state)), StateColor(a.state)), OrDash(Truncate(a.reason, 60))});
    i = k;
  }
  return t.Render(color);
}

}  // namespace

std::string RenderJobList(const std::vector<api::Job>& jobs, UnixMillis now, bool color) {
  Table t({"ID", "NAME", "STATE", "GPUS", "TYPE", "NODE", "AGE", "DURATION", "START", "REASON"});
  for (const auto& j : jobs) {
    t.AddRow({j.id, OrDash(Truncate(j.spec.name, 24)), Cell(std::string(api::JobStateName(j.state)), StateColor(j.state)),
              FormatMilliGpu(j.spec.gpus_milli), j.spec.gpu_type.empty() ? "any" : j.spec.gpu_type, OrDash(j.node),
              Age(j.created_at, now), JobDuration(j, now), ExpectedStart(j, now), Truncate(j.reason, 48)});
  }
  return t.Render(color);
}

std::string RenderJobDetail(const api::Job& j, UnixMillis now, bool color) {
  std::vector<std::pair<std::string, Cell>> kv;
  kv.emplace_back("ID", j.id);
  kv.emplace_back("Name", OrDash(j.spec.name));
  kv.emplace_back("State", Cell(std::string(api::JobStateName(j.state)), StateColor(j.state)));
  if (!j.reason.empty()) kv.emplace_back("Reason", j.reason);
  if (j.spec.begin_at > 0) kv.emplace_back("Begin", FormatTimestamp(j.spec.begin_at) + " (not before)");
  if (j.spec.deadline_at > 0) kv.emplace_back("Deadline", FormatTimestamp(j.spec.deadline_at));
  if (j.state == api::JobState::kQueued) {
    if (j.expected_start_at > 0) {
      kv.emplace_back("Expected start", FormatTimestamp(j.expected_start_at) + " (" + ExpectedStart(j, now) + ")");
    } else {
      kv.emplace_back("Expected start",
                      "unknown" + (j.expected_start_note.empty() ? std::string() : ": " + j.expected_start_note));
    }
  }
  if (!j.deadline_warning.empty()) kv.emplace_back("Warning", Cell(j.deadline_warning, Color::kYellow));
  std::vector<std::string> quoted;
  for (const auto& a : j.spec.command) quoted.push_back(QuoteArg(a));
  kv.emplace_back("Command", Join(quoted, " "));
  kv.emplace_back("GPUs", FormatMilliGpu(j.spec.gpus_milli) +
                              (j.spec.gpu_type.empty() ? std::string(" (any type)") : " x " + j.spec.gpu_type));
  if (j.spec.memory_mib > 0) kv.emplace_back("GPU memory", std::to_string(j.spec.memory_mib) + " MiB per GPU");
  kv.emplace_back("Priority", std::to_string(j.spec.priority));
  kv.emplace_back("Project", j.spec.project);
  if (!j.user.empty()) kv.emplace_back("User", j.user);
  kv.emplace_back("Runtime limit", j.spec.runtime_limit_s > 0 ? FormatDuration(j.spec.runtime_limit_s) : "none");
  kv.emplace_back("Max retries", std::to_string(j.spec.max_retries));
  if (j.spec.preemptible) {
    kv.emplace_back("Preemptible",
                    j.spec.checkpoint_grace_s > 0
                        ? "yes: " + api::CheckpointSignalName(j.spec.checkpoint_signal) + ", then SIGTERM after " +
                              FormatDuration(j.spec.checkpoint_grace_s)
                        : std::string("yes: SIGTERM at once (no checkpoint grace)"));
  }
  if (j.attained_gpu_ms > 0)
    kv.emplace_back("Earlier service", FormatDuration((j.attained_gpu_ms + 999) / 1000) + " of GPU time (preempted or "
                                                                                     "migrated attempts)");
  const bool per_gpu = j.spec.processes == api::ProcessLayout::kPerGpu;
  if (per_gpu) kv.emplace_back("Processes", "one per GPU (RANK counted per process)");
  if (!j.spec.workdir.empty()) kv.emplace_back("Workdir", j.spec.workdir);
  if (!j.spec.image.empty()) kv.emplace_back("Image", j.spec.image);
  if (!j.spec.array.empty()) {
    std::map<std::string, int> counts;
    for (const auto& t : j.array_tasks) ++counts[std::string(api::JobStateName(t.state))];
    std::vector<std::string> parts;
    for (const auto& [state, n] : counts) parts.push_back(std::to_string(n) + " " + state);
    kv.emplace_back("Array", j.spec.array + ": " + std::to_string(j.array_tasks.size()) + " tasks (" +
                                 Join(parts, ", ") + ")");
  }
  if (!j.array_parent.empty())
    kv.emplace_back("Array task", std::to_string(j.array_index) + " of array " + j.array_parent);
  for (const auto& d : j.spec.after) kv.emplace_back("After", d + " (ended)");
  for (const auto& d : j.spec.after_ok) kv.emplace_back("After", d + " (succeeded)");
  for (const auto& [k, v] : j.spec.env) kv.emplace_back("Env", k + "=" + v);
  kv.emplace_back(j.members.empty() ? "Node" : "Nodes",
                  j.members.empty() ? OrDash(j.node)
                                    : std::to_string(j.members.size()) +
                                          (per_gpu ? " (one process per GPU; node rank 0 on " : " (one process each; rank 0 on ") +
                                          j.node + ")");
  if (!j.assigned_gpus.empty()) {
    std::vector<std::string> g;
    for (size_t i = 0; i < j.assigned_gpus.size(); ++i) {
      std::string idx = i < j.assigned_gpu_indices.size() ? std::to_string(j.assigned_gpu_indices[i]) + " " : "";
      g.push_back(idx + "(" + j.assigned_gpus[i] + ")");
    }
    kv.emplace_back("Assigned GPUs", Join(g, ", "));
  }
  // A multi-node job: one line per member (node rank), with its GPUs and how its process did.
  for (const auto& m : j.members) {
    std::vector<std::string> g;
    for (size_t i = 0; i < m.gpu_uuids.size(); ++i) {
      std::string idx = i < m.gpu_indices.size() ? std::to_string(m.gpu_indices[i]) + " " : "";
      g.push_back(idx + "(" + m.gpu_uuids[i] + ")");
    }
    std::string how = m.ended ? (m.reason.empty() ? "ended, exit code 0" : "ended, " + m.reason)
                              : m.started ? "running, pid " + std::to_string(m.pid) : "not started";
    kv.emplace_back("Rank " + std::to_string(m.rank), m.node + ": " + Join(g, ", ") + "; " + how);
  }
  kv.emplace_back("Created", FormatTimestamp(j.created_at) + " (" + Age(j.created_at, now) + " ago)");
  if (j.started_at > 0) kv.emplace_back("Started", FormatTimestamp(j.started_at));
  if (j.finished_at > 0) kv.emplace_back("Finished", FormatTimestamp(j.finished_at));
  if (j.started_at > 0) kv.emplace_back("Duration", JobDuration(j, now));
  if (j.exit_code) kv.emplace_back("Exit code", std::to_string(*j.exit_code));
  if (j.signal) kv.emplace_back("Signal", std::to_string(*j.signal));
  if (j.attempt > 0) kv.emplace_back("Attempt", std::to_string(j.attempt));
  // What the run did with its GPUs (from its node's heartbeats; docs/monitoring.md).
  for (const auto& u : j.gpu_usage) {
    char line[160];
    std::snprintf(line, sizeof line, "util avg %d%% peak %d%%, memory peak %.1f GiB, energy %.1f kJ (%lld samples)",
                  u.AverageUtilPct(), u.peak_util_pct, static_cast<double>(u.peak_memory_mib) / 1024.0,
                  static_cast<double>(u.energy_mj) / 1e6, static_cast<long long>(u.samples));
    kv.emplace_back("GPU " + u.uuid.substr(0, 12) + (u.node.empty() ? "" : " on " + u.node), std::string(line));
  }

  size_t w = 0;
  for (const auto& [k, v] : kv) w = std::max(w, k.size());
  std::string out;
  for (const auto& [k, v] : kv) {
    out += k + ":" + std::string(w - k.size() + 2, ' ');
    out += Paint(v.text, v.color, color) + "\n";
  }
  if (!j.array_tasks.empty()) out += "\nTasks:\n" + RenderArrayTasks(j.array_tasks, color);
  return out;
}

std::string RenderEvents(const std::vector<api::JobEvent>& events, bool color) {
  Table t({"SEQ", "TIME", "FROM", "TO", "ACTOR", "REASON"});
  for (const auto& e : events) {
    auto to = api::ParseJobState(e.to);
    t.AddRow({std::to_string(e.seq), FormatTimestamp(e.at), OrDash(e.from),
              Cell(e.to, to.ok() ? StateColor(*to) : Color::kNone), OrDash(e.actor), Truncate(e.reason, 60)});
  }
  return t.Render(color);
}

std::string RenderGpuTop(const std::vector<api::Gpu>& gpus, bool color) {
  Table t({"NODE", "GPU", "TYPE", "UTIL", "MEM", "MEM USED", "TEMP", "POWER", "SM MHZ", "XID", "HEALTH", "JOB"});
  for (const auto& g : gpus) {
    const int64_t mem_pct = g.memory_total_mib > 0 ? g.memory_used_mib * 100 / g.memory_total_mib : 0;
    std::string type = g.type.empty() ? g.name : g.type;
    if (g.simulated) type += " (sim)";
    t.AddRow({g.node, std::to_string(g.index), Cell(type, g.simulated ? Color::kYellow : Color::kNone),
              Cell(std::to_string(g.utilization_pct) + "%", g.utilization_pct >= 90 ? Color::kGreen : Color::kNone),
              std::to_string(g.memory_util_pct) + "%",
              std::to_string(g.memory_used_mib) + " MiB (" + std::to_string(mem_pct) + "%)",
              Cell(std::to_string(g.temperature_c) + "C", g.temperature_c >= 85 ? Color::kRed : Color::kNone),
              std::to_string(g.power_mw / 1000) + "W", std::to_string(g.sm_clock_mhz),
              Cell(g.last_xid != 0 ? std::to_string(g.last_xid) : "-", g.last_xid != 0 ? Color::kRed : Color::kNone),
              Cell(g.healthy ? "ok" : "unhealthy", g.healthy ? Color::kGreen : Color::kRed),
              g.jobs.empty() ? "-" : Truncate(Join(g.jobs, ","), 40)});
  }
  return t.Render(color);
}

std::string RenderGpuList(const std::vector<api::Gpu>& gpus, bool color) {
  Table t({"NODE", "INDEX", "UUID", "TYPE", "HEALTH", "MEMORY", "UTIL", "TEMP", "POWER", "ALLOC", "JOBS"});
  for (const auto& g : gpus) {
    std::string type = g.type.empty() ? g.name : g.type;
    if (g.simulated) type += " (simulated)";
    t.AddRow({g.node, std::to_string(g.index), g.uuid, Cell(type, g.simulated ? Color::kYellow : Color::kNone),
              Cell(g.healthy ? "ok" : "unhealthy", g.healthy ? Color::kGreen : Color::kRed),
              std::to_string(g.memory_used_mib) + "/" + std::to_string(g.memory_total_mib) + " MiB",
              std::to_string(g.utilization_pct) + "%", std::to_string(g.temperature_c) + "C",
              std::to_string(g.power_mw / 1000) + "W", FormatMilliGpu(g.allocated_milli),
              g.jobs.empty() ? "-" : Truncate(Join(g.jobs, ","), 40)});
  }
  return t.Render(color);
}

std::string RenderNodeList(const std::vector<api::Node>& nodes, UnixMillis now, bool color) {
  Table t({"NAME", "STATUS", "GPUS", "KIND", "ADDRESS", "HEARTBEAT", "LABELS"});
  for (const auto& n : nodes) {
    std::string status = !n.healthy ? "unhealthy" : n.draining ? "draining" : "ready";
    Color sc = !n.healthy ? Color::kRed : n.draining ? Color::kYellow : Color::kGreen;
    std::vector<std::string> labels;
    for (const auto& [k, v] : n.labels) labels.push_back(k + "=" + v);
    t.AddRow({n.name, Cell(status, sc), std::to_string(n.gpu_count),
              Cell(n.simulated ? "simulated" : "physical", n.simulated ? Color::kYellow : Color::kNone),
              OrDash(n.address), n.last_heartbeat > 0 ? Age(n.last_heartbeat, now) + " ago" : "-",
              labels.empty() ? "-" : Truncate(Join(labels, ","), 60)});
  }
  return t.Render(color);
}

std::string JobOutcomeLine(const api::Job& j) {
  std::string line = j.id + " " + std::string(api::JobStateName(j.state));
  if (j.exit_code) {
    line += " (exit code " + std::to_string(*j.exit_code) + ")";
  } else if (j.signal) {
    line += " (signal " + std::to_string(*j.signal) + ")";
  }
  // The reason often repeats the exit code ("exit code 0"); say it once.
  const bool repeats = j.exit_code && j.reason == "exit code " + std::to_string(*j.exit_code);
  if (!j.reason.empty() && !repeats) line += ": " + Truncate(j.reason, 200);
  return line;
}

}  // namespace fastgpu::cli
