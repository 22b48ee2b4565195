#include "agent/agent_main.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>

#include "agent/agent.h"
#include "agent/rank_launcher.h"
#include "agent/executor.h"
#include "agent/http_control_plane.h"
#include "agent/protocol.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "common/file_util.h"
#include "gpu/backend.h"

namespace fastgpu::agent {
namespace {

using nlohmann::json;

std::string Hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || !buf[0]) return "node";
  return buf;
}

struct Identity {
  std::string server;
  std::string node;
  std::string credential;
  std::string sim_gpus;  // as given at the join: a restart keeps the same simulated GPUs
  // SHA-256 of the join token this home joined with: the same token given again (a service restarted with
  // FASTGPU_JOIN_TOKEN still set) means "already joined", not "join again" (the token is spent).
  std::string join_token_sha256;
};

// <home>/node.json (0600): the server this node joined, its name and its credential.
Result<std::optional<Identity>> LoadIdentity(const std::string& path) {
  auto text = ReadFileToString(path, 1 << 20);
  if (!text) return std::optional<Identity>();
  auto j = json::parse(*text, nullptr, false);
  if (!j.is_object() || !j.contains("credential") || !j["credential"].is_string() || !j.contains("node") ||
      !j["node"].is_string())
    return FailedPrecondition(path + " is damaged; join again with --join-token (fastgpu node token create)");
  return std::optional<Identity>(Identity{j.value("server", std::string()), j["node"].get<std::string>(),
                                          j["credential"].get<std::string>(), j.value("sim_gpus", std::string()),
                                          j.value("join_token_sha256", std::string())});
}

Result<std::unique_ptr<gpu::GpuBackend>> OpenBackend(const std::string& sim_gpus, const std::string& node,
                                                     std::string* description) {
  std::string spec = sim_gpus.empty() ? "auto" : sim_gpus;
  if (spec == "auto" || spec == "none") {
    auto nvml = gpu::OpenNvmlBackend();
    int found = 0;
    if (nvml.ok()) {
      auto gpus = (*nvml)->Discover();
      if (gpus.ok()) found = static_cast<int>(gpus->size());
    }
    if (found > 0) {
      *description = std::to_string(found) + " NVIDIA GPU" + (found > 1 ? "s" : "") + " (NVML)";
      return std::move(nvml).value();
    }
    if (spec == "none")
      return FailedPrecondition("--sim-gpus none asks for real GPUs only, but NVML found none (" +
                                (nvml.ok() ? std::string("0 GPUs") : nvml.status().message()) +
                                "); drop the flag to use a simulated fleet");
    spec = "4xA100-80GB";
  }
  *description = "simulated GPUs " + spec;
  return gpu::MakeSimulatedBackend(spec, node);
}

int Fail(const Status& st) {
  std::string msg = st.message();
  for (char& c : msg)
    if (c == '\n') c = ' ';
  std::cerr << "fastgpu: error: " << msg << "\n";
  return 1;
}

}  // namespace

