// Fleet mode with the real binary: `fastgpu server` (no local agent) and two `fastgpu agent` processes with
// simulated GPUs and their own homes join with one-time tokens; jobs land on both nodes, their logs are read
// through the server, and a node's credential is good only for its own node's agent routes.
#include <fcntl.h>
#include <sys/stat.h>

#include <set>

#include "integration/harness.h"
#include "support/podman_image.h"
#include "support/self_signed_cert.h"
#include "support/source_path.h"

namespace fastgpu::testing {
namespace {

// A `fastgpu` process with its output in a log file.
class Proc {
 public:
  Proc() = default;
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  ~Proc() { Stop(SIGKILL); }
  // `env`: NAME=VALUE entries that replace or add to this process's environment.
  void Start(const std::vector<std::string>& args, const std::string& log, const std::vector<std::string>& env = {}) {
    log_ = log;
    std::vector<std::string> all = {Bin()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> vars = env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string v = *e;
      const std::string name = v.substr(0, v.find('='));
      if (std::none_of(env.begin(), env.end(), [&](const std::string& x) { return x.rfind(name + "=", 0) == 0; }))
        vars.push_back(v);
    }
    std::vector<char*> envp;
    for (auto& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    ASSERT_EQ(posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), envp.data()), 0) << "cannot start " << Bin();
    posix_spawn_file_actions_destroy(&fa);
  }
  void Stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // Exit code once it has ended on its own (-1 while it runs).
  int ExitCode() {
    if (pid_ <= 0) return -1;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) != pid_) return -1;
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  }
  std::string Log() const { return ReadFile(log_); }

 private:
  pid_t pid_ = -1;
  std::string log_;
};

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-fleet-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    home_ = dir_ + "/server";
  }
  void TearDown() override {
    for (auto* p : {&agent_b_, &agent_c_}) p->Stop(SIGKILL);
    server_.Stop(SIGTERM);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void StartServer(std::vector<std::string> extra = {}) {
    fs::remove(home_ + "/url");
    std::vector<std::string> args = {"server", "--home", home_, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_.Start(args, dir_ + "/server.log");
    ASSERT_TRUE(WaitFor([&] { return fs::exists(home_ + "/url"); })) << server_.Log();
    url_ = Trim(ReadFile(home_ + "/url"));
    admin_ = Trim(ReadFile(home_ + "/admin.token"));
  }

  // The CLI against the server, as its admin (FASTGPU_HOME = the server's home).
  CliResult Cli(const std::vector<std::string>& args) const {
    std::string cmd = "FASTGPU_HOME='" + home_ + "' '" + Bin() + "'";
    if (!ca_.empty()) cmd += " --ca '" + ca_ + "'";
    for (const auto& a : args) cmd += " '" + a + "'";
    const std::string out = dir_ + "/cli.out", err = dir_ + "/cli.err";
    cmd += " </dev/null >'" + out + "' 2>'" + err + "'";
    int rc = std::system(cmd.c_str());
    return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ReadFile(out), ReadFile(err)};
  }

  std::string JoinToken() {
    auto r = Cli({"node", "token", "create", "--ttl", "1h"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("fgj_", 0), 0u) << r.out;
    return Trim(r.out);
  }

  void StartAgent(Proc& p, const std::string& name, const std::string& gpus, const std::string& token,
                  const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"agent", "--server", url_, "--home", dir_ + "/" + name, "--sim-gpus", gpus};
    if (!token.empty()) {
      args.push_back("--join-token");
      args.push_back(token);
      args.push_back("--name");
      args.push_back(name);
    }
    if (!ca_.empty()) {
      args.push_back("--ca");
      args.push_back(ca_);
    }
    p.Start(args, dir_ + "/" + name + ".log", env);
  }

  json Nodes() {
    auto r = Cli({"node", "list", "--output", "json"});
    return r.exit_code == 0 ? json::parse(r.out, nullptr, false) : json();
  }
  std::string NodeState(const std::string& name) {
    for (const auto& n : Nodes())
      if (n.value("name", "") == name) return n.value("state", "");
    return "";
  }
  std::string Submit(const std::string& gpu_type, const std::string& script) {
    auto r = Cli({"job", "submit", "--gpus", "1", "--gpu-type", gpu_type, "--", "sh", "-c", script});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return Trim(r.out);
  }
  json Job(const std::string& id) {
    auto r = Cli({"job", "get", id, "--output", "json"});
    return r.exit_code == 0 ? json::parse(r.out, nullptr, false) : json();
  }

  httplib::Result Agent(const std::string& credential, const std::string& method, const std::string& path,
                        const std::string& body, const std::string& version = "6") {
    httplib::Client c(url_);
    httplib::Headers h{{"Authorization", "Bearer " + credential}, {"X-FastGPU-Agent-Protocol", version}};
    if (method == "GET") return c.Get(path, h);
    return c.Post(path, h, body, "application/json");
  }

  std::string dir_, home_, url_, admin_, ca_;
  Proc server_, agent_b_, agent_c_;
};

