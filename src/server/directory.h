// The service's view of projects (quotas, budget, run-as user, secrets), backed by the account service.
#pragma once

#include "auth/accounts.h"
#include "server/service.h"
#include "store/store.h"

namespace fastgpu::server {

class AccountDirectory final : public ProjectDirectory {
 public:
  explicit AccountDirectory(auth::AccountService& accounts) : accounts_(accounts) {}
  std::optional<ProjectRules> Rules(const std::string& project) const override;
  Result<std::map<std::string, std::string>> SecretEnv(const std::string& project,
                                                       const std::vector<std::string>& names) const override;

 private:
  auth::AccountService& accounts_;
};

// Price entries and prepaid plans stored as records (kinds "price" and "plan"); defaults when none.
Result<billing::PriceCatalog> LoadPrices(store::Store& store);
Result<std::vector<billing::Plan>> LoadPlans(store::Store& store);

}  // namespace fastgpu::server
