#include "agent/agent.h"
#include "agent/code_sync.h"
#include "agent/exec.h"
#include "agent/log_times.h"

#include "agent/files.h"
#include "agent/rank_launcher.h"
#include "common/crypto.h"
#include "common/file_util.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <utility>

namespace fastgpu::agent {
namespace {

constexpr const char* kMetaFile = "job";
constexpr const char* kReportedFile = "reported";
constexpr int64_t kMaxLogRead = 8 * 1024 * 1024;
constexpr size_t kMaxReportBatch = 256;  // reports per ReportJobs call
// Starts remembered to refuse a start delivered twice (the server never sends one again once the attempt's end
// is recorded; this is the agent's own guard).
constexpr size_t kMaxLaunchedRemembered = 4096;
// With event-driven exits the monitor still looks around this often (reports to retry, a missed event).
constexpr int64_t kMaxEventWaitMs = 1'000;

bool IsSafeId(const std::string& id) {
  if (id.empty() || id.size() > 128 || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

std::string Join(const std::vector<std::string>& parts, char sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += sep;
    out += parts[i];
  }
  return out;
}

// A job with one process per GPU runs the agent's own binary as its launcher, as the job's OS user when the agent
// runs as root: the start is refused, saying why, when that user could not execute it.
Status CheckLauncher(const std::string& launcher, const JobCommand& cmd, const std::string& node) {
  const std::string what = "cannot start one process per GPU on node " + node + ": ";
  if (launcher.empty()) {
    return FailedPrecondition(what + "this agent does not know the path of its own fastgpu binary, which starts "
                                     "the processes (restart the agent; or submit the job without --process-per-gpu)");
  }
  if (::geteuid() != 0) return Status::Ok();  // the job runs as the agent's user, who runs this very binary
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  if (!cmd.run_as_user.empty()) {
    long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
    std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 16384);
    struct passwd pw {};
    struct passwd* found = nullptr;
    while (::getpwnam_r(cmd.run_as_user.c_str(), &pw, buf.data(), buf.size(), &found) == ERANGE &&
           buf.size() < (1u << 24)) {
      buf.resize(buf.size() * 2);
    }
    if (found == nullptr) return Status::Ok();  // the executor refuses the start, naming the user
    uid = pw.pw_uid;
    gid = pw.pw_gid;
    int n = 64;
    groups.resize(static_cast<size_t>(n));
    if (::getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0 && n > 64) {
      groups.resize(static_cast<size_t>(n));
      if (::getgrouplist(pw.pw_name, gid, groups.data(), &n) < 0) n = 0;
    }
    groups.resize(static_cast<size_t>(std::max(n, 0)));
  } else {
    if (cmd.run_as_uid <= 0 || cmd.run_as_uid > 4'294'967'294) return Status::Ok();  // refused by the executor
    uid = static_cast<uid_t>(cmd.run_as_uid);
    gid = static_cast<gid_t>(cmd.run_as_uid);
  }
  Status st = CheckExecutableBy(launcher, uid, gid, groups);
  if (st.ok()) return st;
  return Status(st.code(), what + st.message() + ", but the job runs as uid " + std::to_string(uid) +
                               " and its processes are started by '" + launcher +
                               "' (this agent's own binary): install fastgpu where every user can run it (e.g. "
                               "/usr/local/bin/fastgpu, mode 0755) and run the agent from there, or submit the "
                               "job without --process-per-gpu");
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t i = 0;
  while (i <= s.size()) {
    size_t next = s.find(sep, i);
    if (next == std::string::npos) next = s.size();
    out.push_back(s.substr(i, next - i));
    i = next + 1;
  }
  return out;
}

struct JobMeta {
  int attempt = 0;
  std::vector<std::string> gpus;
  int rank = 0;  // a member of a multi-node job
};

std::optional<JobMeta> ReadMeta(const std::string& job_dir) {
  auto text = ReadFileToString(job_dir + "/" + kMetaFile);
  if (!text) return std::nullopt;
  JobMeta m;
  for (const std::string& line : Split(*text, '\n')) {
    if (line.rfind("attempt=", 0) == 0) m.attempt = std::atoi(line.c_str() + 8);
    if (line.rfind("gpus=", 0) == 0) m.gpus = Split(line.substr(5), ',');
    if (line.rfind("rank=", 0) == 0) m.rank = std::atoi(line.c_str() + 5);
  }
  return m;
}

// The attempt Launch recorded as (possibly) started in this dir (see kStartedFile), nullopt when none.
std::optional<int> ReadStarted(const std::string& job_dir) {
  auto text = ReadFileToString(job_dir + "/" + kStartedFile);
  if (!text || text->rfind("attempt ", 0) != 0) return std::nullopt;
  return std::atoi(text->c_str() + 8);
}

std::optional<int> ReadReported(const std::string& job_dir) {
  auto text = ReadFileToString(job_dir + "/" + kReportedFile);
  if (!text || text->empty()) return std::nullopt;
  return std::atoi(text->c_str());
}

bool IsTransient(ErrorCode code) {
  return code == ErrorCode::kUnavailable || code == ErrorCode::kDeadlineExceeded ||
         code == ErrorCode::kInternal || code == ErrorCode::kResourceExhausted;
}

}  // namespace

Agent::Agent(AgentOptions options, gpu::GpuBackend& gpus, Executor& executor, ControlPlane& control_plane,
             const Clock& clock)
    : opts_(std::move(options)), gpus_backend_(gpus), executor_(executor), cp_(control_plane), clock_(clock),
      execs_(std::make_unique<ExecRunner>(cp_, opts_.node_name, opts_.command_wait, opts_.retry_interval)) {}

Agent::~Agent() {
  Stop();
  execs_->StopAll();
}

std::string Agent::JobDir(const std::string& id) const { return opts_.home + "/jobs/" + id; }
std::string Agent::LogPath(const std::string& id) const { return opts_.home + "/logs/" + id + ".log"; }
std::string Agent::ConfiguredCheckpointRoot() const {
  const std::string root = opts_.checkpoint_root.empty() ? opts_.home + "/checkpoints" : opts_.checkpoint_root;
  std::error_code ec;
  const auto abs = std::filesystem::absolute(root, ec);  // the job sees it from its own working directory
  std::string out = ec ? root : abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

std::string Agent::CheckpointRoot() const {
  return checkpoint_root_.empty() ? ConfiguredCheckpointRoot() : checkpoint_root_;
}

// Checkpoint directories: the same for the root that holds them (each one is 0700 and the job's own). As root, jobs
// run as their projects' uids and reach their checkpoint directory by its path, so every directory on the way must
// let others pass. A default root under a home they cannot pass (a home under /root, the usual case of `fastgpu up`
// in a GPU container) moves to the fallback base; a configured one that cannot be passed gets a warning.
Status Agent::PrepareCheckpointRoot() {
  const bool root_user = ::geteuid() == 0;
  const auto prepare = [&](const std::string& dir) -> Status {
    RETURN_IF_ERROR(MakeDirs(dir, root_user ? 0711 : 0700));
    if (root_user && ::chmod(dir.c_str(), 0711) != 0) {
      return Internal("cannot set the mode of checkpoint directory '" + dir + "': " + std::strerror(errno));
    }
    return Status::Ok();
  };
  checkpoint_root_ = ConfiguredCheckpointRoot();
  RETURN_IF_ERROR(prepare(checkpoint_root_));
  if (!root_user) return Status::Ok();
  constexpr uid_t kSomeJobUid = 1'900'000'000;
  Status can = CheckEnterableBy(checkpoint_root_, kSomeJobUid, kSomeJobUid, {});
  if (can.ok()) return Status::Ok();
  if (opts_.checkpoint_root.empty() && !opts_.checkpoint_fallback_base.empty()) {
    std::error_code ec;
    const auto home = std::filesystem::absolute(opts_.home, ec).lexically_normal().string();
    const std::string base = opts_.checkpoint_fallback_base;
    const std::string fallback = base + "/" + Sha256Hex(ec ? opts_.home : home).substr(0, 12);
    Status made = prepare(base);
    if (made.ok()) made = prepare(fallback);
    if (made.ok()) made = CheckEnterableBy(fallback, kSomeJobUid, kSomeJobUid, {});
    if (made.ok()) {
      std::fprintf(stderr,
                   "fastgpu agent: checkpoint directories (FASTGPU_CHECKPOINT_DIR) are under %s: jobs cannot pass "
                   "through %s (%s); --checkpoint-root DIR chooses another place\n",
                   fallback.c_str(), checkpoint_root_.c_str(), can.message().c_str());
      checkpoint_root_ = fallback;
      return Status::Ok();
    }
    can = Status(can.code(), can.message() + "; nor can " + fallback + " be used: " + made.message());
  }
  std::fprintf(stderr,
               "fastgpu agent: warning: jobs cannot reach their checkpoint directories (FASTGPU_CHECKPOINT_DIR) "
               "under %s: %s; start with --checkpoint-root DIR on a path every user may pass (each directory "
               "on the way at least 0711), e.g. /var/lib/fastgpu/checkpoints\n",
               checkpoint_root_.c_str(), can.message().c_str());
  return Status::Ok();
}

api::Gpu Agent::ToApiGpu(const gpu::GpuInfo& info, const gpu::GpuMetrics* m, const std::string& node) {
  api::Gpu g;
  g.uuid = info.uuid;
  g.index = info.index;
  g.name = info.name;
  g.type = info.type;
  g.node = node;
  g.pci_bus_id = info.pci_bus_id;
  g.memory_total_mib = info.memory_total_mib;
  g.simulated = info.simulated;
  if (m != nullptr) {
    g.memory_used_mib = m->memory_used_mib;
    g.utilization_pct = m->utilization_pct;
    g.temperature_c = m->temperature_c;
    g.power_mw = m->power_mw;
    g.healthy = m->healthy;
    g.memory_util_pct = m->memory_util_pct;
    g.sm_clock_mhz = m->sm_clock_mhz;
    g.power_limit_mw = m->power_limit_mw;
    g.energy_mj = m->energy_mj;
    g.ecc_corrected_volatile = m->ecc_corrected_volatile;
    g.ecc_uncorrected_volatile = m->ecc_uncorrected_volatile;
    g.ecc_corrected_aggregate = m->ecc_corrected_aggregate;
    g.ecc_uncorrected_aggregate = m->ecc_uncorrected_aggregate;
    g.remapped_rows_correctable = m->remapped_rows_correctable;
    g.remapped_rows_uncorrectable = m->remapped_rows_uncorrectable;
    g.remap_pending = m->remap_pending;
    g.remap_failure = m->remap_failure;
    g.throttle_reasons = m->throttle_reasons;
    g.last_xid = m->last_xid;
    g.xid_count = m->xid_count;
  }
  return g;
}

// True when the node has a CDI specification of its NVIDIA GPUs (`nvidia-ctk cdi generate`): /etc/cdi or
// /var/run/cdi holds nvidia*.yaml or nvidia*.json.
static bool HasNvidiaCdiSpec() {
  for (const char* dir : {"/etc/cdi", "/var/run/cdi"}) {
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      const std::string ext = it->path().extension().string();
      if (name.rfind("nvidia", 0) == 0 && (ext == ".yaml" || ext == ".json")) return true;
    }
  }
  return false;
}

Status Agent::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return FailedPrecondition("the agent is already started");
  }
  if (opts_.node_name.empty()) return InvalidArgument("agent: node name is empty");
  if (opts_.home.empty()) return InvalidArgument("agent: home directory is empty");
  RETURN_IF_ERROR(MakeDirs(opts_.home + "/jobs"));
  // As root, jobs run as other users, who need to pass through (not list) the job dirs to reach their
  // working directories.
  if (::geteuid() == 0 && ::chmod((opts_.home + "/jobs").c_str(), 0711) != 0) {
    return Internal("cannot set the mode of '" + opts_.home + "/jobs': " + std::strerror(errno));
  }
  RETURN_IF_ERROR(MakeDirs(opts_.home + "/logs"));
  RETURN_IF_ERROR(PrepareCheckpointRoot());
  auto discovered = gpus_backend_.Discover();
  if (!discovered.ok()) {
    return Status(discovered.status().code(),
                  "discovering GPUs (" + gpus_backend_.Name() + "): " + discovered.status().message());
  }
  {
    std::lock_guard lock(mu_);
    gpus_ = *discovered;
  }
  Recover();
  Status reg = Register();
  if (!reg.ok() && !IsTransient(reg.code())) return reg;
  {
    std::lock_guard lock(mu_);
    started_ = true;
    stopping_ = false;
  }
  command_thread_ = std::thread([this] { CommandLoop(); });
  monitor_thread_ = std::thread([this] { MonitorLoop(); });
  return Status::Ok();
}

