#include "cli/job_file.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <nlohmann/json.hpp>
#include <map>
#include <optional>
#include <sstream>

#include "api/json.h"
#include "common/quantity.h"

namespace fastgpu::cli {
namespace {

Result<int64_t> ParseInt(std::string_view text, std::string_view what, int64_t lo, int64_t hi) {
  std::string s(text);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t b = 0;
  while (b < s.size() && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  s = s.substr(b);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size())
    return InvalidArgument(std::string(what) + " must be a whole number, got '" + std::string(text) + "'");
  if (v < lo || v > hi)
    return InvalidArgument(std::string(what) + " must be between " + std::to_string(lo) + " and " +
                           std::to_string(hi) + ", got " + std::to_string(v));
  return v;
}

Status Prefix(const Status& st, const std::string& prefix) {
  if (st.ok()) return st;
  return Status(st.code(), prefix + st.message());
}

template <typename T>
Result<T> Prefix(Result<T> r, const std::string& prefix) {
  if (r.ok()) return r;
  return Prefix(r.status(), prefix);
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

constexpr const char* kGpuForms = "a number of GPUs such as 2 or 0.25 (or TYPE:COUNT such as A100-80GB:2)";

// A GPU request as text: "2", "0.25", "A100-80GB:2", "A100:0.5", and with `type_alone` also "A100-80GB" (a type,
// count unchanged). `what` names the field or flag in errors. Types are passed on as written: the scheduler
// matches them exactly.
Result<GpuRequest> ParseGpuRequestText(std::string_view text, const std::string& what, bool type_alone) {
  std::string s = Trim(text);
  size_t colon = s.find(':');
  if (colon == std::string::npos) {
    bool numeric = !s.empty() && s.find_first_not_of("0123456789.") == std::string::npos;
    if (numeric) {
      ASSIGN_OR_RETURN(MilliGpu m, Prefix(ParseMilliGpu(s), what + ": "));
      return GpuRequest{"", m};
    }
    if (type_alone && !s.empty()) return GpuRequest{s, std::nullopt};
    return InvalidArgument(what + " must be " + kGpuForms + ", not '" + s + "'");
  }
  if (s.find(':', colon + 1) != std::string::npos) {
    return InvalidArgument(what + " '" + s + "' has more than one ':'; write TYPE:COUNT such as A100-80GB:2 " +
                           "(GPU memory per GPU is the separate field memory)");
  }
  std::string type = Trim(s.substr(0, colon));
  std::string count = Trim(s.substr(colon + 1));
  if (type.empty()) return InvalidArgument(what + " '" + s + "' has no GPU type before ':' (example: A100-80GB:2)");
  auto m = ParseMilliGpu(count);
  if (!m.ok()) {
    return InvalidArgument(what + " '" + s + "': the count after ':' must be a number of GPUs such as 2 or 0.25, not '" +
                           count + "'");
  }
  return GpuRequest{type, *m};
}

// Where a problem in the job file is: "job.yaml:3:7: ...". Positions are 1-based; line 0 = the whole file.
class FileErrors {
 public:
  FileErrors(std::string_view file, std::string_view text) : file_(file), text_(text) {}

  Status At(int line, int column, const std::string& message) const {
    if (line <= 0) return InvalidArgument(file_ + ": " + message);
    return InvalidArgument(file_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message);
  }
  Status At(const YAML::Mark& m, const std::string& message) const {
    return m.line < 0 ? At(0, 0, message) : At(m.line + 1, m.column + 1, message);
  }
  Status At(const YAML::Node& n, const std::string& message) const { return At(n.Mark(), message); }
  static int Line(const YAML::Node& n) { return n.Mark().line + 1; }

  std::string_view text() const { return text_; }

 private:
  std::string file_;
  std::string_view text_;
};

std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t b = 0;
  while (b <= text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    std::string_view l = text.substr(b, e - b);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    out.push_back(l);
    b = e + 1;
  }
  return out;
}

bool Blank(std::string_view line) {
  size_t i = line.find_first_not_of(" \t");
  return i == std::string_view::npos || line[i] == '#';
}

// The YAML library's complaint at `mark`, in words a user can act on, at the place to fix.
Status SyntaxError(const FileErrors& err, const YAML::Exception& e) {
  const std::string& msg = e.msg;
  std::vector<std::string_view> lines = Lines(err.text());
  int line = e.mark.line + 1, column = e.mark.column + 1;
  // A tab in the indentation of this line or one above it: the usual cause, whatever the library says.
  for (int i = 0; i < line && i < static_cast<int>(lines.size()); ++i) {
    std::string_view l = lines[static_cast<size_t>(i)];
    size_t content = l.find_first_not_of(" \t");
    if (content == std::string_view::npos) continue;
    size_t tab = l.substr(0, content).find('\t');
    if (tab != std::string_view::npos) {
      return err.At(i + 1, static_cast<int>(tab) + 1, "a tab is used for indentation; YAML indents with spaces only");
    }
  }
  auto starts = [&](const char* prefix) { return msg.rfind(prefix, 0) == 0; };
  std::string_view here = line >= 1 && line <= static_cast<int>(lines.size()) ? lines[static_cast<size_t>(line - 1)]
                                                                                : std::string_view();
  size_t first = here.find_first_not_of(' ');
  bool mid_line = first != std::string_view::npos && static_cast<size_t>(column - 1) > first;
  if (starts(YAML::ErrorMsg::MAP_VALUE)) {
    // "gpus 2" on the line above: a field without its ':'.
    for (int i = line - 2; i >= 0; --i) {
      std::string_view l = lines[static_cast<size_t>(i)];
      if (Blank(l)) continue;
      size_t c = l.find_first_not_of(' ');
      if (l.find(':') == std::string_view::npos && l[c] != '-' && l[c] != '"' && l[c] != '\'') {
        return err.At(i + 1, static_cast<int>(c) + 1,
                      "'" + Trim(l) + "' is not 'field: value'; put a ':' and a space after the field name");
      }
      // "  A: 1" then "   B: 2": B is read as more of A's value.
      std::string value = Trim(l.substr(std::min(l.size(), l.find(':') + 1)));
      if (first != std::string_view::npos && first > c && !value.empty() && value[0] != '#' &&
          l.find(':') != std::string_view::npos) {
        return err.At(line, static_cast<int>(first) + 1,
                      "this line is indented more than the field above it; the fields of one mapping must start in "
                      "the same column");
      }
      break;
    }
    return err.At(line, column,
                  "a ':' that cannot start a value here; a value that contains ': ' must be quoted "
                  "(command: \"echo a: b\"), and each field goes on a line of its own");
  }
  if (starts(YAML::ErrorMsg::END_OF_MAP) || starts(YAML::ErrorMsg::END_OF_SEQ)) {
    if (mid_line) {
      return err.At(line, column,
                    "unexpected text after the end of a value (text after a closing quote? quote the whole value)");
    }
    return err.At(line, column,
                  "this line is indented differently from the lines above it; the fields of one mapping (and the "
                  "items of one list) must start in the same column");
  }
  if (starts(YAML::ErrorMsg::END_OF_MAP_FLOW)) return err.At(line, column, "a '{' above is never closed with '}'");
  if (starts(YAML::ErrorMsg::END_OF_SEQ_FLOW)) return err.At(line, column, "a '[' above is never closed with ']'");
  if (starts(YAML::ErrorMsg::FLOW_END)) return err.At(line, column, "a ']' or '}' without its opening '[' or '{'");
  if (starts(YAML::ErrorMsg::TAB_IN_INDENTATION)) {
    return err.At(line, column, "a tab is used for indentation; YAML indents with spaces only");
  }
  if (starts(YAML::ErrorMsg::BLOCK_ENTRY)) {
    return err.At(line, column,
                  "a list item ('- ') is not allowed here; put the items of a list on the lines under their field, "
                  "indented the same (command: then '  - python')");
  }
  if (starts(YAML::ErrorMsg::UNKNOWN_TOKEN)) {
    std::string c = column >= 1 && static_cast<size_t>(column) <= here.size() ? std::string(1, here[column - 1]) : "";
    return err.At(line, column, "a value cannot start with '" + c + "'; put the value in quotes");
  }
  if (starts(YAML::ErrorMsg::INVALID_ESCAPE) || starts(YAML::ErrorMsg::INVALID_HEX) ||
      starts(YAML::ErrorMsg::INVALID_UNICODE)) {
    return err.At(line, column,
                  "a backslash escape that double quotes do not know; use single quotes for text with "
                  "backslashes ('C:\\data'), or write \\\\");
  }
  if (starts(YAML::ErrorMsg::EOF_IN_SCALAR)) return err.At(line, column, "the file ends inside a quoted value");
  if (starts(YAML::ErrorMsg::UNKNOWN_ANCHOR) || starts(YAML::ErrorMsg::ALIAS_NOT_FOUND)) {
    return err.At(line, column, "'*' refers to an anchor ('&name') that is not defined above; quote the value if "
                                "it is meant as text");
  }
  if (starts(YAML::ErrorMsg::MAP_KEY)) return err.At(line, column, "a field name is not allowed here");
  return err.At(line, column, "this is not valid YAML (" + msg + ")");
}

bool QuoteCloses(std::string_view text, size_t open) {
  char q = text[open];
  for (size_t i = open + 1; i < text.size(); ++i) {
    if (q == '"' && text[i] == '\\') {
      ++i;
    } else if (text[i] == q) {
      if (q == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
        ++i;
        continue;
      }
      return true;
    }
  }
  return false;
}

// The YAML library takes a quote that is never closed as running to the end of the file; refuse it.
// A job file nests a level or two; an alias inside its own anchor (&n [a, *n]) would nest forever.
Status CheckQuotes(const YAML::Node& n, const FileErrors& err, int depth = 0) {
  constexpr int kMaxDepth = 32;
  if (depth > kMaxDepth) {
    return err.At(n, "values nested more than " + std::to_string(kMaxDepth) +
                         " deep (or an alias '*name' inside its own anchor '&name')");
  }
  if (n.IsScalar()) {
    const YAML::Mark m = n.Mark();
    std::string_view text = err.text();
    if (m.pos >= 0 && static_cast<size_t>(m.pos) < text.size()) {
      char c = text[static_cast<size_t>(m.pos)];
      if ((c == '"' || c == '\'') && !QuoteCloses(text, static_cast<size_t>(m.pos))) {
        return err.At(n, std::string("the quote opened here is never closed; add the closing ") + c);
      }
    }
  } else if (n.IsMap()) {
    for (const auto& kv : n) {
      RETURN_IF_ERROR(CheckQuotes(kv.first, err, depth + 1));
      RETURN_IF_ERROR(CheckQuotes(kv.second, err, depth + 1));
    }
  } else if (n.IsSequence()) {
    for (const auto& a : n) RETURN_IF_ERROR(CheckQuotes(a, err, depth + 1));
  }
  return Status::Ok();
}

// Notes where documents start; ignores their content.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { last = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark last;
};

// Where a second YAML document starts, if there is one (YAML::Load reads the first and ignores the rest).
// At most two documents are read: YAML::LoadAll never ends on some inputs ("!,").
std::optional<YAML::Mark> SecondDocument(std::string_view text) {
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentStarts starts;
  if (!parser.HandleNextDocument(starts) || !parser.HandleNextDocument(starts)) return std::nullopt;
  return starts.last;
}

// Field names are plain text and each is given once. `in` is "" at the top level, else " in env" etc.
Status CheckKeys(const YAML::Node& map, const FileErrors& err, const std::string& in) {
  std::map<std::string, int> first;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return err.At(kv.first, "a field name" + in + " must be plain text, not a list or mapping");
    auto [it, added] = first.emplace(kv.first.Scalar(), FileErrors::Line(kv.first));
    if (!added) {
      return err.At(kv.first, "'" + kv.first.Scalar() + "' is given twice" + in + " (first on line " +
                                  std::to_string(it->second) + ")");
    }
  }
  return Status::Ok();
}

