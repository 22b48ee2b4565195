// Who may do what. Pure: a Principal and an Action in, a Status out.
#pragma once

#include <map>
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

// Decides whether `p` may perform `a` on `project` (ignored for kPublic/kAuthenticated/kAdmin).
// Admins may do everything. Not a member of the project: kNotFound with `not_found_message` (so the
// existence of other tenants' projects and jobs does not leak). Member with too weak a role:
// kPermissionDenied naming the role needed and the role held.
Status Authorize(const Principal& p, Action a, const std::string& project, const std::string& not_found_message);

}  // namespace fastgpu::auth