int RunAgentMain(const AgentRunOptions& options) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  if (options.home.empty()) return Fail(InvalidArgument("--home is empty"));
  if (Status st = MakeDirs(options.home); !st.ok()) return Fail(st);
  ::chmod(options.home.c_str(), 0700);
  // One agent per home (its jobs and logs live there); the kernel drops the lock even on kill -9.
  const std::string lock_path = options.home + "/agent.lock";
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return Fail(Internal("cannot open " + lock_path + ": " + std::strerror(errno)));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0)
    return Fail(FailedPrecondition("another fastgpu agent is already running with home " + options.home +
                                   " (stop it, or give this one --home DIR)"));

  const std::string id_path = options.home + "/node.json";
  auto stored = LoadIdentity(id_path);
  if (!stored.ok()) return Fail(stored.status());
  Identity id;
  const bool joined_with_this_token = !options.join_token.empty() && *stored &&
                                      (*stored)->join_token_sha256 == Sha256Hex(options.join_token) &&
                                      (options.server.empty() || options.server == (*stored)->server);
  if (!options.join_token.empty() && !joined_with_this_token) {
    if (options.server.empty()) return Fail(InvalidArgument("--server URL is required to join"));
    id.server = options.server;
    id.node = !options.name.empty() ? options.name : *stored ? (*stored)->node : Hostname();
    if (Status v = ValidateNodeName(id.node); !v.ok()) return Fail(v);
    auto cred = JoinServer(id.server, options.ca_file, options.join_token, id.node);
    if (!cred.ok()) return Fail(Status(cred.status().code(), "joining " + id.server + ": " + cred.status().message()));
    id.credential = *cred;
    id.sim_gpus = options.sim_gpus;
    id.join_token_sha256 = Sha256Hex(options.join_token);
    json j{{"server", id.server},
           {"node", id.node},
           {"credential", id.credential},
           {"sim_gpus", id.sim_gpus},
           {"join_token_sha256", id.join_token_sha256}};
    if (Status st = WriteFileAtomic(id_path, j.dump() + "\n", 0600, /*sync=*/true); !st.ok()) return Fail(st);
    std::cout << "joined " << id.server << " as node " << id.node << " (credential stored in " << id_path << ")\n";
  } else if (*stored) {
    id = **stored;
    if (!options.server.empty()) id.server = options.server;
    if (!options.name.empty() && options.name != id.node)
      return Fail(InvalidArgument("this home joined as node " + id.node + ", not " + options.name +
                                  "; drop --name, or join again with --join-token"));
  } else {
    return Fail(FailedPrecondition("this node has not joined a server yet: pass --server URL --join-token fgj_… "
                                   "(an admin creates one with `fastgpu node token create --ttl 1h`)"));
  }
  if (id.server.empty()) return Fail(InvalidArgument("--server URL is required"));

  SystemClock clock;
  std::string gpus;
  // A restart without --sim-gpus keeps the simulated GPUs the node joined with (same UUIDs for its jobs).
  const std::string sim = options.sim_gpus == "auto" && !id.sim_gpus.empty() ? id.sim_gpus : options.sim_gpus;
  auto backend = OpenBackend(sim, id.node, &gpus);
  if (!backend.ok()) return Fail(backend.status());
  auto executor = MakeProcessExecutor(clock);
  HttpControlPlaneOptions copts;
  copts.server_url = id.server;
  copts.credential = id.credential;
  copts.ca_file = options.ca_file;
  copts.node = id.node;
  std::mutex refused_mu;
  std::string refused;  // why the server refused the credential, once it did
  copts.on_credential_refused = [&](const Status& st) {
    {
      std::lock_guard lock(refused_mu);
      refused = st.message();
    }
    ::kill(::getpid(), SIGTERM);  // wakes the sigwait below
  };
  HttpControlPlane cp(copts, clock);
  AgentOptions aopts;
  aopts.node_name = id.node;
  aopts.home = options.home;
  aopts.address = Hostname();
  aopts.stop_grace_ms = options.stop_grace_ms;
  aopts.checkpoint_root = options.checkpoint_root;
  aopts.checkpoint_fallback_base = options.checkpoint_fallback_base;
  if (auto self = SelfExecutable(); self.ok()) aopts.launcher_path = *self;  // runs jobs with one process per GPU
  aopts.command_wait = std::chrono::milliseconds(10'000);  // long-poll; parked on the server, no thread held
  aopts.retry_interval = std::chrono::milliseconds(500);
  aopts.heartbeat_interval = std::chrono::milliseconds(2'000);  // the server's --node-timeout is 10 s by default
  Agent agent(aopts, **backend, *executor, cp, clock);
  cp.StartLogShipping(&agent);
  if (Status st = agent.Start(); !st.ok()) {
    cp.StopLogShipping();
    return Fail(Status(st.code(), "registering with " + id.server + ": " + st.message()));
  }
  std::cout << "fastgpu agent: node " << id.node << " (" << gpus << ") serving " << id.server
            << (agent.Registered() ? "" : " (server not reachable yet: retrying)") << "\n"
            << std::flush;
  int sig = 0;
  sigwait(&set, &sig);
  std::string why;
  {
    std::lock_guard lock(refused_mu);
    why = refused;
  }
  if (why.empty()) {
    std::cout << "fastgpu agent: stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM")
              << "); running jobs keep running and are re-adopted by the next start\n"
              << std::flush;
  }
  agent.Stop();
  cp.StopLogShipping();
  ::close(lock_fd);
  if (!why.empty()) return Fail(Unauthenticated("the server refused node " + id.node + "'s credential: " + why));
  return 0;
}

}  // namespace fastgpu::agent
