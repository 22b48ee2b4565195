#include "sync/ignore.h"

namespace fastgpu::sync {

namespace {

// Matches one character class starting at p[i] == '['; sets `next` past the ']'. False when malformed.
bool ClassMatch(std::string_view p, size_t i, char c, bool& matched, size_t& next) {
  size_t j = i + 1;
  bool negate = false;
  if (j < p.size() && (p[j] == '!' || p[j] == '^')) {
    negate = true;
    ++j;
  }
  bool any = false;
  bool first = true;
  while (j < p.size() && (first || p[j] != ']')) {
    first = false;
    char lo = p[j];
    if (lo == '\\' && j + 1 < p.size()) lo = p[++j];
    char hi = lo;
    if (j + 2 < p.size() && p[j + 1] == '-' && p[j + 2] != ']') {
      hi = p[j + 2];
      if (hi == '\\' && j + 3 < p.size()) {
        hi = p[j + 3];
        ++j;
      }
      j += 2;
    }
    if (c >= lo && c <= hi) any = true;
    ++j;
  }
  if (j >= p.size()) return false;  // no closing ']'
  next = j + 1;
  matched = (any != negate) && c != '/';
  return true;
}

bool Match(std::string_view p, size_t pi, std::string_view t, size_t ti) {
  while (pi < p.size()) {
    const char pc = p[pi];
    if (pc == '*') {
      if (pi + 1 < p.size() && p[pi + 1] == '*') {
        // "**": at the start or after '/', and at the end or before '/'.
        const bool at_start = pi == 0 || p[pi - 1] == '/';
        const bool at_end = pi + 2 == p.size();
        const bool before_slash = pi + 2 < p.size() && p[pi + 2] == '/';
        if (at_start && (at_end || before_slash)) {
          if (at_end) return true;  // "x/**": everything below
          // "**/rest": rest at ti, or after any '/' in the text.
          const size_t rest = pi + 3;
          if (Match(p, rest, t, ti)) return true;
          for (size_t k = ti; k < t.size(); ++k)
            if (t[k] == '/' && Match(p, rest, t, k + 1)) return true;
          return false;
        }
        ++pi;  // a "**" elsewhere is a plain '*'
      }
      // '*': any run of characters other than '/'.
      for (size_t k = ti;; ++k) {
        if (Match(p, pi + 1, t, k)) return true;
        if (k >= t.size() || t[k] == '/') return false;
      }
    }
    if (ti >= t.size()) return false;
    if (pc == '?') {
      if (t[ti] == '/') return false;
      ++pi;
      ++ti;
      continue;
    }
    if (pc == '[') {
      bool matched = false;
      size_t next = 0;
      if (ClassMatch(p, pi, t[ti], matched, next)) {
        if (!matched) return false;
        pi = next;
        ++ti;
        continue;
      }
      // malformed: a literal '['
    }
    char want = pc;
    if (pc == '\\' && pi + 1 < p.size()) want = p[++pi];
    if (t[ti] != want) return false;
    ++pi;
    ++ti;
  }
  return ti == t.size();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) { return Match(pattern, 0, text, 0); }

void IgnoreRules::AddFile(const std::string& base, std::string_view text) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string line(text.substr(pos, nl - pos));
    pos = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // Trailing spaces are dropped unless escaped.
    while (!line.empty() && line.back() == ' ' && !(line.size() >= 2 && line[line.size() - 2] == '\\')) line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    Rule r;
    r.base = base;
    if (line[0] == '!') {
      r.negate = true;
      line.erase(0, 1);
    } else if (line.size() >= 2 && line[0] == '\\' && (line[1] == '!' || line[1] == '#')) {
      line.erase(0, 1);
    }
    if (!line.empty() && line.back() == '/') {
      r.dir_only = true;
      while (!line.empty() && line.back() == '/') line.pop_back();
    }
    if (line.empty()) continue;
    if (line[0] == '/') {
      r.anchored = true;
      line.erase(0, 1);
    } else if (line.find('/') != std::string::npos) {
      r.anchored = true;
    }
    if (line.empty()) continue;
    r.pattern = std::move(line);
    rules_.push_back(std::move(r));
  }
}

bool IgnoreRules::Ignored(const std::string& rel, bool is_dir) const {
  bool ignored = false;
  for (const Rule& r : rules_) {
    if (r.dir_only && !is_dir) continue;
    std::string_view sub = rel;
    if (!r.base.empty()) {
      if (rel.size() <= r.base.size() + 1 || rel.compare(0, r.base.size(), r.base) != 0 || rel[r.base.size()] != '/')
        continue;
      sub = std::string_view(rel).substr(r.base.size() + 1);
    }
    bool m = false;
    if (r.anchored) {
      m = GlobMatch(r.pattern, sub);
    } else {
      const size_t slash = sub.rfind('/');
      m = GlobMatch(r.pattern, slash == std::string_view::npos ? sub : sub.substr(slash + 1));
    }
    if (m) ignored = !r.negate;
  }
  return ignored;
}

}  // namespace fastgpu::sync
