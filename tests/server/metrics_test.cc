// GET /metrics: the text format writer, who may scrape, per-GPU DCGM-exporter series with the job on each
// GPU, the control plane's families and the API's per-route counters (route templates, never raw paths).
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>

#include "auth/accounts.h"
#include "common/crypto.h"
#include "server/directory.h"
#include "server/http.h"
#include "server/metrics.h"
#include "server/service.h"
#include "store/store.h"

namespace fastgpu::server {
namespace {

using nlohmann::json;

TEST(PromWriterTest, WritesFamiliesSamplesAndHistograms) {
  PromWriter w;
  w.Family("x_total", "counter", "A help\nwith a line break and a \\ backslash");
  w.Sample("x_total", {{"a", "q\"uo\\te\nd"}, {"b", "2"}}, int64_t{7});
  w.Sample("x_total", {}, 0.25);
  Histogram h(kRoundBuckets);
  h.Observe(0.25);
  h.Observe(2);
  h.Observe(100);
  w.Family("h_seconds", "histogram", "H");
  w.HistogramSamples("h_seconds", {{"r", "v"}}, h.Read());
  const std::string text = w.Take();
  EXPECT_NE(text.find("# HELP x_total A help\\nwith a line break and a \\\\ backslash\n# TYPE x_total counter\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("x_total{a=\"q\\\"uo\\\\te\\nd\",b=\"2\"} 7\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_total 0.25\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{r=\"v\",le=\"0.0001\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{r=\"v\",le=\"0.25\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{r=\"v\",le=\"1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{r=\"v\",le=\"2.5\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_bucket{r=\"v\",le=\"+Inf\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_count{r=\"v\"} 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("h_seconds_sum{r=\"v\"} 102.25\n"), std::string::npos) << text;
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-metrics-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    store_ = std::move(store::OpenSqliteStore(dir_ + "/db")).value();
    key_ = std::move(auth::MasterKey::Generate()).value();
    accounts_ = std::move(auth::AccountService::Create(*store_, clock_, &*key_)).value();
    admin_token_ = std::move(RandomToken()).value();
    ASSERT_TRUE(accounts_->EnsureBootstrap(Sha256Hex(admin_token_)).ok());
    svc_ = std::move(Service::Create(*store_, clock_, {})).value();
    directory_ = std::make_unique<AccountDirectory>(*accounts_);
    svc_->SetProjectDirectory(directory_.get());
    ASSERT_TRUE(svc_->SetBilling(billing::PriceCatalog::Defaults(), {}).ok());
    api::User alice;
    alice.name = "alice";
    ASSERT_TRUE(accounts_->CreateUser(alice).ok());
    api::Project ml;
    ml.name = "ml";
    ml.budget.monthly_limit_micro = 100'000'000;
    ASSERT_TRUE(accounts_->CreateProject(ml, "alice").ok());
    user_token_ = std::move(accounts_->CreateToken("alice", "t", 0)).value().token;
    HttpOptions o;
    o.port = 0;
    o.metrics_token_sha256 = Sha256Hex(kMetricsToken);
    http_ = std::make_unique<HttpServer>(*svc_, *accounts_, *store_, clock_, o);
    port_ = std::move(http_->Bind()).value();
    http_->Start();
  }
  void TearDown() override {
    http_.reset();
    svc_.reset();
    accounts_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  httplib::Result Get(const std::string& path, const std::string& token) {
    httplib::Client c("127.0.0.1", port_);
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return c.Get(path, h);
  }

  // Node n1 with two A100s (index 0, 1), the second running a job of project ml.
  std::string NodeWithARunningJob() {
    agent::NodeRegistration reg;
    reg.node.name = "n1";
    reg.node.simulated = true;
    for (int i = 0; i < 2; ++i) {
      api::Gpu g;
      g.uuid = "SIM-" + std::to_string(i);
      g.index = i;
      g.name = "A100-80GB (simulated)";
      g.type = "A100-80GB";
      g.memory_total_mib = 81920;
      g.simulated = true;
      reg.gpus.push_back(g);
    }
    EXPECT_TRUE(svc_->RegisterNode(reg).ok());
    api::JobSpec spec;
    spec.command = {"sleep", "60"};
    spec.project = "ml";
    auto job = svc_->Submit(spec, "alice");
    EXPECT_TRUE(job.ok()) << job.status().ToString();
    clock_.Advance(std::chrono::milliseconds(1500));  // 1.5 s in the queue
    svc_->ScheduleOnce();
    auto cmds = svc_->WaitCommands("n1", std::chrono::milliseconds(0));
    EXPECT_TRUE(cmds.ok() && cmds->size() == 1u) << svc_->GetJob(job->id)->reason << " state " << api::JobStateName(svc_->GetJob(job->id)->state);
    agent::JobReport r;
    r.kind = agent::JobReport::Kind::kStarted;
    r.job_id = job->id;
    r.attempt = (*cmds)[0].job.attempt;
    r.node = "n1";
    r.pid = 1234;
    EXPECT_TRUE(svc_->ReportJob(r).ok());
    // The heartbeat's readings.
    agent::NodeHeartbeat hb;
    hb.node = "n1";
    for (int i = 0; i < 2; ++i) {
      api::Gpu g = reg.gpus[static_cast<size_t>(i)];
      const bool busy = g.uuid == (*cmds)[0].job.assigned_gpus.at(0);
      g.utilization_pct = busy ? 93 : 0;
      g.memory_used_mib = busy ? 61440 : 0;
      g.temperature_c = busy ? 71 : 33;
      g.power_mw = busy ? 341'500 : 56'000;
      g.sm_clock_mhz = busy ? 1410 : 210;
      g.throttle_reasons = busy ? 0 : 1;
      g.ecc_uncorrected_aggregate = 2;
      g.last_xid = busy ? 79 : 0;
      g.xid_count = busy ? 1 : 0;
      hb.gpus.push_back(g);
    }
    EXPECT_TRUE(svc_->Heartbeat(hb).ok());
    busy_uuid_ = (*cmds)[0].job.assigned_gpus.at(0);
    return job->id;
  }

  static constexpr const char* kMetricsToken = "scrape-me-0123456789abcdef";
  std::string dir_;
  FakeClock clock_{1'795'000'000'000};
  std::unique_ptr<store::Store> store_;
  std::optional<auth::MasterKey> key_;
  std::unique_ptr<auth::AccountService> accounts_;
  std::unique_ptr<Service> svc_;
  std::unique_ptr<AccountDirectory> directory_;
  std::unique_ptr<HttpServer> http_;
  std::string admin_token_, user_token_, busy_uuid_;
  int port_ = 0;
};

TEST_F(MetricsTest, OnlyTheMetricsTokenAndAdminsMayScrape) {
  auto anon = Get("/metrics", "");
  ASSERT_TRUE(anon);
  EXPECT_EQ(anon->status, 401);
  EXPECT_EQ(anon->get_header_value("WWW-Authenticate"), "Bearer");
  auto wrong = Get("/metrics", "scrape-me-but-wrong-0000");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  auto user = Get("/metrics", user_token_);
  ASSERT_TRUE(user);
  EXPECT_EQ(user->status, 403);
  auto admin = Get("/metrics", admin_token_);
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->status, 200);
  EXPECT_EQ(admin->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  auto scraper = Get("/metrics", kMetricsToken);
  ASSERT_TRUE(scraper);
  EXPECT_EQ(scraper->status, 200);
  // The metrics token is no API token.
  for (const char* path : {"/v1/jobs", "/v1/gpus", "/v1/whoami"}) {
    auto r = Get(path, kMetricsToken);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
  }
}

TEST_F(MetricsTest, EveryGpuHasDcgmSeriesWithTheJobOnIt) {
  const std::string job = NodeWithARunningJob();
  auto r = Get("/metrics", kMetricsToken);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  const std::string& text = r->body;
  const std::string idle_uuid = busy_uuid_ == "SIM-0" ? "SIM-1" : "SIM-0";
  const std::string busy_index = busy_uuid_ == "SIM-0" ? "0" : "1";
  const std::string idle_index = busy_uuid_ == "SIM-0" ? "1" : "0";
  const std::string busy_labels = "{gpu=\"" + busy_index + "\",UUID=\"" + busy_uuid_ + "\",device=\"nvidia" + busy_index +
                                  "\",modelName=\"A100-80GB (simulated)\",Hostname=\"n1\",job_id=\"" + job +
                                  "\",project=\"ml\",simulated=\"true\"}";
  const std::string idle_labels = "{gpu=\"" + idle_index + "\",UUID=\"" + idle_uuid + "\",device=\"nvidia" + idle_index +
                                  "\",modelName=\"A100-80GB (simulated)\",Hostname=\"n1\",simulated=\"true\"}";
  for (const auto& [line, why] : std::vector<std::pair<std::string, std::string>>{
           {"# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n", "family"},
           {"DCGM_FI_DEV_GPU_UTIL" + busy_labels + " 93\n", "busy util"},
           {"DCGM_FI_DEV_GPU_UTIL" + idle_labels + " 0\n", "idle util"},
           {"DCGM_FI_DEV_FB_USED" + busy_labels + " 61440\n", "fb used"},
           {"DCGM_FI_DEV_FB_FREE" + busy_labels + " 20480\n", "fb free"},
           {"DCGM_FI_DEV_GPU_TEMP" + busy_labels + " 71\n", "temp"},
           {"DCGM_FI_DEV_POWER_USAGE" + busy_labels + " 341.5\n", "power in W"},
           {"DCGM_FI_DEV_SM_CLOCK" + idle_labels + " 210\n", "clock"},
           {"DCGM_FI_DEV_XID_ERRORS" + busy_labels + " 79\n", "last xid"},
           {"fastgpu_gpu_xid_errors_total" + busy_labels + " 1\n", "xid count"},
           {"DCGM_FI_DEV_ECC_DBE_AGG_TOTAL" + idle_labels + " 2\n", "ecc"},
           {"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS" + idle_labels + " 1\n", "throttle"},
           {"DCGM_FI_DEV_MEM_COPY_UTIL" + idle_labels + " 0\n", "mem copy util"},
           {"DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS" + idle_labels + " 0\n", "remapped rows"},
           {"fastgpu_gpu_healthy" + busy_labels + " 1\n", "healthy"},
           {"fastgpu_gpu_allocated" + busy_labels + " 1\n", "allocated"},
           {"fastgpu_gpu_allocated" + idle_labels + " 0\n", "not allocated"},
           {"fastgpu_node_up{Hostname=\"n1\",simulated=\"true\"} 1\n", "node up"},
           {"fastgpu_jobs{state=\"RUNNING\",project=\"ml\"} 1\n", "jobs by state and project"},
           {"fastgpu_job_queue_delay_seconds_bucket{le=\"1\"} 0\n", "queue delay: 1.5 s"},
           {"fastgpu_job_queue_delay_seconds_bucket{le=\"5\"} 1\n", "queue delay: 1.5 s"},
           {"fastgpu_job_submit_to_running_seconds_count 1\n", "submit to running"},
           {"fastgpu_scheduler_round_duration_seconds_count 1\n", "one scheduling round"},
           {"fastgpu_project_budget_month_micro_usd{project=\"ml\"} 100000000\n", "budget"},
           {"# TYPE fastgpu_project_spend_month_micro_usd gauge\n", "spend"},
           {"# TYPE fastgpu_store_commit_duration_seconds histogram\n", "store commits"},
           {"# TYPE fastgpu_store_commit_group_size histogram\n", "group size"},
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << why << ": no line " << line << " in\n" << text;
  }
}

TEST_F(MetricsTest, QueuedJobsArePendingGpusByType) {
  api::JobSpec a;
  a.command = {"true"};
  a.project = "ml";
  a.gpus_milli = 2000;
  a.gpu_type = "H100-80GB";
  api::JobSpec b = a;
  b.gpus_milli = 500;
  b.gpu_type.clear();
  ASSERT_TRUE(svc_->Submit(a, "alice").ok());
  ASSERT_TRUE(svc_->Submit(b, "alice").ok());
  auto r = Get("/metrics", admin_token_);
  ASSERT_TRUE(r);
  EXPECT_NE(r->body.find("fastgpu_pending_gpus{gpu_type=\"H100-80GB\"} 2\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("fastgpu_pending_gpus{gpu_type=\"any\"} 0.5\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("fastgpu_pending_jobs{gpu_type=\"any\"} 1\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("fastgpu_jobs{state=\"QUEUED\",project=\"ml\"} 2\n"), std::string::npos) << r->body;
}

TEST_F(MetricsTest, RequestsAreCountedByRouteTemplateAndStatus) {
  NodeWithARunningJob();
  ASSERT_TRUE(Get("/v1/jobs/j-1", admin_token_));
  ASSERT_TRUE(Get("/v1/jobs/j-1", admin_token_));
  ASSERT_TRUE(Get("/v1/jobs/j-999", admin_token_));
  ASSERT_TRUE(Get("/no/such/path/at-all", admin_token_));
  auto r = Get("/metrics", admin_token_);
  ASSERT_TRUE(r);
  const std::string& text = r->body;
  EXPECT_NE(text.find("fastgpu_http_requests_total{method=\"GET\",route=\"/v1/jobs/{id}\",code=\"200\"} 2\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fastgpu_http_requests_total{method=\"GET\",route=\"/v1/jobs/{id}\",code=\"404\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fastgpu_http_requests_total{method=\"\",route=\"unmatched\",code=\"404\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fastgpu_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/jobs/{id}\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("j-999"), std::string::npos) << "raw paths must not become labels";
  EXPECT_EQ(text.find("/no/such/path"), std::string::npos) << "raw paths must not become labels";
}

TEST_F(MetricsTest, EndsAreCountedByStateAndProject) {
  const std::string job = NodeWithARunningJob();
  ASSERT_TRUE(svc_->Cancel(job, "user:alice").ok());
  agent::JobReport r;
  r.kind = agent::JobReport::Kind::kExited;
  r.job_id = job;
  r.attempt = 1;
  r.node = "n1";
  r.signal = 15;
  ASSERT_TRUE(svc_->ReportJob(r).ok());
  auto m = Get("/metrics", admin_token_);
  ASSERT_TRUE(m);
  EXPECT_NE(m->body.find("fastgpu_job_ends_total{state=\"CANCELLED\",project=\"ml\"} 1\n"), std::string::npos)
      << m->body;
}

}  // namespace
}  // namespace fastgpu::server

namespace fastgpu::server {
namespace {

// The cost of one scrape at 1,000 GPUs (125 nodes x 8, every GPU reporting, half of them running a job). Prints the
// figure (docs/monitoring.md); asserts only the series count.
TEST_F(MetricsTest, ScrapeOfAThousandGpus) {
  constexpr int kNodes = 125, kPerNode = 8;
  for (int n = 0; n < kNodes; ++n) {
    agent::NodeRegistration reg;
    reg.node.name = "node-" + std::to_string(n);
    reg.node.simulated = true;
    for (int i = 0; i < kPerNode; ++i) {
      api::Gpu g;
      g.uuid = "SIM-" + std::to_string(n) + "-" + std::to_string(i);
      g.index = i;
      g.name = "H100-80GB (simulated)";
      g.type = "H100-80GB";
      g.memory_total_mib = 81920;
      g.simulated = true;
      reg.gpus.push_back(g);
    }
    ASSERT_TRUE(svc_->RegisterNode(reg).ok());
    agent::NodeHeartbeat hb;
    hb.node = reg.node.name;
    hb.gpus = reg.gpus;
    for (auto& g : hb.gpus) g.utilization_pct = 50;
    ASSERT_TRUE(svc_->Heartbeat(hb).ok());
  }
  for (int j = 0; j < kNodes * kPerNode / 2; ++j) {
    api::JobSpec spec;
    spec.command = {"true"};
    spec.project = "ml";
    ASSERT_TRUE(svc_->Submit(spec, "alice").ok());
  }
  svc_->ScheduleOnce();
  SystemClock wall;
  std::string body;
  constexpr int kScrapes = 20;
  const int64_t t0 = wall.MonotonicNanos();
  for (int i = 0; i < kScrapes; ++i) {
    auto r = Get("/metrics", kMetricsToken);
    ASSERT_TRUE(r && r->status == 200);
    body = r->body;
  }
  const double ms = static_cast<double>(wall.MonotonicNanos() - t0) / 1e6 / kScrapes;
  size_t util_series = 0;
  for (size_t at = body.find("\nDCGM_FI_DEV_GPU_UTIL{"); at != std::string::npos;
       at = body.find("\nDCGM_FI_DEV_GPU_UTIL{", at + 1)) {
    ++util_series;
  }
  EXPECT_EQ(util_series, static_cast<size_t>(kNodes * kPerNode));
  std::printf("GET /metrics at %d GPUs (%d nodes, %d jobs): %.1f ms per scrape (HTTP on loopback included), %zu KiB, "
              "%zu lines\n",
              kNodes * kPerNode, kNodes, kNodes * kPerNode / 2, ms, body.size() / 1024,
              static_cast<size_t>(std::count(body.begin(), body.end(), '\n')));
}

}  // namespace
}  // namespace fastgpu::server

namespace fastgpu::server {
namespace {

// Per-job GPU usage: each heartbeat's readings count for the job running on the GPU; shown by GET /v1/jobs/{id} and
// kept in the store when the run ends.
TEST_F(MetricsTest, JobsKeepTheirGpuUsage) {
  const std::string id = NodeWithARunningJob();  // first heartbeat: 93 %, 61440 MiB, 341.5 W
  clock_.Advance(std::chrono::milliseconds(2000));
  agent::NodeHeartbeat hb;
  hb.node = "n1";
  for (const auto& g : svc_->ListGpus()) {
    api::Gpu r = g;
    r.jobs.clear();
    const bool busy = g.uuid == busy_uuid_;
    r.utilization_pct = busy ? 95 : 0;
    r.memory_used_mib = busy ? 40960 : 0;
    r.power_mw = busy ? 300'000 : 56'000;
    hb.gpus.push_back(r);
  }
  ASSERT_TRUE(svc_->Heartbeat(hb).ok());
  auto live = Get("/v1/jobs/" + id, admin_token_);
  ASSERT_TRUE(live && live->status == 200);
  json j = json::parse(live->body);
  ASSERT_EQ(j["gpu_usage"].size(), 1u) << live->body;
  EXPECT_EQ(j["gpu_usage"][0]["uuid"], busy_uuid_);
  EXPECT_EQ(j["gpu_usage"][0]["node"], "n1");
  EXPECT_EQ(j["gpu_usage"][0]["samples"], 2);
  EXPECT_EQ(j["gpu_usage"][0]["avg_util_pct"], 94);
  EXPECT_EQ(j["gpu_usage"][0]["peak_util_pct"], 95);
  EXPECT_EQ(j["gpu_usage"][0]["peak_memory_mib"], 61440);
  EXPECT_GE(j["gpu_usage"][0]["energy_mj"].get<int64_t>(), 600'000);  // 300 W for 2 s, plus the first interval
  // The run ends: its usage is kept with the job.
  agent::JobReport r;
  r.kind = agent::JobReport::Kind::kExited;
  r.job_id = id;
  r.attempt = 1;
  r.node = "n1";
  r.exit_code = 0;
  ASSERT_TRUE(svc_->ReportJob(r).ok());
  auto stored = store_->GetJob(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state, api::JobState::kSucceeded);
  ASSERT_EQ(stored->gpu_usage.size(), 1u);
  EXPECT_EQ(stored->gpu_usage[0].samples, 2);
  EXPECT_EQ(stored->gpu_usage[0].AverageUtilPct(), 94);
  EXPECT_EQ(stored->gpu_usage[0].peak_memory_mib, 61440);
  EXPECT_GE(stored->gpu_usage[0].energy_mj, 600'000);
}

}  // namespace
}  // namespace fastgpu::server