// The checks the server makes on one field, on the value the file gives it, reported at that value.
template <typename Set>
Status CheckField(const YAML::Node& at, const FileErrors& err, Set set) {
  api::JobSpec one;
  one.command = {"true"};
  set(one);
  Status st = api::ValidateJobSpec(one);
  return st.ok() ? st : err.At(at, st.message());
}

// The GPU type or count as the first field that states it; another field that disagrees is an error.
struct Claim {
  std::string value;
  std::string field;
  int line = 0;
};

Status Agree(Claim& c, const std::string& value, const std::string& field, const YAML::Node& at,
             const FileErrors& err, const std::string& what) {
  if (c.line == 0) {
    c = Claim{value, field, FileErrors::Line(at)};
    return Status::Ok();
  }
  if (c.value == value) return Status::Ok();
  return err.At(at, field + " asks for " + what + " " + value + " but " + c.field + " (line " + std::to_string(c.line) +
                        ") asks for " + c.value + "; give it once");
}

Status ApplyResources(const YAML::Node& v, const FileErrors& err, Claim& type, Claim& count) {
  if (!v.IsMap()) return err.At(v, "resources must be a mapping such as {gpu: A100-80GB:2}");
  RETURN_IF_ERROR(CheckKeys(v, err, " in resources"));
  for (const auto& kv : v) {
    const std::string key = kv.first.Scalar();
    if (key != "gpu") {
      return err.At(kv.first, "unknown field 'resources." + key +
                                  "'; accepted under resources: gpu (TYPE:COUNT, COUNT or TYPE, e.g. gpu: "
                                  "A100-80GB:2). Host CPUs, memory and disk are not reserved; GPU memory per GPU is "
                                  "the top-level field memory");
    }
    if (kv.second.IsNull()) continue;
    if (!kv.second.IsScalar()) return err.At(kv.second, "resources.gpu must be a single value such as A100-80GB:2");
    auto g = ParseGpuRequestText(kv.second.Scalar(), "resources.gpu", /*type_alone=*/true);
    if (!g.ok()) return err.At(kv.second, g.status().message());
    if (!g->type.empty()) {
      RETURN_IF_ERROR(CheckField(kv.second, err, [&](api::JobSpec& o) { o.gpu_type = g->type; }));
      RETURN_IF_ERROR(Agree(type, g->type, "resources.gpu", kv.second, err, "GPU type"));
    }
    if (g->milli) {
      RETURN_IF_ERROR(CheckField(kv.second, err, [&](api::JobSpec& o) { o.gpus_milli = *g->milli; }));
      RETURN_IF_ERROR(Agree(count, FormatMilliGpu(*g->milli), "resources.gpu", kv.second, err, "GPU count"));
    }
  }
  return Status::Ok();
}

