// Users, projects, memberships, API tokens, service accounts (OAuth2 client credentials) and project
// secrets, kept as Store records. Thread-safe. Reads are served from an in-memory cache that is
// loaded at start and updated on every write (this process is the only writer).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/accounts.h"
#include "api/billing.h"
#include "auth/policy.h"
#include "auth/secrets.h"
#include "common/clock.h"
#include "common/status.h"
#include "store/store.h"

namespace fastgpu::auth {

struct CreatedToken {
  api::TokenRecord record;
  std::string token;  // the secret, shown once
};

struct CreatedServiceAccount {
  api::ServiceAccount account;
  std::string client_secret;  // shown once
};

struct AccessToken {
  std::string access_token;
  int64_t expires_in_s = 0;
};

// Unix uids given to projects for their jobs (`--job-uid-range`). The default lies above the ranges
// that useradd hands out (regular users, system users, /etc/subuid blocks up to 600,100,000) and
// above systemd-nspawn's container range (up to 1,879,048,191), below 2^31.
inline constexpr int64_t kDefaultJobUidFirst = 1'900'000'000;
inline constexpr int64_t kDefaultJobUidLast = 1'999'999'999;

struct JobUidRange {
  int64_t first = kDefaultJobUidFirst;
  int64_t last = kDefaultJobUidLast;
};
// "FIRST-LAST", e.g. "200000-299999": both inclusive, 1000 <= FIRST <= LAST < 4294967295.
Result<JobUidRange> ParseJobUidRange(std::string_view text);
std::string FormatJobUidRange(const JobUidRange& r);  // "FIRST-LAST"

struct AccountOptions {
  int64_t access_token_ttl_s = 3600;  // OAuth2 access tokens
  int64_t max_token_ttl_s = 366LL * 86400;
  JobUidRange job_uids;  // where projects' run_as_uid are allocated from
};

// Audit rows: every method that changes accounts takes the request's audit row (`audit`, may be null)
// and writes it in the store transaction of the change (store::Store::WriteRecords), so a change is never
// without its row nor a row without its change. On success a row that was written has its seq and hash
// filled (seq > 0); a call that fails, or succeeds without changing anything (e.g. the same role again),
// writes no row and leaves seq at 0 (the caller then writes its own row for the request).
class AccountService {
 public:
  // Loads all records. `key` seals secrets (may be null: secret calls then fail with a clear error).
  static Result<std::unique_ptr<AccountService>> Create(store::Store& store, const Clock& clock,
                                                        const MasterKey* key, AccountOptions options = {});

  // --- Bootstrap (fastgpu up / server start): ensures user `admin` (admin=true), project "default"
  // with admin as owner, and a token whose hash is `token_sha256` owned by admin (idempotent).
  Status EnsureBootstrap(const std::string& admin_token_sha256);

  // --- Authentication. kUnauthenticated for unknown, expired, revoked tokens and disabled users
  // (one message for all: "invalid or expired token").
  Result<Principal> Authenticate(const std::string& bearer_token) const;
  // OAuth2 client credentials. kUnauthenticated for a wrong id/secret or disabled account.
  Result<AccessToken> IssueAccessToken(const std::string& client_id, const std::string& client_secret,
                                       api::AuditRecord* audit = nullptr);

  // --- Users (admin)
  Result<api::User> CreateUser(api::User user, api::AuditRecord* audit = nullptr);
  Result<api::User> GetUser(const std::string& name) const;
  std::vector<api::User> ListUsers() const;
  // Sets admin / disabled / display_name. An admin cannot remove their own admin flag or disable
  // themselves (kFailedPrecondition), so the system never loses its last admin by accident.
  Result<api::User> UpdateUser(const std::string& actor_user, const std::string& name,
                               std::optional<bool> admin, std::optional<bool> disabled,
                               std::optional<std::string> display_name, api::AuditRecord* audit = nullptr);

  // --- Projects
  // Allocates the project's run_as_uid (any value given is ignored): the next uid of the job uid range
  // that no project has ever had. kFailedPrecondition when the range is used up. A named run_as_user
  // that another project already uses is refused (kFailedPrecondition), here and in UpdateProject.
  // `ledger`: entries posted with the project's records and the audit row, in the same store transaction
  // (e.g. the trial credit a new project gets): all are written, or none.
  Result<api::Project> CreateProject(api::Project project, const std::string& owner_user,
                                     api::AuditRecord* audit = nullptr,
                                     const std::vector<api::LedgerEntry>& ledger = {});
  Result<api::Project> GetProject(const std::string& name) const;
  std::vector<api::Project> ListProjects() const;
  // Replaces the project's mutable fields (description, quota, budget, run_as_user, allow_root);
  // run_as_uid never changes.
  Result<api::Project> UpdateProject(const api::Project& project, api::AuditRecord* audit = nullptr);
  JobUidRange job_uid_range() const { return options_.job_uids; }

