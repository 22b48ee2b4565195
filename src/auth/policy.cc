#include "auth/policy.h"

namespace fastgpu::auth {

std::string Principal::Actor() const { return (service_account ? "sa:" : "user:") + user; }

std::optional<api::Role> Principal::RoleIn(const std::string& project) const {
  auto it = roles.find(project);
  if (it == roles.end()) return std::nullopt;
  return it->second;
}

std::string_view ActionName(Action a) {
  switch (a) {
    case Action::kPublic: return "public";
    case Action::kAuthenticated: return "authenticated";
    case Action::kProjectRead: return "project-read";
    case Action::kProjectWrite: return "project-write";
    case Action::kProjectManage: return "project-manage";
    case Action::kAdmin: return "admin";
  }
  return "admin";
}

namespace {

api::Role RoleNeeded(Action a) {
  switch (a) {
    case Action::kProjectRead: return api::Role::kViewer;
    case Action::kProjectWrite: return api::Role::kMember;
    default: return api::Role::kOwner;
  }
}

std::string Describe(const Principal& p) { return p.Actor(); }

}  // namespace

Status Authorize(const Principal& p, Action a, const std::string& project, const std::string& not_found_message) {
  if (a == Action::kPublic) return Status::Ok();
  if (p.user.empty()) return Unauthenticated("this request needs an API token (Authorization: Bearer <token>)");
  if (a == Action::kAuthenticated) return Status::Ok();
  // A service account is never an admin, whatever its principal says.
  if (p.admin && !p.service_account) return Status::Ok();
  if (a == Action::kAdmin)
    return PermissionDenied("this action requires admin, and " + Describe(p) + " is not an administrator");

  const std::string not_found =
      not_found_message.empty() ? "project " + project + " does not exist" : not_found_message;
  if (project.empty()) return NotFound(not_found);
  // A service account acts only in its own (single) project.
  if (p.service_account && (p.roles.size() != 1 || p.roles.begin()->first != project)) return NotFound(not_found);
  auto role = p.RoleIn(project);
  if (!role) return NotFound(not_found);
  const api::Role need = RoleNeeded(a);
  if (static_cast<int>(*role) < static_cast<int>(need)) {
    return PermissionDenied("this action needs role " + std::string(api::RoleName(need)) + " or higher in project " +
                            project + "; " + Describe(p) + " is " + std::string(api::RoleName(*role)));
  }
  return Status::Ok();
}

}  // namespace fastgpu::auth