constexpr const char* kKnownFields =
    "name, command, gpus, gpu_type, resources, memory, runtime, priority, env, workdir, sync, project, max_retries, "
    "secrets, processes, after, after_ok, preemptible, checkpoint_signal, checkpoint_grace, begin, deadline, image, array";

bool KnownField(std::string_view key) {
  for (std::string_view k : {"name", "sync", "command", "gpus", "gpu_type", "resources", "memory", "memory_mib", "runtime",
                             "runtime_limit_s", "priority", "env", "workdir", "project", "max_retries", "secrets",
                             "processes", "after", "after_ok", "preemptible", "checkpoint_signal", "checkpoint_grace",
                             "begin", "deadline", "image", "array"}) {
    if (k == key) return true;
  }
  return false;
}

Status ApplyYaml(const YAML::Node& root, const FileErrors& err, api::JobSpec& spec) {
  if (root.IsNull()) return err.At(0, 0, "the job file is empty; it needs at least command: [...]");
  if (!root.IsMap()) {
    std::string hint = root.IsScalar() && root.Scalar().find(':') != std::string::npos
                           ? " (a ':' must be followed by a space: gpus: 2)"
                           : "";
    return err.At(root, "a job file is a set of fields, one per line (name: train, command: [python, train.py])" + hint);
  }
  RETURN_IF_ERROR(CheckKeys(root, err, ""));
  Claim type, count;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    const YAML::Node& v = kv.second;
    if (!KnownField(key)) {
      std::string hint = key == "gpu" ? " (for a GPU count write gpus: 2; for a type and count, gpus: A100-80GB:2)" : "";
      return err.At(kv.first, "unknown field '" + key + "'" + hint + "; known fields: " + kKnownFields);
    }
    if (v.IsNull()) continue;
    if (key == "command") {
      if (v.IsScalar()) {
        spec.command = {"sh", "-c", v.Scalar()};
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { o.command = spec.command; }));
      } else if (v.IsSequence()) {
        spec.command.clear();
        for (const auto& a : v) {
          if (!a.IsScalar()) return err.At(a, "each item of command must be a single string");
          spec.command.push_back(a.Scalar());
          RETURN_IF_ERROR(CheckField(a, err, [&](api::JobSpec& o) { o.command = spec.command; }));
        }
      } else {
        return err.At(v, "command must be a list of strings ([python, train.py]) or a shell string");
      }
    } else if (key == "secrets") {
      // A single name is accepted as a one-element list.
      if (!v.IsSequence() && !v.IsScalar()) return err.At(v, "secrets must be a list of secret names ([WANDB_KEY])");
      spec.secrets.clear();
      if (v.IsScalar()) {
        spec.secrets.push_back(v.Scalar());
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { o.secrets = {v.Scalar()}; }));
      }
      for (const auto& a : v) {
        if (!a.IsScalar()) return err.At(a, "each item of secrets must be a secret name");
        spec.secrets.push_back(a.Scalar());
        RETURN_IF_ERROR(CheckField(a, err, [&](api::JobSpec& o) { o.secrets = {a.Scalar()}; }));
      }
    } else if (key == "after" || key == "after_ok") {
      // Job ids: a list, or one id.
      if (!v.IsSequence() && !v.IsScalar()) return err.At(v, key + " must be a list of job ids ([j-3, j-4])");
      std::vector<std::string>& into = key == "after" ? spec.after : spec.after_ok;
      into.clear();
      if (v.IsScalar()) into.push_back(v.Scalar());
      for (const auto& a : v) {
        if (!a.IsScalar()) return err.At(a, "each item of " + key + " must be a job id such as j-3");
        into.push_back(a.Scalar());
      }
      for (const auto& id : into) {
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { (key == "after" ? o.after : o.after_ok) = {id}; }));
      }
    } else if (key == "env") {
      if (!v.IsMap()) return err.At(v, "env must be a mapping of NAME: value ({BATCH: \"256\"})");
      RETURN_IF_ERROR(CheckKeys(v, err, " in env"));
      for (const auto& e : v) {
        const std::string name = e.first.Scalar();
        if (!e.second.IsScalar() && !e.second.IsNull()) {
          return err.At(e.second, "the value of env " + name + " must be a single string");
        }
        if (auto st = ParseEnvAssignment(name + "=").status(); !st.ok()) return err.At(e.first, st.message());
        spec.env[name] = e.second.IsNull() ? "" : e.second.Scalar();
        RETURN_IF_ERROR(CheckField(e.second.IsNull() ? e.first : e.second, err,
                                   [&](api::JobSpec& o) { o.env = {{name, spec.env[name]}}; }));
      }
    } else if (key == "resources") {
      RETURN_IF_ERROR(ApplyResources(v, err, type, count));
    } else {
      if (!v.IsScalar()) return err.At(v, key + " must be a single value, not a list or mapping");
      const std::string s = v.Scalar();
      auto fail = [&](const Status& st) { return err.At(v, st.message()); };
      if (key == "name") {
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { o.name = s; }));
        spec.name = s;
      } else if (key == "gpus") {
        auto g = ParseGpuRequestText(s, "gpus", /*type_alone=*/false);
        if (!g.ok()) return fail(g.status());
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) {
          o.gpu_type = g->type;
          o.gpus_milli = *g->milli;
        }));
        if (!g->type.empty()) RETURN_IF_ERROR(Agree(type, g->type, "gpus", v, err, "GPU type"));
        RETURN_IF_ERROR(Agree(count, FormatMilliGpu(*g->milli), "gpus", v, err, "GPU count"));
      } else if (key == "gpu_type") {
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { o.gpu_type = s; }));
        RETURN_IF_ERROR(Agree(type, s, "gpu_type", v, err, "GPU type"));
      } else if (key == "memory" || key == "memory_mib") {
        auto m = ParseMemoryMiB(s);
        if (!m.ok()) return fail(Prefix(m.status(), key + ": "));
        spec.memory_mib = *m;
      } else if (key == "runtime" || key == "runtime_limit_s") {
        auto d = ParseDurationSeconds(s);
        if (!d.ok()) return fail(Prefix(d.status(), key + ": "));
        spec.runtime_limit_s = *d;
      } else if (key == "priority") {
        auto p = ParseInt(s, "priority", 0, 100);
        if (!p.ok()) return fail(p.status());
        spec.priority = static_cast<int>(*p);
      } else if (key == "workdir") {
        if (!s.empty() && s[0] != '/') {
          return err.At(v, "workdir '" + s + "' is relative: give an absolute path on the node that runs the job "
                           "(e.g. /data/run1), or --here to run in the directory you submit from");
        }
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { o.workdir = s; }));
        spec.workdir = s;
      } else if (key == "image") {
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { o.image = s; }));
        spec.image = s;
      } else if (key == "array") {
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { o.array = s; }));
        spec.array = s;
      } else if (key == "project") {
        RETURN_IF_ERROR(CheckField(v, err, [&](api::JobSpec& o) { o.project = s; }));
        spec.project = s;
      } else if (key == "max_retries") {
        auto r = ParseInt(s, "max_retries", 0, 100);
        if (!r.ok()) return fail(r.status());
        spec.max_retries = static_cast<int>(*r);
      } else if (key == "processes") {
        auto p = api::ParseProcessLayout(s);
        if (!p.ok()) return fail(p.status());
        spec.processes = *p;
      } else if (key == "preemptible") {
        bool b = false;
        if (!YAML::convert<bool>::decode(v, b)) return fail(InvalidArgument("preemptible must be true or false"));
        spec.preemptible = b;
      } else if (key == "checkpoint_signal") {
        auto sig = api::ParseCheckpointSignal(s);
        if (!sig.ok()) return fail(sig.status());
        spec.checkpoint_signal = *sig;
      } else if (key == "checkpoint_grace") {
        auto d = ParseDurationSeconds(s);
        if (!d.ok()) return fail(Prefix(d.status(), "checkpoint_grace: "));
        spec.checkpoint_grace_s = *d;
      } else if (key == "begin" || key == "deadline") {
        auto t = ParseWhen(s, 0, key);
        if (!t.ok()) return fail(t.status());
        (key == "begin" ? spec.begin_at : spec.deadline_at) = *t;
      }
    }
  }
  if (type.line > 0) spec.gpu_type = type.value;
  if (count.line > 0) spec.gpus_milli = *ParseMilliGpu(count.value);
  return Status::Ok();
}

}  // namespace

