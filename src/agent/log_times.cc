#include "agent/log_times.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/clock.h"

namespace fastgpu::agent {
namespace {

constexpr int64_t kWindowRecords = 4096;  // records held by a stamper at once (96 KiB)
// A stamper stops at a line start once its output holds this much (a piece of empty lines would grow 25-fold).
constexpr size_t kMaxStampedBytes = 512 << 10;

void PutLe(int64_t v, char* out) {
  auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((u >> (8 * i)) & 0xff);
}

int64_t GetLe(const char* in) {
  uint64_t u = 0;
  for (int i = 7; i >= 0; --i) u = (u << 8) | static_cast<unsigned char>(in[i]);
  return static_cast<int64_t>(u);
}

Result<LogTime> RecordAt(LogReader& log, int64_t i) {
  ASSIGN_OR_RETURN(LogTimes t, log.Times(i, 1));
  if (t.records.empty()) return Internal("the log's time index has no record " + std::to_string(i));
  return t.records.front();
}

}  // namespace

std::string LogTimesPath(const std::string& log_path) { return log_path + ".times"; }

void EncodeLogTime(const LogTime& t, char out[kLogTimeRecordBytes]) {
  PutLe(t.start, out);
  PutLe(t.end, out + 8);
  PutLe(t.unix_ms, out + 16);
}

LogTime DecodeLogTime(const char in[kLogTimeRecordBytes]) { return {GetLe(in), GetLe(in + 8), GetLe(in + 16)}; }

Result<LogTimes> ReadLogTimesFile(const std::string& path, int64_t first, int64_t max_records) {
  if (first < 0 || max_records < 0) return InvalidArgument("log time records are counted from 0");
  LogTimes out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;
    return Internal("cannot open " + path + ": " + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return Internal("cannot stat " + path + ": " + std::strerror(e));
  }
  out.total = static_cast<int64_t>(st.st_size) / kLogTimeRecordBytes;  // a torn last record is not one
  const int64_t n = std::clamp<int64_t>(out.total - first, 0, std::min(max_records, kWindowRecords));
  std::string buf(static_cast<size_t>(n * kLogTimeRecordBytes), '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t r = ::pread(fd, buf.data() + got, buf.size() - got,
                        static_cast<off_t>(first * kLogTimeRecordBytes + static_cast<int64_t>(got)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  for (size_t i = 0; i + kLogTimeRecordBytes <= got; i += kLogTimeRecordBytes)
    out.records.push_back(DecodeLogTime(buf.data() + i));
  return out;
}

Status AppendLogTimeFile(const std::string& path, const LogTime& t) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
  if (fd < 0) return Internal("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size % kLogTimeRecordBytes != 0) {
    // A record cut short (a full disk): drop it, or every later one would be read shifted.
    if (::ftruncate(fd, st.st_size - st.st_size % kLogTimeRecordBytes) != 0) {
      int e = errno;
      ::close(fd);
      return Internal("cannot repair " + path + ": " + std::strerror(e));
    }
  }
  char rec[kLogTimeRecordBytes];
  EncodeLogTime(t, rec);
  ssize_t w;
  do {
    w = ::write(fd, rec, sizeof(rec));
  } while (w < 0 && errno == EINTR);
  int e = errno;
  ::close(fd);
  if (w != static_cast<ssize_t>(sizeof(rec))) return Internal("cannot append to " + path + ": " + std::strerror(e));
  return Status::Ok();
}

Result<int64_t> TailStart(LogReader& log, int64_t end, int64_t lines) {
  if (lines <= 0 || end <= 0) return std::max<int64_t>(0, end);
  int64_t need = lines;
  int64_t pos = end;
  while (pos > 0) {
    const int64_t from = std::max<int64_t>(0, pos - kLogScanBlock);
    ASSIGN_OR_RETURN(LogChunk chunk, log.Read(from, pos - from));
    const std::string& d = chunk.data;
    for (size_t i = std::min<size_t>(d.size(), static_cast<size_t>(pos - from)); i > 0; --i) {
      if (d[i - 1] != '\n') continue;
      const int64_t at = from + static_cast<int64_t>(i) - 1;
      if (at == end - 1) continue;  // the end of the last line
      if (--need == 0) return at + 1;
    }
    pos = from;
  }
  return 0;
}

Result<int64_t> SinceStart(LogReader& log, int64_t since_ms, int64_t size, int64_t modified_ms) {
  if (modified_ms > 0 && modified_ms < since_ms) return size;
  ASSIGN_OR_RETURN(LogTimes head, log.Times(0, 1));
  const int64_t n = head.total;
  if (n == 0) return 0;  // no times known: nothing is known to be older
  // The first record at or after since_ms (their times never go back).
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    ASSIGN_OR_RETURN(LogTime r, RecordAt(log, mid));
    if (r.unix_ms < since_ms) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return 0;  // bytes before the first record are of unknown time
  // What the last older record covers is older; bytes after it that no record covers may be newer.
  ASSIGN_OR_RETURN(LogTime prev, RecordAt(log, lo - 1));
  return prev.end;
}

Result<bool> AtLineStart(LogReader& log, int64_t offset) {
  if (offset <= 0) return true;
  ASSIGN_OR_RETURN(LogChunk c, log.Read(offset - 1, 1));
  if (c.data.empty()) return FailedPrecondition("the log has no byte " + std::to_string(offset - 1) + " yet");
  return c.data[0] == '\n';
}

LogStamper::LogStamper(LogReader& log, int64_t offset, bool at_line_start)
    : log_(log), offset_(offset), at_line_start_(at_line_start) {}

Status LogStamper::Seek(int64_t p) {
  positioned_ = true;
  ASSIGN_OR_RETURN(LogTimes head, log_.Times(0, 1));
  const int64_t n = head.total;
  if (n == 0) return Status::Ok();  // none yet: the first window is loaded when a line asks
  any_times_ = true;
  // The first record that ends after p.
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    ASSIGN_OR_RETURN(LogTime r, RecordAt(log_, mid));
    if (r.end <= p) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  ASSIGN_OR_RETURN(LogTimes w, log_.Times(lo, kWindowRecords));
  window_first_ = lo;
  window_ = std::move(w.records);
  cursor_ = 0;
  return Status::Ok();
}

Result<int64_t> LogStamper::TimeAt(int64_t p, bool* reloaded) {
  if (!positioned_) RETURN_IF_ERROR(Seek(p));
  while (true) {
    while (cursor_ < window_.size() && window_[cursor_].end <= p) ++cursor_;
    if (cursor_ < window_.size()) return window_[cursor_].start <= p ? window_[cursor_].unix_ms : -1;
    // Past what was loaded: more records may have been appended since.
    if (*reloaded) return -2;
    *reloaded = true;
    const int64_t next = window_first_ + static_cast<int64_t>(window_.size());
    ASSIGN_OR_RETURN(LogTimes w, log_.Times(next, kWindowRecords));
    if (w.records.empty()) return -2;
    any_times_ = true;
    window_first_ = next;
    window_ = std::move(w.records);
    cursor_ = 0;
    *reloaded = false;  // this load found some: another may find more
  }
}

Result<size_t> LogStamper::Stamp(std::string_view data, bool final, std::string* out) {
  size_t i = 0;
  bool reloaded = false;
  int64_t cached_ms = -1;
  std::string cached_text;
  const size_t out_start = out->size();
  while (i < data.size()) {
    if (at_line_start_) {
      if (out->size() - out_start >= kMaxStampedBytes) break;
      ASSIGN_OR_RETURN(int64_t ms, TimeAt(offset_ + static_cast<int64_t>(i), &reloaded));
      if (ms == -2 && !final) break;
      if (ms >= 0) {
        if (ms != cached_ms) {
          cached_ms = ms;
          cached_text = FormatTimestamp(ms == 0 ? 1 : ms);
        }
        out->append(cached_text);
      } else {
        out->append("-");
      }
      out->push_back(' ');
      at_line_start_ = false;
    }
    const size_t nl = data.find('\n', i);
    const size_t stop = nl == std::string_view::npos ? data.size() : nl + 1;
    out->append(data.substr(i, stop - i));
    if (nl != std::string_view::npos) at_line_start_ = true;
    i = stop;
  }
  offset_ += static_cast<int64_t>(i);
  return i;
}

}  // namespace fastgpu::agent
