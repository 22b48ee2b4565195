// A throwaway PostgreSQL 15 cluster for tests: initdb in a temporary directory, the server listening only
// on a Unix socket in that directory (no TCP port), trust authentication for the superuser "fastgpu".
// As root (CI) initdb and the server run as the `postgres` system user (or `nobody`), which owns the
// directory; otherwise as the current user. The server gets SIGQUIT if the test process dies (so a
// crashed test leaves no server behind) and is stopped and its directory removed by the destructor.
//
//   std::string why = PgCluster::Unavailable();   // non-empty: GTEST_SKIP() << why
//   PgCluster* pg = SharedPgCluster();             // started once per test process
//   ASSERT_TRUE(pg->CreateDatabase("t1").ok());
//   auto store = store::OpenPostgresStore(pg->Url("t1"));
//
// For multi-host tests the server can also listen on TCP inside a network namespace (tests/support/net_lab.h):
//   PgCluster::Start(false, {lab->Namespace("db"), lab->Address("db")}), then TcpUrl("t1") from other hosts
// (trust authentication for every TCP client too; the Unix socket stays for CreateDatabase and Psql).
#pragma once

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>
#include <sched.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "common/status.h"

namespace fastgpu::testing {

class PgCluster {
 public:
  // Where the PostgreSQL 15 server binaries are ($FASTGPU_PG_BIN overrides).
  static std::string BinDir() {
    const char* env = std::getenv("FASTGPU_PG_BIN");
    return env != nullptr && *env != '\0' ? env : "/usr/lib/postgresql/15/bin";
  }

  // Why no cluster can be started here ("" when one can).
  static std::string Unavailable() {
    for (const char* tool : {"initdb", "postgres", "createdb"}) {
      std::string path = BinDir() + "/" + tool;
      if (::access(path.c_str(), X_OK) != 0) {
        return "PostgreSQL 15 is not installed (" + path + " missing): apt-get install postgresql-15";
      }
    }
    return "";
  }

  // Where the server listens on TCP besides its Unix socket: `address`:`port` inside the network namespace
  // `netns` (a name under /var/run/netns). Empty netns: no TCP at all.
  struct Tcp {
    std::string netns;
    std::string address;
    int port = 5432;
  };

