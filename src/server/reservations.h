// Reservations kept by the server: GPUs set aside for one project in a time window (docs/scheduling.md). Versioned
// store records (kind "reservation", key = id; the next id in record "reservation_seq"), loaded at start; the
// windows that have not ended go into every scheduling round's ClusterSnapshot::reservations.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "api/accounts.h"
#include "api/reservations.h"
#include "common/clock.h"
#include "common/status.h"
#include "sched/model/model.h"
#include "store/store.h"

namespace fastgpu::server {

class ReservationBook {
 public:
  ReservationBook(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  // Reads the records (call before use).
  Status Load();

  // Checks `r` (a decoded request) and stores it with a new id and created_at/created_by set. `gpus_by_type`: every
  // GPU of the cluster by type (a reservation holds at most those of its type, "" = all). Errors: the window ends
  // in the past; more GPUs than the cluster has of that type (or no such type); overlapping reservations of the same
  // type whose sum would exceed those GPUs (naming them). `audit`: written in the same transaction.
  Result<api::Reservation> Create(api::Reservation r, const std::string& actor,
                                  const std::map<std::string, int>& gpus_by_type, api::AuditRecord* audit);
  // All reservations (ended ones too, until deleted), start order; `projects` non-null: only those projects'.
  std::vector<api::Reservation> List(const std::set<std::string>* projects = nullptr) const;
  Result<api::Reservation> Get(const std::string& id) const;
  Status Delete(const std::string& id, api::AuditRecord* audit);
  // The windows that have not ended at `now`, for the scheduler.
  std::vector<sched::ReservationView> Active(UnixMillis now) const;

 private:
  store::Store& store_;
  const Clock& clock_;
  // Held across check -> store write -> apply, so two overlapping creates cannot both pass (mu_ is not held while
  // the store writes).
  std::mutex write_mu_;
  mutable std::mutex mu_;
  std::map<std::string, std::pair<api::Reservation, int64_t>> by_id_;  // id -> (reservation, record version)
  int64_t next_ = 1;
  int64_t seq_version_ = 0;  // version of the "reservation_seq" record (0: none yet)
};

}  // namespace fastgpu::server
