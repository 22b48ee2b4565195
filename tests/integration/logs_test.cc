// `fastgpu job logs --tail N --since D --timestamps` on the real binary: the node records when each line was
// written, the server reads only what it needs, follow and array tasks combine with them, logs written before
// times were recorded still work, and the REST API refuses bad values with clear errors.
#include <gtest/gtest.h>
#include <stdio.h>

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "harness.h"

namespace fastgpu::testing {
namespace {

// One line of `job logs --timestamps`: its time and its text.
struct Stamped {
  std::string time;
  std::string text;
};

std::vector<Stamped> SplitStamped(const std::string& out) {
  std::vector<Stamped> lines;
  std::istringstream in(out);
  std::string l;
  while (std::getline(in, l)) {
    const size_t sp = l.find(' ');
    lines.push_back({l.substr(0, sp), sp == std::string::npos ? "" : l.substr(sp + 1)});
  }
  return lines;
}

int64_t Millis(const std::string& rfc3339) {
  auto t = ParseTimestamp(rfc3339);
  return t.ok() ? *t : -1;
}

int64_t WallMillis() { return SystemClock().NowMillis(); }

// A job that prints `first`, waits for the file `gate`, then prints `second` (no sleeps in the test: it opens the
// gate once it has seen the first part).
std::string GatedScript(const std::string& first, const std::string& gate, const std::string& second) {
  return "printf '" + first + "'; while [ ! -e '" + gate + "' ]; do sleep 0.01; done; printf '" + second + "'";
}

class LogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-logs-XXXXXX";
    shared_ = ::mkdtemp(tmpl);
    ::chmod(shared_.c_str(), 01777);  // jobs run as their project's uid when the test runs as root
    up_.Start();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(shared_, ec);
  }
  // Waits until every line of the job's log has its time (the node records it a few ms after the write).
  std::vector<Stamped> WaitStamped(const std::string& id, size_t lines) {
    std::vector<Stamped> got;
    WaitFor([&] {
      got = SplitStamped(up_.Cli({"job", "logs", id, "--timestamps"}).out);
      if (got.size() != lines) return false;
      for (const auto& s : got)
        if (s.time == "-") return false;
      return true;
    });
    return got;
  }

  UpProcess up_;
  std::string shared_;
};

