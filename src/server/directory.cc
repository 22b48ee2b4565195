#include "server/directory.h"

#include <nlohmann/json.hpp>

#include "api/billing_json.h"

namespace fastgpu::server {

std::optional<ProjectRules> AccountDirectory::Rules(const std::string& project) const {
  auto p = accounts_.GetProject(project);
  if (!p.ok()) return std::nullopt;
  return ProjectRules{p->quota, p->budget, p->run_as_user, p->allow_root};
}

Result<std::map<std::string, std::string>> AccountDirectory::SecretEnv(const std::string& project,
                                                                      const std::vector<std::string>& names) const {
  return accounts_.OpenSecretValues(project, names);
}

Result<billing::PriceCatalog> LoadPrices(store::Store& store) {
  ASSIGN_OR_RETURN(auto records, store.ListRecords("price", ""));
  billing::PriceCatalog catalog = billing::PriceCatalog::Defaults();
  for (const auto& r : records) {
    auto j = nlohmann::json::parse(r.value, nullptr, false);
    if (j.is_discarded()) return Internal("price record " + r.key + " is not valid JSON");
    ASSIGN_OR_RETURN(auto e, api::PriceEntryFromJson(j));
    catalog.Add(e);
  }
  return catalog;
}

Result<std::vector<billing::Plan>> LoadPlans(store::Store& store) {
  ASSIGN_OR_RETURN(auto records, store.ListRecords("plan", ""));
  std::vector<billing::Plan> plans;
  for (const auto& r : records) {
    auto j = nlohmann::json::parse(r.value, nullptr, false);
    if (!j.is_object()) return Internal("plan record " + r.key + " is not valid JSON");
    plans.push_back({j.value("project", ""), j.value("discount_bps", int64_t{0}), j.value("from", int64_t{0}),
                     j.value("to", int64_t{0})});
  }
  return plans;
}

}  // namespace fastgpu::server
