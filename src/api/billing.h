// Wire types for metering and billing. Money is int64 micro-USD; GPU amounts are milli-GPU.
// JSON codecs: api/billing_json.h. Rules: docs/billing.md; logic: src/billing.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/quantity.h"

namespace fastgpu::api {

// Price of one GPU-hour of a GPU type, effective from a moment until the next entry of that type.
struct PriceEntry {
  std::string gpu_type;            // "A100-80GB", "H100-80GB", ... or "*" (any type without its own price)
  int64_t micro_per_gpu_hour = 0;  // 2'500'000 = $2.50 per GPU-hour
  UnixMillis effective_from = 0;
  std::string set_by;
};

// One run of one job attempt on a fixed GPU set: the unit of metering. Written exactly once (key).
struct UsageSegment {
  std::string key;         // "<job_id>/<attempt>": idempotency key
  std::string job_id;
  int attempt = 0;
  std::string project;
  std::string user;
  std::string gpu_type;
  MilliGpu milli = 0;      // GPUs held: 2000 = two whole GPUs, 250 = a quarter of one
  std::vector<std::string> gpus;  // UUIDs
  UnixMillis start_ms = 0; // RUNNING
  UnixMillis end_ms = 0;   // exit / preemption / loss
};

// One double-entry ledger posting: `amount_micro` moves from `credit` to `debit` account.
// Append-only; `key` makes posting idempotent (a second post with the same key is ignored).
struct LedgerEntry {
  int64_t seq = 0;          // assigned by the store
  std::string key;
  UnixMillis at = 0;
  std::string project;
  std::string kind;         // "usage", "trial_credit", "prepaid", "adjustment", "credit_expiry", ...
  std::string debit;        // account names, see docs/billing.md
  std::string credit;
  int64_t amount_micro = 0; // >= 0
  std::string month;        // "2026-11": the invoice month this entry belongs to
  // Usage details (kind "usage"), so invoices can be rebuilt from the ledger alone.
  std::string job_id;
  std::string gpu_type;
  int64_t seconds = 0;
  MilliGpu milli = 0;
  int64_t unit_price_micro = 0;  // per GPU-hour
  int64_t gross_micro = 0;
  int64_t discount_micro = 0;    // amount_micro = gross - discount
  // Credit details.
  UnixMillis expires_at = 0;     // credits: 0 = never
  std::string memo;
  std::string actor;
};

}  // namespace fastgpu::api
