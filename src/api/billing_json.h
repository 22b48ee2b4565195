// JSON codecs for api/billing.h: API responses and store records. Decoders read what the encoders
// write (records written by this program) and reject missing required fields and wrong types.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "api/billing.h"
#include "common/status.h"

namespace fastgpu::api {

nlohmann::json ToJson(const PriceEntry& p);
nlohmann::json ToJson(const UsageSegment& s);
nlohmann::json ToJson(const LedgerEntry& e);

Result<PriceEntry> PriceEntryFromJson(const nlohmann::json& j);
Result<UsageSegment> UsageSegmentFromJson(const nlohmann::json& j);
Result<LedgerEntry> LedgerEntryFromJson(const nlohmann::json& j);

}  // namespace fastgpu::api
