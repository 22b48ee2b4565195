#include "api/accounts_json.h"

#include <limits>
#include <nlohmann/json.hpp>
#include <set>

namespace fastgpu::api {

using nlohmann::json;

namespace {

constexpr int64_t kMaxInt = std::numeric_limits<int64_t>::max();
constexpr int64_t kMaxJobUid = 4'294'967'294;  // (uid_t)-1 means "no change" to setuid

// Reads the fields of one JSON object strictly. `prefix` names nested objects in messages ("quota.").
class Reader {
 public:
  Reader(const json& j, std::string what, std::string prefix = "")
      : j_(j), what_(std::move(what)), prefix_(std::move(prefix)) {}

  Status Check(const std::set<std::string>& allowed) const {
    if (!j_.is_object()) {
      if (prefix_.empty()) return InvalidArgument(what_ + " must be a JSON object");
      return InvalidArgument("field '" + prefix_.substr(0, prefix_.size() - 1) + "' must be a JSON object");
    }
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      if (!allowed.count(it.key())) return InvalidArgument("unknown field '" + prefix_ + it.key() + "' in " + what_);
    }
    return Status::Ok();
  }

  const json* Find(const char* key) const {
    auto it = j_.find(key);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::string Name(const std::string& key) const { return "field '" + prefix_ + key + "'"; }

  Result<std::string> String(const char* key) const {
    const json* v = Find(key);
    if (!v) return std::string();
    if (!v->is_string()) return InvalidArgument(Name(key) + " of " + what_ + " must be a string");
    return v->get<std::string>();
  }

  Result<std::string> RequiredString(const char* key) const {
    ASSIGN_OR_RETURN(std::string s, String(key));
    if (s.empty()) return InvalidArgument(Name(key) + " of " + what_ + " is required");
    return s;
  }

  Result<bool> Bool(const char* key) const {
    const json* v = Find(key);
    if (!v) return false;
    if (!v->is_boolean()) return InvalidArgument(Name(key) + " of " + what_ + " must be true or false");
    return v->get<bool>();
  }

  Result<int64_t> Int(const char* key, int64_t lo = 0, int64_t hi = kMaxInt) const {
    const json* v = Find(key);
    if (!v) return int64_t{0};
    return IntValue(*v, Name(key), lo, hi);
  }

  Result<int64_t> IntValue(const json& v, const std::string& name, int64_t lo, int64_t hi) const {
    if (!v.is_number_integer()) return InvalidArgument(name + " of " + what_ + " must be an integer");
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(kMaxInt))
      return InvalidArgument(name + " of " + what_ + " is out of range");
    int64_t x = v.get<int64_t>();
    if (x < lo || x > hi)
      return InvalidArgument(name + " of " + what_ + " must be between " + std::to_string(lo) + " and " +
                             std::to_string(hi) + ", got " + std::to_string(x));
    return x;
  }

  // "<key>_ms" (unix ms) wins; else "<key>" as RFC 3339 text ("" = 0) or unix ms. Both must agree in type.
  Result<UnixMillis> Time(const std::string& key) const {
    const std::string ms_key = key + "_ms";
    const json* text = Find(key.c_str());
    if (text && !text->is_string() && !text->is_number_integer())
      return InvalidArgument(Name(key) + " of " + what_ + " must be an RFC 3339 time or unix milliseconds");
    if (const json* ms = Find(ms_key.c_str())) return IntValue(*ms, Name(ms_key), 0, kMaxInt);
    if (!text) return UnixMillis{0};
    if (text->is_number_integer()) return IntValue(*text, Name(key), 0, kMaxInt);
    const std::string s = text->get<std::string>();
    if (s.empty()) return UnixMillis{0};
    auto t = ParseTimestamp(s);
    if (!t.ok()) return InvalidArgument(Name(key) + " of " + what_ + ": " + t.status().message());
    if (*t < 0) return InvalidArgument(Name(key) + " of " + what_ + " must not be before 1970");
    return *t;
  }

  Result<Role> RoleField(const char* key, Role def) const {
    ASSIGN_OR_RETURN(std::string s, String(key));
    if (s.empty()) return def;
    auto r = ParseRole(s);
    if (!r.ok()) return InvalidArgument(Name(key) + " of " + what_ + ": " + r.status().message());
    return *r;
  }

  const std::string& what() const { return what_; }

