// Pricing, metering and invoicing as pure functions over prices, segments and the ledger.
// No I/O, no clock reads. Rules and a worked example: docs/billing.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/accounts.h"
#include "api/billing.h"
#include "api/types.h"
#include "common/status.h"

namespace fastgpu::billing {

// ---- Money text. "2.50", "$2.50", "0.000001" -> micro-USD (exact; at most 6 decimals; no floats).
Result<int64_t> ParseUsd(std::string_view text);
// 2'500'000 -> "$2.50"; keeps sub-cent digits when present ("$0.000417"); negative -> "-$1.00".
std::string FormatUsd(int64_t micro);

// ---- Calendar (UTC). "2026-11" for a moment; month bounds in ms.
std::string MonthOf(UnixMillis t);
Result<UnixMillis> MonthStart(std::string_view month);  // kInvalidArgument for bad text ("YYYY-MM")
Result<UnixMillis> MonthEnd(std::string_view month);    // start of the next month

// ---- Price catalog: versioned entries with effective dates.
class PriceCatalog {
 public:
  PriceCatalog() = default;
  explicit PriceCatalog(std::vector<api::PriceEntry> entries);
  // Defaults effective from 0: A100-80GB, A100-40GB, H100-80GB, A10, A40, V100-32GB, V100-16GB,
  // and "*" for anything else (simulated GPUs of other types).
  static PriceCatalog Defaults();
  void Add(api::PriceEntry entry);
  const std::vector<api::PriceEntry>& entries() const { return entries_; }
  // The entries in force at `t` (one per type), for `price list`.
  std::vector<api::PriceEntry> Current(UnixMillis t) const;
  // Price of `gpu_type` at `t` (falls back to "*"); kNotFound when neither is priced.
  Result<int64_t> PriceAt(const std::string& gpu_type, UnixMillis t) const;
  // Moments in [from, to) where the price of gpu_type changes.
  std::vector<UnixMillis> ChangesBetween(const std::string& gpu_type, UnixMillis from, UnixMillis to) const;

 private:
  std::vector<api::PriceEntry> entries_;  // sorted by (gpu_type, effective_from)
};

// A prepaid plan: discount on usage between from and to (e.g. 6 months, 2000 bps = 20 % off).
struct Plan {
  std::string project;
  int64_t discount_bps = 0;  // 2000 = 20 %
  UnixMillis from = 0;
  UnixMillis to = 0;
};

// ---- Metering. The segment of the run that ended at `end` (job as it was while running: attempt,
// started_at, assigned GPUs, spec). Empty when it never ran (started_at == 0) or end <= start.
std::optional<api::UsageSegment> SegmentForRun(const api::Job& running_job, const std::string& gpu_type,
                                               UnixMillis end);

// Ledger "usage" entries for one segment: one per piece after splitting at month boundaries, price
// changes and plan boundaries. Second granularity: the run covers seconds [start/1000, end/1000) (both
// rounded down, so back-to-back runs never share a second); each second is charged at the price in force
// at its first millisecond. gross = seconds x milli x price / 3,600,000 rounded half up per piece;
// discount = gross x bps / 10,000 rounded half up; amount = gross - discount.
// Keys "usage/<segment key>/<piece start ms>" (idempotent).
Result<std::vector<api::LedgerEntry>> ChargeSegment(const api::UsageSegment& segment, const PriceCatalog& prices,
                                                    const std::vector<Plan>& plans);

// Cost so far of a still-running job (for budgets and `usage`), same rules as ChargeSegment.
Result<int64_t> AccruedCost(const api::UsageSegment& open_segment, const PriceCatalog& prices,
                            const std::vector<Plan>& plans);

// ---- Cost before running.
struct Estimate {
  std::string gpu_type;
  int64_t price_per_gpu_hour_micro = 0;
  int64_t price_per_hour_micro = 0;   // for the requested GPUs (fractions pay proportionally)
  int64_t runtime_limit_s = 0;
  int64_t estimate_micro = 0;         // for the runtime limit; 0 when there is none
};
Result<Estimate> EstimateJob(const api::JobSpec& spec, const std::string& gpu_type, const PriceCatalog& prices,
                             UnixMillis now);

// ---- Credits (double-entry; accounts and consumption order in docs/billing.md).
Result<api::LedgerEntry> TrialCredit(const std::string& project, int64_t amount_micro, UnixMillis at,
                                     UnixMillis expires_at);
// Trial credit for new projects (server option): amount and lifetime.
struct TrialPolicy {
  int64_t amount_micro = 0;     // 0 = no trial credit
  int64_t lifetime_days = 30;
};
// A prepaid purchase of `months` months: pays `paid_micro` and receives credit of the same amount plus a
// Plan that discounts usage by `discount_bps` from `at` for `months` calendar months.
struct Purchase {
  std::vector<api::LedgerEntry> entries;
  Plan plan;
};
Result<Purchase> PrepaidPurchase(const std::string& project, int64_t paid_micro, int months, int64_t discount_bps,
                                 UnixMillis at, const std::string& actor);
Result<api::LedgerEntry> Adjustment(const std::string& project, int64_t amount_micro /* may be < 0 */,
                                    UnixMillis at, const std::string& memo, const std::string& actor);

// ---- Invoice for one project and month, rebuilt from the ledger alone.
struct InvoiceLine {
  std::string gpu_type;
  int64_t unit_price_micro = 0;   // per GPU-hour
  int64_t gpu_seconds_milli = 0;  // sum of seconds x milli-GPU (hours = / 3'600'000)
  int64_t gross_micro = 0;
  int64_t discount_micro = 0;
  int64_t total_micro = 0;
};
struct CreditApplied {
  std::string kind;    // "trial_credit", "prepaid", "adjustment"
  std::string key;     // ledger key of the grant
  int64_t amount_micro = 0;
};
struct Invoice {
  std::string project;
  std::string month;
  std::vector<InvoiceLine> lines;        // sorted by gpu_type, unit price
  int64_t usage_total_micro = 0;         // sum of line totals
  std::vector<CreditApplied> credits;    // in consumption order
  int64_t credits_total_micro = 0;
  int64_t amount_due_micro = 0;          // usage_total - credits_total (>= 0)
};
Invoice BuildInvoice(const std::string& project, const std::string& month,
                     const std::vector<api::LedgerEntry>& ledger);

// Credit left per project at `at` (grants - consumption - expiry), for `credit list`.
int64_t CreditBalance(const std::string& project, UnixMillis at, const std::vector<api::LedgerEntry>& ledger);

// ---- Budgets.
enum class BudgetLevel { kOk, kWarning /* >= 80 % */, kExceeded /* >= 100 % */ };
BudgetLevel EvaluateBudget(const api::Budget& budget, int64_t spent_micro);

}  // namespace fastgpu::billing