Result<std::pair<std::string, std::string>> ParseEnvAssignment(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgument("'" + std::string(text) + "' is not NAME=VALUE (example: --env BATCH=64)");
  std::string key(text.substr(0, eq));
  if (key.empty()) return InvalidArgument("'" + std::string(text) + "' has an empty variable name");
  bool ok = std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_';
  for (char c : key) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  if (!ok)
    return InvalidArgument("'" + key + "' is not a valid environment variable name (letters, digits, _)");
  return std::make_pair(key, std::string(text.substr(eq + 1)));
}

Result<UnixMillis> ParseWhen(std::string_view text, UnixMillis now, std::string_view what) {
  std::string t = Trim(std::string(text));
  std::string_view rel = t;
  if (rel.rfind("now", 0) == 0) rel.remove_prefix(3);
  if (rel.empty() && t == "now") {
    if (now <= 0) return InvalidArgument(std::string(what) + ": 'now' is not a fixed time; give one such as 2026-12-08T10:00:00Z");
    return now;
  }
  if (!rel.empty() && rel[0] == '+') {
    if (now <= 0) {
      return InvalidArgument(std::string(what) + ": '" + t + "' is relative; a job file needs a fixed time such as "
                             "2026-12-08T10:00:00Z (relative times are for --begin/--deadline)");
    }
    auto d = ParseDurationSeconds(rel.substr(1));
    if (!d.ok()) return InvalidArgument(std::string(what) + ": '" + t + "': " + d.status().message());
    return now + *d * 1000;
  }
  auto at = ParseTimestamp(t);
  if (!at.ok()) {
    return InvalidArgument(std::string(what) + ": '" + t.substr(0, 64) + "' is not a time; give 2026-12-08T10:00:00Z, "
                           "2026-12-08T10:00+01:00, 2026-12-08, or now+2h / +30m");
  }
  return *at;
}

