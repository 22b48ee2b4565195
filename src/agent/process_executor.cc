// The fork/exec executor.
//
// Process layout for one job:
//
//   fastgpu (multithreaded)
//     └─ supervisor (setsid: own session; survives the death of fastgpu)
//          └─ job process (own process group, pgid == pid), then its children
//
// The supervisor writes <job_dir>/pid ("<job pid> <job start ticks> <supervisor pid> <supervisor start
// ticks>") before it reports the job pid to the parent over a pipe, waits for the job, kills whatever
// is left in the job's process group, and writes <job_dir>/exit ("exit N" or "signal N", optionally
// followed by "reason ..."). Both files are written to a temporary name and renamed, so readers see
// either nothing or a complete record. After a restart of fastgpu, Adopt() reads them back.
//
// Fencing: with a lease file (LaunchSpec::lease_path), the supervisor wakes at least once a second while
// the job runs; once the deadline in the file has passed (the server has not answered the node for the
// whole lease: a network split, or an agent that died), it stops the job itself (SIGTERM, SIGKILL after
// the lease's grace) and adds "fenced <lease ms>" to the exit record, read back as a lost end. It works
// without the agent, which is the point: the server starts the retry elsewhere only after that time.
//
// The supervisor starts the job with vfork + execve (no copy of its page tables, and the child
// reports a failure through the memory it shares with the supervisor until it execs), so an exec
// failure (e.g. command not found) is known at once: it is written to the log as
// "fastgpu: cannot run 'x': <reason>" and recorded as exit 127, with the supervisor standing in for
// the job's pid.
//
// Identity: when fastgpu runs as root, the job process (never the supervisor, which must stay able to
// record the exit and clean up the process group) switches to the job's identity between vfork and
// exec: setgroups, setgid, setuid, then checks that setuid(0) fails. The identity is the project's own
// uid (gid the same, no supplementary groups, no passwd entry needed) or a named OS user configured
// for the project; both are never shared between projects, so one tenant's job cannot read another's
// /proc/<pid>/environ, signal its processes or enter its directories. The log file and /dev/null are
// opened before that, so the job needs no access to the agent's state dir. Its default working
// directory (in the job dir) is given to the job's user and entered before the switch; a directory
// named by the job spec is created (when missing) and entered by the job's user after it.
//
// Everything the supervisor needs (argv, envp, groups, paths, messages) is prepared before fork():
// the parent has other threads, so the supervisor makes only async-signal-safe calls, and the job
// process before exec only raw system calls.
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <poll.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "agent/executor.h"
#include "agent/log_times.h"
#include "sync/archive.h"
#include "agent/rank_launcher.h"

#include "common/file_util.h"

extern char** environ;  // NOLINT: POSIX

