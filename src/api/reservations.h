// Reservations: GPUs set aside for one project in a time window (`fastgpu reservation create`, docs/scheduling.md).
// Kept by the server as versioned store records; the scheduler sees the windows that have not ended
// (sched::ReservationView).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace fastgpu::api {

struct Reservation {
  std::string id;          // "r-1", "r-2", ... (never reused)
  std::string name;        // optional label
  std::string project;
  int gpus = 0;            // whole GPUs
  std::string gpu_type;    // empty = any type
  UnixMillis start_at = 0;  // window [start_at, end_at)
  UnixMillis end_at = 0;
  UnixMillis created_at = 0;
  std::string created_by;  // actor ("user:alice")
};

// "upcoming", "active" or "ended" at `now`.
std::string ReservationState(const Reservation& r, UnixMillis now);

// {"id","name","project","gpus","gpu_type","start_at","start_at_ms","end_at","end_at_ms","created_at",
//  "created_at_ms","created_by"}; with `now` > 0 also "state".
nlohmann::json ToJson(const Reservation& r, UnixMillis now = 0);
// Strict: the form ToJson writes (store records, API answers).
Result<Reservation> ReservationFromJson(const nlohmann::json& j);
// A create request (POST /v1/reservations): {"project", "gpus", "gpu_type"?, "start_at", "end_at", "name"?}; times as
// RFC 3339 text or Unix milliseconds. Unknown fields are errors. Checks the form only (the service checks the rest).
Result<Reservation> ReservationRequestFromJson(const nlohmann::json& j);

}  // namespace fastgpu::api
