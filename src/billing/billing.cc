#include "billing/billing.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <tuple>

#include "common/crypto.h"

namespace fastgpu::billing {

namespace {

// 128-bit intermediate for products of seconds, milli-GPUs and prices (GCC/Clang extension).
__extension__ typedef __int128 Int128;

constexpr int64_t kMicroPerUsd = 1'000'000;
constexpr int64_t kMsPerSecond = 1000;
constexpr int64_t kMilliSecondsPerGpuHour = 3'600'000;  // milli-GPU x seconds in one GPU-hour
constexpr int64_t kMsPerDay = 86'400'000;
constexpr int64_t kMaxMicro = int64_t{1} << 53;  // ~ $9 billion: far above any real amount

// Rounds num / den half up (den > 0, num >= 0).
int64_t DivRoundHalfUp(Int128 num, Int128 den) { return static_cast<int64_t>((num + den / 2) / den); }

// Days since 1970-01-01 of a civil date (proleptic Gregorian), and back.
int64_t DaysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, int64_t& m, int64_t& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = yoe + era * 400 + (m <= 2);
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
int64_t CeilDiv(int64_t a, int64_t b) { return -FloorDiv(-a, b); }

// The first millisecond of the month `months` after the month containing t.
UnixMillis AddMonths(UnixMillis t, int months) {
  int64_t y, m, d;
  CivilFromDays(FloorDiv(t, kMsPerDay), y, m, d);
  int64_t total = y * 12 + (m - 1) + months;
  return DaysFromCivil(total / 12, total % 12 + 1, 1) * kMsPerDay;
}

// The same day and time `months` later (clamped to the last day of a shorter month).
UnixMillis SameDayMonthsLater(UnixMillis t, int months) {
  int64_t y, m, d;
  const int64_t days = FloorDiv(t, kMsPerDay);
  CivilFromDays(days, y, m, d);
  const int64_t time_of_day = t - days * kMsPerDay;
  const int64_t total = y * 12 + (m - 1) + months;
  const int64_t ty = total / 12, tm = total % 12 + 1;
  const int64_t next = ty * 12 + tm;  // the month after the target, as a 0-based month index
  const int64_t days_in_month = DaysFromCivil(next / 12, next % 12 + 1, 1) - DaysFromCivil(ty, tm, 1);
  return DaysFromCivil(ty, tm, std::min(d, days_in_month)) * kMsPerDay + time_of_day;
}

std::string CustomerAccount(const std::string& project) { return "customer:" + project; }
std::string CreditAccount(const std::string& project) { return "credit:" + project; }

int64_t DiscountBpsAt(const std::string& project, UnixMillis t, const std::vector<Plan>& plans) {
  int64_t best = 0;
  for (const auto& p : plans)
    if (p.project == project && p.from <= t && t < p.to) best = std::max(best, p.discount_bps);
  return best;
}

// Ledger roles of an entry for the credit computation.
bool IsGrant(const api::LedgerEntry& e) { return e.credit == CreditAccount(e.project) && e.amount_micro > 0; }
bool IsCharge(const api::LedgerEntry& e) { return e.debit == CustomerAccount(e.project) && e.amount_micro > 0; }

struct GrantState {
  const api::LedgerEntry* entry;
  int64_t left;
};

// Consumption order: credits that expire first are used first (never-expiring last), then older grants.
bool ConsumedBefore(const GrantState& a, const GrantState& b) {
  auto key = [](const GrantState& g) {
    UnixMillis exp = g.entry->expires_at == 0 ? INT64_MAX : g.entry->expires_at;
    return std::make_tuple(exp, g.entry->at, g.entry->seq, g.entry->key);
  };
  return key(a) < key(b);
}

// Replays the project's grants and charges in time order. `on_consume(charge, grant, amount)` is
// called for every use of a grant by a charge. Returns the grants with what is left of them.
template <typename OnConsume>
std::vector<GrantState> ReplayCredits(const std::string& project, UnixMillis until,
                                      const std::vector<api::LedgerEntry>& ledger, OnConsume on_consume) {
  std::vector<const api::LedgerEntry*> events;
  for (const auto& e : ledger)
    if (e.project == project && e.at <= until && (IsGrant(e) || IsCharge(e))) events.push_back(&e);
  std::stable_sort(events.begin(), events.end(), [](const api::LedgerEntry* a, const api::LedgerEntry* b) {
    // Grants before charges at the same moment, then store order.
    return std::make_tuple(a->at, !IsGrant(*a), a->seq) < std::make_tuple(b->at, !IsGrant(*b), b->seq);
  });
  std::vector<GrantState> grants;
  for (const api::LedgerEntry* e : events) {
    if (IsGrant(*e)) {
      grants.push_back({e, e->amount_micro});
      std::stable_sort(grants.begin(), grants.end(), ConsumedBefore);
      continue;
    }
    int64_t owed = e->amount_micro;
    for (auto& g : grants) {
      if (owed == 0) break;
      if (g.left == 0 || (g.entry->expires_at != 0 && g.entry->expires_at <= e->at)) continue;
      int64_t use = std::min(owed, g.left);
      g.left -= use;
      owed -= use;
      on_consume(*e, *g.entry, use);
    }
  }
  return grants;
}

std::string CreditKey(const std::string& kind, const std::string& project, UnixMillis at, int64_t amount,
                      const std::string& salt) {
  return kind + "/" + project + "/" + std::to_string(at) + "/" + std::to_string(amount) + "/" +
         Sha256Hex(salt).substr(0, 8);
}

}  // namespace

// ---- Money text --------------------------------------------------------------------------------

Result<int64_t> ParseUsd(std::string_view text) {
  const std::string shown(text);
  auto bad = [&](const std::string& why) {
    return InvalidArgument("'" + shown + "' is not an amount in US dollars (" + why + "), e.g. 2.50");
  };
  bool negative = false;
  if (!text.empty() && text[0] == '-') negative = true, text.remove_prefix(1);
  if (!text.empty() && text[0] == '$') text.remove_prefix(1);
  if (text.empty()) return bad("empty");
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  if (whole.empty() && frac.empty()) return bad("no digits");
  if (dot != std::string_view::npos && frac.empty()) return bad("no digits after the point");
  if (frac.size() > 6) return bad("at most 6 decimals: amounts are kept to the micro-dollar");
  if (whole.size() > 12) return bad("too large");
  int64_t v = 0;
  for (char c : whole) {
    if (c < '0' || c > '9') return bad("unexpected character '" + std::string(1, c) + "'");
    v = v * 10 + (c - '0');
  }
  int64_t f = 0;
  for (size_t i = 0; i < 6; ++i) {
    char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9') return bad("unexpected character '" + std::string(1, c) + "'");
    f = f * 10 + (c - '0');
  }
  int64_t micro = v * kMicroPerUsd + f;
  return negative ? -micro : micro;
}

std::string FormatUsd(int64_t micro) {
  bool negative = micro < 0;
  uint64_t abs = negative ? -static_cast<uint64_t>(micro) : static_cast<uint64_t>(micro);
  uint64_t whole = abs / kMicroPerUsd, frac = abs % kMicroPerUsd;
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%s$%llu.%06llu", negative ? "-" : "", static_cast<unsigned long long>(whole),
                static_cast<unsigned long long>(frac));
  std::string s(buf);
  // Keep at least cents; drop trailing zeros of sub-cent digits.
  size_t keep = s.size();
  while (keep > s.size() - 4 && s[keep - 1] == '0') --keep;
  s.resize(keep);
  return s;
}

