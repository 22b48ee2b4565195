// End-to-end: jobs of two projects run as different Unix uids, and a job of one project cannot reach
// another's environment (secrets), files, processes or logs. Needs root (only a root agent switches
// jobs to other uids).
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>

#include "harness.h"

namespace fastgpu::testing {
namespace {

json Parse(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

constexpr char kSecret[] = "pa-s3cret-7b1e9d";

class IsolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: only a root agent runs jobs as their project's uid";
    up_.Start({"--job-uid-range", "1999980000-1999980099"});
  }

  std::string NewUser(const std::string& name) { return up_.NewUser(name); }
  std::unique_ptr<httplib::Client> As(const std::string& token) { return up_.ClientAs(token); }
  std::string SubmitAs(const std::string& token, const json& spec) {
    auto r = As(token)->Post("/v1/jobs", spec.dump(), "application/json");
    EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no response");
    return r && r->status == 201 ? Parse(r).value("id", "") : "";
  }
  std::string Logs(const std::string& id) {
    auto r = up_.Client()->Get("/v1/jobs/" + id + "/logs");
    return r ? r->body : "";
  }

  UpProcess up_;
};

// Each finding of the attacker's script is one line "<attack>=<outcome>".
std::map<std::string, std::string> Findings(const std::string& log) {
  std::map<std::string, std::string> out;
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

TEST_F(IsolationTest, AJobOfOneProjectCannotReachAnotherProjectsJob) {
  auto admin = up_.Client();
  const std::string alice = NewUser("alice"), bob = NewUser("bob");
  ASSERT_EQ(admin->Post("/v1/projects", R"({"name":"pa","owner":"alice"})", "application/json")->status, 201);
  ASSERT_EQ(admin->Post("/v1/projects", R"({"name":"pb","owner":"bob"})", "application/json")->status, 201);
  const int64_t uid_a = up_.GetJson("/v1/projects/pa").value("run_as_uid", 0);
  const int64_t uid_b = up_.GetJson("/v1/projects/pb").value("run_as_uid", 0);
  EXPECT_GE(uid_a, 1999980000);
  EXPECT_LE(uid_a, 1999980099);
  EXPECT_GE(uid_b, 1999980000);
  EXPECT_NE(uid_a, uid_b);
  auto shown = up_.Cli({"project", "get", "pb"});
  EXPECT_NE(shown.out.find("uid " + std::to_string(uid_b)), std::string::npos) << shown.out << shown.err;

  ASSERT_EQ(As(alice)
                ->Put("/v1/projects/pa/secrets/PA_TOKEN", json{{"value", kSecret}}.dump(), "application/json")
                ->status,
            200);
  // pa's victim: proves it holds the secret (by its length), writes a file, then waits.
  const std::string victim =
      SubmitAs(alice, {{"project", "pa"},
                       {"secrets", {"PA_TOKEN"}},
                       {"command", {"sh", "-c", "id -u; echo len=${#PA_TOKEN}; echo mine > data; exec sleep 300"}}});
  ASSERT_FALSE(victim.empty());
  ASSERT_TRUE(up_.WaitState(victim, "RUNNING")) << up_.Job(victim).dump();
  ASSERT_TRUE(WaitFor([&] { return Logs(victim).find("len=") != std::string::npos; })) << Logs(victim);
  EXPECT_EQ(Logs(victim), std::to_string(uid_a) + "\nlen=" + std::to_string(sizeof(kSecret) - 1) + "\n");
  const int64_t pid = up_.Job(victim).value("pid", 0);
  ASSERT_GT(pid, 0);
  const std::string p = std::to_string(pid);
  const std::string work = up_.home() + "/jobs/" + victim + "/work";
  const std::string log = up_.home() + "/logs/" + victim + ".log";

  // pb's attacker repeats the attacks; each line says whether it got through.
  auto attempt = [](const std::string& name, const std::string& cmd) {
    return "if (" + cmd + ") >/dev/null 2>&1; then echo " + name + "=GOT-THROUGH; else echo " + name +
           "=refused; fi; ";
  };
  // `with_kill` = false leaves the victim alive when the probes run with its own uid (the control below).
  auto probes = [&](bool with_kill) {
    std::string script = "echo uid=$(id -u); ";
    script += attempt("environ", "cat /proc/" + p + "/environ");
    script += "echo environ-scan=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^PA_TOKEN='); ";
    script += attempt("stdout-fd", "cat /proc/" + p + "/fd/1");
    script += attempt("relative-list", "ls ../../" + victim + "/work");
    script += attempt("relative-read", "cat ../../" + victim + "/work/data");
    if (with_kill) script += attempt("relative-write", "echo planted > ../../" + victim + "/work/planted");
    script += attempt("jobdir-list", "ls ../../" + victim);
    script += attempt("jobs-list", "ls ../..");
    script += attempt("absolute-list", "ls " + work);
    if (with_kill) script += attempt("absolute-write", "echo planted > " + work + "/planted");
    script += attempt("signal", "kill -0 " + p);
    if (with_kill) script += attempt("kill", "kill -9 " + p);
    script += attempt("log-read", "cat " + log);
    script += attempt("relative-log-read", "cat ../../../logs/" + victim + ".log");
    return script;
  };
  const std::string script = probes(true);
  const std::string attacker = SubmitAs(bob, {{"project", "pb"}, {"command", {"sh", "-c", script}}});
  ASSERT_FALSE(attacker.empty());
  ASSERT_TRUE(up_.WaitState(attacker, "SUCCEEDED")) << up_.Job(attacker).dump() << Logs(attacker);

  const std::string out = Logs(attacker);
  auto f = Findings(out);
  EXPECT_EQ(f["uid"], std::to_string(uid_b)) << out;
  EXPECT_EQ(f["environ-scan"], "0") << out;
  for (const char* attack : {"environ", "stdout-fd", "relative-list", "relative-read", "relative-write",
                             "jobdir-list", "jobs-list", "absolute-list", "absolute-write", "signal", "kill",
                             "log-read", "relative-log-read"}) {
    EXPECT_EQ(f[attack], "refused") << attack << "\n" << out;
  }
  EXPECT_EQ(out.find(kSecret), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(work + "/planted"));

  // pa's job is untouched: still running, same process, its file intact.
  EXPECT_EQ(up_.Job(victim).value("state", ""), "RUNNING") << up_.Job(victim).dump();
  EXPECT_EQ(up_.Job(victim).value("pid", 0), pid);
  EXPECT_EQ(::kill(static_cast<pid_t>(pid), 0), 0);
  EXPECT_EQ(Trim(ReadFile(work + "/data")), "mine");

  // Control: the same probes from a second job of pa itself (same uid) do get through where a uid's own
  // rights reach, so the refusals above come from the uids differing, not from broken probes.
  const std::string sibling = SubmitAs(alice, {{"project", "pa"}, {"command", {"sh", "-c", probes(false)}}});
  ASSERT_FALSE(sibling.empty());
  ASSERT_TRUE(up_.WaitState(sibling, "SUCCEEDED")) << up_.Job(sibling).dump() << Logs(sibling);
  const std::string control = Logs(sibling);
  auto c = Findings(control);
  EXPECT_EQ(c["uid"], std::to_string(uid_a)) << control;
  EXPECT_EQ(c["environ-scan"], "1") << control;
  for (const char* attack : {"environ", "relative-list", "relative-read", "signal"}) {
    EXPECT_EQ(c[attack], "GOT-THROUGH") << attack << "\n" << control;
  }
  // Logs are the agent's and job dirs are listed by nobody, even for the job's own project.
  EXPECT_EQ(c["log-read"], "refused") << control;
  EXPECT_EQ(c["jobdir-list"], "refused") << control;
  EXPECT_EQ(up_.Job(victim).value("state", ""), "RUNNING");
}

TEST_F(IsolationTest, ProjectUidsSurviveARestartAndAreNeverShared) {
  auto admin = up_.Client();
  ASSERT_EQ(admin->Post("/v1/projects", R"({"name":"pc"})", "application/json")->status, 201);
  const int64_t uid_c = up_.GetJson("/v1/projects/pc").value("run_as_uid", 0);
  ASSERT_GT(uid_c, 0);
  up_.Stop(SIGTERM);
  up_.Start({"--job-uid-range", "1999980000-1999980099"});
  EXPECT_EQ(up_.GetJson("/v1/projects/pc").value("run_as_uid", 0), uid_c);
  admin = up_.Client();
  ASSERT_EQ(admin->Post("/v1/projects", R"({"name":"pd"})", "application/json")->status, 201);
  EXPECT_GT(up_.GetJson("/v1/projects/pd").value("run_as_uid", 0), uid_c);
  const std::string id = up_.Submit({{"project", "pc"}, {"command", {"id", "-u"}}});
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << up_.Job(id).dump();
  EXPECT_EQ(Trim(up_.Client()->Get("/v1/jobs/" + id + "/logs")->body), std::to_string(uid_c));
  // A bad range is refused at start with the flag's name.
  up_.Stop(SIGTERM);
  auto bad = up_.Cli({"up", "--listen", "127.0.0.1:0", "--job-uid-range", "10-20"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE((bad.out + bad.err).find("--job-uid-range"), std::string::npos) << bad.out << bad.err;
}

}  // namespace
}  // namespace fastgpu::testing
