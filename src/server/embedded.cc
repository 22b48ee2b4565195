#include "server/embedded.h"

#include "common/crypto.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/agent.h"
#include "agent/executor.h"
#include "common/file_util.h"
#include "gpu/backend.h"
#include "server/http.h"
#include "server/service.h"
#include "store/store.h"

namespace fastgpu::server {

namespace fs = std::filesystem;

std::string DefaultHome() {
  if (const char* h = std::getenv("FASTGPU_HOME"); h && *h) return h;
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.fastgpu";
  return ".fastgpu";
}

namespace {

Result<std::pair<std::string, int>> ParseListen(const std::string& listen) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return InvalidArgument("--listen '" + listen + "' must be HOST:PORT, e.g. 127.0.0.1:8400 (port 0 picks a free one)");
  std::string host = listen.substr(0, colon);
  std::string port_s = listen.substr(colon + 1);
  if (port_s.empty() || port_s.size() > 5 || port_s.find_first_not_of("0123456789") != std::string::npos)
    return InvalidArgument("--listen '" + listen + "': port must be a number from 0 to 65535");
  int port = std::stoi(port_s);
  if (port > 65535) return InvalidArgument("--listen '" + listen + "': port must be a number from 0 to 65535");
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, port);
}

std::string Hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || !buf[0]) return "local";
  return buf;
}

}  // namespace

Embedded::Embedded() = default;
Embedded::~Embedded() { Stop(); }

Status Embedded::Start(const UpOptions& options) {
  home_ = options.home.empty() ? DefaultHome() : options.home;
  std::error_code ec;
  fs::create_directories(home_, ec);
  if (ec) return InvalidArgument("cannot create home directory " + home_ + ": " + ec.message());
  ::chmod(home_.c_str(), 0700);
  home_ = fs::canonical(home_, ec).string();

  ASSIGN_OR_RETURN(auto hostport, ParseListen(options.listen));
  if (hostport.first != "127.0.0.1" && hostport.first != "localhost" && hostport.first != "::1")
    return InvalidArgument("--listen " + options.listen +
                           ": fastgpu up serves on loopback only (127.0.0.1, ::1) until TLS and accounts are "
                           "configured; use 127.0.0.1:PORT");

  // One `fastgpu up` per home: the lock is released by the kernel even on kill -9.
  std::string lock_path = home_ + "/fastgpu.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return Internal("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0)
    return FailedPrecondition("another fastgpu up is already running with home " + home_ +
                              " (stop it, or use --home DIR for a second instance)");

  ASSIGN_OR_RETURN(store_, store::OpenSqliteStore(home_ + "/fastgpu.db"));

  // GPUs: real ones via NVML when present, else a simulated fleet.
  std::string spec = options.sim_gpus.empty() ? "auto" : options.sim_gpus;
  std::string node = options.node_name.empty() ? Hostname() : options.node_name;
  if (spec == "auto" || spec == "none") {
    auto nvml = gpu::OpenNvmlBackend();
    int found = 0;
    if (nvml.ok()) {
      auto gpus = (*nvml)->Discover();
      if (gpus.ok()) found = static_cast<int>(gpus->size());
    }
    if (found > 0) {
      backend_ = std::move(nvml).value();
      fleet_ = std::to_string(found) + " NVIDIA GPU" + (found > 1 ? "s" : "") + " (NVML)";
    } else if (spec == "none") {
      return FailedPrecondition(
          "--sim-gpus none asks for real GPUs only, but NVML found none (" +
          (nvml.ok() ? std::string("0 GPUs") : nvml.status().message()) +
          "); drop the flag to use a simulated fleet");
    } else {
      spec = "4xA100-80GB";
    }
  }
  if (!backend_) {
    ASSIGN_OR_RETURN(backend_, gpu::MakeSimulatedBackend(spec, node));
    simulated_ = true;
    fleet_ = "simulated GPUs " + spec;
  }

  ServiceOptions sopts;
  sopts.policy = options.policy;
  sopts.placement = options.placement;
  sopts.stop_grace_ms = options.stop_grace_ms;
  ASSIGN_OR_RETURN(service_, Service::Create(*store_, clock_, sopts));
  service_->Start();

  executor_ = agent::MakeProcessExecutor(clock_);
  agent::AgentOptions aopts;
  aopts.node_name = node;
  aopts.home = home_;
  aopts.stop_grace_ms = options.stop_grace_ms;
  agent_ = std::make_unique<agent::Agent>(aopts, *backend_, *executor_, *service_, clock_);
  service_->SetLogSource(node, agent_.get());
  RETURN_IF_ERROR(agent_->Start());

  // Admin token: reuse the one in the home dir, else create it. The server keeps only its hash.
  std::string token_path = home_ + "/admin.token";
  {
    std::ifstream in(token_path);
    std::getline(in, token_);
  }
  if (token_.size() < 32) {
    ASSIGN_OR_RETURN(token_, RandomToken());
    RETURN_IF_ERROR(WriteFileAtomic(token_path, token_ + "\n", 0600, /*sync=*/true));
  }
  ::chmod(token_path.c_str(), 0600);

  HttpOptions hopts;
  hopts.host = hostport.first;
  hopts.port = hostport.second;
  hopts.admin_token_sha256 = Sha256Hex(token_);
  http_ = std::make_unique<HttpServer>(*service_, hopts);
  ASSIGN_OR_RETURN(int port, http_->Bind());
  std::string host = hostport.first == "::1" ? "[::1]" : hostport.first;
  url_ = "http://" + host + ":" + std::to_string(port);
  http_->Start();
  RETURN_IF_ERROR(WriteFileAtomic(home_ + "/url", url_ + "\n", 0644, /*sync=*/true));
  return Status::Ok();
}

void Embedded::Stop() {
  if (http_) http_->Stop();
  if (agent_) agent_->Stop();
  if (service_) service_->Stop();
  if (!url_.empty()) {
    ::unlink((home_ + "/url").c_str());
    url_.clear();
  }
  http_.reset();
  agent_.reset();
  service_.reset();
  executor_.reset();
  backend_.reset();
  store_.reset();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

}  // namespace fastgpu::server
