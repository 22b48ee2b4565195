#include "billing/billing.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "api/billing_json.h"
#include "billing/render.h"

namespace fastgpu::billing {
namespace {

UnixMillis T(const char* text) { return ParseTimestamp(text).value(); }

TEST(Money, ParsesExactly) {
  EXPECT_EQ(ParseUsd("2.50").value(), 2'500'000);
  EXPECT_EQ(ParseUsd("$2.5").value(), 2'500'000);
  EXPECT_EQ(ParseUsd("0.000001").value(), 1);
  EXPECT_EQ(ParseUsd("100").value(), 100'000'000);
  EXPECT_EQ(ParseUsd("-25").value(), -25'000'000);
  EXPECT_EQ(ParseUsd(".5").value(), 500'000);
  for (const char* bad : {"", "$", "abc", "1.2345678", "1.", "1,5", "1e3", "--1", "9999999999999"})
    EXPECT_FALSE(ParseUsd(bad).ok()) << bad;
}

TEST(Money, Formats) {
  EXPECT_EQ(FormatUsd(2'500'000), "$2.50");
  EXPECT_EQ(FormatUsd(0), "$0.00");
  EXPECT_EQ(FormatUsd(417), "$0.000417");
  EXPECT_EQ(FormatUsd(-1'000'000), "-$1.00");
  EXPECT_EQ(FormatUsd(1'234'560), "$1.23456");
}

TEST(Calendar, Months) {
  EXPECT_EQ(MonthOf(T("2026-11-30T23:59:59.999Z")), "2026-11");
  EXPECT_EQ(MonthOf(T("2026-12-01T00:00:00Z")), "2026-12");
  EXPECT_EQ(MonthStart("2026-11").value(), T("2026-11-01T00:00:00Z"));
  EXPECT_EQ(MonthEnd("2026-12").value(), T("2027-01-01T00:00:00Z"));
  EXPECT_EQ(MonthEnd("2028-02").value(), T("2028-03-01T00:00:00Z"));
  for (const char* bad : {"2026-13", "2026-1", "26-11", "2026/11", ""}) EXPECT_FALSE(MonthStart(bad).ok()) << bad;
}

TEST(Prices, VersionedWithFallback) {
  PriceCatalog c = PriceCatalog::Defaults();
  EXPECT_EQ(c.PriceAt("A100-80GB", 0).value(), 2'500'000);
  EXPECT_EQ(c.PriceAt("SIM-GPU", 0).value(), 1'000'000);  // "*"
  c.Add({"A100-80GB", 3'000'000, T("2026-11-15T00:00:00Z"), "user:admin"});
  EXPECT_EQ(c.PriceAt("A100-80GB", T("2026-11-14T23:59:59Z")).value(), 2'500'000);
  EXPECT_EQ(c.PriceAt("A100-80GB", T("2026-11-15T00:00:00Z")).value(), 3'000'000);
  auto current = c.Current(T("2026-11-20T00:00:00Z"));
  int a100 = 0;
  for (const auto& e : current)
    if (e.gpu_type == "A100-80GB") {
      ++a100;
      EXPECT_EQ(e.micro_per_gpu_hour, 3'000'000);
    }
  EXPECT_EQ(a100, 1);
  EXPECT_EQ(c.ChangesBetween("A100-80GB", T("2026-11-01T00:00:00Z"), T("2026-12-01T00:00:00Z")),
            std::vector<UnixMillis>{T("2026-11-15T00:00:00Z")});
  EXPECT_TRUE(c.ChangesBetween("H100-80GB", T("2026-11-01T00:00:00Z"), T("2026-12-01T00:00:00Z")).empty());
  PriceCatalog empty;
  auto st = empty.PriceAt("A10", 0);
  EXPECT_EQ(st.status().code(), ErrorCode::kNotFound) << st.status().message();
  EXPECT_NE(st.status().message().find("fastgpu price set A10"), std::string::npos);
}

api::UsageSegment Seg(const std::string& key, const std::string& type, MilliGpu milli, UnixMillis a, UnixMillis b,
                      const std::string& project = "ml") {
  api::UsageSegment s;
  s.key = key;
  s.job_id = key.substr(0, key.find('/'));
  s.project = project;
  s.gpu_type = type;
  s.milli = milli;
  s.start_ms = a;
  s.end_ms = b;
  return s;
}

TEST(Charge, OneHourOfTwoA100s) {
  auto entries = ChargeSegment(Seg("j-1/1", "A100-80GB", 2000, T("2026-11-10T10:00:00.400Z"),
                                   T("2026-11-10T11:00:00.900Z")),
                               PriceCatalog::Defaults(), {})
                     .value();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].seconds, 3600);  // [10:00:00, 11:00:00): sub-second parts rounded down at both ends
  EXPECT_EQ(entries[0].amount_micro, 5'000'000);
  EXPECT_EQ(entries[0].month, "2026-11");
  EXPECT_EQ(entries[0].debit, "customer:ml");
  EXPECT_EQ(entries[0].key, "usage/j-1/1/" + std::to_string(T("2026-11-10T10:00:00Z")));
}

TEST(Charge, QuarterGpuPaysAQuarter) {
  auto entries =
      ChargeSegment(Seg("j-2/1", "A100-80GB", 250, T("2026-11-10T10:00:00Z"), T("2026-11-10T10:00:01Z")),
                    PriceCatalog::Defaults(), {})
          .value();
  ASSERT_EQ(entries.size(), 1u);
  // 1 s x 0.25 GPU x $2.50/h = $0.000173611... -> 174 micro-USD (half up).
  EXPECT_EQ(entries[0].amount_micro, 174);
}

TEST(Charge, SplitsAtMonthPriceAndPlan) {
  PriceCatalog c = PriceCatalog::Defaults();
  c.Add({"A100-80GB", 3'000'000, T("2026-12-01T01:00:00Z"), "user:admin"});
  std::vector<Plan> plans = {{"ml", 2000, T("2026-12-01T02:00:00Z"), T("2027-06-01T02:00:00Z")},
                             {"other", 5000, 0, T("2030-01-01T00:00:00Z")}};
  auto entries =
      ChargeSegment(Seg("j-3/2", "A100-80GB", 1000, T("2026-11-30T23:00:00Z"), T("2026-12-01T03:00:00Z")), c, plans)
          .value();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].month, "2026-11");
  EXPECT_EQ(entries[0].amount_micro, 2'500'000);
  EXPECT_EQ(entries[1].month, "2026-12");
  EXPECT_EQ(entries[1].amount_micro, 2'500'000);
  EXPECT_EQ(entries[2].amount_micro, 3'000'000);
  EXPECT_EQ(entries[3].gross_micro, 3'000'000);
  EXPECT_EQ(entries[3].discount_micro, 600'000);
  EXPECT_EQ(entries[3].amount_micro, 2'400'000);
  EXPECT_EQ(AccruedCost(Seg("j-3/2", "A100-80GB", 1000, T("2026-11-30T23:00:00Z"), T("2026-12-01T03:00:00Z")), c,
                        plans)
                .value(),
            10'400'000);
}