  // --- Memberships
  Status SetMember(const std::string& project, const std::string& user, api::Role role,
                   api::AuditRecord* audit = nullptr);
  // Refuses to remove the last owner (kFailedPrecondition).
  Status RemoveMember(const std::string& project, const std::string& user, api::AuditRecord* audit = nullptr);
  std::vector<api::Membership> ListMembers(const std::string& project) const;

  // --- API tokens. ttl_s 0 = default 90 days; capped by options.max_token_ttl_s. The audit row's empty
  // target becomes "token:<new id>".
  Result<CreatedToken> CreateToken(const std::string& user, const std::string& name, int64_t ttl_s,
                                   api::AuditRecord* audit = nullptr);
  std::vector<api::TokenRecord> ListTokens(const std::string& user) const;  // "" = all (admin)
  Result<api::TokenRecord> GetToken(const std::string& id) const;
  Status RevokeToken(const std::string& id, api::AuditRecord* audit = nullptr);

  // --- Service accounts of a project. The audit row's empty target becomes "service-account:<new id>".
  Result<CreatedServiceAccount> CreateServiceAccount(const std::string& project, const std::string& name,
                                                     api::Role role, api::AuditRecord* audit = nullptr);
  std::vector<api::ServiceAccount> ListServiceAccounts(const std::string& project) const;
  // Also revokes its tokens.
  Status DeleteServiceAccount(const std::string& project, const std::string& id, api::AuditRecord* audit = nullptr);

  // --- Secrets (values never leave except via OpenSecretValues for job start).
  Status SetSecret(const std::string& project, const std::string& name, const std::string& value,
                   const std::string& actor, api::AuditRecord* audit = nullptr);
  std::vector<api::SecretRecord> ListSecrets(const std::string& project) const;  // records, no values
  Status DeleteSecret(const std::string& project, const std::string& name, api::AuditRecord* audit = nullptr);
  // For starting a job: NAME -> value for each requested name. kNotFound naming the first missing one.
  Result<std::map<std::string, std::string>> OpenSecretValues(const std::string& project,
                                                              const std::vector<std::string>& names) const;
  // Re-encrypts every secret under `new_key` in one store transaction and switches to it.
  // The caller persists the new key file first (see docs/security.md for the order). Returns the count.
  // The audit row's empty detail becomes "rotated <count> secrets to key <id>".
  Result<int64_t> RotateKey(const MasterKey& new_key, api::AuditRecord* audit = nullptr);

  // Only Create() can make the pass key (so construction goes through loading).
  class PassKey {
    friend class AccountService;
    explicit PassKey() = default;
  };
  AccountService(PassKey, store::Store& store, const Clock& clock, const MasterKey* key, AccountOptions options);

 private:
  using RecordId = std::pair<std::string, std::string>;  // (kind, key)

  Status Load();
  // Gives a run_as_uid to every project that has none (records from older versions), durably.
  Status AllocateMissingUids();
  // The next job uid after `*last_given` that no project holds; advances *last_given. Needs write_mu_.
  Result<int64_t> NextJobUid(int64_t* last_given, const std::string& project) const;
  // The allocator's high-water mark record, with `last_given`.
  store::RecordWrite PutUidMark(int64_t last_given) const;
  // kFailedPrecondition when another project already runs as the named OS user. Needs write_mu_.
  Status CheckRunAsUserFree(const api::Project& project) const;
  // Record write with compare-and-set against the version this process last saw (0 = must be new).
  store::RecordWrite Put(const std::string& kind, const std::string& key, std::string value) const;
  store::RecordWrite Erase(const std::string& kind, const std::string& key) const;
  // Applies `writes`, the ledger entries `ledger` and the request's audit row (null: none) in one store
  // transaction; on success updates versions_ and runs `apply` under mu_. On a compare-and-set conflict
  // (another process wrote), reloads the cache and fails.
  template <typename F>
  Status Commit(const std::vector<store::RecordWrite>& writes, api::AuditRecord* audit, F&& apply,
                const std::vector<api::LedgerEntry>& ledger = {});
  Result<api::TokenRecord> NewToken(const std::string& user, const std::string& name, UnixMillis expires_at,
                                    std::string* token) const;
  bool IsLastOwner(const std::string& project, const std::string& user) const;  // needs mu_ or write_mu_

  store::Store& store_;
  const Clock& clock_;
  std::optional<MasterKey> key_;
  AccountOptions options_;
  std::mutex write_mu_;  // serialises writers (held across the store write); readers only take mu_
  mutable std::mutex mu_;  // guards the cache below and key_
  std::map<RecordId, int64_t> versions_;
  std::map<std::string, api::User> users_;
  std::map<std::string, api::Project> projects_;
  std::map<std::pair<std::string, std::string>, api::Role> members_;  // (project, user)
  std::map<std::string, api::TokenRecord> tokens_by_hash_;
  std::map<std::string, api::ServiceAccount> service_accounts_;
  std::map<std::pair<std::string, std::string>, api::SecretRecord> secrets_;  // (project, name)
  int64_t last_job_uid_ = 0;  // the highest run_as_uid ever given (persisted: uids are never reused)
};

}  // namespace fastgpu::auth
