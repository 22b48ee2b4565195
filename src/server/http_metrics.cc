// GET /metrics (docs/monitoring.md): the Prometheus text exposition format. Per GPU of every node, the
// readings of its last heartbeat under DCGM-exporter names and labels; the control plane's gauges,
// counters and histograms; the API's per-route counters. Scraped with the metrics token
// (--metrics-token-file) or an admin's API token.
#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "common/crypto.h"
#include "server/http_internal.h"
#include "server/metrics.h"

namespace fastgpu::server {

namespace {

using Labels = PromWriter::Labels;

// One DCGM-exporter field: its name, help text and how to read it from a GPU.
struct GpuField {
  const char* name;
  const char* help;
  double (*read)(const api::Gpu&);
};

constexpr GpuField kGpuFields[] = {
    {"DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).",
     [](const api::Gpu& g) { return static_cast<double>(g.utilization_pct); }},
    {"DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (in %).",
     [](const api::Gpu& g) { return static_cast<double>(g.memory_util_pct); }},
    {"DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).",
     [](const api::Gpu& g) { return static_cast<double>(g.memory_used_mib); }},
    {"DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).",
     [](const api::Gpu& g) { return static_cast<double>(std::max<int64_t>(0, g.memory_total_mib - g.memory_used_mib)); }},
    {"DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).",
     [](const api::Gpu& g) { return static_cast<double>(g.temperature_c); }},
    {"DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).",
     [](const api::Gpu& g) { return static_cast<double>(g.power_mw) / 1000.0; }},
    {"DCGM_FI_DEV_POWER_MGMT_LIMIT", "Enforced power limit (in W; 0 = not reported).",
     [](const api::Gpu& g) { return static_cast<double>(g.power_limit_mw) / 1000.0; }},
    {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy consumption since the driver loaded (in mJ; 0 = not reported).",
     [](const api::Gpu& g) { return static_cast<double>(g.energy_mj); }},
    {"DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).",
     [](const api::Gpu& g) { return static_cast<double>(g.sm_clock_mhz); }},
    {"DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered (0 = none).",
     [](const api::Gpu& g) { return static_cast<double>(g.last_xid); }},
    {"DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "Single-bit (corrected) ECC errors since the driver loaded.",
     [](const api::Gpu& g) { return static_cast<double>(g.ecc_corrected_volatile); }},
    {"DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Double-bit (uncorrected) ECC errors since the driver loaded.",
     [](const api::Gpu& g) { return static_cast<double>(g.ecc_uncorrected_volatile); }},
    {"DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", "Single-bit (corrected) ECC errors over the GPU's lifetime.",
     [](const api::Gpu& g) { return static_cast<double>(g.ecc_corrected_aggregate); }},
    {"DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", "Double-bit (uncorrected) ECC errors over the GPU's lifetime.",
     [](const api::Gpu& g) { return static_cast<double>(g.ecc_uncorrected_aggregate); }},
    {"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "Rows remapped for correctable errors.",
     [](const api::Gpu& g) { return static_cast<double>(g.remapped_rows_correctable); }},
    {"DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", "Rows remapped for uncorrectable errors.",
     [](const api::Gpu& g) { return static_cast<double>(g.remapped_rows_uncorrectable); }},
    {"DCGM_FI_DEV_ROW_REMAP_PENDING", "1 when a row remap waits for a GPU reset.",
     [](const api::Gpu& g) { return g.remap_pending ? 1.0 : 0.0; }},
    {"DCGM_FI_DEV_ROW_REMAP_FAILURE", "1 when a row remap failed (replace the GPU).",
     [](const api::Gpu& g) { return g.remap_failure ? 1.0 : 0.0; }},
    {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS",
     "Current clock throttle reasons (NVML bitmask: 1 idle, 2 application clocks, 4 software power cap, "
     "8 hardware slowdown, 16 sync boost, 32 software thermal, 64 hardware thermal, 128 power brake).",
     [](const api::Gpu& g) { return static_cast<double>(g.throttle_reasons); }},
};

struct GpuLabels {
  std::string index;
  std::string device;
  Labels labels;
};

GpuLabels LabelsOf(const MetricsView::GpuRow& row) {
  GpuLabels l;
  l.index = std::to_string(row.gpu.index);
  l.device = "nvidia" + l.index;
  return l;
}

void FillLabels(const MetricsView::GpuRow& row, GpuLabels& l) {
  const api::Gpu& g = row.gpu;
  l.labels = {{"gpu", l.index}, {"UUID", g.uuid}, {"device", l.device}, {"modelName", g.name}, {"Hostname", g.node}};
  if (!row.job.empty()) {
    // Not "job": Prometheus sets that label to the scrape job and would store this one as exported_job.
    l.labels.emplace_back("job_id", row.job);
    l.labels.emplace_back("project", row.project);
  }
  if (g.simulated) l.labels.emplace_back("simulated", "true");
}

}  // namespace

bool HttpServer::IsMetricsToken(const std::string& token) const {
  return !options_.metrics_token_sha256.empty() && ConstantTimeEquals(Sha256Hex(token), options_.metrics_token_sha256);
}

std::string HttpServer::RenderMetrics() {
  PromWriter w;
  const MetricsView view = service_.MetricsSnapshot();

  // Per GPU: DCGM-exporter fields, from the readings the node's agent sent with its last heartbeat. GPUs of nodes
  // that are down are left out (their readings would be stale); fastgpu_node_up says so.
  std::vector<GpuLabels> labels;
  labels.reserve(view.gpus.size());
  for (const auto& row : view.gpus) {
    labels.push_back(LabelsOf(row));
    FillLabels(row, labels.back());
  }
  for (const GpuField& f : kGpuFields) {
    w.Family(f.name, "gauge", f.help);
    for (size_t i = 0; i < view.gpus.size(); ++i) {
      if (!view.gpus[i].node_up) continue;
      w.Sample(f.name, labels[i].labels, f.read(view.gpus[i].gpu));
    }
  }
  w.Family("fastgpu_gpu_xid_errors_total", "counter", "XID errors seen on the GPU since its agent started.");
  for (size_t i = 0; i < view.gpus.size(); ++i) {
    if (view.gpus[i].node_up) w.Sample("fastgpu_gpu_xid_errors_total", labels[i].labels, view.gpus[i].gpu.xid_count);
  }
  w.Family("fastgpu_gpu_healthy", "gauge",
           "1 when the GPU reports healthy in its node's last heartbeat, 0 when not (lost, faulty) or its node is down.");
  for (size_t i = 0; i < view.gpus.size(); ++i) {
    w.Sample("fastgpu_gpu_healthy", labels[i].labels, int64_t{view.gpus[i].node_up && view.gpus[i].gpu.healthy});
  }
  w.Family("fastgpu_gpu_allocated", "gauge", "Share of the GPU held by jobs (1 = the whole GPU).");
  for (size_t i = 0; i < view.gpus.size(); ++i) {
    w.Sample("fastgpu_gpu_allocated", labels[i].labels,
             static_cast<double>(view.gpus[i].allocated_milli) / static_cast<double>(kMilliPerGpu));
  }

  // Nodes.
  w.Family("fastgpu_node_up", "gauge", "1 when the node's agent is registered and heard from, 0 when down or awaited.");
  for (const auto& n : view.nodes) {
    Labels l{{"Hostname", n.name}};
    if (n.simulated) l.emplace_back("simulated", "true");
    w.Sample("fastgpu_node_up", l, int64_t{n.up});
  }
  w.Family("fastgpu_node_cordoned", "gauge", "1 when nothing new is placed on the node (cordoned or draining).");
  for (const auto& n : view.nodes) w.Sample("fastgpu_node_cordoned", {{"Hostname", n.name}}, int64_t{n.cordoned});
  w.Family("fastgpu_node_last_heartbeat_timestamp_seconds", "gauge", "When the node's agent was last heard from.");
  for (const auto& n : view.nodes) {
    w.Sample("fastgpu_node_last_heartbeat_timestamp_seconds", {{"Hostname", n.name}},
             static_cast<double>(n.last_heartbeat) / 1000.0);
  }

  // Jobs.
  w.Family("fastgpu_jobs", "gauge", "Jobs that have not ended, by state and project.");
  for (const auto& [key, n] : view.jobs) w.Sample("fastgpu_jobs", {{"state", key.first}, {"project", key.second}}, n);
  const ServiceMetrics& sm = service_.Metrics();
  w.Family("fastgpu_job_ends_total", "counter",
           "Job runs that ended since the server started, by final state (SUCCEEDED, FAILED, CANCELLED, LOST, "
           "PREEMPTED) and project.");
  for (const auto& [key, n] : sm.Ends()) {
    w.Sample("fastgpu_job_ends_total", {{"state", key.first}, {"project", key.second}}, static_cast<int64_t>(n));
  }
  w.Family("fastgpu_pending_jobs", "gauge", "Queued jobs by the GPU type they ask for (\"any\": no type named).");
  for (const auto& [type, p] : view.pending) w.Sample("fastgpu_pending_jobs", {{"gpu_type", type}}, p.jobs);
  w.Family("fastgpu_pending_gpus", "gauge", "GPUs asked for by queued jobs, by GPU type (fractions for shares).");
  for (const auto& [type, p] : view.pending) {
    w.Sample("fastgpu_pending_gpus", {{"gpu_type", type}}, static_cast<double>(p.milli) / static_cast<double>(kMilliPerGpu));
  }
  w.Family("fastgpu_job_queue_delay_seconds", "histogram",
           "Time a job waited in the queue before it was placed (each placement; a requeued job from its requeue).");
  w.HistogramSamples("fastgpu_job_queue_delay_seconds", {}, sm.queue_delay.Read());
  w.Family("fastgpu_job_submit_to_running_seconds", "histogram", "Time from a job's submit to its first RUNNING.");
  w.HistogramSamples("fastgpu_job_submit_to_running_seconds", {}, sm.submit_to_running.Read());
  w.Family("fastgpu_scheduler_round_duration_seconds", "histogram",
           "Time the scheduling policy took to decide one round (rounds with queued jobs and free or preemptible GPUs).");
  w.HistogramSamples("fastgpu_scheduler_round_duration_seconds", {}, sm.schedule_round.Read());

  // Spend this month (closed runs plus what running jobs have accrued), in micro-USD (integers: money is
  // fixed-point), and the budgets.
  w.Family("fastgpu_project_spend_month_micro_usd", "gauge",
           "Spend of the project this calendar month (UTC) in micro-USD (1e-6 USD), by GPU type.");
  std::map<std::string, int64_t> spend_total;
  for (const auto& [key, s] : service_.SpendThisMonth("")) {
    w.Sample("fastgpu_project_spend_month_micro_usd", {{"project", key.first}, {"gpu_type", key.second}}, s.cost_micro);
    spend_total[key.first] += s.cost_micro;
  }
  std::vector<std::pair<std::string, int64_t>> budgets;  // projects with a budget
  for (const auto& p : accounts_.ListProjects()) {
    if (p.budget.monthly_limit_micro > 0) budgets.emplace_back(p.name, p.budget.monthly_limit_micro);
  }
  w.Family("fastgpu_project_budget_month_micro_usd", "gauge",
           "The project's monthly budget in micro-USD (projects with a budget only).");
  for (const auto& [name, limit] : budgets) w.Sample("fastgpu_project_budget_month_micro_usd", {{"project", name}}, limit);
  w.Family("fastgpu_project_budget_used_ratio", "gauge",
           "Spend this month over the project's monthly budget (1 = exhausted; projects with a budget only).");
  for (const auto& [name, limit] : budgets) {
    w.Sample("fastgpu_project_budget_used_ratio", {{"project", name}},
             static_cast<double>(spend_total[name]) / static_cast<double>(limit));
  }
  std::string text = w.Take();

  // The store and the API.
  PromWriter tail;
  const store::StoreStats st = store_.Stats();
  tail.Family("fastgpu_store_commits_total", "counter", "Store transactions committed (group commits).");
  tail.Sample("fastgpu_store_commits_total", {}, st.commits);
  tail.Family("fastgpu_store_writes_total", "counter",
              "Write requests applied by the store; writes / commits is the average group size.");
  tail.Sample("fastgpu_store_writes_total", {}, st.writes);
  if (!st.commit_seconds.bounds.empty()) {
    tail.Family("fastgpu_store_commit_duration_seconds", "histogram",
                "Time one store transaction (a group of writes) took, fsync included.");
    Histogram::Snapshot h;
    h.bounds = st.commit_seconds.bounds;
    h.cumulative = st.commit_seconds.cumulative;
    h.count = st.commit_seconds.count;
    h.sum = st.commit_seconds.sum;
    tail.HistogramSamples("fastgpu_store_commit_duration_seconds", {}, h);
    tail.Family("fastgpu_store_commit_group_size", "histogram", "Write requests per store transaction (group commit).");
    h.bounds = st.group_size.bounds;
    h.cumulative = st.group_size.cumulative;
    h.count = st.group_size.count;
    h.sum = st.group_size.sum;
    tail.HistogramSamples("fastgpu_store_commit_group_size", {}, h);
  }
  api_metrics_->Render(tail);
  text += tail.Take();
  return text;
}

void HttpServer::InstallMetrics() {
  Add("GET", "/metrics", [this](Ctx& ctx) {
    ctx.res.status = 200;
    ctx.res.set_content(RenderMetrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace fastgpu::server
