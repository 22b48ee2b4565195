#include "sim/simulate_command.h"

#include <sys/resource.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "sched/scheduler.h"

namespace fastgpu::sim {
namespace {

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// 1234567 -> "1,234,567"
std::string Grouped(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return v < 0 ? "-" + out : out;
}

std::string Seconds(double s) { return Grouped(std::llround(s)); }

int64_t PeakRssKib() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return ru.ru_maxrss;  // KiB on Linux
}

std::string WindowText(const SimulateOptions& o) {
  std::string w;
  if (o.from_s || o.to_s) {
    w = "submit_time_s in [" + (o.from_s ? std::to_string(*o.from_s) : std::string("start")) + ", " +
        (o.to_s ? std::to_string(*o.to_s) : std::string("end")) + "]";
  } else {
    w = "all submissions";
  }
  w += o.queue.empty() ? ", all queues" : ", queue " + o.queue;
  return w;
}

std::string RenderTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  }
  std::string out;
  for (size_t ri = 0; ri < rows.size(); ++ri) {
    const auto& r = rows[ri];
    std::string line;
    for (size_t c = 0; c < r.size(); ++c) {
      if (c > 0) line += "  ";
      const size_t pad = width[c] - r[c].size();
      if (c == 0) {
        line += r[c] + std::string(pad, ' ');
      } else {
        line += std::string(pad, ' ') + r[c];  // numbers right-aligned
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
    if (ri == 0) {
      size_t total = 0;
      for (size_t c = 0; c < width.size(); ++c) total += width[c] + (c > 0 ? 2 : 0);
      out += std::string(total, '-') + "\n";
    }
  }
  return out;
}

class ProgressBar {
 public:
  ProgressBar(std::ostream& err, std::string label) : err_(err), label_(std::move(label)) {}
  void Update(int64_t done, int64_t total) {
    const int pct = total > 0 ? static_cast<int>(done * 100 / total) : 100;
    const int filled = pct * 30 / 100;
    err_ << "\r[" << std::string(static_cast<size_t>(filled), '#') << std::string(static_cast<size_t>(30 - filled), ' ')
         << "] " << (pct < 10 ? "  " : pct < 100 ? " " : "") << pct << "%  " << label_ << "  " << Grouped(done) << "/"
         << Grouped(total) << " jobs" << std::flush;
  }
  void Done() { err_ << "\r\033[K" << std::flush; }

 private:
  std::ostream& err_;
  std::string label_;
};

}  // namespace

const std::vector<std::string>& KnownPolicies() {
  static const std::vector<std::string> kPolicies = {"fifo", "priority", "fair-share", "sjf",
                                                     "las",  "backfill", "fair-las"};
  return kPolicies;
}

Result<int64_t> ParsePreemptible(const std::string& text) {
  if (text == "all") return int64_t{1000};
  if (text == "none") return int64_t{0};
  // Digits, optionally '.' and up to 3 more digits; no floating point.
  int64_t whole = 0, frac = 0, scale = 1000;
  size_t i = 0;
  bool digits = false;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && i < 6; ++i, digits = true) {
    whole = whole * 10 + (text[i] - '0');
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9' && scale > 1; ++i, digits = true) {
      scale /= 10;
      frac += (text[i] - '0') * scale;
    }
  }
  const int64_t permille = whole * 1000 + frac;
  if (!digits || i != text.size() || permille > 1000) {
    return InvalidArgument("--preemptible '" + text +
                           "' is not all, none or a fraction between 0 and 1 with at most 3 decimals (e.g. 0.5)");
  }
  return permille;
}

Result<std::vector<std::string>> ParsePolicyList(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    if (b == std::string::npos) return InvalidArgument("policy list '" + list + "' has an empty item");
    out.push_back(item.substr(b, e - b + 1));
  }
  if (out.empty()) return InvalidArgument("policy list is empty");
  return out;
}