TEST_F(FleetTest, TwoAgentsJoinRunJobsServeLogsAndKeepToTheirOwnNode) {
  StartServer();
  // `fastgpu server` runs no agent of its own.
  EXPECT_TRUE(Nodes().empty()) << Nodes().dump();
  const std::string tb = JoinToken(), tc = JoinToken();
  StartAgent(agent_b_, "gpu-b", "2xA100-80GB", tb);
  StartAgent(agent_c_, "gpu-c", "2xH100-80GB", tc);
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready" && NodeState("gpu-c") == "ready"; }))
      << Nodes().dump() << agent_b_.Log() << agent_c_.Log();

  // The credential is stored 0600 in the agent's home; the join token is used up.
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/gpu-b/node.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const json idb = json::parse(ReadFile(dir_ + "/gpu-b/node.json"));
  const std::string cred_b = idb.value("credential", "");
  EXPECT_EQ(cred_b.rfind("fgn_", 0), 0u);
  {
    httplib::Client c(url_);
    auto again = c.Post("/v1/agent/join", {{"X-FastGPU-Agent-Protocol", "6"}},
                        json{{"token", tb}, {"node", "gpu-x"}, {"protocol_version", 6}}.dump(), "application/json");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 401) << again->body;
  }

  // Jobs land on both nodes; their output is read through the server, also while it is written.
  const std::string jb = Submit("A100-80GB", "echo from-$FASTGPU_NODE; sleep 1; echo b-done");
  const std::string jc = Submit("H100-80GB", "echo from-$FASTGPU_NODE; echo c-done");
  auto follow = Cli({"job", "logs", "-f", jb});
  EXPECT_EQ(follow.exit_code, 0) << follow.err;
  EXPECT_EQ(follow.out, "from-gpu-b\nb-done\n");
  ASSERT_TRUE(WaitFor([&] { return Job(jc).value("state", "") == "SUCCEEDED"; })) << Job(jc).dump();
  EXPECT_EQ(Job(jb).value("state", ""), "SUCCEEDED");
  EXPECT_EQ(Job(jb).value("node", ""), "gpu-b");
  EXPECT_EQ(Job(jc).value("node", ""), "gpu-c");
  auto logs_c = Cli({"job", "logs", jc});
  EXPECT_EQ(logs_c.out, "from-gpu-c\nc-done\n") << logs_c.err;
  // When each line was written reached the server with the lines (the node's time index, pushed before them).
  EXPECT_TRUE(fs::exists(home_ + "/node-logs/gpu-c/" + jc + ".log.times"));
  auto stamped = Cli({"job", "logs", jc, "--timestamps", "--tail", "1"});
  EXPECT_EQ(stamped.exit_code, 0) << stamped.err;
  EXPECT_EQ(stamped.err, "");
  ASSERT_EQ(stamped.out.size(), 24u + 1 + 7) << stamped.out;  // "2026-12-08T10:00:00.123Z c-done\n"
  EXPECT_EQ(stamped.out.substr(23), "Z c-done\n") << stamped.out;
  EXPECT_EQ(stamped.out[10], 'T') << stamped.out;

  // Node B's credential: only the agent routes, only for node B.
  auto hb = Agent(cred_b, "POST", "/v1/agent/heartbeat", json{{"node", "gpu-c"}, {"gpus", json::array()}}.dump());
  ASSERT_TRUE(hb);
  EXPECT_EQ(hb->status, 403) << hb->body;
  auto rep = Agent(cred_b, "POST", "/v1/agent/reports",
                   json{{"reports", {{{"kind", "exited"}, {"job_id", jc}, {"attempt", 1}, {"node", "gpu-c"},
                                      {"exit_code", 1}}}}}.dump());
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->status, 403) << rep->body;
  auto log_push = Agent(cred_b, "POST", "/v1/agent/logs?job=" + jc + "&offset=0", "forged");
  ASSERT_TRUE(log_push);
  EXPECT_EQ(log_push->status, 403) << log_push->body;
  auto times_push = Agent(cred_b, "POST", "/v1/agent/log-times?job=" + jc + "&offset=0", std::string(24, 'x'));
  ASSERT_TRUE(times_push);
  EXPECT_EQ(times_push->status, 403) << times_push->body;
  EXPECT_EQ(Cli({"job", "logs", jc}).out, "from-gpu-c\nc-done\n");
  {
    httplib::Client c(url_);
    auto user_route = c.Get("/v1/jobs", {{"Authorization", "Bearer " + cred_b}});
    ASSERT_TRUE(user_route);
    EXPECT_EQ(user_route->status, 401) << user_route->body;
    // And an API token is no node credential.
    auto admin_as_node = Agent(admin_, "POST", "/v1/agent/heartbeat", json{{"node", "gpu-b"}}.dump());
    ASSERT_TRUE(admin_as_node);
    EXPECT_EQ(admin_as_node->status, 401) << admin_as_node->body;
  }
  // A protocol version mismatch is refused, naming both versions.
  auto old = Agent(cred_b, "POST", "/v1/agent/heartbeat", json{{"node", "gpu-b"}}.dump(), "7");
  ASSERT_TRUE(old);
  EXPECT_EQ(old->status, 409);
  EXPECT_NE(old->body.find("server speaks version 6"), std::string::npos) << old->body;
  EXPECT_NE(old->body.find("version 7"), std::string::npos) << old->body;

  // A restarted agent reuses its credential (no token) and the GPUs it joined with, and keeps serving.
  agent_b_.Stop(SIGKILL);
  StartAgent(agent_b_, "gpu-b", "auto", "");
  auto serving = [&] {
    size_t n = 0;
    const std::string log = agent_b_.Log();
    for (size_t at = log.find("(simulated GPUs 2xA100-80GB) serving"); at != std::string::npos;
         at = log.find("(simulated GPUs 2xA100-80GB) serving", at + 1))
      ++n;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return serving() == 2; })) << agent_b_.Log();
  // Restarted with the same (spent) join token, as a service whose environment still holds it: this home
  // joined with that token, so the agent reuses its credential instead of failing to join again.
  agent_b_.Stop(SIGKILL);
  StartAgent(agent_b_, "gpu-b", "auto", tb);
  ASSERT_TRUE(WaitFor([&] { return serving() == 3; })) << agent_b_.Log();
  const std::string jb2 = Submit("A100-80GB", "echo again-$FASTGPU_NODE");
  ASSERT_TRUE(WaitFor([&] { return Job(jb2).value("state", "") == "SUCCEEDED"; })) << Job(jb2).dump() << agent_b_.Log();
  EXPECT_EQ(Cli({"job", "logs", jb2}).out, "again-gpu-b\n");

  // Cordon, drain --wait, remove: the credential stops working.
  ASSERT_EQ(Cli({"node", "cordon", "gpu-b"}).exit_code, 0);
  EXPECT_EQ(NodeState("gpu-b"), "cordoned");
  const std::string jwait = Submit("A100-80GB", "true");
  ASSERT_TRUE(WaitFor([&] { return Job(jwait).value("state", "") == "QUEUED" &&
                                   Job(jwait).value("reason", "").find("waiting") != std::string::npos; }));
  ASSERT_EQ(Cli({"node", "uncordon", "gpu-b"}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] { return Job(jwait).value("state", "") == "SUCCEEDED"; })) << Job(jwait).dump();
  const std::string jlong = Submit("A100-80GB", "sleep 1");
  ASSERT_TRUE(WaitFor([&] { return Job(jlong).value("state", "") == "RUNNING"; }));
  auto drained = Cli({"node", "drain", "gpu-b", "--wait", "--timeout", "60s"});
  EXPECT_EQ(drained.exit_code, 0) << drained.err;
  EXPECT_EQ(Job(jlong).value("state", ""), "SUCCEEDED");
  EXPECT_EQ(NodeState("gpu-b"), "drained");
  auto removed = Cli({"node", "remove", "gpu-b"});
  EXPECT_EQ(removed.exit_code, 0) << removed.err;
  EXPECT_EQ(NodeState("gpu-b"), "");
  auto revoked = Agent(cred_b, "POST", "/v1/agent/heartbeat", json{{"node", "gpu-b"}}.dump());
  ASSERT_TRUE(revoked);
  EXPECT_EQ(revoked->status, 401) << revoked->body;
  // The removed node's agent stops, saying why.
  ASSERT_TRUE(WaitFor([&] { return agent_b_.ExitCode() == 1; })) << agent_b_.Log();
  EXPECT_NE(agent_b_.Log().find("refused node gpu-b's credential"), std::string::npos) << agent_b_.Log();
  // Only an admin creates join tokens.
  httplib::Client admin(url_);
  admin.set_bearer_token_auth(admin_);
  ASSERT_TRUE(admin.Post("/v1/users", json{{"name", "bob"}}.dump(), "application/json"));
  auto t = admin.Post("/v1/tokens", json{{"user", "bob"}, {"name", "it"}}.dump(), "application/json");
  ASSERT_TRUE(t);
  const std::string bob = json::parse(t->body, nullptr, false).value("token", "");
  httplib::Client as_bob(url_);
  as_bob.set_bearer_token_auth(bob);
  auto refused = as_bob.Post("/v1/node-tokens", "{}", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403) << refused->body;
}

