// End-to-end tests of the HTTP API against the real binary.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <set>

#include "harness.h"

namespace fastgpu::testing {
namespace {

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override { up_.Start(); }
  UpProcess up_;
};

TEST_F(ApiTest, JobSeesItsGpusInTheEnvironment) {
  std::string id = up_.Submit({{"name", "env"},
                               {"gpus", 2},
                               {"command",
                                {"sh", "-c",
                                 "echo CVD=$CUDA_VISIBLE_DEVICES; echo JOB=$FASTGPU_JOB_ID; "
                                 "echo UUIDS=$FASTGPU_GPU_UUIDS; echo NODE=$FASTGPU_NODE; echo USER_ENV=$FOO"}},
                               {"env", {{"FOO", "bar"}}}});
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << up_.Job(id).dump();
  json job = up_.Job(id);
  ASSERT_EQ(job["assigned_gpus"].size(), 2u);
  EXPECT_EQ(job["exit_code"], 0);
  auto r = up_.Client()->Get("/v1/jobs/" + id + "/logs");
  ASSERT_TRUE(r);
  std::string logs = r->body;
  std::string uuids = job["assigned_gpus"][0].get<std::string>() + "," + job["assigned_gpus"][1].get<std::string>();
  std::string cvd = std::to_string(job["assigned_gpu_indices"][0].get<int>()) + "," +
                    std::to_string(job["assigned_gpu_indices"][1].get<int>());
  EXPECT_NE(logs.find("CVD=" + cvd + "\n"), std::string::npos) << logs;
  EXPECT_NE(logs.find("JOB=" + id + "\n"), std::string::npos) << logs;
  EXPECT_NE(logs.find("UUIDS=" + uuids + "\n"), std::string::npos) << logs;
  EXPECT_NE(logs.find("NODE=" + job["node"].get<std::string>() + "\n"), std::string::npos) << logs;
  EXPECT_NE(logs.find("USER_ENV=bar"), std::string::npos) << logs;

  auto events = up_.GetJson("/v1/jobs/" + id + "/events")["events"];
  std::vector<std::string> states;
  for (auto& e : events) states.push_back(e["to"]);
  EXPECT_EQ(states, (std::vector<std::string>{"QUEUED", "SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED"}));
}

TEST_F(ApiTest, FailedJobKeepsExitCode) {
  std::string id = up_.Submit({{"command", {"sh", "-c", "exit 7"}}});
  ASSERT_TRUE(up_.WaitState(id, "FAILED"));
  EXPECT_EQ(up_.Job(id)["exit_code"], 7);
  EXPECT_EQ(up_.Job(id)["reason"], "exit code 7");
}

TEST_F(ApiTest, CancelStopsARunningJob) {
  std::string id = up_.Submit({{"command", {"sleep", "300"}}});
  ASSERT_TRUE(up_.WaitState(id, "RUNNING"));
  auto r = up_.Client()->Post("/v1/jobs/" + id + "/cancel", "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  ASSERT_TRUE(up_.WaitState(id, "CANCELLED"));
  json job = up_.Job(id);
  EXPECT_EQ(job["signal"], SIGTERM);
  EXPECT_EQ(job["reason"], "cancelled by user");
  // Cancelling again is a clear conflict.
  r = up_.Client()->Post("/v1/jobs/" + id + "/cancel", "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);
}

TEST_F(ApiTest, CancelOfAQueuedJobNeverRunsIt) {
  std::string big = up_.Submit({{"gpus", 4}, {"command", {"sleep", "300"}}});
  ASSERT_TRUE(up_.WaitState(big, "RUNNING"));
  std::string queued = up_.Submit({{"gpus", 1}, {"command", {"true"}}});
  EXPECT_TRUE(WaitFor([&] { return up_.Job(queued)["reason"].get<std::string>().rfind("waiting", 0) == 0; }));
  EXPECT_EQ(up_.Job(queued)["state"], "QUEUED");
  up_.Client()->Post("/v1/jobs/" + queued + "/cancel", "", "application/json");
  EXPECT_EQ(up_.Job(queued)["state"], "CANCELLED");
  EXPECT_EQ(up_.Job(queued)["attempt"], 0);
}

TEST_F(ApiTest, RuntimeLimitFailsTheJob) {
  std::string id = up_.Submit({{"runtime", "1s"}, {"command", {"sleep", "300"}}});
  ASSERT_TRUE(up_.WaitState(id, "FAILED", std::chrono::seconds(30)));
  EXPECT_EQ(up_.Job(id)["reason"], "runtime limit");
}

TEST_F(ApiTest, PriorityOrderWhenTheClusterIsFull) {
  std::string blocker = up_.Submit({{"gpus", 4}, {"command", {"sleep", "300"}}});
  ASSERT_TRUE(up_.WaitState(blocker, "RUNNING"));
  std::string low = up_.Submit({{"gpus", 4}, {"priority", 10}, {"command", {"sleep", "300"}}});
  std::string high = up_.Submit({{"gpus", 4}, {"priority", 90}, {"command", {"sleep", "300"}}});
  up_.Client()->Post("/v1/jobs/" + blocker + "/cancel", "", "application/json");
  ASSERT_TRUE(up_.WaitState(high, "RUNNING"));
  EXPECT_EQ(up_.Job(low)["state"], "QUEUED");
}

TEST_F(ApiTest, BadInputGetsAClear4xxAndChangesNothing) {
  auto c = up_.Client();
  auto count = [&] { return up_.GetJson("/v1/jobs")["jobs"].size(); };
  size_t before = count();
  struct Case {
    std::string body;
    int status;
    std::string code;
  };
  std::vector<Case> cases = {
      {"{not json", 400, "invalid_argument"},
      {R"({"command":["true"],"colour":"red"})", 400, "invalid_argument"},
      {R"({"command":["true"],"gpus":-1})", 400, "invalid_argument"},
      {R"({"command":["true"],"gpus":1e30})", 400, "invalid_argument"},
      {R"({"command":["true"],"priority":500})", 400, "invalid_argument"},
      {R"({"command":["true"],"memory_mib":-5})", 400, "invalid_argument"},
      {R"({"command":["true"],"runtime":"-5s"})", 400, "invalid_argument"},
      {R"({"command":[]})", 400, "invalid_argument"},
      {R"({"command":[""]})", 400, "invalid_argument"},
      {R"({})", 400, "invalid_argument"},
      {R"([1,2])", 400, "invalid_argument"},
      {R"({"command":["true"],"gpus":64})", 422, "unschedulable"},
      {R"({"command":["true"],"gpu_type":"TPU-v9"})", 422, "unschedulable"},
  };
  for (const auto& k : cases) {
    auto r = c->Post("/v1/jobs", k.body, "application/json");
    ASSERT_TRUE(r) << k.body;
    EXPECT_EQ(r->status, k.status) << k.body << " -> " << r->body;
    auto j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_EQ(j["error"]["code"], k.code) << k.body;
    EXPECT_FALSE(j["error"]["message"].get<std::string>().empty());
  }
  std::string huge(2 << 20, 'x');
  auto r = c->Post("/v1/jobs", R"({"command":["true"],"name":")" + huge + "\"}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);

  r = c->Get("/v1/jobs/j-999999");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(json::parse(r->body)["error"]["code"], "not_found");
  r = c->Post("/v1/jobs/j-999999/cancel", "", "application/json");
  EXPECT_EQ(r->status, 404);
  r = c->Get("/v1/jobs?state=SLEEPING");
  EXPECT_EQ(r->status, 400);
  r = c->Get("/v1/jobs?limit=-3");
  EXPECT_EQ(r->status, 400);
  r = c->Get("/v1/nothing-here");
  EXPECT_EQ(r->status, 404);

  auto anon = up_.Client(/*auth=*/false);
  r = anon->Get("/v1/jobs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 401);
  r = anon->Post("/v1/jobs", R"({"command":["true"]})", "application/json");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(count(), before);
}

TEST_F(ApiTest, LogsFollowStreamsUntilTheJobEnds) {
  std::string id = up_.Submit({{"command", {"sh", "-c", "for i in 1 2 3; do echo line$i; sleep 0.2; done"}}});
  std::string got;
  auto r = up_.Client()->Get("/v1/jobs/" + id + "/logs?follow=true",
                             [&](const char* data, size_t len) {
                               got.append(data, len);
                               return true;
                             });
  ASSERT_TRUE(r);
  EXPECT_EQ(got, "line1\nline2\nline3\n");
  EXPECT_EQ(up_.Job(id)["state"], "SUCCEEDED");
}

TEST_F(ApiTest, OpenApiDocumentsEveryRoute) {
  auto doc = up_.GetJson("/v1/openapi.json");
  ASSERT_TRUE(doc.is_object());
  EXPECT_EQ(doc["openapi"].get<std::string>().substr(0, 2), "3.");
  for (const char* p : {"/v1/jobs", "/v1/jobs/{id}", "/v1/jobs/{id}/cancel", "/v1/jobs/{id}/logs",
                        "/v1/jobs/{id}/events", "/v1/jobs/{id}/wait", "/v1/gpus", "/v1/nodes", "/healthz"}) {
    EXPECT_TRUE(doc["paths"].contains(p)) << p;
  }
}

TEST_F(ApiTest, GpusAreLabelledSimulated) {
  auto gpus = up_.GetJson("/v1/gpus")["gpus"];
  ASSERT_EQ(gpus.size(), 4u);
  for (auto& g : gpus) {
    EXPECT_TRUE(g["simulated"].get<bool>());
    EXPECT_EQ(g["type"], "A100-80GB");
    EXPECT_EQ(g["memory_total_mib"], 81920);
  }
  auto nodes = up_.GetJson("/v1/nodes")["nodes"];
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_TRUE(nodes[0]["simulated"].get<bool>());
}

TEST_F(ApiTest, FractionalJobsShareAGpu) {
  std::string a = up_.Submit({{"gpus", "0.5"}, {"memory_mib", 1024}, {"command", {"sleep", "300"}}});
  std::string b = up_.Submit({{"gpus", 0.5}, {"memory_mib", 1024}, {"command", {"sleep", "300"}}});
  ASSERT_TRUE(up_.WaitState(a, "RUNNING"));
  ASSERT_TRUE(up_.WaitState(b, "RUNNING"));
  EXPECT_EQ(up_.Job(a)["gpus"], "0.5");
  EXPECT_EQ(up_.Job(a)["assigned_gpus"], up_.Job(b)["assigned_gpus"]) << "best-fit packs fractions onto one GPU";
}

TEST_F(ApiTest, JobListIsPagedWithACursorNewestFirst) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(up_.Submit({{"name", "p" + std::to_string(i)}, {"command", {"true"}}}));
  std::vector<std::string> seen;
  std::string cursor;
  int pages = 0;
  do {
    auto page = up_.GetJson("/v1/jobs?limit=3" + (cursor.empty() ? std::string() : "&cursor=" + cursor));
    ASSERT_LE(page["jobs"].size(), 3u) << page.dump();
    for (auto& j : page["jobs"]) seen.push_back(j["id"]);
    cursor = page.contains("next_cursor") && page["next_cursor"].is_string() ? page["next_cursor"].get<std::string>()
                                                                            : std::string();
    ASSERT_LT(++pages, 10);
  } while (!cursor.empty());
  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  EXPECT_EQ(seen, newest_first);
  EXPECT_EQ(pages, 3);
  for (const char* bad : {"/v1/jobs?limit=0", "/v1/jobs?limit=5000", "/v1/jobs?cursor=zzz"}) {
    auto r = up_.Client()->Get(bad);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad << " -> " << r->body;
  }
}

// Long-polls and idle sockets hold no server thread: with hundreds of them open, the API still serves
// everyone else, and their job is unaffected when they all disconnect.
TEST_F(ApiTest, HundredsOfWaitersFollowersAndIdleSocketsDoNotStopTheApi) {
  std::string id = up_.Submit({{"command", {"sh", "-c", "while true; do echo tick; sleep 1; done"}}});
  ASSERT_TRUE(up_.WaitState(id, "RUNNING"));
  int port = std::stoi(up_.url().substr(up_.url().rfind(':') + 1));
  std::string auth = "Authorization: Bearer " + up_.token() + "\r\n";
  std::vector<int> fds;
  auto open = [&](const std::string& request) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    if (!request.empty()) {
      ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), static_cast<ssize_t>(request.size()));
    }
    fds.push_back(fd);
  };
  for (int i = 0; i < 200; ++i) {
    open("GET /v1/jobs/" + id + "/wait?timeout=300s HTTP/1.1\r\nHost: t\r\n" + auth + "\r\n");
    open("GET /v1/jobs/" + id + "/logs?follow=true HTTP/1.1\r\nHost: t\r\n" + auth + "\r\n");
    open("");
  }
  // The old thread-per-connection server stopped answering after 64 of these.
  auto r = up_.Client()->Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  std::string other = up_.Submit({{"command", {"true"}}});
  EXPECT_TRUE(up_.WaitState(other, "SUCCEEDED"));
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(up_.Job(id)["state"], "RUNNING");
  r = up_.Client()->Get("/v1/jobs/" + id + "/wait?timeout=1s");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
}

}  // namespace
}  // namespace fastgpu::testing
