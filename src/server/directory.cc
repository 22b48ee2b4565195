#include "server/directory.h"

#include <nlohmann/json.hpp>

#include "api/billing_json.h"

namespace fastgpu::server {

std::optional<ProjectRules> AccountDirectory::Rules(const std::string& project) const {
  auto p = accounts_.GetProject(project);
  if (!p.ok()) return std::nullopt;
  return ProjectRules{p->quota, p->budget, p->run_as_user, p->allow_root, p->run_as_uid};
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
    auto int_field = [&](const char* f) -> Result<int64_t> {
      auto it = j.find(f);
      if (it == j.end() || !it->is_number_integer()) return Internal("plan record " + r.key + ": bad field " + f);
      return it->get<int64_t>();
    };
    if (!j.is_object() || !j.contains("project") || !j["project"].is_string())
      return Internal("plan record " + r.key + " is not a valid plan");
    ASSIGN_OR_RETURN(int64_t bps, int_field("discount_bps"));
    ASSIGN_OR_RETURN(int64_t from, int_field("from"));
    ASSIGN_OR_RETURN(int64_t to, int_field("to"));
    plans.push_back({j["project"].get<std::string>(), bps, from, to});
  }
  return plans;
}

}  // namespace fastgpu::server