// kill -9 of an agent: its node is DOWN after --node-timeout, the job (max_retries 1) is requeued and finishes
// on the other node; attempt 1 is stopped on its node by its supervisor once the node's lease has run out
// (fencing), before the retry starts. Prints the detection and requeue times (figures, not assertions).
TEST_F(FleetTest, AKilledAgentsNodeIsDownItsJobRunsElsewhereAndTheStaleAttemptIsStopped) {
  StartServer({"--node-timeout", "5s", "--fence-timeout", "6s", "--stop-grace", "1s"});
  StartAgent(agent_b_, "gpu-b", "1xA100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready"; })) << agent_b_.Log();
  auto r = Cli({"job", "submit", "--gpus", "1", "--max-retries", "1", "--", "sh", "-c",
                "echo start-$FASTGPU_NODE; sleep 8; echo end-$FASTGPU_NODE"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "RUNNING"; })) << Job(id).dump();
  const int64_t pid = Job(id).value("pid", int64_t{0});
  ASSERT_GT(pid, 0);
  StartAgent(agent_c_, "gpu-c", "1xA100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-c") == "ready"; })) << agent_c_.Log();

  agent_b_.Stop(SIGKILL);  // the job's process goes on: only the agent is gone
  const auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "down"; }, std::chrono::seconds(15))) << Nodes().dump();
  const auto down = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("node", "") == "gpu-c" && Job(id).value("state", "") == "RUNNING"; },
                      std::chrono::seconds(15)))
      << Job(id).dump();
  const auto moved = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::printf("[ figure ] node DOWN %lld ms after kill -9 (node timeout 5 s, fence 6 s, stop grace 1 s, heartbeats "
              "every 2 s); running on gpu-c %lld ms after kill\n",
              static_cast<long long>(ms(down - killed)), static_cast<long long>(ms(moved - killed)));
  EXPECT_EQ(Job(id).value("attempt", 0), 2);
  bool lost = false;
  auto events = Cli({"job", "events", id, "--output", "json"});
  for (const auto& e : json::parse(events.out, nullptr, false).value("events", json::array()))
    lost |= e.value("to", "") == "LOST" && e.value("reason", "").find("gpu-b is down") != std::string::npos;
  EXPECT_TRUE(lost) << events.out;

  // Fenced: attempt 1 was stopped on gpu-b (no agent there) before the retry started on gpu-c.
  EXPECT_NE(::kill(static_cast<pid_t>(pid), 0), 0) << "attempt 1 still runs on gpu-b beside its retry";
  // gpu-b's agent comes back: it reports the fenced attempt, which changes nothing.
  StartAgent(agent_b_, "gpu-b", "1xA100-80GB", "");
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "SUCCEEDED"; }, std::chrono::seconds(20)))
      << Job(id).dump();
  EXPECT_EQ(Job(id).value("node", ""), "gpu-c");
  EXPECT_EQ(Cli({"job", "logs", id}).out, "start-gpu-c\nend-gpu-c\n");
  EXPECT_EQ(NodeState("gpu-b"), "ready");
}

