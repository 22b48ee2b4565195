#include "server/embedded.h"

#include "common/crypto.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/agent.h"
#include "agent/executor.h"
#include "agent/rank_launcher.h"
#include "auth/audit.h"
#include "common/file_util.h"
#include "common/quantity.h"
#include "gpu/backend.h"
#include "server/directory.h"
#include "server/http.h"
#include "server/service.h"
#include "store/open.h"
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

// A rotation writes <key>.new, re-encrypts every secret in one transaction, then renames the new key
// over the old one. After a crash in between: if any secret is sealed by the new key the transaction
// committed, so finish the rename; otherwise drop the unused new key.
Status Embedded::FinishKeyRotation(const std::string& key_path) {
  if (key_path.empty()) return Status::Ok();
  std::string next = key_path + ".new";
  if (::access(next.c_str(), F_OK) != 0) return Status::Ok();
  ASSIGN_OR_RETURN(auto new_key, auth::MasterKey::LoadFile(next, /*create=*/false));
  bool committed = false;
  for (const auto& p : accounts_->ListProjects())
    for (const auto& sec : accounts_->ListSecrets(p.name)) committed |= sec.key_id == new_key.id();
  if (!committed) {
    ::unlink(next.c_str());
    return Status::Ok();
  }
  if (::rename(next.c_str(), key_path.c_str()) != 0)
    return Internal("cannot finish key rotation: rename " + next + " to " + key_path + ": " + std::strerror(errno));
  master_key_ = new_key;
  auth::AccountOptions aopts;
  aopts.job_uids = accounts_->job_uid_range();
  ASSIGN_OR_RETURN(accounts_, auth::AccountService::Create(*store_, clock_, &*master_key_, aopts));
  return Status::Ok();
}
Embedded::~Embedded() { Stop(); }

