#include "auth/accounts.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

#include "api/accounts_json.h"
#include "api/json.h"
#include "common/crypto.h"

namespace fastgpu::auth {

using nlohmann::json;

namespace {

// Record kinds and keys in the Store.
constexpr char kUserKind[] = "user";             // key: user name
constexpr char kProjectKind[] = "project";       // key: project name
constexpr char kMemberKind[] = "member";         // key: "<project>/<user>"
constexpr char kTokenKind[] = "token";           // key: SHA-256 hex of the token
constexpr char kServiceAccountKind[] = "sa";     // key: "sa-<12 hex>"
constexpr char kSecretKind[] = "secret";         // key: "<project>/<NAME>"
constexpr char kUidAllocKind[] = "uidalloc";     // key: kJobUidKey, value {"last": <highest uid given>}
constexpr char kJobUidKey[] = "job_uid";
constexpr int64_t kMinJobUid = 1000;             // below: system users
constexpr int64_t kMaxJobUid = 4'294'967'294;    // (uid_t)-1 means "no change" to setuid

constexpr int64_t kDefaultTokenTtlS = 90LL * 86400;
constexpr int64_t kDefaultMaxTokenTtlS = 366LL * 86400;
constexpr size_t kMaxSecretBytes = 64 * 1024;
constexpr size_t kMaxBearerBytes = 512;
constexpr size_t kMaxPrunePerCall = 100;
constexpr char kBootstrapUser[] = "admin";
constexpr char kBootstrapProject[] = "default";
constexpr char kInvalidToken[] = "invalid or expired token";
constexpr char kNoMasterKey[] =
    "secrets are unavailable: the server has no master key (set FASTGPU_MASTER_KEY to 64 hex characters, or let "
    "the server create $FASTGPU_HOME/master.key)";

std::string PairKey(const std::string& a, const std::string& b) { return a + "/" + b; }

Status CheckText(const std::string& what, const std::string& s, size_t max) {
  if (s.size() > max)
    return InvalidArgument(what + " is too long (" + std::to_string(s.size()) + " bytes; at most " +
                           std::to_string(max) + ")");
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return InvalidArgument(what + " must not contain control characters");
  }
  return Status::Ok();
}

Status ValidateRunAsUser(const std::string& u, bool allow_root) {
  if (u.empty()) return Status::Ok();
  auto bad = [&](const std::string& why) {
    return InvalidArgument("run_as_user '" + u + "' " + why +
                           " (an OS user name: 1-32 characters a-z, A-Z, 0-9, '.', '_', '-', not starting with '-')");
  };
  if (u.size() > 32) return bad("is too long");
  if (u[0] == '-') return bad("must not start with '-'");
  for (char c : u) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return bad("contains a character that is not allowed");
  }
  if (u == "root" && !allow_root)
    return InvalidArgument("run_as_user 'root' needs allow_root=true on the project (admin only)");
  return Status::Ok();
}

