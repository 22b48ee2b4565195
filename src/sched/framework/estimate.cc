#include "sched/framework/estimate.h"

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

namespace fastgpu::sched {
namespace {

constexpr UnixMillis kNever = std::numeric_limits<UnixMillis>::max();

// Free whole GPUs per type and GPUs still set aside per reservation, as step functions of time over one axis:
// segment i is [t[i], t[i+1]) (the last one lasts for good).
class Profile {
 public:
  Profile(UnixMillis now, size_t types, size_t reservations)
      : t_{now}, free_(types, std::vector<int>{0}), held_(reservations, std::vector<int>{0}) {}

  size_t size() const { return t_.size(); }
  UnixMillis time(size_t i) const { return t_[i]; }
  int& free(size_t type, size_t seg) { return free_[type][seg]; }
  int& held(size_t r, size_t seg) { return held_[r][seg]; }
  // The segment holding `at` (at >= t[0]).
  size_t At(UnixMillis at) const {
    return static_cast<size_t>(std::upper_bound(t_.begin(), t_.end(), at) - t_.begin()) - 1;
  }
  // Makes `at` a breakpoint (the segment it falls in is split, both halves keeping its values); its index.
  size_t Split(UnixMillis at) {
    const size_t i = At(at);
    if (t_[i] == at) return i;
    t_.insert(t_.begin() + static_cast<std::ptrdiff_t>(i) + 1, at);
    for (auto& v : free_) v.insert(v.begin() + static_cast<std::ptrdiff_t>(i) + 1, v[i]);
    for (auto& v : held_) v.insert(v.begin() + static_cast<std::ptrdiff_t>(i) + 1, v[i]);
    return i + 1;
  }

 private:
  std::vector<UnixMillis> t_;
  std::vector<std::vector<int>> free_;
  std::vector<std::vector<int>> held_;
};

int64_t DurationMs(const JobRequest& j) {
  const int64_t s = j.runtime_limit_s > 0 ? j.runtime_limit_s : j.predicted_runtime_s;
  return s > 0 ? s * 1000 : -1;  // -1: for good
}

}  // namespace

UnixMillis ExpectedEnd(const RunningJob& job, UnixMillis now) {
  const int64_t s = job.runtime_limit_s > 0 ? job.runtime_limit_s : job.predicted_runtime_s;
  if (s <= 0) return 0;
  const UnixMillis from = job.started_at > 0 ? job.started_at : now;
  return std::max(now, from + s * 1000);
}

std::vector<StartEstimate> EstimateStarts(const ClusterSnapshot& cluster, std::span<const JobRequest> queue,
                                          size_t max_jobs) {
  const UnixMillis now = cluster.now;
  std::vector<StartEstimate> out(queue.size());
  for (size_t q = 0; q < queue.size(); ++q) out[q].job_id = queue[q].job_id;

  // When each GPU holding running work frees: the latest expected end of the jobs sharing it (kNever if unknown).
  std::unordered_map<std::string, UnixMillis> busy_until;
  for (const RunningJob& r : cluster.running) {
    const UnixMillis end = ExpectedEnd(r, now);
    for (const GpuShare& s : r.shares) {
      UnixMillis& u = busy_until[s.gpu_uuid];
      u = end == 0 || u == kNever ? kNever : std::max(u, end);
    }
  }
  // GPU groups: a type, on nodes with the same values of the labels queued jobs ask for (JobRequest::node_labels;
  // without such jobs, one group per type). Per group, when each usable GPU becomes wholly free; the largest share
  // free now on a partly used GPU (fractions).
  const size_t n = std::min(queue.size(), max_jobs);
  std::set<std::string> label_keys;
  for (size_t q = 0; q < n; ++q)
    for (const auto& [k, v] : queue[q].node_labels) label_keys.insert(k);
  using Labels = std::map<std::string, std::string>;
  std::map<std::pair<std::string, Labels>, size_t> group_index;
  std::vector<std::string> types;  // by group
  std::vector<Labels> labels;      // by group: the node labels named in label_keys
  std::vector<std::vector<UnixMillis>> frees;
  std::vector<int> usable;
  std::vector<std::pair<MilliGpu, MiB>> partly_free;
  for (const NodeView& node : cluster.nodes) {
    if (!node.healthy || node.draining) continue;
    Labels named;
    for (const std::string& k : label_keys)
      if (auto it = node.labels.find(k); it != node.labels.end()) named.emplace(k, it->second);
    for (const GpuView& g : node.gpus) {
      if (!g.healthy) continue;
      auto [it, added] = group_index.try_emplace({g.type, named}, types.size());
      if (added) {
        types.push_back(g.type);
        labels.push_back(named);
        frees.emplace_back();
        usable.push_back(0);
        partly_free.emplace_back(0, 0);
      }
      const size_t ti = it->second;
      ++usable[ti];
      UnixMillis at = now;
      if (g.free_milli < kMilliPerGpu) {
        auto b = busy_until.find(g.uuid);
        at = b == busy_until.end() ? kNever : b->second;
        if (g.free_milli > partly_free[ti].first) partly_free[ti] = {g.free_milli, g.free_memory_mib};
      }
      if (at != kNever) frees[ti].push_back(at);
    }
  }
  // The group a reservation counts against: the one of its type (any type: of all) with the most GPUs.
  auto main_group = [&](const std::string& type) -> std::optional<size_t> {
    std::optional<size_t> best;
    for (size_t t = 0; t < types.size(); ++t)
      if ((type.empty() || types[t] == type) && (!best || usable[t] > usable[*best])) best = t;
    return best;
  };
  std::vector<std::pair<const ReservationView*, size_t>> res;  // reservation, group it holds
  for (const ReservationView& r : cluster.reservations) {
    if (r.end <= now || r.gpus <= 0) continue;
    if (auto t = main_group(r.gpu_type)) res.emplace_back(&r, *t);
  }

  Profile p(now, types.size(), res.size());
  for (size_t t = 0; t < types.size(); ++t) {
    std::sort(frees[t].begin(), frees[t].end());
    for (UnixMillis at : frees[t]) p.Split(at);
  }
  for (const auto& [r, t] : res) {
    if (r->start > now) p.Split(r->start);
    p.Split(r->end);
  }
  for (size_t t = 0; t < types.size(); ++t) {
    size_t k = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      while (k < frees[t].size() && frees[t][k] <= p.time(i)) ++k;
      p.free(t, i) = static_cast<int>(k);
    }
  }
  for (size_t r = 0; r < res.size(); ++r) {
    for (size_t i = 0; i < p.size(); ++i) {
      const UnixMillis at = p.time(i);
      p.held(r, i) = at >= res[r].first->start && at < res[r].first->end ? res[r].first->gpus : 0;
    }
  }

