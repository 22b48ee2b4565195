// HTTP handlers: prices, usage, invoices and credits. The arithmetic lives in src/billing.
#include <nlohmann/json.hpp>

#include "api/billing_json.h"
#include "billing/render.h"
#include "server/http_audit.h"
#include "server/http_internal.h"

namespace fastgpu::server {

using nlohmann::json;
using auth::Action;

namespace {

std::string PriceKey(const api::PriceEntry& p) {
  char ms[32];
  std::snprintf(ms, sizeof(ms), "%016lld", static_cast<long long>(p.effective_from));
  return p.gpu_type + "@" + ms;
}

json PriceJson(const api::PriceEntry& p) {
  json j = api::ToJson(p);
  j["price"] = billing::FormatUsd(p.micro_per_gpu_hour);
  return j;
}

Result<UnixMillis> TimeField(const json& j, const char* field, UnixMillis def) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return def;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_string()) {
    auto t = ParseTimestamp(it->get<std::string>());
    if (!t.ok()) return InvalidArgument(std::string("field '") + field + "': " + t.status().message());
    return *t;
  }
  return InvalidArgument(std::string("field '") + field + "' must be an RFC 3339 time or unix milliseconds");
}

}  // namespace

Result<std::optional<int64_t>> OptMoney(const json& j, const std::string& field) {
  auto micro = j.find(field + "_micro");
  if (micro != j.end() && !micro->is_null()) {
    if (!micro->is_number_integer()) return InvalidArgument("field '" + field + "_micro' must be an integer");
    return std::optional<int64_t>(micro->get<int64_t>());
  }
  auto text = j.find(field);
  if (text == j.end() || text->is_null()) return std::optional<int64_t>();
  if (!text->is_string())
    return InvalidArgument("field '" + field + "' must be a decimal string in dollars, e.g. \"2.50\"");
  auto v = billing::ParseUsd(text->get<std::string>());
  if (!v.ok()) return InvalidArgument("field '" + field + "': " + v.status().message());
  return std::optional<int64_t>(*v);
}

