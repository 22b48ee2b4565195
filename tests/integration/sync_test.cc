// End-to-end code sync (docs/sync.md): `fastgpu job submit --sync DIR` runs the job in a copy of DIR (what
// .gitignore excludes left out), an unchanged tree is not uploaded twice, `fastgpu job files` lists and downloads
// what the job wrote; code archives are per project (another project's member can neither use nor probe them).
#include <gtest/gtest.h>
#include <unistd.h>

#include "harness.h"

namespace fastgpu::testing {
namespace {

json Parse(const httplib::Result& r) { return r ? json::parse(r->body, nullptr, false) : json(); }

class SyncTest : public ::testing::Test {
 protected:
  void SetUp() override {
    up_.Start();
    char tmpl[] = "/tmp/fastgpu-sync-it-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    code_ = dir_ + "/code";
    fs::create_directories(code_ + "/data");
    Write(".gitignore", "data/\n*.bin\n");
    Write(".fastgpuignore", "notes.txt\n");
    Write("notes.txt", "private notes\n");
    Write("big.bin", std::string(2 << 20, 'x'));
    Write("data/set.csv", "1,2,3\n");
    Write("train.py", "print('training')\n");
    Write("lib/model.py", "layers = 3\n");
    // The job: shows what it was given, then writes outputs next to its code.
    Write("run.sh",
          "for f in big.bin notes.txt data; do test -e $f && echo present=$f; done\n"
          "cat train.py lib/model.py\n"
          "mkdir -p out/plots && echo 0.97 > out/metrics.txt && echo png > out/plots/loss.png\n"
          "echo uid=$(id -u)\n");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories(fs::path(code_ + "/" + rel).parent_path());
    std::ofstream(code_ + "/" + rel) << text;
  }
  std::string Logs(const std::string& id) {
    auto r = up_.Client()->Get("/v1/jobs/" + id + "/logs");
    return r ? r->body : "";
  }

