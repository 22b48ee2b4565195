// Who may do what. Pure: a Principal and an Action in, a Status out.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "api/accounts.h"
#include "common/status.h"

namespace fastgpu::auth {

// The authenticated caller of one request.
struct Principal {
  std::string user;             // user name; for service accounts: the account id ("sa-...")
  bool admin = false;
  bool service_account = false;
  std::map<std::string, api::Role> roles;  // project -> role (for a service account: its one project)
  std::string token_id;
  // "user:alice" or "sa:sa-1a2b..." (events, audit rows, job.user)
  std::string Actor() const;
  // The caller's role in `project`, or nullopt when not a member. Admins are not implicitly members.
  std::optional<api::Role> RoleIn(const std::string& project) const;
};

// Every operation the API offers. Each HTTP route maps to exactly one Action (tested).
enum class Action {
  kPublic,            // no authentication (healthz, openapi, oauth token)
  kAuthenticated,     // any valid caller (whoami, list own tokens, prices, gpus, nodes)
  // Project-scoped: need a role in the project named by the request.
  kProjectRead,       // viewer+: jobs list/get/events/logs/wait, project get, members list, secrets list,
                      //          usage, bill, credits list
  kProjectWrite,      // member+: submit, cancel, secret set/delete
  kProjectManage,     // owner+: members add/remove, service accounts, budget, description
  // System-wide: admin only.
  kAdmin,             // users, project create, quotas, run_as/allow_root, prices set, credits add,
                      //  audit, key rotation
};
std::string_view ActionName(Action a);

// Credentials and grants: a caller never hands out more than it holds (docs/security.md, "Credentials").
// Service accounts manage no identities: they create no API tokens (theirs come from /oauth/token), no
// service accounts and change no memberships, so every long-lived credential and every role traces back
// to a person, and a leaked client secret cannot plant a second credential that outlives its deletion.
// kPermissionDenied naming `what` for a service account.
Status MayManageIdentities(const Principal& p, std::string_view what);
// MayManageIdentities, and a user who is not an admin grants at most their own role in `project`
// (a service account's role, a member's role).
Status MayGrantRole(const Principal& p, const std::string& project, api::Role role, std::string_view what);

// The token of an `Authorization: Bearer <token>` header value. The scheme word is case-insensitive
// (RFC 7235: `bearer`, `BEARER`) and one or more spaces separate it from the token. nullopt for another
// scheme or an empty token.
std::optional<std::string> BearerToken(std::string_view authorization);

// Decides whether `p` may perform `a` on `project` (ignored for kPublic/kAuthenticated/kAdmin).
// Admins may do everything. Not a member of the project: kNotFound with `not_found_message` (so the
// existence of other tenants' projects and jobs does not leak). Member with too weak a role:
// kPermissionDenied naming the role needed and the role held.
Status Authorize(const Principal& p, Action a, const std::string& project, const std::string& not_found_message);

}  // namespace fastgpu::auth
