#include "agent/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>
#include <utility>

#include "agent/executor.h"
#include "common/file_util.h"

extern char** environ;  // NOLINT: POSIX

namespace fastgpu::agent {
namespace {

constexpr size_t kReadBytes = 64 << 10;
constexpr size_t kPendingCap = 192 << 10;      // per stream, read from the command and not yet taken by the server
constexpr int kKeepAliveMs = 10'000;           // an empty push at least this often (the server hears the agent)
constexpr int64_t kGiveUpMs = 120'000;         // a session whose server cannot be reached this long is abandoned
constexpr size_t kSeenSessions = 4096;

std::string ErrnoText(int e) { return std::strerror(e); }

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Everything the child needs as plain memory (it runs after fork() in a process with other threads).
struct ChildPlan {
  std::vector<std::string> candidates;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string msg_not_found, msg_denied, msg_failed, msg_chdir, msg_identity;
  std::string slave;  // the terminal's path (tty)
  int in_r = -1, out_w = -1, err_w = -1, null_fd = -1;
  int max_fd = 1024;
  pid_t parent = 0;
};

[[noreturn]] void ChildDie(const std::string& msg, int code) {
  if (!msg.empty()) {
    ssize_t w = ::write(2, msg.data(), msg.size());
    (void)w;
  }
  ::_exit(code);
}

[[noreturn]] void RunChild(const ExecSpawn& s, const ChildPlan& p) {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &sa, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::setsid();
  if (s.tty) {
    int t = ::open(p.slave.c_str(), O_RDWR);
    if (t < 0) ::_exit(127);
    ::ioctl(t, TIOCSCTTY, 0);
    ::dup2(t, 0);
    ::dup2(t, 1);
    ::dup2(t, 2);
    if (t > 2) ::close(t);
  } else {
    ::dup2(p.in_r >= 0 ? p.in_r : p.null_fd, 0);
    ::dup2(p.out_w, 1);
    ::dup2(p.err_w, 2);
  }
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < p.max_fd; ++fd) ::close(fd);
  }
  if (s.chdir_before_identity && !s.workdir.empty() && ::chdir(s.workdir.c_str()) != 0) ChildDie(p.msg_chdir, 127);
  if (s.set_identity) {
    if (::syscall(SYS_setgroups, static_cast<long>(s.groups.size()), s.groups.data()) != 0 ||
        ::syscall(SYS_setresgid, static_cast<long>(s.gid), static_cast<long>(s.gid), static_cast<long>(s.gid)) != 0 ||
        ::syscall(SYS_setresuid, static_cast<long>(s.uid), static_cast<long>(s.uid), static_cast<long>(s.uid)) != 0) {
      ChildDie(p.msg_identity, 127);
    }
    if (s.uid != 0 && ::syscall(SYS_setuid, 0L) == 0) ChildDie(p.msg_identity, 127);
  }
  // After the identity switch (which clears it): killed with the thread that started it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != p.parent) ::_exit(137);
  if (s.set_umask) ::umask(077);
  if (!s.chdir_before_identity && !s.workdir.empty() && ::chdir(s.workdir.c_str()) != 0) ChildDie(p.msg_chdir, 127);
  bool denied = false;
  int err = ENOENT;
  for (const std::string& c : p.candidates) {
    ::execve(c.c_str(), p.argv.data(), p.envp.data());
    if (errno == EACCES) {
      if (::access(c.c_str(), F_OK) == 0) denied = true;
    } else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != ENAMETOOLONG) {
      err = errno;
      break;
    }
  }
  if (err == ENOENT && denied) ChildDie(p.msg_denied, 126);
  if (err == ENOENT) ChildDie(p.msg_not_found, 127);
  ChildDie(p.msg_failed, 126);
}

std::string EnvValue(const std::vector<std::string>& env, const std::string& name) {
  for (const std::string& kv : env)
    if (kv.size() > name.size() && kv.compare(0, name.size(), name) == 0 && kv[name.size()] == '=')
      return kv.substr(name.size() + 1);
  return "";
}

}  // namespace