void Agent::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  executor_.Interrupt();  // the monitor may be waiting for job exits
  if (command_thread_.joinable()) command_thread_.join();
  if (monitor_thread_.joinable()) monitor_thread_.join();
  execs_->StopAll();  // commands run inside jobs end with the agent
  if (!opts_.terminate_jobs_on_stop) return;
  {
    std::lock_guard lock(exec_mu_);
    for (const std::string& id : executor_.Running()) {
      (void)executor_.Terminate(id, std::chrono::milliseconds(opts_.stop_grace_ms));
    }
  }
  // Give the jobs their grace (plus a margin for SIGKILL to take effect) and report their exits.
  const int64_t deadline = NowNanos() + (std::max<int64_t>(0, opts_.stop_grace_ms) + 5'000) * 1'000'000;
  std::mutex wait_mu;
  std::condition_variable wait_cv;
  while (true) {
    bool done = false;
    {
      std::lock_guard lock(exec_mu_);
      std::vector<ExitStatus> exits = executor_.Poll();
      std::lock_guard lock2(mu_);
      CollectExitsLocked(std::move(exits), nullptr);
      done = executor_.Running().empty();
    }
    FlushReports();
    if (done || NowNanos() >= deadline) break;
    std::unique_lock wl(wait_mu);
    wait_cv.wait_for(wl, opts_.poll_interval);
  }
}