// ---- Calendar ----------------------------------------------------------------------------------

std::string MonthOf(UnixMillis t) {
  int64_t y, m, d;
  CivilFromDays(FloorDiv(t, kMsPerDay), y, m, d);
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%04lld-%02lld", static_cast<long long>(y), static_cast<long long>(m));
  return buf;
}

Result<UnixMillis> MonthStart(std::string_view month) {
  auto bad = [&] {
    return InvalidArgument("'" + std::string(month) + "' is not a month: use YYYY-MM, e.g. 2026-11");
  };
  if (month.size() != 7 || month[4] != '-') return bad();
  int64_t y = 0, m = 0;
  for (size_t i = 0; i < 7; ++i) {
    if (i == 4) continue;
    if (month[i] < '0' || month[i] > '9') return bad();
    (i < 4 ? y : m) = (i < 4 ? y : m) * 10 + (month[i] - '0');
  }
  if (m < 1 || m > 12 || y < 1970) return bad();
  return DaysFromCivil(y, m, 1) * kMsPerDay;
}

Result<UnixMillis> MonthEnd(std::string_view month) {
  ASSIGN_OR_RETURN(UnixMillis start, MonthStart(month));
  return AddMonths(start, 1);
}

// ---- Prices ------------------------------------------------------------------------------------

