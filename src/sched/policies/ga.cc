#include <algorithm>
#include <limits>
#include <map>
#include <numeric>

#include "sched/framework/queue_sort.h"
#include "sched/framework/round.h"
#include "sched/policies/policies.h"

namespace fastgpu::sched {
namespace {

// splitmix64: small, seedable, identical on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  size_t Below(size_t n) { return n == 0 ? 0 : static_cast<size_t>(Next() % n); }

 private:
  uint64_t s_;
};

class GaScheduler final : public Scheduler {
 public:
  GaScheduler(const SchedulerOptions& o, PlacementKind k) : options_(o), kind_(k) {}
  std::string Name() const override { return "ga/" + options_.placement; }

  using Genome = std::vector<uint32_t>;  // positions into the window

  // Places the window in genome order, scores the result, and undoes it. Positions whose job does
  // not fit the round's starting state (`fits[pos] == 0`) cannot fit after other placements either,
  // so they are not tried; nor is anything once no GPU has any free share left.
  int64_t Fitness(Round& r, const std::vector<uint32_t>& window, const std::vector<char>& fits, const Genome& g,
                  std::vector<Placement>* scratch) const {
    ClusterState& s = r.state();
    scratch->resize(window.size());
    std::vector<char> placed(window.size(), 0);
    int64_t horizon = 0;
    for (uint32_t w : window) horizon = std::max(horizon, EstimatedRuntimeS(r.job(w), options_.default_runtime_s));
    for (uint32_t pos : g) {
      if (!fits[pos]) continue;
      if (s.free_whole_gpus() == 0 && s.partly_free_gpus() == 0) break;
      Placement& p = (*scratch)[pos];
      if (r.Find(window[pos], &p)) {
        Commit(s, p);
        placed[pos] = 1;
      }
    }
    int64_t completion = 0;
    for (size_t pos = 0; pos < window.size(); ++pos) {
      const int64_t rt = EstimatedRuntimeS(r.job(window[pos]), options_.default_runtime_s);
      completion += placed[pos] ? rt : horizon + rt;
    }
    completion /= static_cast<int64_t>(std::max<size_t>(window.size(), 1));
    // Node load variance in percent^2 over usable nodes.
    int64_t n = 0, sum = 0, sum2 = 0;
    for (int i = 0; i < s.num_nodes(); ++i) {
      const auto& node = s.node(i);
      if (node.capacity_milli == 0) continue;
      const int64_t pct = (node.capacity_milli - node.free_milli) * 100 / node.capacity_milli;
      ++n;
      sum += pct;
      sum2 += pct * pct;
    }
    const int64_t variance = n == 0 ? 0 : (sum2 - sum * sum / n) / n;
    for (size_t k = g.size(); k-- > 0;) {
      if (placed[g[k]]) Undo(s, (*scratch)[g[k]]);
    }
    return options_.ga_completion_weight * completion + options_.ga_variance_weight * variance;
  }

  static Genome Crossover(const Genome& a, const Genome& b, Rng& rng) {
    const size_t n = a.size();
    size_t lo = rng.Below(n), hi = rng.Below(n);
    if (lo > hi) std::swap(lo, hi);
    Genome child(n, std::numeric_limits<uint32_t>::max());
    std::vector<char> used(n, 0);
    for (size_t i = lo; i <= hi; ++i) {
      child[i] = a[i];
      used[a[i]] = 1;
    }
    size_t out = (hi + 1) % n;
    for (size_t k = 0; k < n; ++k) {
      const uint32_t v = b[(hi + 1 + k) % n];
      if (used[v]) continue;
      child[out] = v;
      used[v] = 1;
      out = (out + 1) % n;
    }
    return child;
  }