// A job asking for more GPUs than one node has runs on both nodes, one process each, with the rendezvous
// environment (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT ...); each member's output is read with --rank.
// Then, when Debian's python3-torch is installed, a torch.distributed all_reduce (gloo) across the two
// agents using only that environment.
TEST_F(FleetTest, AGangJobRunsOneProcessPerNodeWithTheRendezvousEnvironment) {
  StartServer();
  StartAgent(agent_b_, "gpu-b", "2xA100-80GB", JoinToken());
  StartAgent(agent_c_, "gpu-c", "2xA100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready" && NodeState("gpu-c") == "ready"; }))
      << Nodes().dump() << agent_b_.Log() << agent_c_.Log();
  auto r = Cli({"job", "submit", "--gpus", "4", "--", "sh", "-c",
                "echo $RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT $NODE_RANK $LOCAL_RANK $FASTGPU_NUM_NODES "
                "$FASTGPU_NODE_RANK $FASTGPU_GPUS_PER_NODE $FASTGPU_NODE $CUDA_VISIBLE_DEVICES"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "SUCCEEDED"; })) << Job(id).dump();
  const json job = Job(id);
  ASSERT_EQ(job.value("members", json::array()).size(), 2u) << job.dump();
  EXPECT_EQ(job.value("assigned_gpus", json::array()).size(), 4u);
  std::set<std::string> nodes;
  std::string master_port;
  for (int rank = 0; rank < 2; ++rank) {
    const std::string node = job["members"][rank].value("node", "");
    nodes.insert(node);
    auto logs = Cli({"job", "logs", id, "--rank", std::to_string(rank)});
    ASSERT_EQ(logs.exit_code, 0) << logs.err;
    std::istringstream in(logs.out);
    std::string rk, world, addr, mport, node_rank, local_rank, num_nodes, fnode_rank, per_node, fnode, cuda;
    in >> rk >> world >> addr >> mport >> node_rank >> local_rank >> num_nodes >> fnode_rank >> per_node >> fnode >> cuda;
    EXPECT_EQ(rk, std::to_string(rank)) << logs.out;
    EXPECT_EQ(world, "2") << logs.out;
    EXPECT_EQ(addr, "127.0.0.1") << logs.out;  // where rank 0's agent connects from
    EXPECT_EQ(node_rank, std::to_string(rank)) << logs.out;
    EXPECT_EQ(local_rank, "0") << logs.out;
    EXPECT_EQ(num_nodes, "2") << logs.out;
    EXPECT_EQ(fnode_rank, std::to_string(rank)) << logs.out;
    EXPECT_EQ(per_node, "2") << logs.out;
    EXPECT_EQ(fnode, node) << logs.out;
    EXPECT_EQ(cuda, "0,1") << logs.out;
    EXPECT_GE(std::atoi(mport.c_str()), 30000) << logs.out;
    if (rank == 0) master_port = mport;
    EXPECT_EQ(mport, master_port) << logs.out;
  }
  EXPECT_EQ(nodes, (std::set<std::string>{"gpu-b", "gpu-c"}));
  EXPECT_EQ(Cli({"job", "logs", id}).out, Cli({"job", "logs", id, "--rank", "0"}).out);
  auto bad = Cli({"job", "logs", id, "--rank", "2"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("has 2 rank(s)"), std::string::npos) << bad.err;

  // A real PyTorch job across the two agents.
  if (std::system("/usr/bin/python3 -c 'import torch.distributed' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "the all_reduce part needs /usr/bin/python3 with torch (Debian python3-torch); not installed here";
  const std::string script = SourcePath("tests/integration/fleet/allreduce.py");
  ASSERT_TRUE(fs::exists(script)) << script;
  auto t = Cli({"job", "submit", "--gpus", "4", "--", "/usr/bin/python3", script});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const std::string tid = Trim(t.out);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string st = Job(tid).value("state", "");
        return st == "SUCCEEDED" || st == "FAILED" || st == "CANCELLED";
      },
      std::chrono::seconds(120)))
      << Job(tid).dump();
  for (int rank = 0; rank < 2; ++rank) {
    auto logs = Cli({"job", "logs", tid, "--rank", std::to_string(rank)});
    EXPECT_NE(logs.out.find("rank " + std::to_string(rank) + "/2"), std::string::npos) << logs.out;
    EXPECT_NE(logs.out.find(" ok"), std::string::npos) << logs.out;
  }
  EXPECT_EQ(Job(tid).value("state", ""), "SUCCEEDED") << Job(tid).dump();
}

