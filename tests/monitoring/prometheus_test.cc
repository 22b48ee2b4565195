// /metrics with real tools (Debian's prometheus package): `fastgpu up` on simulated GPUs with a metrics token, a
// job running on one GPU; `promtool check metrics` on the scrape; every metric the shipped alert rules and Grafana
// dashboard name is in the scrape; a real Prometheus scrapes the server with the token and answers queries.
// Skipped where prometheus/promtool are not installed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <regex>
#include <set>

#include "integration/harness.h"

namespace fastgpu::testing {
namespace {

constexpr const char* kMetricsToken = "prom-scrape-token-0123456789abcdef";

std::string Which(const std::string& tool) {
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/bin"}) {
    const std::string p = std::string(dir) + "/" + tool;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string SourceDir() {
  const char* s = std::getenv("FASTGPU_SOURCE_DIR");
  return s && *s ? s : FASTGPU_SOURCE_DIR_DEFAULT;
}

// A free TCP port on 127.0.0.1 for a program that cannot take port 0 (Prometheus): bound, read, released.
int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

// Runs `cmd` through the shell; exit code and combined output.
std::pair<int, std::string> RunShell(const std::string& cmd, const std::string& out_file) {
  int rc = std::system((cmd + " >'" + out_file + "' 2>&1").c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ReadFile(out_file)};
}

// Metric family names (# TYPE lines) of a scrape.
std::set<std::string> Families(const std::string& scrape) {
  std::set<std::string> out;
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    out.insert(line.substr(7, line.find(' ', 7) - 7));
  }
  return out;
}

// Metric names a file refers to (DCGM_FI_* and fastgpu_*).
std::set<std::string> NamesIn(const std::string& text) {
  std::set<std::string> out;
  const std::regex name(R"((DCGM_FI_[A-Z_]+|fastgpu_[a-z_]+))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), name); it != std::sregex_iterator(); ++it) {
    out.insert((*it)[1]);
  }
  return out;
}

// Whether `name` is a family of the scrape, or a histogram's series (_bucket, _sum, _count) of one.
bool Exported(const std::set<std::string>& families, const std::string& name) {
  if (families.count(name)) return true;
  for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        families.count(name.substr(0, name.size() - suffix.size()))) {
      return true;
    }
  }
  return false;
}

class PrometheusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    promtool_ = Which("promtool");
    prometheus_ = Which("prometheus");
    if (promtool_.empty() || prometheus_.empty()) {
      GTEST_SKIP() << "prometheus/promtool not installed (Debian package prometheus; scripts/setup.sh installs it)";
    }
    token_file_ = up_.home() + "-metrics.token";
    {
      std::ofstream f(token_file_);
      f << kMetricsToken << "\n";
    }
    up_.Start({"--metrics-token-file", token_file_});
  }
  void TearDown() override {
    if (prom_pid_ > 0) {
      ::kill(prom_pid_, SIGTERM);
      int st = 0;
      ::waitpid(prom_pid_, &st, 0);
    }
  }

  std::string Scrape() {
    auto r = up_.ClientAs(kMetricsToken)->Get("/metrics");
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no response");
    return r ? r->body : "";
  }

  UpProcess up_{"2xA100-80GB,1xH100-80GB"};
  std::string promtool_, prometheus_, token_file_;
  pid_t prom_pid_ = -1;
};

TEST_F(PrometheusTest, ScrapeIsCleanAndNamesEveryMetricOfAlertsAndDashboard) {
  const std::string id = up_.Submit({{"command", {"sleep", "60"}}, {"gpus", 1}, {"gpu_type", "H100-80GB"}});
  ASSERT_TRUE(up_.WaitState(id, "RUNNING"));
  // The simulated H100 rises with its job once the agent's next heartbeat reports it.
  const std::regex busy("DCGM_FI_DEV_GPU_UTIL\\{[^}]*job_id=\"" + id + "\"[^}]*simulated=\"true\"\\} (9[0-9])\n");
  std::string scrape;
  ASSERT_TRUE(WaitFor([&] {
    scrape = Scrape();
    return std::regex_search(scrape, busy);
  }, std::chrono::seconds(30)))
      << scrape;

  // promtool's linter: clean but for DCGM-exporter's own camelCase label modelName, kept for compatibility with
  // dashboards and rules written for DCGM-exporter.
  const std::string scrape_file = up_.home() + "-scrape.txt";
  {
    std::ofstream f(scrape_file);
    f << scrape;
  }
  auto [rc, out] = RunShell("'" + promtool_ + "' check metrics <'" + scrape_file + "'", up_.home() + "-promtool.out");
  EXPECT_TRUE(rc == 0 || rc == 3) << "promtool check metrics failed (not only lint findings):\n" << out;  // 3: lint
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const bool dcgm_label = line.rfind("DCGM_FI_", 0) == 0 || line.rfind("fastgpu_gpu_", 0) == 0;
    EXPECT_TRUE(dcgm_label && line.find("label names should be written in 'snake_case' not 'camelCase'") !=
                                  std::string::npos)
        << "promtool check metrics: " << line;
  }

  // Every metric the alert rules and the dashboard use is in the scrape.
  const std::set<std::string> families = Families(scrape);
  for (const std::string file : {"/deploy/prometheus/alerts.yml", "/deploy/grafana/fastgpu.json"}) {
    const std::string text = ReadFile(SourceDir() + file);
    ASSERT_FALSE(text.empty()) << file;
    const std::set<std::string> names = NamesIn(text);
    EXPECT_GT(names.size(), 5u) << file;
    for (const auto& n : names) EXPECT_TRUE(Exported(families, n)) << file << " uses " << n << ", which /metrics lacks";
  }
  const json dashboard = json::parse(ReadFile(SourceDir() + "/deploy/grafana/fastgpu.json"), nullptr, false);
  ASSERT_TRUE(dashboard.is_object()) << "deploy/grafana/fastgpu.json is not valid JSON";
  EXPECT_EQ(dashboard.value("uid", ""), "fastgpu");
}