  Decisions Schedule(const ClusterSnapshot& cluster, std::span<const JobRequest> queue) override {
    Round r(cluster, queue, options_, kind_);
    std::vector<uint32_t> order = PriorityOrder(queue, cluster.now, options_.aging_ms_per_point);
    std::vector<uint32_t> window;
    size_t rest = 0;
    for (; rest < order.size() && static_cast<int>(window.size()) < options_.ga_window; ++rest) {
      if (r.Admit(order[rest])) window.push_back(order[rest]);
    }
    // Jobs of the window that fit the current free GPUs on their own. With at most one, every order
    // places the same jobs the same way, all fitness values are equal and the plain priority order
    // wins, so the search is skipped (same result).
    std::vector<char> fits(window.size(), 0);
    size_t fitting = 0;
    {
      Placement probe;
      for (size_t k = 0; k < window.size(); ++k) {
        fits[k] = r.Find(window[k], &probe) ? 1 : 0;
        fitting += static_cast<size_t>(fits[k]);
      }
    }
    if (window.size() > 1 && fitting >= 2) {
      // Fitness depends only on the relative order of the jobs that can fit: memoised on it.
      std::map<std::vector<uint32_t>, int64_t> memo;
      std::vector<uint32_t> key;
      auto fitness = [&](const Genome& g, std::vector<Placement>* scratch) {
        key.clear();
        for (uint32_t pos : g) {
          if (fits[pos]) key.push_back(pos);
        }
        auto it = memo.find(key);
        if (it != memo.end()) return it->second;
        const int64_t f = Fitness(r, window, fits, g, scratch);
        memo.emplace(key, f);
        return f;
      };
      Rng rng(options_.seed ^ static_cast<uint64_t>(cluster.now) * 0x2545f4914f6cdd1dULL);
      const size_t n = window.size();
      const size_t pop_size = static_cast<size_t>(std::max(2, options_.ga_population));
      std::vector<Genome> pop(pop_size, Genome(n));
      std::iota(pop[0].begin(), pop[0].end(), 0u);  // the plain priority order is always a candidate
      for (size_t i = 1; i < pop_size; ++i) {
        pop[i] = pop[0];
        for (size_t k = n - 1; k > 0; --k) std::swap(pop[i][k], pop[i][rng.Below(k + 1)]);
      }
      std::vector<Placement> scratch;
      std::vector<int64_t> fit(pop_size);
      for (size_t i = 0; i < pop_size; ++i) fit[i] = fitness(pop[i], &scratch);
      for (int gen = 0; gen < options_.ga_generations; ++gen) {
        std::vector<size_t> rank(pop_size);
        std::iota(rank.begin(), rank.end(), size_t{0});
        std::stable_sort(rank.begin(), rank.end(), [&](size_t a, size_t b) { return fit[a] < fit[b]; });
        std::vector<Genome> next;
        std::vector<int64_t> next_fit;
        for (size_t e = 0; e < std::min<size_t>(2, pop_size); ++e) {  // elitism
          next.push_back(pop[rank[e]]);
          next_fit.push_back(fit[rank[e]]);
        }
        auto tournament = [&]() -> const Genome& {
          size_t a = rng.Below(pop_size), b = rng.Below(pop_size);
          return fit[a] <= fit[b] ? pop[a] : pop[b];
        };
        while (next.size() < pop_size) {
          Genome child = Crossover(tournament(), tournament(), rng);
          if (rng.Below(4) == 0) std::swap(child[rng.Below(n)], child[rng.Below(n)]);
          next_fit.push_back(fitness(child, &scratch));
          next.push_back(std::move(child));
        }
        pop = std::move(next);
        fit = std::move(next_fit);
      }
      size_t best = 0;
      for (size_t i = 1; i < pop_size; ++i) {
        if (fit[i] < fit[best]) best = i;
      }
      std::vector<uint32_t> reordered;
      for (uint32_t pos : pop[best]) reordered.push_back(window[pos]);
      window = std::move(reordered);
    }
    for (uint32_t i : window) {
      if (!r.TryBind(i)) r.PendingNoFit(i);
    }
    for (; rest < order.size(); ++rest) {
      if (r.CanStop()) break;
      const uint32_t i = order[rest];
      if (!r.Admit(i)) continue;
      if (!r.TryBind(i)) r.PendingNoFit(i);
    }
    return r.Take();
  }

 private:
  SchedulerOptions options_;
  PlacementKind kind_;
};

}  // namespace

std::unique_ptr<Scheduler> MakeGaScheduler(const SchedulerOptions& options, PlacementKind kind) {
  return std::make_unique<GaScheduler>(options, kind);
}

}  // namespace fastgpu::sched
