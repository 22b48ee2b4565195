// The log time index (agent/log_times.h) and the readers built on it: tail, since, timestamps.
#include "agent/log_times.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/executor.h"
#include "agent/test_util.h"
#include "common/clock.h"

namespace fastgpu::agent {
namespace {

using ::testing::HasSubstr;

// A log and its index in memory; counts what the readers read.
class MemLog final : public LogReader {
 public:
  std::string data;
  std::vector<LogTime> times;
  int64_t modified_ms = 0;
  int64_t bytes_read = 0;
  int64_t max_read = 0;
  int64_t reads = 0;

  // Appends `text` as one record at `ms`.
  void Write(const std::string& text, int64_t ms) {
    times.push_back({static_cast<int64_t>(data.size()), static_cast<int64_t>(data.size() + text.size()), ms});
    data += text;
    modified_ms = ms;
  }
  Result<LogChunk> Read(int64_t offset, int64_t max_bytes) override {
    ++reads;
    LogChunk c;
    c.size = static_cast<int64_t>(data.size());
    c.modified_ms = modified_ms;
    if (offset < c.size) c.data = data.substr(static_cast<size_t>(offset), static_cast<size_t>(max_bytes));
    c.next_offset = offset + static_cast<int64_t>(c.data.size());
    c.eof = c.next_offset >= c.size;
    bytes_read += static_cast<int64_t>(c.data.size());
    max_read = std::max<int64_t>(max_read, static_cast<int64_t>(c.data.size()));
    return c;
  }
  Result<LogTimes> Times(int64_t first, int64_t max_records) override {
    LogTimes t;
    t.total = static_cast<int64_t>(times.size());
    for (int64_t i = first; i < t.total && i < first + max_records; ++i) t.records.push_back(times[static_cast<size_t>(i)]);
    return t;
  }
};

std::string Stamped(MemLog& log, int64_t from, bool final = true) {
  auto line = AtLineStart(log, from);
  EXPECT_TRUE(line.ok());
  LogStamper s(log, from, *line);
  std::string out;
  std::string_view rest = std::string_view(log.data).substr(static_cast<size_t>(from));
  while (!rest.empty()) {
    auto used = s.Stamp(rest, final, &out);
    EXPECT_TRUE(used.ok());
    if (*used == 0) break;
    rest.remove_prefix(*used);
  }
  return out;
}

constexpr int64_t kT0 = 1'796'000'000'000;  // 2026-11-29T...

TEST(LogTimesTest, RecordsRoundTripThroughTheFile) {
  const std::string dir = ::testing::TempDir() + "/log_times_file_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string path = LogTimesPath(dir + "/j-1.log");
  EXPECT_EQ(path, dir + "/j-1.log.times");
  auto none = ReadLogTimesFile(path, 0, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->total, 0);
  ASSERT_TRUE(AppendLogTimeFile(path, {0, 6, kT0}).ok());
  ASSERT_TRUE(AppendLogTimeFile(path, {6, 20, kT0 + 5}).ok());
  {
    // A record cut short (a full disk) is not one, and the next append drops it.
    std::ofstream f(path, std::ios::app | std::ios::binary);
    f << "partial";
  }
  auto t = ReadLogTimesFile(path, 0, 10);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->total, 2);
  ASSERT_TRUE(AppendLogTimeFile(path, {20, 21, kT0 + 9}).ok());
  t = ReadLogTimesFile(path, 1, 10);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->total, 3);
  ASSERT_EQ(t->records.size(), 2u);
  EXPECT_EQ(t->records[0].start, 6);
  EXPECT_EQ(t->records[0].end, 20);
  EXPECT_EQ(t->records[0].unix_ms, kT0 + 5);
  EXPECT_EQ(t->records[1].unix_ms, kT0 + 9);
  EXPECT_EQ(std::filesystem::file_size(path), 3u * kLogTimeRecordBytes);
  std::filesystem::remove_all(dir);
}

TEST(LogTimesTest, TailFindsTheLastLines) {
  MemLog log;
  log.data = "a\nbb\nccc\n";
  EXPECT_EQ(*TailStart(log, 9, 1), 5);
  EXPECT_EQ(*TailStart(log, 9, 2), 2);
  EXPECT_EQ(*TailStart(log, 9, 3), 0);
  EXPECT_EQ(*TailStart(log, 9, 10), 0);
  EXPECT_EQ(*TailStart(log, 9, 0), 9);
  // An unterminated last line counts as a line.
  log.data = "a\nbb\nccc";
  EXPECT_EQ(*TailStart(log, 8, 1), 5);
  EXPECT_EQ(*TailStart(log, 8, 2), 2);
  // Empty lines are lines.
  log.data = "a\n\n\n";
  EXPECT_EQ(*TailStart(log, 4, 1), 3);
  EXPECT_EQ(*TailStart(log, 4, 2), 2);
  MemLog empty;
  EXPECT_EQ(*TailStart(empty, 0, 5), 0);
}