// With --process-per-gpu the same gang runs one process per GPU: ranks 0..3 across the two nodes (RANK =
// node rank × GPUs per node + LOCAL_RANK), WORLD_SIZE 4, the same MASTER_ADDR and MASTER_PORT everywhere; then,
// with python3-torch, a 4-process all_reduce across the two agents.
TEST_F(FleetTest, AGangJobWithOneProcessPerGpuCountsRanksPerProcess) {
  StartServer();
  StartAgent(agent_b_, "gpu-b", "2xA100-80GB", JoinToken());
  StartAgent(agent_c_, "gpu-c", "2xA100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready" && NodeState("gpu-c") == "ready"; }))
      << Nodes().dump() << agent_b_.Log() << agent_c_.Log();
  auto r = Cli({"job", "submit", "--gpus", "4", "--process-per-gpu", "--", "sh", "-c",
                "echo rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE node=$NODE_RANK master=$MASTER_ADDR:$MASTER_PORT"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "SUCCEEDED"; })) << Job(id).dump();
  ASSERT_EQ(Job(id).value("members", json::array()).size(), 2u) << Job(id).dump();
  std::string master;
  for (int node = 0; node < 2; ++node) {
    auto logs = Cli({"job", "logs", id, "--rank", std::to_string(node)});
    ASSERT_EQ(logs.exit_code, 0) << logs.err;
    for (int local = 0; local < 2; ++local) {
      const std::string want = "rank=" + std::to_string(node * 2 + local) + " local=" + std::to_string(local) +
                               " world=4 node=" + std::to_string(node) + " master=";
      const size_t at = logs.out.find(want);
      ASSERT_NE(at, std::string::npos) << want << "\n" << logs.out;
      const std::string m = logs.out.substr(at + want.size(), logs.out.find('\n', at) - at - want.size());
      if (master.empty()) master = m;
      EXPECT_EQ(m, master) << logs.out;
    }
  }
  EXPECT_EQ(master.rfind("127.0.0.1:", 0), 0u) << master;

  if (std::system("/usr/bin/python3 -c 'import torch.distributed' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "the all_reduce part needs /usr/bin/python3 with torch (Debian python3-torch); not installed here";
  const std::string script = SourcePath("tests/integration/fleet/allreduce.py");
  auto t = Cli({"job", "submit", "--gpus", "4", "--process-per-gpu", "--", "/usr/bin/python3", script});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const std::string tid = Trim(t.out);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string st = Job(tid).value("state", "");
        return st == "SUCCEEDED" || st == "FAILED" || st == "CANCELLED";
      },
      std::chrono::seconds(120)))
      << Job(tid).dump();
  for (int node = 0; node < 2; ++node) {
    auto logs = Cli({"job", "logs", tid, "--rank", std::to_string(node)});
    for (int local = 0; local < 2; ++local) {
      EXPECT_NE(logs.out.find("rank " + std::to_string(node * 2 + local) + "/4 "), std::string::npos) << logs.out;
    }
    EXPECT_EQ(logs.out.find("WRONG"), std::string::npos) << logs.out;
  }
  EXPECT_EQ(Job(tid).value("state", ""), "SUCCEEDED") << Job(tid).dump();
}

