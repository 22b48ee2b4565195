// Wire types for identity, access, audit, secrets and quotas. JSON codecs: api/accounts_json.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"
#include "common/status.h"

namespace fastgpu::api {

// Per-project roles, weakest first. "admin" is not a project role: it is a flag on the user.
enum class Role { kViewer = 1, kMember = 2, kOwner = 3 };
std::string_view RoleName(Role r);         // "viewer", "member", "owner"
Result<Role> ParseRole(std::string_view s);

struct User {
  std::string name;          // [a-z0-9][a-z0-9._-]{0,62}
  std::string display_name;
  bool admin = false;        // whole-system administrator
  bool disabled = false;
  UnixMillis created_at = 0;
};

struct Quota {
  // Max GPUs held at once, per GPU type ("*" = all types together), in milli-GPU. Absent = unlimited.
  std::map<std::string, MilliGpu> max_gpus_milli;
  int64_t max_gpu_hours_per_month = 0;  // 0 = unlimited (whole GPU-hours, summed over types)
  int64_t max_queued_jobs = 0;          // 0 = unlimited (QUEUED jobs at once)
};

struct Budget {
  int64_t monthly_limit_micro = 0;  // 0 = no budget
  bool hard = false;                // at 100 %: stop running jobs too (soft: only hold new ones)
};

struct Project {
  std::string name;          // same charset as user names
  std::string description;
  UnixMillis created_at = 0;
  Quota quota;
  Budget budget;
  // The Unix uid (and gid) this project's jobs run as when the agent runs as root: allocated by the
  // server when the project is created, from the configured job uid range, never shared with another
  // project and never reused. 0 = not allocated yet (records written by older versions).
  int64_t run_as_uid = 0;
  // Optional named OS user that runs this project's jobs instead of run_as_uid (admin only; for shared
  // storage that expects a known user). Never shared between projects.
  std::string run_as_user;
  bool allow_root = false;   // only an admin may set it: jobs may run as root
};

struct Membership {
  std::string project;
  std::string user;
  Role role = Role::kViewer;
};

// An API token. The secret is shown once at creation; only its SHA-256 is stored.
struct TokenRecord {
  std::string id;            // "tok-<12 hex>" (public, used to revoke)
  std::string token_sha256;  // hex
  std::string user;          // owner (for service-account access tokens: "sa:<id>")
  std::string name;          // label given by the user ("laptop", "ci")
  UnixMillis created_at = 0;
  UnixMillis expires_at = 0; // 0 = never
  UnixMillis revoked_at = 0; // 0 = active
  std::string service_account;  // non-empty for OAuth2 access tokens
  std::string project;          // service-account tokens: the only project they may act in
};

// A project's machine identity for OAuth2 client credentials.
struct ServiceAccount {
  std::string id;             // "sa-<12 hex>" = OAuth2 client_id
  std::string project;
  std::string name;
  Role role = Role::kMember;  // role it gets in its project
  std::string secret_sha256;  // hex of the client secret (shown once)
  UnixMillis created_at = 0;
  UnixMillis disabled_at = 0;
};

// One audit row. seq, prev_hash and hash are assigned by the store when appended.
struct AuditRecord {
  int64_t seq = 0;
  UnixMillis at = 0;
  std::string actor;    // "user:alice", "sa:sa-1234", "anonymous"
  std::string source;   // client address
  std::string action;   // "POST /v1/jobs", "login", "oauth.token"
  std::string target;   // "job:j-12", "project:ml", "secret:ml/WANDB_KEY"
  std::string result;   // "ok" or an error code name ("permission_denied", ...)
  std::string detail;   // short, never contains secret values
  std::string prev_hash;
  std::string hash;     // Sha256Hex(AuditCanonical(record with prev_hash))
};
// The exact bytes hashed for a row (every field except `hash`, unambiguous framing).
std::string AuditCanonical(const AuditRecord& r);
std::string AuditHash(const AuditRecord& r);  // Sha256Hex(AuditCanonical(r))

// A project secret as stored: AES-256-GCM ciphertext, never the value.
struct SecretRecord {
  std::string project;
  std::string name;         // [A-Z_][A-Z0-9_]{0,127}
  std::string key_id;       // which master key sealed it (first 16 hex of SHA-256 of the key)
  std::string nonce_hex;    // 12 bytes
  std::string ciphertext_hex;  // includes the 16-byte GCM tag at the end
  UnixMillis updated_at = 0;
  std::string updated_by;
};

Status ValidateName(std::string_view what, std::string_view name);       // users, projects
Status ValidateSecretName(std::string_view name);

}  // namespace fastgpu::api