TEST_F(LogsTest, TailSinceAndTimestampsOfAJobThatPrintsOverTime) {
  const std::string gate = shared_ + "/gate";
  auto sub = up_.Cli({"job", "submit", "--", "sh", "-c",
                      GatedScript("line 1\\nline 2\\nline 3\\n", gate, "line 4\\nline 5\\n")});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  auto early = WaitStamped(id, 3);
  ASSERT_EQ(early.size(), 3u);
  const int64_t t1 = Millis(early[0].time);
  ASSERT_GT(t1, 0) << early[0].time;
  EXPECT_NEAR(static_cast<double>(t1), static_cast<double>(WallMillis()), 60'000.0);
  for (const auto& s : early) EXPECT_EQ(s.time, early[0].time);  // written at once: one time
  // The rest is written once the clock has passed t1 (so their times differ).
  ASSERT_TRUE(WaitFor([&] { return WallMillis() > t1 + 2; }));
  const int64_t opened = WallMillis();
  { std::ofstream(gate) << "go"; }
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << up_.Job(id).dump();

  EXPECT_EQ(up_.Cli({"job", "logs", id}).out, "line 1\nline 2\nline 3\nline 4\nline 5\n");
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--tail", "2"}).out, "line 4\nline 5\n");
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--tail", "0"}).out, "");
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--tail", "99"}).out, "line 1\nline 2\nline 3\nline 4\nline 5\n");
  auto all = SplitStamped(up_.Cli({"job", "logs", id, "-t"}).out);
  ASSERT_EQ(all.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(all[static_cast<size_t>(i)].text, "line " + std::to_string(i + 1));
  EXPECT_EQ(all[0].time.size(), 24u);  // 2026-12-08T10:00:00.123Z
  EXPECT_EQ(all[2].time, early[0].time);
  EXPECT_GE(Millis(all[3].time), opened);
  EXPECT_LE(Millis(all[3].time), WallMillis());
  // --since a time between the two parts, and durations back from now.
  const std::string between = FormatTimestamp(t1 + 1);
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--since", between}).out, "line 4\nline 5\n");
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--since", "1h"}).out, "line 1\nline 2\nline 3\nline 4\nline 5\n");
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--since", FormatTimestamp(WallMillis() + 60'000)}).out, "");
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--since", "1h", "--tail", "1", "-t"}).out, all[4].time + " line 5\n");
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--since", between, "--tail", "9", "-f"}).out, "line 4\nline 5\n");

  // Bad values: one line on stderr, exit 2 (usage), nothing printed.
  auto bad_since = up_.Cli({"job", "logs", id, "--since", "yesterday"});
  EXPECT_EQ(bad_since.exit_code, 2);
  EXPECT_EQ(bad_since.out, "");
  EXPECT_NE(bad_since.err.find("--since 'yesterday' is neither a duration"), std::string::npos) << bad_since.err;
  auto bad_tail = up_.Cli({"job", "logs", id, "--tail", "-3"});
  EXPECT_EQ(bad_tail.exit_code, 2) << bad_tail.err;
  EXPECT_EQ(bad_tail.out, "");

  // The REST API validates strictly, with JSON errors.
  for (const std::string q : {"tail=-1", "tail=ten", "since=yesterday", "since=-5m", "timestamps=maybe",
                              "follow=yes"}) {
    auto r = up_.Client()->Get("/v1/jobs/" + id + "/logs?" + q);
    ASSERT_TRUE(r) << q;
    EXPECT_EQ(r->status, 400) << q << " " << r->body;
    json err = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(err.is_object()) << r->body;
    EXPECT_EQ(err["error"]["code"], "invalid_argument") << r->body;
    const std::string name = q.substr(0, q.find('='));
    EXPECT_NE(err["error"]["message"].get<std::string>().find(name), std::string::npos) << r->body;
  }
  auto rest = up_.Client()->Get("/v1/jobs/" + id + "/logs?tail=1&timestamps=true");
  ASSERT_TRUE(rest);
  EXPECT_EQ(rest->status, 200);
  EXPECT_EQ(rest->body, all[4].time + " line 5\n");
  EXPECT_EQ(rest->get_header_value("X-FastGPU-Log-Offset"), std::to_string(4 * 7));

  // The times live next to the log: a restart of `fastgpu up` keeps them.
  up_.Stop(SIGTERM);
  up_.Start();
  EXPECT_EQ(SplitStamped(up_.Cli({"job", "logs", id, "-t"}).out).size(), 5u);
  EXPECT_EQ(up_.Cli({"job", "logs", id, "-t"}).out, up_.Cli({"job", "logs", id, "-t"}).out);
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--since", between}).out, "line 4\nline 5\n");
}

// Follow with a tail: the last lines so far, then what the job prints until it ends.
TEST_F(LogsTest, FollowWithTailShowsTheLastLinesThenNewOnes) {
  const std::string gate = shared_ + "/gate";
  auto sub = up_.Cli({"job", "submit", "--", "sh", "-c", GatedScript("a\\nb\\nc\\n", gate, "d\\ne\\n")});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_EQ(WaitStamped(id, 3).size(), 3u);
  // The CLI runs while the job waits; the test reads its output as it comes.
  const std::string cmd = "FASTGPU_HOME='" + up_.home() + "' '" + Bin() + "' job logs -f --tail 2 --timestamps " + id;
  FILE* cli = ::popen(cmd.c_str(), "r");
  ASSERT_NE(cli, nullptr);
  std::string out;
  char buf[4096];
  while (out.find("c\n") == std::string::npos && ::fgets(buf, sizeof(buf), cli) != nullptr) out += buf;
  auto first = SplitStamped(out);
  ASSERT_EQ(first.size(), 2u) << out;
  EXPECT_EQ(first[0].text, "b");
  EXPECT_EQ(first[1].text, "c");
  EXPECT_FALSE(up_.Job(id).value("state", "") == "SUCCEEDED");  // still following a running job
  { std::ofstream(gate) << "go"; }
  while (::fgets(buf, sizeof(buf), cli) != nullptr) out += buf;
  const int rc = ::pclose(cli);
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  auto lines = SplitStamped(out);
  ASSERT_EQ(lines.size(), 4u) << out;
  EXPECT_EQ(lines[2].text, "d");
  EXPECT_EQ(lines[3].text, "e");
  EXPECT_GE(Millis(lines[2].time), Millis(lines[1].time));
  EXPECT_NE(lines[3].time, "-");
}

// A log written before times were recorded (no index): still shown; --timestamps and --since say they cannot know.
TEST_F(LogsTest, ALogWithoutRecordedTimesStillWorks) {
  auto sub = up_.Cli({"job", "submit", "--", "sh", "-c", "printf 'old 1\\nold 2\\n'"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  ASSERT_TRUE(up_.WaitState(id, "SUCCEEDED")) << up_.Job(id).dump();
  const std::string index = up_.home() + "/logs/" + id + ".log.times";
  ASSERT_TRUE(fs::exists(index));
  fs::remove(index);
  auto stamped = up_.Cli({"job", "logs", id, "--timestamps"});
  EXPECT_EQ(stamped.exit_code, 0) << stamped.err;
  EXPECT_EQ(stamped.out, "- old 1\n- old 2\n");
  EXPECT_NE(stamped.err.find("has no recorded times"), std::string::npos) << stamped.err;
  auto since = up_.Cli({"job", "logs", id, "--since", "1h"});
  EXPECT_EQ(since.out, "old 1\nold 2\n");  // none is known to be older
  EXPECT_NE(since.err.find("--since cannot leave any line out"), std::string::npos) << since.err;
  // The log last changed before this time: every line is older.
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--since", FormatTimestamp(WallMillis() + 60'000)}).out, "");
  EXPECT_EQ(up_.Cli({"job", "logs", id, "--tail", "1"}).out, "old 2\n");
  auto plain = up_.Cli({"job", "logs", id});
  EXPECT_EQ(plain.out, "old 1\nold 2\n");
  EXPECT_EQ(plain.err, "");
}

// Array tasks: --task with --tail and --timestamps.
TEST_F(LogsTest, ArrayTaskLogsTakeTailAndTimestamps) {
  auto sub = up_.Cli({"job", "submit", "--array", "0-1", "--gpus", "0.1", "--", "sh", "-c",
                      "echo start $FASTGPU_ARRAY_INDEX; echo end $FASTGPU_ARRAY_INDEX"});
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = Trim(sub.out);
  auto wait = up_.Cli({"job", "wait", id, "--timeout", "60s"});
  ASSERT_EQ(wait.exit_code, 0) << wait.out << wait.err;
  auto tail = up_.Cli({"job", "logs", id, "--task", "1", "--tail", "1", "--timestamps"});
  EXPECT_EQ(tail.exit_code, 0) << tail.err;
  auto lines = SplitStamped(tail.out);
  ASSERT_EQ(lines.size(), 1u) << tail.out;
  EXPECT_EQ(lines[0].text, "end 1");
  EXPECT_GT(Millis(lines[0].time), 0) << tail.out;
}

}  // namespace
}  // namespace fastgpu::testing
