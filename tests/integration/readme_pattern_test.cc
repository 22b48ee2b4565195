// The README's everyday pattern by a normal (unprivileged) user: `fastgpu up` as that user, then from the code
// directory `fastgpu job submit --sync . -- python3 train.py` and `--here`; the job reads its code and writes its
// outputs, which `fastgpu job files` fetches. (The root case: CliTest.HereRunsTheJobInTheSubmitDirectory and
// SyncTest.) Run as root, the test plays a throwaway user: a uid with no passwd entry (setpriv), its home a temp dir
// the test owns; run as another user, it is that user.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "harness.h"

namespace fastgpu::testing {
namespace {

class ReadmePatternTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/python3 (Debian's python3)";
    char tmpl[] = "/tmp/fastgpu-readme-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);
    home_ = dir_ + "/home";  // the user's HOME; FASTGPU_HOME is its .fastgpu
    code_ = dir_ + "/code";
    fs::create_directories(home_);
    fs::create_directories(code_);
    std::ofstream(code_ + "/train.py") << "import os\n"
                                          "data = open('data.txt').read().strip()\n"
                                          "os.makedirs('out', exist_ok=True)\n"
                                          "with open('out/model.txt', 'w') as f:\n"
                                          "    f.write('trained on %s by uid %d\\n' % (data, os.getuid()))\n"
                                          "print('read', data, flush=True)\n";
    std::ofstream(code_ + "/data.txt") << "data-7\n";
    std::ofstream(code_ + "/.fastgpuignore") << "out/\n";
    if (::geteuid() == 0) {
      uid_ = 1'850'000'000 + static_cast<uid_t>(::getpid() % 100'000);
      for (const auto& e : fs::recursive_directory_iterator(dir_)) ::lchown(e.path().c_str(), uid_, uid_);
      ::chown(dir_.c_str(), uid_, uid_);
      as_user_ = "setpriv --reuid=" + std::to_string(uid_) + " --regid=" + std::to_string(uid_) + " --clear-groups ";
      CliResult v = Run({"--version"}, dir_);
      if (v.exit_code != 0)
        GTEST_SKIP() << "uid " << uid_ << " cannot run " << Bin() << " (" << Trim(v.err)
                     << "): the directories above the binary must let others in";
    } else {
      uid_ = ::getuid();
    }
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // The user's environment: nothing of the test's own (a root's PATH may name interpreters only root can use).
  std::string Env() const {
    return "env -i HOME='" + home_ + "' FASTGPU_HOME='" + home_ + "/.fastgpu' PATH=/usr/local/bin:/usr/bin:/bin " +
           as_user_;
  }
  // The CLI as the user, in `cwd`.
  CliResult Run(const std::vector<std::string>& args, const std::string& cwd) const {
    std::string cmd = "cd '" + cwd + "' && " + Env() + "'" + Bin() + "'";
    for (const auto& a : args) cmd += " '" + a + "'";
    const std::string out = dir_ + "/.cli.out", err = dir_ + "/.cli.err";
    cmd += " </dev/null >'" + out + "' 2>'" + err + "'";
    const int rc = std::system(cmd.c_str());
    CliResult r{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, ReadFile(out), ReadFile(err)};
    fs::remove(out);
    fs::remove(err);
    return r;
  }
  void StartUp() {
    const std::string cmd = "exec " + Env() + "'" + Bin() + "' up --listen 127.0.0.1:0 --sim-gpus 1xA100-80GB >'" +
                            dir_ + "/up.log' 2>&1";
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    ASSERT_EQ(posix_spawn(&pid_, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
    ASSERT_TRUE(WaitFor([&] { return fs::exists(home_ + "/.fastgpu/url"); })) << ReadFile(dir_ + "/up.log");
  }
  std::string State(const std::string& id) const {
    CliResult r = Run({"job", "get", id, "--output", "json"}, dir_);
    json j = json::parse(r.out, nullptr, false);
    return j.is_object() ? j.value("state", "") : "";
  }

  std::string dir_, home_, code_, as_user_;
  uid_t uid_ = 0;
  pid_t pid_ = -1;
};

TEST_F(ReadmePatternTest, ANormalUserRunsTheReadmePatternAndFetchesTheOutputs) {
  StartUp();
  const std::string whoami = "by uid " + std::to_string(uid_);
  // --sync .: the code is copied to the job's own work dir, its outputs are fetched with `job files`.
  CliResult sub = Run({"job", "submit", "--sync", ".", "--", "python3", "train.py"}, code_);
  ASSERT_EQ(sub.exit_code, 0) << sub.err << ReadFile(dir_ + "/up.log");
  const std::string synced = Trim(sub.out);
  ASSERT_TRUE(WaitFor([&] { return State(synced) == "SUCCEEDED"; }, std::chrono::seconds(30)))
      << State(synced) << Run({"job", "logs", synced}, dir_).out << Run({"job", "get", synced}, dir_).out;
  EXPECT_EQ(Run({"job", "logs", synced}, dir_).out, "read data-7\n");
  CliResult model = Run({"job", "files", synced, "out/model.txt"}, dir_);
  EXPECT_EQ(model.exit_code, 0) << model.err;
  EXPECT_EQ(model.out, "trained on data-7 " + whoami + "\n");
  CliResult got = Run({"job", "files", synced, "out", "-o", dir_ + "/results"}, dir_);
  EXPECT_EQ(got.exit_code, 0) << got.err;
  EXPECT_EQ(ReadFile(dir_ + "/results/model.txt"), "trained on data-7 " + whoami + "\n");
  CliResult listing = Run({"job", "files", synced}, dir_);
  EXPECT_NE(listing.out.find("train.py"), std::string::npos) << listing.out;

  // --here: the job runs in the submit directory itself and leaves its outputs there, owned by the user.
  sub = Run({"job", "submit", "--here", "--", "python3", "train.py"}, code_);
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string here = Trim(sub.out);
  ASSERT_TRUE(WaitFor([&] { return State(here) == "SUCCEEDED"; }, std::chrono::seconds(30)))
      << State(here) << Run({"job", "logs", here}, dir_).out;
  EXPECT_EQ(ReadFile(code_ + "/out/model.txt"), "trained on data-7 " + whoami + "\n");
  struct stat st {};
  ASSERT_EQ(::stat((code_ + "/out/model.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, uid_);
}

}  // namespace
}  // namespace fastgpu::testing