Result<ExecProcess> SpawnExec(const ExecSpawn& s) {
  if (s.argv.empty() || s.argv[0].empty()) return InvalidArgument("exec: no command to run");
  ChildPlan p;
  p.parent = ::getpid();
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    p.max_fd = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 1 << 20));
  // PATH search as the command's user (it runs in the child, after the identity switch), like the job's own.
  const std::string& cmd = s.argv[0];
  if (cmd.find('/') != std::string::npos) {
    p.candidates.push_back(cmd);
  } else {
    std::string path = EnvValue(s.env, "PATH");
    if (path.empty()) path = "/usr/local/bin:/usr/bin:/bin";
    size_t start = 0;
    while (start <= path.size()) {
      size_t colon = path.find(':', start);
      if (colon == std::string::npos) colon = path.size();
      std::string dir = path.substr(start, colon - start);
      p.candidates.push_back((dir.empty() ? std::string(".") : dir) + "/" + cmd);
      start = colon + 1;
    }
  }
  std::vector<std::string> argv = s.argv, env = s.env;
  for (auto& a : argv) p.argv.push_back(a.data());
  p.argv.push_back(nullptr);
  for (auto& e : env) p.envp.push_back(e.data());
  p.envp.push_back(nullptr);
  p.msg_not_found = "fastgpu: cannot run '" + cmd + "': command not found\n";
  p.msg_denied = "fastgpu: cannot run '" + cmd + "': permission denied\n";
  p.msg_failed = "fastgpu: cannot run '" + cmd + "'\n";
  p.msg_chdir = "fastgpu: cannot enter the job's working directory '" + s.workdir + "'\n";
  p.msg_identity = "fastgpu: cannot switch to the job's user (uid " + std::to_string(s.uid) + ")\n";

  ExecProcess out;
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  int master = -1;
  auto fail = [&](const std::string& what) {
    const int e = errno;
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1], master, p.null_fd})
      if (fd >= 0) ::close(fd);
    return Unavailable("cannot start the command: " + what + ": " + ErrnoText(e));
  };
  if (s.tty) {
    master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return fail("no pseudo-terminal");
    char name[128];
    if (::grantpt(master) != 0 || ::unlockpt(master) != 0 || ::ptsname_r(master, name, sizeof(name)) != 0)
      return fail("pseudo-terminal");
    p.slave = name;
    if (s.rows > 0 && s.cols > 0) {
      struct winsize ws {};
      ws.ws_row = static_cast<unsigned short>(s.rows);
      ws.ws_col = static_cast<unsigned short>(s.cols);
      ::ioctl(master, TIOCSWINSZ, &ws);
    }
  } else {
    if (s.stdin_open) {
      if (::pipe2(in_pipe, O_CLOEXEC) != 0) return fail("pipe");
      p.in_r = in_pipe[0];
    } else {
      p.null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (p.null_fd < 0) return fail("/dev/null");
    }
    if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return fail("pipe");
    p.out_w = out_pipe[1];
    p.err_w = err_pipe[1];
  }
  pid_t pid = ::fork();
  if (pid < 0) return fail("fork");
  if (pid == 0) RunChild(s, p);
  for (int* fd : {&in_pipe[0], &out_pipe[1], &err_pipe[1], &p.null_fd}) CloseFd(*fd);
  out.pid = pid;
  out.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (s.tty) {
    out.out_fd = master;
    out.in_fd = ::fcntl(master, F_DUPFD_CLOEXEC, 3);
  } else {
    out.in_fd = in_pipe[1];
    out.out_fd = out_pipe[0];
    out.err_fd = err_pipe[0];
  }
  return out;
}