  // durable = false (tests): fsync off, which makes CREATE DATABASE and commits cheap. durable = true
  // (benchmarks): the server's defaults, every commit flushed.
  static Result<std::unique_ptr<PgCluster>> Start(bool durable = false) { return Start(durable, Tcp{}); }
  static Result<std::unique_ptr<PgCluster>> Start(bool durable, Tcp tcp) {
    if (std::string why = Unavailable(); !why.empty()) return fastgpu::Unavailable(why);
    std::unique_ptr<PgCluster> c(new PgCluster());
    c->durable_ = durable;
    c->tcp_ = std::move(tcp);
    RETURN_IF_ERROR(c->StartServer());
    return c;
  }

  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  ~PgCluster() {
    if (pid_ > 0) {
      ::kill(pid_, SIGQUIT);  // immediate shutdown: the data is thrown away
      if (!WaitExit(pid_, 10'000)) {
        ::kill(pid_, SIGKILL);
        WaitExit(pid_, 10'000);
      }
    }
    std::error_code ec;
    if (!base_.empty()) std::filesystem::remove_all(base_, ec);
  }

  const std::string& socket_dir() const { return sock_; }
  static std::string User() { return "fastgpu"; }

  // libpq URI of database `db` on this cluster.
  std::string Url(const std::string& db) const {
    return "postgresql:///" + db + "?host=" + sock_ + "&user=" + User();
  }
  // libpq URI of database `db` over TCP (Start with a Tcp listener).
  std::string TcpUrl(const std::string& db) const {
    return "postgres://" + User() + "@" + tcp_.address + ":" + std::to_string(tcp_.port) + "/" + db;
  }

  // CREATE DATABASE `name` (a plain identifier) unless this cluster already made it.
  Status CreateDatabase(const std::string& name) {
    std::lock_guard lock(mu_);
    if (databases_.count(name) != 0) return Status::Ok();
    RETURN_IF_ERROR(Run({BinDir() + "/createdb", "-h", sock_, "-U", User(), name}, /*as_owner=*/false));
    databases_.insert(name);
    return Status::Ok();
  }

  // Runs psql -c `sql` on database `db`; returns its output (unaligned, tuples only).
  Result<std::string> Psql(const std::string& db, const std::string& sql) {
    std::string out = base_ + "/psql.out";
    RETURN_IF_ERROR(Run({BinDir() + "/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", sock_, "-U",
                         User(), "-d", db, "-c", sql},
                        /*as_owner=*/false, out));
    std::ifstream f(out);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
  }

 private:
  PgCluster() = default;

  Status StartServer() {
    // As root the server runs as an unprivileged user that must reach the directory: /tmp, not $TMPDIR
    // (which may be under a private home).
    const bool root = ::geteuid() == 0;
    const char* tmp = std::getenv("TMPDIR");
    std::string parent = !root && tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
    std::string tmpl = parent + "/fastgpu-pg-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) {
      return Internal("mkdtemp " + tmpl + ": " + std::strerror(errno));
    }
    base_ = tmpl;
    data_ = base_ + "/data";
    sock_ = base_ + "/sock";
    log_ = base_ + "/server.log";
    if (root) {
      const passwd* pw = ::getpwnam("postgres");
      if (pw == nullptr) pw = ::getpwnam("nobody");
      if (pw == nullptr) return Internal("running as root, but neither user postgres nor nobody exists");
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      if (::chown(base_.c_str(), uid_, gid_) != 0) {
        return Internal("chown " + base_ + ": " + std::strerror(errno));
      }
    }
    RETURN_IF_ERROR(InitData(parent));
    RETURN_IF_ERROR(Run({"/bin/mkdir", "-m", "0700", sock_}, /*as_owner=*/true));
    std::vector<std::string> argv = {BinDir() + "/postgres", "-D", data_, "-k", sock_,
                                     "-c", "listen_addresses=" + tcp_.address, "-c", "max_connections=200",
                                     "-c", "shared_buffers=128MB", "-c", "logging_collector=off"};
    if (!tcp_.netns.empty()) {
      const std::string hba = base_ + "/pg_hba.conf";  // trust on the socket and from every TCP client
      std::ofstream(hba) << "local all all trust\nhost all all 0.0.0.0/0 trust\n";
      for (std::string opt : {"port=" + std::to_string(tcp_.port), "hba_file=" + hba}) {
        argv.push_back("-c");
        argv.push_back(opt);
      }
    }
    if (!durable_) {
      for (const char* opt : {"fsync=off", "full_page_writes=off"}) {
        argv.push_back("-c");
        argv.push_back(opt);
      }
    }
    ASSIGN_OR_RETURN(pid_, Spawn(argv, /*as_owner=*/true, log_, /*die_with_parent=*/true, tcp_.netns));
    // Ready when postmaster.pid says so (its 8th line) and the socket exists.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return Internal("the PostgreSQL server exited at start: " + Tail(log_));
      }
      std::ifstream f(data_ + "/postmaster.pid");
      std::string line;
      for (int i = 0; i < 8 && std::getline(f, line); ++i) {
      }
      if (line.rfind("ready", 0) == 0) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Internal("the PostgreSQL server did not become ready in 60 s: " + Tail(log_));
  }

