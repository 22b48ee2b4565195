// Service's part of GET /metrics: the control plane's gauges read at scrape time (MetricsSnapshot) and the
// counters and histograms kept as jobs change (NoteTransitionLocked, called by Commit).
#include <algorithm>
#include <iterator>

#include "server/service.h"

namespace fastgpu::server {

using api::Job;
using api::JobState;

void Service::NoteTransitionLocked(const Job& after) {
  auto prev = jobs_.find(after.id);
  const JobState before = prev != jobs_.end() ? prev->second.state : JobState::kQueued;
  if (prev != jobs_.end() && before == after.state) return;  // not a change of state
  const UnixMillis now = clock_.NowMillis();
  switch (after.state) {
    case JobState::kQueued:
      if (prev != jobs_.end()) requeued_at_[after.id] = now;  // preempted, migrated or retried
      break;
    case JobState::kScheduled: {
      UnixMillis since = after.created_at;
      if (auto r = requeued_at_.find(after.id); r != requeued_at_.end()) {
        since = r->second;
        requeued_at_.erase(r);
      }
      if (since > 0) metrics_.queue_delay.Observe(static_cast<double>(std::max<int64_t>(0, now - since)) / 1000.0);
      break;
    }
    case JobState::kRunning:
      // Submit -> running of the first attempt (a retry's wait is counted by the queueing delay).
      if (after.attempt <= 1 && after.created_at > 0) {
        metrics_.submit_to_running.Observe(static_cast<double>(std::max<int64_t>(0, now - after.created_at)) / 1000.0);
      }
      break;
    case JobState::kStarting:
      break;
    default:  // an end (SUCCEEDED, FAILED, CANCELLED, LOST) or PREEMPTED
      metrics_.CountEnd(std::string(api::JobStateName(after.state)), after.spec.project);
      if (api::IsTerminal(after.state) && after.state != JobState::kLost) requeued_at_.erase(after.id);
      break;
  }
}

void Service::NoteGpuUsageLocked(const std::string& node, const std::vector<api::Gpu>& readings, int64_t since_ms) {
  if (readings.empty() || active_.empty()) return;
  std::unordered_map<std::string, const api::Gpu*> by_uuid;
  for (const auto& g : readings) by_uuid.emplace(g.uuid, &g);
  // A node silent for long (restarted, partitioned): its power is known only around the heartbeats.
  const int64_t interval_ms = std::clamp<int64_t>(since_ms, 0, 30'000);
  for (const auto& id : active_) {
    Job& j = jobs_.at(id);
    if (j.state != JobState::kRunning || !JobOnNode(j, node)) continue;
    for (const auto& uuid : j.assigned_gpus) {
      auto r = by_uuid.find(uuid);
      if (r == by_uuid.end()) continue;
      const api::Gpu& g = *r->second;
      auto u = std::find_if(j.gpu_usage.begin(), j.gpu_usage.end(), [&](const api::JobGpuUsage& x) { return x.uuid == uuid; });
      if (u == j.gpu_usage.end()) {
        j.gpu_usage.push_back({});
        u = std::prev(j.gpu_usage.end());
        u->uuid = uuid;
        u->node = node;
      }
      ++u->samples;
      u->util_pct_sum += g.utilization_pct;
      u->peak_util_pct = std::max(u->peak_util_pct, g.utilization_pct);
      u->peak_memory_mib = std::max(u->peak_memory_mib, g.memory_used_mib);
      u->energy_mj += int64_t{g.power_mw} * interval_ms / 1000;  // mW x ms = microjoules
    }
  }
}

MetricsView Service::MetricsSnapshot() const {
  MetricsView v;
  std::lock_guard lock(mu_);
  // The job on each GPU (the first in job order when several share it) and its project.
  std::unordered_map<std::string, const Job*> on_gpu;
  std::unordered_map<std::string, MilliGpu> allocated;
  for (const auto& id : active_) {
    const Job& j = jobs_.at(id);
    for (const auto& uuid : j.assigned_gpus) {
      allocated[uuid] += std::min<MilliGpu>(j.spec.gpus_milli, kMilliPerGpu);
      auto [it, inserted] = on_gpu.emplace(uuid, &j);
      if (!inserted && JobNumber(j.id) < JobNumber(it->second->id)) it->second = &j;
    }
  }
  for (const auto& [name, ns] : nodes_) {
    const bool up = ns.registered && ns.node.healthy;
    v.nodes.push_back({name, up, ns.cordoned, ns.draining, ns.node.simulated, ns.node.last_heartbeat,
                       static_cast<int>(ns.gpus.size())});
    for (const auto& g : ns.gpus) {
      MetricsView::GpuRow row;
      row.gpu = g;
      row.gpu.node = name;
      row.node_up = up;
      if (auto a = allocated.find(g.uuid); a != allocated.end()) row.allocated_milli = a->second;
      if (auto it = on_gpu.find(g.uuid); it != on_gpu.end()) {
        row.job = it->second->id;
        row.project = it->second->spec.project;
      }
      v.gpus.push_back(std::move(row));
    }
  }
  for (const auto& [id, j] : jobs_) {
    ++v.jobs[{std::string(api::JobStateName(j.state)), j.spec.project}];
    if (j.state == JobState::kQueued && j.spec.array.empty()) {  // an array job itself asks for nothing
      auto& p = v.pending[j.spec.gpu_type.empty() ? std::string("any") : j.spec.gpu_type];
      ++p.jobs;
      p.milli += j.spec.gpus_milli;
    }
  }
  return v;
}

}  // namespace fastgpu::server