Result<ExecSpawn> PlanExec(const JobCommand& cmd, const ExecTarget& t) {
  const api::Job& job = cmd.job;
  ExecSpawn s;
  s.tty = cmd.tty;
  s.rows = cmd.rows;
  s.cols = cmd.cols;
  s.stdin_open = cmd.stdin_open;
  if (!job.spec.image.empty()) {
    // A container job: podman exec into its container (named in its job dir by the executor), as the agent's user and
    // in the agent's environment (podman's settings); inside, the container's user, environment and directory.
    auto name = ReadFileToString(t.job_dir + "/container");
    if (!name) return FailedPrecondition("cannot find the container of job " + job.id + " on node " + t.node);
    std::string container = *name;
    while (!container.empty() && (container.back() == '\n' || container.back() == ' ')) container.pop_back();
    const std::string podman = FindPodman();
    if (podman.empty()) return FailedPrecondition("podman is not installed on node " + t.node);
    s.argv = {podman, "exec"};
    if (cmd.stdin_open || cmd.tty) s.argv.push_back("--interactive");
    if (cmd.tty) {
      s.argv.push_back("--tty");
      if (!cmd.term.empty()) s.argv.push_back("--env=TERM=" + cmd.term);
    }
    s.argv.push_back(container);
    s.argv.insert(s.argv.end(), cmd.argv.begin(), cmd.argv.end());
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string kv(*e);
      if (kv.rfind("FASTGPU_", 0) == 0) continue;  // never the agent's tokens or keys
      s.env.push_back(std::move(kv));
    }
    return s;
  }
  if (t.job_pid <= 0) return FailedPrecondition("job " + job.id + " has no process on node " + t.node);
  const std::string proc = "/proc/" + std::to_string(t.job_pid);
  // The job's environment as its process was started with (secrets included: they stay on this node).
  auto environ_text = ReadFileToString(proc + "/environ", 4 << 20);
  if (!environ_text)
    return FailedPrecondition("cannot read the environment of job " + job.id + "'s process on node " + t.node +
                              " (" + proc + "/environ)");
  if (environ_text->empty())  // its exec has not set it up yet (a job that has only just started)
    return Unavailable("job " + job.id + "'s process on node " + t.node + " is still starting: try again");
  for (size_t i = 0; i < environ_text->size();) {
    size_t z = environ_text->find('\0', i);
    if (z == std::string::npos) z = environ_text->size();
    if (z > i) s.env.push_back(environ_text->substr(i, z - i));
    i = z + 1;
  }
  if (cmd.tty && !cmd.term.empty()) {
    std::erase_if(s.env, [](const std::string& kv) { return kv.rfind("TERM=", 0) == 0; });
    s.env.push_back("TERM=" + cmd.term);
  }
  // Who: the user the job's process runs as (real ids and groups), checked against the project's rules.
  auto status = ReadFileToString(proc + "/status", 1 << 20);
  if (!status) return FailedPrecondition("job " + job.id + "'s process is gone from node " + t.node);
  int64_t uid = -1, gid = -1;
  std::vector<gid_t> groups;
  size_t pos = 0;
  while (pos < status->size()) {
    size_t nl = status->find('\n', pos);
    if (nl == std::string::npos) nl = status->size();
    const std::string line = status->substr(pos, nl - pos);
    pos = nl + 1;
    auto first = [&](size_t from) { return std::strtoll(line.c_str() + from, nullptr, 10); };
    if (line.rfind("Uid:", 0) == 0) uid = first(4);
    if (line.rfind("Gid:", 0) == 0) gid = first(4);
    if (line.rfind("Groups:", 0) == 0) {
      const char* c = line.c_str() + 7;
      while (*c != '\0') {
        char* end = nullptr;
        long long g = std::strtoll(c, &end, 10);
        if (end == c) break;
        groups.push_back(static_cast<gid_t>(g));
        c = end;
      }
    }
  }
  if (uid < 0 || gid < 0) return Internal("cannot read who job " + job.id + "'s process runs as (" + proc + "/status)");
  if (::geteuid() == 0) {
    if (uid == 0 && !cmd.allow_root)
      return PermissionDenied("refusing to exec as root: the process of job " + job.id +
                              " runs as root and its project does not allow root");
    if (cmd.run_as_user.empty() && cmd.run_as_uid > 0 && uid != cmd.run_as_uid)
      return PermissionDenied("refusing to exec: the process of job " + job.id + " runs as uid " + std::to_string(uid) +
                              ", not as its project's uid " + std::to_string(cmd.run_as_uid));
    s.set_identity = true;
    s.uid = static_cast<uid_t>(uid);
    s.gid = static_cast<gid_t>(gid);
    s.groups = std::move(groups);
    s.set_umask = cmd.run_as_user.empty();
  }
  std::error_code ec;
  const std::string job_dir = std::filesystem::absolute(t.job_dir, ec).lexically_normal().string();
  s.workdir = job.spec.workdir.empty() ? job_dir + "/work" : job.spec.workdir;
  s.chdir_before_identity = s.workdir.rfind(job_dir + "/", 0) == 0;
  s.argv = cmd.argv;
  return s;
}

// ---------------------------------------------------------------------------------------------

