// Service: metering (usage segments + ledger entries written with the job's end), quotas and budgets.
#include <algorithm>

#include "server/service.h"

namespace fastgpu::server {

using api::Job;
using api::JobState;

namespace {
constexpr int64_t kMsPerHour = 3'600'000;

std::string TypeLabel(const std::string& t) { return t.empty() ? "any type" : t; }
}  // namespace

void Service::SetProjectDirectory(const ProjectDirectory* directory) {
  std::lock_guard lock(mu_);
  directory_ = directory;
}

Status Service::SetBilling(billing::PriceCatalog prices, std::vector<billing::Plan> plans) {
  std::lock_guard lock(mu_);
  prices_ = std::move(prices);
  plans_ = std::move(plans);
  month_.clear();
  RollMonthLocked(clock_.NowMillis());
  return month_.empty() ? Internal("cannot read this month's usage from the ledger") : Status::Ok();
}

void Service::AddPrice(const api::PriceEntry& price) {
  std::lock_guard lock(mu_);
  prices_.Add(price);
}

void Service::AddPlan(const billing::Plan& plan) {
  std::lock_guard lock(mu_);
  plans_.push_back(plan);
}

billing::PriceCatalog Service::Prices() const {
  std::lock_guard lock(mu_);
  return prices_;
}

std::vector<billing::Plan> Service::Plans() const {
  std::lock_guard lock(mu_);
  return plans_;
}

void Service::RollMonthLocked(UnixMillis now) {
  std::string month = billing::MonthOf(now);
  if (month == month_) return;
  auto entries = store_.ListLedger({.project = "", .month = month, .kind = "usage"});
  if (!entries.ok()) return;  // retried on the next call
  month_spend_.clear();
  month_keys_.clear();
  for (const auto& e : *entries) {
    if (!month_keys_.insert(e.key).second) continue;
    auto& s = month_spend_[{e.project, e.gpu_type}];
    s.cost_micro += e.amount_micro;
    s.gpu_ms_milli += e.seconds * 1000 * e.milli;
  }
  month_ = month;
}

std::string Service::GpuTypeLocked(const Job& job) const {
  if (job.assigned_gpus.empty()) return job.spec.gpu_type;
  auto n = nodes_.find(job.node);
  if (n != nodes_.end()) {
    for (const auto& g : n->second.gpus)
      if (g.uuid == job.assigned_gpus[0]) return g.type;
  }
  return job.spec.gpu_type;
}

void Service::MeterLocked(const Job& before, const Job& after, UnixMillis at, store::JobUpdate& u) const {
  if (before.state != JobState::kRunning || after.state == JobState::kRunning || before.started_at == 0) return;
  auto seg = billing::SegmentForRun(before, GpuTypeLocked(before), at);
  if (!seg) return;
  auto charges = billing::ChargeSegment(*seg, prices_, plans_);
  u.usage.push_back(*seg);
  // A GPU type without a price (and no "*" price) is metered but not charged; `price set` fixes it.
  if (charges.ok()) u.ledger = std::move(charges).value();
}

std::map<std::string, ProjectSpend> Service::SpendByProjectLocked(UnixMillis now) const {
  std::map<std::string, ProjectSpend> out;
  for (const auto& [key, s] : month_spend_) {
    out[key.first].cost_micro += s.cost_micro;
    out[key.first].gpu_ms_milli += s.gpu_ms_milli;
  }
  auto month_start = billing::MonthStart(billing::MonthOf(now));
  for (const auto& id : active_) {
    const Job& j = jobs_.at(id);
    if (j.state != JobState::kRunning || j.started_at == 0) continue;
    auto seg = billing::SegmentForRun(j, GpuTypeLocked(j), now);
    if (!seg) continue;
    if (month_start.ok()) seg->start_ms = std::max(seg->start_ms, *month_start);
    if (seg->end_ms <= seg->start_ms) continue;
    auto cost = billing::AccruedCost(*seg, prices_, plans_);
    auto& s = out[j.spec.project];
    if (cost.ok()) s.cost_micro += *cost;
    s.gpu_ms_milli += (seg->end_ms - seg->start_ms) * seg->milli;
  }
  return out;
}

std::map<std::pair<std::string, std::string>, ProjectSpend> Service::SpendThisMonth(const std::string& project) const {
  std::lock_guard lock(mu_);
  UnixMillis now = clock_.NowMillis();
  const_cast<Service*>(this)->RollMonthLocked(now);
  std::map<std::pair<std::string, std::string>, ProjectSpend> out;
  for (const auto& [key, s] : month_spend_)
    if (project.empty() || key.first == project) out[key] = s;
  auto month_start = billing::MonthStart(billing::MonthOf(now));
  for (const auto& id : active_) {
    const Job& j = jobs_.at(id);
    if (j.state != JobState::kRunning || (!project.empty() && j.spec.project != project)) continue;
    auto seg = billing::SegmentForRun(j, GpuTypeLocked(j), now);
    if (!seg) continue;
    if (month_start.ok()) seg->start_ms = std::max(seg->start_ms, *month_start);
    if (seg->end_ms <= seg->start_ms) continue;
    auto& s = out[{j.spec.project, seg->gpu_type}];
    auto cost = billing::AccruedCost(*seg, prices_, plans_);
    if (cost.ok()) s.cost_micro += *cost;
    s.gpu_ms_milli += (seg->end_ms - seg->start_ms) * seg->milli;
  }
  return out;
}

Result<billing::Estimate> Service::EstimateCost(const api::JobSpec& spec) const {
  std::lock_guard lock(mu_);
  std::string type = spec.gpu_type;
  if (type.empty()) {
    std::map<std::string, int> counts;
    for (const auto& [name, ns] : nodes_)
      for (const auto& g : ns.gpus) counts[g.type]++;
    int best = -1;
    for (const auto& [t, c] : counts)
      if (c > best) best = c, type = t;
  }
  return billing::EstimateJob(spec, type, prices_, clock_.NowMillis());
}

std::string Service::HoldReasonLocked(const Job& job, const std::map<std::string, ProjectSpend>& spend,
                                      const std::map<std::string, std::map<std::string, MilliGpu>>& held) const {
  if (!directory_) return "";
  auto rules = directory_->Rules(job.spec.project);
  if (!rules) return "";
  const std::string& p = job.spec.project;
  auto sp = spend.find(p);
  ProjectSpend used = sp == spend.end() ? ProjectSpend{} : sp->second;
  if (billing::EvaluateBudget(rules->budget, used.cost_micro) == billing::BudgetLevel::kExceeded) {
    return "budget: project " + p + " spent " + billing::FormatUsd(used.cost_micro) + " of " +
           billing::FormatUsd(rules->budget.monthly_limit_micro) + " this month";
  }
  if (rules->quota.max_gpu_hours_per_month > 0 &&
      used.gpu_ms_milli / (kMsPerHour * kMilliPerGpu) >= rules->quota.max_gpu_hours_per_month) {
    return "quota: project " + p + " used " + std::to_string(used.gpu_ms_milli / (kMsPerHour * kMilliPerGpu)) +
           "/" + std::to_string(rules->quota.max_gpu_hours_per_month) + " GPU-hours this month";
  }
  auto h = held.find(p);
  auto held_of = [&](const std::string& type) -> MilliGpu {
    if (h == held.end()) return 0;
    auto it = h->second.find(type);
    return it == h->second.end() ? 0 : it->second;
  };
  for (const auto& [type, limit] : rules->quota.max_gpus_milli) {
    // "*" caps all types together; a typed cap applies to jobs asking for that type.
    if (type != "*" && type != job.spec.gpu_type) continue;
    MilliGpu now_held = held_of(type);
    if (now_held + job.spec.gpus_milli > limit) {
      return "quota: project " + p + " uses " + FormatMilliGpu(now_held) + "/" + FormatMilliGpu(limit) + " " +
             (type == "*" ? std::string("GPUs") : TypeLabel(type));
    }
  }
  return "";
}

void Service::EnforceBudgetsLocked(std::vector<std::pair<std::string, agent::JobCommand>>& stops) {
  if (!directory_) return;
  UnixMillis now = clock_.NowMillis();
  RollMonthLocked(now);
  auto spend = SpendByProjectLocked(now);
  for (const auto& [project, s] : spend) {
    auto rules = directory_->Rules(project);
    if (!rules || rules->budget.monthly_limit_micro <= 0) continue;
    auto level = billing::EvaluateBudget(rules->budget, s.cost_micro);
    if (level != billing::BudgetLevel::kOk && budget_warned_.insert(project + "/" + month_ + "/" + std::to_string(static_cast<int>(level))).second) {
      api::AuditRecord rec;
      rec.at = now;
      rec.actor = "billing";
      rec.action = "budget.warning";
      rec.target = "project:" + project;
      rec.result = level == billing::BudgetLevel::kExceeded ? "exceeded" : "warning";
      rec.detail = "spent " + billing::FormatUsd(s.cost_micro) + " of " +
                   billing::FormatUsd(rules->budget.monthly_limit_micro) + " this month";
      (void)store_.AppendAudit(rec);
    }
    if (level != billing::BudgetLevel::kExceeded || !rules->budget.hard) continue;
    for (const auto& id : active_) {
      const Job& j = jobs_.at(id);
      if (j.spec.project != project || j.state != JobState::kRunning || stops_.count(id)) continue;
      std::string reason = "budget: project " + project + " reached its hard monthly limit of " +
                           billing::FormatUsd(rules->budget.monthly_limit_micro);
      stops_[id] = {StopKind::kBudget, reason};
      agent::JobCommand cmd;
      cmd.kind = agent::JobCommand::Kind::kStop;
      cmd.job_id = id;
      cmd.attempt = j.attempt;
      cmd.reason = reason;
      cmd.grace_ms = options_.stop_grace_ms;
      // Every node of a multi-node job.
      if (j.members.empty()) {
        stops.push_back({j.node, std::move(cmd)});
      } else {
        for (const auto& m : j.members) stops.push_back({m.node, cmd});
      }
    }
  }
}

}  // namespace fastgpu::server
