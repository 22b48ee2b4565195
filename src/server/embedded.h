// Server + local agent + SQLite in one process: what `fastgpu up` runs (and the API benchmark).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "auth/accounts.h"
#include "auth/secrets.h"
#include "common/clock.h"
#include "common/status.h"
#include "server/http_transport.h"
#include "server/up.h"

namespace fastgpu::gpu {
class GpuBackend;
}
namespace fastgpu::store {
class Store;
}
namespace fastgpu::agent {
class Agent;
class Executor;
}

namespace fastgpu::server {

class Service;
class HttpServer;
class AccountDirectory;

class Embedded {
 public:
  Embedded();
  ~Embedded();
  // Opens the store, starts the scheduler, the agent and the HTTP server (serving in a thread),
  // then writes <home>/url and <home>/admin.token. Fails with an actionable message.
  Status Start(const UpOptions& options);
  void Stop();

  const std::string& url() const { return url_; }
  const std::string& token() const { return token_; }
  const std::string& home() const { return home_; }
  // "4 simulated A100-80GB GPUs" / "2 NVIDIA GPUs (NVML)"
  const std::string& fleet_description() const { return fleet_; }
  bool simulated() const { return simulated_; }
  Service& service() { return *service_; }
  // Open connections and parked long-polls of the HTTP server (for `bench` and tests).
  TransportStats http_stats() const;
  // Why this server lost the lead of its database (it then raises SIGTERM to stop); empty while it leads.
  std::string lost_lead() const;

 private:
  Status FinishKeyRotation(const std::string& key_path);
  // Takes the lead of the store (store::Store::TryLead): refuses while another server leads, or with
  // options.standby waits until it can (SIGINT/SIGTERM stop the wait); then watches it every second.
  Status TakeLead(const UpOptions& options);

  SystemClock clock_;
  std::string home_, url_, token_, fleet_;
  bool simulated_ = false;
  int lock_fd_ = -1;
  mutable std::mutex lead_mu_;
  std::condition_variable lead_cv_;
  bool lead_watch_stop_ = false;
  std::string lost_lead_;
  std::thread lead_watch_;
  std::unique_ptr<store::Store> store_;
  std::optional<auth::MasterKey> master_key_;
  std::unique_ptr<auth::AccountService> accounts_;
  std::unique_ptr<AccountDirectory> directory_;
  std::unique_ptr<gpu::GpuBackend> backend_;
  std::unique_ptr<agent::Executor> executor_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<agent::Agent> agent_;
  std::unique_ptr<HttpServer> http_;
};

// $FASTGPU_HOME, else ~/.fastgpu.
std::string DefaultHome();

}  // namespace fastgpu::server
