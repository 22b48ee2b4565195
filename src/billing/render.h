// Invoice output formats: JSON (API, `bill show --output json`) and CSV (`--output csv`).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "billing/billing.h"

namespace fastgpu::billing {

// {"project","month","lines":[{gpu_type, gpu_hours_milli, gpu_seconds_milli, unit_price_micro, gross_micro,
//   discount_micro, total_micro}], usage_total_micro, credits:[{kind,key,amount_micro}], credits_total_micro,
//   amount_due_micro}
nlohmann::json InvoiceJson(const Invoice& invoice);
// One row per line, then credit rows and a total row; amounts as decimal dollars with 6 decimals
// (exact), GPU-hours with 6 decimals. Header:
// project,month,item,gpu_type,gpu_hours,unit_price_usd,gross_usd,discount_usd,total_usd
std::string InvoiceCsv(const Invoice& invoice);

}  // namespace fastgpu::billing