PriceCatalog::PriceCatalog(std::vector<api::PriceEntry> entries) {
  for (auto& e : entries) Add(std::move(e));
}

PriceCatalog PriceCatalog::Defaults() {
  PriceCatalog c;
  const std::pair<const char*, int64_t> defaults[] = {
      {"H100-80GB", 4'000'000}, {"A100-80GB", 2'500'000}, {"A100-40GB", 2'000'000}, {"A40", 1'200'000},
      {"A10", 800'000},         {"V100-32GB", 1'000'000}, {"V100-16GB", 800'000},   {"*", 1'000'000},
  };
  for (const auto& [type, price] : defaults) c.Add({type, price, 0, "default"});
  return c;
}

void PriceCatalog::Add(api::PriceEntry entry) {
  auto pos = std::lower_bound(entries_.begin(), entries_.end(), entry, [](const auto& a, const auto& b) {
    return std::tie(a.gpu_type, a.effective_from) < std::tie(b.gpu_type, b.effective_from);
  });
  if (pos != entries_.end() && pos->gpu_type == entry.gpu_type && pos->effective_from == entry.effective_from) {
    *pos = std::move(entry);  // a later `price set` for the same moment replaces the earlier one
  } else {
    entries_.insert(pos, std::move(entry));
  }
}

std::vector<api::PriceEntry> PriceCatalog::Current(UnixMillis t) const {
  std::vector<api::PriceEntry> out;
  for (const auto& e : entries_) {
    if (e.effective_from > t) continue;
    if (!out.empty() && out.back().gpu_type == e.gpu_type) {
      out.back() = e;
    } else {
      out.push_back(e);
    }
  }
  return out;
}

Result<int64_t> PriceCatalog::PriceAt(const std::string& gpu_type, UnixMillis t) const {
  auto in_force = [&](const std::string& type) -> const api::PriceEntry* {
    const api::PriceEntry* found = nullptr;
    for (const auto& e : entries_)
      if (e.gpu_type == type && e.effective_from <= t) found = &e;
    return found;
  };
  if (const auto* e = in_force(gpu_type)) return e->micro_per_gpu_hour;
  if (const auto* e = in_force("*")) return e->micro_per_gpu_hour;
  return NotFound("no price for GPU type '" + gpu_type + "' (set one with: fastgpu price set " +
                  (gpu_type.empty() ? std::string("TYPE") : gpu_type) + " PRICE_USD)");
}