struct ExecRunner::Session {
  std::string id, job_id;
  bool tty = false;
  std::mutex mu;
  pid_t pid = -1;        // guarded by mu; -1 once reaped (or never started)
  std::string kill_reason;  // guarded by mu: why the agent killed it (the job ended), told to the client
  int in_fd = -1;        // owned by the input thread once started
  int wake_fd = -1;      // eventfd: wakes the output thread (kill, stop)
  std::atomic<bool> done{false};
  std::atomic<bool> finished{false};  // both threads are at their end: joinable without waiting
  std::thread runner, input;

  void Kill() {
    std::lock_guard lock(mu);
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
    }
  }
  void Wake() const {
    uint64_t one = 1;
    ssize_t w = ::write(wake_fd, &one, sizeof(one));
    (void)w;
  }
};

ExecRunner::ExecRunner(ControlPlane& cp, std::string node, std::chrono::milliseconds input_wait,
                       std::chrono::milliseconds retry)
    : cp_(cp), node_(std::move(node)), input_wait_(input_wait), retry_(retry) {}

ExecRunner::~ExecRunner() { StopAll(); }

void ExecRunner::ReapFinishedLocked() {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (!it->second->finished) {
      ++it;
      continue;
    }
    if (it->second->runner.joinable()) it->second->runner.join();
    if (it->second->input.joinable()) it->second->input.join();
    CloseFd(it->second->wake_fd);
    it = sessions_.erase(it);
  }
}

void ExecRunner::Start(const std::string& session, const std::string& job_id, Result<ExecSpawn> spawn) {
  std::lock_guard lock(mu_);
  ReapFinishedLocked();
  if (stopping_ || !seen_.insert(session).second) return;
  seen_order_.push_back(session);
  if (seen_order_.size() > kSeenSessions) {
    seen_.erase(seen_order_.front());
    seen_order_.pop_front();
  }
  auto s = std::make_shared<Session>();
  s->id = session;
  s->job_id = job_id;
  s->tty = spawn.ok() && spawn->tty;
  s->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  sessions_[session] = s;
  s->runner = std::thread([this, s, sp = std::move(spawn)]() mutable { Run(s, std::move(sp)); });
}

void ExecRunner::KillJob(const std::string& job_id) {
  std::lock_guard lock(mu_);
  for (auto& [id, s] : sessions_) {
    if (s->job_id != job_id) continue;
    {
      std::lock_guard slock(s->mu);
      if (s->kill_reason.empty()) s->kill_reason = "job " + job_id + " ended";
    }
    s->Kill();
    s->Wake();
  }
}

void ExecRunner::StopAll() {
  std::map<std::string, std::shared_ptr<Session>> all;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    all = sessions_;
  }
  for (auto& [id, s] : all) {
    s->Kill();
    s->Wake();
  }
  for (auto& [id, s] : all) {
    if (s->runner.joinable()) s->runner.join();
    if (s->input.joinable()) s->input.join();
  }
  std::lock_guard lock(mu_);
  for (auto& [id, s] : sessions_) CloseFd(s->wake_fd);
  sessions_.clear();
}

size_t ExecRunner::Live() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(
      std::count_if(sessions_.begin(), sessions_.end(), [](const auto& e) { return !e.second->finished; }));
}