  // GPUs of type t free at segment i for a job of `project`: free ones less those other projects' reservations
  // still keep.
  auto avail = [&](size_t t, size_t i, const std::string& project) {
    int a = p.free(t, i);
    for (size_t r = 0; r < res.size(); ++r)
      if (res[r].second == t && res[r].first->project != project) a -= p.held(r, i);
    return a;
  };
  // Earliest start at or after `from` with `need` GPUs of type t for `dur` ms (-1: for good); kNever if none.
  auto earliest = [&](size_t t, int need, UnixMillis from, int64_t dur, const std::string& project) -> UnixMillis {
    size_t i = p.At(from);
    UnixMillis s = from;
    size_t j = i;
    while (true) {
      if (avail(t, j, project) < need) {
        i = j + 1;
        if (i >= p.size()) return kNever;
        s = p.time(i);
        j = i;
        continue;
      }
      if (j + 1 >= p.size()) return s;
      if (dur >= 0 && p.time(j + 1) >= s + dur) return s;
      ++j;
    }
  };

  auto matches = [&](size_t t, const JobRequest& j) {
    return (j.gpu_type.empty() || types[t] == j.gpu_type) && HasLabels(labels[t], j.node_labels);
  };
  for (size_t q = 0; q < n; ++q) {
    const JobRequest& j = queue[q];
    const UnixMillis from = std::max(now, j.start_after);
    const int need = j.milli_per_gpu < kMilliPerGpu ? 1 : std::max(1, j.gpus) * std::max(1, j.nodes);
    // A fraction that fits a partly used GPU now starts now.
    bool fraction_now = false;
    if (j.milli_per_gpu < kMilliPerGpu && from == now) {
      for (size_t t = 0; t < types.size(); ++t) {
        if (!matches(t, j)) continue;
        if (partly_free[t].first >= j.milli_per_gpu && partly_free[t].second >= j.memory_mib) fraction_now = true;
      }
    }
    if (fraction_now) {
      out[q].at = now;
      continue;
    }
    const int64_t dur = DurationMs(j);
    UnixMillis best = kNever;
    size_t best_type = 0;
    int most = 0;
    for (size_t t = 0; t < types.size(); ++t) {
      if (!matches(t, j)) continue;
      most = std::max(most, usable[t]);
      if (usable[t] < need) continue;
      const UnixMillis s = earliest(t, need, from, dur, j.project);
      if (s < best) best = s, best_type = t;
    }
    if (best == kNever) {
      out[q].why = most < need ? "it needs " + std::to_string(need) + " GPUs" +
                                     (j.gpu_type.empty() ? std::string() : " of " + j.gpu_type) +
                                     (j.node_labels.empty() ? std::string()
                                                            : " on nodes labelled " + FormatLabels(j.node_labels)) +
                                     " and " +
                                     std::to_string(most) + " are usable now"
                               : "the GPUs it needs are held by running or earlier queued jobs with no runtime limit "
                                 "or prediction";
      continue;
    }
    out[q].at = best;
    // Its GPUs are taken for its expected run; inside its project's reservations they come out of what those keep.
    const size_t a = p.Split(best);
    const size_t b = dur >= 0 ? p.Split(best + dur) : p.size();
    for (size_t i = a; i < b; ++i) {
      p.free(best_type, i) -= need;
      int left = need;
      for (size_t r = 0; r < res.size() && left > 0; ++r) {
        if (res[r].second != best_type || res[r].first->project != j.project) continue;
        const int take = std::min(left, p.held(r, i));
        p.held(r, i) -= take;
        left -= take;
      }
    }
  }
  for (size_t q = n; q < queue.size(); ++q)
    out[q].why = "more than " + std::to_string(max_jobs) + " jobs are ahead of it in the queue";
  return out;
}

}  // namespace fastgpu::sched