 private:
  const json& j_;
  std::string what_;
  std::string prefix_;
};

void PutTime(json& j, const std::string& key, UnixMillis t) {
  j[key] = FormatTimestamp(t);
  j[key + "_ms"] = t;
}

Result<Quota> DecodeQuota(const json& j, const std::string& what, const std::string& prefix) {
  Reader r(j, what, prefix);
  RETURN_IF_ERROR(r.Check({"max_gpus", "max_gpus_milli", "max_gpu_hours_per_month", "max_queued_jobs"}));
  Quota q;
  if (const json* m = r.Find("max_gpus_milli")) {
    if (!m->is_object())
      return InvalidArgument(r.Name("max_gpus_milli") + " of " + what + " must be an object of GPU type -> milli-GPU");
    for (auto it = m->begin(); it != m->end(); ++it) {
      if (it.key().empty()) return InvalidArgument(r.Name("max_gpus_milli") + " of " + what + " has an empty GPU type");
      ASSIGN_OR_RETURN(q.max_gpus_milli[it.key()],
                       r.IntValue(*it, r.Name("max_gpus_milli['" + it.key() + "']"), 0, kMaxInt));
    }
  } else if (const json* g = r.Find("max_gpus")) {
    if (!g->is_object())
      return InvalidArgument(r.Name("max_gpus") + " of " + what + " must be an object of GPU type -> GPU count");
    for (auto it = g->begin(); it != g->end(); ++it) {
      const std::string name = r.Name("max_gpus['" + it.key() + "']");
      if (it.key().empty()) return InvalidArgument(r.Name("max_gpus") + " of " + what + " has an empty GPU type");
      std::string text;
      if (it->is_string()) {
        text = it->get<std::string>();
      } else if (it->is_number()) {
        text = it->dump();
      } else {
        return InvalidArgument(name + " of " + what + " must be a GPU count such as 8 or \"0.5\"");
      }
      auto milli = ParseMilliGpu(text);
      if (!milli.ok()) return InvalidArgument(name + " of " + what + ": " + milli.status().message());
      q.max_gpus_milli[it.key()] = *milli;
    }
  }
  ASSIGN_OR_RETURN(q.max_gpu_hours_per_month, r.Int("max_gpu_hours_per_month"));
  ASSIGN_OR_RETURN(q.max_queued_jobs, r.Int("max_queued_jobs"));
  return q;
}

Result<Budget> DecodeBudget(const json& j, const std::string& what, const std::string& prefix) {
  Reader r(j, what, prefix);
  RETURN_IF_ERROR(r.Check({"monthly_limit_micro", "hard"}));
  Budget b;
  ASSIGN_OR_RETURN(b.monthly_limit_micro, r.Int("monthly_limit_micro"));
  ASSIGN_OR_RETURN(b.hard, r.Bool("hard"));
  return b;
}

}  // namespace

// ---- Encoders ---------------------------------------------------------------------------------

json ToJson(const User& u) {
  json j{{"name", u.name}, {"display_name", u.display_name}, {"admin", u.admin}, {"disabled", u.disabled}};
  PutTime(j, "created_at", u.created_at);
  return j;
}

json ToJson(const Quota& q) {
  json counts = json::object(), milli = json::object();
  for (const auto& [type, m] : q.max_gpus_milli) {
    counts[type] = FormatMilliGpu(m);
    milli[type] = m;
  }
  return json{{"max_gpus", counts},
              {"max_gpus_milli", milli},
              {"max_gpu_hours_per_month", q.max_gpu_hours_per_month},
              {"max_queued_jobs", q.max_queued_jobs}};
}

json ToJson(const Budget& b) { return json{{"monthly_limit_micro", b.monthly_limit_micro}, {"hard", b.hard}}; }

json ToJson(const Project& p) {
  json j{{"name", p.name},
         {"description", p.description},
         {"quota", ToJson(p.quota)},
         {"budget", ToJson(p.budget)},
         {"run_as_uid", p.run_as_uid},
         {"run_as_user", p.run_as_user},
         {"allow_root", p.allow_root}};
  PutTime(j, "created_at", p.created_at);
  return j;
}

json ToJson(const Membership& m) {
  return json{{"project", m.project}, {"user", m.user}, {"role", std::string(RoleName(m.role))}};
}

