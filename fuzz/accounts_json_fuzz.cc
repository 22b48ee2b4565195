// Fuzzes the decoders of api/accounts_json.h. Every input is given to every decoder; accepted
// records must survive a round trip through their store form.
#include <cstddef>
#include <cstdint>

#include "api/accounts_json.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fastgpu;
  const nlohmann::json j = fuzz::ParseJson(data, size);
  if (j.is_discarded()) return 0;
  auto enc = [](const auto& v) { return api::ToJson(v); };
  fuzz::CheckRoundTrip(j, api::UserFromJson, enc, "UserFromJson round trip");
  fuzz::CheckRoundTrip(j, api::QuotaFromJson, enc, "QuotaFromJson round trip");
  fuzz::CheckRoundTrip(j, api::BudgetFromJson, enc, "BudgetFromJson round trip");
  fuzz::CheckRoundTrip(j, api::ProjectFromJson, enc, "ProjectFromJson round trip");
  fuzz::CheckRoundTrip(j, api::MembershipFromJson, enc, "MembershipFromJson round trip");
  fuzz::CheckRoundTrip(j, api::TokenRecordFromJson, api::TokenRecordToStoreJson, "TokenRecordFromJson round trip");
  fuzz::CheckRoundTrip(j, api::ServiceAccountFromJson, api::ServiceAccountToStoreJson,
                       "ServiceAccountFromJson round trip");
  fuzz::CheckRoundTrip(j, api::AuditRecordFromJson, enc, "AuditRecordFromJson round trip");
  fuzz::CheckRoundTrip(j, api::SecretRecordFromJson, api::SecretRecordToStoreJson, "SecretRecordFromJson round trip");
  return 0;
}
