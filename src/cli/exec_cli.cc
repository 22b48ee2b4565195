#include "cli/exec_cli.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <optional>
#include <ostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/crypto.h"

namespace fastgpu::cli {

using nlohmann::json;

namespace {

constexpr size_t kInputChunk = 32 << 10;
constexpr int kOutputWaitMs = 10'000;

// The terminal in raw mode while the session runs (keys go to the remote terminal as they are typed, Ctrl-C
// included); the saved mode is put back on every way out.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) != 0) return;
    struct termios raw = saved_;
    ::cfmakeraw(&raw);
    if (::tcsetattr(fd_, TCSANOW, &raw) == 0) active_ = true;
  }
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
};

// Signals that matter to a session are taken as events (signalfd) while it runs: the window size changed, or the
// user wants to stop. The previous mask is put back afterwards.
class SignalEvents {
 public:
  SignalEvents() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGWINCH}) sigaddset(&set, sig);
    ::pthread_sigmask(SIG_BLOCK, &set, &saved_);
    fd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  }
  ~SignalEvents() {
    if (fd_ >= 0) ::close(fd_);
    ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr);
  }
  SignalEvents(const SignalEvents&) = delete;
  SignalEvents& operator=(const SignalEvents&) = delete;
  int fd() const { return fd_; }

 private:
  sigset_t saved_ {};
  int fd_ = -1;
};

std::pair<int, int> WindowSize() {
  struct winsize ws {};
  for (int fd : {1, 0, 2}) {
    if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) return {ws.ws_row, ws.ws_col};
  }
  return {0, 0};
}

