#include "agent/rank_launcher.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>

extern char** environ;  // NOLINT: POSIX

namespace fastgpu::agent {
namespace {

Result<int64_t> ParseNumber(const std::string& flag, const std::string& text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v < lo || v > hi) {
    return InvalidArgument(flag + " must be a number from " + std::to_string(lo) + " to " + std::to_string(hi) +
                           ", not '" + text + "'");
  }
  return v;
}

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// What one child did, from its wait status.
std::string Describe(int status) {
  if (WIFSIGNALED(status)) {
    const char* name = ::strsignal(WTERMSIG(status));
    return "was killed by signal " + std::to_string(WTERMSIG(status)) + (name ? std::string(" (") + name + ")" : "");
  }
  return "exited with code " + std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

bool Failed(int status) { return !WIFEXITED(status) || WEXITSTATUS(status) != 0; }

// Ends this process the way `status` says a child ended: the same exit code, or killed by the same signal.
int EndLike(int status) {
  if (!WIFSIGNALED(status)) return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
  const int sig = WTERMSIG(status);
  struct rlimit no_core {};
  ::setrlimit(RLIMIT_CORE, &no_core);  // the child may have dumped core; the launcher has nothing to show
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_DFL;
  ::sigaction(sig, &sa, nullptr);
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, sig);
  ::sigprocmask(SIG_UNBLOCK, &one, nullptr);
  ::raise(sig);
  return 128 + sig;  // a signal whose default is not to terminate
}

}  // namespace

Status ValidateRankLayout(const RankLayout& l) {
  if (l.nodes < 1 || l.nodes > 1024) return InvalidArgument("the number of nodes must be 1 to 1024");
  if (l.node_rank < 0 || l.node_rank >= l.nodes)
    return InvalidArgument("the node rank must be 0 to " + std::to_string(l.nodes - 1));
  if (l.gpus_per_node < 1 || l.gpus_per_node > 1024) return InvalidArgument("GPUs per node must be 1 to 1024");
  return Status::Ok();
}

std::map<std::string, std::string> RankEnv(const RankLayout& l, int local) {
  const int64_t world = int64_t{l.nodes} * l.gpus_per_node;
  const int64_t rank = int64_t{l.node_rank} * l.gpus_per_node + local;
  return {{"RANK", std::to_string(rank)},
          {"LOCAL_RANK", std::to_string(local)},
          {"WORLD_SIZE", std::to_string(world)},
          {"LOCAL_WORLD_SIZE", std::to_string(l.gpus_per_node)},
          {"GROUP_RANK", std::to_string(l.node_rank)},
          {"GROUP_WORLD_SIZE", std::to_string(l.nodes)},
          {"NODE_RANK", std::to_string(l.node_rank)}};
}

std::vector<std::string> RankLauncherArgv(const std::string& launcher, const RankLayout& l, int64_t grace_ms,
                                          const std::vector<std::string>& command) {
  std::vector<std::string> argv = {launcher,
                                   kRankLauncherVerb,
                                   "--nodes",
                                   std::to_string(l.nodes),
                                   "--node-rank",
                                   std::to_string(l.node_rank),
                                   "--gpus-per-node",
                                   std::to_string(l.gpus_per_node),
                                   "--grace-ms",
                                   std::to_string(std::max<int64_t>(0, grace_ms)),
                                   "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  return argv;
}

Result<RankLauncherArgs> ParseRankLauncherArgs(const std::vector<std::string>& args) {
  RankLauncherArgs out;
  bool nodes = false, node_rank = false, gpus = false;
  size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (i + 1 >= args.size()) return InvalidArgument("'" + a + "' needs a value");
    const std::string& v = args[++i];
    if (a == "--nodes") {
      ASSIGN_OR_RETURN(int64_t n, ParseNumber(a, v, 1, 1024));
      out.layout.nodes = static_cast<int>(n);
      nodes = true;
    } else if (a == "--node-rank") {
      ASSIGN_OR_RETURN(int64_t n, ParseNumber(a, v, 0, 1023));
      out.layout.node_rank = static_cast<int>(n);
      node_rank = true;
    } else if (a == "--gpus-per-node") {
      ASSIGN_OR_RETURN(int64_t n, ParseNumber(a, v, 1, 1024));
      out.layout.gpus_per_node = static_cast<int>(n);
      gpus = true;
    } else if (a == "--grace-ms") {
      ASSIGN_OR_RETURN(out.grace_ms, ParseNumber(a, v, 0, 24LL * 3600 * 1000));
    } else {
      return InvalidArgument("unknown option '" + a + "'");
    }
  }
  if (!nodes || !node_rank || !gpus) return InvalidArgument("--nodes, --node-rank and --gpus-per-node are required");
  out.command.assign(args.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.size())), args.end());
  if (out.command.empty() || out.command[0].empty()) return InvalidArgument("no command after '--'");
  RETURN_IF_ERROR(ValidateRankLayout(out.layout));
  return out;
}