TEST_F(PrometheusTest, PrometheusScrapesWithTheTokenAndAnswersQueries) {
  const std::string id = up_.Submit({{"command", {"sleep", "60"}}, {"gpus", 1}});
  ASSERT_TRUE(up_.WaitState(id, "RUNNING"));
  const int port = FreePort();
  ASSERT_GT(port, 0);
  const std::string dir = up_.home() + "-prometheus";
  fs::create_directories(dir);
  const std::string target = up_.url().substr(up_.url().find("://") + 3);
  {
    std::ofstream f(dir + "/prometheus.yml");
    f << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "rule_files:\n  - " << SourceDir() << "/deploy/prometheus/alerts.yml\n"
      << "scrape_configs:\n  - job_name: fastgpu\n    metrics_path: /metrics\n"
      << "    authorization:\n      credentials_file: " << token_file_ << "\n"
      << "    static_configs:\n      - targets: ['" << target << "']\n";
  }
  std::vector<std::string> args = {prometheus_, "--config.file=" + dir + "/prometheus.yml",
                                   "--storage.tsdb.path=" + dir + "/data",
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string log = dir + "/prometheus.log";
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  ASSERT_EQ(posix_spawn(&prom_pid_, argv[0], &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);

  httplib::Client prom("127.0.0.1", port);
  prom.set_read_timeout(10, 0);
  auto query = [&](const std::string& q) -> json {
    auto r = prom.Get("/api/v1/query", httplib::Params{{"query", q}}, httplib::Headers{});
    if (!r || r->status != 200) return json();
    json j = json::parse(r->body, nullptr, false);
    return j.is_object() && j.value("status", "") == "success" ? j["data"]["result"] : json();
  };
  // One DCGM_FI_DEV_GPU_UTIL series per simulated GPU, scraped with the token (up == 1).
  json util;
  ASSERT_TRUE(WaitFor([&] {
    util = query("DCGM_FI_DEV_GPU_UTIL{simulated=\"true\"}");
    return util.is_array() && util.size() == 3;
  }, std::chrono::seconds(60)))
      << "series: " << util.dump() << "\nprometheus log:\n" << ReadFile(log);
  std::set<std::string> uuids;
  for (const auto& s : util) uuids.insert(s["metric"].value("UUID", ""));
  EXPECT_EQ(uuids.size(), 3u);
  for (const auto& s : util) EXPECT_EQ(s["metric"].value("job", ""), "fastgpu");  // the scrape job's label
  json up = query("up{job=\"fastgpu\"}");
  ASSERT_TRUE(up.is_array() && up.size() == 1) << up.dump();
  EXPECT_EQ(up[0]["value"][1], "1");
  // The running job's GPU carries its id and project.
  EXPECT_TRUE(WaitFor([&] {
    json r = query("DCGM_FI_DEV_GPU_UTIL{job_id=\"" + id + "\",project=\"default\"} > 50");
    return r.is_array() && r.size() == 1;
  }, std::chrono::seconds(30)));
  // Control-plane families arrive too.
  EXPECT_TRUE(WaitFor([&] {
    json r = query("fastgpu_jobs{state=\"RUNNING\"}");
    return r.is_array() && r.size() == 1 && r[0]["value"][1] == "1";
  }, std::chrono::seconds(30)));
  // The shipped rules load: Prometheus lists them.
  auto rules = prom.Get("/api/v1/rules");
  ASSERT_TRUE(rules && rules->status == 200);
  EXPECT_NE(rules->body.find("FastGPUGpuHot"), std::string::npos);
}

}  // namespace
}  // namespace fastgpu::testing
