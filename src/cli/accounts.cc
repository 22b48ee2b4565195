#include "cli/accounts.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>
#include <istream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "cli/table.h"
#include "common/clock.h"

namespace fastgpu::cli {

using nlohmann::json;

// ---- pure helpers --------------------------------------------------------------------------------

std::string FormatUsd(int64_t micro) {
  const bool neg = micro < 0;
  // Negate in unsigned arithmetic so INT64_MIN does not overflow.
  const uint64_t abs = neg ? 0 - static_cast<uint64_t>(micro) : static_cast<uint64_t>(micro);
  std::string frac = std::to_string(abs % 1'000'000);
  frac.insert(0, 6 - frac.size(), '0');
  while (frac.size() > 2 && frac.back() == '0') frac.pop_back();
  return std::string(neg ? "-$" : "$") + std::to_string(abs / 1'000'000) + "." + frac;
}

std::string FormatGpuHoursMilli(int64_t milli) {
  const bool neg = milli < 0;
  const uint64_t abs = neg ? 0 - static_cast<uint64_t>(milli) : static_cast<uint64_t>(milli);
  std::string frac = std::to_string(abs % 1000);
  frac.insert(0, 3 - frac.size(), '0');
  return std::string(neg ? "-" : "") + std::to_string(abs / 1000) + "." + frac;
}

namespace {

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

Result<int64_t> ParseCount(std::string_view text, std::string_view what, int64_t hi) {
  std::string s = Trim(text);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < 0 || v > hi)
    return InvalidArgument(std::string(what) + " must be a whole number from 0 to " + std::to_string(hi) + ", got '" +
                           std::string(text) + "'");
  return v;
}

// "YYYY-MM"
Status CheckMonth(const std::string& month) {
  if (month.empty()) return Status::Ok();
  bool ok = month.size() == 7 && month[4] == '-' && AllDigits(month.substr(0, 4)) && AllDigits(month.substr(5));
  if (ok) {
    int m = std::stoi(month.substr(5));
    ok = m >= 1 && m <= 12;
  }
  if (!ok) return InvalidArgument("--month must be YYYY-MM (e.g. 2026-11), got '" + month + "'");
  return Status::Ok();
}

}  // namespace

Result<int64_t> ParseUsdMicro(std::string_view text, std::string_view what, bool allow_negative) {
  std::string s = Trim(text);
  const std::string bad = std::string(what) + " must be an amount in dollars such as 2.50, got '" + std::string(text) + "'";
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s.erase(0, 1);
  }
  if (!s.empty() && s[0] == '$') s.erase(0, 1);
  const size_t dot = s.find('.');
  std::string whole = s.substr(0, dot);
  std::string frac = dot == std::string::npos ? "" : s.substr(dot + 1);
  if (!AllDigits(whole) || (dot != std::string::npos && !AllDigits(frac))) return InvalidArgument(bad);
  if (frac.size() > 6) return InvalidArgument(std::string(what) + " has more than 6 decimals: '" + std::string(text) + "'");
  if (whole.size() > 12) return InvalidArgument(std::string(what) + " is too large: '" + std::string(text) + "'");
  frac.append(6 - frac.size(), '0');
  int64_t v = std::stoll(whole) * 1'000'000 + std::stoll(frac);
  if (neg && !allow_negative) return InvalidArgument(std::string(what) + " must not be negative");
  return neg ? -v : v;
}

Result<bool> ParseBoolFlag(std::string_view text, std::string_view what) {
  std::string s = Trim(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  if (s == "true" || s == "yes" || s == "1") return true;
  if (s == "false" || s == "no" || s == "0") return false;
  return InvalidArgument(std::string(what) + " must be true or false, got '" + std::string(text) + "'");
}

Result<QuotaGpuItem> ParseQuotaGpus(std::string_view text) {
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos)
    return InvalidArgument("--quota-gpus '" + std::string(text) + "' is not TYPE=N (example: A100-80GB=8 or '*=16')");
  QuotaGpuItem item{Trim(text.substr(0, eq)), std::nullopt};
  std::string value = Trim(text.substr(eq + 1));
  if (item.type.empty()) return InvalidArgument("--quota-gpus '" + std::string(text) + "' has no GPU type");
  for (char c : item.type) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '*'))
      return InvalidArgument("--quota-gpus: '" + item.type + "' is not a GPU type (example: A100-80GB, or * for all)");
  }
  if (value == "none") return item;
  auto milli = ParseMilliGpu(value);
  if (!milli.ok())
    return InvalidArgument("--quota-gpus " + item.type + ": '" + value +
                           "' is not a number of GPUs (example: " + item.type + "=8, or " + item.type +
                           "=none to remove the limit)");
  item.milli = *milli;
  return item;
}

Result<std::string> SecretValueFromInput(std::string text) {
  if (text.size() >= 2 && text.compare(text.size() - 2, 2, "\r\n") == 0) {
    text.resize(text.size() - 2);
  } else if (!text.empty() && text.back() == '\n') {
    text.pop_back();
  }
  if (text.empty()) return InvalidArgument("the secret value is empty (pipe it on stdin: printf %s \"$VALUE\" | fastgpu secret set ...)");
  return text;
}