json ToJson(const TokenRecord& t) {
  json j{{"id", t.id},
         {"user", t.user},
         {"name", t.name},
         {"service_account", !t.service_account.empty()},
         {"service_account_id", t.service_account},
         {"project", t.project}};
  PutTime(j, "created_at", t.created_at);
  PutTime(j, "expires_at", t.expires_at);
  PutTime(j, "revoked_at", t.revoked_at);
  return j;
}

json ToJson(const ServiceAccount& s) {
  json j{{"id", s.id}, {"project", s.project}, {"name", s.name}, {"role", std::string(RoleName(s.role))}};
  PutTime(j, "created_at", s.created_at);
  PutTime(j, "disabled_at", s.disabled_at);
  return j;
}

json ToJson(const AuditRecord& a) {
  json j{{"seq", a.seq},       {"actor", a.actor},   {"source", a.source},       {"action", a.action},
         {"target", a.target}, {"result", a.result}, {"detail", a.detail},       {"prev_hash", a.prev_hash},
         {"hash", a.hash}};
  PutTime(j, "at", a.at);
  return j;
}

json ToJson(const SecretRecord& s) {
  json j{{"project", s.project}, {"name", s.name}, {"key_id", s.key_id}, {"updated_by", s.updated_by}};
  PutTime(j, "updated_at", s.updated_at);
  return j;
}

json TokenRecordToStoreJson(const TokenRecord& t) {
  json j = ToJson(t);
  j["token_sha256"] = t.token_sha256;
  return j;
}

json ServiceAccountToStoreJson(const ServiceAccount& s) {
  json j = ToJson(s);
  j["secret_sha256"] = s.secret_sha256;
  return j;
}

json SecretRecordToStoreJson(const SecretRecord& s) {
  json j = ToJson(s);
  j["nonce_hex"] = s.nonce_hex;
  j["ciphertext_hex"] = s.ciphertext_hex;
  return j;
}

// ---- Decoders ---------------------------------------------------------------------------------

Result<User> UserFromJson(const json& j) {
  Reader r(j, "user");
  RETURN_IF_ERROR(r.Check({"name", "display_name", "admin", "disabled", "created_at", "created_at_ms"}));
  User u;
  ASSIGN_OR_RETURN(u.name, r.RequiredString("name"));
  ASSIGN_OR_RETURN(u.display_name, r.String("display_name"));
  ASSIGN_OR_RETURN(u.admin, r.Bool("admin"));
  ASSIGN_OR_RETURN(u.disabled, r.Bool("disabled"));
  ASSIGN_OR_RETURN(u.created_at, r.Time("created_at"));
  return u;
}

Result<Quota> QuotaFromJson(const json& j) { return DecodeQuota(j, "quota", ""); }

Result<Budget> BudgetFromJson(const json& j) { return DecodeBudget(j, "budget", ""); }

Result<Project> ProjectFromJson(const json& j) {
  Reader r(j, "project");
  RETURN_IF_ERROR(r.Check({"name", "description", "created_at", "created_at_ms", "quota", "budget", "run_as_uid",
                           "run_as_user", "allow_root"}));
  Project p;
  ASSIGN_OR_RETURN(p.name, r.RequiredString("name"));
  ASSIGN_OR_RETURN(p.description, r.String("description"));
  ASSIGN_OR_RETURN(p.created_at, r.Time("created_at"));
  if (const json* q = r.Find("quota")) {
    ASSIGN_OR_RETURN(p.quota, DecodeQuota(*q, "project", "quota."));
  }
  if (const json* b = r.Find("budget")) {
    ASSIGN_OR_RETURN(p.budget, DecodeBudget(*b, "project", "budget."));
  }
  ASSIGN_OR_RETURN(p.run_as_uid, r.Int("run_as_uid", 0, kMaxJobUid));
  ASSIGN_OR_RETURN(p.run_as_user, r.String("run_as_user"));
  ASSIGN_OR_RETURN(p.allow_root, r.Bool("allow_root"));
  return p;
}

Result<Membership> MembershipFromJson(const json& j) {
  Reader r(j, "membership");
  RETURN_IF_ERROR(r.Check({"project", "user", "role"}));
  Membership m;
  ASSIGN_OR_RETURN(m.project, r.RequiredString("project"));
  ASSIGN_OR_RETURN(m.user, r.RequiredString("user"));
  if (!r.Find("role")) return InvalidArgument("field 'role' of membership is required");
  ASSIGN_OR_RETURN(m.role, r.RoleField("role", Role::kViewer));
  return m;
}