void ExecRunner::Run(const std::shared_ptr<Session>& s, Result<ExecSpawn> spawn) {
  ExecOutput out;
  out.session = s->id;
  out.node = node_;
  std::string pend_out, pend_err;  // read, not yet taken by the server; they start at out.stdout/stderr_offset
  Result<ExecProcess> proc = spawn.ok() ? SpawnExec(*spawn) : Result<ExecProcess>(spawn.status());
  bool exited = false;
  int out_fd = -1, err_fd = -1, pidfd = -1;
  if (!proc.ok()) {
    pend_err = "fastgpu: " + proc.status().message() + "\n";
    out.error = proc.status().message();
    out.exit_code = 127;
    exited = true;
  } else {
    {
      std::lock_guard lock(s->mu);
      s->pid = proc->pid;
      s->in_fd = proc->in_fd;
    }
    out_fd = proc->out_fd;
    err_fd = proc->err_fd;
    pidfd = proc->pidfd;
    s->input = std::thread([this, s] { InputLoop(s); });
  }
  auto stopping = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  auto reap = [&](bool block) {
    std::lock_guard lock(s->mu);
    if (s->pid <= 0) return;
    int st = 0;
    pid_t r = ::waitpid(s->pid, &st, block ? 0 : WNOHANG);
    if (r != s->pid) return;
    s->pid = -1;
    exited = true;
    if (WIFEXITED(st)) {
      out.exit_code = WEXITSTATUS(st);
    } else if (WIFSIGNALED(st)) {
      out.signal = WTERMSIG(st);
    }
  };
  auto read_into = [&](int& fd, std::string& pend) {
    char buf[kReadBytes];
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      pend.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      CloseFd(fd);  // EOF (EIO from a terminal whose other side is closed)
    }
  };
  // Time is counted by the waits below (no clock reads): only for keep-alives and giving up on an unreachable server.
  int64_t waited_ms = 0, last_push_ms = 0, failing_since_ms = -1;
  bool retry_wait = false;  // the last push failed, or the server held output back: push again after `wait_ms`
  // The server holds back output while its client has not read what it has: look again soon (it empties as fast as
  // the client reads), backing off to `retry_` while nothing moves. A failed push waits `retry_`.
  constexpr int kHeldBackFirstMs = 5;
  int wait_ms = kHeldBackFirstMs;
  while (true) {
    // Wait for output, the end of the command, a kill or stop, or the time to push again.
    std::vector<pollfd> fds;
    if (out_fd >= 0 && pend_out.size() < kPendingCap) fds.push_back({out_fd, POLLIN, 0});
    if (err_fd >= 0 && pend_err.size() < kPendingCap) fds.push_back({err_fd, POLLIN, 0});
    if (pidfd >= 0 && !exited) fds.push_back({pidfd, POLLIN, 0});
    fds.push_back({s->wake_fd, POLLIN, 0});
    const bool have_output = !pend_out.empty() || !pend_err.empty();
    int timeout = kKeepAliveMs;
    if (pidfd < 0 && !exited) timeout = 100;  // no pidfd: look for the end now and then
    if (retry_wait) {
      timeout = wait_ms;
    } else if (have_output || exited) {
      timeout = 0;
    }
    int r = ::poll(fds.data(), fds.size(), timeout);
    if (r == 0) waited_ms += timeout;
    if (r > 0) {
      for (const pollfd& f : fds) {
        if (f.revents == 0) continue;
        if (f.fd == s->wake_fd) {
          uint64_t v = 0;
          ssize_t n = ::read(s->wake_fd, &v, sizeof(v));
          (void)n;
        } else if (f.fd == out_fd) {
          read_into(out_fd, pend_out);
        } else if (f.fd == err_fd) {
          read_into(err_fd, pend_err);
        }
      }
    }
    if (!exited) reap(false);
    if (exited) {
      // The command has ended: take what its output still holds, without waiting for processes it left behind.
      for (int* fd : {&out_fd, &err_fd}) {
        if (*fd < 0) continue;
        ::fcntl(*fd, F_SETFL, ::fcntl(*fd, F_GETFL) | O_NONBLOCK);
        std::string& pend = fd == &out_fd ? pend_out : pend_err;
        while (pend.size() < kPendingCap * 4) {
          char buf[kReadBytes];
          ssize_t n = ::read(*fd, buf, sizeof(buf));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) break;
          pend.append(buf, static_cast<size_t>(n));
        }
        CloseFd(*fd);
      }
    }
    const bool due = !pend_out.empty() || !pend_err.empty() || exited || waited_ms - last_push_ms >= kKeepAliveMs;
    if (!due || (retry_wait && r != 0 && !exited)) continue;
    // Push output, the end, or a keep-alive (whose answer also says whether the client is still there).
    ExecOutput push = out;
    push.stdout_data = pend_out.substr(0, kPendingCap);
    push.stderr_data = pend_err.substr(0, kPendingCap);
    push.exited = exited && push.stdout_data.size() == pend_out.size() && push.stderr_data.size() == pend_err.size();
    if (!push.exited) {
      push.exit_code.reset();
      push.signal.reset();
      push.error.clear();
    } else if (push.error.empty()) {
      std::lock_guard lock(s->mu);
      push.error = s->kill_reason;
    }
    auto ack = cp_.PushExecOutput(push);
    last_push_ms = waited_ms;
    if (!ack.ok()) {
      const ErrorCode code = ack.status().code();
      if (code == ErrorCode::kNotFound || code == ErrorCode::kInvalidArgument || code == ErrorCode::kPermissionDenied ||
          code == ErrorCode::kFailedPrecondition) {
        break;  // the server no longer knows the session (or never will): the command is killed below
      }
      if (failing_since_ms < 0) failing_since_ms = waited_ms;
      if (waited_ms - failing_since_ms >= kGiveUpMs || stopping()) break;
      retry_wait = true;
      wait_ms = static_cast<int>(retry_.count());
      continue;
    }
    failing_since_ms = -1;
    const int64_t sent = static_cast<int64_t>(push.stdout_data.size() + push.stderr_data.size());
    const int64_t before = out.stdout_offset + out.stderr_offset;
    auto take = [](std::string& pend, int64_t& offset, int64_t acked) {
      const int64_t n = std::clamp<int64_t>(acked - offset, 0, static_cast<int64_t>(pend.size()));
      pend.erase(0, static_cast<size_t>(n));
      offset += n;
    };
    take(pend_out, out.stdout_offset, ack->stdout_offset);
    take(pend_err, out.stderr_offset, ack->stderr_offset);
    if (push.exited && pend_out.empty() && pend_err.empty()) break;  // the server has all of it, and the end
    if (ack->closed) {
      if (exited) break;  // nobody will read the rest
      s->Kill();          // the client went away or ended the session; its end is pushed once reaped
    }
    // The server held some back (its buffer for the client is full): the rest goes after a pause.
    const int64_t taken = out.stdout_offset + out.stderr_offset - before;
    retry_wait = taken < sent;
    wait_ms = taken > 0 ? kHeldBackFirstMs : std::min(wait_ms * 2, static_cast<int>(retry_.count()));
  }
  s->Kill();
  if (pidfd >= 0 && !exited) {
    pollfd p{pidfd, POLLIN, 0};  // killed: its end comes at once; waited for without holding the session's lock
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
  }
  reap(true);
  for (int* fd : {&out_fd, &err_fd, &pidfd}) CloseFd(*fd);
  s->done = true;
  if (s->input.joinable()) s->input.join();
  s->finished = true;
}

