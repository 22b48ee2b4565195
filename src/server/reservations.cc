#include "server/reservations.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace fastgpu::server {
namespace {

constexpr const char* kKind = "reservation";         // key: id; api::ToJson(Reservation)
constexpr const char* kSeqKind = "reservation_seq";  // key "next": {"next": N}, the number of the next id

int64_t IdNumber(const std::string& id) {
  if (id.size() < 3 || id.compare(0, 2, "r-") != 0 || id.size() > 18) return -1;
  int64_t n = 0;
  for (size_t i = 2; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9') return -1;
    n = n * 10 + (id[i] - '0');
  }
  return n;
}

std::string Gpus(int n, const std::string& type) {
  return std::to_string(n) + (type.empty() ? "" : " " + type) + (n == 1 ? " GPU" : " GPUs");
}

std::string Window(const api::Reservation& r) {
  return FormatTimestamp(r.start_at) + " to " + FormatTimestamp(r.end_at);
}

}  // namespace

Status ReservationBook::Load() {
  ASSIGN_OR_RETURN(auto records, store_.ListRecords(kKind, ""));
  ASSIGN_OR_RETURN(auto seq, store_.GetRecord(kSeqKind, "next"));
  std::lock_guard lock(mu_);
  by_id_.clear();
  next_ = 1;
  for (const auto& rec : records) {
    auto j = nlohmann::json::parse(rec.value, nullptr, false);
    auto r = api::ReservationFromJson(j);
    if (!r.ok()) return Internal("reservation record " + rec.key + ": " + r.status().message());
    next_ = std::max(next_, IdNumber(r->id) + 1);
    by_id_[rec.key] = {std::move(r).value(), rec.version};
  }
  seq_version_ = 0;
  if (seq) {
    auto j = nlohmann::json::parse(seq->value, nullptr, false);
    if (j.is_object() && j.contains("next") && j["next"].is_number_integer())
      next_ = std::max(next_, j["next"].get<int64_t>());
    seq_version_ = seq->version;
  }
  return Status::Ok();
}