  // initdb takes 0.6-2 s; a copy of an initialised data directory 0.2 s. The first test process of a user
  // leaves one in `parent` (fastgpu-pg-template-UID-SIZE-MTIME, named after the postgres binary so that an
  // upgrade makes a new one); later ones copy it.
  Status InitData(const std::string& parent) {
    struct stat st {};
    std::string server = BinDir() + "/postgres";
    if (::stat(server.c_str(), &st) != 0) return Internal("stat " + server + ": " + std::strerror(errno));
    std::string tmpl_dir = parent + "/fastgpu-pg-template-" + std::to_string(::geteuid()) + "-" +
                           std::to_string(st.st_size) + "-" + std::to_string(st.st_mtime);
    if (::access((tmpl_dir + "/PG_VERSION").c_str(), R_OK) != 0) {
      RETURN_IF_ERROR(Run({BinDir() + "/initdb", "-D", data_, "-U", User(), "-A", "trust", "-E", "UTF8",
                           "--locale=C", "--no-sync", "--no-instructions"},
                          /*as_owner=*/true));
      // Publish a copy atomically (another test process may be doing the same: the first rename wins).
      std::string staging = base_ + "/template";
      RETURN_IF_ERROR(Run({"/bin/cp", "-a", data_, staging}, /*as_owner=*/true));
      if (::rename(staging.c_str(), tmpl_dir.c_str()) != 0) {
        std::error_code ec;
        std::filesystem::remove_all(staging, ec);
      }
      return Status::Ok();
    }
    return Run({"/bin/cp", "-a", tmpl_dir, data_}, /*as_owner=*/true);
  }

  static std::string Tail(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    std::string s = ss.str();
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  }

  static bool WaitExit(pid_t pid, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 10) {
      int status = 0;
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || r < 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Forks and execs argv with stdout/stderr appended to `log`; as the cluster's owner when as_owner and
  // running as root.
  Result<pid_t> Spawn(const std::vector<std::string>& argv, bool as_owner, const std::string& log,
                      bool die_with_parent, const std::string& netns = "") {
    int netns_fd = -1;  // entered by the child before it drops root
    if (!netns.empty()) {
      const std::string path = "/var/run/netns/" + netns;
      netns_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (netns_fd < 0) return Internal("cannot open " + path + ": " + std::strerror(errno));
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const bool switch_user = as_owner && uid_ != 0;
    const uid_t uid = uid_;
    const gid_t gid = gid_;
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      if (netns_fd >= 0) ::close(netns_fd);
      return Internal(std::string("fork: ") + std::strerror(errno));
    }
    if (pid == 0) {
      if (netns_fd >= 0 && ::setns(netns_fd, CLONE_NEWNET) != 0) ::_exit(125);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (devnull >= 0) ::dup2(devnull, 0);
      if (switch_user) {
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(126);
        if (::chdir("/") != 0) ::_exit(126);
      }
      if (die_with_parent) {
        ::prctl(PR_SET_PDEATHSIG, SIGQUIT);
        if (::getppid() != parent) ::_exit(1);
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    if (netns_fd >= 0) ::close(netns_fd);
    return pid;
  }

  // Runs argv to completion; its output goes to `out` (default: the cluster's log).
  Status Run(const std::vector<std::string>& argv, bool as_owner, const std::string& out = "") {
    std::string log = out.empty() ? base_ + "/tools.log" : out;
    if (!out.empty()) ::unlink(out.c_str());
    ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, as_owner, log, /*die_with_parent=*/false));
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return Internal(argv[0] + " failed (status " + std::to_string(status) + "): " + Tail(log));
    }
    return Status::Ok();
  }

  std::string base_, data_, sock_, log_;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  pid_t pid_ = -1;
  bool durable_ = false;
  Tcp tcp_;
  std::mutex mu_;
  std::set<std::string> databases_;
};

// One cluster per test process, started on first use and stopped at exit. Null when it cannot start
// (`error` says why).
inline PgCluster* SharedPgCluster(std::string* error = nullptr) {
  static Result<std::unique_ptr<PgCluster>> cluster = PgCluster::Start();
  if (!cluster.ok()) {
    if (error != nullptr) *error = cluster.status().message();
    return nullptr;
  }
  return cluster->get();
}

}  // namespace fastgpu::testing