TEST(Charge, NeverRanOrSubSecondIsFree) {
  api::Job job;
  job.id = "j-9";
  EXPECT_FALSE(SegmentForRun(job, "A10", 1000).has_value());
  job.started_at = 5000;
  EXPECT_FALSE(SegmentForRun(job, "A10", 5000).has_value());
  auto seg = SegmentForRun(job, "A10", 5999);
  ASSERT_TRUE(seg.has_value());
  EXPECT_TRUE(ChargeSegment(*seg, PriceCatalog::Defaults(), {}).value().empty());  // same second
}

TEST(Estimate, PricePerHourAndForTheLimit) {
  api::JobSpec spec;
  spec.gpus_milli = 500;
  spec.runtime_limit_s = 7200;
  auto e = EstimateJob(spec, "H100-80GB", PriceCatalog::Defaults(), 0).value();
  EXPECT_EQ(e.price_per_gpu_hour_micro, 4'000'000);
  EXPECT_EQ(e.price_per_hour_micro, 2'000'000);
  EXPECT_EQ(e.estimate_micro, 4'000'000);
  spec.runtime_limit_s = 0;
  EXPECT_EQ(EstimateJob(spec, "H100-80GB", PriceCatalog::Defaults(), 0).value().estimate_micro, 0);
}