std::vector<UnixMillis> PriceCatalog::ChangesBetween(const std::string& gpu_type, UnixMillis from,
                                                     UnixMillis to) const {
  std::set<UnixMillis> candidates;
  for (const auto& e : entries_)
    if ((e.gpu_type == gpu_type || e.gpu_type == "*") && e.effective_from > from && e.effective_from < to)
      candidates.insert(e.effective_from);
  std::vector<UnixMillis> out;
  auto price_or_none = [&](UnixMillis t) -> int64_t {  // -1 = unpriced (prices are >= 0)
    auto p = PriceAt(gpu_type, t);
    return p.ok() ? *p : -1;
  };
  int64_t last = price_or_none(from);
  for (UnixMillis t : candidates) {
    int64_t now = price_or_none(t);
    if (now != last) out.push_back(t);
    last = now;
  }
  return out;
}

// ---- Metering ----------------------------------------------------------------------------------

std::optional<api::UsageSegment> SegmentForRun(const api::Job& job, const std::string& gpu_type, UnixMillis end) {
  if (job.started_at == 0 || end <= job.started_at) return std::nullopt;
  api::UsageSegment s;
  s.key = job.id + "/" + std::to_string(job.attempt);
  s.job_id = job.id;
  s.attempt = job.attempt;
  s.project = job.spec.project;
  s.user = job.user;
  s.gpu_type = gpu_type;
  s.milli = job.spec.gpus_milli;
  s.gpus = job.assigned_gpus;
  s.start_ms = job.started_at;
  s.end_ms = end;
  return s;
}

