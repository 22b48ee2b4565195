#include "billing/render.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace fastgpu::billing {

namespace {

// Exact decimal text with six decimals, no currency sign: 2500000 -> "2.500000".
std::string Decimal6(int64_t v) {
  bool negative = v < 0;
  uint64_t abs = negative ? -static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s%llu.%06llu", negative ? "-" : "",
                static_cast<unsigned long long>(abs / 1'000'000), static_cast<unsigned long long>(abs % 1'000'000));
  return buf;
}

// CSV field: quoted when it holds a comma, quote or newline.
std::string Field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

nlohmann::json InvoiceJson(const Invoice& inv) {
  nlohmann::json lines = nlohmann::json::array();
  for (const auto& l : inv.lines) {
    lines.push_back({{"gpu_type", l.gpu_type},
                     {"gpu_seconds_milli", l.gpu_seconds_milli},
                     {"gpu_hours_milli", l.gpu_seconds_milli / 3600},
                     {"unit_price_micro", l.unit_price_micro},
                     {"gross_micro", l.gross_micro},
                     {"discount_micro", l.discount_micro},
                     {"total_micro", l.total_micro}});
  }
  nlohmann::json credits = nlohmann::json::array();
  for (const auto& c : inv.credits)
    credits.push_back({{"kind", c.kind}, {"key", c.key}, {"amount_micro", c.amount_micro}});
  return {{"project", inv.project},
          {"month", inv.month},
          {"lines", lines},
          {"usage_total_micro", inv.usage_total_micro},
          {"credits", credits},
          {"credits_total_micro", inv.credits_total_micro},
          {"amount_due_micro", inv.amount_due_micro}};
}

std::string InvoiceCsv(const Invoice& inv) {
  std::string out = "project,month,item,gpu_type,gpu_hours,unit_price_usd,gross_usd,discount_usd,total_usd\n";
  const std::string head = Field(inv.project) + "," + Field(inv.month) + ",";
  for (const auto& l : inv.lines) {
    // gpu_seconds_milli / 3600 = milli-GPU-hours; six decimals of GPU-hours need x1000 more precision.
    const int64_t micro_hours = l.gpu_seconds_milli * 1000 / 3600;
    out += head + "usage," + Field(l.gpu_type) + "," + Decimal6(micro_hours) + "," + Decimal6(l.unit_price_micro) +
           "," + Decimal6(l.gross_micro) + "," + Decimal6(l.discount_micro) + "," + Decimal6(l.total_micro) + "\n";
  }
  for (const auto& c : inv.credits)
    out += head + "credit," + Field(c.kind + " " + c.key) + ",,,,," + Decimal6(-c.amount_micro) + "\n";
  out += head + "amount_due,,,,,," + Decimal6(inv.amount_due_micro) + "\n";
  return out;
}

}  // namespace fastgpu::billing
