#include "auth/policy.h"

#include <gtest/gtest.h>

namespace fastgpu::auth {
namespace {

using api::Role;

Principal User(const std::string& name, std::map<std::string, Role> roles, bool admin = false) {
  Principal p;
  p.user = name;
  p.admin = admin;
  p.roles = std::move(roles);
  return p;
}

Principal ServiceAccount(const std::string& id, const std::string& project, Role role) {
  Principal p;
  p.user = id;
  p.service_account = true;
  p.roles[project] = role;
  return p;
}

TEST(Principal, ActorAndRole) {
  EXPECT_EQ(User("alice", {}).Actor(), "user:alice");
  EXPECT_EQ(ServiceAccount("sa-0123456789ab", "ml", Role::kMember).Actor(), "sa:sa-0123456789ab");
  auto p = User("alice", {{"ml", Role::kViewer}});
  EXPECT_EQ(p.RoleIn("ml"), Role::kViewer);
  EXPECT_FALSE(p.RoleIn("web").has_value());
  // Admins are not implicitly members.
  EXPECT_FALSE(User("root", {}, true).RoleIn("ml").has_value());
}

TEST(Action, Names) {
  EXPECT_EQ(ActionName(Action::kPublic), "public");
  EXPECT_EQ(ActionName(Action::kAuthenticated), "authenticated");
  EXPECT_EQ(ActionName(Action::kProjectRead), "project-read");
  EXPECT_EQ(ActionName(Action::kProjectWrite), "project-write");
  EXPECT_EQ(ActionName(Action::kProjectManage), "project-manage");
  EXPECT_EQ(ActionName(Action::kAdmin), "admin");
}

TEST(Authorize, PublicAndAuthenticated) {
  Principal anonymous;
  EXPECT_TRUE(Authorize(anonymous, Action::kPublic, "", "").ok());
  EXPECT_EQ(Authorize(anonymous, Action::kAuthenticated, "", "").code(), ErrorCode::kUnauthenticated);
  EXPECT_EQ(Authorize(anonymous, Action::kProjectRead, "ml", "").code(), ErrorCode::kUnauthenticated);
  EXPECT_TRUE(Authorize(User("alice", {}), Action::kAuthenticated, "", "").ok());
  EXPECT_TRUE(Authorize(ServiceAccount("sa-1", "ml", Role::kViewer), Action::kAuthenticated, "", "").ok());
}

TEST(Authorize, AdminMayDoEverything) {
  auto admin = User("root", {}, true);
  for (Action a : {Action::kPublic, Action::kAuthenticated, Action::kProjectRead, Action::kProjectWrite,
                   Action::kProjectManage, Action::kAdmin}) {
    EXPECT_TRUE(Authorize(admin, a, "anything", "nope").ok()) << ActionName(a);
  }
}

TEST(Authorize, AdminActionsNeedAdmin) {
  Status st = Authorize(User("alice", {{"ml", Role::kOwner}}), Action::kAdmin, "", "");
  EXPECT_EQ(st.code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(st.message().find("requires admin"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("user:alice"), std::string::npos) << st.message();
}

TEST(Authorize, RoleMatrix) {
  const std::map<Role, std::map<Action, bool>> expected = {
      {Role::kViewer, {{Action::kProjectRead, true}, {Action::kProjectWrite, false}, {Action::kProjectManage, false}}},
      {Role::kMember, {{Action::kProjectRead, true}, {Action::kProjectWrite, true}, {Action::kProjectManage, false}}},
      {Role::kOwner, {{Action::kProjectRead, true}, {Action::kProjectWrite, true}, {Action::kProjectManage, true}}},
  };
  for (const auto& [role, actions] : expected) {
    auto p = User("alice", {{"ml", role}});
    for (const auto& [action, allowed] : actions) {
      Status st = Authorize(p, action, "ml", "project ml does not exist");
      EXPECT_EQ(st.ok(), allowed) << api::RoleName(role) << " " << ActionName(action) << ": " << st.ToString();
      if (!allowed) {
        EXPECT_EQ(st.code(), ErrorCode::kPermissionDenied);
      }
    }
  }
}

TEST(Authorize, TooWeakRoleNamesNeededAndHeldRole) {
  Status st = Authorize(User("alice", {{"ml", Role::kViewer}}), Action::kProjectWrite, "ml", "");
  ASSERT_EQ(st.code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(st.message().find("member"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("viewer"), std::string::npos) << st.message();
  st = Authorize(User("alice", {{"ml", Role::kMember}}), Action::kProjectManage, "ml", "");
  EXPECT_NE(st.message().find("owner"), std::string::npos) << st.message();
}

TEST(Authorize, NonMemberGetsNotFoundWithTheGivenMessage) {
  auto p = User("bob", {{"web", Role::kOwner}});
  for (Action a : {Action::kProjectRead, Action::kProjectWrite, Action::kProjectManage}) {
    Status st = Authorize(p, a, "ml", "job j-12 does not exist");
    EXPECT_EQ(st.code(), ErrorCode::kNotFound);
    EXPECT_EQ(st.message(), "job j-12 does not exist");
  }
  Status st = Authorize(p, Action::kProjectRead, "ml", "");
  EXPECT_EQ(st.code(), ErrorCode::kNotFound);
  EXPECT_NE(st.message().find("ml"), std::string::npos);
}

TEST(Authorize, ServiceAccountActsOnlyInItsProject) {
  auto sa = ServiceAccount("sa-1", "ml", Role::kMember);
  EXPECT_TRUE(Authorize(sa, Action::kProjectRead, "ml", "").ok());
  EXPECT_TRUE(Authorize(sa, Action::kProjectWrite, "ml", "").ok());
  EXPECT_EQ(Authorize(sa, Action::kProjectManage, "ml", "").code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(Authorize(sa, Action::kProjectRead, "web", "nope").code(), ErrorCode::kNotFound);
  EXPECT_EQ(Authorize(sa, Action::kAdmin, "", "").code(), ErrorCode::kPermissionDenied);
  // Even a malformed principal (admin flag, extra roles) does not widen a service account.
  sa.admin = true;
  sa.roles["web"] = Role::kOwner;
  EXPECT_EQ(Authorize(sa, Action::kAdmin, "", "").code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(Authorize(sa, Action::kProjectRead, "web", "nope").code(), ErrorCode::kNotFound);
}

TEST(Credentials, ServiceAccountsManageNoIdentities) {
  const auto owner_sa = ServiceAccount("sa-0123456789ab", "ml", Role::kOwner);
  const Status st = MayManageIdentities(owner_sa, "create API tokens");
  EXPECT_EQ(st.code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(st.message().rfind("service accounts may not create API tokens; sa:sa-0123456789ab", 0), 0u) << st.message();
  for (Role r : {Role::kViewer, Role::kMember, Role::kOwner})
    EXPECT_EQ(MayGrantRole(owner_sa, "ml", r, "create a service account").code(), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(MayManageIdentities(User("alice", {}), "create API tokens").ok());
}

TEST(Credentials, UsersGrantAtMostTheirOwnRole) {
  const auto alice = User("alice", {{"ml", Role::kOwner}, {"web", Role::kMember}});
  EXPECT_TRUE(MayGrantRole(alice, "ml", Role::kOwner, "add a member").ok());
  EXPECT_TRUE(MayGrantRole(alice, "web", Role::kMember, "add a member").ok());
  const Status st = MayGrantRole(alice, "web", Role::kOwner, "add a member");
  EXPECT_EQ(st.code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(st.message().find("user:alice is member in project web"), std::string::npos) << st.message();
  EXPECT_EQ(MayGrantRole(alice, "other", Role::kViewer, "add a member").code(), ErrorCode::kPermissionDenied);
  EXPECT_TRUE(MayGrantRole(User("root", {}, true), "other", Role::kOwner, "add a member").ok());
}

TEST(BearerToken, SchemeIsCaseInsensitiveAndTheTokenIsTrimmed) {
  EXPECT_EQ(BearerToken("Bearer fgp_x"), "fgp_x");
  EXPECT_EQ(BearerToken("bearer fgp_x"), "fgp_x");
  EXPECT_EQ(BearerToken("BEARER fgp_x"), "fgp_x");
  EXPECT_EQ(BearerToken("bEaReR   fgp_x  "), "fgp_x");
  EXPECT_EQ(BearerToken("Basic dXNlcjpwYXNz"), std::nullopt);
  EXPECT_EQ(BearerToken("Bearerfgp_x"), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer "), std::nullopt);
  EXPECT_EQ(BearerToken("Bearer"), std::nullopt);
  EXPECT_EQ(BearerToken(""), std::nullopt);
}

}  // namespace
}  // namespace fastgpu::auth