Result<TokenRecord> TokenRecordFromJson(const json& j) {
  Reader r(j, "token");
  RETURN_IF_ERROR(r.Check({"id", "user", "name", "service_account", "service_account_id", "project", "created_at",
                           "created_at_ms", "expires_at", "expires_at_ms", "revoked_at", "revoked_at_ms",
                           "token_sha256"}));
  TokenRecord t;
  ASSIGN_OR_RETURN(t.id, r.RequiredString("id"));
  ASSIGN_OR_RETURN(t.user, r.String("user"));
  ASSIGN_OR_RETURN(t.name, r.String("name"));
  ASSIGN_OR_RETURN(t.service_account, r.String("service_account_id"));
  ASSIGN_OR_RETURN(bool is_sa, r.Bool("service_account"));  // derived flag; must agree when given
  if (r.Find("service_account") && is_sa != !t.service_account.empty())
    return InvalidArgument("field 'service_account' of token disagrees with 'service_account_id'");
  ASSIGN_OR_RETURN(t.project, r.String("project"));
  ASSIGN_OR_RETURN(t.created_at, r.Time("created_at"));
  ASSIGN_OR_RETURN(t.expires_at, r.Time("expires_at"));
  ASSIGN_OR_RETURN(t.revoked_at, r.Time("revoked_at"));
  ASSIGN_OR_RETURN(t.token_sha256, r.String("token_sha256"));
  return t;
}

Result<ServiceAccount> ServiceAccountFromJson(const json& j) {
  Reader r(j, "service account");
  RETURN_IF_ERROR(r.Check({"id", "project", "name", "role", "created_at", "created_at_ms", "disabled_at",
                           "disabled_at_ms", "secret_sha256"}));
  ServiceAccount s;
  ASSIGN_OR_RETURN(s.id, r.RequiredString("id"));
  ASSIGN_OR_RETURN(s.project, r.RequiredString("project"));
  ASSIGN_OR_RETURN(s.name, r.String("name"));
  ASSIGN_OR_RETURN(s.role, r.RoleField("role", Role::kMember));
  ASSIGN_OR_RETURN(s.created_at, r.Time("created_at"));
  ASSIGN_OR_RETURN(s.disabled_at, r.Time("disabled_at"));
  ASSIGN_OR_RETURN(s.secret_sha256, r.String("secret_sha256"));
  return s;
}

Result<AuditRecord> AuditRecordFromJson(const json& j) {
  Reader r(j, "audit record");
  RETURN_IF_ERROR(r.Check({"seq", "at", "at_ms", "actor", "source", "action", "target", "result", "detail",
                           "prev_hash", "hash"}));
  AuditRecord a;
  ASSIGN_OR_RETURN(a.seq, r.Int("seq"));
  ASSIGN_OR_RETURN(a.at, r.Time("at"));
  ASSIGN_OR_RETURN(a.actor, r.String("actor"));
  ASSIGN_OR_RETURN(a.source, r.String("source"));
  ASSIGN_OR_RETURN(a.action, r.String("action"));
  ASSIGN_OR_RETURN(a.target, r.String("target"));
  ASSIGN_OR_RETURN(a.result, r.String("result"));
  ASSIGN_OR_RETURN(a.detail, r.String("detail"));
  ASSIGN_OR_RETURN(a.prev_hash, r.String("prev_hash"));
  ASSIGN_OR_RETURN(a.hash, r.String("hash"));
  return a;
}

Result<SecretRecord> SecretRecordFromJson(const json& j) {
  Reader r(j, "secret");
  RETURN_IF_ERROR(r.Check({"project", "name", "key_id", "updated_at", "updated_at_ms", "updated_by", "nonce_hex",
                           "ciphertext_hex"}));
  SecretRecord s;
  ASSIGN_OR_RETURN(s.project, r.RequiredString("project"));
  ASSIGN_OR_RETURN(s.name, r.RequiredString("name"));
  ASSIGN_OR_RETURN(s.key_id, r.String("key_id"));
  ASSIGN_OR_RETURN(s.updated_at, r.Time("updated_at"));
  ASSIGN_OR_RETURN(s.updated_by, r.String("updated_by"));
  ASSIGN_OR_RETURN(s.nonce_hex, r.String("nonce_hex"));
  ASSIGN_OR_RETURN(s.ciphertext_hex, r.String("ciphertext_hex"));
  return s;
}

}  // namespace fastgpu::api
