// Several "hosts" on one machine for fleet tests: each host is a Linux network namespace with one
// interface (eth0, 10.88.0.<n>/24) joined to the others through a bridge that lives in a namespace of
// its own (the lab's "switch"), so nothing is added to the machine's own network and two labs never
// meet. Needs root (CI runs as root) and iproute2; NetLab::Unavailable() says why not otherwise.
//
//   if (std::string why = NetLab::Unavailable(); !why.empty()) GTEST_SKIP() << why;
//   auto lab = NetLab::Create();                    // Result<std::unique_ptr<NetLab>>
//   auto db = (*lab)->AddHost("db");                // Result<std::string>: "10.88.0.1"
//   std::vector<std::string> argv = (*lab)->Wrap("db", {"/usr/bin/env"});   // runs inside "db"
//   (*lab)->SetLink("db", false);                   // cut the cable; SetLink("db", true) heals it
//
// The destructor deletes the namespaces (and with them the interfaces). Processes started inside a
// host's namespace keep running until the test stops them; stop them before the lab goes.
#pragma once

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace fastgpu::testing {

class NetLab {
 public:
  // Why no lab can be built here ("" when one can).
  static std::string Unavailable() {
    if (::geteuid() != 0) return "network namespaces need root (CI runs these tests as root)";
    if (::access("/usr/sbin/ip", X_OK) != 0 && ::access("/sbin/ip", X_OK) != 0 && ::access("/bin/ip", X_OK) != 0)
      return "iproute2 is not installed (`ip` missing): apt-get install iproute2";
    return "";
  }

  static Result<std::unique_ptr<NetLab>> Create() {
    if (std::string why = Unavailable(); !why.empty()) return fastgpu::Unavailable(why);
    static std::atomic<int> labs{0};
    auto lab = std::make_unique<NetLab>(Key{});
    lab->prefix_ = "fg" + std::to_string(::getpid()) + "-" + std::to_string(labs++);
    lab->switch_ns_ = lab->prefix_ + "-sw";
    RETURN_IF_ERROR(Ip({"netns", "add", lab->switch_ns_}));
    lab->namespaces_.push_back(lab->switch_ns_);
    RETURN_IF_ERROR(Ip({"-n", lab->switch_ns_, "link", "add", "br0", "type", "bridge"}));
    RETURN_IF_ERROR(Ip({"-n", lab->switch_ns_, "link", "set", "br0", "up"}));
    return lab;
  }

  struct Key {};  // only Create() makes labs
  explicit NetLab(Key) {}
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;
  ~NetLab() {
    for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it) (void)Ip({"netns", "delete", *it});
  }

  // Adds host `name` (letters, digits, '-'; at most 8 characters) and returns its address.
  Result<std::string> AddHost(const std::string& name) {
    if (name.empty() || name.size() > 8 || hosts_.count(name))
      return InvalidArgument("host name '" + name + "' is empty, longer than 8 characters or taken");
    const int n = static_cast<int>(hosts_.size()) + 1;
    Host h;
    h.ns = prefix_ + "-" + name;
    h.address = "10.88.0." + std::to_string(n);
    h.port = "p" + std::to_string(n);  // the switch's end of the host's cable
    RETURN_IF_ERROR(Ip({"netns", "add", h.ns}));
    namespaces_.push_back(h.ns);
    RETURN_IF_ERROR(Ip({"link", "add", "eth0", "netns", h.ns, "type", "veth", "peer", "name", h.port, "netns",
                        switch_ns_}));
    RETURN_IF_ERROR(Ip({"-n", switch_ns_, "link", "set", h.port, "master", "br0"}));
    RETURN_IF_ERROR(Ip({"-n", switch_ns_, "link", "set", h.port, "up"}));
    RETURN_IF_ERROR(Ip({"-n", h.ns, "addr", "add", h.address + "/24", "dev", "eth0"}));
    RETURN_IF_ERROR(Ip({"-n", h.ns, "link", "set", "eth0", "up"}));
    RETURN_IF_ERROR(Ip({"-n", h.ns, "link", "set", "lo", "up"}));
    hosts_[name] = h;
    return h.address;
  }

  std::string Address(const std::string& host) const { return hosts_.at(host).address; }
  std::string Namespace(const std::string& host) const { return hosts_.at(host).ns; }

  // The command line that runs `argv` inside `host` (for posix_spawn, std::system or the harness).
  std::vector<std::string> Wrap(const std::string& host, const std::vector<std::string>& argv) const {
    std::vector<std::string> out = {IpPath(), "netns", "exec", hosts_.at(host).ns};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

  // Moves the calling thread into `host`'s network namespace (for in-process clients in tests).
  Status EnterFromThisThread(const std::string& host) const {
    std::string path = "/var/run/netns/" + hosts_.at(host).ns;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Internal("cannot open " + path + ": " + std::strerror(errno));
    int rc = ::setns(fd, CLONE_NEWNET);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Internal("setns into " + path + ": " + std::strerror(err));
    return Status::Ok();
  }

  // Cuts (false) or heals (true) the host's cable at the switch: the host keeps its address and its
  // processes, but no packet reaches it or leaves it.
  Status SetLink(const std::string& host, bool up) {
    return Ip({"-n", switch_ns_, "link", "set", hosts_.at(host).port, up ? "up" : "down"});
  }

 private:
  struct Host {
    std::string ns, address, port;
  };
  static std::string IpPath() {
    for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/bin/ip"})
      if (::access(p, X_OK) == 0) return p;
    return "ip";
  }

  // Runs `ip ARGS...` and returns its status with its output on failure.
  static Status Ip(const std::vector<std::string>& args) {
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
    std::vector<std::string> all = {IpPath()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::dup2(pipefd[1], 1);
      ::dup2(pipefd[1], 2);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(pipefd[1]);
    std::string out;
    char buf[512];
    for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    ::close(pipefd[0]);
    int status = 0;
    if (pid < 0 || ::waitpid(pid, &status, 0) < 0) return Internal("cannot run " + all[0]);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::string cmd;
      for (auto& a : all) cmd += (cmd.empty() ? "" : " ") + a;
      return Internal(cmd + " failed: " + out);
    }
    return Status::Ok();
  }

  std::string prefix_, switch_ns_;
  std::vector<std::string> namespaces_;  // created, in order
  std::map<std::string, Host> hosts_;
};

}  // namespace fastgpu::testing