std::string FormatResults(const std::vector<PolicyRun>& runs, const ClusterSpec& cluster, const SimulateOptions& opts,
                          const Trace& trace, const std::string& format) {
  const bool timing = opts.timing;
  if (format == "json") {
    nlohmann::ordered_json j;
    j["trace"] = trace.source;
    j["window"] = WindowText(opts);
    j["jobs"] = static_cast<int64_t>(trace.jobs.size());
    j["cluster"] = {{"spec", cluster.ToSpec()},
                    {"nodes", cluster.nodes},
                    {"gpus_per_node", cluster.gpus_per_node},
                    {"gpu_type", cluster.gpu_type},
                    {"total_gpus", cluster.total_gpus()}};
    j["placement"] = opts.placement;
    if (opts.preemptible != "all") j["preemptible"] = opts.preemptible;
    j["results"] = nlohmann::ordered_json::array();
    for (const PolicyRun& r : runs) {
      const SimMetrics& m = r.metrics;
      nlohmann::ordered_json o;
      o["policy"] = m.policy;
      o["jobs"] = m.jobs;
      o["completed"] = m.completed;
      o["rejected"] = m.rejected;
      o["avg_jct_s"] = m.avg_jct_s;
      o["avg_queue_s"] = m.avg_queue_s;
      o["avg_wait_s"] = m.avg_wait_s;
      o["p50_queue_s"] = m.p50_queue_s;
      o["p99_queue_s"] = m.p99_queue_s;
      o["max_queue_s"] = m.max_queue_s;
      o["makespan_s"] = m.makespan_s;
      o["utilisation"] = m.utilisation;
      o["busy_gpu_s"] = m.busy_gpu_s;
      o["preemptions"] = m.preemptions;
      o["schedule_calls"] = m.schedule_calls;
      if (timing) {
        o["wall_s"] = r.wall_s;
        o["peak_rss_kib"] = r.peak_rss_kib;
      }
      if (opts.by_project) {
        o["preemptible_jobs"] = m.preemptible_jobs;
        o["projects"] = nlohmann::ordered_json::array();
        for (const ProjectMetrics& p : m.projects) {
          o["projects"].push_back({{"project", p.project},
                                   {"completed", p.completed},
                                   {"avg_jct_s", p.avg_jct_s},
                                   {"avg_queue_s", p.avg_queue_s},
                                   {"max_queue_s", p.max_queue_s},
                                   {"preemptions", p.preemptions}});
        }
      }
      j["results"].push_back(std::move(o));
    }
    return j.dump(2) + "\n";
  }
  if (format == "csv") {
    std::string out =
        "policy,placement,cluster,jobs,completed,rejected,avg_jct_s,avg_queue_s,avg_wait_s,p50_queue_s,p99_queue_s,"
        "max_queue_s,makespan_s,utilisation,busy_gpu_s,preemptions,schedule_calls";
    out += timing ? ",wall_s,peak_rss_kib\n" : "\n";
    for (const PolicyRun& r : runs) {
      const SimMetrics& m = r.metrics;
      out += m.policy + "," + opts.placement + "," + cluster.ToSpec() + "," + std::to_string(m.jobs) + "," +
             std::to_string(m.completed) + "," + std::to_string(m.rejected) + "," + Fixed(m.avg_jct_s, 3) + "," +
             Fixed(m.avg_queue_s, 3) + "," + Fixed(m.avg_wait_s, 3) + "," + Fixed(m.p50_queue_s, 3) + "," + Fixed(m.p99_queue_s, 3) + "," +
             Fixed(m.max_queue_s, 3) + "," + Fixed(m.makespan_s, 3) + "," + Fixed(m.utilisation, 6) + "," +
             std::to_string(m.busy_gpu_s) + "," + std::to_string(m.preemptions) + "," +
             std::to_string(m.schedule_calls);
      if (timing) out += "," + Fixed(r.wall_s, 3) + "," + std::to_string(r.peak_rss_kib);
      out += "\n";
    }
    if (opts.by_project) {
      out += "\npolicy,project,completed,avg_jct_s,avg_queue_s,max_queue_s,preemptions\n";
      for (const PolicyRun& r : runs) {
        for (const ProjectMetrics& p : r.metrics.projects) {
          out += r.metrics.policy + "," + p.project + "," + std::to_string(p.completed) + "," + Fixed(p.avg_jct_s, 3) +
                 "," + Fixed(p.avg_queue_s, 3) + "," + Fixed(p.max_queue_s, 3) + "," + std::to_string(p.preemptions) +
                 "\n";
        }
      }
    }
    return out;
  }
  // table
  std::string out;
  out += "Trace:     " + trace.source + " (" + Grouped(static_cast<int64_t>(trace.jobs.size())) + " jobs; " +
         WindowText(opts) + ")\n";
  out += "Cluster:   " + cluster.Describe();
  if (cluster.ToSpec() == kDefaultClusterSpec) {
    out += " (default: one pool at about 0.8 offered load for the bundled Philly trace; see data/traces/README.md)";
  }
  out += "\nPlacement: " + opts.placement + "\n";
  if (opts.preemptible != "all") out += "Preemptible: " + opts.preemptible + " of the jobs\n";
  out += "JCT = end - submit; queue = first start - submit; wait = JCT - duration (includes time preempted);\n"
         "utilisation = busy GPU-s / (GPUs x makespan)\n\n";
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head = {"policy",        "jobs",          "avg JCT s",     "avg queue s",  "avg wait s",
                                   "p50 queue s",   "p99 queue s",   "max queue s",   "makespan s",
                                   "util",          "preemptions"};
  if (timing) {
    head.push_back("wall s");
    head.push_back("peak RSS MiB");
  }
  rows.push_back(head);
  int64_t rejected = 0;
  for (const PolicyRun& r : runs) {
    const SimMetrics& m = r.metrics;
    rejected = std::max(rejected, m.rejected);
    std::vector<std::string> row = {m.policy,
                                    Grouped(m.completed),
                                    Seconds(m.avg_jct_s),
                                    Seconds(m.avg_queue_s),
                                    Seconds(m.avg_wait_s),
                                    Seconds(m.p50_queue_s),
                                    Seconds(m.p99_queue_s),
                                    Seconds(m.max_queue_s),
                                    Seconds(m.makespan_s),
                                    Fixed(m.utilisation, 3),
                                    Grouped(m.preemptions)};
    if (timing) {
      row.push_back(Fixed(r.wall_s, 2));
      row.push_back(Grouped(r.peak_rss_kib / 1024));
    }
    rows.push_back(std::move(row));
  }
  out += RenderTable(rows);
  if (opts.by_project) {
    std::vector<std::vector<std::string>> prow;
    prow.push_back({"policy", "project", "jobs", "avg JCT s", "avg queue s", "max queue s", "preemptions"});
    for (const PolicyRun& r : runs) {
      for (const ProjectMetrics& p : r.metrics.projects) {
        prow.push_back({r.metrics.policy, p.project, Grouped(p.completed), Seconds(p.avg_jct_s), Seconds(p.avg_queue_s),
                        Seconds(p.max_queue_s), Grouped(p.preemptions)});
      }
    }
    out += "\nBy project:\n" + RenderTable(prow);
  }
  for (const PolicyRun& r : runs) {
    if (r.metrics.rejected > 0) {
      out += "note: " + r.metrics.policy + ": " + Grouped(r.metrics.rejected) +
             " jobs never fit this cluster and were rejected (not in the figures)\n";
    }
  }
  return out;
}

