#include "cli/table.h"

#include <gtest/gtest.h>

#include <sstream>

#include "cli/render.h"

namespace fastgpu::cli {
namespace {

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Removes "ESC [ digits/; m" sequences.
std::string StripAnsi(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\033' && i + 1 < s.size() && s[i + 1] == '[') {
      size_t j = i + 2;
      while (j < s.size() && (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == ';')) ++j;
      if (j < s.size() && s[j] == 'm') {
        i = j;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

TEST(Table, ColumnsLineUp) {
  Table t({"ID", "NAME", "STATE"});
  t.AddRow({"j-1", "a", "RUNNING"});
  t.AddRow({"j-1000", "a-much-longer-name", "QUEUED"});
  auto lines = Lines(t.Render(false));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "ID      NAME                STATE");
  EXPECT_EQ(lines[1], "j-1     a                   RUNNING");
  EXPECT_EQ(lines[2], "j-1000  a-much-longer-name  QUEUED");
}

TEST(Table, NoTrailingSpacesAndMissingCellsAreEmpty) {
  Table t({"A", "B", "LONG-HEADER"});
  t.AddRow({"x"});
  for (const auto& l : Lines(t.Render(false))) {
    ASSERT_FALSE(l.empty());
    EXPECT_NE(l.back(), ' ') << "'" << l << "'";
  }
}

TEST(Table, ColourDoesNotChangeAlignment) {
  Table t({"ID", "STATE", "NODE"});
  t.AddRow({"j-1", Cell("RUNNING", Color::kCyan), "n1"});
  t.AddRow({"j-22", Cell("FAILED", Color::kRed), "node-2"});
  std::string plain = t.Render(false);
  std::string coloured = t.Render(true);
  EXPECT_NE(plain, coloured);
  EXPECT_NE(coloured.find("\033[31mFAILED\033[0m"), std::string::npos);
  EXPECT_EQ(StripAnsi(coloured), plain);
  EXPECT_EQ(plain.find('\033'), std::string::npos);
}

TEST(Table, WidthCountsCodePoints) {
  Table t({"NAME", "X"});
  t.AddRow({"\xC3\xA9t\xC3\xA9", "1"});  // "été": 3 columns, 5 bytes
  auto lines = Lines(t.Render(false));
  EXPECT_EQ(lines[0], "NAME  X");
  EXPECT_EQ(lines[1], "\xC3\xA9t\xC3\xA9   1");
}

TEST(Truncate, CutsWithEllipsisAndFlattensNewlines) {
  EXPECT_EQ(Truncate("short", 10), "short");
  EXPECT_EQ(Truncate("abcdefghijkl", 8), "abcde...");
  EXPECT_EQ(Truncate("a\nb", 10), "a b");
  EXPECT_EQ(DisplayWidth(Truncate(std::string(100, 'x'), 40)), 40u);
}

TEST(Render, QueuedJobsShowTheirExpectedStartAndDeadlineWarning) {
  const UnixMillis now = 1'800'000'000'000;
  api::Job j;
  j.id = "j-8";
  j.spec.command = {"python"};
  j.state = api::JobState::kQueued;
  j.created_at = now - 60'000;
  j.spec.begin_at = now + 3'600'000;
  j.spec.deadline_at = now + 7'200'000;
  j.expected_start_at = now + 3'600'000;
  j.deadline_warning = "deadline unlikely: expected to start at ...";
  std::string detail = RenderJobDetail(j, now, false);
  EXPECT_NE(detail.find("Begin:"), std::string::npos) << detail;
  EXPECT_NE(detail.find("Deadline:"), std::string::npos) << detail;
  // The value of a "Key:" line of the detail view.
  auto value = [](const std::string& text, const std::string& key) {
    for (const auto& l : Lines(text))
      if (l.rfind(key + ":", 0) == 0) return l.substr(l.find_first_not_of(' ', key.size() + 1));
    return std::string();
  };
  EXPECT_EQ(value(detail, "Expected start"), FormatTimestamp(now + 3'600'000) + " (in 1h)") << detail;
  EXPECT_EQ(value(detail, "Warning"), "deadline unlikely: expected to start at ...") << detail;
  auto lines = Lines(RenderJobList({j}, now, false));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("START"), std::string::npos);
  EXPECT_NE(lines[1].find("in 1h"), std::string::npos) << lines[1];

  j.expected_start_at = 0;
  j.expected_start_note = "the GPUs it needs are held by running or earlier queued jobs with no runtime limit";
  detail = RenderJobDetail(j, now, false);
  EXPECT_EQ(value(detail, "Expected start").rfind("unknown: the GPUs it needs are held", 0), 0u) << detail;
  EXPECT_NE(Lines(RenderJobList({j}, now, false))[1].find("unknown"), std::string::npos);
  j.state = api::JobState::kRunning;  // only queued jobs have one
  EXPECT_EQ(RenderJobDetail(j, now, false).find("Expected start"), std::string::npos);
}

TEST(RenderJobDetail, ShowsPreemptionAndEarlierService) {
  const UnixMillis now = 1'800'000'000'000;
  api::Job j;
  j.id = "j-9";
  j.spec.command = {"python"};
  j.state = api::JobState::kQueued;
  j.created_at = now - 60'000;
  std::string detail = RenderJobDetail(j, now, false);
  EXPECT_EQ(detail.find("Preemptible"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("Earlier service"), std::string::npos) << detail;
  j.spec.preemptible = true;
  j.spec.checkpoint_signal = 12;
  j.spec.checkpoint_grace_s = 90;
  j.attained_gpu_ms = 2 * 3'600'000;
  detail = RenderJobDetail(j, now, false);
  EXPECT_NE(detail.find("Preemptible:      yes: SIGUSR2, then SIGTERM after 1m30s\n"), std::string::npos) << detail;
  EXPECT_NE(detail.find("Earlier service:  2h of GPU time (preempted or migrated attempts)\n"), std::string::npos)
      << detail;
}

TEST(ShortDuration, Formats) {
  EXPECT_EQ(ShortDuration(0), "0s");
  EXPECT_EQ(ShortDuration(45'000), "45s");
  EXPECT_EQ(ShortDuration(90'000), "1m30s");
  EXPECT_EQ(ShortDuration(30 * 60'000), "30m");
  EXPECT_EQ(ShortDuration(5400'000), "1h30m");
  EXPECT_EQ(ShortDuration(3 * 86400'000LL), "3d");
  EXPECT_EQ(ShortDuration(-1), "-");
}

TEST(Render, JobListHasTheColumnsAndTruncatesReason) {
  api::Job j;
  j.id = "j-7";
  j.spec.name = "train";
  j.spec.command = {"python"};
  j.spec.gpus_milli = 250;
  j.state = api::JobState::kRunning;
  j.node = "n1";
  j.created_at = 1'000'000;
  j.started_at = 1'060'000;
  j.reason = std::string(100, 'r');
  std::string out = RenderJobList({j}, 1'120'000, false);
  auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].rfind("ID", 0), 0u);
  for (const char* h : {"NAME", "STATE", "GPUS", "TYPE", "NODE", "AGE", "DURATION", "REASON"})
    EXPECT_NE(lines[0].find(h), std::string::npos) << h;
  EXPECT_NE(lines[1].find("0.25"), std::string::npos);
  EXPECT_NE(lines[1].find("RUNNING"), std::string::npos);
  EXPECT_NE(lines[1].find("2m"), std::string::npos);  // age
  EXPECT_NE(lines[1].find("1m"), std::string::npos);  // duration
  EXPECT_NE(lines[1].find("..."), std::string::npos);
  EXPECT_EQ(lines[1].find(std::string(60, 'r')), std::string::npos);
}

TEST(Render, SimulatedGpusAndNodesAreLabelled) {
  api::Gpu g;
  g.uuid = "GPU-1";
  g.type = "A100-80GB";
  g.node = "n1";
  g.simulated = true;
  g.memory_total_mib = 81920;
  g.power_mw = 250'000;
  api::Gpu real = g;
  real.uuid = "GPU-2";
  real.simulated = false;
  std::string out = RenderGpuList({g, real}, false);
  auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[1].find("A100-80GB (simulated)"), std::string::npos);
  EXPECT_EQ(lines[2].find("simulated"), std::string::npos);
  EXPECT_NE(lines[1].find("0/81920 MiB"), std::string::npos);
  EXPECT_NE(lines[1].find("250W"), std::string::npos);

  api::Node n;
  n.name = "n1";
  n.simulated = true;
  n.gpu_count = 4;
  EXPECT_NE(RenderNodeList({n}, 0, false).find("simulated"), std::string::npos);
}

TEST(Render, OutcomeLine) {
  api::Job j;
  j.id = "j-3";
  j.state = api::JobState::kFailed;
  j.exit_code = 3;
  j.reason = "process exited with code 3";
  EXPECT_EQ(JobOutcomeLine(j), "j-3 FAILED (exit code 3): process exited with code 3");
}

}  // namespace
}  // namespace fastgpu::cli