std::vector<api::LedgerEntry> Numbered(std::vector<api::LedgerEntry> v) {
  for (size_t i = 0; i < v.size(); ++i) v[i].seq = static_cast<int64_t>(i) + 1;
  return v;
}

// The worked example of docs/billing.md.
TEST(Invoice, WorkedExample) {
  PriceCatalog prices = PriceCatalog::Defaults();
  std::vector<api::LedgerEntry> ledger;
  ledger.push_back(TrialCredit("ml", 10'000'000, T("2026-11-01T00:00:00Z"), T("2026-12-01T00:00:00Z")).value());
  auto purchase = PrepaidPurchase("ml", 100'000'000, 6, 2000, T("2026-11-15T00:00:00Z"), "user:admin").value();
  for (auto& e : purchase.entries) ledger.push_back(e);
  EXPECT_EQ(purchase.plan.to, T("2027-05-15T00:00:00Z"));
  std::vector<Plan> plans = {purchase.plan};
  // 10 h on 4 A100-80GB before the plan, 10 h after it, 2 h on half an H100 after it.
  for (const auto& seg : {Seg("j-1/1", "A100-80GB", 4000, T("2026-11-10T00:00:00Z"), T("2026-11-10T10:00:00Z")),
                          Seg("j-2/1", "A100-80GB", 4000, T("2026-11-20T00:00:00Z"), T("2026-11-20T10:00:00Z")),
                          Seg("j-3/1", "H100-80GB", 500, T("2026-11-21T00:00:00Z"), T("2026-11-21T02:00:00Z"))}) {
    std::vector<api::LedgerEntry> charges = ChargeSegment(seg, prices, plans).value();
    ledger.insert(ledger.end(), charges.begin(), charges.end());
  }
  ledger = Numbered(ledger);
  Invoice inv = BuildInvoice("ml", "2026-11", ledger);
  ASSERT_EQ(inv.lines.size(), 2u);
  EXPECT_EQ(inv.lines[0].gpu_type, "A100-80GB");
  EXPECT_EQ(inv.lines[0].gpu_seconds_milli, 2 * 36'000 * 4000);  // 80 GPU-hours
  EXPECT_EQ(inv.lines[0].gross_micro, 200'000'000);
  EXPECT_EQ(inv.lines[0].discount_micro, 20'000'000);
  EXPECT_EQ(inv.lines[0].total_micro, 180'000'000);
  EXPECT_EQ(inv.lines[1].gpu_type, "H100-80GB");
  EXPECT_EQ(inv.lines[1].total_micro, 3'200'000);  // 1 GPU-hour x $4.00 - 20 %
  EXPECT_EQ(inv.usage_total_micro, 183'200'000);
  // Credit pays for usage incurred while it is valid: the trial credit covers $10 of j-1 (the prepaid
  // credit did not exist yet), the prepaid credit covers j-2 and j-3.
  ASSERT_EQ(inv.credits.size(), 2u);
  EXPECT_EQ(inv.credits[0].kind, "trial_credit");
  EXPECT_EQ(inv.credits[0].amount_micro, 10'000'000);
  EXPECT_EQ(inv.credits[1].kind, "prepaid");
  EXPECT_EQ(inv.credits[1].amount_micro, 83'200'000);
  EXPECT_EQ(inv.amount_due_micro, 90'000'000);
  EXPECT_EQ(CreditBalance("ml", T("2026-11-30T00:00:00Z"), ledger), 16'800'000);
  EXPECT_EQ(CreditBalance("ml", T("2026-11-16T00:00:00Z"), ledger), 100'000'000);  // trial used by j-1

  auto j = InvoiceJson(inv);
  EXPECT_EQ(j["lines"][0]["gpu_hours_milli"], 80'000);
  EXPECT_EQ(j["amount_due_micro"], 90'000'000);
  std::string csv = InvoiceCsv(inv);
  EXPECT_NE(csv.find("ml,2026-11,usage,A100-80GB,80.000000,2.500000,200.000000,20.000000,180.000000"),
            std::string::npos)
      << csv;
  EXPECT_NE(csv.find("amount_due,,,,,,90.000000"), std::string::npos) << csv;
}

TEST(Credits, ExpiredTrialIsNotUsedAndNegativeAdjustmentIsACharge) {
  std::vector<api::LedgerEntry> ledger;
  ledger.push_back(TrialCredit("ml", 5'000'000, T("2026-10-01T00:00:00Z"), T("2026-10-31T00:00:00Z")).value());
  ledger.push_back(Adjustment("ml", 2'000'000, T("2026-11-02T00:00:00Z"), "goodwill", "user:admin").value());
  ledger.push_back(Adjustment("ml", -3'000'000, T("2026-11-03T00:00:00Z"), "late fee", "user:admin").value());
  ledger = Numbered(ledger);
  EXPECT_EQ(CreditBalance("ml", T("2026-10-15T00:00:00Z"), ledger), 5'000'000);
  EXPECT_EQ(CreditBalance("ml", T("2026-11-01T00:00:00Z"), ledger), 0);  // expired unused
  Invoice inv = BuildInvoice("ml", "2026-11", ledger);
  ASSERT_EQ(inv.lines.size(), 1u);
  EXPECT_EQ(inv.lines[0].gpu_type, "(adjustment)");
  EXPECT_EQ(inv.usage_total_micro, 3'000'000);
  EXPECT_EQ(inv.credits_total_micro, 2'000'000);
  EXPECT_EQ(inv.amount_due_micro, 1'000'000);
  EXPECT_EQ(CreditBalance("ml", T("2026-11-04T00:00:00Z"), ledger), 0);
}

TEST(Credits, RejectsNonsense) {
  EXPECT_FALSE(TrialCredit("ml", 0, 1, 0).ok());
  EXPECT_FALSE(TrialCredit("ml", 5, 10, 5).ok());
  EXPECT_FALSE(PrepaidPurchase("ml", -1, 6, 2000, 0, "a").ok());
  EXPECT_FALSE(PrepaidPurchase("ml", 1, 0, 2000, 0, "a").ok());
  EXPECT_FALSE(Adjustment("ml", 0, 0, "", "a").ok());
  // Two different adjustments in the same millisecond get different keys.
  EXPECT_NE(Adjustment("ml", 1, 0, "a", "x").value().key, Adjustment("ml", 1, 0, "b", "x").value().key);
}

TEST(Budget, Levels) {
  api::Budget b{.monthly_limit_micro = 100'000'000, .hard = false};
  EXPECT_EQ(EvaluateBudget(b, 79'999'999), BudgetLevel::kOk);
  EXPECT_EQ(EvaluateBudget(b, 80'000'000), BudgetLevel::kWarning);
  EXPECT_EQ(EvaluateBudget(b, 100'000'000), BudgetLevel::kExceeded);
  EXPECT_EQ(EvaluateBudget({}, 1'000'000'000), BudgetLevel::kOk);
}

TEST(BillingJson, RoundTrips) {
  api::LedgerEntry e = Adjustment("ml", 2'000'000, 123, "memo, with comma", "user:admin").value();
  e.seq = 7;
  auto back = api::LedgerEntryFromJson(api::ToJson(e)).value();
  EXPECT_EQ(back.key, e.key);
  EXPECT_EQ(back.seq, 7);
  EXPECT_EQ(back.memo, e.memo);
  api::PriceEntry p{"A10", 800'000, 5, "user:admin"};
  auto pb = api::PriceEntryFromJson(api::ToJson(p)).value();
  EXPECT_EQ(pb.micro_per_gpu_hour, 800'000);
  EXPECT_EQ(pb.effective_from, 5);
  auto seg = Seg("j-1/1", "A10", 250, 1000, 9000);
  seg.gpus = {"GPU-1"};
  auto sb = api::UsageSegmentFromJson(api::ToJson(seg)).value();
  EXPECT_EQ(sb.gpus, seg.gpus);
  EXPECT_EQ(sb.milli, 250);
  EXPECT_FALSE(api::PriceEntryFromJson(nlohmann::json{{"gpu_type", "A10"}}).ok());
  EXPECT_FALSE(api::LedgerEntryFromJson(nlohmann::json::array()).ok());
}

}  // namespace
}  // namespace fastgpu::billing