Result<std::string> ReadSecretValue(std::istream* in, bool in_is_tty, const PromptHiddenFn& prompt_hidden,
                                    const std::string& name) {
  constexpr size_t kMaxSecretBytes = 1 << 20;
  std::string raw;
  if (in_is_tty) {
    if (!prompt_hidden) return InvalidArgument("cannot prompt for the secret value: pipe it on stdin");
    ASSIGN_OR_RETURN(raw, prompt_hidden("Value of secret " + name + " (not echoed): "));
  } else {
    if (in == nullptr) return InvalidArgument("no standard input to read the secret value from");
    char buf[4096];
    while (in->read(buf, sizeof buf) || in->gcount() > 0) {
      raw.append(buf, static_cast<size_t>(in->gcount()));
      if (raw.size() > kMaxSecretBytes) return InvalidArgument("the secret value is larger than 1 MiB");
    }
  }
  return SecretValueFromInput(std::move(raw));
}

// ---- output helpers ------------------------------------------------------------------------------

namespace {

void PrintJson(Context& ctx, const json& j) { ctx.out << j.dump(2) << "\n" << std::flush; }
int Fail(Context& ctx, const Status& st) { return ReportError(ctx.err, st, kExitFailure); }
int BadInput(Context& ctx, const Status& st) { return ReportError(ctx.err, st, kExitUsage); }

std::string Str(const json& j, const char* k) {
  if (!j.is_object()) return "";
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}
int64_t Int(const json& j, const char* k) {
  if (!j.is_object()) return 0;
  auto it = j.find(k);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}
bool Bool(const json& j, const char* k) {
  if (!j.is_object()) return false;
  auto it = j.find(k);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}
std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }
std::string YesNo(bool b) { return b ? "yes" : "no"; }

// A time given as "<k>_ms" (unix ms), or "<k>" as RFC 3339 text or unix ms. "-" when absent or zero.
std::string When(const json& j, const std::string& k) {
  if (!j.is_object()) return "-";
  if (auto it = j.find(k + "_ms"); it != j.end() && it->is_number_integer() && it->get<int64_t>() > 0)
    return FormatTimestamp(it->get<int64_t>());
  auto it = j.find(k);
  if (it == j.end()) return "-";
  if (it->is_number_integer()) return it->get<int64_t>() > 0 ? FormatTimestamp(it->get<int64_t>()) : "-";
  return it->is_string() && !it->get<std::string>().empty() ? it->get<std::string>() : "-";
}

std::string Seg(const std::string& s) { return UrlEncode(s); }
std::string ProjectPath(const std::string& p) { return "/v1/projects/" + Seg(p); }

std::string Query(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string q;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    q += (q.empty() ? "?" : "&") + k + "=" + UrlEncode(v);
  }
  return q;
}

std::string RenderKv(const std::vector<std::pair<std::string, Cell>>& kv, bool color) {
  size_t w = 0;
  for (const auto& [k, v] : kv) w = std::max(w, k.size());
  std::string out;
  for (const auto& [k, v] : kv) out += k + ":" + std::string(w - k.size() + 2, ' ') + Paint(v.text, v.color, color) + "\n";
  return out;
}

const json& Items(const json& j, const char* field) {
  static const json kEmpty = json::array();
  if (j.is_object()) {
    auto it = j.find(field);
    if (it != j.end() && it->is_array()) return *it;
  }
  return kEmpty;
}

// Listing verbs: JSON passes through; tables render the `field` array.
int ShowList(Context& ctx, const Result<json>& r, const char* field,
             const std::function<std::string(const json& items)>& render) {
  if (!r.ok()) return Fail(ctx, r.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
    return kExitOk;
  }
  if (!r->is_object() || !r->contains(field) || !(*r)[field].is_array())
    return Fail(ctx, Internal(std::string("server answer has no '") + field + "' list"));
  ctx.out << render((*r)[field]) << std::flush;
  return kExitOk;
}

// Single objects: JSON passes through; tables use `render`.
int ShowObject(Context& ctx, const Result<json>& r, const std::function<std::string(const json&)>& render) {
  if (!r.ok()) return Fail(ctx, r.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
    return kExitOk;
  }
  ctx.out << render(*r) << std::flush;
  return kExitOk;
}

// Changes: JSON prints the server's answer (nothing for an empty one); tables print `message`.
int Done(Context& ctx, const Result<json>& r, const std::string& message) {
  if (!r.ok()) return Fail(ctx, r.status());
  if (ctx.format == OutputFormat::kJson) {
    if (!r->is_null()) PrintJson(ctx, *r);
  } else {
    ctx.out << message << "\n" << std::flush;
  }
  return kExitOk;
}

Color RoleColor(const std::string& role) {
  if (role == "owner") return Color::kCyan;
  if (role == "viewer") return Color::kDim;
  return Color::kNone;
}

