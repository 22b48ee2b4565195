// Property tests over random job histories: every GPU-second is billed exactly once, at the price in
// force during that second, and invoices add up to the micro-dollar.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "billing/billing.h"

namespace fastgpu::billing {
namespace {

// 128-bit intermediate for products of seconds, milli-GPUs and prices (GCC/Clang extension).
__extension__ typedef __int128 Int128;

struct PriceChange {
  std::string type;
  UnixMillis from;
  int64_t micro;
};

struct History {
  std::vector<PriceChange> prices;  // the reference price list (includes the defaults at 0)
  std::vector<Plan> plans;
  std::vector<api::UsageSegment> segments;
  std::vector<api::LedgerEntry> credits;
};

const std::vector<std::string> kTypes = {"A100-80GB", "H100-80GB", "A10", "SIM-X"};
const std::vector<std::string> kProjects = {"ml", "vision"};

History RandomHistory(std::mt19937_64& rng) {
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  History h;
  // Around a month boundary (Nov -> Dec or Dec -> Jan), so runs cross it.
  const UnixMillis boundary = ParseTimestamp(uniform(0, 1) ? "2026-12-01T00:00:00Z" : "2027-01-01T00:00:00Z").value();
  const UnixMillis t0 = boundary - uniform(1, 6) * 3'600'000 - uniform(0, 999);
  const PriceCatalog defaults = PriceCatalog::Defaults();
  for (const auto& e : defaults.entries()) h.prices.push_back({e.gpu_type, 0, e.micro_per_gpu_hour});
  for (int i = 0, n = static_cast<int>(uniform(0, 6)); i < n; ++i) {  // price changes mid-job, at any millisecond
    h.prices.push_back({uniform(0, 4) == 0 ? "*" : kTypes[uniform(0, 3)], t0 + uniform(0, 12 * 3'600'000),
                        uniform(1, 9'000'000)});
  }
  for (int i = 0, n = static_cast<int>(uniform(0, 2)); i < n; ++i) {
    UnixMillis from = t0 + uniform(0, 10 * 3'600'000);
    h.plans.push_back({kProjects[uniform(0, 1)], uniform(0, 1) ? 2000 : uniform(1, 9999), from,
                       from + uniform(1, 8 * 3'600'000)});
  }
  for (const auto& p : kProjects) {
    if (uniform(0, 1)) h.credits.push_back(TrialCredit(p, uniform(1, 50'000'000), t0, t0 + uniform(1, 20) * 3'600'000).value());
    if (uniform(0, 1))
      h.credits.push_back(PrepaidPurchase(p, uniform(1, 80'000'000), 6, 2000, t0 + uniform(0, 9'000'000), "user:a")
                              .value()
                              .entries[0]);
    if (uniform(0, 2) == 0)
      h.credits.push_back(Adjustment(p, uniform(-5'000'000, 5'000'000) | 1, t0 + uniform(0, 9'000'000), "adj", "a").value());
  }
  // Jobs: submit, start, preempt/fail/node loss, resume (new attempt) — possibly within the same second.
  for (int j = 1, jobs = static_cast<int>(uniform(1, 12)); j <= jobs; ++j) {
    UnixMillis t = t0 + uniform(0, 4 * 3'600'000);
    const std::string type = kTypes[uniform(0, 3)];
    const MilliGpu milli = uniform(0, 2) == 0 ? uniform(1, 999) : uniform(1, 8) * 1000;
    const std::string project = kProjects[uniform(0, 1)];
    for (int attempt = 1, attempts = static_cast<int>(uniform(1, 4)); attempt <= attempts; ++attempt) {
      api::UsageSegment s;
      s.job_id = "j-" + std::to_string(j);
      s.attempt = attempt;
      s.key = s.job_id + "/" + std::to_string(attempt);
      s.project = project;
      s.gpu_type = type;
      s.milli = milli;
      s.start_ms = t;
      s.end_ms = t + uniform(0, 3 * 3'600'000);
      h.segments.push_back(s);
      t = s.end_ms + (uniform(0, 1) ? uniform(0, 1500) : uniform(0, 3'600'000));  // requeue wait (not billed)
    }
  }
  return h;
}

// Independent reference: walk every second of every segment, look the price up in the plain list,
// group consecutive seconds with the same (month, price, discount) and round each group half up.
int64_t ReferenceCost(const History& h, const api::UsageSegment& s, int64_t& seconds_out) {
  auto price_at = [&](UnixMillis t) {
    for (const std::string& type : {s.gpu_type, std::string("*")}) {
      const PriceChange* best = nullptr;
      for (const auto& p : h.prices)
        if (p.type == type && p.from <= t && (!best || p.from >= best->from)) best = &p;
      if (best) return best->micro;
    }
    ADD_FAILURE() << "unpriced";
    return int64_t{0};
  };
  auto bps_at = [&](UnixMillis t) {
    int64_t b = 0;
    for (const auto& p : h.plans)
      if (p.project == s.project && p.from <= t && t < p.to) b = std::max(b, p.discount_bps);
    return b;
  };
  int64_t total = 0, group_seconds = 0;
  std::tuple<std::string, int64_t, int64_t> group;
  auto flush = [&] {
    if (group_seconds == 0) return;
    Int128 gross = (static_cast<Int128>(group_seconds) * s.milli * std::get<1>(group) + 1'800'000) / 3'600'000;
    Int128 discount = (gross * std::get<2>(group) + 5'000) / 10'000;
    total += static_cast<int64_t>(gross - discount);
    group_seconds = 0;
  };
  seconds_out = 0;
  for (int64_t sec = s.start_ms / 1000; sec < s.end_ms / 1000; ++sec) {
    UnixMillis t = sec * 1000;
    std::tuple<std::string, int64_t, int64_t> g{MonthOf(t), price_at(t), bps_at(t)};
    if (group_seconds > 0 && g != group) flush();
    group = g;
    ++group_seconds;
    ++seconds_out;
  }
  flush();
  return total;
}

TEST(BillingProperty, EverySecondBilledOnceAtTheRightPrice) {
  std::mt19937_64 rng(20261202);
  for (int iteration = 0; iteration < 30; ++iteration) {
    SCOPED_TRACE("iteration " + std::to_string(iteration));
    History h = RandomHistory(rng);
    PriceCatalog catalog;
    for (const auto& p : h.prices) catalog.Add({p.type, p.micro, p.from, "test"});

    // Post to an idempotent ledger (by key); some segments are posted twice, as after a crash
    // between "job finished" and "usage written" followed by recovery.
    std::map<std::string, api::LedgerEntry> by_key;
    std::vector<api::LedgerEntry> ledger;
    auto post = [&](const api::LedgerEntry& e) {
      auto [it, fresh] = by_key.emplace(e.key, e);
      if (!fresh) {
        EXPECT_EQ(it->second.amount_micro, e.amount_micro) << "replay changed " << e.key;
        return;
      }
      ledger.push_back(e);
      ledger.back().seq = static_cast<int64_t>(ledger.size());
    };
    for (const auto& c : h.credits) post(c);
    int64_t reference_total = 0;
    std::map<std::string, int64_t> reference_seconds, billed_seconds;
    std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> billed_intervals;
    for (const auto& s : h.segments) {
      int64_t secs = 0;
      reference_total += ReferenceCost(h, s, secs);
      reference_seconds[s.job_id] += secs;
      auto charges = ChargeSegment(s, catalog, h.plans);
      ASSERT_TRUE(charges.ok()) << charges.status().ToString();
      for (int replay = 0; replay < (std::uniform_int_distribution<int>(0, 3)(rng) == 0 ? 2 : 1); ++replay)
        for (const auto& e : *charges) post(e);
      for (const auto& e : *charges) {
        EXPECT_EQ(e.amount_micro, e.gross_micro - e.discount_micro);
        EXPECT_GE(e.amount_micro, 0);
        billed_intervals[s.job_id].push_back({e.at / 1000 - e.seconds, e.at / 1000});
      }
    }
    for (const auto& e : ledger)
      if (e.kind == "usage") billed_seconds[e.job_id] += e.seconds;
    EXPECT_EQ(billed_seconds, reference_seconds);
    for (auto& [job, iv] : billed_intervals) {  // no second billed twice
      std::sort(iv.begin(), iv.end());
      for (size_t i = 1; i < iv.size(); ++i) EXPECT_LE(iv[i - 1].second, iv[i].first) << job;
    }

    std::set<std::string> months;
    for (const auto& e : ledger) months.insert(e.month);
    int64_t invoiced = 0, adjustments = 0;
    for (const auto& e : ledger)
      if (e.kind == "adjustment" && e.debit == "customer:" + e.project) adjustments += e.amount_micro;
    // A shuffled copy (different store order) must give the same invoices.
    std::vector<api::LedgerEntry> shuffled = ledger;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    for (const auto& p : kProjects) {
      int64_t grants = 0;
      for (const auto& e : ledger)
        if (e.project == p && e.credit == "credit:" + p) grants += e.amount_micro;
      int64_t credits_used = 0;
      for (const auto& m : months) {
        Invoice inv = BuildInvoice(p, m, ledger);
        int64_t lines = 0;
        for (const auto& l : inv.lines) {
          EXPECT_EQ(l.total_micro, l.gross_micro - l.discount_micro);
          lines += l.total_micro;
        }
        EXPECT_EQ(lines, inv.usage_total_micro);
        EXPECT_GE(inv.amount_due_micro, 0);
        EXPECT_EQ(inv.amount_due_micro, inv.usage_total_micro - inv.credits_total_micro);
        invoiced += inv.usage_total_micro;
        credits_used += inv.credits_total_micro;
        Invoice again = BuildInvoice(p, m, shuffled);
        EXPECT_EQ(again.usage_total_micro, inv.usage_total_micro);
        EXPECT_EQ(again.credits_total_micro, inv.credits_total_micro);
        EXPECT_EQ(again.lines.size(), inv.lines.size());
      }
      EXPECT_LE(credits_used, grants);
      EXPECT_GE(CreditBalance(p, INT64_MAX / 2, ledger), 0);
    }
    EXPECT_EQ(invoiced, reference_total + adjustments);
  }
}

}  // namespace
}  // namespace fastgpu::billing
