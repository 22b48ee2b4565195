// Prometheus metrics of the server (GET /metrics, docs/monitoring.md): lock-free histograms and counters
// updated on the hot paths (API requests, scheduler rounds, job transitions), and the text exposition
// format writer that renders them with the per-GPU and per-project gauges read at scrape time.
#pragma once

#include <atomic>
#include <iterator>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fastgpu::server {

// A histogram with fixed upper bounds. Observe() is wait-free (one relaxed atomic add per field), so it may
// sit on any hot path.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void Observe(double value);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // observations <= bounds[i]
    uint64_t count = 0;
    double sum = 0;
  };
  Snapshot Read() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // per bucket (not cumulative); last = +Inf
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Bucket bounds (seconds unless named otherwise).
inline constexpr double kLatencyBuckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                             0.1,    0.25,  0.5,    1,     2.5,  5,     10};
inline constexpr double kQueueBuckets[] = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400};
inline constexpr double kRoundBuckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                           0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};

// One metric family at a time, in the Prometheus text exposition format (version 0.0.4).
class PromWriter {
 public:
  using Labels = std::vector<std::pair<std::string_view, std::string_view>>;
  // Starts a family: # HELP and # TYPE lines ("gauge", "counter", "histogram").
  void Family(std::string_view name, std::string_view type, std::string_view help);
  void Sample(std::string_view name, const Labels& labels, double value);
  void Sample(std::string_view name, const Labels& labels, int64_t value);
  // `name`_bucket{le=...}, `name`_sum and `name`_count of a histogram.
  void HistogramSamples(std::string_view name, const Labels& labels, const Histogram::Snapshot& h);
  std::string Take() { return std::move(out_); }

 private:
  void Name(std::string_view name, const Labels& labels, std::string_view extra_label = {},
            std::string_view extra_value = {});
  std::string out_;
};

// Per-route request counters and latency histograms of the HTTP API. Routes are numbered when the server
// installs them; Record() touches only that route's atomics (no lock), so the request path stays cheap.
class ApiMetrics {
 public:
  // Status codes counted apart; any other lands in "other" by its class (2xx, 3xx, 4xx, 5xx).
  static constexpr int kCodes[] = {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503};
  static constexpr size_t kNumCodes = std::size(kCodes) + 4;

  // Declares a route ("GET", "/v1/jobs/{id}"); returns its slot. Not thread-safe: call before serving.
  int AddRoute(std::string method, std::string path);
  // Requests no route matched (404/405) are counted under route="unmatched".
  int Unmatched() const { return 0; }
  void Record(int slot, int status, double seconds);
  void Render(PromWriter& w) const;

 private:
  struct Slot {
    std::string method, path;
    std::atomic<uint64_t> codes[kNumCodes] = {};
    Histogram latency{kLatencyBuckets};
    Slot(std::string m, std::string p) : method(std::move(m)), path(std::move(p)) {}
  };
  std::vector<std::unique_ptr<Slot>> slots_ = [] {
    std::vector<std::unique_ptr<Slot>> v;
    v.push_back(std::make_unique<Slot>("", "unmatched"));
    return v;
  }();
};

// Counters and histograms of the control plane, updated by Service (service_metrics.cc).
class ServiceMetrics {
 public:
  Histogram queue_delay{kQueueBuckets};        // QUEUED -> SCHEDULED (each placement)
  Histogram submit_to_running{kQueueBuckets};  // created -> RUNNING (each attempt)
  Histogram schedule_round{kRoundBuckets};     // one scheduling decision (policy + apply)
  std::atomic<uint64_t> rounds{0};

  // A job ended in a terminal state (SUCCEEDED, FAILED, CANCELLED, LOST...) or was preempted.
  void CountEnd(const std::string& state, const std::string& project);
  std::map<std::pair<std::string, std::string>, uint64_t> Ends() const;  // (state, project) -> count

 private:
  mutable std::mutex mu_;  // taken once per job end, never per request
  std::map<std::pair<std::string, std::string>, uint64_t> ends_;
};

}  // namespace fastgpu::server