int RunRankLauncher(const std::vector<std::string>& args) {
  auto parsed = ParseRankLauncherArgs(args);
  if (!parsed.ok()) {
    std::fprintf(stderr, "fastgpu: %s: %s (usage: fastgpu %s --nodes N --node-rank R --gpus-per-node G "
                 "[--grace-ms MS] -- COMMAND...)\n",
                 kRankLauncherVerb, parsed.status().message().c_str(), kRankLauncherVerb);
    return 127;
  }
  const RankLauncherArgs& a = *parsed;
  const int n = a.layout.gpus_per_node;

  // Everything the children need, prepared before the first fork.
  std::map<std::string, std::string> inherited;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr || eq == *e) continue;
    inherited.emplace(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }
  std::vector<std::vector<std::string>> env_store(static_cast<size_t>(n));
  std::vector<std::vector<char*>> envp(static_cast<size_t>(n));
  for (int local = 0; local < n; ++local) {
    std::map<std::string, std::string> env = inherited;
    for (auto& [k, v] : RankEnv(a.layout, local)) env[k] = v;
    auto& store = env_store[static_cast<size_t>(local)];
    for (const auto& [k, v] : env) store.push_back(k + "=" + v);
    for (auto& s : store) envp[static_cast<size_t>(local)].push_back(s.data());
    envp[static_cast<size_t>(local)].push_back(nullptr);
  }
  std::vector<std::string> argv_store = a.command;
  std::vector<char*> argv;
  for (auto& s : argv_store) argv.push_back(s.data());
  argv.push_back(nullptr);

  // Signals are taken synchronously (sigwaitinfo): blocked here, unblocked again in each child.
  sigset_t handled, old;
  sigemptyset(&handled);
  // Besides SIGCHLD: every signal a job may ask for as its checkpoint signal (api::kCheckpointSignals), which the
  // agent sends to the launcher alone so that each rank gets it once.
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGALRM, SIGHUP, SIGQUIT, SIGWINCH}) sigaddset(&handled, sig);
  ::sigprocmask(SIG_BLOCK, &handled, &old);
  struct sigaction dfl {};
  sigemptyset(&dfl.sa_mask);
  dfl.sa_handler = SIG_DFL;
  ::sigaction(SIGCHLD, &dfl, nullptr);  // an ignored SIGCHLD would reap the children for us

  struct Child {
    pid_t pid = -1;
    int local = 0;
    bool alive = false;
  };
  std::vector<Child> children(static_cast<size_t>(n));
  const bool group_leader = ::getpgrp() == ::getpid();
  std::optional<int> failed_status;  // of the first child that failed
  bool stopping = false;             // the others were told to stop after a failure
  bool stop_requested = false;       // a stop signal came from outside
  int live = 0;

  auto rank_of = [&](int local) { return int64_t{a.layout.node_rank} * n + local; };
  auto signal_children = [&](int sig) {
    for (const Child& c : children)
      if (c.alive) ::kill(c.pid, sig);
  };
  auto fail = [&](int local, int status) {
    if (failed_status) return;
    failed_status = status;
    if (!stop_requested) {
      std::fprintf(stderr, "fastgpu: rank %lld (local rank %d) %s; stopping the job's other processes\n",
                   static_cast<long long>(rank_of(local)), local, Describe(status).c_str());
      std::fflush(stderr);
    }
    if (live == 0) return;
    stopping = true;
    // The whole process group (the children's own children too), when it is ours; the SIGTERM that comes back
    // to the launcher itself is not forwarded again. After a stop from outside, the processes have had theirs.
    if (!stop_requested && group_leader) {
      ::kill(0, SIGTERM);
    } else if (!stop_requested) {
      signal_children(SIGTERM);
    }
    struct itimerval grace {};
    grace.it_value.tv_sec = static_cast<time_t>(a.grace_ms / 1000);
    grace.it_value.tv_usec = static_cast<suseconds_t>((a.grace_ms % 1000) * 1000);
    if (grace.it_value.tv_sec == 0 && grace.it_value.tv_usec == 0) grace.it_value.tv_usec = 1;
    ::setitimer(ITIMER_REAL, &grace, nullptr);
  };

  for (int local = 0; local < n; ++local) {
    Child& c = children[static_cast<size_t>(local)];
    c.local = local;
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::sigprocmask(SIG_SETMASK, &old, nullptr);
      ::execvpe(argv[0], argv.data(), envp[static_cast<size_t>(local)].data());
      std::fprintf(stderr, "fastgpu: rank %lld: cannot run '%s': %s\n", static_cast<long long>(rank_of(local)),
                   argv[0], std::strerror(errno));
      std::fflush(stderr);
      ::_exit(127);
    }
    if (pid < 0) {
      std::fprintf(stderr, "fastgpu: rank %lld: cannot start a process: %s\n", static_cast<long long>(rank_of(local)),
                   std::strerror(errno));
      fail(local, 127 << 8);  // as if it had exited 127
      break;
    }
    c.pid = pid;
    c.alive = true;
    ++live;
  }

  while (live > 0) {
    siginfo_t info{};
    const int sig = ::sigwaitinfo(&handled, &info);
    if (sig < 0) continue;  // EINTR
    if (sig == SIGCHLD) {
      int status = 0;
      pid_t pid = 0;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        auto it = std::find_if(children.begin(), children.end(), [&](const Child& c) { return c.pid == pid; });
        if (it == children.end() || !it->alive) continue;
        it->alive = false;
        --live;
        if (Failed(status)) fail(it->local, status);
      }
    } else if (sig == SIGALRM && stopping) {
      signal_children(SIGKILL);  // the grace after a failed rank is over (our timer)
    } else {
      if (sig == SIGTERM || sig == SIGINT) stop_requested = stop_requested || !stopping;
      if (stopping && sig == SIGTERM) continue;  // ours, or a stop the children have already been given
      signal_children(sig);
    }
  }
  return failed_status ? EndLike(*failed_status) : 0;
}