void Agent::Recover() {
  std::error_code ec;
  std::filesystem::directory_iterator it(opts_.home + "/jobs", ec);
  if (ec) return;
  std::lock_guard exec_lock(exec_mu_);
  struct Found {
    std::string id, dir;
    int attempt = 0;
    std::vector<std::string> gpus;
    int rank = 0;
  };
  std::vector<Found> found;  // attempts this node started and has not reported
  for (const auto& entry : it) {
    std::error_code ec2;
    if (!entry.is_directory(ec2)) continue;
    const std::string id = entry.path().filename().string();
    if (!IsSafeId(id)) continue;
    const std::string dir = JobDir(id);
    auto meta = ReadMeta(dir);
    if (!meta && ::access((dir + "/pid").c_str(), F_OK) != 0) continue;  // not a job record
    const int attempt = meta ? meta->attempt : 0;
    auto reported = ReadReported(dir);
    if (reported && *reported == attempt) continue;  // already delivered
    // Never started here (the node stopped before launching it): nothing to adopt or report, and the
    // server, finding the attempt neither running nor ended, may start it again. Dirs written before
    // the started record existed are adopted as before.
    auto started = ReadStarted(dir);
    const bool old_layout = !started && ::access((dir + "/pid").c_str(), F_OK) == 0;
    if (!old_layout && (!started || *started != attempt)) continue;
    found.push_back({id, dir, attempt, meta ? meta->gpus : std::vector<std::string>{}, meta ? meta->rank : 0});
  }
  // A start that was under way when fastgpu stopped: its supervisor (which outlives us) may not have
  // written its process record yet. Give such records a moment to appear before calling the job lost.
  auto unrecorded = [](const Found& f) {
    return ::access((f.dir + "/pid").c_str(), F_OK) != 0 && ::access((f.dir + "/exit").c_str(), F_OK) != 0;
  };
  const int64_t deadline = NowNanos() + int64_t{3'000} * 1'000'000;
  std::mutex wait_mu;
  std::condition_variable wait_cv;
  while (std::any_of(found.begin(), found.end(), unrecorded) && NowNanos() < deadline) {
    std::unique_lock wl(wait_mu);
    wait_cv.wait_for(wl, std::chrono::milliseconds(20));  // polling files: there is no event to wait on
  }
  for (const Found& f : found) {
    // Still no record: either fastgpu died before the fork, or the supervisor is very late. Claim the
    // launch: when we get it, no supervisor will run this attempt, and leaving it unreported gives it back
    // to the server as never started. When the supervisor got it first, the job may be running: adopt.
    if (unrecorded(f)) {
      if (int claim = ::open((f.dir + "/" + kClaimFile).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
          claim >= 0) {
        ::close(claim);
        continue;
      }
    }
    auto ref = executor_.Adopt(f.id, f.dir);
    if (ref.ok()) {
      std::lock_guard lock(mu_);
      RunningJob& r = running_[f.id];
      r.attempt = f.attempt;
      r.pid = ref->pid;
      r.gpu_uuids = f.gpus;
      r.rank = f.rank;
    }
  }
  std::vector<ExitStatus> exits = executor_.Poll();
  std::lock_guard lock(mu_);
  CollectExitsLocked(std::move(exits), &recovered_);
}

void Agent::CollectExitsLocked(std::vector<ExitStatus> exits, std::vector<PendingReport>* out) {
  for (ExitStatus& st : exits) {
    execs_->KillJob(st.job_id);  // commands run inside the job (`job exec`) end with it
    int attempt = 0;
    int rank = 0;
    std::string stop_reason;
    if (auto it = running_.find(st.job_id); it != running_.end()) {
      attempt = it->second.attempt;
      rank = it->second.rank;
      stop_reason = it->second.stop_reason;
      running_.erase(it);
    } else if (auto meta = ReadMeta(JobDir(st.job_id))) {
      attempt = meta->attempt;
      rank = meta->rank;
    }
    PendingReport pr{FinalReport(st, attempt, stop_reason, rank), JobDir(st.job_id)};
    if (out != nullptr) {
      out->push_back(std::move(pr));
    } else {
      reports_.push_back(std::move(pr));
    }
  }
}

JobReport Agent::FinalReport(const ExitStatus& st, int attempt, const std::string& stop_reason, int rank) const {
  JobReport r;
  r.rank = rank;
  r.kind = st.lost ? JobReport::Kind::kLost : JobReport::Kind::kExited;
  r.job_id = st.job_id;
  r.attempt = attempt;
  r.node = opts_.node_name;
  r.exit_code = st.exit_code;
  r.signal = st.signal;
  r.reason = st.reason;
  r.finished_at_ms = st.lost ? 0 : st.finished_at_ms;
  if (r.reason.empty() && !stop_reason.empty()) r.reason = stop_reason;
  return r;
}

std::vector<api::Gpu> Agent::GpuSnapshot() {
  {
    // A simulated backend's readings follow the work on each GPU (real backends ignore this).
    std::vector<gpu::GpuLoad> loads;
    std::lock_guard lock(mu_);
    for (const auto& [id, job] : running_) {
      for (const auto& uuid : job.gpu_uuids) loads.push_back({uuid, job.milli_per_gpu, job.memory_mib});
    }
    gpus_backend_.SetLoad(loads);
  }
  auto sample = gpus_backend_.Sample();
  std::lock_guard lock(mu_);
  std::vector<api::Gpu> out;
  out.reserve(gpus_.size());
  for (const gpu::GpuInfo& info : gpus_) {
    const gpu::GpuMetrics* m = nullptr;
    if (sample.ok()) {
      for (const auto& s : *sample) {
        if (s.uuid == info.uuid) m = &s;
      }
    }
    api::Gpu g = ToApiGpu(info, m, opts_.node_name);
    for (const auto& [id, job] : running_) {
      if (std::find(job.gpu_uuids.begin(), job.gpu_uuids.end(), info.uuid) != job.gpu_uuids.end()) {
        g.jobs.push_back(id);
      }
    }
    out.push_back(std::move(g));
  }
  return out;
}

Status Agent::Register() {
  NodeRegistration reg;
  reg.gpus = GpuSnapshot();
  size_t sent_recovered = 0;
  {
    std::lock_guard lock(mu_);
    reg.node.name = opts_.node_name;
    reg.node.address = opts_.address;
    reg.node.labels = opts_.labels;
    // Container jobs (docs/containers.md) can run here: the node says so to the server and to `fastgpu node list`.
    if (!FindPodman().empty()) reg.node.labels.emplace("containers", "podman");
    reg.node.healthy = true;
    reg.node.gpu_count = static_cast<int>(gpus_.size());
    reg.node.simulated = std::any_of(gpus_.begin(), gpus_.end(), [](const auto& g) { return g.simulated; });
    reg.node.last_heartbeat = clock_.NowMillis();
    for (const auto& [id, job] : running_) reg.running_job_ids.push_back(id);
    for (const auto& pr : recovered_) reg.recovered.push_back(pr.report);
    sent_recovered = recovered_.size();
    // Reports not delivered yet (the server restarted under a running agent): every attempt this node
    // started must be in running_job_ids or recovered, else the server takes it as never started.
    for (const auto& pr : reports_) reg.recovered.push_back(pr.report);
  }
  const int64_t sent_ns = NowNanos();
  Status s = cp_.RegisterNode(reg);
  if (!s.ok()) return s;
  RenewLease(sent_ns);
  std::vector<PendingReport> delivered;
  {
    std::lock_guard lock(mu_);
    registered_ = true;
    delivered.assign(std::make_move_iterator(recovered_.begin()),
                     std::make_move_iterator(recovered_.begin() + static_cast<std::ptrdiff_t>(sent_recovered)));
    recovered_.erase(recovered_.begin(), recovered_.begin() + static_cast<std::ptrdiff_t>(sent_recovered));
  }
  for (const auto& pr : delivered) {
    (void)WriteFileAtomic(pr.mark_dir + "/" + kReportedFile, std::to_string(pr.report.attempt) + "\n");
  }
  return Status::Ok();
}

void Agent::RenewLease(int64_t sent_ns) {
  // The server heard the node at or after sent_ns, so the lease counted from then ends no later than the
  // server's own count (which starts at its receipt of that call).
  const Lease lease = cp_.CurrentLease();
  const std::string path = opts_.home + "/" + kLeaseFile;
  std::lock_guard lock(lease_mu_);
  if (lease.lease_ms <= 0) {
    if (lease_ms_ != 0) ::unlink(path.c_str());
    lease_ms_ = 0;
    return;
  }
  const int64_t deadline = sent_ns + lease.lease_ms * 1'000'000;
  if (deadline <= lease_deadline_ns_) return;  // an older call answered late
  Status st = WriteFileAtomic(path, std::to_string(deadline) + " " + std::to_string(std::max<int64_t>(0, lease.grace_ms)) +
                                        " " + std::to_string(lease.lease_ms) + "\n");
  if (!st.ok()) return;  // the previous lease stays, and runs out sooner: the safe side
  lease_deadline_ns_ = deadline;
  lease_ms_ = lease.lease_ms;
}

bool Agent::WaitFor(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
  return !stopping_;
}

void Agent::CommandLoop() {
  while (true) {
    bool registered = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      registered = registered_;
    }
    if (!registered) {
      if (!Register().ok()) {
        if (!WaitFor(opts_.retry_interval)) return;
        continue;
      }
    }
    auto cmds = cp_.WaitCommands(opts_.node_name, opts_.command_wait);
    if (!cmds.ok()) {
      if (cmds.status().code() == ErrorCode::kNotFound) {
        std::lock_guard lock(mu_);
        registered_ = false;  // the server no longer knows this node
      }
      if (!WaitFor(opts_.retry_interval)) return;
      continue;
    }
    uint64_t applied = 0;
    for (const JobCommand& cmd : *cmds) {
      if (cmd.kind == JobCommand::Kind::kStart) {
        HandleStart(cmd);
      } else if (cmd.kind == JobCommand::Kind::kExec) {
        HandleExec(cmd);
      } else if (cmd.kind == JobCommand::Kind::kFiles) {
        (void)cp_.PostFiles(AnswerFiles(opts_.home + "/jobs", opts_.node_name, cmd));  // a lost answer times out there
      } else {
        HandleStop(cmd);
      }
      applied = std::max(applied, cmd.id);
    }
    // The starts of this batch (and exits found meanwhile) are reported together.
    FlushReports();
    // Acknowledged once applied: a command whose delivery failed is sent again, and applying one twice is
    // harmless (a start is keyed by job and attempt, a stop by attempt).
    if (applied > 0) (void)cp_.AckCommands(opts_.node_name, applied);
  }
}

void Agent::HandleStart(const JobCommand& cmd) {
  const api::Job& job = cmd.job;
  const std::string& id = job.id;
  auto fail = [&](std::string reason, std::string mark_dir) {
    JobReport r;
    r.kind = JobReport::Kind::kExited;
    r.job_id = id;
    r.attempt = job.attempt;
    r.node = opts_.node_name;
    r.rank = cmd.rank;
    r.exit_code = 127;
    r.reason = std::move(reason);
    return PendingReport{std::move(r), std::move(mark_dir)};
  };
  if (!IsSafeId(id)) {
    {
      std::lock_guard lock(mu_);
      reports_.push_back(fail("invalid job id '" + id + "'", ""));
    }
    return;
  }
  {
    std::lock_guard exec_lock(exec_mu_);
    bool duplicate = false;
    bool replace_old = false;
    {
      std::lock_guard lock(mu_);
      if (auto l = launched_.find(id); l != launched_.end() && l->second >= job.attempt && !running_.count(id)) {
        // This attempt was started here already and has ended (its final report is queued or delivered):
        // a start delivered again must not run it twice.
        return;
      }
      if (auto it = running_.find(id); it != running_.end()) {
        duplicate = true;
        if (it->second.attempt == job.attempt) {
          // A repeated start (e.g. a retried delivery): confirm what runs.
          JobReport r;
          r.kind = JobReport::Kind::kStarted;
          r.job_id = id;
          r.attempt = job.attempt;
          r.node = opts_.node_name;
          r.rank = cmd.rank;
          r.pid = it->second.pid;
          reports_.push_back(PendingReport{std::move(r), ""});
        } else if (it->second.attempt < job.attempt) {
          // An older attempt still runs here (being stopped, or given up while the node was away): the server has
          // moved on, so it is stopped, and this start waits for its end (StartDeferred) instead of failing.
          if (it->second.stop_reason.empty())
            it->second.stop_reason = "stopped: attempt " + std::to_string(job.attempt) + " replaces it";
          deferred_starts_[id] = cmd;
          replace_old = true;
        } else {
          reports_.push_back(fail("job " + id + " is still running on node " + opts_.node_name + " (attempt " +
                                      std::to_string(it->second.attempt) + ")",
                                  ""));
        }
      }
    }
    if (replace_old) {
      (void)executor_.Terminate(id, std::chrono::milliseconds(opts_.stop_grace_ms));
      return;
    }
    if (!duplicate) {
      const std::string dir = JobDir(id);
      std::vector<std::string> indices;
      indices.reserve(job.assigned_gpu_indices.size());
      for (int i : job.assigned_gpu_indices) indices.push_back(std::to_string(i));
      LaunchSpec spec;
      spec.job_id = id;
      spec.argv = job.spec.command;
      spec.env = job.spec.env;
      // Secret values live only in this in-memory spec and the job's environment: nothing below
      // writes the env to disk or into a message.
      for (const auto& [name, value] : cmd.secret_env) spec.env[name] = value;
      // Set last so that a job cannot claim GPUs it was not given.
      spec.env["CUDA_VISIBLE_DEVICES"] = Join(indices, ',');
      spec.env["FASTGPU_JOB_ID"] = id;
      spec.env["FASTGPU_GPU_UUIDS"] = Join(job.assigned_gpus, ',');
      spec.env["FASTGPU_NODE"] = opts_.node_name;
      // Kept across attempts (docs/scheduling.md): what a preempted or migrated attempt saved, the next one reads.
      spec.checkpoint_dir = CheckpointRoot() + "/" + id;
      spec.env["FASTGPU_CHECKPOINT_DIR"] = spec.checkpoint_dir;
      spec.env["FASTGPU_RESTART_COUNT"] = std::to_string(std::max(0, job.attempt - 1));
      const bool per_gpu = job.spec.processes == api::ProcessLayout::kPerGpu;
      if (!job.members.empty() || per_gpu) {
        // A multi-node job: one process per node (what torchrun expects), PyTorch's names plus ours. With one
        // process per GPU, the launcher gives each process its own RANK, LOCAL_RANK and WORLD_SIZE on top.
        const std::string nodes = std::to_string(std::max<size_t>(1, job.members.size()));
        const std::string rank = std::to_string(cmd.rank);
        spec.env["MASTER_ADDR"] = cmd.master_addr.empty() ? "127.0.0.1" : cmd.master_addr;
        spec.env["MASTER_PORT"] = std::to_string(cmd.master_port);
        spec.env["WORLD_SIZE"] = nodes;
        spec.env["RANK"] = rank;
        spec.env["NODE_RANK"] = rank;
        spec.env["LOCAL_RANK"] = "0";
        spec.env["FASTGPU_NUM_NODES"] = nodes;
        spec.env["FASTGPU_NODE_RANK"] = rank;
        spec.env["FASTGPU_GPUS_PER_NODE"] = std::to_string(job.assigned_gpus.size());
      }
      Status launcher_ok = Status::Ok();
      if (per_gpu) {
        const RankLayout layout{.nodes = static_cast<int>(std::max<size_t>(1, job.members.size())),
                                .node_rank = cmd.rank,
                                .gpus_per_node = static_cast<int>(job.assigned_gpus.size())};
        launcher_ok = ValidateRankLayout(layout);
        if (!launcher_ok.ok()) {
          launcher_ok = FailedPrecondition("cannot start one process per GPU on node " + opts_.node_name + ": " +
                                           launcher_ok.message());
        } else {
          launcher_ok = CheckLauncher(opts_.launcher_path, cmd, opts_.node_name);
        }
        spec.argv = RankLauncherArgv(opts_.launcher_path, layout, opts_.stop_grace_ms, job.spec.command);
      }
      if (!job.spec.image.empty()) {
        // A container job (docs/containers.md): its GPUs through the NVIDIA CDI specification when the node has
        // one, else through the NVIDIA Container Toolkit's hook (NVIDIA_VISIBLE_DEVICES). Inside, the container sees
        // only its GPUs, so CUDA_VISIBLE_DEVICES names them by UUID; simulated GPUs keep the process contract.
        spec.image = job.spec.image;
        bool simulated = false;
        {
          std::lock_guard lock(mu_);
          simulated = std::any_of(gpus_.begin(), gpus_.end(), [](const auto& g) { return g.simulated; });
        }
        if (!job.assigned_gpus.empty() && !simulated) {
          if (HasNvidiaCdiSpec()) {
            for (const std::string& uuid : job.assigned_gpus) spec.devices.push_back("nvidia.com/gpu=" + uuid);
          } else {
            spec.env["NVIDIA_VISIBLE_DEVICES"] = Join(job.assigned_gpus, ',');
            spec.env["NVIDIA_DRIVER_CAPABILITIES"] = "compute,utility";
          }
          spec.env["CUDA_VISIBLE_DEVICES"] = Join(job.assigned_gpus, ',');
        }
      }
      spec.workdir = job.spec.workdir.empty() ? dir + "/work" : job.spec.workdir;
      spec.job_dir = dir;
      spec.log_path = LogPath(id);
      spec.attempt = job.attempt;
      {
        std::lock_guard lease_lock(lease_mu_);
        if (lease_ms_ > 0) spec.lease_path = opts_.home + "/" + kLeaseFile;
      }
      spec.run_as_uid = cmd.run_as_uid;
      spec.run_as_user = cmd.run_as_user;
      spec.allow_root = cmd.allow_root;
      spec.project = job.spec.project;
      spec.node = opts_.node_name;
      Status prep = launcher_ok.ok() ? MakeDirs(dir) : launcher_ok;
      if (prep.ok()) {
        prep = WriteFileAtomic(dir + "/" + kMetaFile, "attempt=" + std::to_string(job.attempt) +
                                                          "\ngpus=" + Join(job.assigned_gpus, ',') + "\nrank=" +
                                                          std::to_string(cmd.rank) + "\n");
      }
      if (prep.ok() && !job.spec.sync.empty()) {
        // Synced code: unpacked into the work dir by the executor, as the job's user (docs/sync.md).
        Result<std::string> code = FetchCode(cp_, opts_.blob_dir, opts_.home, opts_.node_name, job);
        if (code.ok()) {
          spec.code_archive = *code;
        } else {
          prep = code.status();
        }
      }
      ::unlink((dir + "/" + kReportedFile).c_str());
      Result<ProcessRef> ref = prep.ok() ? executor_.Launch(spec) : Result<ProcessRef>(prep);
      std::lock_guard lock(mu_);
      if (launched_.insert_or_assign(id, job.attempt).second) {
        launched_order_.push_back(id);
        if (launched_order_.size() > kMaxLaunchedRemembered) {
          launched_.erase(launched_order_.front());
          launched_order_.pop_front();
        }
      }
      if (ref.ok()) {
        RunningJob& r = running_[id];
        r.attempt = job.attempt;
        r.pid = ref->pid;
        r.gpu_uuids = job.assigned_gpus;
        r.rank = cmd.rank;
        r.milli_per_gpu = static_cast<int>(std::min<MilliGpu>(job.spec.gpus_milli, kMilliPerGpu));
        r.memory_mib = job.spec.memory_mib;
        JobReport rep;
        rep.kind = JobReport::Kind::kStarted;
        rep.job_id = id;
        rep.attempt = job.attempt;
        rep.node = opts_.node_name;
        rep.rank = cmd.rank;
        rep.pid = ref->pid;
        reports_.push_back(PendingReport{std::move(rep), ""});
      } else {
        reports_.push_back(fail(ref.status().message(), prep.ok() ? dir : ""));
      }
    }
  }
}

void Agent::StartDeferred() {
  std::vector<JobCommand> ready;
  {
    std::lock_guard lock(mu_);
    for (auto it = deferred_starts_.begin(); it != deferred_starts_.end();) {
      if (running_.count(it->first)) {
        ++it;
        continue;
      }
      ready.push_back(std::move(it->second));
      it = deferred_starts_.erase(it);
    }
  }
  for (const JobCommand& cmd : ready) HandleStart(cmd);
}

void Agent::HandleStop(const JobCommand& cmd) {
  std::lock_guard exec_lock(exec_mu_);
  {
    std::lock_guard lock(mu_);
    if (auto d = deferred_starts_.find(cmd.job_id);
        d != deferred_starts_.end() && (cmd.attempt == 0 || cmd.attempt == d->second.job.attempt)) {
      // Stopped before it could start (an older attempt was still ending): it never runs.
      JobReport r;
      r.kind = JobReport::Kind::kExited;
      r.job_id = cmd.job_id;
      r.attempt = d->second.job.attempt;
      r.node = opts_.node_name;
      r.rank = d->second.rank;
      r.signal = SIGTERM;
      r.reason = "stopped before it started: " + cmd.reason;
      reports_.push_back(PendingReport{std::move(r), ""});
      deferred_starts_.erase(d);
      if (cmd.attempt != 0) return;
    }
    auto it = running_.find(cmd.job_id);
    if (it == running_.end()) return;  // already ended; its exit is (being) reported
    if (cmd.attempt != 0 && cmd.attempt != it->second.attempt) return;  // stale command
    if (it->second.stop_reason.empty()) it->second.stop_reason = cmd.reason;
  }
  const auto grace = std::chrono::milliseconds(cmd.grace_ms >= 0 ? cmd.grace_ms : opts_.stop_grace_ms);
  if (cmd.checkpoint_signal > 0) {
    // Preemption or migration: the checkpoint signal, its grace, then SIGTERM and SIGKILL.
    (void)executor_.Checkpoint(cmd.job_id, cmd.checkpoint_signal, std::chrono::milliseconds(cmd.checkpoint_grace_ms),
                               grace);
    return;
  }
  (void)executor_.Terminate(cmd.job_id, grace);
}

void Agent::HandleExec(const JobCommand& cmd) {
  ExecTarget target;
  target.node = opts_.node_name;
  const std::string& id = cmd.job.id;
  Result<ExecSpawn> spawn = InvalidArgument("invalid job id '" + id + "'");
  if (IsSafeId(id)) {
    target.job_dir = JobDir(id);
    bool here = false;
    {
      std::lock_guard lock(mu_);
      if (auto it = running_.find(id); it != running_.end() && it->second.attempt == cmd.job.attempt) {
        here = true;
        target.job_pid = it->second.pid;
      }
    }
    spawn = here ? PlanExec(cmd, target)
                 : Result<ExecSpawn>(FailedPrecondition("job " + id + " (attempt " + std::to_string(cmd.job.attempt) +
                                                        ") is not running on node " + opts_.node_name));
  }
  execs_->Start(cmd.session, id, std::move(spawn));
}

void Agent::FlushReports() {
  std::lock_guard flush_lock(flush_mu_);
  while (true) {
    // Everything queued goes in one call (one transaction on the server): under load a job's start and
    // exit, and the exits of several jobs, cost one commit.
    std::vector<PendingReport> batch;
    {
      std::lock_guard lock(mu_);
      if (reports_.empty() || NowNanos() < retry_reports_at_ns_) return;
      const size_t n = std::min(reports_.size(), kMaxReportBatch);
      batch.assign(reports_.begin(), reports_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    std::vector<JobReport> reports;
    reports.reserve(batch.size());
    for (const PendingReport& pr : batch) reports.push_back(pr.report);
    Status s = cp_.ReportJobs(reports);
    if (!s.ok() && IsTransient(s.code())) {
      std::lock_guard lock(mu_);
      retry_reports_at_ns_ = NowNanos() + opts_.retry_interval.count() * 1'000'000;
      return;
    }
    // Delivered, or refused for good (e.g. a stale attempt): either way they are done.
    {
      std::lock_guard lock(mu_);
      reports_.erase(reports_.begin(), reports_.begin() + static_cast<std::ptrdiff_t>(batch.size()));
      retry_reports_at_ns_ = 0;
    }
    for (const PendingReport& pr : batch) {
      if (!pr.mark_dir.empty()) {
        (void)WriteFileAtomic(pr.mark_dir + "/" + kReportedFile, std::to_string(pr.report.attempt) + "\n");
      }
    }
  }
}

void Agent::SendHeartbeat() {
  NodeHeartbeat hb;
  hb.node = opts_.node_name;
  hb.gpus = GpuSnapshot();
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, job] : running_) {
      hb.running_job_ids.push_back(id);
      hb.running.push_back({id, job.attempt});
    }
  }
  const int64_t sent_ns = NowNanos();
  Status s = cp_.Heartbeat(hb);
  if (s.ok()) RenewLease(sent_ns);
  if (s.code() == ErrorCode::kNotFound) {
    std::lock_guard lock(mu_);
    registered_ = false;
  }
}