std::string RenderUsers(const json& users, bool color) {
  Table t({"NAME", "DISPLAY NAME", "ADMIN", "STATUS", "CREATED"});
  for (const auto& u : users) {
    const bool disabled = Bool(u, "disabled");
    t.AddRow({Str(u, "name"), OrDash(Truncate(Str(u, "display_name"), 32)), YesNo(Bool(u, "admin")),
              Cell(disabled ? "disabled" : "active", disabled ? Color::kRed : Color::kGreen), When(u, "created_at")});
  }
  return t.Render(color);
}

std::string RenderUser(const json& u, bool color) {
  const bool disabled = Bool(u, "disabled");
  return RenderKv({{"Name", Str(u, "name")},
                   {"Display name", OrDash(Str(u, "display_name"))},
                   {"Admin", YesNo(Bool(u, "admin"))},
                   {"Status", Cell(disabled ? "disabled" : "active", disabled ? Color::kRed : Color::kGreen)},
                   {"Created", When(u, "created_at")}},
                  color);
}

// "A100-80GB=8, *=16" from a quota object (text counts, or milli counts when only those are given).
std::string QuotaGpusText(const json& quota) {
  std::vector<std::string> parts;
  if (auto it = quota.find("max_gpus"); it != quota.end() && it->is_object()) {
    for (const auto& [type, n] : it->items()) parts.push_back(type + "=" + (n.is_string() ? n.get<std::string>() : n.dump()));
  } else if (auto m = quota.find("max_gpus_milli"); m != quota.end() && m->is_object()) {
    for (const auto& [type, n] : m->items())
      parts.push_back(type + "=" + (n.is_number_integer() ? FormatMilliGpu(n.get<int64_t>()) : n.dump()));
  }
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? ", " : "") + parts[i];
  return out;
}

std::string BudgetText(const json& budget) {
  const int64_t limit = Int(budget, "monthly_limit_micro");
  if (limit <= 0) return "none";
  return FormatUsd(limit) + " per month (" + (Bool(budget, "hard") ? "hard: at 100 % new jobs wait and running jobs stop" : "soft: at 100 % new jobs wait") +
         ")";
}

json Sub(const json& j, const char* k);

// " (83 % of the budget)" when the project has a budget.
std::string BudgetShare(const json& p) {
  const int64_t limit = Int(Sub(p, "budget"), "monthly_limit_micro");
  if (limit <= 0) return "";
  return " (" + std::to_string(Int(p, "spent_this_month_micro") * 100 / limit) + " % of the budget)";
}

json Sub(const json& j, const char* k) {
  if (j.is_object()) {
    auto it = j.find(k);
    if (it != j.end() && it->is_object()) return *it;
  }
  return json::object();
}

std::string RenderProjects(const json& projects, bool color) {
  Table t({"NAME", "DESCRIPTION", "GPU QUOTA", "BUDGET/MONTH", "CREATED"});
  for (const auto& p : projects) {
    const json budget = Sub(p, "budget");
    const int64_t limit = Int(budget, "monthly_limit_micro");
    t.AddRow({Str(p, "name"), OrDash(Truncate(Str(p, "description"), 40)), OrDash(Truncate(QuotaGpusText(Sub(p, "quota")), 32)),
              limit > 0 ? FormatUsd(limit) + (Bool(budget, "hard") ? " (hard)" : "") : "-", When(p, "created_at")});
  }
  return t.Render(color);
}

// Who the project's jobs run as on a root agent: its named OS user, else its own uid.
std::string JobIdentityText(const json& p) {
  const std::string user = Str(p, "run_as_user");
  if (!user.empty()) return "OS user " + user;
  const int64_t uid = Int(p, "run_as_uid");
  return uid > 0 ? "uid " + std::to_string(uid) + " (the project's own)" : std::string("-");
}

std::string RenderProject(const json& p, bool color) {
  const json quota = Sub(p, "quota");
  auto limit = [](int64_t v) { return v > 0 ? std::to_string(v) : std::string("unlimited"); };
  return RenderKv({{"Name", Str(p, "name")},
                   {"Description", OrDash(Str(p, "description"))},
                   {"Created", When(p, "created_at")},
                   {"GPU quota", QuotaGpusText(quota).empty() ? "unlimited" : QuotaGpusText(quota)},
                   {"GPU-hours per month", limit(Int(quota, "max_gpu_hours_per_month"))},
                   {"Queued jobs", limit(Int(quota, "max_queued_jobs"))},
                   {"Budget", BudgetText(Sub(p, "budget"))},
                   {"Spent this month", FormatUsd(Int(p, "spent_this_month_micro")) + BudgetShare(p)},
                   {"Jobs run as", JobIdentityText(p)},
                   {"Allow root", Cell(YesNo(Bool(p, "allow_root")), Bool(p, "allow_root") ? Color::kYellow : Color::kNone)}},
                  color);
}