// Waits up to `ms` unless `stop_fd` becomes readable; true when stopped.
bool WaitOrStop(int stop_fd, int ms) {
  pollfd p{stop_fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

bool Transient(const Status& st) {
  return st.code() == ErrorCode::kUnavailable || st.code() == ErrorCode::kDeadlineExceeded;
}

}  // namespace

std::vector<std::string> AttachShell() {
  return {"/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash -i; else exec sh -i; fi"};
}

int JobExec(Context& ctx, const ExecFlags& f) {
  const std::vector<std::string> command = f.attach ? AttachShell() : f.command;
  const bool tty = f.tty || f.attach;
  const bool forward_input = f.stdin_open || f.attach;
  const bool local_tty = ::isatty(0) == 1 && ::isatty(1) == 1;
  if (f.attach && !local_tty)
    return ReportError(ctx.err,
                       InvalidArgument("job attach needs a terminal (standard input and output must be one); run a "
                                       "command instead: fastgpu job exec " + f.id + " -- CMD"),
                       kExitUsage);
  if (command.empty())
    return ReportError(ctx.err, InvalidArgument("no command: fastgpu job exec " + f.id + " -- CMD [ARGS...]"),
                       kExitUsage);
  json body{{"command", command}, {"tty", tty}, {"stdin", forward_input}, {"rank", f.rank}};
  if (tty) {
    auto [rows, cols] = WindowSize();
    if (rows > 0) {
      body["rows"] = rows;
      body["cols"] = cols;
    }
    if (!f.term.empty()) body["term"] = f.term;
  }
  const std::string job_path = "/v1/jobs/" + UrlEncode(f.id) + "/exec";
  auto opened = ctx.client.PostJson(job_path, body.dump());
  if (!opened.ok()) return ReportError(ctx.err, opened.status(), kExitFailure);
  const std::string session = opened->value("session", std::string());
  if (session.empty()) return ReportError(ctx.err, Internal("the server opened no exec session"), kExitFailure);
  const std::string path = job_path + "/" + UrlEncode(session);

  std::optional<RawTerminal> raw;
  if (tty && forward_input && ::isatty(0) == 1) raw.emplace(0);  // keys (Ctrl-C too) go to the command
  SignalEvents signals;
  const int stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  std::atomic<bool> interrupted{false};

  // Input, window sizes and signals, on a thread of their own; the output is read on this one.
  std::thread input([&] {
    int64_t offset = 0;
    bool reading = forward_input;
    auto post = [&](const std::string& data, bool eof, int rows, int cols) -> bool {
      size_t sent = 0;
      int backoff_ms = 20;
      while (true) {
        json in{{"offset", offset}};
        const std::string chunk = data.substr(sent);
        if (!chunk.empty()) in["data"] = Base64Encode(chunk);
        if (eof) in["eof"] = true;
        if (rows > 0) {
          in["rows"] = rows;
          in["cols"] = cols;
        }
        auto r = ctx.client.PostJson(path + "/input", in.dump());
        if (!r.ok()) {
          if (!Transient(r.status())) return false;  // the session has ended
        } else {
          const int64_t have = r->value("offset", offset);
          sent += static_cast<size_t>(std::max<int64_t>(0, have - offset));
          offset = std::max(offset, have);
          if (sent >= data.size()) return true;
        }
        // The node has not taken earlier input yet (or the server was unreachable): the rest goes a little later.
        if (WaitOrStop(stop_fd, backoff_ms)) return false;
        backoff_ms = std::min(backoff_ms * 2, 500);
      }
    };
    while (true) {
      pollfd fds[3] = {{stop_fd, POLLIN, 0}, {signals.fd(), POLLIN, 0}, {reading ? 0 : -1, POLLIN, 0}};
      if (::poll(fds, 3, -1) < 0 && errno != EINTR) break;
      if (fds[0].revents != 0) break;
      if (fds[1].revents != 0) {
        signalfd_siginfo si {};
        while (::read(signals.fd(), &si, sizeof(si)) == static_cast<ssize_t>(sizeof(si))) {
          if (si.ssi_signo == SIGWINCH) {
            if (!tty) continue;
            auto [rows, cols] = WindowSize();
            if (rows > 0) (void)post("", false, rows, cols);
          } else {
            // Ctrl-C (without a terminal), SIGTERM, SIGHUP: the command is killed, and we leave once it has ended.
            interrupted = true;
            (void)ctx.client.Delete(path);
          }
        }
      }
      if (reading && fds[2].revents != 0) {
        char buf[kInputChunk];
        ssize_t n = ::read(0, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) {
          reading = false;
          (void)post("", true, 0, 0);  // end of input
          continue;
        }
        if (!post(std::string(buf, static_cast<size_t>(n)), false, 0, 0)) reading = false;
      }
    }
  });
  auto finish = [&](int code) {
    uint64_t one = 1;
    ssize_t w = ::write(stop_fd, &one, sizeof(one));
    (void)w;
    input.join();
    ::close(stop_fd);
    return code;
  };

  int64_t out_off = 0, err_off = 0;
  int failures = 0;
  while (true) {
    auto r = ctx.client.GetJson(path + "/output?stdout_offset=" + std::to_string(out_off) +
                                    "&stderr_offset=" + std::to_string(err_off) +
                                    "&timeout_ms=" + std::to_string(kOutputWaitMs),
                                kOutputWaitMs / 1000 + 30);
    if (!r.ok()) {
      if (Transient(r.status()) && ++failures <= 20) {
        (void)WaitOrStop(stop_fd, 250 * std::min(failures, 8));  // the server may be restarting
        continue;
      }
      raw.reset();
      return finish(ReportError(ctx.err, r.status(), kExitFailure));
    }
    failures = 0;
    if (interrupted) {
      raw.reset();
      return finish(130);
    }
    auto decode = [&](const char* field, const char* offset_field, int64_t& next, std::ostream& os) -> Status {
      const std::string text = r->value(field, std::string());
      if (text.empty()) return Status::Ok();
      ASSIGN_OR_RETURN(std::string bytes, Base64Decode(text));
      const int64_t start = r->value(offset_field, next);
      // Bytes we already have (an answer to a retried request) are skipped.
      const int64_t skip = std::clamp<int64_t>(next - start, 0, static_cast<int64_t>(bytes.size()));
      os.write(bytes.data() + skip, static_cast<std::streamsize>(bytes.size() - static_cast<size_t>(skip)));
      os.flush();
      next = std::max(next, start + static_cast<int64_t>(bytes.size()));
      return Status::Ok();
    };
    Status st = decode("stdout", "stdout_offset", out_off, ctx.out);
    if (st.ok()) st = decode("stderr", "stderr_offset", err_off, ctx.err);
    if (!st.ok()) {
      raw.reset();
      return finish(ReportError(ctx.err, st, kExitFailure));
    }
    if (!r->value("ended", false)) continue;
    raw.reset();  // before any message of ours
    const std::string error = r->value("error", std::string());
    if (interrupted) return finish(130);
    if (r->contains("exit_code") && (*r)["exit_code"].is_number_integer()) {
      return finish((*r)["exit_code"].get<int>());  // a command that could not start said why on stderr
    }
    if (r->contains("signal") && (*r)["signal"].is_number_integer()) {
      const int sig = (*r)["signal"].get<int>();
      if (!error.empty()) ctx.err << "fastgpu: the command was stopped: " << error << "\n" << std::flush;
      return finish(128 + sig);
    }
    return finish(ReportError(ctx.err, Unavailable(error.empty() ? "the exec session ended without an exit status"
                                                                 : error),
                              kExitFailure));
  }
}

}  // namespace fastgpu::cli