// A cancel acknowledged just before the server is killed (its stop not delivered: the agent is away too) is
// carried out once both are back: the stop is durable.
TEST_F(FleetTest, ACancelJustBeforeAKill9OfTheServerIsCarriedOutAfterTheRestart) {
  StartServer();
  StartAgent(agent_b_, "gpu-b", "1xA100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready"; })) << agent_b_.Log();
  auto r = Cli({"job", "submit", "--", "sleep", "120"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "RUNNING"; })) << Job(id).dump();
  const int64_t pid = Job(id).value("pid", int64_t{0});
  ASSERT_GT(pid, 0);
  agent_b_.Stop(SIGKILL);  // the job goes on; nobody can take the stop now
  auto cancel = Cli({"job", "cancel", id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  server_.Stop(SIGKILL);
  // The same server (home, port) and the same agent come back.
  const std::string port = url_.substr(url_.rfind(':') + 1);
  fs::remove(home_ + "/url");
  server_.Start({"server", "--home", home_, "--listen", "127.0.0.1:" + port}, dir_ + "/server.log");
  ASSERT_TRUE(WaitFor([&] { return fs::exists(home_ + "/url"); })) << server_.Log();
  EXPECT_EQ(Job(id).value("state", ""), "RUNNING");
  StartAgent(agent_b_, "gpu-b", "auto", "");
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "CANCELLED"; }, std::chrono::seconds(30)))
      << Job(id).dump() << agent_b_.Log();
  EXPECT_NE(::kill(static_cast<pid_t>(pid), 0), 0) << "the job's process still runs";
}

TEST_F(FleetTest, AgentJoinsOverHttpsWithTheServersCa) {
  testing_support::WriteSelfSignedCert(dir_ + "/cert.pem", dir_ + "/key.pem");
  StartServer({"--tls-cert", dir_ + "/cert.pem", "--tls-key", dir_ + "/key.pem"});
  ASSERT_EQ(url_.rfind("https://", 0), 0u) << url_;
  ca_ = dir_ + "/cert.pem";
  const std::string token = JoinToken();
  // Without the CA the agent refuses the server's certificate, and says what to do.
  {
    std::string saved = ca_;
    ca_.clear();
    Proc p;
    StartAgent(p, "gpu-t", "1xA100-80GB", token);
    ASSERT_TRUE(WaitFor([&] { return p.ExitCode() != -1 || p.Log().find("error") != std::string::npos; }));
    p.Stop(SIGKILL);
    EXPECT_NE(p.Log().find("--ca"), std::string::npos) << p.Log();
    ca_ = saved;
  }
  StartAgent(agent_b_, "gpu-t", "1xA100-80GB", token);
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-t") == "ready"; })) << Nodes().dump() << agent_b_.Log();
  const std::string id = Submit("A100-80GB", "echo over-tls");
  auto logs = Cli({"job", "logs", "-f", id});
  EXPECT_EQ(logs.out, "over-tls\n") << logs.err;
  EXPECT_EQ(Job(id).value("state", ""), "SUCCEEDED");
}

