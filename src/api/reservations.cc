#include "api/reservations.h"

#include <nlohmann/json.hpp>

#include "api/json_internal.h"

namespace fastgpu::api {

using nlohmann::json;

namespace {

json Time(UnixMillis t) { return t ? json(FormatTimestamp(t)) : json(""); }

// RFC 3339 text or Unix milliseconds; `required` fields may not be absent.
Result<UnixMillis> TimeField(const json& j, const char* key, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) return InvalidArgument(std::string("field '") + key + "' is required (RFC 3339 time or Unix ms)");
    return UnixMillis{0};
  }
  if (it->is_string()) {
    auto t = ParseTimestamp(it->get<std::string>());
    if (!t.ok()) return InvalidArgument(std::string("field '") + key + "': " + t.status().message());
    return *t;
  }
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > 253402300799000ULL) ||
      it->get<int64_t>() < 0 || it->get<int64_t>() > 253402300799000LL)
    return InvalidArgument(std::string("field '") + key + "' must be an RFC 3339 time or Unix milliseconds");
  return it->get<int64_t>();
}

Result<std::string> StringField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return InvalidArgument(std::string("field '") + key + "' must be a string");
  return it->get<std::string>();
}

}  // namespace

std::string ReservationState(const Reservation& r, UnixMillis now) {
  if (now >= r.end_at) return "ended";
  return now >= r.start_at ? "active" : "upcoming";
}

json ToJson(const Reservation& r, UnixMillis now) {
  json j = {{"id", r.id},
            {"name", r.name},
            {"project", r.project},
            {"gpus", r.gpus},
            {"gpu_type", r.gpu_type},
            {"start_at", Time(r.start_at)},
            {"start_at_ms", r.start_at},
            {"end_at", Time(r.end_at)},
            {"end_at_ms", r.end_at},
            {"created_at", Time(r.created_at)},
            {"created_at_ms", r.created_at},
            {"created_by", r.created_by}};
  if (now > 0) j["state"] = ReservationState(r, now);
  return j;
}

Result<Reservation> ReservationFromJson(const json& j) {
  return internal::Guard([&]() -> Result<Reservation> {
    if (!j.is_object()) return InvalidArgument("a reservation must be a JSON object");
    Reservation r;
    r.id = j.at("id").get<std::string>();
    r.name = j.value("name", std::string());
    r.project = j.at("project").get<std::string>();
    r.gpus = internal::IntAt<int>(j, "gpus");
    r.gpu_type = j.value("gpu_type", std::string());
    r.start_at = internal::IntAt<int64_t>(j, "start_at_ms");
    r.end_at = internal::IntAt<int64_t>(j, "end_at_ms");
    r.created_at = internal::IntOr<int64_t>(j, "created_at_ms", 0);
    r.created_by = j.value("created_by", std::string());
    return r;
  });
}

Result<Reservation> ReservationRequestFromJson(const json& j) {
  if (!j.is_object()) return InvalidArgument("request body must be a JSON object");
  static const char* const kFields[] = {"project", "gpus", "gpu_type", "start_at", "end_at", "name"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    for (const char* f : kFields) known = known || it.key() == f;
    if (!known)
      return InvalidArgument("unknown field '" + it.key() + "' (known: project, gpus, gpu_type, start_at, end_at, name)");
  }
  Reservation r;
  ASSIGN_OR_RETURN(r.project, StringField(j, "project"));
  if (r.project.empty()) return InvalidArgument("field 'project' is required: the project the GPUs are kept for");
  auto gpus = j.find("gpus");
  if (gpus == j.end() || gpus->is_null()) return InvalidArgument("field 'gpus' is required: how many whole GPUs");
  if (!gpus->is_number_integer() || (gpus->is_number_unsigned() && gpus->get<uint64_t>() > 1'000'000) ||
      gpus->get<int64_t>() < 1 || gpus->get<int64_t>() > 1'000'000)
    return InvalidArgument("field 'gpus' must be a whole number of GPUs, at least 1");
  r.gpus = static_cast<int>(gpus->get<int64_t>());
  ASSIGN_OR_RETURN(r.gpu_type, StringField(j, "gpu_type"));
  ASSIGN_OR_RETURN(r.name, StringField(j, "name"));
  if (r.name.size() > 128) return InvalidArgument("field 'name' must be at most 128 characters");
  for (char c : r.name)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      return InvalidArgument("field 'name' must not contain control characters");
  ASSIGN_OR_RETURN(r.start_at, TimeField(j, "start_at", true));
  ASSIGN_OR_RETURN(r.end_at, TimeField(j, "end_at", true));
  if (r.end_at <= r.start_at)
    return InvalidArgument("the reservation must end after it starts (start " + FormatTimestamp(r.start_at) +
                           ", end " + FormatTimestamp(r.end_at) + ")");
  return r;
}

}  // namespace fastgpu::api