Status Embedded::Start(const UpOptions& options) {
  home_ = options.home.empty() ? DefaultHome() : options.home;
  std::error_code ec;
  fs::create_directories(home_, ec);
  if (ec) return InvalidArgument("cannot create home directory " + home_ + ": " + ec.message());
  ::chmod(home_.c_str(), 0700);
  home_ = fs::canonical(home_, ec).string();

  // Every client connection is a descriptor: allow as many as the hard limit lets us.
  if (rlimit nofile{}; ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  ASSIGN_OR_RETURN(auto hostport, ParseListen(options.listen));
  bool tls = !options.tls_cert.empty() || !options.tls_key.empty();
  if (tls && (options.tls_cert.empty() || options.tls_key.empty()))
    return InvalidArgument("give both --tls-cert FILE and --tls-key FILE (PEM) to serve HTTPS");
  for (const std::string* f : {&options.tls_cert, &options.tls_key}) {
    if (!f->empty() && ::access(f->c_str(), R_OK) != 0)
      return InvalidArgument("cannot read " + *f + ": " + std::strerror(errno));
  }
  bool loopback = hostport.first == "127.0.0.1" || hostport.first == "localhost" || hostport.first == "::1";
  if (!loopback && !tls && !options.insecure)
    return InvalidArgument("--listen " + options.listen +
                           " exposes the API beyond this machine: API tokens would cross the network in clear "
                           "text. Give --tls-cert FILE --tls-key FILE, or --insecure to accept the risk");

  // One `fastgpu up` per home: the lock is released by the kernel even on kill -9.
  std::string lock_path = home_ + "/fastgpu.lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0) return Internal("cannot open " + lock_path + ": " + std::strerror(errno));
  // A job supervisor forked just before a kill -9 holds a copy of the lock until it has closed the
  // descriptors it inherited (a few system calls later): allow it a moment before giving up.
  bool locked = ::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0;
  for (int64_t until = clock_.MonotonicNanos() + 2'000'000'000LL; !locked && clock_.MonotonicNanos() < until;) {
    ::usleep(20'000);
    locked = ::flock(lock_fd_, LOCK_EX | LOCK_NB) == 0;
  }
  if (!locked)
    return FailedPrecondition("another fastgpu up is already running with home " + home_ +
                              " (stop it, or use --home DIR for a second instance)");

  ASSIGN_OR_RETURN(store_, store::Open(options.store.empty() ? "sqlite:" + home_ + "/fastgpu.db" : options.store));
  // Exactly one server leads a database (schedules, writes): before anything is loaded or written.
  RETURN_IF_ERROR(TakeLead(options));
  // The audit chain is keyed with a secret kept outside the database: FASTGPU_AUDIT_KEY or <home>/audit.key.
  {
    const char* env = std::getenv("FASTGPU_AUDIT_KEY");
    RETURN_IF_ERROR(auth::KeyAuditChain(*store_, home_ + "/audit.key", env ? env : ""));
  }

  // GPUs: real ones via NVML when present, else a simulated fleet.
  std::string spec = options.sim_gpus.empty() ? "auto" : options.sim_gpus;
  std::string node = options.node_name.empty() ? Hostname() : options.node_name;
  if (!options.local_agent) {
    fleet_ = "none on this machine (nodes join with `fastgpu agent --join-token`)";
  } else if (spec == "auto" || spec == "none") {
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
  if (!backend_ && options.local_agent) {
    ASSIGN_OR_RETURN(backend_, gpu::MakeSimulatedBackend(spec, node));
    simulated_ = true;
    fleet_ = "simulated GPUs " + spec;
  }

  // Master key for project secrets: FASTGPU_MASTER_KEY (64 hex) or <home>/master.key (0600, created).
  std::string key_path;
  if (const char* env = std::getenv("FASTGPU_MASTER_KEY"); env && *env) {
    ASSIGN_OR_RETURN(master_key_, auth::MasterKey::FromHex(env));
  } else {
    key_path = home_ + "/master.key";
    ASSIGN_OR_RETURN(master_key_, auth::MasterKey::LoadFile(key_path, /*create=*/true));
  }
  auth::AccountOptions account_opts;
  if (!options.job_uid_range.empty()) {
    auto range = auth::ParseJobUidRange(options.job_uid_range);
    if (!range.ok()) return InvalidArgument("--job-uid-range: " + range.status().message());
    account_opts.job_uids = *range;
  }
  ASSIGN_OR_RETURN(accounts_, auth::AccountService::Create(*store_, clock_, &*master_key_, account_opts));
  RETURN_IF_ERROR(FinishKeyRotation(key_path));

  ServiceOptions sopts;
  sopts.policy = options.policy;
  sopts.placement = options.placement;
  {
    auto min_runtime = ParseDurationSeconds(options.preempt_min_runtime.empty() ? "5m" : options.preempt_min_runtime);
    if (!min_runtime.ok())
      return InvalidArgument("--preempt-min-runtime: " + min_runtime.status().message());
    sopts.preempt_min_runtime_ms = *min_runtime * 1000;
  }
  sopts.preempt_across_projects = options.preempt_across_projects;
  sopts.stop_grace_ms = options.stop_grace_ms;
  if (!options.stop_grace.empty()) {
    auto grace = ParseDurationSeconds(options.stop_grace);
    if (!grace.ok() || *grace > 3600)
      return InvalidArgument("--stop-grace must be a duration of at most 1h, e.g. 10s");
    sopts.stop_grace_ms = *grace * 1000;
  }
  {
    auto timeout = ParseDurationSeconds(options.node_timeout.empty() ? "10s" : options.node_timeout);
    if (!timeout.ok() || *timeout < 1)
      return InvalidArgument("--node-timeout must be a duration of at least 1s, e.g. 10s");
    sopts.node_timeout_ms = *timeout * 1000;
    auto fence = ParseDurationSeconds(options.fence_timeout.empty() ? "30s" : options.fence_timeout);
    if (!fence.ok() || *fence < 0 || (*fence > 0 && *fence < *timeout))
      return InvalidArgument("--fence-timeout must be 0 (no fencing) or a duration of at least --node-timeout (" +
                             std::to_string(*timeout) + "s), e.g. 30s");
    sopts.fence_timeout_ms = *fence * 1000;
  }
  ASSIGN_OR_RETURN(service_, Service::Create(*store_, clock_, sopts));
  directory_ = std::make_unique<AccountDirectory>(*accounts_);
  service_->SetProjectDirectory(directory_.get());
  ASSIGN_OR_RETURN(auto prices, LoadPrices(*store_));
  ASSIGN_OR_RETURN(auto plans, LoadPlans(*store_));
  RETURN_IF_ERROR(service_->SetBilling(std::move(prices), std::move(plans)));
  service_->Start();

  if (options.local_agent) {
    executor_ = agent::MakeProcessExecutor(clock_);
    agent::AgentOptions aopts;
    aopts.node_name = node;
    aopts.home = home_;
    aopts.stop_grace_ms = sopts.stop_grace_ms;
    aopts.checkpoint_root = options.checkpoint_root;
    aopts.checkpoint_fallback_base = options.checkpoint_fallback_base;
    aopts.blob_dir = home_ + "/blobs";  // synced code, read in place (docs/sync.md)
    if (auto self = agent::SelfExecutable(); self.ok()) aopts.launcher_path = *self;  // one process per GPU
    agent_ = std::make_unique<agent::Agent>(aopts, *backend_, *executor_, *service_, clock_);
    service_->SetLogSource(node, agent_.get());
    RETURN_IF_ERROR(agent_->Start());
  }

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

  RETURN_IF_ERROR(accounts_->EnsureBootstrap(Sha256Hex(token_)));

  HttpOptions hopts;
  hopts.host = hostport.first;
  hopts.port = hostport.second;
  hopts.tls_cert = options.tls_cert;
  hopts.tls_key = options.tls_key;
  hopts.master_key_path = key_path;
  hopts.node_log_dir = home_ + "/node-logs";  // logs pushed by remote agents
  hopts.blob_dir = home_ + "/blobs";           // code archives (docs/sync.md)
  hopts.max_sync_bytes = options.max_sync_mib << 20;
  if (!options.metrics_token_file.empty()) {
    // Only the token's hash is kept; the file is read once at start.
    std::ifstream in(options.metrics_token_file);
    if (!in) return InvalidArgument("--metrics-token-file " + options.metrics_token_file + ": cannot read it");
    std::string metrics_token;
    std::getline(in, metrics_token);
    while (!metrics_token.empty() && std::isspace(static_cast<unsigned char>(metrics_token.back()))) metrics_token.pop_back();
    if (metrics_token.size() < 16 || metrics_token.find_first_of(" \t") != std::string::npos) {
      return InvalidArgument("--metrics-token-file " + options.metrics_token_file +
                             ": its first line must be a token of at least 16 characters without spaces, e.g. from "
                             "`openssl rand -hex 32`");
    }
    hopts.metrics_token_sha256 = Sha256Hex(metrics_token);
  }
  if (options.local_agent) {
    hopts.local_node = node;
    hopts.local_job_root = home_ + "/jobs";  // agent::Agent::JobDir
  }
  {
    auto trial = billing::ParseUsd(options.trial_credit);
    if (!trial.ok() || *trial < 0)
      return InvalidArgument("--trial-credit must be an amount in USD >= 0, e.g. 50 or 0 (none)");
    if (options.trial_days < 1 || options.trial_days > 3660) return InvalidArgument("--trial-days must be 1..3660");
    hopts.trial = {*trial, options.trial_days};
  }
  http_ = std::make_unique<HttpServer>(*service_, *accounts_, *store_, clock_, hopts);
  ASSIGN_OR_RETURN(int port, http_->Bind());
  std::string host = hostport.first == "::1" ? "[::1]" : hostport.first;
  url_ = std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(port);
  http_->Start();
  RETURN_IF_ERROR(WriteFileAtomic(home_ + "/url", url_ + "\n", 0644, /*sync=*/true));
  return Status::Ok();
}

TransportStats Embedded::http_stats() const { return http_ ? http_->Stats() : TransportStats{}; }

Status Embedded::TakeLead(const UpOptions& options) {
  const std::string holder = Hostname() + " pid " + std::to_string(::getpid()) + ", listening on " + options.listen;
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  bool said = false;
  while (true) {
    auto lead = store_->TryLead(holder, clock_.NowMillis());
    if (lead.ok()) {
      if (said) std::fprintf(stderr, "fastgpu: standby: took the lead (epoch %lld)\n", static_cast<long long>(*lead));
      break;
    }
    if (lead.status().code() != ErrorCode::kFailedPrecondition) return lead.status();
    if (!options.standby) {
      return FailedPrecondition(lead.status().message() +
                                ": stop it first, or start this one with --standby to take over when it stops");
    }
    if (!said) {
      std::fprintf(stderr, "fastgpu: standby: %s; waiting to take over\n", lead.status().message().c_str());
      said = true;
    }
    // Waits a second, or stops at SIGINT/SIGTERM (blocked in this process's threads by RunUp).
    struct timespec second {1, 0};
    if (int sig = ::sigtimedwait(&stop_signals, nullptr, &second); sig > 0)
      return Unavailable("stopped while waiting as a standby");
  }
  // Losing the lead (the database session that holds it is gone) stops this server: another may lead by then.
  lead_watch_ = std::thread([this] {
    std::unique_lock lock(lead_mu_);
    while (!lead_watch_stop_) {
      lead_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return lead_watch_stop_; });
      if (lead_watch_stop_) return;
      lock.unlock();
      Status st = store_->CheckLead();
      lock.lock();
      if (!st.ok()) {
        lost_lead_ = st.message();
        ::kill(::getpid(), SIGTERM);  // RunUp's sigwait ends the process with an error
        return;
      }
    }
  });
  return Status::Ok();
}

std::string Embedded::lost_lead() const {
  std::lock_guard lock(lead_mu_);
  return lost_lead_;
}

void Embedded::Stop() {
  {
    std::lock_guard lock(lead_mu_);
    lead_watch_stop_ = true;
  }
  lead_cv_.notify_all();
  if (lead_watch_.joinable()) lead_watch_.join();
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
  directory_.reset();
  accounts_.reset();
  executor_.reset();
  backend_.reset();
  store_.reset();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

}  // namespace fastgpu::server