void Agent::MonitorLoop() {
  int64_t next_heartbeat = NowNanos() + opts_.heartbeat_interval.count() * 1'000'000;
  while (true) {
    {
      std::lock_guard exec_lock(exec_mu_);
      std::vector<ExitStatus> exits = executor_.Poll();
      if (!exits.empty()) {
        std::lock_guard lock(mu_);
        CollectExitsLocked(std::move(exits), nullptr);
      }
    }
    StartDeferred();
    FlushReports();
    if (NowNanos() >= next_heartbeat) {
      bool registered = false;
      {
        std::lock_guard lock(mu_);
        registered = registered_;
      }
      if (registered) SendHeartbeat();
      next_heartbeat = NowNanos() + opts_.heartbeat_interval.count() * 1'000'000;
    }
    if (executor_.ExitEvents()) {
      // Event-driven: woken by a job's end (or a kill deadline, or Stop()), else at the next heartbeat.
      int64_t wait_ms = std::min<int64_t>(std::max<int64_t>(0, (next_heartbeat - NowNanos()) / 1'000'000), kMaxEventWaitMs);
      {
        std::lock_guard lock(mu_);
        if (!reports_.empty()) wait_ms = std::min<int64_t>(wait_ms, opts_.retry_interval.count());  // to retry
      }
      executor_.WaitForExits(std::chrono::milliseconds(wait_ms));
      std::lock_guard lock(mu_);
      if (stopping_) return;
    } else if (!WaitFor(opts_.poll_interval)) {
      return;
    }
  }
}

