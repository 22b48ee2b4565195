// Ignore rules of `fastgpu job submit --sync DIR`: the patterns of .gitignore and .fastgpuignore files.
//
// Supported (git's rules): blank lines and `#` comments; trailing spaces dropped (unless escaped with `\`);
// `!pattern` re-includes what an earlier pattern excluded; `pattern/` matches directories only; a pattern with
// a `/` at its start or in its middle is anchored to the directory of the file that holds it, one without
// matches a name at any depth below it; `*` and `?` match within one path component, `[abc]`, `[a-z]`, `[!a]`
// one character of a class; `**/x` (x at any depth), `x/**` (everything inside x), `a/**/b` (zero or more
// directories between); `\` escapes the next character. The last matching pattern wins, deeper files after
// shallower ones. As in git, nothing inside an excluded directory can be re-included (the directory is not
// entered). Not supported: git's global excludes (core.excludesFile, .git/info/exclude).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fastgpu::sync {

// True when `text` matches the glob `pattern` (both '/'-separated; `*`, `?`, `[...]`, `**` as above).
bool GlobMatch(std::string_view pattern, std::string_view text);

class IgnoreRules {
 public:
  // Adds the patterns of one ignore file that lives in directory `base` (relative to the root, "" = the root).
  void AddFile(const std::string& base, std::string_view text);
  // Whether `rel` (relative to the root, '/'-separated, no leading '/') is ignored. Its parent directories are
  // assumed to be included (the walk does not enter excluded directories).
  bool Ignored(const std::string& rel, bool is_dir) const;

 private:
  struct Rule {
    std::string base;     // directory of the ignore file, "" or "a/b"
    std::string pattern;  // without '!', leading '/' and trailing '/'
    bool negate = false;
    bool dir_only = false;
    bool anchored = false;  // matches the path relative to base; otherwise the last component
  };
  std::vector<Rule> rules_;
};

}  // namespace fastgpu::sync