Result<api::Reservation> ReservationBook::Create(api::Reservation r, const std::string& actor,
                                                 const std::map<std::string, int>& gpus_by_type,
                                                 api::AuditRecord* audit) {
  const UnixMillis now = clock_.NowMillis();
  if (r.gpus < 1) return InvalidArgument("a reservation holds at least 1 GPU");
  if (r.end_at <= r.start_at)
    return InvalidArgument("the reservation must end after it starts (start " + FormatTimestamp(r.start_at) +
                           ", end " + FormatTimestamp(r.end_at) + ")");
  if (r.end_at <= now)
    return InvalidArgument("the reservation would end at " + FormatTimestamp(r.end_at) + ", which has already passed");
  int capacity = 0;
  if (r.gpu_type.empty()) {
    for (const auto& [type, n] : gpus_by_type) capacity += n;
  } else if (auto it = gpus_by_type.find(r.gpu_type); it != gpus_by_type.end()) {
    capacity = it->second;
  } else {
    std::string types;
    for (const auto& [type, n] : gpus_by_type) types += (types.empty() ? "" : ", ") + type;
    return Unschedulable("the cluster has no " + r.gpu_type + " GPUs" +
                           (types.empty() ? std::string(" (no GPUs at all yet)") : " (it has " + types + ")"));
  }
  if (r.gpus > capacity)
    return Unschedulable("the reservation asks for " + Gpus(r.gpus, r.gpu_type) + " and the cluster has " +
                           std::to_string(capacity) + (r.gpu_type.empty() ? "" : " of type " + r.gpu_type));

  std::lock_guard write(write_mu_);
  int64_t number;
  int64_t seq_version;
  {
    std::lock_guard lock(mu_);
    // Overlapping reservations that compete for the same GPUs: at each point of the new window where one of them
    // begins, the sum must fit.
    std::vector<const api::Reservation*> rivals;
    for (const auto& [id, entry] : by_id_) {
      const api::Reservation& o = entry.first;
      if (o.end_at <= now || o.end_at <= r.start_at || o.start_at >= r.end_at) continue;
      if (!o.gpu_type.empty() && !r.gpu_type.empty() && o.gpu_type != r.gpu_type) continue;
      rivals.push_back(&o);
    }
    std::vector<UnixMillis> points = {std::max(r.start_at, now)};
    for (const auto* o : rivals)
      if (o->start_at > points[0]) points.push_back(o->start_at);
    for (UnixMillis t : points) {
      int sum = r.gpus;
      std::string names;
      for (const auto* o : rivals) {
        if (o->start_at > t || o->end_at <= t) continue;
        sum += o->gpus;
        names += (names.empty() ? "" : "; ") + o->id + " (project " + o->project + ", " + Gpus(o->gpus, o->gpu_type) +
                 ", " + Window(*o) + ")";
      }
      if (sum > capacity)
        return FailedPrecondition("the reservation overlaps " + names + ": together " + std::to_string(sum) +
                                  " GPUs at " + FormatTimestamp(t) + ", and the cluster has " +
                                  std::to_string(capacity) + (r.gpu_type.empty() ? "" : " of type " + r.gpu_type) +
                                  "; shorten or move one of them, or ask for fewer GPUs");
    }
    number = next_;
    seq_version = seq_version_;
  }
  r.id = "r-" + std::to_string(number);
  if (audit && audit->target.empty()) audit->target = "reservation:" + r.id;
  r.created_at = now;
  r.created_by = actor;
  std::vector<store::RecordWrite> writes;
  writes.push_back({.kind = kSeqKind, .key = "next", .value = nlohmann::json{{"next", number + 1}}.dump(),
                    .expected_version = seq_version});
  writes.push_back({.kind = kKind, .key = r.id, .value = api::ToJson(r).dump(), .expected_version = 0});
  Status st = store_.WriteRecords(writes, audit);
  if (!st.ok()) {
    // Another server wrote reservations meanwhile: read them again; the caller may retry.
    if (st.code() == ErrorCode::kFailedPrecondition || st.code() == ErrorCode::kAlreadyExists) {
      (void)Load();
      return Unavailable("reservations were changed by another server at the same time; try again");
    }
    return st;
  }
  std::lock_guard lock(mu_);
  by_id_[r.id] = {r, 1};
  next_ = number + 1;
  seq_version_ = seq_version + 1;
  return r;
}

std::vector<api::Reservation> ReservationBook::List(const std::set<std::string>* projects) const {
  std::lock_guard lock(mu_);
  std::vector<api::Reservation> out;
  for (const auto& [id, entry] : by_id_)
    if (!projects || projects->count(entry.first.project)) out.push_back(entry.first);
  std::sort(out.begin(), out.end(), [](const api::Reservation& a, const api::Reservation& b) {
    return a.start_at != b.start_at ? a.start_at < b.start_at : IdNumber(a.id) < IdNumber(b.id);
  });
  return out;
}

Result<api::Reservation> ReservationBook::Get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return NotFound("reservation " + id + " does not exist");
  return it->second.first;
}

Status ReservationBook::Delete(const std::string& id, api::AuditRecord* audit) {
  std::lock_guard write(write_mu_);
  int64_t version;
  {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) return NotFound("reservation " + id + " does not exist");
    version = it->second.second;
  }
  Status st = store_.WriteRecords({{.kind = kKind, .key = id, .erase = true, .expected_version = version}}, audit);
  if (!st.ok()) {
    if (st.code() == ErrorCode::kNotFound) {
      std::lock_guard lock(mu_);
      by_id_.erase(id);
      return NotFound("reservation " + id + " does not exist");
    }
    return st;
  }
  std::lock_guard lock(mu_);
  by_id_.erase(id);
  return Status::Ok();
}

std::vector<sched::ReservationView> ReservationBook::Active(UnixMillis now) const {
  std::lock_guard lock(mu_);
  std::vector<sched::ReservationView> out;
  for (const auto& [id, entry] : by_id_) {
    const api::Reservation& r = entry.first;
    if (r.end_at <= now) continue;
    out.push_back({r.id, r.project, r.gpus, r.gpu_type, r.start_at, r.end_at});
  }
  return out;
}

}  // namespace fastgpu::server