namespace fastgpu::agent {
namespace {

constexpr const char* kPidFile = "pid";
constexpr const char* kExitFile = "exit";
constexpr int kMaxErrno = 256;


// ---------------------------------------------------------------------------------------------
// Async-signal-safe helpers: only syscalls and plain memory operations.

size_t SafeLen(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

void SafeWrite(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

void SafeWriteStr(int fd, const char* s) { SafeWrite(fd, s, SafeLen(s)); }

// Appends the decimal form of `v` to buf at *pos (buf must have room for 21 more bytes).
void SafeAppendInt(char* buf, size_t* pos, int64_t v) {
  char tmp[24];
  size_t n = 0;
  bool neg = v < 0;
  uint64_t u = neg ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v);
  do {
    tmp[n++] = static_cast<char>('0' + (u % 10));
    u /= 10;
  } while (u != 0);
  if (neg) buf[(*pos)++] = '-';
  while (n > 0) buf[(*pos)++] = tmp[--n];
}

void SafeAppendStr(char* buf, size_t* pos, size_t cap, const char* s) {
  while (*s != '\0' && *pos + 1 < cap) buf[(*pos)++] = *s++;
}

// Reads the state letter (field 3) and starttime (field 22) of /proc/<pid>/stat. pid 0 = self.
bool SafeReadProcStat(int64_t pid, char* state, int64_t* start_ticks) {
  char path[64];
  size_t pos = 0;
  SafeAppendStr(path, &pos, sizeof(path), "/proc/");
  if (pid == 0) {
    SafeAppendStr(path, &pos, sizeof(path), "self");
  } else {
    SafeAppendInt(path, &pos, pid);
  }
  SafeAppendStr(path, &pos, sizeof(path), "/stat");
  path[pos] = '\0';
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  size_t len = 0;
  while (len < sizeof(buf) - 1) {
    ssize_t r = ::read(fd, buf + len, sizeof(buf) - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += static_cast<size_t>(r);
  }
  ::close(fd);
  buf[len] = '\0';
  // The command name (field 2) is in parentheses and may contain anything: find the last ')'.
  size_t close_paren = len;
  for (size_t i = 0; i < len; ++i) {
    if (buf[i] == ')') close_paren = i;
  }
  if (close_paren == len) return false;
  size_t i = close_paren + 1;
  int field = 2;
  char st = '?';
  int64_t ticks = -1;
  while (i < len && field < 22) {
    while (i < len && buf[i] == ' ') ++i;
    ++field;
    size_t start = i;
    while (i < len && buf[i] != ' ') ++i;
    if (field == 3 && i > start) st = buf[start];
    if (field == 22) {
      int64_t v = 0;
      for (size_t k = start; k < i; ++k) {
        if (buf[k] < '0' || buf[k] > '9') return false;
        v = v * 10 + (buf[k] - '0');
      }
      ticks = v;
    }
  }
  if (ticks < 0) return false;
  *state = st;
  *start_ticks = ticks;
  return true;
}

// Writes `data` to `tmp` and renames it over `final_path`. No fsync: the records only need to
// survive the death of processes, not of the machine (a reboot ends the jobs as well), and a sync
// would put milliseconds on the start path.
bool SafeWriteFileAtomic(const char* tmp, const char* final_path, const char* data, size_t n) {
  int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  SafeWrite(fd, data, n);
  ::close(fd);
  return ::rename(tmp, final_path) == 0;
}

// Reads the lease file ("<deadline ns> <grace ms> <lease ms>"). False when it is missing or unreadable
// (nothing is fenced then).
bool SafeReadLease(const char* path, int64_t* deadline_ns, int64_t* grace_ms, int64_t* lease_ms) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[96];
  ssize_t len;
  do {
    len = ::read(fd, buf, sizeof(buf) - 1);
  } while (len < 0 && errno == EINTR);
  ::close(fd);
  if (len <= 0) return false;
  int64_t v[3] = {0, 0, 0};
  int field = 0;
  bool digits = false;
  for (ssize_t i = 0; i < len && field < 3; ++i) {
    char c = buf[i];
    if (c >= '0' && c <= '9') {
      if (v[field] > (INT64_MAX - 9) / 10) return false;
      v[field] = v[field] * 10 + (c - '0');
      digits = true;
    } else if (c == ' ' || c == '\n') {
      if (!digits) return false;
      ++field;
      digits = false;
    } else {
      return false;
    }
  }
  if (field < 2 || (field == 2 && !digits)) return false;
  *deadline_ns = v[0];
  *grace_ms = v[1];
  *lease_ms = v[2];
  return true;
}

int64_t SafeMonotonicNanos() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t SafeRealtimeMillis() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

int64_t SafeFileSize(int fd) {
  struct stat st {};
  return ::fstat(fd, &st) == 0 ? static_cast<int64_t>(st.st_size) : -1;
}

void SafePutLe(int64_t v, char* out) {
  auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((u >> (8 * i)) & 0xff);
}

// The time index of the job's log (agent/log_times.h), kept by the supervisor: when the log (its fd 1) has grown,
// one record {covered size, new size, unix ms} is appended for what is new.
struct SafeLogTimes {
  int fd = -1;              // the index (O_APPEND); -1: none kept
  int64_t seen = 0;         // the log's size covered so far
  int64_t last_ms = 0;      // time of the last record (times never go back, also across attempts)
  int64_t last_record_ns = 0;  // monotonic time of this supervisor's last record
};

void SafeLogTimesInit(SafeLogTimes* t, int times_fd) {
  t->fd = times_fd;
  if (times_fd < 0) return;
  t->seen = std::max<int64_t>(0, SafeFileSize(1));
  int64_t size = SafeFileSize(times_fd);
  if (size < 0) {
    t->fd = -1;
    return;
  }
  if (size % kLogTimeRecordBytes != 0) {
    // A record cut short (a full disk): drop it, or every later record would be read shifted.
    size -= size % kLogTimeRecordBytes;
    if (::ftruncate(times_fd, size) != 0) t->fd = -1;  // cannot repair it: keep no times rather than wrong ones
  }
  if (size >= kLogTimeRecordBytes) {
    char rec[kLogTimeRecordBytes];
    if (::pread(times_fd, rec, sizeof(rec), size - kLogTimeRecordBytes) == kLogTimeRecordBytes) {
      uint64_t u = 0;
      for (int i = 7; i >= 0; --i) u = (u << 8) | static_cast<unsigned char>(rec[16 + i]);
      t->last_ms = static_cast<int64_t>(u);
    }
  }
}

// Records what the log gained since the last record, at the current time. True when it recorded something.
bool SafeLogTimesObserve(SafeLogTimes* t) {
  if (t->fd < 0) return false;
  const int64_t size = SafeFileSize(1);
  if (size < t->seen) t->seen = size;  // truncated by someone: go on from there
  if (size <= t->seen) return false;
  const int64_t now = std::max(SafeRealtimeMillis(), t->last_ms);
  char rec[kLogTimeRecordBytes];
  SafePutLe(t->seen, rec);
  SafePutLe(size, rec + 8);
  SafePutLe(now, rec + 16);
  SafeWrite(t->fd, rec, sizeof(rec));
  t->seen = size;
  t->last_ms = now;
  t->last_record_ns = SafeMonotonicNanos();
  return true;
}

// Reads whatever is queued on the (non-blocking) inotify descriptor `fd`.
void SafeDrain(int fd) {
  char events[4096];
  while (::read(fd, events, sizeof(events)) > 0) {
  }
}

// Waits (in the supervisor) until `job` has ended, without reaping it. With a lease file, checks it about
// once a second and fences the job once the lease has run out: SIGTERM to its process group, SIGKILL after
// the grace. With a time index (times), records the log's growth as it happens: woken by inotify when the log
// changes (`notify`: an inotify instance with a one-shot watch of `log_path`, set up before the job started, closed
// here; at most one record per kLogTimeSpacingMs), or every 250 ms where inotify is unavailable (notify -1).
// Returns the lease (ms) that ran out when the job was fenced, else -1.

int64_t SafeWaitJob(pid_t job, const char* lease_path, int notify, const char* log_path, SafeLogTimes* times) {
  siginfo_t info{};
  const bool leased = lease_path[0] != '\0';
  if (!leased && times->fd < 0) {
    while (::waitid(P_PID, static_cast<id_t>(job), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
    }
    return -1;
  }
  int pidfd = -1;
#ifdef SYS_pidfd_open
  pidfd = static_cast<int>(::syscall(SYS_pidfd_open, job, 0U));
#endif
  SafeLogTimesObserve(times);  // what was written before the first wake
  constexpr int64_t kSpacingNs = kLogTimeSpacingMs * 1'000'000;
  // The watch is one-shot: the first write after a quiet spell wakes the supervisor, which records it at once; while
  // output keeps coming the log is checked every kLogTimeSpacingMs without a watch (so writes cost the job nothing
  // more), and the watch is set again once a check finds nothing new.
  bool armed = notify >= 0;
  int64_t fenced_lease = -1;
  int64_t kill_at = 0;
  bool killed = false;
  while (true) {
    info.si_pid = 0;
    int w = ::waitid(P_PID, static_cast<id_t>(job), &info, WEXITED | WNOWAIT | WNOHANG);
    if (w == 0 && info.si_pid == job) break;
    if (w != 0 && errno != EINTR) break;  // ECHILD: nothing to wait for
    const int64_t now = SafeMonotonicNanos();
    if (leased && fenced_lease < 0) {
      int64_t deadline = 0, grace = 0, lease = 0;
      if (SafeReadLease(lease_path, &deadline, &grace, &lease) && lease > 0 && now >= deadline) {
        fenced_lease = lease;
        kill_at = now + grace * 1'000'000;
        ::kill(-job, SIGTERM);
      }
    } else if (leased && !killed && now >= kill_at) {
      killed = true;
      ::kill(-job, SIGKILL);
    }
    // Woken by the job's end (pidfd), the log's first growth (inotify), else after at most a second (lease), the
    // spacing (output coming), 250 ms (times without inotify) or not at all.
    int64_t wait_ms = leased ? 1000 : -1;
    auto at_most = [&wait_ms](int64_t ms) { wait_ms = wait_ms < 0 ? ms : std::min(wait_ms, ms); };
    if (times->fd >= 0) {
      if (notify < 0) {
        SafeLogTimesObserve(times);
        at_most(250);
      } else if (!armed) {
        const int64_t left_ns = times->last_record_ns + kSpacingNs - now;
        if (left_ns > 0) {
          at_most(left_ns / 1'000'000 + 1);
        } else if (SafeLogTimesObserve(times)) {
          at_most(kLogTimeSpacingMs);  // still coming
        } else {
          // Quiet: watch for the next write (and record what came between the check and the watch).
          SafeDrain(notify);
          armed = ::inotify_add_watch(notify, log_path, IN_MODIFY | IN_ONESHOT) >= 0;
          if (!armed) {
            ::close(notify);
            notify = -1;
            at_most(250);
          }
          SafeLogTimesObserve(times);
        }
      }
    }
    if (fenced_lease >= 0 && !killed) at_most(std::max<int64_t>(1, (kill_at - now) / 1'000'000 + 1));
    struct pollfd pfd[2] {};
    nfds_t n = 0;
    if (pidfd >= 0) pfd[n++] = {pidfd, POLLIN, 0};
    const bool watch_log = notify >= 0 && armed;
    if (watch_log) pfd[n++] = {notify, POLLIN, 0};
    // Without a pidfd the job's end is only seen by polling.
    if (pidfd < 0) at_most(leased ? 1000 : 100);
    if (n > 0) {
      ::poll(pfd, n, static_cast<int>(wait_ms));
    } else {
      struct timespec ts {static_cast<time_t>(wait_ms / 1000), static_cast<long>((wait_ms % 1000) * 1'000'000)};
      ::nanosleep(&ts, nullptr);
    }
    if (watch_log && (pfd[n - 1].revents & POLLIN) != 0) {
      SafeDrain(notify);
      armed = false;  // the one-shot watch is gone
      if (SafeMonotonicNanos() - times->last_record_ns >= kSpacingNs) SafeLogTimesObserve(times);
    }
  }
  if (pidfd >= 0) ::close(pidfd);
  if (notify >= 0) ::close(notify);
  return fenced_lease;
}

void SafeCloseFrom(int first_fd, int fallback_max_fd) {
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, static_cast<unsigned>(first_fd), ~0U, 0U) == 0) return;
#endif
  for (int fd = first_fd; fd < fallback_max_fd; ++fd) ::close(fd);
}

// ---------------------------------------------------------------------------------------------
// Everything the supervisor and the job process need, prepared before fork().

struct Prepared {
  // Owned storage.
  std::vector<std::string> argv_store;
  std::vector<std::string> env_store;
  // Where argv[0] may be: itself when it has a '/', else each directory of the job's PATH joined with it, tried
  // in order by the job process as the job's user (as execvp does), so that the lookup sees what that user may
  // see and run.
  std::vector<std::string> exec_candidates;
  std::string workdir;
  std::string pid_tmp, pid_path, exit_tmp, exit_path;
  std::string claim_path;  // kClaimFile: the supervisor creates it (exclusively) before it forks the job
  std::string lease_path;  // LaunchSpec::lease_path (empty: never fenced)
  std::string reason_exec_prefix;      // "cannot run 'x': "
  std::string reason_chdir_prefix;     // "cannot enter working directory 'w': "
  std::string reason_mkdir_prefix;     // "cannot create working directory 'w': "
  std::string reason_identity_prefix;  // "cannot switch to OS user 'u' (uid N): "
  std::string reason_regain_root;      // complete reason: root could be regained after the switch
  // Complete reason when the job's user finds the command nowhere but the agent's user does (empty: none seen).
  std::string reason_exec_hidden;
  // Identity of the job process (set_identity only when fastgpu runs as root).
  bool set_identity = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  bool set_umask = false;
  mode_t umask = 077;
  // Enter the working directory before giving up root: the default one lives in the agent's state
  // dir, which the job's user may not be able to traverse. Other (user-chosen) directories are
  // entered with the job's own permissions.
  bool chdir_as_root = false;
  std::vector<std::string> mkdir_paths;  // created (0700) by the job's process before it enters workdir
  // Views handed to execve.
  std::vector<char*> argv;
  // /bin/sh fallback for scripts without a #! line; [1] is set to the candidate being run (in the job process,
  // which runs on the supervisor's memory until it execs).
  mutable std::vector<char*> sh_argv;
  std::vector<char*> envp;
  int log_fd = -1;
  int null_fd = -1;
  int max_fd = 1024;
  // The log's time index (agent/log_times.h; -1: none kept) and the log's path (watched with inotify).
  int times_fd = -1;
  std::string log_path;
  // A container job (LaunchSpec::image): the job's process is podman; env_fd (a sealed memory file holding the
  // container's environment) becomes its fd 4 (--env-file /dev/fd/4); cleanup_argv (`podman rm -f`) runs when podman
  // itself was killed or the job was fenced, so that no container outlives its supervisor's record.
  int env_fd = -1;
  std::vector<std::string> cleanup_store;
  std::vector<char*> cleanup_argv;
};

// What the supervisor sends the parent once the job process exists.
struct LaunchRecord {
  int64_t pid = 0;
  int64_t start_ticks = 0;
  int64_t supervisor_start_ticks = 0;
  int32_t error = 0;  // errno of a failure before the job could be started
  int32_t reserved = 0;
};

// Where the job process failed before exec; written by it into memory shared with the supervisor.
// kStageExecHidden: the command was not found for the job's user, but the agent's user sees it (reason_exec_hidden).
enum Stage : int {
  kStageNone = 0, kStageMkdir, kStageChdir, kStageIdentity, kStageRegainRoot, kStageExec, kStageExecHidden
};
struct ChildFailure {
  volatile int stage = kStageNone;
  volatile int err = 0;
};

[[noreturn]] void ChildFail(ChildFailure* fail, int stage, int err) {
  fail->err = err;
  fail->stage = stage;
  ::_exit(127);
}

// The job process between vfork() and execve(). It runs on the supervisor's memory, so it makes raw
// system calls only (no libc state: the set*id wrappers would coordinate threads) and never returns.
[[noreturn]] __attribute__((noinline)) void ExecJob(const Prepared& p, ChildFailure* fail) {
  ::setpgid(0, 0);
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = SIG_DFL;  // the supervisor ignores these two; everything else is already default
  ::sigaction(SIGPIPE, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  if (p.chdir_as_root && ::chdir(p.workdir.c_str()) != 0) ChildFail(fail, kStageChdir, errno);
  if (p.set_identity) {
    // Groups and gid first: changing them needs the privileges that setuid gives up.
    if (::syscall(SYS_setgroups, static_cast<long>(p.groups.size()), p.groups.data()) != 0 ||
        ::syscall(SYS_setresgid, static_cast<long>(p.gid), static_cast<long>(p.gid), static_cast<long>(p.gid)) != 0 ||
        ::syscall(SYS_setresuid, static_cast<long>(p.uid), static_cast<long>(p.uid), static_cast<long>(p.uid)) != 0) {
      ChildFail(fail, kStageIdentity, errno);
    }
    if (p.uid != 0 && ::syscall(SYS_setuid, 0L) == 0) ChildFail(fail, kStageRegainRoot, 0);
  }
  if (p.set_umask) ::umask(p.umask);
  for (const std::string& dir : p.mkdir_paths) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) ChildFail(fail, kStageMkdir, errno);
  }
  if (!p.chdir_as_root && ::chdir(p.workdir.c_str()) != 0) ChildFail(fail, kStageChdir, errno);
  // The PATH search, as the job's user: a candidate that is missing, or in a directory or file this user may not
  // use, is skipped; "Permission denied" is the answer only when no candidate runs and one that this user can see
  // is not executable for it.
  int err = ENOENT;
  bool denied = false;
  for (const std::string& candidate : p.exec_candidates) {
    ::execve(candidate.c_str(), p.argv.data(), p.envp.data());
    if (errno == ENOEXEC) {
      p.sh_argv[1] = const_cast<char*>(candidate.c_str());
      ::execve("/bin/sh", p.sh_argv.data(), p.envp.data());
    }
    if (errno == EACCES) {
      // The file itself refused (it is there for this user, but not executable), or a directory on the way that
      // this user may not search: then, for this user, the command is not there.
      if (::access(candidate.c_str(), F_OK) == 0) denied = true;
    } else if (errno != ENOENT && errno != ENOTDIR && errno != ELOOP && errno != ENAMETOOLONG) {
      err = errno;
      break;
    }
  }
  if (err == ENOENT && denied) err = EACCES;
  if (err == ENOENT && !p.reason_exec_hidden.empty()) ChildFail(fail, kStageExecHidden, 0);
  ChildFail(fail, kStageExec, err);
}

// Starts the job process. Kept apart from the supervisor's other locals because of vfork.
__attribute__((noinline)) pid_t SpawnJob(const Prepared& p, ChildFailure* fail) {
  pid_t pid = ::vfork();
  if (pid == 0) ExecJob(p, fail);
  return pid;
}

// Runs in the supervisor (child of fastgpu). Never returns.
[[noreturn]] void RunSupervisor(const Prepared& p, const char* const* errors, int report_fd) {
  ::setsid();
  // First, arrange fds: 0 /dev/null, 1+2 the log, 3 the report pipe (close-on-exec); close everything
  // else (the parent's sockets, databases and its home lock must not be held open by a long-lived
  // process or the job; the sooner they are closed, the sooner a restarted fastgpu can take them).
  int null_fd = ::fcntl(p.null_fd, F_DUPFD, 10);
  int log_fd = ::fcntl(p.log_fd, F_DUPFD, 10);
  int rep_fd = ::fcntl(report_fd, F_DUPFD, 10);
  int env_fd = p.env_fd >= 0 ? ::fcntl(p.env_fd, F_DUPFD, 10) : -1;
  int times_fd = p.times_fd >= 0 ? ::fcntl(p.times_fd, F_DUPFD, 10) : -1;
  ::dup2(null_fd, 0);
  ::dup2(log_fd, 1);
  ::dup2(log_fd, 2);
  ::dup2(rep_fd, 3);
  ::fcntl(3, F_SETFD, FD_CLOEXEC);
  if (env_fd >= 0) ::dup2(env_fd, 4);  // inherited by podman (not close-on-exec after dup2)
  // The time index stays the supervisor's (close-on-exec: never the job's).
  int keep_from = env_fd >= 0 ? 5 : 4;
  if (times_fd >= 0) {
    ::dup2(times_fd, keep_from);
    ::fcntl(keep_from, F_SETFD, FD_CLOEXEC);
    times_fd = keep_from++;
  }
  SafeCloseFrom(keep_from, p.max_fd);
  SafeLogTimes times;
  SafeLogTimesInit(&times, times_fd);

  {
    // Default dispositions: fastgpu's handlers mean nothing here, and the job must not inherit
    // ignored signals. SIGPIPE and SIGHUP stay ignored: the parent may be gone when we write to the
    // pipe, and the session may lose its terminal.
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &sa, nullptr);  // EINVAL for reserved ones
    }
    sa.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &sa, nullptr);
    ::sigaction(SIGHUP, &sa, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
  }
  // Claim the launch before anything runs. After a restart, an agent that found this attempt's
  // `started` record but no process record claims it first when it decides the attempt never started
  // (then the server starts it again): whoever creates the file decides, so the job never runs twice.
  if (int claim = ::open(p.claim_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); claim >= 0) {
    ::close(claim);
  } else {
    ::_exit(0);
  }

  // Watched before the job starts, so that none of its output goes unseen.
  int notify = -1;
  if (times.fd >= 0) {
    notify = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (notify >= 0 && ::inotify_add_watch(notify, p.log_path.c_str(), IN_MODIFY | IN_ONESHOT) < 0) {
      ::close(notify);
      notify = -1;
    }
  }

  ChildFailure fail;
  pid_t job = SpawnJob(p, &fail);
  int stage = kStageNone;
  int err = 0;
  if (job < 0) {
    stage = kStageExec;
    err = errno;
  } else if (fail.stage != kStageNone) {
    stage = fail.stage;
    err = fail.err;
    int ignored = 0;
    while (::waitpid(job, &ignored, 0) < 0 && errno == EINTR) {
    }
  }
  const char* reason_prefix = p.reason_exec_prefix.c_str();
  if (stage == kStageMkdir) reason_prefix = p.reason_mkdir_prefix.c_str();
  if (stage == kStageChdir) reason_prefix = p.reason_chdir_prefix.c_str();
  if (stage == kStageIdentity) reason_prefix = p.reason_identity_prefix.c_str();
  if (stage == kStageRegainRoot) reason_prefix = p.reason_regain_root.c_str();
  if (stage == kStageExecHidden) reason_prefix = p.reason_exec_hidden.c_str();
  const char* err_text = err == 0 ? "" : errors[err > 0 && err < kMaxErrno ? err : 0];
  if (stage != kStageNone) {
    // Nothing runs: the supervisor stands in as the job's process so that the launch is recorded
    // like any other, with exit 127 and the reason.
    SafeWriteStr(2, "fastgpu: ");
    SafeWriteStr(2, reason_prefix);
    SafeWriteStr(2, err_text);
    SafeWriteStr(2, "\n");
    SafeLogTimesObserve(&times);
    job = ::getpid();
  }
  ::chdir("/");
  char state = '?';
  int64_t ticks = 0;
  SafeReadProcStat(job, &state, &ticks);
  int64_t self_ticks = 0;
  SafeReadProcStat(0, &state, &self_ticks);

  // Record the pid for later restarts, then tell the parent (which waits for it).
  LaunchRecord rec;
  rec.pid = job;
  rec.start_ticks = ticks;
  rec.supervisor_start_ticks = self_ticks;
  char buf[256];
  size_t pos = 0;
  SafeAppendInt(buf, &pos, job);
  buf[pos++] = ' ';
  SafeAppendInt(buf, &pos, ticks);
  buf[pos++] = ' ';
  SafeAppendInt(buf, &pos, ::getpid());
  buf[pos++] = ' ';
  SafeAppendInt(buf, &pos, self_ticks);
  buf[pos++] = '\n';
  SafeWriteFileAtomic(p.pid_tmp.c_str(), p.pid_path.c_str(), buf, pos);
  SafeWrite(3, reinterpret_cast<const char*>(&rec), sizeof(rec));
  ::close(3);

  int status = 0;
  int64_t fenced_lease = -1;
  if (stage == kStageNone) {
    // Wait for the job without reaping it (its pid keeps the process group id reserved), clean up
    // what is left of its process group, then reap it.
    fenced_lease = SafeWaitJob(job, p.lease_path.c_str(), notify, p.log_path.c_str(), &times);
    notify = -1;  // closed there
    ::kill(-job, SIGKILL);
    while (::waitpid(job, &status, 0) < 0 && errno == EINTR) {
    }
    if (!p.cleanup_argv.empty() && (WIFSIGNALED(status) || fenced_lease >= 0)) {
      // podman was killed (a stop's SIGKILL, a fence): the container may still run under conmon. Remove it by name,
      // killing what runs in it, before the end is recorded. podman that exited on its own waited for the container.
      ::close(4);
      pid_t rm = ::vfork();
      if (rm == 0) {
        ::execve(p.cleanup_argv[0], p.cleanup_argv.data(), p.envp.data());
        ::_exit(127);
      }
      int ignored = 0;
      while (rm > 0 && ::waitpid(rm, &ignored, 0) < 0 && errno == EINTR) {
      }
    }
  }
  // Whatever the job wrote last is recorded before its end is (so `job logs --timestamps` is complete once it ended).
  SafeLogTimesObserve(&times);
  if (notify >= 0) ::close(notify);

  char out[1024];
  size_t n = 0;
  if (stage != kStageNone) {
    SafeAppendStr(out, &n, sizeof(out), "exit 127\nreason ");
    SafeAppendStr(out, &n, sizeof(out) - 2, reason_prefix);
    SafeAppendStr(out, &n, sizeof(out) - 2, err_text);
  } else if (WIFSIGNALED(status)) {
    SafeAppendStr(out, &n, sizeof(out), "signal ");
    SafeAppendInt(out, &n, WTERMSIG(status));
  } else {
    SafeAppendStr(out, &n, sizeof(out), "exit ");
    SafeAppendInt(out, &n, WIFEXITED(status) ? WEXITSTATUS(status) : 127);
  }
  if (fenced_lease >= 0) {
    // Recorded as lost: the server gave up on (or is about to give up on) this attempt.
    SafeAppendStr(out, &n, sizeof(out) - 2, "\nfenced ");
    SafeAppendInt(out, &n, fenced_lease);
  }
  out[n++] = '\n';
  SafeWriteFileAtomic(p.exit_tmp.c_str(), p.exit_path.c_str(), out, n);
  ::_exit(0);
}