int RunSimulateCommand(const SimulateOptions& options, std::ostream& out, std::ostream& err, const Clock& clock) {
  if (options.trace_path.empty()) {
    err << "error: --trace FILE is required (CSV: job_id,submit_time_s,num_gpus,duration_s,user,queue,status)\n";
    return 2;
  }
  if (options.output != "table" && options.output != "json" && options.output != "csv") {
    err << "error: --output '" << options.output << "' is not one of table, json, csv\n";
    return 2;
  }
  if (options.from_s && options.to_s && *options.from_s > *options.to_s) {
    err << "error: --from " << *options.from_s << " is after --to " << *options.to_s << "\n";
    return 2;
  }
  if (options.reschedule_interval_s < 0) {
    err << "error: --tick must be >= 0 seconds\n";
    return 2;
  }
  auto preemptible = ParsePreemptible(options.preemptible);
  if (!preemptible.ok()) {
    err << "error: " << preemptible.status().message() << "\n";
    return 2;
  }
  auto cluster = ParseClusterSpec(options.cluster);
  if (!cluster.ok()) {
    err << "error: " << cluster.status().message() << "\n";
    return 2;
  }
  std::vector<std::string> policies;
  bool skip_unknown = false;
  if (options.compare.empty()) {
    policies.push_back(options.policy);
  } else if (options.compare == "all") {
    policies = KnownPolicies();
    skip_unknown = true;
  } else {
    auto list = ParsePolicyList(options.compare);
    if (!list.ok()) {
      err << "error: --compare: " << list.status().message() << "\n";
      return 2;
    }
    policies = *list;
  }
  // Create every scheduler before the (slow) replays so a typo fails fast.
  std::vector<std::unique_ptr<sched::Scheduler>> schedulers;
  std::vector<std::string> names;
  for (const std::string& p : policies) {
    sched::SchedulerOptions so;
    so.policy = p;
    so.placement = options.placement;
    // A replay only needs the first waiting reason (for the stall message); binds are the same.
    so.max_pending_reasons = 1;
    so.preempt_across_projects = options.preempt_across_projects;
    auto s = sched::MakeScheduler(so);
    if (!s.ok()) {
      if (skip_unknown) {
        err << "note: skipping policy '" << p << "': " << s.status().message() << "\n";
        continue;
      }
      err << "error: policy '" << p << "' with placement '" << options.placement << "': " << s.status().message()
          << "\n";
      return 2;
    }
    schedulers.push_back(std::move(s).value());
    names.push_back(p);
  }
  if (schedulers.empty()) {
    err << "error: no policy could be created\n";
    return 2;
  }

  TraceFilter filter;
  filter.from_s = options.from_s;
  filter.to_s = options.to_s;
  filter.queue = options.queue;
  auto trace = LoadTrace(options.trace_path, filter);
  if (!trace.ok()) {
    err << "error: " << trace.status().message() << "\n";
    return 2;
  }
  if (trace->jobs.empty()) {
    err << "error: no jobs in " << options.trace_path << " match the filter (" << WindowText(options) << ")\n";
    return 2;
  }

  const bool progress = options.progress.value_or(&err == &std::cerr && isatty(STDERR_FILENO) == 1);
  std::vector<PolicyRun> runs;
  for (size_t i = 0; i < schedulers.size(); ++i) {
    SimConfig cfg;
    cfg.cluster = *cluster;
    cfg.reschedule_interval_s = options.reschedule_interval_s;
    cfg.preemptible_permille = *preemptible;
    // With no preemptible job no policy preempts, so the calls that could start nothing are skipped.
    cfg.skip_when_full = PolicyNeverPreempts(names[i]) || *preemptible == 0;
    ProgressBar bar(err, names[i]);
    if (progress) cfg.progress = [&bar](int64_t done, int64_t total) { bar.Update(done, total); };
    const int64_t t0 = clock.MonotonicNanos();
    auto res = Simulate(*trace, *schedulers[i], cfg);
    const int64_t t1 = clock.MonotonicNanos();
    if (progress) bar.Done();
    if (!res.ok()) {
      err << "error: policy '" << names[i] << "': " << res.status().message() << "\n";
      return 1;
    }
    PolicyRun run;
    run.metrics = std::move(res->metrics);
    run.metrics.policy = names[i];
    run.wall_s = static_cast<double>(t1 - t0) / 1e9;
    run.peak_rss_kib = PeakRssKib();
    runs.push_back(std::move(run));
  }
  out << FormatResults(runs, *cluster, options, *trace, options.output);
  return 0;
}

}  // namespace fastgpu::sim