Result<std::string> SelfExecutable() {
  std::vector<char> buf(256);
  while (true) {
    const ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size());
    if (n < 0) return Internal(std::string("cannot read /proc/self/exe: ") + std::strerror(errno));
    if (static_cast<size_t>(n) < buf.size()) {
      std::string path(buf.data(), static_cast<size_t>(n));
      constexpr std::string_view kDeleted = " (deleted)";
      if (path.size() > kDeleted.size() && path.compare(path.size() - kDeleted.size(), kDeleted.size(), kDeleted) == 0) {
        return FailedPrecondition("the running fastgpu binary '" + path.substr(0, path.size() - kDeleted.size()) +
                                  "' was removed or replaced since it started (restart it)");
      }
      return path;
    }
    if (buf.size() >= (1u << 16)) return Internal("the path of /proc/self/exe is too long");
    buf.resize(buf.size() * 2);
  }
}

namespace {

// Every directory on the way to `path` searchable by uid, and `path` itself an executable file (want_dir false) or
// a directory it may enter (want_dir true).
Status CheckPathBy(const std::string& path, uid_t uid, gid_t gid, const std::vector<gid_t>& groups, bool want_dir) {
  if (path.empty() || path[0] != '/') return InvalidArgument("'" + path + "' is not an absolute path");
  auto allowed = [&](const struct stat& st) {
    if (uid == 0) return (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0 || S_ISDIR(st.st_mode);
    if (st.st_uid == uid) return (st.st_mode & S_IXUSR) != 0;
    if (st.st_gid == gid || std::find(groups.begin(), groups.end(), st.st_gid) != groups.end())
      return (st.st_mode & S_IXGRP) != 0;
    return (st.st_mode & S_IXOTH) != 0;
  };
  const std::string who = "uid " + std::to_string(uid);
  // Each directory on the way ("/", "/usr", "/usr/local", …), then the file.
  std::vector<std::string> steps = {"/"};
  for (size_t pos = 1; pos < path.size();) {
    const size_t slash = path.find('/', pos);
    if (slash == std::string::npos) {
      steps.push_back(path);
      break;
    }
    if (slash > pos) steps.push_back(path.substr(0, slash));
    pos = slash + 1;
  }
  for (size_t i = 0; i < steps.size(); ++i) {
    const std::string& part = steps[i];
    struct stat st {};
    if (::stat(part.c_str(), &st) != 0) {
      return Status(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kInternal,
                    "cannot check '" + part + "': " + std::strerror(errno));
    }
    const bool dir = S_ISDIR(st.st_mode);
    const bool last = i + 1 == steps.size();
    if (last && dir && !want_dir) return PermissionDenied("'" + path + "' is a directory, not a program");
    if (last && !dir && want_dir) return FailedPrecondition("'" + path + "' is not a directory");
    if (!allowed(st)) {
      return PermissionDenied(who + " cannot " + (dir ? "enter directory '" : "execute '") + part + "' (mode " +
                              Octal(st.st_mode) + ", owner uid " + std::to_string(st.st_uid) + ", group " +
                              std::to_string(st.st_gid) + ")");
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckExecutableBy(const std::string& path, uid_t uid, gid_t gid, const std::vector<gid_t>& groups) {
  return CheckPathBy(path, uid, gid, groups, /*want_dir=*/false);
}

Status CheckEnterableBy(const std::string& dir, uid_t uid, gid_t gid, const std::vector<gid_t>& groups) {
  return CheckPathBy(dir, uid, gid, groups, /*want_dir=*/true);
}

}  // namespace fastgpu::agent