// The tail of a 70 MB log reads a few blocks from its end, never the log.
TEST(LogTimesTest, TailOfALargeLogReadsOnlyItsEnd) {
  MemLog log;
  log.data.reserve(70 << 20);
  std::string line(99, 'x');
  line += '\n';
  while (log.data.size() < (70u << 20)) log.data += line;
  const auto end = static_cast<int64_t>(log.data.size());
  auto at = TailStart(log, end, 1000);
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(*at, end - 1000 * 100);
  EXPECT_LE(log.bytes_read, 2 * kLogScanBlock + 1000 * 100);
  EXPECT_LE(log.max_read, kLogScanBlock);
  // One line longer than a block: still block by block.
  log.data = std::string(1 << 20, 'y') + "\n" + "last\n";
  log.bytes_read = 0;
  log.max_read = 0;
  EXPECT_EQ(*TailStart(log, static_cast<int64_t>(log.data.size()), 2), 0);
  EXPECT_LE(log.max_read, kLogScanBlock);
}

TEST(LogTimesTest, SinceStartsAtTheFirstPieceWrittenAtOrAfterTheTime) {
  MemLog log;
  log.Write("one\n", kT0);
  log.Write("two\nthr", kT0 + 1000);
  log.Write("ee\nfour\n", kT0 + 2000);
  const auto size = static_cast<int64_t>(log.data.size());
  EXPECT_EQ(*SinceStart(log, kT0 - 1, size, log.modified_ms), 0);
  EXPECT_EQ(*SinceStart(log, kT0, size, log.modified_ms), 0);
  EXPECT_EQ(*SinceStart(log, kT0 + 1, size, log.modified_ms), 4);
  EXPECT_EQ(*SinceStart(log, kT0 + 1000, size, log.modified_ms), 4);
  // Inside "three": its first byte is older, so the reader skips to the next line (AtLineStart false).
  EXPECT_EQ(*SinceStart(log, kT0 + 1500, size, log.modified_ms), 11);
  EXPECT_FALSE(*AtLineStart(log, 11));
  EXPECT_TRUE(*AtLineStart(log, 4));
  EXPECT_TRUE(*AtLineStart(log, 0));
  // Everything older: nothing.
  EXPECT_EQ(*SinceStart(log, kT0 + 5000, size, log.modified_ms), size);
  EXPECT_EQ(*SinceStart(log, kT0 + 5000, size, 0), size);  // without mtime: after the last record
}