Status ValidateQuota(const api::Quota& q) {
  for (const auto& [type, milli] : q.max_gpus_milli) {
    if (type.empty() || type.size() > 64)
      return InvalidArgument("quota GPU type '" + type + "' must be 1-64 characters (or \"*\" for all types)");
    if (milli < 0 || milli > 1'000'000'000)
      return InvalidArgument("quota for GPU type " + type + " must be 0 to 1000000 GPUs");
  }
  if (q.max_gpu_hours_per_month < 0 || q.max_gpu_hours_per_month > 1'000'000'000)
    return InvalidArgument("quota max_gpu_hours_per_month must be 0 (unlimited) to 1000000000");
  if (q.max_queued_jobs < 0 || q.max_queued_jobs > 1'000'000'000)
    return InvalidArgument("quota max_queued_jobs must be 0 (unlimited) to 1000000000");
  return Status::Ok();
}

Status ValidateProjectFields(const api::Project& p) {
  RETURN_IF_ERROR(CheckText("project description", p.description, 1024));
  RETURN_IF_ERROR(ValidateQuota(p.quota));
  if (p.budget.monthly_limit_micro < 0) return InvalidArgument("budget monthly limit must not be negative (0 = none)");
  return ValidateRunAsUser(p.run_as_user, p.allow_root);
}

Result<int64_t> ParseUid(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return InvalidArgument("not a number");
  return v;
}

template <typename T>
void SortByCreation(std::vector<T>& v) {
  std::sort(v.begin(), v.end(), [](const T& a, const T& b) {
    return a.created_at != b.created_at ? a.created_at < b.created_at : a.id < b.id;
  });
}

}  // namespace

Result<JobUidRange> ParseJobUidRange(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("job uid range '" + std::string(text) + "' " + why +
                           " (give FIRST-LAST, e.g. 200000-299999: Unix uids from " + std::to_string(kMinJobUid) +
                           " to " + std::to_string(kMaxJobUid) + " that no user of the machine has)");
  };
  const size_t dash = text.find('-');
  if (dash == std::string_view::npos) return bad("has no '-'");
  auto first = ParseUid(text.substr(0, dash));
  auto last = ParseUid(text.substr(dash + 1));
  if (!first.ok() || !last.ok()) return bad("is not two numbers");
  if (*first < kMinJobUid) return bad("starts among the system uids");
  if (*last > kMaxJobUid) return bad("ends beyond the largest uid");
  if (*first > *last) return bad("ends before it starts");
  return JobUidRange{*first, *last};
}

std::string FormatJobUidRange(const JobUidRange& r) {
  return std::to_string(r.first) + "-" + std::to_string(r.last);
}

AccountService::AccountService(PassKey, store::Store& store, const Clock& clock, const MasterKey* key,
                               AccountOptions options)
    : store_(store), clock_(clock), options_(options) {
  if (key) key_ = *key;
  if (options_.max_token_ttl_s <= 0) options_.max_token_ttl_s = kDefaultMaxTokenTtlS;
  if (options_.access_token_ttl_s <= 0) options_.access_token_ttl_s = 3600;
}

Result<std::unique_ptr<AccountService>> AccountService::Create(store::Store& store, const Clock& clock,
                                                               const MasterKey* key, AccountOptions options) {
  if (options.job_uids.first < kMinJobUid || options.job_uids.last > kMaxJobUid ||
      options.job_uids.first > options.job_uids.last)
    return InvalidArgument("job uid range " + FormatJobUidRange(options.job_uids) + " is not valid (from " +
                           std::to_string(kMinJobUid) + " to " + std::to_string(kMaxJobUid) + ", first <= last)");
  auto svc = std::make_unique<AccountService>(PassKey(), store, clock, key, options);
  RETURN_IF_ERROR(svc->Load());
  RETURN_IF_ERROR(svc->AllocateMissingUids());
  return svc;
}

// ---- Cache and store plumbing -------------------------------------------------------------------

Status AccountService::Load() {
  std::map<std::string, api::User> users;
  std::map<std::string, api::Project> projects;
  std::map<std::pair<std::string, std::string>, api::Role> members;
  std::map<std::string, api::TokenRecord> tokens;
  std::map<std::string, api::ServiceAccount> sas;
  std::map<std::pair<std::string, std::string>, api::SecretRecord> secrets;
  std::map<RecordId, int64_t> versions;
  int64_t last_uid = 0;

  auto load = [&](const std::string& kind, auto&& add) -> Status {
    auto records = store_.ListRecords(kind, "");
    if (!records.ok()) return Internal("cannot load " + kind + " records: " + records.status().message());
    for (const auto& r : *records) {
      auto j = api::ParseJson(r.value, "stored " + kind + " record '" + r.key + "'");
      if (!j.ok()) return Internal(j.status().message());
      Status st = add(*j);
      if (!st.ok()) return Internal("stored " + kind + " record '" + r.key + "' is malformed: " + st.message());
      versions[{kind, r.key}] = r.version;
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(load(kUserKind, [&](const json& j) -> Status {
    ASSIGN_OR_RETURN(auto u, api::UserFromJson(j));
    users[u.name] = std::move(u);
    return Status::Ok();
  }));
  RETURN_IF_ERROR(load(kProjectKind, [&](const json& j) -> Status {
    ASSIGN_OR_RETURN(auto p, api::ProjectFromJson(j));
    projects[p.name] = std::move(p);
    return Status::Ok();
  }));
  RETURN_IF_ERROR(load(kUidAllocKind, [&](const json& j) -> Status {
    auto it = j.find("last");
    if (!j.is_object() || it == j.end() || !it->is_number_integer()) return InvalidArgument("'last' is not an integer");
    last_uid = std::max(last_uid, it->get<int64_t>());
    return Status::Ok();
  }));
  for (const auto& [name, p] : projects) last_uid = std::max(last_uid, p.run_as_uid);
  RETURN_IF_ERROR(load(kMemberKind, [&](const json& j) -> Status {
    ASSIGN_OR_RETURN(auto m, api::MembershipFromJson(j));
    members[{m.project, m.user}] = m.role;
    return Status::Ok();
  }));
  RETURN_IF_ERROR(load(kTokenKind, [&](const json& j) -> Status {
    ASSIGN_OR_RETURN(auto t, api::TokenRecordFromJson(j));
    if (t.token_sha256.empty()) return InvalidArgument("token_sha256 is missing");
    tokens[t.token_sha256] = std::move(t);
    return Status::Ok();
  }));
  RETURN_IF_ERROR(load(kServiceAccountKind, [&](const json& j) -> Status {
    ASSIGN_OR_RETURN(auto s, api::ServiceAccountFromJson(j));
    sas[s.id] = std::move(s);
    return Status::Ok();
  }));
  RETURN_IF_ERROR(load(kSecretKind, [&](const json& j) -> Status {
    ASSIGN_OR_RETURN(auto s, api::SecretRecordFromJson(j));
    secrets[{s.project, s.name}] = std::move(s);
    return Status::Ok();
  }));

  std::lock_guard lock(mu_);
  users_ = std::move(users);
  projects_ = std::move(projects);
  members_ = std::move(members);
  tokens_by_hash_ = std::move(tokens);
  service_accounts_ = std::move(sas);
  secrets_ = std::move(secrets);
  versions_ = std::move(versions);
  last_job_uid_ = last_uid;
  return Status::Ok();
}

Result<int64_t> AccountService::NextJobUid(int64_t* last_given, const std::string& project) const {
  const JobUidRange& r = options_.job_uids;
  std::set<int64_t> held;
  for (const auto& [name, p] : projects_) held.insert(p.run_as_uid);
  // Uids are given in increasing order, so none is ever given twice (even after its project is gone or
  // the range was changed).
  int64_t uid = std::max(r.first, *last_given + 1);
  while (uid <= r.last && held.count(uid)) ++uid;
  if (uid > r.last)
    return FailedPrecondition("no Unix uid left for project " + project + ": the job uid range " +
                              FormatJobUidRange(r) + " has no uid above " + std::to_string(*last_given) +
                              ", the highest ever given to a project (uids are given in increasing order and never "
                              "reused); restart the server with a --job-uid-range that reaches higher");
  *last_given = std::max(*last_given, uid);
  return uid;
}

store::RecordWrite AccountService::PutUidMark(int64_t last_given) const {
  return Put(kUidAllocKind, kJobUidKey, json{{"last", last_given}}.dump());
}

Status AccountService::AllocateMissingUids() {
  // Another server process may allocate at the same time: the mark's compare-and-set makes one of
  // us reload and try again.
  for (int attempt = 0;; ++attempt) {
    std::lock_guard wlock(write_mu_);
    int64_t mark = last_job_uid_;
    std::vector<store::RecordWrite> writes;
    std::vector<api::Project> updated;
    for (const auto& [name, p] : projects_) {
      if (p.run_as_uid != 0) continue;
      api::Project next = p;
      ASSIGN_OR_RETURN(next.run_as_uid, NextJobUid(&mark, name));
      writes.push_back(Put(kProjectKind, name, api::ToJson(next).dump()));
      updated.push_back(std::move(next));
    }
    if (writes.empty()) return Status::Ok();
    writes.push_back(PutUidMark(mark));
    Status st = Commit(writes, nullptr, [&] {
      for (const auto& p : updated) projects_[p.name] = p;
      last_job_uid_ = mark;
    });
    if (st.ok() || attempt >= 3 || (st.code() != ErrorCode::kAlreadyExists &&
                                    st.code() != ErrorCode::kFailedPrecondition))
      return st;
  }
}

Status AccountService::CheckRunAsUserFree(const api::Project& project) const {
  if (project.run_as_user.empty()) return Status::Ok();
  for (const auto& [name, p] : projects_) {
    if (name != project.name && p.run_as_user == project.run_as_user)
      return FailedPrecondition("OS user '" + project.run_as_user + "' already runs the jobs of project " + name +
                                ": a Unix user is never shared between projects (their jobs could read each "
                                "other's processes, environment and files); choose another user, or leave "
                                "run_as_user empty to use the project's own uid");
  }
  return Status::Ok();
}

store::RecordWrite AccountService::Put(const std::string& kind, const std::string& key, std::string value) const {
  store::RecordWrite w;
  w.kind = kind;
  w.key = key;
  w.value = std::move(value);
  auto it = versions_.find({kind, key});
  w.expected_version = it == versions_.end() ? 0 : it->second;
  return w;
}

store::RecordWrite AccountService::Erase(const std::string& kind, const std::string& key) const {
  store::RecordWrite w;
  w.kind = kind;
  w.key = key;
  w.erase = true;
  if (auto it = versions_.find({kind, key}); it != versions_.end()) w.expected_version = it->second;
  return w;
}

template <typename F>
Status AccountService::Commit(const std::vector<store::RecordWrite>& writes, api::AuditRecord* audit, F&& apply,
                              const std::vector<api::LedgerEntry>& ledger) {
  if (!writes.empty() || audit != nullptr || !ledger.empty()) {
    Status st = ledger.empty() ? store_.WriteRecords(writes, audit) : store_.PostLedger({}, ledger, audit, writes);
    if (!st.ok()) {
      const ErrorCode c = st.code();
      if (c == ErrorCode::kAlreadyExists || c == ErrorCode::kFailedPrecondition || c == ErrorCode::kNotFound) {
        // Another process changed these records: resynchronise so the next attempt sees them.
        Status reload = Load();
        if (!reload.ok()) return reload;
        std::string msg = "the accounts were changed concurrently by another server process; try again (" +
                          st.message() + ")";
        return c == ErrorCode::kAlreadyExists ? AlreadyExists(std::move(msg)) : FailedPrecondition(std::move(msg));
      }
      return st;
    }
  }
  std::lock_guard lock(mu_);
  for (const auto& w : writes) {
    RecordId id{w.kind, w.key};
    if (w.erase) {
      versions_.erase(id);
    } else if (w.expected_version) {
      versions_[id] = *w.expected_version + 1;
    } else {
      ++versions_[id];
    }
  }
  apply();
  return Status::Ok();
}

Result<api::TokenRecord> AccountService::NewToken(const std::string& user, const std::string& name,
                                                  UnixMillis expires_at, std::string* token) const {
  ASSIGN_OR_RETURN(*token, RandomToken());
  ASSIGN_OR_RETURN(std::string id_hex, RandomHex(6));
  api::TokenRecord t;
  t.id = "tok-" + id_hex;
  t.token_sha256 = Sha256Hex(*token);
  t.user = user;
  t.name = name;
  t.created_at = clock_.NowMillis();
  t.expires_at = expires_at;
  return t;
}

bool AccountService::IsLastOwner(const std::string& project, const std::string& user) const {
  for (auto it = members_.lower_bound({project, ""}); it != members_.end() && it->first.first == project; ++it) {
    if (it->first.second != user && it->second == api::Role::kOwner) return false;
  }
  auto self = members_.find({project, user});
  return self != members_.end() && self->second == api::Role::kOwner;
}

// ---- Bootstrap ------------------------------------------------------------------------------------

Status AccountService::EnsureBootstrap(const std::string& admin_token_sha256) {
  if (admin_token_sha256.size() != 64 || !HexDecode(admin_token_sha256).ok())
    return InvalidArgument("the bootstrap token hash must be 64 hex characters (SHA-256)");
  std::lock_guard wlock(write_mu_);
  const UnixMillis now = clock_.NowMillis();
  std::vector<store::RecordWrite> writes;
  std::optional<api::User> user;
  std::optional<api::Project> project;
  std::optional<api::Membership> member;
  std::optional<api::TokenRecord> token;
  int64_t mark = last_job_uid_;

  if (!users_.count(kBootstrapUser)) {
    user.emplace();
    user->name = kBootstrapUser;
    user->display_name = "Administrator";
    user->admin = true;
    user->created_at = now;
    writes.push_back(Put(kUserKind, user->name, api::ToJson(*user).dump()));
  }
  if (!projects_.count(kBootstrapProject)) {
    project.emplace();
    project->name = kBootstrapProject;
    project->description = "Default project";
    project->created_at = now;
    ASSIGN_OR_RETURN(project->run_as_uid, NextJobUid(&mark, project->name));
    writes.push_back(Put(kProjectKind, project->name, api::ToJson(*project).dump()));
    writes.push_back(PutUidMark(mark));
    if (!members_.count({kBootstrapProject, kBootstrapUser})) {
      member = api::Membership{kBootstrapProject, kBootstrapUser, api::Role::kOwner};
      writes.push_back(Put(kMemberKind, PairKey(member->project, member->user), api::ToJson(*member).dump()));
    }
  }
  if (!tokens_by_hash_.count(admin_token_sha256)) {
    ASSIGN_OR_RETURN(std::string id_hex, RandomHex(6));
    token.emplace();
    token->id = "tok-" + id_hex;
    token->token_sha256 = admin_token_sha256;
    token->user = kBootstrapUser;
    token->name = "admin token (fastgpu up)";
    token->created_at = now;
    token->expires_at = 0;  // the local admin token in $FASTGPU_HOME/admin.token does not expire
    writes.push_back(Put(kTokenKind, token->token_sha256, api::TokenRecordToStoreJson(*token).dump()));
  }
  return Commit(writes, nullptr, [&] {
    if (user) users_[user->name] = *user;
    if (project) projects_[project->name] = *project;
    last_job_uid_ = mark;
    if (member) members_[{member->project, member->user}] = member->role;
    if (token) tokens_by_hash_[token->token_sha256] = *token;
  });
}

// ---- Authentication -------------------------------------------------------------------------------

Result<Principal> AccountService::Authenticate(const std::string& bearer_token) const {
  if (bearer_token.empty() || bearer_token.size() > kMaxBearerBytes) return Unauthenticated(kInvalidToken);
  const std::string hash = Sha256Hex(bearer_token);
  const UnixMillis now = clock_.NowMillis();
  std::lock_guard lock(mu_);
  auto it = tokens_by_hash_.find(hash);
  if (it == tokens_by_hash_.end()) return Unauthenticated(kInvalidToken);
  const api::TokenRecord& t = it->second;
  if (t.revoked_at != 0 || (t.expires_at != 0 && now >= t.expires_at)) return Unauthenticated(kInvalidToken);
  Principal p;
  p.token_id = t.id;
  if (!t.service_account.empty()) {
    auto sa = service_accounts_.find(t.service_account);
    if (sa == service_accounts_.end() || sa->second.disabled_at != 0 || sa->second.project != t.project)
      return Unauthenticated(kInvalidToken);
    p.user = sa->second.id;
    p.service_account = true;
    p.roles[sa->second.project] = sa->second.role;
    return p;
  }
  auto u = users_.find(t.user);
  if (u == users_.end() || u->second.disabled) return Unauthenticated(kInvalidToken);
  p.user = u->second.name;
  p.admin = u->second.admin;
  for (const auto& [key, role] : members_) {
    if (key.second == p.user) p.roles[key.first] = role;
  }
  return p;
}

Result<AccessToken> AccountService::IssueAccessToken(const std::string& client_id, const std::string& client_secret,
                                                     api::AuditRecord* audit) {
  std::lock_guard wlock(write_mu_);
  const std::string presented = Sha256Hex(client_secret);
  auto it = service_accounts_.find(client_id);
  // Compare even for an unknown id, so timing does not tell which ids exist.
  const std::string& stored = it != service_accounts_.end() ? it->second.secret_sha256 : presented;
  const bool match = ConstantTimeEquals(stored, presented);
  if (it == service_accounts_.end() || !match || client_secret.empty() || it->second.disabled_at != 0)
    return Unauthenticated("invalid client credentials: unknown client_id or wrong client_secret");
  const api::ServiceAccount& sa = it->second;
  const UnixMillis now = clock_.NowMillis();
  const int64_t ttl_s = options_.access_token_ttl_s;
  std::string secret;
  ASSIGN_OR_RETURN(api::TokenRecord rec, NewToken("sa:" + sa.id, "oauth access token", now + ttl_s * 1000, &secret));
  rec.service_account = sa.id;
  rec.project = sa.project;
  std::vector<store::RecordWrite> writes{Put(kTokenKind, rec.token_sha256, api::TokenRecordToStoreJson(rec).dump())};
  // Expired access tokens are useless: drop a few on every issue so they do not pile up.
  std::vector<std::string> pruned;
  for (const auto& [hash, t] : tokens_by_hash_) {
    if (pruned.size() >= kMaxPrunePerCall) break;
    if (!t.service_account.empty() && t.expires_at != 0 && t.expires_at <= now) {
      writes.push_back(Erase(kTokenKind, hash));
      pruned.push_back(hash);
    }
  }
  RETURN_IF_ERROR(Commit(writes, audit, [&] {
    tokens_by_hash_[rec.token_sha256] = rec;
    for (const auto& h : pruned) tokens_by_hash_.erase(h);
  }));
  return AccessToken{secret, ttl_s};
}

// ---- Users ----------------------------------------------------------------------------------------

Result<api::User> AccountService::CreateUser(api::User user, api::AuditRecord* audit) {
  RETURN_IF_ERROR(api::ValidateName("user", user.name));
  RETURN_IF_ERROR(CheckText("display name", user.display_name, 128));
  std::lock_guard wlock(write_mu_);
  if (users_.count(user.name)) return AlreadyExists("user " + user.name + " already exists");
  if (user.created_at == 0) user.created_at = clock_.NowMillis();
  RETURN_IF_ERROR(
      Commit({Put(kUserKind, user.name, api::ToJson(user).dump())}, audit, [&] { users_[user.name] = user; }));
  return user;
}

Result<api::User> AccountService::GetUser(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return NotFound("user " + name + " does not exist");
  return it->second;
}

std::vector<api::User> AccountService::ListUsers() const {
  std::lock_guard lock(mu_);
  std::vector<api::User> out;
  out.reserve(users_.size());
  for (const auto& [name, u] : users_) out.push_back(u);
  return out;
}

Result<api::User> AccountService::UpdateUser(const std::string& actor_user, const std::string& name,
                                             std::optional<bool> admin, std::optional<bool> disabled,
                                             std::optional<std::string> display_name, api::AuditRecord* audit) {
  if (display_name) RETURN_IF_ERROR(CheckText("display name", *display_name, 128));
  std::lock_guard wlock(write_mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return NotFound("user " + name + " does not exist");
  const api::User& cur = it->second;
  if (actor_user == name) {
    if (admin && !*admin && cur.admin)
      return FailedPrecondition("you cannot remove your own admin flag (so the system always keeps an admin); "
                                "ask another admin to do it");
    if (disabled && *disabled && !cur.disabled)
      return FailedPrecondition("you cannot disable your own account; ask another admin to do it");
  }
  api::User next = cur;
  if (admin) next.admin = *admin;
  if (disabled) next.disabled = *disabled;
  if (display_name) next.display_name = *display_name;
  if (next.admin == cur.admin && next.disabled == cur.disabled && next.display_name == cur.display_name) return cur;
  if (cur.admin && !cur.disabled && (!next.admin || next.disabled)) {
    bool other_admin = false;
    for (const auto& [n, u] : users_) other_admin |= n != name && u.admin && !u.disabled;
    if (!other_admin)
      return FailedPrecondition("user " + name + " is the last active admin; make another user admin first");
  }
  RETURN_IF_ERROR(Commit({Put(kUserKind, name, api::ToJson(next).dump())}, audit, [&] { users_[name] = next; }));
  return next;
}

// ---- Projects -------------------------------------------------------------------------------------

Result<api::Project> AccountService::CreateProject(api::Project project, const std::string& owner_user,
                                                  api::AuditRecord* audit,
                                                  const std::vector<api::LedgerEntry>& ledger) {
  RETURN_IF_ERROR(api::ValidateName("project", project.name));
  RETURN_IF_ERROR(ValidateProjectFields(project));
  if (owner_user.empty()) return InvalidArgument("a project needs an owner: give an existing user name");
  std::lock_guard wlock(write_mu_);
  if (projects_.count(project.name)) return AlreadyExists("project " + project.name + " already exists");
  if (!users_.count(owner_user))
    return NotFound("user " + owner_user + " does not exist (a project's owner must be an existing user)");
  RETURN_IF_ERROR(CheckRunAsUserFree(project));
  if (project.created_at == 0) project.created_at = clock_.NowMillis();
  int64_t mark = last_job_uid_;
  ASSIGN_OR_RETURN(project.run_as_uid, NextJobUid(&mark, project.name));
  const api::Membership owner{project.name, owner_user, api::Role::kOwner};
  std::vector<store::RecordWrite> writes{
      Put(kProjectKind, project.name, api::ToJson(project).dump()),
      Put(kMemberKind, PairKey(project.name, owner_user), api::ToJson(owner).dump()), PutUidMark(mark)};
  RETURN_IF_ERROR(Commit(
      writes, audit,
      [&] {
        projects_[project.name] = project;
        members_[{project.name, owner_user}] = api::Role::kOwner;
        last_job_uid_ = mark;
      },
      ledger));
  return project;
}

Result<api::Project> AccountService::GetProject(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = projects_.find(name);
  if (it == projects_.end()) return NotFound("project " + name + " does not exist");
  return it->second;
}

std::vector<api::Project> AccountService::ListProjects() const {
  std::lock_guard lock(mu_);
  std::vector<api::Project> out;
  out.reserve(projects_.size());
  for (const auto& [name, p] : projects_) out.push_back(p);
  return out;
}

Result<api::Project> AccountService::UpdateProject(const api::Project& project, api::AuditRecord* audit) {
  RETURN_IF_ERROR(ValidateProjectFields(project));
  std::lock_guard wlock(write_mu_);
  auto it = projects_.find(project.name);
  if (it == projects_.end()) return NotFound("project " + project.name + " does not exist");
  RETURN_IF_ERROR(CheckRunAsUserFree(project));
  api::Project next = it->second;  // name, created_at and run_as_uid stay
  next.description = project.description;
  next.quota = project.quota;
  next.budget = project.budget;
  next.run_as_user = project.run_as_user;
  next.allow_root = project.allow_root;
  RETURN_IF_ERROR(
      Commit({Put(kProjectKind, next.name, api::ToJson(next).dump())}, audit, [&] { projects_[next.name] = next; }));
  return next;
}

// ---- Memberships ----------------------------------------------------------------------------------

Status AccountService::SetMember(const std::string& project, const std::string& user, api::Role role,
                                 api::AuditRecord* audit) {
  std::lock_guard wlock(write_mu_);
  if (!projects_.count(project)) return NotFound("project " + project + " does not exist");
  if (!users_.count(user)) return NotFound("user " + user + " does not exist");
  auto it = members_.find({project, user});
  if (it != members_.end() && it->second == role) return Status::Ok();
  if (it != members_.end() && it->second == api::Role::kOwner && IsLastOwner(project, user))
    return FailedPrecondition(user + " is the last owner of project " + project +
                              "; make another member owner first");
  const api::Membership m{project, user, role};
  return Commit({Put(kMemberKind, PairKey(project, user), api::ToJson(m).dump())}, audit,
                [&] { members_[{project, user}] = role; });
}

Status AccountService::RemoveMember(const std::string& project, const std::string& user, api::AuditRecord* audit) {
  std::lock_guard wlock(write_mu_);
  auto it = members_.find({project, user});
  if (it == members_.end()) return NotFound("user " + user + " is not a member of project " + project);
  if (it->second == api::Role::kOwner && IsLastOwner(project, user))
    return FailedPrecondition("cannot remove " + user + ": they are the last owner of project " + project +
                              "; make another member owner first");
  return Commit({Erase(kMemberKind, PairKey(project, user))}, audit, [&] { members_.erase({project, user}); });
}

std::vector<api::Membership> AccountService::ListMembers(const std::string& project) const {
  std::lock_guard lock(mu_);
  std::vector<api::Membership> out;
  for (auto it = members_.lower_bound({project, ""}); it != members_.end() && it->first.first == project; ++it)
    out.push_back({project, it->first.second, it->second});
  return out;
}

// ---- Tokens ---------------------------------------------------------------------------------------

Result<CreatedToken> AccountService::CreateToken(const std::string& user, const std::string& name, int64_t ttl_s,
                                                 api::AuditRecord* audit) {
  RETURN_IF_ERROR(CheckText("token name", name, 64));
  if (ttl_s < 0) return InvalidArgument("a token's lifetime must be positive (0 = the default of 90 days)");
  std::lock_guard wlock(write_mu_);
  auto u = users_.find(user);
  if (u == users_.end()) return NotFound("user " + user + " does not exist");
  if (u->second.disabled) return FailedPrecondition("user " + user + " is disabled; enable it before creating tokens");
  const int64_t ttl = std::min(ttl_s == 0 ? kDefaultTokenTtlS : ttl_s, options_.max_token_ttl_s);
  CreatedToken out;
  ASSIGN_OR_RETURN(out.record, NewToken(user, name, clock_.NowMillis() + ttl * 1000, &out.token));
  const api::TokenRecord& rec = out.record;
  if (audit && audit->target.empty()) audit->target = "token:" + rec.id;
  RETURN_IF_ERROR(Commit({Put(kTokenKind, rec.token_sha256, api::TokenRecordToStoreJson(rec).dump())}, audit,
                         [&] { tokens_by_hash_[rec.token_sha256] = rec; }));
  return out;
}

std::vector<api::TokenRecord> AccountService::ListTokens(const std::string& user) const {
  std::lock_guard lock(mu_);
  std::vector<api::TokenRecord> out;
  for (const auto& [hash, t] : tokens_by_hash_) {
    if (user.empty() || t.user == user) out.push_back(t);
  }
  SortByCreation(out);
  return out;
}

Result<api::TokenRecord> AccountService::GetToken(const std::string& id) const {
  std::lock_guard lock(mu_);
  for (const auto& [hash, t] : tokens_by_hash_) {
    if (t.id == id) return t;
  }
  return NotFound("token " + id + " does not exist");
}

Status AccountService::RevokeToken(const std::string& id, api::AuditRecord* audit) {
  std::lock_guard wlock(write_mu_);
  const api::TokenRecord* found = nullptr;
  for (const auto& [hash, t] : tokens_by_hash_) {
    if (t.id == id) found = &t;
  }
  if (!found) return NotFound("token " + id + " does not exist");
  if (found->revoked_at != 0) return Status::Ok();
  api::TokenRecord next = *found;
  next.revoked_at = clock_.NowMillis();
  return Commit({Put(kTokenKind, next.token_sha256, api::TokenRecordToStoreJson(next).dump())}, audit,
                [&] { tokens_by_hash_[next.token_sha256] = next; });
}

// ---- Service accounts -----------------------------------------------------------------------------

Result<CreatedServiceAccount> AccountService::CreateServiceAccount(const std::string& project,
                                                                   const std::string& name, api::Role role,
                                                                   api::AuditRecord* audit) {
  RETURN_IF_ERROR(api::ValidateName("service account", name));
  std::lock_guard wlock(write_mu_);
  if (!projects_.count(project)) return NotFound("project " + project + " does not exist");
  CreatedServiceAccount out;
  ASSIGN_OR_RETURN(std::string secret_hex, RandomHex(32));
  out.client_secret = "fgs_" + secret_hex;
  api::ServiceAccount& sa = out.account;
  do {
    ASSIGN_OR_RETURN(std::string id_hex, RandomHex(6));
    sa.id = "sa-" + id_hex;
  } while (service_accounts_.count(sa.id));
  sa.project = project;
  sa.name = name;
  sa.role = role;
  sa.secret_sha256 = Sha256Hex(out.client_secret);
  sa.created_at = clock_.NowMillis();
  if (audit && audit->target.empty()) audit->target = "service-account:" + sa.id;
  RETURN_IF_ERROR(Commit({Put(kServiceAccountKind, sa.id, api::ServiceAccountToStoreJson(sa).dump())}, audit,
                         [&] { service_accounts_[sa.id] = sa; }));
  return out;
}

std::vector<api::ServiceAccount> AccountService::ListServiceAccounts(const std::string& project) const {
  std::lock_guard lock(mu_);
  std::vector<api::ServiceAccount> out;
  for (const auto& [id, sa] : service_accounts_) {
    if (sa.project == project) out.push_back(sa);
  }
  SortByCreation(out);
  return out;
}

Status AccountService::DeleteServiceAccount(const std::string& project, const std::string& id,
                                            api::AuditRecord* audit) {
  std::lock_guard wlock(write_mu_);
  auto it = service_accounts_.find(id);
  if (it == service_accounts_.end() || it->second.project != project)
    return NotFound("service account " + id + " does not exist in project " + project);
  const UnixMillis now = clock_.NowMillis();
  std::vector<store::RecordWrite> writes{Erase(kServiceAccountKind, id)};
  std::vector<api::TokenRecord> revoked;
  for (const auto& [hash, t] : tokens_by_hash_) {
    if (t.service_account != id || t.revoked_at != 0) continue;
    api::TokenRecord next = t;
    next.revoked_at = now;
    writes.push_back(Put(kTokenKind, hash, api::TokenRecordToStoreJson(next).dump()));
    revoked.push_back(std::move(next));
  }
  return Commit(writes, audit, [&] {
    service_accounts_.erase(id);
    for (const auto& t : revoked) tokens_by_hash_[t.token_sha256] = t;
  });
}

// ---- Secrets --------------------------------------------------------------------------------------

Status AccountService::SetSecret(const std::string& project, const std::string& name, const std::string& value,
                                 const std::string& actor, api::AuditRecord* audit) {
  RETURN_IF_ERROR(api::ValidateSecretName(name));
  if (value.size() > kMaxSecretBytes)
    return InvalidArgument("secret value is " + std::to_string(value.size()) + " bytes; the limit is " +
                           std::to_string(kMaxSecretBytes));
  std::lock_guard wlock(write_mu_);
  if (!key_) return FailedPrecondition(kNoMasterKey);
  if (!projects_.count(project)) return NotFound("project " + project + " does not exist");
  ASSIGN_OR_RETURN(api::SecretRecord rec, SealSecret(*key_, project, name, value));
  rec.updated_at = clock_.NowMillis();
  rec.updated_by = actor;
  return Commit({Put(kSecretKind, PairKey(project, name), api::SecretRecordToStoreJson(rec).dump())}, audit,
                [&] { secrets_[{project, name}] = rec; });
}

std::vector<api::SecretRecord> AccountService::ListSecrets(const std::string& project) const {
  std::lock_guard lock(mu_);
  std::vector<api::SecretRecord> out;
  for (auto it = secrets_.lower_bound({project, ""}); it != secrets_.end() && it->first.first == project; ++it)
    out.push_back(it->second);
  return out;
}

Status AccountService::DeleteSecret(const std::string& project, const std::string& name, api::AuditRecord* audit) {
  std::lock_guard wlock(write_mu_);
  if (!secrets_.count({project, name}))
    return NotFound("secret " + name + " does not exist in project " + project);
  return Commit({Erase(kSecretKind, PairKey(project, name))}, audit, [&] { secrets_.erase({project, name}); });
}

Result<std::map<std::string, std::string>> AccountService::OpenSecretValues(
    const std::string& project, const std::vector<std::string>& names) const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::string> out;
  if (names.empty()) return out;
  if (!key_) return FailedPrecondition(kNoMasterKey);
  for (const auto& name : names) {
    auto it = secrets_.find({project, name});
    if (it == secrets_.end())
      return NotFound("secret " + name + " is not set in project " + project + " (set it with: fastgpu secret set " +
                      name + " --project " + project + ")");
    ASSIGN_OR_RETURN(out[name], OpenSecret(*key_, it->second));
  }
  return out;
}

Result<int64_t> AccountService::RotateKey(const MasterKey& new_key, api::AuditRecord* audit) {
  std::lock_guard wlock(write_mu_);
  std::vector<store::RecordWrite> writes;
  std::vector<api::SecretRecord> resealed;
  for (const auto& [k, rec] : secrets_) {
    if (rec.key_id == new_key.id()) continue;  // already sealed by the new key (a rotation that was resumed)
    if (!key_) return FailedPrecondition(kNoMasterKey);
    ASSIGN_OR_RETURN(std::string value, OpenSecret(*key_, rec));
    auto sealed = SealSecret(new_key, rec.project, rec.name, value);
    OPENSSL_cleanse(value.data(), value.size());
    if (!sealed.ok()) return sealed.status();
    sealed->updated_at = rec.updated_at;
    sealed->updated_by = rec.updated_by;
    writes.push_back(
        Put(kSecretKind, PairKey(rec.project, rec.name), api::SecretRecordToStoreJson(*sealed).dump()));
    resealed.push_back(std::move(sealed).value());
  }
  if (audit && audit->detail.empty())
    audit->detail = "rotated " + std::to_string(resealed.size()) + " secrets to key " + new_key.id();
  RETURN_IF_ERROR(Commit(writes, audit, [&] {
    for (const auto& s : resealed) secrets_[{s.project, s.name}] = s;
    key_ = new_key;
  }));
  return static_cast<int64_t>(resealed.size());
}

}  // namespace fastgpu::auth