Status CheckRole(const std::string& role) {
  if (role == "viewer" || role == "member" || role == "owner") return Status::Ok();
  return InvalidArgument("--role must be viewer, member or owner, got '" + role + "'");
}

}  // namespace

// ---- identity ------------------------------------------------------------------------------------

int Login(Context& ctx, const std::string& home, const Credentials& creds) {
  auto who = ctx.client.GetJson("/v1/whoami");
  if (!who.ok()) return Fail(ctx, Status(who.status().code(), "login to " + creds.server + " failed: " + who.status().message()));
  Status st = WriteCredentials(home, creds);
  if (!st.ok()) return Fail(ctx, st);
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, json{{"server", creds.server}, {"user", Str(*who, "user")}, {"credentials", CredentialsPath(home)}});
  } else {
    ctx.out << "logged in to " << creds.server << " as " << Str(*who, "user") << "\n" << std::flush;
  }
  return kExitOk;
}

int Logout(std::ostream& out, std::ostream& err, const std::string& home) {
  auto removed = RemoveCredentials(home);
  if (!removed.ok()) return ReportError(err, removed.status(), kExitFailure);
  out << (*removed ? "logged out (removed " + CredentialsPath(home) + ")" : std::string("not logged in: nothing to remove"))
      << "\n" << std::flush;
  return kExitOk;
}

int Whoami(Context& ctx) {
  return ShowObject(ctx, ctx.client.GetJson("/v1/whoami"), [&](const json& w) {
    std::string projects;
    for (const auto& p : Items(w, "projects")) projects += (projects.empty() ? "" : ", ") + Str(p, "project") + " (" + Str(p, "role") + ")";
    return RenderKv({{"User", Str(w, "user")},
                     {"Server", ctx.client.base_url()},
                     {"Admin", YesNo(Bool(w, "admin"))},
                     {"Service account", YesNo(Bool(w, "service_account"))},
                     {"Token", OrDash(Str(w, "token_id"))},
                     {"Projects", OrDash(projects)}},
                    ctx.color);
  });
}

// ---- users ---------------------------------------------------------------------------------------

int UserCreate(Context& ctx, const std::string& name, bool admin, const std::optional<std::string>& display_name) {
  json body = {{"name", name}, {"admin", admin}};
  if (display_name) body["display_name"] = *display_name;
  return Done(ctx, ctx.client.PostJson("/v1/users", body.dump()),
              "created user " + name + (admin ? " (admin)" : ""));
}

int UserList(Context& ctx) {
  return ShowList(ctx, ctx.client.GetJson("/v1/users"), "users", [&](const json& v) { return RenderUsers(v, ctx.color); });
}

int UserGet(Context& ctx, const std::string& name) {
  return ShowObject(ctx, ctx.client.GetJson("/v1/users/" + Seg(name)), [&](const json& u) { return RenderUser(u, ctx.color); });
}

int UserSet(Context& ctx, const std::string& name, std::optional<bool> admin, std::optional<bool> disabled,
            const std::optional<std::string>& display_name) {
  json body = json::object();
  if (admin) body["admin"] = *admin;
  if (disabled) body["disabled"] = *disabled;
  if (display_name) body["display_name"] = *display_name;
  if (body.empty()) return BadInput(ctx, InvalidArgument("nothing to change: give --admin true|false or --display-name"));
  std::string what = disabled ? (*disabled ? "disabled user " : "enabled user ") + name : "updated user " + name;
  return Done(ctx, ctx.client.PatchJson("/v1/users/" + Seg(name), body.dump()), what);
}

// ---- projects ------------------------------------------------------------------------------------

int ProjectCreate(Context& ctx, const std::string& name, const std::optional<std::string>& description,
                  const std::optional<std::string>& owner) {
  json body = {{"name", name}};
  if (description) body["description"] = *description;
  if (owner) body["owner"] = *owner;
  return Done(ctx, ctx.client.PostJson("/v1/projects", body.dump()), "created project " + name);
}

int ProjectList(Context& ctx) {
  return ShowList(ctx, ctx.client.GetJson("/v1/projects"), "projects",
                  [&](const json& v) { return RenderProjects(v, ctx.color); });
}

int ProjectGet(Context& ctx, const std::string& name) {
  return ShowObject(ctx, ctx.client.GetJson(ProjectPath(name)), [&](const json& p) { return RenderProject(p, ctx.color); });
}