  UpProcess up_;
  std::string dir_, code_;
};

TEST_F(SyncTest, TheJobRunsInACopyOfTheCodeAndItsOutputsComeBack) {
  auto first = up_.Cli({"job", "submit", "--sync", code_, "--", "sh", "run.sh"});
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  EXPECT_NE(first.err.find("uploaded"), std::string::npos) << first.err;
  const std::string id = Trim(first.out);
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << up_.Job(id).dump() << Logs(id);
  const std::string log = Logs(id);
  EXPECT_EQ(log.find("present="), std::string::npos) << "ignored files reached the job:\n" << log;
  EXPECT_NE(log.find("training"), std::string::npos) << log;
  EXPECT_NE(log.find("layers = 3"), std::string::npos) << log;
  if (::geteuid() == 0) {
    // A root agent runs the job as its project's uid: it read its code and wrote its outputs as that user.
    EXPECT_EQ(log.find("uid=0\n"), std::string::npos) << log;
  }

  // The same tree again: nothing is sent.
  auto second = up_.Cli({"job", "submit", "--sync", code_, "--", "sh", "run.sh"});
  ASSERT_EQ(second.exit_code, 0) << second.out << second.err;
  EXPECT_NE(second.err.find("nothing sent"), std::string::npos) << second.err;
  EXPECT_EQ(up_.Job(Trim(second.out)).value("sync", ""), up_.Job(id).value("sync", ""));

  // The listing shows code and outputs, not what was ignored.
  auto list = up_.Cli({"job", "files", id});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  for (const char* want : {"train.py", "lib/model.py", "out/metrics.txt", "out/plots/loss.png"})
    EXPECT_NE(list.out.find(want), std::string::npos) << want << " missing from\n" << list.out;
  for (const char* absent : {"big.bin", "notes.txt", "set.csv"})
    EXPECT_EQ(list.out.find(absent), std::string::npos) << absent << " listed:\n" << list.out;
  auto json_list = up_.Cli({"job", "files", id, "out", "--output", "json"});
  ASSERT_EQ(json_list.exit_code, 0) << json_list.err;
  EXPECT_EQ(json::parse(json_list.out, nullptr, false)["files"].size(), 3u) << json_list.out;  // plots/, its file, metrics

  // -o DIR downloads the outputs, keeping their layout; one file prints.
  const std::string dest = dir_ + "/results";
  auto dl = up_.Cli({"job", "files", id, "out", "-o", dest});
  ASSERT_EQ(dl.exit_code, 0) << dl.err;
  EXPECT_EQ(ReadFile(dest + "/metrics.txt"), "0.97\n");
  EXPECT_EQ(ReadFile(dest + "/plots/loss.png"), "png\n");
  auto one = up_.Cli({"job", "files", id, "out/metrics.txt"});
  EXPECT_EQ(one.out, "0.97\n");

  // Paths that leave the work dir are refused.
  auto up_dir = up_.Client()->Get("/v1/jobs/" + id + "/files?path=../started");
  ASSERT_TRUE(up_dir);
  EXPECT_EQ(up_dir->status, 400) << up_dir->body;
}

TEST_F(SyncTest, SymlinksAJobLeavesAreNotFollowed) {
  auto r = up_.Cli({"job", "submit", "--sync", code_, "--", "sh", "-c", "ln -s /etc leak && ln -s /etc/hostname host"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string id = Trim(r.out);
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << Logs(id);
  auto c = up_.Client();
  auto through = c->Get("/v1/jobs/" + id + "/files?path=leak/hostname");
  ASSERT_TRUE(through);
  EXPECT_EQ(through->status, 400) << through->body;
  auto link = c->Get("/v1/jobs/" + id + "/files?path=host");
  ASSERT_TRUE(link);
  EXPECT_EQ(link->status, 400) << link->body;
  auto list = Parse(c->Get("/v1/jobs/" + id + "/files"));
  bool shown = false;
  for (const auto& f : list["files"])
    if (f["path"] == "leak") shown = f["type"] == "symlink";
  EXPECT_TRUE(shown) << list.dump();
}

TEST_F(SyncTest, TooLargeATreeIsRefusedNamingItsLargestFiles) {
  std::ofstream(code_ + "/.fastgpuignore") << "";  // nothing extra ignored
  Write("weights.pt", std::string(3 << 20, 'w'));
  up_.Stop(SIGTERM);
  up_.Start({"--max-sync-mib", "2"});
  auto r = up_.Cli({"job", "submit", "--sync", code_, "--", "true"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("weights.pt"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(".fastgpuignore"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  // Under the limit, an archive larger than other request bodies (1 MiB) is taken.
  fs::remove(code_ + "/weights.pt");
  Write("vocab.txt", std::string(3 << 19, 'v'));
  auto ok = up_.Cli({"job", "submit", "--sync", code_, "--", "sh", "-c", "wc -c < vocab.txt"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  ASSERT_TRUE(up_.WaitState(Trim(ok.out), "SUCCEEDED")) << Logs(Trim(ok.out));
  EXPECT_EQ(Trim(Logs(Trim(ok.out))), std::to_string(3 << 19));
}

TEST_F(SyncTest, CodeArchivesBelongToTheirProject) {
  auto admin = up_.Client();
  const std::string alice = up_.NewUser("alice"), bob = up_.NewUser("bob");
  ASSERT_EQ(admin->Post("/v1/projects", R"({"name":"pa","owner":"alice"})", "application/json")->status, 201);
  ASSERT_EQ(admin->Post("/v1/projects", R"({"name":"pb","owner":"bob"})", "application/json")->status, 201);
  const std::string archive = "FGSYNC1\nf 644 9 6\nrun.shecho hi\nEND\n";
  // SHA-256 of `archive`, computed by the server's check: a wrong one is refused first.
  auto wrong = up_.ClientAs(alice)->Put("/v1/projects/pa/blobs/" + std::string(64, 'a'), archive,
                                        "application/octet-stream");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 400) << wrong->body;
  auto bad_name = up_.ClientAs(alice)->Put("/v1/projects/pa/blobs/nothex", archive, "application/octet-stream");
  ASSERT_TRUE(bad_name);
  EXPECT_EQ(bad_name->status, 400) << bad_name->body;
  // An archive of the default project (uploaded by the CLI).
  auto sum = up_.Cli({"job", "submit", "--sync", code_, "--", "true"});  // default project: unrelated
  ASSERT_EQ(sum.exit_code, 0) << sum.err;
  const std::string sha = up_.Job(Trim(sum.out)).value("sync", "");
  ASSERT_EQ(sha.size(), 64u);
  // The default project's archive is unknown to pa and pb.
  for (const std::string p : {"pa", "pb"}) {
    auto probe = Parse(up_.ClientAs(p == "pa" ? alice : bob)->Get("/v1/projects/" + p + "/blobs/" + sha));
    EXPECT_EQ(probe.value("present", true), false) << probe.dump();
  }
  // bob may not probe or upload to pa, nor submit pa's jobs.
  auto probe = up_.ClientAs(bob)->Get("/v1/projects/pa/blobs/" + sha);
  ASSERT_TRUE(probe);
  EXPECT_TRUE(probe->status == 403 || probe->status == 404) << probe->status << probe->body;
  auto put = up_.ClientAs(bob)->Put("/v1/projects/pa/blobs/" + sha, archive, "application/octet-stream");
  ASSERT_TRUE(put);
  EXPECT_TRUE(put->status == 403 || put->status == 404) << put->status << put->body;
  // A job of pb naming an archive pb does not have is refused, and nothing is created.
  auto job = up_.ClientAs(bob)->Post("/v1/jobs", json{{"project", "pb"}, {"command", {"true"}}, {"sync", sha}}.dump(),
                                     "application/json");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->status, 409) << job->body;
  EXPECT_NE(job->body.find("upload it first"), std::string::npos) << job->body;
  // bob, in pb only, names no project: the code goes to pb, where the server files his job.
  auto bobs = up_.Cli({"--token", bob, "job", "submit", "--sync", code_, "--", "true"});
  ASSERT_EQ(bobs.exit_code, 0) << bobs.err;
  EXPECT_EQ(up_.Job(Trim(bobs.out)).value("project", ""), "pb");
  // alice uploads to pa through the CLI; bob cannot read the files of pa's job.
  auto mine = up_.Cli({"job", "submit", "--project", "pa", "--sync", code_, "--", "sh", "run.sh"});
  ASSERT_EQ(mine.exit_code, 0) << mine.err;
  const std::string id = Trim(mine.out);
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << Logs(id);
  auto files = up_.ClientAs(bob)->Get("/v1/jobs/" + id + "/files");
  ASSERT_TRUE(files);
  EXPECT_TRUE(files->status == 403 || files->status == 404) << files->status << files->body;
  auto own = up_.ClientAs(alice)->Get("/v1/jobs/" + id + "/files?path=out/metrics.txt");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->status, 200) << own->body;
  EXPECT_EQ(own->body, "0.97\n");
}

}  // namespace
}  // namespace fastgpu::testing