TEST(LogTimesTest, SinceKeepsLinesOfUnknownTimeUnlessTheLogIsOlder) {
  MemLog log;
  log.data = "old 1\nold 2\n";  // written before times were recorded
  log.modified_ms = kT0;
  const auto size = static_cast<int64_t>(log.data.size());
  EXPECT_EQ(*SinceStart(log, kT0 - 60'000, size, log.modified_ms), 0);
  EXPECT_EQ(*SinceStart(log, kT0 + 1, size, log.modified_ms), size);
  // Recorded lines after unrecorded ones: those before the first record may be newer than an older since.
  log.Write("new\n", kT0 + 10'000);
  EXPECT_EQ(*SinceStart(log, kT0 + 5'000, static_cast<int64_t>(log.data.size()), log.modified_ms), 0);
  EXPECT_EQ(*SinceStart(log, kT0 + 10'001, static_cast<int64_t>(log.data.size()), log.modified_ms),
            static_cast<int64_t>(log.data.size()));
}

TEST(LogTimesTest, StampsEachLineWithTheTimeOfItsFirstByte) {
  MemLog log;
  log.Write("one\ntw", kT0);
  log.Write("o\nthree\n", kT0 + 1234);
  log.Write("four", kT0 + 2000);
  EXPECT_EQ(Stamped(log, 0),
            FormatTimestamp(kT0) + " one\n" + FormatTimestamp(kT0) + " two\n" + FormatTimestamp(kT0 + 1234) +
                " three\n" + FormatTimestamp(kT0 + 2000) + " four");
  EXPECT_EQ(FormatTimestamp(kT0 + 1234).size(), 24u);
  // From the middle of the log (a tail), and from inside a line (a resumed stream: no prefix until the next line).
  EXPECT_EQ(Stamped(log, 8), FormatTimestamp(kT0 + 1234) + " three\n" + FormatTimestamp(kT0 + 2000) + " four");
  EXPECT_EQ(Stamped(log, 9), "hree\n" + FormatTimestamp(kT0 + 2000) + " four");
}

TEST(LogTimesTest, LinesWithoutARecordAreMarkedAndWaitWhileTheirTimeMayStillCome) {
  MemLog log;
  log.data = "before\n";  // no record: written before times were recorded
  log.Write("recorded\n", kT0);
  log.data += "pending\n";  // not recorded yet
  EXPECT_EQ(Stamped(log, 0), "- before\n" + FormatTimestamp(kT0) + " recorded\n- pending\n");
  // Following a running job: the last line waits for its record …
  LogStamper s(log, 0, true);
  std::string out;
  auto used = s.Stamp(log.data, false, &out);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(*used, 16u);
  EXPECT_EQ(out, "- before\n" + FormatTimestamp(kT0) + " recorded\n");
  EXPECT_TRUE(s.any_times());
  // … which the supervisor appends a few ms later.
  log.times.push_back({16, 24, kT0 + 7});
  out.clear();
  used = s.Stamp(std::string_view(log.data).substr(16), false, &out);
  ASSERT_TRUE(used.ok());
  EXPECT_EQ(out, FormatTimestamp(kT0 + 7) + " pending\n");
  // A log without any record.
  MemLog bare;
  bare.data = "x\ny\n";
  LogStamper b(bare, 0, true);
  out.clear();
  EXPECT_EQ(*b.Stamp(bare.data, true, &out), 4u);
  EXPECT_EQ(out, "- x\n- y\n");
  EXPECT_FALSE(b.any_times());
}

// Many records: the stamper holds a window of them, never the whole index.
TEST(LogTimesTest, StampsALongLogWithManyRecords) {
  MemLog log;
  for (int i = 0; i < 20'000; ++i) log.Write("line " + std::to_string(i) + "\n", kT0 + i);
  const std::string out = Stamped(log, 0);
  std::istringstream in(out);
  std::string l;
  int n = 0;
  while (std::getline(in, l)) {
    ASSERT_EQ(l, FormatTimestamp(kT0 + n) + " line " + std::to_string(n));
    ++n;
  }
  EXPECT_EQ(n, 20'000);
}

// The supervisor records the job's output as it is written: a line's time is when it was written.
TEST(LogTimesTest, TheSupervisorRecordsWhenTheJobWrote) {
  const std::string root = testing::MakeTempDirForJobs();
  ASSERT_FALSE(root.empty());
  const std::string gate = root + "/gate";
  SystemClock clock;
  auto exec = MakeProcessExecutor(clock);
  LaunchSpec spec;
  spec.job_id = "j";
  spec.job_dir = root + "/jobs/j";
  spec.workdir = root + "/jobs/j/work";
  spec.log_path = root + "/logs/j.log";
  spec.run_as_uid = testing::kTestJobUid;  // used only as root
  spec.project = "test";
  // Prints a line, waits for the test to open the gate, prints another.
  spec.argv = {"sh", "-c", "echo first; while [ ! -e '" + gate + "' ]; do sleep 0.01; done; echo second"};
  auto ref = exec->Launch(spec);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  const std::string times_path = LogTimesPath(spec.log_path);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto records = [&] {
    auto t = ReadLogTimesFile(times_path, 0, 100);
    return t.ok() ? t->records : std::vector<LogTime>{};
  };
  while (records().empty() && std::chrono::steady_clock::now() < deadline) ::usleep(2000);
  ASSERT_EQ(records().size(), 1u) << testing::ReadText(spec.log_path) << " index exists: "
                                  << std::filesystem::exists(times_path);
  const LogTime first = records()[0];
  EXPECT_EQ(first.start, 0);
  EXPECT_EQ(first.end, 6);  // "first\n"
  EXPECT_NEAR(static_cast<double>(first.unix_ms), static_cast<double>(clock.NowMillis()), 10'000.0);
  // The second line is written after the gate opens, at least a few ms later.
  const int64_t opened = clock.NowMillis() + 20;
  while (clock.NowMillis() < opened) ::usleep(1000);
  { std::ofstream(gate) << "go"; }
  std::vector<ExitStatus> ended;
  while (ended.empty() && std::chrono::steady_clock::now() < deadline) {
    ended = exec->Poll();
    if (ended.empty()) exec->WaitForExits(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(ended.size(), 1u);
  auto all = records();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].start, 6);
  EXPECT_EQ(all[1].end, 13);  // "second\n"
  EXPECT_GE(all[1].unix_ms, opened);
  EXPECT_GT(all[1].unix_ms, first.unix_ms);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace fastgpu::agent