int ProjectSet(Context& ctx, const std::string& name, const ProjectSetFlags& f) {
  // Everything is checked before anything is sent.
  std::vector<QuotaGpuItem> gpu_items;
  for (const auto& q : f.quota_gpus) {
    auto item = ParseQuotaGpus(q);
    if (!item.ok()) return BadInput(ctx, item.status());
    gpu_items.push_back(*item);
  }
  std::optional<int64_t> hours, queued, budget;
  std::optional<bool> allow_root;
  if (f.quota_gpu_hours) {
    auto v = ParseCount(*f.quota_gpu_hours, "--quota-gpu-hours", int64_t{1} << 40);
    if (!v.ok()) return BadInput(ctx, v.status());
    hours = *v;
  }
  if (f.quota_queued) {
    auto v = ParseCount(*f.quota_queued, "--quota-queued", 1'000'000'000);
    if (!v.ok()) return BadInput(ctx, v.status());
    queued = *v;
  }
  if (f.budget) {
    auto v = ParseUsdMicro(*f.budget, "--budget");
    if (!v.ok()) return BadInput(ctx, v.status());
    budget = *v;
  }
  if (f.allow_root) {
    auto v = ParseBoolFlag(*f.allow_root, "--allow-root");
    if (!v.ok()) return BadInput(ctx, v.status());
    allow_root = *v;
  }
  const bool quota_change = !gpu_items.empty() || hours || queued;
  const bool budget_change = budget || f.budget_hard;

  json patch = json::object();
  if (f.description) patch["description"] = *f.description;
  if (f.run_as) patch["run_as_user"] = *f.run_as;
  if (allow_root) patch["allow_root"] = *allow_root;
  if (quota_change || budget_change) {
    auto current = ctx.client.GetJson(ProjectPath(name));
    if (!current.ok()) return Fail(ctx, current.status());
    if (quota_change) {
      const json old = Sub(*current, "quota");
      json max_gpus = json::object();
      if (auto it = old.find("max_gpus"); it != old.end() && it->is_object()) {
        max_gpus = *it;
      } else if (auto m = old.find("max_gpus_milli"); m != old.end() && m->is_object()) {
        for (const auto& [type, n] : m->items())
          if (n.is_number_integer()) max_gpus[type] = FormatMilliGpu(n.get<int64_t>());
      }
      for (const auto& item : gpu_items) {
        if (item.milli) {
          max_gpus[item.type] = FormatMilliGpu(*item.milli);
        } else {
          max_gpus.erase(item.type);
        }
      }
      patch["quota"] = {{"max_gpus", max_gpus},
                        {"max_gpu_hours_per_month", hours.value_or(Int(old, "max_gpu_hours_per_month"))},
                        {"max_queued_jobs", queued.value_or(Int(old, "max_queued_jobs"))}};
    }
    if (budget_change) {
      const json old = Sub(*current, "budget");
      patch["budget"] = {{"monthly_limit_micro", budget.value_or(Int(old, "monthly_limit_micro"))},
                         {"hard", f.budget_hard.value_or(Bool(old, "hard"))}};
    }
  }
  if (patch.empty())
    return BadInput(ctx, InvalidArgument("nothing to change: give --description, --quota-gpus, --quota-gpu-hours, "
                                         "--quota-queued, --budget, --budget-hard/--budget-soft, --run-as or --allow-root"));
  return ShowObject(ctx, ctx.client.PatchJson(ProjectPath(name), patch.dump()),
                    [&](const json& p) { return RenderProject(p, ctx.color); });
}

// ---- members -------------------------------------------------------------------------------------

int MemberAdd(Context& ctx, const std::string& project, const std::string& user, const std::string& role) {
  if (Status st = CheckRole(role); !st.ok()) return BadInput(ctx, st);
  return Done(ctx, ctx.client.PutJson(ProjectPath(project) + "/members/" + Seg(user), json{{"role", role}}.dump()),
              user + " is now " + role + " of project " + project);
}

int MemberList(Context& ctx, const std::string& project) {
  return ShowList(ctx, ctx.client.GetJson(ProjectPath(project) + "/members"), "members", [&](const json& v) {
    Table t({"USER", "ROLE"});
    for (const auto& m : v) t.AddRow({Str(m, "user"), Cell(Str(m, "role"), RoleColor(Str(m, "role")))});
    return t.Render(ctx.color);
  });
}

int MemberRemove(Context& ctx, const std::string& project, const std::string& user) {
  return Done(ctx, ctx.client.Delete(ProjectPath(project) + "/members/" + Seg(user)),
              "removed " + user + " from project " + project);
}

// ---- tokens and service accounts -----------------------------------------------------------------

int TokenCreate(Context& ctx, const std::optional<std::string>& name, const std::optional<std::string>& expires,
                const std::optional<std::string>& user) {
  json body = json::object();
  if (name) body["name"] = *name;
  if (user) body["user"] = *user;
  if (expires) {
    auto s = ParseDurationSeconds(*expires);
    if (!s.ok()) return BadInput(ctx, InvalidArgument("invalid --expires: " + s.status().message()));
    body["expires_in"] = *s;
  }
  auto r = ctx.client.PostJson("/v1/tokens", body.dump());
  if (!r.ok()) return Fail(ctx, r.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
  } else {
    ctx.out << Str(*r, "token") << "\n" << std::flush;  // alone on stdout, so `> file` keeps just the token
  }
  ctx.err << "created token " << Str(*r, "id") << " for " << Str(*r, "user") << ", expires " << When(*r, "expires_at")
          << ". Store it now: it is not shown again.\n"
          << std::flush;
  return kExitOk;
}

int TokenList(Context& ctx, bool all, const std::string& user) {
  std::string q = Query({{"all", all ? "true" : ""}, {"user", user}});
  return ShowList(ctx, ctx.client.GetJson("/v1/tokens" + q), "tokens", [&](const json& v) {
    Table t({"ID", "NAME", "USER", "CREATED", "EXPIRES", "STATUS"});
    const UnixMillis now = ctx.clock.NowMillis();
    for (const auto& tok : v) {
      std::string status = "active";
      Color c = Color::kGreen;
      auto exp = ParseTimestamp(Str(tok, "expires_at"));
      if (!Str(tok, "revoked_at").empty()) {
        status = "revoked";
        c = Color::kRed;
      } else if (exp.ok() && *exp > 0 && *exp <= now) {
        status = "expired";
        c = Color::kDim;
      }
      if (Bool(tok, "service_account")) status += " (service account)";
      t.AddRow({Str(tok, "id"), OrDash(Str(tok, "name")), Str(tok, "user"), When(tok, "created_at"),
                When(tok, "expires_at"), Cell(status, c)});
    }
    return t.Render(ctx.color);
  });
}

int TokenRevoke(Context& ctx, const std::string& id) {
  return Done(ctx, ctx.client.Delete("/v1/tokens/" + Seg(id)), "revoked token " + id);
}

int ServiceAccountCreate(Context& ctx, const std::string& project, const std::string& name, const std::string& role) {
  if (Status st = CheckRole(role); !st.ok()) return BadInput(ctx, st);
  auto r = ctx.client.PostJson(ProjectPath(project) + "/service-accounts", json{{"name", name}, {"role", role}}.dump());
  if (!r.ok()) return Fail(ctx, r.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
  } else {
    ctx.out << "client_id:     " << Str(*r, "client_id") << "\nclient_secret: " << Str(*r, "client_secret") << "\n"
            << std::flush;
  }
  ctx.err << "created service account " << Str(*r, "id") << " (" << name << ", " << role << " of " << project
          << "). Store the client secret now: it is not shown again. Exchange it for a token with POST /oauth/token "
             "(grant_type=client_credentials).\n"
          << std::flush;
  return kExitOk;
}

int ServiceAccountList(Context& ctx, const std::string& project) {
  return ShowList(ctx, ctx.client.GetJson(ProjectPath(project) + "/service-accounts"), "service_accounts",
                  [&](const json& v) {
                    Table t({"ID", "NAME", "PROJECT", "ROLE", "CREATED"});
                    for (const auto& s : v)
                      t.AddRow({Str(s, "id"), Str(s, "name"), Str(s, "project"),
                                Cell(Str(s, "role"), RoleColor(Str(s, "role"))), When(s, "created_at")});
                    return t.Render(ctx.color);
                  });
}

int ServiceAccountDelete(Context& ctx, const std::string& project, const std::string& id) {
  return Done(ctx, ctx.client.Delete(ProjectPath(project) + "/service-accounts/" + Seg(id)),
              "deleted service account " + id + " of project " + project + " (its tokens are revoked)");
}

// ---- secrets -------------------------------------------------------------------------------------

int SecretSet(Context& ctx, const std::string& project, const std::string& name, const std::string& value) {
  return Done(ctx, ctx.client.PutJson(ProjectPath(project) + "/secrets/" + Seg(name), json{{"value", value}}.dump()),
              "secret " + name + " set in project " + project);
}

int SecretList(Context& ctx, const std::string& project) {
  return ShowList(ctx, ctx.client.GetJson(ProjectPath(project) + "/secrets"), "secrets", [&](const json& v) {
    Table t({"NAME", "UPDATED", "UPDATED BY"});
    for (const auto& s : v) t.AddRow({Str(s, "name"), When(s, "updated_at"), OrDash(Str(s, "updated_by"))});
    return t.Render(ctx.color);
  });
}

int SecretDelete(Context& ctx, const std::string& project, const std::string& name) {
  return Done(ctx, ctx.client.Delete(ProjectPath(project) + "/secrets/" + Seg(name)),
              "deleted secret " + name + " of project " + project);
}

int SecretRotateKey(Context& ctx) {
  auto r = ctx.client.PostJson("/v1/admin/rotate-key", "{}");
  std::string msg = r.ok() ? "master key rotated: " + std::to_string(Int(*r, "rotated")) + " secrets re-encrypted (key " +
                                 Str(*r, "key_id") + ")"
                           : "";
  return Done(ctx, r, msg);
}

// ---- audit ---------------------------------------------------------------------------------------

int AuditList(Context& ctx, std::optional<int64_t> after, std::optional<int> limit) {
  if ((after && *after < 0) || (limit && *limit < 1))
    return BadInput(ctx, InvalidArgument("--after must be >= 0 and --limit >= 1"));
  std::string q = Query({{"after", after ? std::to_string(*after) : ""}, {"limit", limit ? std::to_string(*limit) : ""}});
  return ShowList(ctx, ctx.client.GetJson("/v1/audit" + q), "records", [&](const json& v) {
    Table t({"SEQ", "TIME", "ACTOR", "SOURCE", "ACTION", "TARGET", "RESULT", "DETAIL"});
    for (const auto& a : v) {
      const std::string result = Str(a, "result");
      t.AddRow({Str(a, "seq"), When(a, "at"), Str(a, "actor"), OrDash(Str(a, "source")), Str(a, "action"),
                OrDash(Str(a, "target")), Cell(result, result == "ok" ? Color::kGreen : Color::kRed),
                Truncate(Str(a, "detail"), 48)});
    }
    return t.Render(ctx.color);
  });
}

int AuditVerify(Context& ctx) {
  auto r = ctx.client.GetJson("/v1/audit/verify");
  if (!r.ok()) return Fail(ctx, r.status());
  const bool ok = Bool(*r, "ok");
  if (ctx.format == OutputFormat::kJson) PrintJson(ctx, *r);
  if (ok) {
    if (ctx.format == OutputFormat::kTable)
      ctx.out << "audit log intact: " << Int(*r, "rows") << " rows, hash chain verified\n" << std::flush;
    return kExitOk;
  }
  std::string problem = Str(*r, "problem");
  return Fail(ctx, FailedPrecondition("audit log is broken at seq " + std::to_string(Int(*r, "first_bad_seq")) + ": " +
                                      (problem.empty() ? "hash chain mismatch" : problem) + " (" +
                                      std::to_string(Int(*r, "rows")) + " rows checked)"));
}

// ---- billing -------------------------------------------------------------------------------------

int PriceList(Context& ctx, bool all) {
  return ShowList(ctx, ctx.client.GetJson(std::string("/v1/prices") + (all ? "?all=true" : "")), "prices",
                  [&](const json& v) {
                    Table t({"GPU TYPE", "PRICE/GPU-HOUR", "EFFECTIVE FROM", "SET BY"});
                    for (const auto& p : v)
                      t.AddRow({Str(p, "gpu_type"), FormatUsd(Int(p, "price_per_gpu_hour_micro")),
                                When(p, "effective_from"), OrDash(Str(p, "set_by"))});
                    return t.Render(ctx.color);
                  });
}

int PriceSet(Context& ctx, const std::string& gpu_type, const std::string& price,
             const std::optional<std::string>& effective) {
  auto micro = ParseUsdMicro(price, "PRICE_USD");
  if (!micro.ok()) return BadInput(ctx, micro.status());
  json body = {{"gpu_type", gpu_type}, {"price_per_gpu_hour_micro", *micro}};
  if (effective) {
    auto t = ParseTimestamp(*effective);
    if (!t.ok()) return BadInput(ctx, InvalidArgument("invalid --effective (RFC 3339, e.g. 2026-12-01T00:00:00Z): " +
                                                      t.status().message()));
    body["effective_from"] = *t;
  }
  auto r = ctx.client.PostJson("/v1/prices", body.dump());
  std::string msg = r.ok() ? "price of " + gpu_type + " set to " + FormatUsd(*micro) + " per GPU-hour from " +
                                 When(*r, "effective_from")
                           : "";
  return Done(ctx, r, msg);
}

int Usage(Context& ctx, const std::string& month, const std::string& project) {
  if (Status st = CheckMonth(month); !st.ok()) return BadInput(ctx, st);
  auto r = ctx.client.GetJson("/v1/usage" + Query({{"month", month}, {"project", project}}));
  return ShowObject(ctx, r, [&](const json& u) {
    Table t({"PROJECT", "GPU TYPE", "GPU-HOURS", "COST", "RUNNING"});
    for (const auto& row : Items(u, "rows")) {
      const int64_t running = Int(row, "running_cost_micro");
      t.AddRow({Str(row, "project"), Str(row, "gpu_type"), FormatGpuHoursMilli(Int(row, "gpu_hours_milli")),
                FormatUsd(Int(row, "cost_micro")), running > 0 ? FormatUsd(running) : "-"});
    }
    return t.Render(ctx.color) + "\nTotal for " + Str(u, "month") + ": " + FormatUsd(Int(u, "total_micro")) + "\n";
  });
}

int BillShow(Context& ctx, const std::string& project, const std::string& month) {
  if (Status st = CheckMonth(month); !st.ok()) return BadInput(ctx, st);
  const std::string path = ProjectPath(project) + "/bill";
  if (ctx.format == OutputFormat::kCsv) {
    auto r = ctx.client.GetText(path + Query({{"month", month}, {"format", "csv"}}));
    if (!r.ok()) return Fail(ctx, r.status());
    ctx.out << r->body << std::flush;
    return kExitOk;
  }
  return ShowObject(ctx, ctx.client.GetJson(path + Query({{"month", month}})), [&](const json& inv) {
    std::string out = "Invoice for project " + Str(inv, "project") + ", " + Str(inv, "month") + "\n\n";
    Table t({"GPU TYPE", "GPU-HOURS", "UNIT PRICE", "GROSS", "DISCOUNT", "TOTAL"});
    for (const auto& l : Items(inv, "lines")) {
      const int64_t discount = Int(l, "discount_micro");
      t.AddRow({Str(l, "gpu_type"), FormatGpuHoursMilli(Int(l, "gpu_hours_milli")), FormatUsd(Int(l, "unit_price_micro")),
                FormatUsd(Int(l, "gross_micro")), discount > 0 ? "-" + FormatUsd(discount) : "-",
                FormatUsd(Int(l, "total_micro"))});
    }
    out += t.rows() > 0 ? t.Render(ctx.color) : std::string("(no usage)\n");
    std::vector<std::pair<std::string, Cell>> kv;
    kv.emplace_back("Usage", FormatUsd(Int(inv, "usage_total_micro")));
    for (const auto& c : Items(inv, "credits")) {
      std::string label = "Credit (" + Str(c, "kind") + (Str(c, "key").empty() ? "" : " " + Str(c, "key")) + ")";
      kv.emplace_back(label, "-" + FormatUsd(Int(c, "amount_micro")));
    }
    kv.emplace_back("Amount due", Cell(FormatUsd(Int(inv, "amount_due_micro")), Color::kCyan));
    return out + "\n" + RenderKv(kv, ctx.color);
  });
}

int CreditList(Context& ctx, const std::string& project) {
  return ShowObject(ctx, ctx.client.GetJson(ProjectPath(project) + "/credits"), [&](const json& c) {
    Table t({"TIME", "KIND", "AMOUNT", "EXPIRES", "MEMO", "BY"});
    for (const auto& e : Items(c, "entries"))
      t.AddRow({When(e, "at"), Str(e, "kind"), FormatUsd(Int(e, "amount_micro")), When(e, "expires_at"),
                OrDash(Truncate(Str(e, "memo"), 40)), OrDash(Str(e, "actor"))});
    return "Balance: " + FormatUsd(Int(c, "balance_micro")) + "\n\n" +
           (t.rows() > 0 ? t.Render(ctx.color) : std::string("(no credits)\n"));
  });
}

int CreditAdd(Context& ctx, const std::string& project, const std::string& amount, const std::string& kind,
              std::optional<int> months, const std::optional<std::string>& memo) {
  if (kind != "adjustment" && kind != "prepaid" && kind != "trial_credit")
    return BadInput(ctx, InvalidArgument("--kind must be adjustment, prepaid or trial_credit, got '" + kind + "'"));
  if (months && kind != "prepaid") return BadInput(ctx, InvalidArgument("--months applies only to --kind prepaid"));
  if (months && (*months < 1 || *months > 36)) return BadInput(ctx, InvalidArgument("--months must be 1..36"));
  // Only an adjustment may take money away.
  auto micro = ParseUsdMicro(amount, "--amount", /*allow_negative=*/kind == "adjustment");
  if (!micro.ok()) return BadInput(ctx, micro.status());
  json body = {{"kind", kind}, {"amount_micro", *micro}};
  if (months) body["months"] = *months;
  if (memo) body["memo"] = *memo;
  auto r = ctx.client.PostJson(ProjectPath(project) + "/credits", body.dump());
  std::string msg = r.ok() ? "added " + FormatUsd(*micro) + " (" + kind + ") to project " + project + "; balance " +
                                 FormatUsd(Int(*r, "balance_micro"))
                           : "";
  return Done(ctx, r, msg);
}

int JobSubmitDryRun(Context& ctx, const SubmitFlags& flags, const ReadFileFn& read_file) {
  auto spec = BuildJobSpec(flags, read_file);
  if (!spec.ok()) return BadInput(ctx, spec.status());
  auto r = ctx.client.PostJson("/v1/jobs?dry_run=true", JobSpecRequestBody(*spec));
  if (!r.ok()) return Fail(ctx, r.status());
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
    return kExitOk;
  }
  const std::string type = Str(*r, "gpu_type").empty() ? "any type" : Str(*r, "gpu_type");
  const int64_t runtime = Int(*r, "runtime_limit_s");
  std::vector<std::pair<std::string, Cell>> kv = {
      {"GPUs", FormatMilliGpu(Int(*r, "gpus_milli")) + " x " + type},
      {"Price per hour", FormatUsd(Int(*r, "price_per_hour_micro")) + " (" +
                             FormatUsd(Int(*r, "price_per_gpu_hour_micro")) + " per GPU-hour)"},
      {"Runtime limit", runtime > 0 ? FormatDuration(runtime) : "none"},
      {"Estimate", runtime > 0 ? Cell(FormatUsd(Int(*r, "estimate_micro")) + " if it runs to its limit", Color::kCyan)
                               : Cell("- (no runtime limit; give --runtime for an estimate)")}};
  ctx.out << "Dry run: nothing was submitted.\n" << RenderKv(kv, ctx.color) << std::flush;
  return kExitOk;
}

}  // namespace fastgpu::cli
