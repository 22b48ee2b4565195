#include "common/quantity.h"

#include <cctype>
#include <string>

namespace fastgpu {
namespace {

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

constexpr int64_t kMaxDurationS = 10LL * 365 * 24 * 3600;

}  // namespace

Result<MilliGpu> ParseMilliGpu(std::string_view text) {
  std::string s = Trim(text);
  if (s.empty()) return InvalidArgument("GPU count is empty");
  int64_t whole = 0, frac = 0;
  int frac_digits = 0;
  bool seen_dot = false, seen_digit = false;
  for (char c : s) {
    if (c == '.') {
      if (seen_dot) return InvalidArgument("GPU count '" + s + "' is not a number");
      seen_dot = true;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      seen_digit = true;
      if (seen_dot) {
        if (++frac_digits > 3)
          return InvalidArgument("GPU count '" + s + "' has more than 3 decimals (unit is 1/1000 GPU)");
        frac = frac * 10 + (c - '0');
      } else {
        whole = whole * 10 + (c - '0');
        if (whole > 1'000'000) return InvalidArgument("GPU count '" + s + "' is absurdly large");
      }
    } else {
      return InvalidArgument("GPU count '" + s + "' is not a non-negative number");
    }
  }
  if (!seen_digit) return InvalidArgument("GPU count '" + s + "' is not a number");
  while (frac_digits < 3) {
    frac *= 10;
    ++frac_digits;
  }
  return whole * kMilliPerGpu + frac;
}

std::string FormatMilliGpu(MilliGpu m) {
  std::string out = std::to_string(m / kMilliPerGpu);
  int64_t frac = m % kMilliPerGpu;
  if (frac == 0) return out;
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%03lld", static_cast<long long>(frac));
  std::string f(buf);
  while (!f.empty() && f.back() == '0') f.pop_back();
  return out + "." + f;
}

Result<int64_t> ParseDurationSeconds(std::string_view text) {
  std::string s = Lower(Trim(text));
  if (s.empty()) return InvalidArgument("duration is empty (examples: 90s, 30m, 24h, 2d)");
  if (s[0] == '-') return InvalidArgument("duration '" + s + "' is negative");
  int64_t total = 0;
  size_t i = 0;
  bool any = false;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) break;
    if (!std::isdigit(static_cast<unsigned char>(s[i])))
      return InvalidArgument("duration '" + s + "' is not valid (examples: 90s, 30m, 24h, 2d, 1h30m)");
    int64_t n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      n = n * 10 + (s[i] - '0');
      if (n > kMaxDurationS) return InvalidArgument("duration '" + s + "' is longer than 10 years");
      ++i;
    }
    while (i < s.size() && s[i] == ' ') ++i;
    size_t u = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    std::string unit = s.substr(u, i - u);
    int64_t mult;
    if (unit.empty() || unit == "s" || unit == "sec" || unit == "secs" || unit == "second" ||
        unit == "seconds") {
      mult = 1;
    } else if (unit == "m" || unit == "min" || unit == "mins" || unit == "minute" || unit == "minutes") {
      mult = 60;
    } else if (unit == "h" || unit == "hr" || unit == "hrs" || unit == "hour" || unit == "hours") {
      mult = 3600;
    } else if (unit == "d" || unit == "day" || unit == "days") {
      mult = 86400;
    } else {
      return InvalidArgument("duration '" + s + "' has unknown unit '" + unit + "' (use s, m, h or d)");
    }
    total += n * mult;
    if (total > kMaxDurationS) return InvalidArgument("duration '" + s + "' is longer than 10 years");
    any = true;
  }
  if (!any) return InvalidArgument("duration '" + s + "' is not valid");
  return total;
}

std::string FormatDuration(int64_t seconds) {
  if (seconds < 0) return "-" + FormatDuration(-seconds);
  if (seconds == 0) return "0s";
  std::string out;
  int64_t d = seconds / 86400, h = seconds % 86400 / 3600, m = seconds % 3600 / 60, s = seconds % 60;
  if (d) out += std::to_string(d) + "d";
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (s) out += std::to_string(s) + "s";
  return out;
}

Result<MiB> ParseMemoryMiB(std::string_view text) {
  std::string s = Lower(Trim(text));
  if (s.empty()) return InvalidArgument("memory is empty (examples: 4096, 16GiB, 512MiB)");
  size_t i = 0;
  int64_t n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    n = n * 10 + (s[i] - '0');
    if (n > (1LL << 40)) return InvalidArgument("memory '" + s + "' is absurdly large");
    ++i;
  }
  if (i == 0) return InvalidArgument("memory '" + s + "' is not a non-negative number");
  std::string unit = Trim(s.substr(i));
  if (unit.empty() || unit == "m" || unit == "mi" || unit == "mib" || unit == "mb") return n;
  if (unit == "g" || unit == "gi" || unit == "gib" || unit == "gb") return n * 1024;
  if (unit == "t" || unit == "ti" || unit == "tib" || unit == "tb") return n * 1024 * 1024;
  return InvalidArgument("memory '" + s + "' has unknown unit '" + unit + "' (use MiB, GiB or TiB)");
}

}  // namespace fastgpu