// ---------------------------------------------------------------------------------------------
// Ordinary helpers (parent side).

std::string ErrnoText(int e) { return std::strerror(e); }

// An owned file descriptor (closed when the last holder lets go: the waiter may hold it while Poll
// forgets the job).
class OwnedFd {
 public:
  explicit OwnedFd(int fd) : fd_(fd) {}
  ~OwnedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// A pidfd for `pid` (readable once the process has ended), or null where the kernel has none.
std::shared_ptr<OwnedFd> OpenPidFd(int64_t pid) {
#ifdef SYS_pidfd_open
  long fd = ::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0U);
  if (fd >= 0) {
    ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
    return std::make_shared<OwnedFd>(static_cast<int>(fd));
  }
#else
  (void)pid;
#endif
  return nullptr;
}

// Without an event for a job (no pidfd, or its supervisor gone while the job runs), it is polled this often.
constexpr int64_t kPollWithoutEventMs = 20;

std::string Absolute(const std::string& p) {
  std::error_code ec;
  auto abs = std::filesystem::absolute(p, ec);
  return ec ? p : abs.lexically_normal().string();
}

// True when `pid` is a live (non-zombie) process that started at `start_ticks`.
bool ProcessMatches(int64_t pid, int64_t start_ticks) {
  if (pid <= 0) return false;
  char state = '?';
  int64_t ticks = 0;
  if (!SafeReadProcStat(pid, &state, &ticks)) return false;
  if (state == 'Z' || state == 'X') return false;
  return ticks == start_ticks;
}

