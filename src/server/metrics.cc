#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace fastgpu::server {

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      buckets_(std::make_unique<std::atomic<uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t running = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  running += buckets_[bounds_.size()].load(std::memory_order_relaxed);
  // Read without a lock: the count is the +Inf bucket, so the two always agree in the output.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

namespace {

void AppendNumber(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 9.0e15) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
    out.append(buf, r.ptr);
  } else {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
    out.append(buf, r.ptr);
  }
}

void AppendEscaped(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

}  // namespace

void PromWriter::Family(std::string_view name, std::string_view type, std::string_view help) {
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  for (char c : help) {  // HELP escapes only backslash and newline
    if (c == '\\') {
      out_ += "\\\\";
    } else if (c == '\n') {
      out_ += "\\n";
    } else {
      out_ += c;
    }
  }
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += type;
  out_ += '\n';
}

void PromWriter::Name(std::string_view name, const Labels& labels, std::string_view extra_label,
                      std::string_view extra_value) {
  out_ += name;
  if (labels.empty() && extra_label.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out_ += ',';
    first = false;
    out_ += k;
    out_ += "=\"";
    AppendEscaped(out_, v);
    out_ += '"';
  }
  if (!extra_label.empty()) {
    if (!first) out_ += ',';
    out_ += extra_label;
    out_ += "=\"";
    out_ += extra_value;
    out_ += '"';
  }
  out_ += '}';
}

void PromWriter::Sample(std::string_view name, const Labels& labels, double value) {
  Name(name, labels);
  out_ += ' ';
  AppendNumber(out_, value);
  out_ += '\n';
}

void PromWriter::Sample(std::string_view name, const Labels& labels, int64_t value) {
  Name(name, labels);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void PromWriter::HistogramSamples(std::string_view name, const Labels& labels, const Histogram::Snapshot& h) {
  const std::string bucket = std::string(name) + "_bucket";
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    std::string le;
    AppendNumber(le, h.bounds[i]);
    Name(bucket, labels, "le", le);
    out_ += ' ';
    out_ += std::to_string(h.cumulative[i]);
    out_ += '\n';
  }
  Name(bucket, labels, "le", "+Inf");
  out_ += ' ';
  out_ += std::to_string(h.count);
  out_ += '\n';
  Sample(std::string(name) + "_sum", labels, h.sum);
  Sample(std::string(name) + "_count", labels, static_cast<int64_t>(h.count));
}

int ApiMetrics::AddRoute(std::string method, std::string path) {
  slots_.push_back(std::make_unique<Slot>(std::move(method), std::move(path)));
  return static_cast<int>(slots_.size() - 1);
}

void ApiMetrics::Record(int slot, int status, double seconds) {
  if (slot < 0 || static_cast<size_t>(slot) >= slots_.size()) slot = 0;
  Slot& s = *slots_[static_cast<size_t>(slot)];
  size_t code = kNumCodes;
  for (size_t i = 0; i < std::size(kCodes); ++i) {
    if (kCodes[i] == status) code = i;
  }
  if (code == kNumCodes) {
    const int cls = std::clamp(status / 100, 2, 5);
    code = std::size(kCodes) + static_cast<size_t>(cls - 2);
  }
  s.codes[code].fetch_add(1, std::memory_order_relaxed);
  s.latency.Observe(seconds);
}

void ApiMetrics::Render(PromWriter& w) const {
  w.Family("fastgpu_http_requests_total", "counter",
           "API requests by route template, method and status code (route=\"unmatched\": no route matched)");
  static constexpr const char* kOther[] = {"2xx", "3xx", "4xx", "5xx"};
  for (const auto& s : slots_) {
    for (size_t i = 0; i < kNumCodes; ++i) {
      const uint64_t n = s->codes[i].load(std::memory_order_relaxed);
      if (n == 0) continue;
      const std::string code = i < std::size(kCodes) ? std::to_string(kCodes[i]) : kOther[i - std::size(kCodes)];
      w.Sample("fastgpu_http_requests_total", {{"method", s->method}, {"route", s->path}, {"code", code}},
               static_cast<int64_t>(n));
    }
  }
  w.Family("fastgpu_http_request_duration_seconds", "histogram",
           "Time to handle an API request, by route template (until the reply is ready; a parked wait or a "
           "streamed log counts until it was handed to the transport)");
  for (const auto& s : slots_) {
    const Histogram::Snapshot h = s->latency.Read();
    if (h.count == 0) continue;
    w.HistogramSamples("fastgpu_http_request_duration_seconds", {{"method", s->method}, {"route", s->path}}, h);
  }
}

void ServiceMetrics::CountEnd(const std::string& state, const std::string& project) {
  std::lock_guard lock(mu_);
  ++ends_[{state, project}];
}

std::map<std::pair<std::string, std::string>, uint64_t> ServiceMetrics::Ends() const {
  std::lock_guard lock(mu_);
  return ends_;
}

}  // namespace fastgpu::server