// Code sync in a fleet (docs/sync.md): the remote agent fetches the job's code archive with its node credential,
// checks it and unpacks it; another node's credential gets nothing; job files says where the files are.
TEST_F(FleetTest, ARemoteAgentFetchesTheSyncedCodeOfItsOwnJobsOnly) {
  StartServer();
  StartAgent(agent_b_, "gpu-b", "1xA100-80GB", JoinToken());
  StartAgent(agent_c_, "gpu-c", "1xH100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready" && NodeState("gpu-c") == "ready"; }))
      << Nodes().dump() << agent_b_.Log() << agent_c_.Log();
  const std::string code = dir_ + "/code";
  fs::create_directories(code + "/lib");
  std::ofstream(code + "/lib/model.py") << "layers = 7\n";
  std::ofstream(code + "/.gitignore") << "*.ckpt\n";
  std::ofstream(code + "/old.ckpt") << "big";
  auto r = Cli({"job", "submit", "--gpu-type", "A100-80GB", "--sync", code, "--", "sh", "-c",
                "cat lib/model.py; test -e old.ckpt && echo ckpt-present; echo done"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "SUCCEEDED"; }, std::chrono::seconds(30)))
      << Job(id).dump() << agent_b_.Log();
  std::string log;
  ASSERT_TRUE(WaitFor([&] {
    log = Cli({"job", "logs", id}).out;
    return log.find("done") != std::string::npos;
  })) << log;
  EXPECT_NE(log.find("layers = 7"), std::string::npos) << log;
  EXPECT_EQ(log.find("ckpt-present"), std::string::npos) << log;
  const std::string sha = Job(id).value("sync", "");
  ASSERT_EQ(sha.size(), 64u);
  EXPECT_TRUE(fs::exists(dir_ + "/gpu-b/blobs/" + sha));  // kept for the next job of the same code
  // gpu-c's credential: the job was not placed there.
  const std::string cred_c = json::parse(ReadFile(dir_ + "/gpu-c/node.json")).value("credential", "");
  auto other = Agent(cred_c, "GET", "/v1/agent/blobs?job=" + id, "");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 403) << other->body;
  const std::string cred_b = json::parse(ReadFile(dir_ + "/gpu-b/node.json")).value("credential", "");
  auto own = Agent(cred_b, "GET", "/v1/agent/blobs?job=" + id, "");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 200);
  EXPECT_EQ(own->body.rfind("FGSYNC1\n", 0), 0u);
  // The files of a job on a remote node are read through the server from its agent (more in
  // JobFilesOfARemoteJobAreRelayedThroughItsAgent).
  auto files = Cli({"job", "files", id});
  EXPECT_EQ(files.exit_code, 0) << files.err;
  EXPECT_NE(files.out.find("lib/model.py"), std::string::npos) << files.out;
}