Result<std::vector<api::LedgerEntry>> ChargeSegment(const api::UsageSegment& seg, const PriceCatalog& prices,
                                                    const std::vector<Plan>& plans) {
  std::vector<api::LedgerEntry> out;
  const int64_t s0 = FloorDiv(seg.start_ms, kMsPerSecond), s1 = FloorDiv(seg.end_ms, kMsPerSecond);
  if (s1 <= s0 || seg.milli <= 0) return out;
  const UnixMillis from = s0 * kMsPerSecond, to = s1 * kMsPerSecond;
  // Piece boundaries, in whole seconds: month starts, price changes, plan starts and ends.
  std::set<int64_t> cuts;
  auto cut = [&](UnixMillis t) {
    int64_t s = CeilDiv(t, kMsPerSecond);
    if (s > s0 && s < s1) cuts.insert(s);
  };
  for (UnixMillis m = AddMonths(from, 1); m < to; m = AddMonths(m, 1)) cut(m);
  for (UnixMillis t : prices.ChangesBetween(seg.gpu_type, from, to)) cut(t);
  for (const auto& p : plans) {
    if (p.project != seg.project) continue;
    cut(p.from);
    cut(p.to);
  }
  cuts.insert(s1);
  // Consecutive pieces with the same month, price and discount are one piece (rounding happens once).
  struct Piece {
    int64_t a, b, price, bps;
    std::string month;
  };
  std::vector<Piece> pieces;
  int64_t a = s0;
  for (int64_t b : cuts) {
    const UnixMillis t = a * kMsPerSecond;
    ASSIGN_OR_RETURN(int64_t price, prices.PriceAt(seg.gpu_type, t));
    Piece p{a, b, price, DiscountBpsAt(seg.project, t, plans), MonthOf(t)};
    if (!pieces.empty() && pieces.back().price == p.price && pieces.back().bps == p.bps &&
        pieces.back().month == p.month) {
      pieces.back().b = b;
    } else {
      pieces.push_back(std::move(p));
    }
    a = b;
  }
  for (const Piece& p : pieces) {
    const UnixMillis piece_start = p.a * kMsPerSecond;
    const int64_t seconds = p.b - p.a;
    api::LedgerEntry e;
    e.key = "usage/" + seg.key + "/" + std::to_string(piece_start);
    e.at = p.b * kMsPerSecond;
    e.project = seg.project;
    e.kind = "usage";
    e.debit = CustomerAccount(seg.project);
    e.credit = "revenue:gpu";
    e.month = p.month;
    e.job_id = seg.job_id;
    e.gpu_type = seg.gpu_type;
    e.seconds = seconds;
    e.milli = seg.milli;
    e.unit_price_micro = p.price;
    e.gross_micro = DivRoundHalfUp(static_cast<Int128>(seconds) * seg.milli * p.price, kMilliSecondsPerGpuHour);
    e.discount_micro = DivRoundHalfUp(static_cast<Int128>(e.gross_micro) * p.bps, 10'000);
    e.amount_micro = e.gross_micro - e.discount_micro;
    e.actor = "metering";
    out.push_back(std::move(e));
  }
  return out;
}

Result<int64_t> AccruedCost(const api::UsageSegment& open_segment, const PriceCatalog& prices,
                            const std::vector<Plan>& plans) {
  ASSIGN_OR_RETURN(auto entries, ChargeSegment(open_segment, prices, plans));
  int64_t total = 0;
  for (const auto& e : entries) total += e.amount_micro;
  return total;
}

// ---- Estimates ---------------------------------------------------------------------------------

Result<Estimate> EstimateJob(const api::JobSpec& spec, const std::string& gpu_type, const PriceCatalog& prices,
                             UnixMillis now) {
  Estimate e;
  e.gpu_type = gpu_type;
  ASSIGN_OR_RETURN(e.price_per_gpu_hour_micro, prices.PriceAt(gpu_type, now));
  e.price_per_hour_micro =
      DivRoundHalfUp(static_cast<Int128>(e.price_per_gpu_hour_micro) * spec.gpus_milli, kMilliPerGpu);
  e.runtime_limit_s = spec.runtime_limit_s;
  if (spec.runtime_limit_s > 0) {
    e.estimate_micro = DivRoundHalfUp(
        static_cast<Int128>(spec.runtime_limit_s) * spec.gpus_milli * e.price_per_gpu_hour_micro,
        kMilliSecondsPerGpuHour);
  }
  return e;
}

// ---- Credits -----------------------------------------------------------------------------------

Result<api::LedgerEntry> TrialCredit(const std::string& project, int64_t amount_micro, UnixMillis at,
                                     UnixMillis expires_at) {
  if (amount_micro <= 0 || amount_micro > kMaxMicro)
    return InvalidArgument("trial credit must be a positive amount, got " + FormatUsd(amount_micro));
  if (expires_at != 0 && expires_at <= at) return InvalidArgument("trial credit must expire after it is granted");
  api::LedgerEntry e;
  e.key = CreditKey("trial_credit", project, at, amount_micro, "");
  e.at = at;
  e.project = project;
  e.kind = "trial_credit";
  e.debit = "promotions";
  e.credit = CreditAccount(project);
  e.amount_micro = amount_micro;
  e.month = MonthOf(at);
  e.expires_at = expires_at;
  e.memo = "free trial";
  e.actor = "billing";
  return e;
}

Result<Purchase> PrepaidPurchase(const std::string& project, int64_t paid_micro, int months, int64_t discount_bps,
                                 UnixMillis at, const std::string& actor) {
  if (paid_micro <= 0 || paid_micro > kMaxMicro)
    return InvalidArgument("a prepaid purchase must be a positive amount, got " + FormatUsd(paid_micro));
  if (months < 1 || months > 36) return InvalidArgument("a prepaid plan lasts 1 to 36 months");
  if (discount_bps < 0 || discount_bps > 10'000) return InvalidArgument("discount must be 0..10000 basis points");
  Purchase p;
  api::LedgerEntry e;
  e.key = CreditKey("prepaid", project, at, paid_micro, actor);
  e.at = at;
  e.project = project;
  e.kind = "prepaid";
  e.debit = "cash";
  e.credit = CreditAccount(project);
  e.amount_micro = paid_micro;
  e.month = MonthOf(at);
  e.memo = std::to_string(months) + "-month prepaid plan, " + std::to_string(discount_bps / 100) + "." +
           (discount_bps % 100 < 10 ? "0" : "") + std::to_string(discount_bps % 100) + " % off usage";
  e.actor = actor;
  p.entries.push_back(std::move(e));
  p.plan = Plan{project, discount_bps, at, SameDayMonthsLater(at, months)};
  return p;
}

Result<api::LedgerEntry> Adjustment(const std::string& project, int64_t amount_micro, UnixMillis at,
                                    const std::string& memo, const std::string& actor) {
  if (amount_micro == 0 || amount_micro > kMaxMicro || amount_micro < -kMaxMicro)
    return InvalidArgument("an adjustment needs a non-zero amount");
  api::LedgerEntry e;
  e.key = CreditKey("adjustment", project, at, amount_micro, actor + "\n" + memo);
  e.at = at;
  e.project = project;
  e.kind = "adjustment";
  if (amount_micro > 0) {  // credit given to the project
    e.debit = "adjustments";
    e.credit = CreditAccount(project);
    e.amount_micro = amount_micro;
  } else {  // an extra charge to the project
    e.debit = CustomerAccount(project);
    e.credit = "adjustments";
    e.amount_micro = -amount_micro;
  }
  e.month = MonthOf(at);
  e.memo = memo;
  e.actor = actor;
  return e;
}

// ---- Invoices ----------------------------------------------------------------------------------

Invoice BuildInvoice(const std::string& project, const std::string& month,
                     const std::vector<api::LedgerEntry>& ledger) {
  Invoice inv;
  inv.project = project;
  inv.month = month;
  std::map<std::pair<std::string, int64_t>, InvoiceLine> lines;
  for (const auto& e : ledger) {
    if (e.project != project || e.month != month || !IsCharge(e)) continue;
    bool usage = e.kind == "usage";
    auto& l = lines[{usage ? e.gpu_type : "(adjustment)", usage ? e.unit_price_micro : 0}];
    l.gpu_type = usage ? e.gpu_type : "(adjustment)";
    l.unit_price_micro = usage ? e.unit_price_micro : 0;
    l.gpu_seconds_milli += e.seconds * e.milli;
    l.gross_micro += usage ? e.gross_micro : e.amount_micro;
    l.discount_micro += usage ? e.discount_micro : 0;
    l.total_micro += e.amount_micro;
  }
  for (auto& [key, l] : lines) {
    inv.usage_total_micro += l.total_micro;
    inv.lines.push_back(std::move(l));
  }
  auto end = MonthEnd(month);
  std::map<std::string, size_t> by_key;
  ReplayCredits(project, end.ok() ? *end : INT64_MAX, ledger,
                [&](const api::LedgerEntry& charge, const api::LedgerEntry& grant, int64_t amount) {
                  if (charge.month != month) return;
                  auto [it, fresh] = by_key.emplace(grant.key, inv.credits.size());
                  if (fresh) inv.credits.push_back({grant.kind, grant.key, 0});
                  inv.credits[it->second].amount_micro += amount;
                  inv.credits_total_micro += amount;
                });
  inv.amount_due_micro = inv.usage_total_micro - inv.credits_total_micro;
  return inv;
}

int64_t CreditBalance(const std::string& project, UnixMillis at, const std::vector<api::LedgerEntry>& ledger) {
  auto grants = ReplayCredits(project, at, ledger, [](const auto&, const auto&, int64_t) {});
  int64_t balance = 0;
  for (const auto& g : grants)
    if (g.entry->expires_at == 0 || g.entry->expires_at > at) balance += g.left;
  return balance;
}

BudgetLevel EvaluateBudget(const api::Budget& budget, int64_t spent_micro) {
  if (budget.monthly_limit_micro <= 0) return BudgetLevel::kOk;
  const Int128 spent = spent_micro, limit = budget.monthly_limit_micro;
  if (spent >= limit) return BudgetLevel::kExceeded;
  if (spent * 10 >= limit * 8) return BudgetLevel::kWarning;
  return BudgetLevel::kOk;
}

}  // namespace fastgpu::billing
