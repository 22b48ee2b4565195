#include "api/accounts.h"

#include "common/crypto.h"

namespace fastgpu::api {

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kViewer: return "viewer";
    case Role::kMember: return "member";
    case Role::kOwner: return "owner";
  }
  return "viewer";
}

Result<Role> ParseRole(std::string_view s) {
  if (s == "viewer") return Role::kViewer;
  if (s == "member") return Role::kMember;
  if (s == "owner") return Role::kOwner;
  return InvalidArgument("unknown role '" + std::string(s) + "' (expected viewer, member or owner)");
}

std::string AuditCanonical(const AuditRecord& r) {
  // Length-prefixed fields: no separator can be forged by a field's content.
  std::string out;
  auto add = [&](std::string_view v) {
    out += std::to_string(v.size());
    out += ':';
    out.append(v.data(), v.size());
    out += ';';
  };
  add(std::to_string(r.seq));
  add(std::to_string(r.at));
  add(r.actor);
  add(r.source);
  add(r.action);
  add(r.target);
  add(r.result);
  add(r.detail);
  add(r.prev_hash);
  return out;
}

std::string AuditHash(const AuditRecord& r) { return Sha256Hex(AuditCanonical(r)); }

Status ValidateName(std::string_view what, std::string_view name) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument(std::string(what) + " name '" + std::string(name) + "' " + why +
                           " (use 1-63 characters: a-z, 0-9, '.', '_', '-'; start with a letter or digit)");
  };
  if (name.empty() || name.size() > 63) return bad("has a bad length");
  auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok_first(name[0])) return bad("must start with a letter or digit");
  for (char c : name) {
    if (!ok_first(c) && c != '.' && c != '_' && c != '-') return bad("contains a character that is not allowed");
  }
  return Status::Ok();
}

Status ValidateSecretName(std::string_view name) {
  auto bad = [&]() {
    return InvalidArgument("secret name '" + std::string(name) +
                           "' is not valid (use A-Z, 0-9 and '_', start with a letter or '_', at most 128 characters)");
  };
  if (name.empty() || name.size() > 128) return bad();
  if (!((name[0] >= 'A' && name[0] <= 'Z') || name[0] == '_')) return bad();
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return bad();
  }
  return Status::Ok();
}

}  // namespace fastgpu::api