void HttpServer::InstallBilling() {
  Add("GET", "/v1/prices", [this](Ctx& ctx) {
    auto prices = service_.Prices();
    bool all = Param(ctx.req, "all") == "true";
    json arr = json::array();
    for (const auto& p : all ? prices.entries() : prices.Current(clock_.NowMillis())) arr.push_back(PriceJson(p));
    SendJson(ctx.res, {{"prices", arr}});
  });
  Add("POST", "/v1/prices", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"gpu_type", "price", "price_per_gpu_hour_micro", "effective_from"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto type = OptString(*body, "gpu_type");
    if (!type.ok()) return SendError(ctx.res, type.status());
    if (!*type || (*type)->empty() || (*type)->size() > 64)
      return SendError(ctx.res, InvalidArgument("field 'gpu_type' is required (e.g. \"A100-80GB\", or \"*\")"));
    auto price = OptMoney(*body, "price");
    if (!price.ok()) return SendError(ctx.res, price.status());
    if (!price->has_value()) {
      auto micro = OptInt(*body, "price_per_gpu_hour_micro", 0, int64_t{1} << 40);
      if (!micro.ok()) return SendError(ctx.res, micro.status());
      *price = *micro;
    }
    constexpr int64_t kMaxPrice = 1'000'000'000'000;  // $1,000,000 per GPU-hour
    if (!price->has_value() || **price < 0 || **price > kMaxPrice)
      return SendError(ctx.res, InvalidArgument("give 'price' (dollars per GPU-hour, e.g. \"2.50\"), 0 to 1000000"));
    UnixMillis now = clock_.NowMillis();
    auto from = TimeField(*body, "effective_from", now);
    if (!from.ok()) return SendError(ctx.res, from.status());
    // Prices change from now on: seconds already run keep the price they ran at (a minute of clock skew
    // between client and server is tolerated and treated as now).
    if (*from < now - 60'000)
      return SendError(ctx.res, InvalidArgument("'effective_from' is in the past: prices can only change from now on"));
    if (*from < now) *from = now;
    api::PriceEntry e{.gpu_type = **type, .micro_per_gpu_hour = **price, .effective_from = *from,
                      .set_by = ctx.principal.Actor()};
    ctx.audit_target = "price:" + e.gpu_type;
    ctx.audit_detail = billing::FormatUsd(e.micro_per_gpu_hour) + " per GPU-hour from " + Timestamp(e.effective_from);
    api::AuditRecord row = ChangeAuditRow(ctx, now);
    RETURN_IF_SEND_ERROR(
        ctx.res, store_.WriteRecords({{.kind = "price", .key = PriceKey(e), .value = api::ToJson(e).dump()}}, &row));
    NoteChangeAudited(ctx, row);
    service_.AddPrice(e);
    SendJson(ctx.res, PriceJson(e), 201);
  });
  Add("GET", "/v1/usage", [this](Ctx& ctx) {
    std::string project = Param(ctx.req, "project");
    std::string month = Param(ctx.req, "month");
    std::string now_month = billing::MonthOf(clock_.NowMillis());
    if (!project.empty() && !ctx.principal.admin)
      RETURN_IF_SEND_ERROR(ctx.res, auth::Authorize(ctx.principal, Action::kProjectRead, project,
                                                    "project " + project + " does not exist"));
    auto visible = [&](const std::string& p) { return ctx.principal.admin || ctx.principal.RoleIn(p).has_value(); };
    json rows = json::array();
    int64_t total = 0;
    if (month.empty() || month == now_month) {
      month = now_month;
      for (const auto& [key, s] : service_.SpendThisMonth(project)) {
        if (!visible(key.first)) continue;
        rows.push_back({{"project", key.first}, {"gpu_type", key.second},
                        {"gpu_hours_milli", s.gpu_ms_milli / 3'600'000}, {"cost_micro", s.cost_micro}});
        total += s.cost_micro;
      }
    } else {
      if (!billing::MonthStart(month).ok())
        return SendError(ctx.res, InvalidArgument("query parameter 'month' must be YYYY-MM, e.g. " + now_month));
      auto entries = store_.ListLedger({.project = project, .month = month, .kind = "usage"});
      if (!entries.ok()) return SendError(ctx.res, entries.status());
      std::map<std::pair<std::string, std::string>, std::pair<int64_t, int64_t>> sums;
      for (const auto& e : *entries) {
        if (!visible(e.project)) continue;
        auto& s = sums[{e.project, e.gpu_type}];
        s.first += e.seconds * e.milli;
        s.second += e.amount_micro;
      }
      for (const auto& [key, s] : sums) {
        rows.push_back({{"project", key.first}, {"gpu_type", key.second}, {"gpu_hours_milli", s.first / 3600},
                        {"cost_micro", s.second}});
        total += s.second;
      }
    }
    SendJson(ctx.res, {{"month", month}, {"rows", rows}, {"total_micro", total}});
  });
  Add("GET", "/v1/projects/{project}/bill", [this](Ctx& ctx) {
    std::string month = Param(ctx.req, "month");
    if (month.empty()) month = billing::MonthOf(clock_.NowMillis());
    if (!billing::MonthStart(month).ok())
      return SendError(ctx.res, InvalidArgument("query parameter 'month' must be YYYY-MM, e.g. 2026-11"));
    auto entries = store_.ListLedger({.project = ctx.project});
    if (!entries.ok()) return SendError(ctx.res, entries.status());
    auto invoice = billing::BuildInvoice(ctx.project, month, *entries);
    if (Param(ctx.req, "format") == "csv") {
      ctx.res.set_content(billing::InvoiceCsv(invoice), "text/csv");
      return;
    }
    SendJson(ctx.res, billing::InvoiceJson(invoice));
  });
  Add("GET", "/v1/projects/{project}/credits", [this](Ctx& ctx) {
    auto entries = store_.ListLedger({.project = ctx.project});
    if (!entries.ok()) return SendError(ctx.res, entries.status());
    json arr = json::array();
    for (const auto& e : *entries)
      if (e.kind != "usage") arr.push_back(api::ToJson(e));
    SendJson(ctx.res, {{"balance_micro", billing::CreditBalance(ctx.project, clock_.NowMillis(), *entries)},
                       {"entries", arr}});
  });
  Add("POST", "/v1/projects/{project}/credits", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"kind", "amount", "amount_micro", "months", "memo", "expires_at"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto kind = OptString(*body, "kind");
    auto amount = OptMoney(*body, "amount");
    auto months = OptInt(*body, "months", 1, 36);
    auto memo = OptString(*body, "memo");
    for (const Status& st : {kind.status(), amount.status(), months.status(), memo.status()})
      if (!st.ok()) return SendError(ctx.res, st);
    if (!amount->has_value()) return SendError(ctx.res, InvalidArgument("give 'amount' in dollars, e.g. \"100.00\""));
    UnixMillis now = clock_.NowMillis();
    auto expires = TimeField(*body, "expires_at", 0);
    if (!expires.ok()) return SendError(ctx.res, expires.status());
    std::string k = kind->value_or("adjustment");
    std::vector<api::LedgerEntry> entries;
    std::vector<store::RecordWrite> records;
    std::optional<billing::Plan> new_plan;
    ctx.audit_target = "credits:" + ctx.project;
    ctx.audit_detail = k + " " + billing::FormatUsd(**amount);
    if (k == "adjustment") {
      auto e = billing::Adjustment(ctx.project, **amount, now, memo->value_or(""), ctx.principal.Actor());
      if (!e.ok()) return SendError(ctx.res, e.status());
      entries.push_back(*e);
    } else if (k == "trial_credit") {
      auto e = billing::TrialCredit(ctx.project, **amount, now, *expires);
      if (!e.ok()) return SendError(ctx.res, e.status());
      entries.push_back(*e);
    } else if (k == "prepaid") {
      auto p = billing::PrepaidPurchase(ctx.project, **amount, static_cast<int>(months->value_or(6)), 2000, now,
                                        ctx.principal.Actor());
      if (!p.ok()) return SendError(ctx.res, p.status());
      json plan = {{"project", p->plan.project}, {"discount_bps", p->plan.discount_bps},
                   {"from", p->plan.from}, {"to", p->plan.to}};
      records.push_back({.kind = "plan", .key = ctx.project + "/" + std::to_string(p->plan.from),
                         .value = plan.dump()});
      new_plan = p->plan;
      entries = p->entries;
    } else {
      return SendError(ctx.res, InvalidArgument("field 'kind' must be adjustment, prepaid or trial_credit"));
    }
    // The credit, a prepaid plan's discount record and the audit row in one transaction: all or none.
    api::AuditRecord row = ChangeAuditRow(ctx, now);
    RETURN_IF_SEND_ERROR(ctx.res, store_.PostLedger({}, entries, &row, records));
    NoteChangeAudited(ctx, row);
    if (new_plan) service_.AddPlan(*new_plan);
    auto all = store_.ListLedger({.project = ctx.project});
    if (!all.ok()) return SendError(ctx.res, all.status());
    json arr = json::array();
    for (const auto& e : entries) arr.push_back(api::ToJson(e));
    SendJson(ctx.res, {{"entries", arr}, {"balance_micro", billing::CreditBalance(ctx.project, now, *all)}}, 201);
  });
}

}  // namespace fastgpu::server
