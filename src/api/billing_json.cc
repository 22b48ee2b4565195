#include "api/billing_json.h"

#include <nlohmann/json.hpp>

#include "api/json_internal.h"

namespace fastgpu::api {

using internal::Guard;
using internal::IntAt;
using internal::IntOr;
using nlohmann::json;

json ToJson(const PriceEntry& p) {
  return {{"gpu_type", p.gpu_type},
          {"price_per_gpu_hour_micro", p.micro_per_gpu_hour},
          {"effective_from", p.effective_from},
          {"set_by", p.set_by}};
}

json ToJson(const UsageSegment& s) {
  return {{"key", s.key},           {"job_id", s.job_id}, {"attempt", s.attempt},   {"project", s.project},
          {"user", s.user},         {"gpu_type", s.gpu_type}, {"milli", s.milli}, {"gpus", s.gpus},
          {"start_ms", s.start_ms}, {"end_ms", s.end_ms}};
}

json ToJson(const LedgerEntry& e) {
  json j = {{"seq", e.seq},       {"key", e.key},       {"at", e.at},
            {"project", e.project}, {"kind", e.kind},   {"debit", e.debit},
            {"credit", e.credit},   {"amount_micro", e.amount_micro}, {"month", e.month}};
  if (e.kind == "usage") {
    j["job_id"] = e.job_id;
    j["gpu_type"] = e.gpu_type;
    j["seconds"] = e.seconds;
    j["milli"] = e.milli;
    j["unit_price_micro"] = e.unit_price_micro;
    j["gross_micro"] = e.gross_micro;
    j["discount_micro"] = e.discount_micro;
  }
  if (e.expires_at != 0) j["expires_at"] = e.expires_at;
  if (!e.memo.empty()) j["memo"] = e.memo;
  if (!e.actor.empty()) j["actor"] = e.actor;
  return j;
}

Result<PriceEntry> PriceEntryFromJson(const json& j) {
  return Guard([&]() -> Result<PriceEntry> {
    PriceEntry p;
    p.gpu_type = j.at("gpu_type").get<std::string>();
    p.micro_per_gpu_hour = IntAt<int64_t>(j, "price_per_gpu_hour_micro");
    p.effective_from = IntOr<int64_t>(j, "effective_from", 0);
    p.set_by = j.value("set_by", "");
    if (p.micro_per_gpu_hour < 0) return InvalidArgument("price of " + p.gpu_type + " is negative");
    return p;
  });
}

Result<UsageSegment> UsageSegmentFromJson(const json& j) {
  return Guard([&]() -> Result<UsageSegment> {
    UsageSegment s;
    s.key = j.at("key").get<std::string>();
    s.job_id = j.at("job_id").get<std::string>();
    s.attempt = IntOr<int>(j, "attempt", 0);
    s.project = j.at("project").get<std::string>();
    s.user = j.value("user", "");
    s.gpu_type = j.value("gpu_type", "");
    s.milli = IntAt<int64_t>(j, "milli");
    s.gpus = j.value("gpus", std::vector<std::string>{});
    s.start_ms = IntAt<int64_t>(j, "start_ms");
    s.end_ms = IntAt<int64_t>(j, "end_ms");
    return s;
  });
}

Result<LedgerEntry> LedgerEntryFromJson(const json& j) {
  return Guard([&]() -> Result<LedgerEntry> {
    LedgerEntry e;
    e.seq = IntOr<int64_t>(j, "seq", 0);
    e.key = j.at("key").get<std::string>();
    e.at = IntAt<int64_t>(j, "at");
    e.project = j.at("project").get<std::string>();
    e.kind = j.at("kind").get<std::string>();
    e.debit = j.at("debit").get<std::string>();
    e.credit = j.at("credit").get<std::string>();
    e.amount_micro = IntAt<int64_t>(j, "amount_micro");
    e.month = j.value("month", "");
    e.job_id = j.value("job_id", "");
    e.gpu_type = j.value("gpu_type", "");
    e.seconds = IntOr<int64_t>(j, "seconds", 0);
    e.milli = IntOr<int64_t>(j, "milli", 0);
    e.unit_price_micro = IntOr<int64_t>(j, "unit_price_micro", 0);
    e.gross_micro = IntOr<int64_t>(j, "gross_micro", 0);
    e.discount_micro = IntOr<int64_t>(j, "discount_micro", 0);
    e.expires_at = IntOr<int64_t>(j, "expires_at", 0);
    e.memo = j.value("memo", "");
    e.actor = j.value("actor", "");
    if (e.amount_micro < 0) return InvalidArgument("ledger entry " + e.key + " has a negative amount");
    return e;
  });
}

}  // namespace fastgpu::api