// `job files` of a job on a remote node: the server asks the node's agent (a files command) and relays its answer,
// with the same rules as for the server's own node (no '..', no symlink followed, not found); a file larger than
// one answer comes piece by piece; a node that is gone is said to be so.
TEST_F(FleetTest, JobFilesOfARemoteJobAreRelayedThroughItsAgent) {
  StartServer({"--node-timeout", "5s"});
  StartAgent(agent_b_, "gpu-b", "1xA100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready"; })) << Nodes().dump() << agent_b_.Log();
  const std::string id = Submit("A100-80GB",
                                "mkdir -p out && echo result-42 > out/result.txt && "
                                "head -c 1000000 /dev/urandom > big.bin && ln -s /etc/passwd link && echo done");
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "SUCCEEDED"; }, std::chrono::seconds(30)))
      << Job(id).dump() << agent_b_.Log();
  const std::string work = dir_ + "/gpu-b/jobs/" + id + "/work";
  ASSERT_TRUE(fs::exists(work + "/big.bin"));

  auto list = Cli({"job", "files", id});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("out/result.txt"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("big.bin"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("link (symlink)"), std::string::npos) << list.out;
  auto listed = Cli({"job", "files", id, "out", "--output", "json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  const json lj = json::parse(listed.out, nullptr, false);
  ASSERT_TRUE(lj.is_object()) << listed.out;
  ASSERT_EQ(lj["files"].size(), 1u) << listed.out;
  EXPECT_EQ(lj["files"][0].value("path", ""), "out/result.txt");
  EXPECT_EQ(lj["files"][0].value("size", 0), 10);

  auto one = Cli({"job", "files", id, "out/result.txt"});
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, "result-42\n");
  // The whole work dir, the 1 MB file in four pieces.
  const std::string dl = dir_ + "/download";
  auto all = Cli({"job", "files", id, "-o", dl});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(ReadFile(dl + "/out/result.txt"), "result-42\n");
  const std::string big = ReadFile(dl + "/big.bin");
  EXPECT_EQ(big.size(), 1'000'000u);
  EXPECT_TRUE(big == ReadFile(work + "/big.bin")) << "big.bin differs";
  EXPECT_FALSE(fs::exists(dl + "/link"));

  auto symlink = Cli({"job", "files", id, "link"});
  EXPECT_NE(symlink.exit_code, 0);
  EXPECT_NE(symlink.err.find("symlink"), std::string::npos) << symlink.err;
  auto up = Cli({"job", "files", id, "out/../../x"});
  EXPECT_NE(up.exit_code, 0);
  EXPECT_NE(up.err.find("'..'"), std::string::npos) << up.err;
  auto missing = Cli({"job", "files", id, "nothere"});
  EXPECT_EQ(missing.exit_code, 3) << missing.err;
  EXPECT_NE(missing.err.find("no 'nothere' in the work dir of job " + id), std::string::npos) << missing.err;

  // The node goes away: once it is down, the answer says its agent is not connected (before that, a request waits
  // for its deadline and says the node did not answer).
  agent_b_.Stop(SIGKILL);
  CliResult gone;
  ASSERT_TRUE(WaitFor(
      [&] {
        gone = Cli({"job", "files", id});
        return gone.err.find("not connected") != std::string::npos;
      },
      std::chrono::seconds(60)))
      << gone.err;
  EXPECT_NE(gone.exit_code, 0);
  EXPECT_NE(gone.err.find("gpu-b"), std::string::npos) << gone.err;
}

// Container jobs run only on nodes with podman (label containers=podman): in a fleet where one node has none, an
// image job lands on the other one, although best-fit would prefer the first (its single GPU); a plain job still goes
// there.
TEST_F(FleetTest, AContainerJobLandsOnTheNodeWithPodman) {
  const std::string why = PodmanImage::SetUp();  // the image, and CONTAINERS_CONF for every fastgpu started here
  struct Cleanup {
    ~Cleanup() { PodmanImage::TearDown(); }
  } cleanup;
  if (why.rfind("skip: ", 0) == 0) GTEST_SKIP() << why.substr(6);
  ASSERT_TRUE(why.empty()) << why;
  StartServer();
  // gpu-b's agent finds no podman on its PATH.
  fs::create_directories(dir_ + "/no-podman");
  StartAgent(agent_b_, "gpu-b", "1xA100-80GB", JoinToken(), {"PATH=" + dir_ + "/no-podman"});
  StartAgent(agent_c_, "gpu-c", "2xA100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready" && NodeState("gpu-c") == "ready"; }))
      << Nodes().dump() << agent_b_.Log() << agent_c_.Log();
  for (const auto& n : Nodes()) {
    const bool podman = n.value("labels", json::object()).value("containers", "") == "podman";
    EXPECT_EQ(podman, n.value("name", "") == "gpu-c") << n.dump();
  }
  auto r = Cli({"job", "submit", "--image", PodmanImage::kImage, "--", "sh", "-c", "echo in-container"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string ctr = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return Job(ctr).value("state", "") == "SUCCEEDED"; }, std::chrono::seconds(60)))
      << Job(ctr).dump() << agent_c_.Log() << Cli({"job", "logs", ctr}).out;
  EXPECT_EQ(Job(ctr).value("node", ""), "gpu-c");
  EXPECT_TRUE(WaitFor([&] { return Cli({"job", "logs", ctr}).out.find("in-container") != std::string::npos; }));
  // Without an image, best-fit takes gpu-b (the test has teeth).
  r = Cli({"job", "submit", "--", "/bin/sh", "-c", "echo plain"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string plain = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return Job(plain).value("state", "") == "SUCCEEDED"; }, std::chrono::seconds(30)))
      << Job(plain).dump() << agent_b_.Log();
  EXPECT_EQ(Job(plain).value("node", ""), "gpu-b");
}

// `job exec` through remote agents (docs/exec.md): the server relays the session to the node of the rank asked for;
// the node's agent runs the command with that member's environment.
TEST_F(FleetTest, ExecRunsOnTheNodeOfTheRankAskedFor) {
  StartServer();
  StartAgent(agent_b_, "gpu-b", "2xA100-80GB", JoinToken());
  StartAgent(agent_c_, "gpu-c", "2xA100-80GB", JoinToken());
  ASSERT_TRUE(WaitFor([&] { return NodeState("gpu-b") == "ready" && NodeState("gpu-c") == "ready"; }))
      << Nodes().dump() << agent_b_.Log() << agent_c_.Log();
  auto r = Cli({"job", "submit", "--gpus", "4", "--", "sleep", "600"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Trim(r.out);
  ASSERT_TRUE(WaitFor([&] { return Job(id).value("state", "") == "RUNNING"; })) << Job(id).dump();
  const json job = Job(id);
  for (int rank = 0; rank < 2; ++rank) {
    auto e = Cli({"job", "exec", "--rank", std::to_string(rank), id, "--", "sh", "-c",
                  "echo $FASTGPU_NODE $RANK $FASTGPU_JOB_ID; exit 3"});
    EXPECT_EQ(e.exit_code, 3) << e.err << agent_b_.Log() << agent_c_.Log();
    EXPECT_EQ(e.out, job["members"][rank].value("node", "") + " " + std::to_string(rank) + " " + id + "\n") << e.err;
  }
  auto bad = Cli({"job", "exec", "--rank", "2", id, "--", "true"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("no rank 2"), std::string::npos) << bad.err;
  ASSERT_EQ(Cli({"job", "cancel", id}).exit_code, 0);
}

}  // namespace
}  // namespace fastgpu::testing
