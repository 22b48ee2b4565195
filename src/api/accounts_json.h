// JSON codecs for api/accounts.h. Decoders are strict (unknown fields and wrong types are errors).
//
// Two forms:
// - API form (ToJson): what HTTP responses show. Never contains token_sha256 (tokens),
//   secret_sha256 (service accounts) or nonce/ciphertext (secrets).
// - Store form (*ToStoreJson): the API form plus those fields, written by src/auth as Store records.
// The *FromJson decoders accept both forms (the hidden fields are optional).
//
// Times are written twice: "<field>" as RFC 3339 UTC text ("" for 0) and "<field>_ms" as unix
// milliseconds. Decoders prefer "<field>_ms" and also accept "<field>" as text or unix milliseconds.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "api/accounts.h"
#include "common/status.h"

namespace fastgpu::api {

// {"name","display_name","admin","disabled","created_at","created_at_ms"}
nlohmann::json ToJson(const User& u);
// {"max_gpus":{"A100-80GB":"8"},"max_gpus_milli":{"A100-80GB":8000},"max_gpu_hours_per_month","max_queued_jobs"}
nlohmann::json ToJson(const Quota& q);
// {"monthly_limit_micro","hard"}
nlohmann::json ToJson(const Budget& b);
// {"name","description","created_at","created_at_ms","quota":{...},"budget":{...},"run_as_uid","run_as_user","allow_root"}
nlohmann::json ToJson(const Project& p);
// {"project","user","role"}
nlohmann::json ToJson(const Membership& m);
// {"id","user","name","created_at(_ms)","expires_at(_ms)","revoked_at(_ms)","service_account" (bool),
//  "service_account_id","project"}
nlohmann::json ToJson(const TokenRecord& t);
// {"id","project","name","role","created_at(_ms)","disabled_at(_ms)"}
nlohmann::json ToJson(const ServiceAccount& s);
// {"seq","at","at_ms","actor","source","action","target","result","detail","prev_hash","hash"}
nlohmann::json ToJson(const AuditRecord& a);
// {"project","name","key_id","updated_at","updated_at_ms","updated_by"}
nlohmann::json ToJson(const SecretRecord& s);

// Store forms (never send these to a client).
nlohmann::json TokenRecordToStoreJson(const TokenRecord& t);        // + "token_sha256"
nlohmann::json ServiceAccountToStoreJson(const ServiceAccount& s);  // + "secret_sha256"
nlohmann::json SecretRecordToStoreJson(const SecretRecord& s);      // + "nonce_hex", "ciphertext_hex"

Result<User> UserFromJson(const nlohmann::json& j);
// "max_gpus_milli" (integers) wins over "max_gpus" (counts as text "0.5" or numbers) when both are given.
Result<Quota> QuotaFromJson(const nlohmann::json& j);
Result<Budget> BudgetFromJson(const nlohmann::json& j);
Result<Project> ProjectFromJson(const nlohmann::json& j);
Result<Membership> MembershipFromJson(const nlohmann::json& j);
Result<TokenRecord> TokenRecordFromJson(const nlohmann::json& j);
Result<ServiceAccount> ServiceAccountFromJson(const nlohmann::json& j);
Result<AuditRecord> AuditRecordFromJson(const nlohmann::json& j);
Result<SecretRecord> SecretRecordFromJson(const nlohmann::json& j);

}  // namespace fastgpu::api
