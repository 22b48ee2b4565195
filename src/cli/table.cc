#include "cli/table.h"

#include <algorithm>

#include "common/quantity.h"

namespace fastgpu::cli {
namespace {

std::string_view Ansi(Color c) {
  switch (c) {
    case Color::kRed: return "\033[31m";
    case Color::kGreen: return "\033[32m";
    case Color::kYellow: return "\033[33m";
    case Color::kBlue: return "\033[34m";
    case Color::kCyan: return "\033[36m";
    case Color::kDim: return "\033[2m";
    case Color::kNone: return "";
  }
  return "";
}

constexpr std::string_view kBold = "\033[1m";
constexpr std::string_view kReset = "\033[0m";

std::string Clean(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return out;
}

}  // namespace

size_t DisplayWidth(std::string_view s) {
  size_t w = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) != 0x80) ++w;  // count lead bytes only
  }
  return w;
}

std::string Truncate(std::string_view s, size_t max) {
  std::string clean = Clean(s);
  if (DisplayWidth(clean) <= max) return clean;
  if (max <= 3) return std::string(max, '.');
  size_t keep = max - 3, w = 0, i = 0;
  for (; i < clean.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(clean[i]);
    if ((c & 0xC0) != 0x80) {
      if (w == keep) break;
      ++w;
    }
  }
  return clean.substr(0, i) + "...";
}

std::string Paint(std::string_view text, Color c, bool color) {
  if (!color || c == Color::kNone || text.empty()) return std::string(text);
  return std::string(Ansi(c)) + std::string(text) + std::string(kReset);
}

std::string ShortDuration(int64_t ms) {
  if (ms < 0) return "-";
  int64_t s = ms / 1000;
  if (s >= 2 * 86400) return std::to_string(s / 86400) + "d";
  if (s >= 3600) {
    int64_t h = s / 3600, m = (s % 3600) / 60;
    return m ? std::to_string(h) + "h" + std::to_string(m) + "m" : std::to_string(h) + "h";
  }
  if (s >= 60) {
    int64_t m = s / 60, r = s % 60;
    return (r && m < 10) ? std::to_string(m) + "m" + std::to_string(r) + "s" : std::to_string(m) + "m";
  }
  return std::to_string(s) + "s";
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<Cell> row) {
  row.resize(headers_.size(), Cell(""));
  for (auto& c : row) c.text = Clean(c.text);
  rows_.push_back(std::move(row));
}

std::string Table::Render(bool color) const {
  const size_t n = headers_.size();
  std::vector<size_t> width(n, 0);
  for (size_t i = 0; i < n; ++i) width[i] = DisplayWidth(headers_[i]);
  for (const auto& r : rows_)
    for (size_t i = 0; i < n; ++i) width[i] = std::max(width[i], DisplayWidth(r[i].text));

  std::string out;
  auto emit_line = [&](const std::vector<std::pair<std::string_view, std::string_view>>& cells) {
    std::string line;
    for (size_t i = 0; i < n; ++i) {
      const auto& [text, esc] = cells[i];
      bool last = i + 1 == n;
      if (color && !esc.empty() && !text.empty()) {
        line += esc;
        line += text;
        line += kReset;
      } else {
        line += text;
      }
      if (!last) line.append(width[i] - DisplayWidth(text) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line;
    out += '\n';
  };
  std::vector<std::pair<std::string_view, std::string_view>> cells(n);
  for (size_t i = 0; i < n; ++i) cells[i] = {headers_[i], kBold};
  emit_line(cells);
  for (const auto& r : rows_) {
    for (size_t i = 0; i < n; ++i) cells[i] = {r[i].text, Ansi(r[i].color)};
    emit_line(cells);
  }
  return out;
}

}  // namespace fastgpu::cli