Result<LogChunk> Agent::ReadLog(const std::string& job_id, int64_t offset, int64_t max_bytes) {
  if (!IsSafeId(job_id)) return NotFound("no log for job '" + job_id + "' on node " + opts_.node_name);
  if (offset < 0) return InvalidArgument("log offset must be >= 0, got " + std::to_string(offset));
  if (max_bytes <= 0) return InvalidArgument("log read size must be > 0, got " + std::to_string(max_bytes));
  max_bytes = std::min(max_bytes, kMaxLogRead);
  const std::string path = LogPath(job_id);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT) return NotFound("no log for job " + job_id + " on node " + opts_.node_name);
    return Internal("cannot open log '" + path + "': " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Internal("cannot stat log '" + path + "': " + std::strerror(e));
  }
  LogChunk chunk;
  const int64_t size = st.st_size;
  chunk.size = size;
  chunk.modified_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1'000'000;
  if (offset >= size) {
    ::close(fd);
    chunk.next_offset = offset;
    chunk.eof = true;
    return chunk;
  }
  const int64_t want = std::min(max_bytes, size - offset);
  chunk.data = PreadUpTo(fd, offset, want);
  ::close(fd);
  chunk.next_offset = offset + static_cast<int64_t>(chunk.data.size());
  chunk.eof = chunk.next_offset >= size;
  return chunk;
}

Result<LogTimes> Agent::ReadLogTimes(const std::string& job_id, int64_t first, int64_t max_records) {
  if (!IsSafeId(job_id)) return NotFound("no log for job '" + job_id + "' on node " + opts_.node_name);
  return ReadLogTimesFile(LogTimesPath(LogPath(job_id)), first, max_records);
}

std::vector<std::string> Agent::RunningJobIds() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> ids;
  for (const auto& [id, job] : running_) ids.push_back(id);
  return ids;
}

std::vector<gpu::GpuInfo> Agent::Gpus() const {
  std::lock_guard lock(mu_);
  return gpus_;
}

bool Agent::Registered() const {
  std::lock_guard lock(mu_);
  return registered_;
}

size_t Agent::PendingReports() const {
  std::lock_guard lock(mu_);
  return reports_.size();
}

}  // namespace fastgpu::agent