Result<api::JobSpec> ParseJobYaml(std::string_view text, api::JobSpec base, std::string_view file_name) {
  FileErrors err(file_name, text);
  try {
    YAML::Node root = YAML::Load(std::string(text));
    RETURN_IF_ERROR(CheckQuotes(root, err));
    if (auto second = SecondDocument(text)) {
      return err.At(*second, "a second YAML document starts here (a '---' or '...' line ends the first); a job "
                             "file holds one set of fields");
    }
    RETURN_IF_ERROR(ApplyYaml(root, err, base));
    return base;
  } catch (const YAML::Exception& e) {
    return SyntaxError(err, e);
  }
}

Result<api::JobSpec> BuildJobSpec(const SubmitFlags& flags, const ReadFileFn& read_file) {
  api::JobSpec spec;
  spec.project.clear();  // none named unless the file or a flag names one (then the server decides)
  std::optional<api::JobSpec> file_spec;
  if (flags.file) {
    auto text = read_file(*flags.file);
    if (!text) return InvalidArgument("cannot read job file '" + *flags.file + "'");
    ASSIGN_OR_RETURN(spec, ParseJobYaml(*text, spec, *flags.file));
    file_spec = spec;
  }
  if (flags.name) spec.name = *flags.name;
  if (flags.gpus) {
    ASSIGN_OR_RETURN(GpuRequest g, ParseGpuRequestText(*flags.gpus, "--gpus", /*type_alone=*/false));
    if (!g.type.empty() && flags.gpu_type && Trim(*flags.gpu_type) != g.type) {
      return InvalidArgument("--gpus " + Trim(*flags.gpus) + " asks for GPU type " + g.type + " but --gpu-type asks for " +
                             *flags.gpu_type + "; give the type once");
    }
    if (!g.type.empty()) spec.gpu_type = g.type;
    spec.gpus_milli = *g.milli;
  }
  if (flags.gpu_type) spec.gpu_type = Trim(*flags.gpu_type);
  if (flags.memory) {
    ASSIGN_OR_RETURN(spec.memory_mib, Prefix(ParseMemoryMiB(*flags.memory), "invalid --memory: "));
  }
  if (flags.runtime) {
    ASSIGN_OR_RETURN(spec.runtime_limit_s, Prefix(ParseDurationSeconds(*flags.runtime), "invalid --runtime: "));
  }
  if (flags.priority) {
    ASSIGN_OR_RETURN(int64_t p, ParseInt(*flags.priority, "--priority", 0, 100));
    spec.priority = static_cast<int>(p);
  }
  if (flags.workdir) spec.workdir = *flags.workdir;
  if (flags.here && flags.workdir) return InvalidArgument("give --here or --workdir DIR, not both");
  if (!spec.workdir.empty() && spec.workdir[0] != '/') {
    return InvalidArgument("workdir '" + spec.workdir + "' is relative: give an absolute path on the node that runs "
                           "the job (e.g. /data/run1), or --here to run in the directory you submit from");
  }
  if (flags.array) {
    spec.array = *flags.array;
    RETURN_IF_ERROR(Prefix(api::ParseArraySpec(spec.array).status(), "invalid --array: "));
  }
  if (flags.image) {
    spec.image = *flags.image;
    RETURN_IF_ERROR(Prefix(api::ValidateImageName(spec.image), "invalid --image: "));
  }
  if (flags.project) spec.project = *flags.project;
  if (flags.max_retries) {
    ASSIGN_OR_RETURN(int64_t r, ParseInt(*flags.max_retries, "--max-retries", 0, 100));
    spec.max_retries = static_cast<int>(r);
  }
  for (const auto& e : flags.env) {
    ASSIGN_OR_RETURN(auto kv, Prefix(ParseEnvAssignment(e), "invalid --env: "));
    spec.env[kv.first] = kv.second;
  }
  // --secret adds to the file's list; a name given twice is sent once.
  for (const auto& name : flags.secrets) {
    if (std::find(spec.secrets.begin(), spec.secrets.end(), name) == spec.secrets.end()) spec.secrets.push_back(name);
  }
  if (flags.process_per_gpu) spec.processes = api::ProcessLayout::kPerGpu;
  if (flags.preemptible) spec.preemptible = true;
  if (flags.checkpoint_signal) {
    ASSIGN_OR_RETURN(spec.checkpoint_signal, Prefix(api::ParseCheckpointSignal(*flags.checkpoint_signal), "--checkpoint-signal: "));
  }
  if (flags.checkpoint_grace) {
    ASSIGN_OR_RETURN(spec.checkpoint_grace_s,
                     Prefix(ParseDurationSeconds(*flags.checkpoint_grace), "invalid --checkpoint-grace: "));
  }
  if (flags.begin) {
    ASSIGN_OR_RETURN(spec.begin_at, ParseWhen(*flags.begin, flags.now, "--begin"));
  }
  if (flags.deadline) {
    ASSIGN_OR_RETURN(spec.deadline_at, ParseWhen(*flags.deadline, flags.now, "--deadline"));
  }
  if (!flags.command.empty()) spec.command = flags.command;
  if (spec.command.empty()) {
    return InvalidArgument(
        "no command to run: put it after '--' (fastgpu job submit --gpus 1 -- python train.py) or set "
        "'command' in the job file");
  }
  // No project named: the server decides ("default", or the caller's only project).
  Status valid = api::ValidateJobSpec(spec);
  if (!valid.ok() && file_spec) {
    // Fields of the file that do not go together (processes: per-gpu with gpus: 0.5): name the file.
    if (file_spec->command.empty()) file_spec->command = {"true"};
    if (api::ValidateJobSpec(*file_spec).message() == valid.message()) return Prefix(valid, *flags.file + ": ");
  }
  RETURN_IF_ERROR(valid);
  return spec;
}

std::string JobSpecRequestBody(const api::JobSpec& spec) {
  nlohmann::json j = api::ToJson(spec);
  j.erase("gpus_milli");  // the request carries the exact text form ("0.25")
  if (spec.project.empty()) j.erase("project");
  return j.dump();
}

}  // namespace fastgpu::cli
