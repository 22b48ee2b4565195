// Aligned text tables. Widths are measured on the plain text, so colour never breaks alignment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fastgpu::cli {

enum class Color { kNone, kRed, kGreen, kYellow, kBlue, kCyan, kDim };

struct Cell {
  Cell(std::string t) : text(std::move(t)) {}  // NOLINT: implicit by design
  Cell(const char* t) : text(t) {}             // NOLINT: implicit by design
  Cell(std::string t, Color c) : text(std::move(t)), color(c) {}
  std::string text;
  Color color = Color::kNone;
};

class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  void AddRow(std::vector<Cell> row);
  size_t rows() const { return rows_.size(); }
  // Columns separated by two spaces; no trailing spaces. With `color`, the header is bold and cells
  // carry their colour as ANSI escapes.
  std::string Render(bool color) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<Cell>> rows_;
};

// Columns a string occupies on a terminal (UTF-8 code points; control characters count as one).
size_t DisplayWidth(std::string_view s);
// Cuts to at most `max` columns, ending with "..." when cut. Newlines become spaces.
std::string Truncate(std::string_view s, size_t max);
// `text` wrapped in the ANSI escape of `c` when `color` is set.
std::string Paint(std::string_view text, Color c, bool color);
// Milliseconds as a short duration ("45s", "3m", "1h30m", "2d"); "-" for negatives.
std::string ShortDuration(int64_t ms);

}  // namespace fastgpu::cli