// True when the process exists at all with these start ticks (a zombie counts: its pid and
// process group id are still reserved).
bool ProcessExists(int64_t pid, int64_t start_ticks) {
  if (pid <= 0) return false;
  char state = '?';
  int64_t ticks = 0;
  return SafeReadProcStat(pid, &state, &ticks) && ticks == start_ticks;
}

struct PidRecord {
  int64_t pid = 0, ticks = 0, sup_pid = 0, sup_ticks = 0;
};

std::optional<PidRecord> ParsePidFile(const std::string& text) {
  PidRecord r;
  long long a = 0, b = 0, c = 0, d = 0;
  if (std::sscanf(text.c_str(), "%lld %lld %lld %lld", &a, &b, &c, &d) != 4) return std::nullopt;
  r.pid = a;
  r.ticks = b;
  r.sup_pid = c;
  r.sup_ticks = d;
  if (r.pid <= 0 || r.sup_pid <= 0) return std::nullopt;
  return r;
}

// Parses an exit file. nullopt when absent or unreadable.
std::optional<ExitStatus> ReadExitFile(const std::string& job_id, const std::string& job_dir) {
  const std::string path = job_dir + "/" + kExitFile;
  auto text = ReadFileToString(path);
  if (!text) return std::nullopt;
  ExitStatus st;
  st.job_id = job_id;
  // The supervisor writes the file when the job ends: its modification time is the end of the run.
  struct stat sb {};
  if (::stat(path.c_str(), &sb) == 0)
    st.finished_at_ms = static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000 + sb.st_mtim.tv_nsec / 1'000'000;
  size_t pos = 0;
  bool any = false;
  int64_t fenced_ms = -1;
  while (pos < text->size()) {
    size_t eol = text->find('\n', pos);
    if (eol == std::string::npos) eol = text->size();
    std::string line = text->substr(pos, eol - pos);
    pos = eol + 1;
    if (line.rfind("exit ", 0) == 0) {
      st.exit_code = std::atoi(line.c_str() + 5);
      any = true;
    } else if (line.rfind("signal ", 0) == 0) {
      st.signal = std::atoi(line.c_str() + 7);
      any = true;
    } else if (line.rfind("reason ", 0) == 0) {
      st.reason = line.substr(7);
    } else if (line.rfind("fenced ", 0) == 0) {
      fenced_ms = std::atoll(line.c_str() + 7);
    }
  }
  if (any && fenced_ms >= 0) {
    // Stopped by the node itself: the server had not answered for the whole lease, so it has given this
    // attempt up (or will): the end is a loss, not the job's own failure.
    st.lost = true;
    st.reason = "fenced: stopped by its node after " + std::to_string(fenced_ms / 1000) +
                " s without contact with the server";
  }
  if (!any) {
    st.lost = true;
    st.reason = "exit record in " + job_dir + " is unreadable";
  }
  return st;
}

// Which of the agent's environment variables a job inherits. Never FASTGPU_* (the master key and tokens
// may be there). A job running as another OS user gets only an allow-list (locale, PATH, time zone,
// terminal, proxies, CUDA/NVIDIA/NCCL settings and the library path), so nothing else of the agent's
// environment crosses the privilege boundary.
bool InheritedVariable(const std::string& name, bool other_user) {
  if (name.rfind("FASTGPU_", 0) == 0) return false;
  if (!other_user) return true;
  static constexpr const char* kExact[] = {"PATH", "LANG", "LANGUAGE", "TZ", "TERM", "LD_LIBRARY_PATH",
                                           "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
                                           "HTTPS_PROXY", "NO_PROXY"};
  for (const char* e : kExact)
    if (name == e) return true;
  for (const char* prefix : {"LC_", "CUDA_", "NVIDIA_", "NCCL_"})
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

// The OS identity a job runs as (when fastgpu runs as root).
struct Identity {
  std::string name;           // for messages and USER/LOGNAME
  std::string home;           // empty: the job's working directory
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, as initgroups() would set them
  bool project_uid = false;   // the project's own uid (not a named user)
};

constexpr int64_t kMaxUid = 4'294'967'294;  // (uid_t)-1 means "no change" to setuid


Result<Identity> LookUpUser(const std::string& user, const std::string& node) {
  const std::string where = node.empty() ? "this node" : "node " + node;
  long hint = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  int rc = 0;
  while ((rc = ::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found)) == ERANGE && buf.size() < (1u << 24)) {
    buf.resize(buf.size() * 2);
  }
  if (rc != 0) return Internal("cannot look up OS user '" + user + "' on " + where + ": " + ErrnoText(rc));
  if (found == nullptr) {
    return FailedPrecondition("OS user '" + user + "' does not exist on " + where +
                              " (create it, or set the project's run_as_user to an existing user)");
  }
  Identity id;
  id.name = pw.pw_name;
  id.home = pw.pw_dir != nullptr ? pw.pw_dir : "/";
  id.uid = pw.pw_uid;
  id.gid = pw.pw_gid;
  int n = 32;
  while (true) {
    id.groups.resize(static_cast<size_t>(n));
    int want = n;
    if (::getgrouplist(id.name.c_str(), id.gid, id.groups.data(), &want) >= 0) {
      id.groups.resize(static_cast<size_t>(want));
      break;
    }
    if (want <= n || want > 65536) return Internal("cannot list the groups of OS user '" + user + "' on " + where);
    n = want;
  }
  return id;
}

// Who a job runs as when fastgpu runs as root: the named user when the project has one, else the
// project's own uid; never a default shared by several projects.
Result<Identity> JobIdentity(const LaunchSpec& spec) {
  if (!spec.run_as_user.empty()) {
    ASSIGN_OR_RETURN(Identity id, LookUpUser(spec.run_as_user, spec.node));
    if (id.uid == 0 && !spec.allow_root) {
      return PermissionDenied("refusing to run as root: project '" + spec.project +
                              "' does not allow root (set run_as_user to an unprivileged OS user, or allow root "
                              "for the project)");
    }
    return id;
  }
  if (spec.run_as_uid <= 0 || spec.run_as_uid > kMaxUid) {
    return FailedPrecondition(
        "refusing to run job " + spec.job_id + " of project '" + spec.project +
        "': the server sent no Unix uid for the project (run_as_uid " + std::to_string(spec.run_as_uid) +
        ") and no run_as_user, and jobs never run as a user shared with other projects (upgrade the server, or "
        "set the project's run_as_user)");
  }
  Identity id;
  id.uid = static_cast<uid_t>(spec.run_as_uid);
  id.gid = static_cast<gid_t>(spec.run_as_uid);
  id.name = "fastgpu-" + (spec.project.empty() ? std::to_string(spec.run_as_uid) : spec.project);
  id.project_uid = true;
  return id;
}

// True when `path` lies strictly inside `dir` (both absolute and normalised).
bool IsInside(const std::string& path, const std::string& dir) {
  return path.size() > dir.size() + 1 && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/';
}

// Hands a directory (the default working directory, the checkpoint directory) to the job's user, 0700, through an
// fd: never via a symlink. Without an identity (the job runs as the agent's user) only the mode is set.
Status GiveDir(const std::string& dir, const std::optional<Identity>& id) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  bool ok = fd >= 0 && (!id || ::fchown(fd, id->uid, id->gid) == 0) && ::fchmod(fd, 0700) == 0;
  int e = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) {
    return Internal("cannot give directory '" + dir + "' to " +
                    (id ? "OS user '" + id->name + "' (uid " + std::to_string(id->uid) + ")" : std::string("the job")) +
                    ": " + ErrnoText(e));
  }
  return Status::Ok();
}

// The job dir stays ours (it holds the supervisor's records) but only the job's group may pass through
// it (0710): another job's uid can neither list nor enter it. Through an fd: never via a symlink.
Status CloseJobDir(const std::string& dir, const Identity& id) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  bool ok = fd >= 0 && ::fchown(fd, ::geteuid(), id.gid) == 0 && ::fchmod(fd, 0710) == 0;
  int e = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) return Internal("cannot set the owner and mode of job directory '" + dir + "': " + ErrnoText(e));
  return Status::Ok();
}