void ExecRunner::InputLoop(const std::shared_ptr<Session>& s) {
  int64_t offset = 0;
  int rows = 0, cols = 0;
  bool eof_done = false;
  int in_fd = -1;
  {
    std::lock_guard lock(s->mu);
    in_fd = s->in_fd;
    s->in_fd = -1;
  }
  const int term_fd = s->tty ? in_fd : -1;
  std::mutex wait_mu;
  std::condition_variable wait_cv;
  while (!s->done) {
    auto in = cp_.WaitExecInput(node_, s->id, offset, input_wait_);
    if (s->done) break;
    if (!in.ok()) {
      if (in.status().code() == ErrorCode::kNotFound || in.status().code() == ErrorCode::kPermissionDenied) {
        s->Kill();
        s->Wake();
        break;
      }
      std::unique_lock wl(wait_mu);
      wait_cv.wait_for(wl, retry_, [&] { return s->done.load(); });
      continue;
    }
    // Bytes from where we are (the server may repeat some after a lost answer).
    const int64_t end = in->offset + static_cast<int64_t>(in->data.size());
    if (end > offset && in->offset <= offset) {
      std::string_view data(in->data);
      data.remove_prefix(static_cast<size_t>(offset - in->offset));
      while (!data.empty() && in_fd >= 0) {
        ssize_t w = ::write(in_fd, data.data(), data.size());
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          if (!s->tty) CloseFd(in_fd);  // the command closed its input: the rest is dropped
          break;
        }
        data.remove_prefix(static_cast<size_t>(w));
      }
      offset = end;
    }
    if (term_fd >= 0 && in->rows > 0 && in->cols > 0 && (in->rows != rows || in->cols != cols)) {
      rows = in->rows;
      cols = in->cols;
      struct winsize ws {};
      ws.ws_row = static_cast<unsigned short>(rows);
      ws.ws_col = static_cast<unsigned short>(cols);
      ::ioctl(term_fd, TIOCSWINSZ, &ws);  // the terminal's foreground process group gets SIGWINCH
    }
    if (in->eof && !eof_done) {
      eof_done = true;
      if (s->tty) {
        if (in_fd >= 0) {
          const char eot = 4;  // Ctrl-D: end of input for the program reading the terminal
          ssize_t w = ::write(in_fd, &eot, 1);
          (void)w;
        }
      } else {
        CloseFd(in_fd);
      }
    }
    if (in->close) {
      s->Kill();
      s->Wake();
      break;
    }
  }
  CloseFd(in_fd);
}

}  // namespace fastgpu::agent
