#include "common/clock.h"

#include <cstdio>
#include <ctime>
#include <string>

namespace fastgpu {

UnixMillis SystemClock::NowMillis() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t SystemClock::MonotonicNanos() const {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string FormatTimestamp(UnixMillis t) {
  if (t == 0) return "";
  std::time_t secs = static_cast<std::time_t>(t / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof(out), "%s.%03dZ", buf, static_cast<int>(t % 1000));
  return out;
}

Result<UnixMillis> ParseTimestamp(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument("'" + std::string(text) +
                           "' is not a time: use RFC 3339, e.g. 2026-12-01 or 2026-12-01T00:00:00Z");
  };
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0, consumed = 0;
  std::string t(text);
  if (std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) != 3 || consumed != 10) return bad();
  size_t pos = 10;
  int64_t offset_s = 0;
  if (pos < t.size()) {
    if (t[pos] != 'T' && t[pos] != 't' && t[pos] != ' ') return bad();
    if (std::sscanf(t.c_str() + pos + 1, "%2d:%2d:%2d%n", &h, &mi, &sec, &consumed) != 3 || consumed != 8) return bad();
    pos += 9;
    if (pos < t.size() && t[pos] == '.') {
      size_t digits = 0;
      ++pos;
      while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') {
        if (digits < 3) ms = ms * 10 + (t[pos] - '0');
        ++digits, ++pos;
      }
      if (digits == 0) return bad();
      for (size_t i = digits; i < 3; ++i) ms *= 10;
    }
    if (pos == t.size()) return bad();  // a time needs a zone: Z or +hh:mm
    if (t[pos] == 'Z' || t[pos] == 'z') {
      ++pos;
    } else if (t[pos] == '+' || t[pos] == '-') {
      int oh = 0, om = 0;
      if (std::sscanf(t.c_str() + pos + 1, "%2d:%2d%n", &oh, &om, &consumed) != 2 || consumed != 5) return bad();
      offset_s = (t[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
      pos += 6;
    }
    if (pos != t.size()) return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return bad();
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  std::time_t secs = timegm(&tm);
  if (tm.tm_mday != d) return bad();  // e.g. February 30
  return (static_cast<int64_t>(secs) - offset_s) * 1000 + ms;
}

}  // namespace fastgpu