// Runs `argv` (argv[0] a path) with `envp`, stdin and stdout on /dev/null, and returns its exit code with what it
// wrote to stderr (the first 4 KiB). For short podman queries made by Launch (the caller has other threads: spawn,
// never fork).
Result<std::pair<int, std::string>> RunQuiet(const std::vector<std::string>& argv, char* const* envp) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int err_pipe[2];
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return Unavailable("cannot create a pipe: " + ErrnoText(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp);
  posix_spawn_file_actions_destroy(&fa);
  ::close(err_pipe[1]);
  if (rc != 0) {
    ::close(err_pipe[0]);
    return Unavailable("cannot run " + argv[0] + ": " + ErrnoText(rc));
  }
  std::string err;
  char buf[1024];
  while (true) {
    ssize_t r = ::read(err_pipe[0], buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    if (err.size() < 4096) err.append(buf, static_cast<size_t>(r));
  }
  ::close(err_pipe[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  return std::make_pair(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0), err);
}

// The job dir's record of a container job's name (read back by Adopt, for the cleanup of a lost job).
constexpr const char* kContainerFile = "container";

class ProcessExecutor final : public Executor {
 public:
  explicit ProcessExecutor(const Clock& clock) : clock_(clock) {
    errors_store_.reserve(kMaxErrno);
    for (int e = 0; e < kMaxErrno; ++e) {
      char buf[256];
      const char* s = ::strerror_r(e, buf, sizeof(buf));  // GNU variant
      errors_store_.emplace_back(e == 0 ? "unknown error" : s);
    }
    for (const auto& s : errors_store_) errors_.push_back(s.c_str());
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
      max_fd_ = static_cast<int>(std::min<rlim_t>(rl.rlim_cur, 1 << 20));
    }
    wake_ = std::make_shared<OwnedFd>(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  }

  ~ProcessExecutor() override {
    // Jobs keep running (they are re-adopted after a restart); only reap what has already ended.
    std::lock_guard lock(mu_);
    for (const auto& [id, t] : jobs_) {
      if (!t.adopted && !t.supervisor_reaped) {
        int st = 0;
        ::waitpid(static_cast<pid_t>(t.ref.supervisor_pid), &st, WNOHANG);
      }
    }
  }

  Result<ProcessRef> Launch(const LaunchSpec& spec) override {
    if (spec.job_id.empty()) return InvalidArgument("launch: job id is empty");
    if (spec.argv.empty() || spec.argv[0].empty()) {
      return InvalidArgument("job " + spec.job_id + " has no command to run");
    }
    if (spec.job_dir.empty() || spec.log_path.empty()) {
      return InvalidArgument("launch of job " + spec.job_id + ": job_dir and log_path are required");
    }
    {
      std::lock_guard lock(mu_);
      if (jobs_.count(spec.job_id) != 0) {
        return AlreadyExists("job " + spec.job_id + " is already running on this node");
      }
    }
    const std::string job_dir = Absolute(spec.job_dir);
    const std::string log_path = Absolute(spec.log_path);
    RETURN_IF_ERROR(MakeDirs(job_dir, 0700));
    RETURN_IF_ERROR(MakeDirs(std::filesystem::path(log_path).parent_path().string(), 0700));

    // Who the job runs as. Only root can choose; otherwise it is us.
    std::optional<Identity> ident;
    if (::geteuid() == 0) {
      Result<Identity> who = JobIdentity(spec);
      if (!who.ok()) return FailInLog(log_path, who.status());
      ident = std::move(*who);
    } else if (!spec.run_as_user.empty()) {
      std::lock_guard lock(mu_);
      if (!noted_not_root_) {
        noted_not_root_ = true;
        std::fprintf(stderr,
                     "fastgpu agent: not running as root, so jobs run as this agent's user (uid %u) and "
                     "run_as_user (e.g. '%s' for job %s) is ignored\n",
                     static_cast<unsigned>(::geteuid()), spec.run_as_user.c_str(), spec.job_id.c_str());
      }
    }
    const bool other_user = ident && ident->uid != ::geteuid();

    Prepared p;
    p.max_fd = max_fd_;
    p.workdir = Absolute(spec.workdir.empty() ? job_dir + "/work" : spec.workdir);
    // The job's user may need to pass through its job dir to reach its working directory; the
    // records in it stay private (0600 files, no listing), and no other uid may enter it.
    if (other_user) {
      RETURN_IF_ERROR(CloseJobDir(job_dir, *ident));
    } else if (::chmod(job_dir.c_str(), 0700) != 0) {
      return Internal("cannot set the mode of '" + job_dir + "': " + ErrnoText(errno));
    }
    const bool container = !spec.image.empty();
    const std::string where = spec.node.empty() ? "this node" : "node " + spec.node;
    if (container && !IsInside(p.workdir, job_dir)) {
      // Mounted into the container as it is: it must exist, and the job's user must be able to enter it.
      struct stat sb {};
      if (::stat(p.workdir.c_str(), &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        return FailInLog(log_path, FailedPrecondition("working directory '" + p.workdir + "' does not exist on " +
                                                      where + ": a container job mounts it, so create it first "
                                                      "(or leave the workdir out)"));
      }
      if (other_user) {
        Status can = CheckEnterableBy(p.workdir, ident->uid, ident->gid, ident->groups);
        if (can.code() == ErrorCode::kPermissionDenied) {
          return FailInLog(log_path, PermissionDenied("cannot use working directory '" + p.workdir + "' (" +
                                                      can.message() + "; the job runs as uid " +
                                                      std::to_string(ident->uid) + ")"));
        }
      }
    } else if (IsInside(p.workdir, job_dir)) {
      // Our own tree: (re)given to the job's user on every attempt, entered before giving up root.
      RETURN_IF_ERROR(MakeDirs(p.workdir, 0700));
      if (other_user) RETURN_IF_ERROR(GiveDir(p.workdir, *ident));
      if (!spec.code_archive.empty()) {
        // Through descriptors, never following a link a previous attempt may have left (sync/archive.h).
        Status code = sync::Unpack(spec.code_archive, p.workdir,
                                   other_user ? std::optional<sync::Owner>(sync::Owner{ident->uid, ident->gid}) : std::nullopt);
        if (!code.ok()) return FailInLog(log_path, Status(code.code(), "cannot unpack the job's synced code: " + code.message()));
      }
      p.chdir_as_root = ident.has_value();
    } else if (ident) {
      // A directory named by the job is created by the job's user, in the job's process: root must
      // not create (and hand over) directories wherever a job spec points, e.g. under /etc.
      for (size_t i = 1; i <= p.workdir.size(); ++i) {
        if (i == p.workdir.size() || p.workdir[i] == '/') p.mkdir_paths.push_back(p.workdir.substr(0, i));
      }
    } else {
      RETURN_IF_ERROR(MakeDirs(p.workdir, 0700));
    }
    if (!spec.checkpoint_dir.empty()) {
      // Kept across attempts (and nodes, on shared storage): made once, given to the job's user every time (a
      // project's uid never changes, but a named run-as user may have been set since).
      const std::string ckpt = Absolute(spec.checkpoint_dir);
      if (::mkdir(ckpt.c_str(), 0700) != 0 && errno != EEXIST)
        return FailInLog(log_path, Internal("cannot create checkpoint directory '" + ckpt + "': " + ErrnoText(errno)));
      Status given = other_user ? GiveDir(ckpt, *ident) : GiveDir(ckpt, std::nullopt);
      if (!given.ok()) {
        return FailInLog(log_path, Status(given.code(), given.message() +
                                                            " (on shared storage, the agent's root must be able to "
                                                            "change owners there: export it without root squashing)"));
      }
    }
    p.pid_path = job_dir + "/" + kPidFile;
    p.pid_tmp = p.pid_path + ".tmp";
    p.exit_path = job_dir + "/" + kExitFile;
    p.exit_tmp = p.exit_path + ".tmp";
    p.claim_path = job_dir + "/" + kClaimFile;
    p.lease_path = spec.lease_path;
    // A previous attempt of the same job may have left records behind.
    for (const std::string* f : {&p.pid_path, &p.pid_tmp, &p.exit_path, &p.exit_tmp, &p.claim_path})
      ::unlink(f->c_str());
    const bool forwards = spec.argv.size() > 1 && spec.argv[1] == kRankLauncherVerb;
    const std::string forwards_path = job_dir + "/" + kForwardsSignalsFile;
    if (forwards) {
      RETURN_IF_ERROR(WriteFileAtomic(forwards_path, "launcher\n"));
    } else {
      ::unlink(forwards_path.c_str());
    }

    std::string container_name;
    if (container) {
      ASSIGN_OR_RETURN(container_name, PrepareContainer(spec, job_dir, log_path, where, ident, &p));
    }

    // Environment: ours (filtered, see InheritedVariable), the job user's identity, then the job's
    // additions/overrides.
    std::map<std::string, std::string> env;
    if (!container) {
      for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string kv(*e);
        size_t eq = kv.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        std::string name = kv.substr(0, eq);
        if (!InheritedVariable(name, ident.has_value())) continue;
        env.emplace(std::move(name), kv.substr(eq + 1));
      }
      if (ident) {
        env["HOME"] = ident->home.empty() ? p.workdir : ident->home;
        env["USER"] = ident->name;
        env["LOGNAME"] = ident->name;
        p.set_identity = true;
        p.set_umask = ident->project_uid;  // files private to the job unless it says otherwise
        p.uid = ident->uid;
        p.gid = ident->gid;
        p.groups = ident->groups;
        p.reason_identity_prefix = ident->project_uid
                                       ? "cannot switch to uid " + std::to_string(ident->uid) + ": "
                                       : "cannot switch to OS user '" + ident->name + "' (uid " +
                                             std::to_string(ident->uid) + "): ";
        p.reason_regain_root = "refusing to run: root privileges could be regained after switching to uid " +
                               std::to_string(ident->uid);
      }
      for (const auto& [k, v] : spec.env) {
        if (k.empty() || k.find('=') != std::string::npos) {
          return InvalidArgument("job " + spec.job_id + ": bad environment variable name '" + k + "'");
        }
        env[k] = v;
      }
      p.env_store.reserve(env.size());
      for (const auto& [k, v] : env) p.env_store.push_back(k + "=" + v);
      env.clear();  // the values may be secrets: keep as few copies as possible
      p.argv_store = spec.argv;
      p.exec_candidates = CommandCandidates(spec.argv[0], PathOf(p.env_store));
      for (auto& s : p.argv_store) p.argv.push_back(s.data());
      p.argv.push_back(nullptr);
      static constexpr char kSh[] = "/bin/sh";
      p.sh_argv.push_back(const_cast<char*>(kSh));
      p.sh_argv.push_back(nullptr);  // the candidate being run (ExecJob)
      for (size_t i = 1; i < p.argv_store.size(); ++i) p.sh_argv.push_back(p.argv_store[i].data());
      p.sh_argv.push_back(nullptr);
      for (auto& s : p.env_store) p.envp.push_back(s.data());
      p.envp.push_back(nullptr);
    }
    p.reason_exec_prefix = "cannot run '" + p.argv_store[0] + "': ";
    if (other_user && !container) {
      // For the message only (the job's own lookup decides): what this agent's user would have run.
      for (const std::string& c : p.exec_candidates) {
        struct stat sb {};
        if (::stat(c.c_str(), &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        p.reason_exec_hidden = "cannot run '" + spec.argv[0] + "': not found for uid " + std::to_string(ident->uid) +
                               " (there is " + Absolute(c) + ", in a directory that uid " +
                               std::to_string(ident->uid) + " may not enter; install it where every user can, "
                               "or give its full path in a readable place)";
        break;
      }
    }
    p.reason_chdir_prefix = "cannot enter working directory '" + p.workdir + "': ";
    p.reason_mkdir_prefix = "cannot create working directory '" + p.workdir + "': ";
    if (other_user && !container && !IsInside(p.workdir, job_dir)) {
      // For the message only (the job's own chdir decides): which directory on the way its user may not enter.
      struct stat sb {};
      if (::stat(p.workdir.c_str(), &sb) == 0) {
        Status can = CheckEnterableBy(p.workdir, ident->uid, ident->gid, ident->groups);
        if (can.code() == ErrorCode::kPermissionDenied) {
          p.reason_chdir_prefix = p.reason_mkdir_prefix =
              "cannot use working directory '" + p.workdir + "' (" + can.message() + "; the job runs as uid " +
              std::to_string(ident->uid) + ": use a directory that uid may enter, e.g. one under /srv readable by all, "
              "not one under /root): ";
        }
      }
    }

    p.log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
    if (p.log_fd < 0) {
      if (p.env_fd >= 0) ::close(p.env_fd);
      return Internal("cannot open log file '" + log_path + "': " + ErrnoText(errno));
    }
    // Without its time index the job still runs (its lines then have no known times).
    p.log_path = log_path;
    p.times_fd = ::open(LogTimesPath(log_path).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
    p.null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (p.null_fd < 0) {
      int e = errno;
      if (p.times_fd >= 0) ::close(p.times_fd);
      ::close(p.log_fd);
      if (p.env_fd >= 0) ::close(p.env_fd);
      return Internal("cannot open /dev/null: " + ErrnoText(e));
    }
    int report[2];
    if (::pipe2(report, O_CLOEXEC) != 0) {
      int e = errno;
      ::close(p.log_fd);
      ::close(p.null_fd);
      if (p.env_fd >= 0) ::close(p.env_fd);
      if (p.times_fd >= 0) ::close(p.times_fd);
      return Unavailable("cannot create a pipe to start job " + spec.job_id + ": " + ErrnoText(e));
    }

    // The record that this attempt may have started (see kStartedFile); nothing before here started it.
    if (Status marked = WriteFileAtomic(job_dir + "/" + kStartedFile, "attempt " + std::to_string(spec.attempt) + "\n");
        !marked.ok()) {
      for (int fd : {report[0], report[1], p.log_fd, p.null_fd, p.env_fd, p.times_fd}) {
        if (fd >= 0) ::close(fd);
      }
      return marked;
    }
    pid_t sup = ::fork();
    if (sup == 0) {
      ::close(report[0]);
      RunSupervisor(p, errors_.data(), report[1]);
    }
    int fork_errno = errno;
    ::close(report[1]);
    ::close(p.log_fd);
    ::close(p.null_fd);
    if (p.env_fd >= 0) ::close(p.env_fd);
    if (p.times_fd >= 0) ::close(p.times_fd);
    if (sup < 0) {
      ::close(report[0]);
      return Unavailable("cannot fork to start job " + spec.job_id + ": " + ErrnoText(fork_errno));
    }

    LaunchRecord rec;
    size_t got = 0;
    while (got < sizeof(rec)) {
      ssize_t r = ::read(report[0], reinterpret_cast<char*>(&rec) + got, sizeof(rec) - got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
    ::close(report[0]);
    if (got != sizeof(rec) || rec.error != 0 || rec.pid <= 0) {
      int st = 0;
      while (::waitpid(sup, &st, 0) < 0 && errno == EINTR) {
      }
      if (got == sizeof(rec) && rec.error != 0) {
        return Unavailable("cannot start job " + spec.job_id + ": " + ErrnoText(rec.error));
      }
      return Internal("cannot start job " + spec.job_id + ": its supervisor process ended early");
    }

    ProcessRef ref;
    ref.job_id = spec.job_id;
    ref.supervisor_pid = sup;
    ref.pid = rec.pid;
    ref.start_ticks = rec.start_ticks;
    Tracked t;
    t.ref = ref;
    t.job_dir = job_dir;
    t.supervisor_start_ticks = rec.supervisor_start_ticks;
    t.leader_forwards = forwards;
    t.container_name = container_name;
    t.exit_event = OpenPidFd(sup);  // our child, not reaped yet: the pid cannot name another process
    {
      std::lock_guard lock(mu_);
      jobs_[spec.job_id] = std::move(t);
    }
    Interrupt();  // a waiter watches the new job from now on
    return ref;
  }

  Status Terminate(const std::string& job_id, std::chrono::milliseconds grace) override {
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return NotFound("job " + job_id + " is not running on this node");
    Tracked& t = it->second;
    const int64_t now = clock_.MonotonicNanos();
    const int64_t deadline = now + std::max<int64_t>(0, grace.count()) * 1'000'000;
    if (grace.count() <= 0) {
      if (!t.kill_sent) {
        t.kill_sent = true;
        SignalGroup(t, SIGKILL);
      }
      return Status::Ok();
    }
    if (!t.term_sent) {
      t.term_sent = true;
      SignalGroup(t, SIGTERM);
      SignalGroup(t, SIGCONT);  // a stopped job must run to handle SIGTERM
    }
    if (!t.kill_deadline_ns || deadline < *t.kill_deadline_ns) t.kill_deadline_ns = deadline;
    WakeLocked();  // a waiter wakes for the kill deadline
    return Status::Ok();
  }

  Status Checkpoint(const std::string& job_id, int signal, std::chrono::milliseconds checkpoint_grace,
                    std::chrono::milliseconds grace) override {
    if (signal <= 0 || signal >= NSIG || checkpoint_grace.count() <= 0) return Terminate(job_id, grace);
    std::lock_guard lock(mu_);
    auto it = jobs_.find(job_id);
    if (it == jobs_.end()) return NotFound("job " + job_id + " is not running on this node");
    Tracked& t = it->second;
    if (t.term_sent || t.kill_sent) return Status::Ok();  // already being stopped: it keeps its course
    const int64_t now = clock_.MonotonicNanos();
    if (!t.checkpoint_sent) {
      t.checkpoint_sent = true;
      if (t.leader_forwards) {
        SignalLeader(t, signal);
      } else {
        SignalGroup(t, signal);
      }
      SignalGroup(t, SIGCONT);  // a stopped job must run to save its work
    }
    const int64_t term_at = now + checkpoint_grace.count() * 1'000'000;
    if (!t.term_deadline_ns || term_at < *t.term_deadline_ns) t.term_deadline_ns = term_at;
    t.term_grace_ns = std::max<int64_t>(0, grace.count()) * 1'000'000;
    WakeLocked();  // a waiter wakes for the SIGTERM deadline
    return Status::Ok();
  }

  Result<ProcessRef> Adopt(const std::string& job_id, const std::string& job_dir_in) override {
    std::lock_guard lock(mu_);
    if (auto it = jobs_.find(job_id); it != jobs_.end()) return it->second.ref;
    const std::string job_dir = Absolute(job_dir_in);
    if (auto ex = ReadExitFile(job_id, job_dir)) {
      pending_.push_back(*ex);
      return NotFound("job " + job_id + " already exited");
    }
    auto text = ReadFileToString(job_dir + "/" + kPidFile);
    std::optional<PidRecord> rec = text ? ParsePidFile(*text) : std::nullopt;
    if (!rec) {
      ExitStatus st;
      st.job_id = job_id;
      st.lost = true;
      st.reason = "process lost: no process record in " + job_dir + " (the node restarted while the job was starting)";
      pending_.push_back(st);
      return NotFound("job " + job_id + " has no process record");
    }
    Tracked t;
    t.ref.job_id = job_id;
    t.ref.pid = rec->pid;
    t.ref.start_ticks = rec->ticks;
    t.ref.supervisor_pid = rec->sup_pid;
    t.supervisor_start_ticks = rec->sup_ticks;
    t.job_dir = job_dir;
    t.adopted = true;
    t.leader_forwards = ::access((job_dir + "/" + kForwardsSignalsFile).c_str(), F_OK) == 0;
    if (auto name = ReadFileToString(job_dir + "/" + kContainerFile)) {
      t.container_name = *name;
      while (!t.container_name.empty() && t.container_name.back() == '\n') t.container_name.pop_back();
    }
    bool sup_alive = SupervisorAlive(t);
    bool job_alive = ProcessMatches(t.ref.pid, t.ref.start_ticks);
    if (!sup_alive && !job_alive) {
      // The supervisor writes the exit record before it ends: look again now that it is gone.
      if (auto ex = ReadExitFile(job_id, job_dir)) {
        pending_.push_back(*ex);
      } else {
        pending_.push_back(LostStatus(t));
      }
      return NotFound("job " + job_id + " is no longer running");
    }
    if (sup_alive) {
      // Opened first, then checked: the pidfd names the supervisor only if it still matches its record.
      t.exit_event = OpenPidFd(t.ref.supervisor_pid);
      if (t.exit_event && !ProcessMatches(t.ref.supervisor_pid, t.supervisor_start_ticks)) t.exit_event.reset();
    }
    ProcessRef ref = t.ref;
    jobs_[job_id] = std::move(t);
    WakeLocked();
    return ref;
  }

  std::vector<ExitStatus> Poll() override {
    std::vector<std::string> orphans;
    std::vector<ExitStatus> out = PollLocked(&orphans);
    // Containers of jobs whose supervisor is gone: nothing else removes them (podman was killed, or ended, without
    // the supervisor's cleanup). Outside the lock: podman takes a while.
    for (const std::string& name : orphans) RemoveContainer(name);
    return out;
  }

  std::vector<ExitStatus> PollLocked(std::vector<std::string>* orphans) {
    std::lock_guard lock(mu_);
    std::vector<ExitStatus> out;
    out.swap(pending_);
    const int64_t now = clock_.MonotonicNanos();
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      Tracked& t = it->second;
      bool sup_alive = SupervisorAlive(t);
      if (!sup_alive) {
        if (auto ex = ReadExitFile(t.ref.job_id, t.job_dir)) {
          out.push_back(*ex);
          it = jobs_.erase(it);
          continue;
        }
        if (!ProcessMatches(t.ref.pid, t.ref.start_ticks)) {
          if (!t.container_name.empty()) orphans->push_back(t.container_name);
          out.push_back(LostStatus(t));
          it = jobs_.erase(it);
          continue;
        }
        if (t.kill_sent && !t.container_name.empty() && !t.container_cleaned) {
          // Stopped with SIGKILL while its supervisor is gone: podman cannot pass that on, so the container goes.
          t.container_cleaned = true;
          orphans->push_back(t.container_name);
        }
        // The supervisor is gone but the job still runs: keep watching it (its exit status will be
        // unknown, and it is reported lost when it ends), by polling: its supervisor's event has fired.
        t.exit_event.reset();
      }
      if (t.term_deadline_ns && !t.term_sent && !t.kill_sent && now >= *t.term_deadline_ns) {
        // The checkpoint grace is over and the job still runs: SIGTERM, SIGKILL after the stop grace.
        t.term_sent = true;
        SignalGroup(t, SIGTERM);
        SignalGroup(t, SIGCONT);
        const int64_t kill_at = now + t.term_grace_ns;
        if (!t.kill_deadline_ns || kill_at < *t.kill_deadline_ns) t.kill_deadline_ns = kill_at;
      }
      if (t.kill_deadline_ns && !t.kill_sent && now >= *t.kill_deadline_ns) {
        t.kill_sent = true;
        SignalGroup(t, SIGKILL);
      }
      ++it;
    }
    return out;
  }

  std::vector<std::string> Running() const override {
    std::lock_guard lock(mu_);
    std::vector<std::string> ids;
    ids.reserve(jobs_.size());
    for (const auto& [id, t] : jobs_) ids.push_back(id);
    return ids;
  }

  bool ExitEvents() const override { return wake_->get() >= 0; }

  void WaitForExits(std::chrono::milliseconds timeout) override {
    std::vector<std::shared_ptr<OwnedFd>> held;  // kept open while polled, even if Poll forgets the job
    std::vector<pollfd> fds;
    int64_t wait_ms = std::max<int64_t>(0, timeout.count());
    {
      std::lock_guard lock(mu_);
      if (!pending_.empty()) return;
      fds.push_back({wake_->get(), POLLIN, 0});
      const int64_t now = clock_.MonotonicNanos();
      for (const auto& [id, t] : jobs_) {
        if (t.exit_event) {
          held.push_back(t.exit_event);
          fds.push_back({t.exit_event->get(), POLLIN, 0});
        } else {
          wait_ms = std::min(wait_ms, kPollWithoutEventMs);
        }
        if (t.kill_deadline_ns && !t.kill_sent) {
          wait_ms = std::min(wait_ms, std::max<int64_t>(0, (*t.kill_deadline_ns - now + 999'999) / 1'000'000));
        }
        if (t.term_deadline_ns && !t.term_sent && !t.kill_sent) {
          wait_ms = std::min(wait_ms, std::max<int64_t>(0, (*t.term_deadline_ns - now + 999'999) / 1'000'000));
        }
      }
    }
    int r = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(wait_ms, 1 << 30)));
    if (r > 0 && (fds[0].revents & POLLIN) != 0) {
      uint64_t v = 0;
      (void)!::read(wake_->get(), &v, sizeof(v));
    }
  }

  void Interrupt() override {
    std::lock_guard lock(mu_);
    WakeLocked();
  }

 private:
  struct Tracked {
    ProcessRef ref;
    std::shared_ptr<OwnedFd> exit_event;  // pidfd of the supervisor (null: polled)
    std::string job_dir;
    int64_t supervisor_start_ticks = 0;
    bool adopted = false;
    bool supervisor_reaped = false;
    bool term_sent = false;
    bool kill_sent = false;
    std::optional<int64_t> kill_deadline_ns;
    // A per-GPU job's launcher (kForwardsSignalsFile): a checkpoint signal goes to it alone.
    bool leader_forwards = false;
    // A container job: its container's name (removed by name when the job is lost with its supervisor gone).
    std::string container_name;
    bool container_cleaned = false;
    // Checkpoint(): the signal was sent; SIGTERM follows at term_deadline_ns, SIGKILL term_grace_ns after that.
    bool checkpoint_sent = false;
    std::optional<int64_t> term_deadline_ns;
    int64_t term_grace_ns = 0;
  };

  // Appends "fastgpu: <reason>" to the job's log (so that `job logs` shows why nothing ran) and
  // returns the status.
  static Status FailInLog(const std::string& log_path, Status st) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd >= 0) {
      const std::string line = "fastgpu: " + st.message() + "\n";
      SafeWrite(fd, line.data(), line.size());
      // Its time is the log's modification time (the write's), recorded in the log's time index.
      struct stat after {};
      if (::fstat(fd, &after) == 0 && after.st_size >= static_cast<off_t>(line.size())) {
        const int64_t ms = static_cast<int64_t>(after.st_mtim.tv_sec) * 1000 + after.st_mtim.tv_nsec / 1'000'000;
        (void)AppendLogTimeFile(LogTimesPath(log_path),
                                {static_cast<int64_t>(after.st_size) - static_cast<int64_t>(line.size()),
                                 static_cast<int64_t>(after.st_size), ms});
      }
      ::close(fd);
    }
    return st;
  }

  // The job's process of a container job: `podman run` (see LaunchSpec::image). Fills p's argv, environment (the
  // agent's own, for podman), the memory file with the container's environment and the cleanup command; returns
  // the container's name. Failures are written to the job's log.
  static Result<std::string> PrepareContainer(const LaunchSpec& spec, const std::string& job_dir,
                                              const std::string& log_path, const std::string& where,
                                              const std::optional<Identity>& ident, Prepared* p) {
    const std::string podman = FindPodman(spec.podman);
    if (podman.empty()) {
      return FailInLog(log_path, FailedPrecondition("podman is not installed on " + where + ": job " + spec.job_id +
                                                    " runs in image '" + spec.image +
                                                    "' and needs it (apt-get install podman), or submit it "
                                                    "without --image"));
    }
    // podman runs as this agent's user, in the agent's environment (CONTAINERS_CONF, XDG_RUNTIME_DIR...), never
    // in the job's: that one is the container's.
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string kv(*e);
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0 || !InheritedVariable(kv.substr(0, eq), false)) continue;
      p->env_store.push_back(std::move(kv));
    }
    for (auto& v : p->env_store) p->envp.push_back(v.data());
    p->envp.push_back(nullptr);

    // Jobs never pull (a registry may be unreachable, and a pull would be billed as the job's GPU time).
    ASSIGN_OR_RETURN(auto exists, RunQuiet({podman, "image", "exists", spec.image}, p->envp.data()));
    if (exists.first == 1) {
      return FailInLog(log_path, FailedPrecondition("image " + spec.image + " is not on " + where + "; podman pull " +
                                                    spec.image + " there (jobs never pull images)"));
    }
    if (exists.first != 0) {
      return FailInLog(log_path, Unavailable("podman on " + where + " cannot look up image " + spec.image + ": " +
                                             (exists.second.empty() ? "exit " + std::to_string(exists.first)
                                                                    : exists.second)));
    }

    const std::string workdir = p->workdir;
    const std::string ckpt = spec.checkpoint_dir.empty() ? "" : Absolute(spec.checkpoint_dir);
    for (const std::string* dir : {&workdir, &ckpt}) {
      if (dir->find_first_of(":,") != std::string::npos) {
        return FailInLog(log_path, InvalidArgument("cannot mount '" + *dir + "' into a container: podman does not "
                                                   "take paths with ':' or ','"));
      }
    }
    // The container's environment: the job's (the contract of docs/architecture.md, secrets included) and HOME,
    // through a sealed memory file read by podman as --env-file (one NAME=VALUE a line).
    std::string env_text;
    bool home = false;
    for (const auto& [k, v] : spec.env) {
      if (k.empty() || k.find_first_of("=\n") != std::string::npos || k[0] == '#' || k[0] == ' ' || k[0] == '\t')
        return InvalidArgument("job " + spec.job_id + ": bad environment variable name '" + k + "'");
      if (v.find('\n') != std::string::npos) {
        return FailInLog(log_path, InvalidArgument("environment variable " + k + " of job " + spec.job_id +
                                                   " holds a line break, which a container's environment cannot "
                                                   "carry (podman's env-file): put it in a file in the working "
                                                   "directory instead"));
      }
      home = home || k == "HOME";
      env_text += k + "=" + v + "\n";
    }
    if (!home) env_text += "HOME=" + workdir + "\n";
    int memfd = ::memfd_create("fastgpu-env", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (memfd < 0) return Internal("cannot create the environment of job " + spec.job_id + ": " + ErrnoText(errno));
    size_t off = 0;
    while (off < env_text.size()) {
      ssize_t w = ::write(memfd, env_text.data() + off, env_text.size() - off);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int e = errno;
        ::close(memfd);
        return Internal("cannot write the environment of job " + spec.job_id + ": " + ErrnoText(e));
      }
      off += static_cast<size_t>(w);
    }
    std::fill(env_text.begin(), env_text.end(), '\0');  // may hold secrets
    ::fcntl(memfd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL);
    p->env_fd = memfd;

    const std::string name = ContainerName(spec.job_id, spec.attempt, job_dir);
    std::vector<std::string>& a = p->argv_store;
    a = {podman, "run", "--rm", "--name", name, "--label", "fastgpu.job=" + spec.job_id, "--pull=never", "--init",
         // The node's network, as for processes (NCCL, rendezvous ports).
         "--network", "host",
         // Output goes to the job's log through podman; a second copy in the container's storage is not kept.
         "--log-driver", "none", "--cap-drop", "all", "--security-opt", "no-new-privileges", "--env-file",
         "/dev/fd/4", "-v", workdir + ":" + workdir, "-w", workdir};
    // The node's IPC too (shared-memory data loaders, NCCL), as for processes. Rootless podman can share it only
    // where /dev/mqueue is mounted; elsewhere the container keeps its own (with podman's 64 MiB /dev/shm).
    struct stat mq {};
    if (::geteuid() == 0 || (::stat("/dev/mqueue", &mq) == 0 && S_ISDIR(mq.st_mode))) {
      a.push_back("--ipc");
      a.push_back("host");
    }
    if (!ckpt.empty()) {
      a.push_back("-v");
      a.push_back(ckpt + ":" + ckpt);
    }
    if (ident) {
      // Rootful podman: the container's processes run as the job's own uid and gid, like a process job.
      a.push_back("--user");
      a.push_back(std::to_string(ident->uid) + ":" + std::to_string(ident->gid));
      for (gid_t g : ident->groups) {
        if (g == ident->gid) continue;
        a.push_back("--group-add");
        a.push_back(std::to_string(g));
      }
    } else if (::geteuid() != 0) {
      // Rootless podman: the agent's user is the same uid inside, so files in the mounts stay its own.
      a.push_back("--userns=keep-id");
    }
    for (const std::string& d : spec.devices) {
      a.push_back("--device");
      a.push_back(d);
    }
    a.push_back(spec.image);
    a.insert(a.end(), spec.argv.begin(), spec.argv.end());
    p->exec_candidates = {podman};
    for (auto& v : a) p->argv.push_back(v.data());
    p->argv.push_back(nullptr);
    p->sh_argv = {nullptr, nullptr};
    p->cleanup_store = {podman, "rm", "--force", "--ignore", "--time", "0", name};
    for (auto& v : p->cleanup_store) p->cleanup_argv.push_back(v.data());
    p->cleanup_argv.push_back(nullptr);
    // podman runs as the agent's user, from a directory it may enter.
    p->workdir = "/";
    p->chdir_as_root = false;
    p->mkdir_paths.clear();
    Status recorded = WriteFileAtomic(job_dir + "/" + kContainerFile, name + "\n");
    if (!recorded.ok()) {
      ::close(p->env_fd);
      p->env_fd = -1;
      return recorded;
    }
    return name;
  }

  static std::string PathOf(const std::vector<std::string>& env) {
    for (const std::string& kv : env) {
      if (kv.rfind("PATH=", 0) == 0) return kv.substr(5);
    }
    return "";
  }

  static std::vector<std::string> CommandCandidates(const std::string& cmd, const std::string& path_env) {
    if (cmd.find('/') != std::string::npos) return {cmd};
    std::string path = path_env.empty() ? "/usr/local/bin:/usr/bin:/bin" : path_env;
    std::vector<std::string> out;
    size_t i = 0;
    while (i <= path.size()) {
      size_t next = path.find(':', i);
      if (next == std::string::npos) next = path.size();
      std::string dir = path.substr(i, next - i);
      i = next + 1;
      out.push_back((dir.empty() ? std::string(".") : dir) + "/" + cmd);  // relative: to the working directory
    }
    return out;
  }

  // Is the supervisor still running? Reaps it when it is our child.
  bool SupervisorAlive(Tracked& t) {
    if (t.supervisor_reaped) return false;
    int st = 0;
    pid_t r = ::waitpid(static_cast<pid_t>(t.ref.supervisor_pid), &st, WNOHANG);
    if (r == t.ref.supervisor_pid) {
      t.supervisor_reaped = true;
      return false;
    }
    if (r == 0) return true;  // our child, still running
    // Not our child (adopted after a restart): look it up.
    if (ProcessMatches(t.ref.supervisor_pid, t.supervisor_start_ticks)) return true;
    t.supervisor_reaped = true;
    return false;
  }

  void SignalGroup(const Tracked& t, int sig) {
    // The group id is the job pid; make sure the pid still names our job (not a reused pid).
    if (t.ref.pid > 0 && ProcessExists(t.ref.pid, t.ref.start_ticks)) {
      ::kill(static_cast<pid_t>(-t.ref.pid), sig);
    }
  }

  void SignalLeader(const Tracked& t, int sig) {
    if (t.ref.pid > 0 && ProcessExists(t.ref.pid, t.ref.start_ticks)) ::kill(static_cast<pid_t>(t.ref.pid), sig);
  }

  // `podman rm --force` of a container, as the agent's user, in the agent's environment (errors are logged: the
  // container may already be gone).
  static void RemoveContainer(const std::string& name) {
    const std::string podman = FindPodman();
    if (podman.empty()) return;
    std::vector<std::string> env_store;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      std::string kv(*e);
      size_t eq = kv.find('=');
      if (eq != std::string::npos && eq > 0 && InheritedVariable(kv.substr(0, eq), false)) env_store.push_back(kv);
    }
    std::vector<char*> envp;
    for (auto& v : env_store) envp.push_back(v.data());
    envp.push_back(nullptr);
    auto r = RunQuiet({podman, "rm", "--force", "--ignore", "--time", "0", name}, envp.data());
    if (!r.ok() || r->first != 0) {
      std::fprintf(stderr, "fastgpu agent: cannot remove container %s: %s\n", name.c_str(),
                   r.ok() ? r->second.c_str() : r.status().message().c_str());
    }
  }

  static ExitStatus LostStatus(const Tracked& t) {
    ExitStatus st;
    st.job_id = t.ref.job_id;
    st.lost = true;
    st.reason = "process lost: job process " + std::to_string(t.ref.pid) + " and its supervisor (pid " +
                std::to_string(t.ref.supervisor_pid) + ") are gone and no exit status was recorded";
    return st;
  }

  void WakeLocked() {
    const uint64_t one = 1;
    (void)!::write(wake_->get(), &one, sizeof(one));
  }

  const Clock& clock_;
  std::shared_ptr<OwnedFd> wake_;  // eventfd: wakes WaitForExits (new job, Interrupt)
  std::vector<std::string> errors_store_;
  std::vector<const char*> errors_;
  int max_fd_ = 1024;
  mutable std::mutex mu_;
  bool noted_not_root_ = false;  // the note about run_as_user on a non-root agent was printed
  std::map<std::string, Tracked> jobs_;
  std::vector<ExitStatus> pending_;
};

}  // namespace

std::string ContainerName(const std::string& job_id, int attempt, const std::string& job_dir) {
  uint32_t h = 2166136261U;  // FNV-1a
  for (char c : job_dir) h = (h ^ static_cast<unsigned char>(c)) * 16777619U;
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", h);
  std::string id;
  for (char c : job_id) id.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ? c : '_');
  return "fastgpu-" + id + "-" + std::to_string(attempt) + "-" + hex;
}

std::string FindPodman(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path_env = std::getenv("PATH");  // NOLINT(concurrency-mt-unsafe): read only, never set by fastgpu
  const std::string path = path_env != nullptr && *path_env != '\0' ? path_env : "/usr/local/bin:/usr/bin:/bin";
  size_t i = 0;
  while (i <= path.size()) {
    size_t next = path.find(':', i);
    if (next == std::string::npos) next = path.size();
    const std::string dir = path.substr(i, next - i);
    i = next + 1;
    if (dir.empty() || dir[0] != '/') continue;
    const std::string candidate = dir + "/" + name;
    struct stat sb {};
    if (::stat(candidate.c_str(), &sb) == 0 && S_ISREG(sb.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
  }
  return "";
}

std::unique_ptr<Executor> MakeProcessExecutor(const Clock& clock) {
  return std::make_unique<ProcessExecutor>(clock);
}

}  // namespace fastgpu::agent
