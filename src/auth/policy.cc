#include "auth/policy.h"

#include <algorithm>
#include <cctype>

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

Status MayManageIdentities(const Principal& p, std::string_view what) {
  if (!p.service_account) return Status::Ok();
  return PermissionDenied("service accounts may not " + std::string(what) + "; " + Describe(p) +
                          " is a service account: ask an owner of its project (a person) to do it");
}

Status MayGrantRole(const Principal& p, const std::string& project, api::Role role, std::string_view what) {
  RETURN_IF_ERROR(MayManageIdentities(p, what));
  if (p.admin) return Status::Ok();
  const auto held = p.RoleIn(project);
  if (!held || static_cast<int>(role) > static_cast<int>(*held)) {
    return PermissionDenied("cannot " + std::string(what) + " with role " + std::string(api::RoleName(role)) + ": " +
                            Describe(p) + " is " + (held ? std::string(api::RoleName(*held)) : "not a member") +
                            " in project " + project + " and may grant at most that");
  }
  return Status::Ok();
}

std::optional<std::string> BearerToken(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer";
  if (authorization.size() <= kScheme.size()) return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) != kScheme[i]) return std::nullopt;
  }
  std::string_view rest = authorization.substr(kScheme.size());
  if (rest.front() != ' ') return std::nullopt;
  rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

}  // namespace fastgpu::auth
