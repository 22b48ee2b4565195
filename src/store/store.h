// Durable state of the control plane. Implementations: SQLite (embedded default); PostgreSQL later.
// Every implementation passes tests/store/conformance_test.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/types.h"
#include "common/status.h"

namespace fastgpu::store {

struct JobFilter {
  std::vector<api::JobState> states;  // empty = any
  std::string project;                // empty = any
  int limit = 0;                      // 0 = no limit; newest first
};

// A job's new value plus the event that explains the change, applied atomically.
struct JobUpdate {
  api::Job job;                                  // full new value (id must exist)
  api::JobEvent event;                           // appended to the event log (job_id/seq filled by the store)
  std::optional<api::JobState> expected_state;   // compare-and-set: fail with kFailedPrecondition if differs
};

struct StoreStats {
  int64_t writes = 0;          // write requests applied (committed or failed individually)
  int64_t commits = 0;         // transactions committed; writes / commits = average group size
  int64_t max_batch = 0;       // largest number of requests applied in one transaction
};

class Store {
 public:
  virtual ~Store() = default;

  // Inserts a new job (state QUEUED) and its submit event. Assigns the id ("j-<n>", n increasing).
  // Returns only once the job is durable (fsync'd). Concurrent calls share commits (group commit).
  virtual Result<api::Job> CreateJob(api::Job job, const api::JobEvent& event) = 0;

  // Applies all updates in one transaction, durable on return. All or nothing.
  virtual Status UpdateJobs(const std::vector<JobUpdate>& updates) = 0;

  virtual Result<api::Job> GetJob(const std::string& id) = 0;
  virtual Result<std::vector<api::Job>> ListJobs(const JobFilter& filter) = 0;
  virtual Result<std::vector<api::JobEvent>> ListEvents(const std::string& job_id) = 0;

  // Nodes and their GPUs (static inventory; live metrics are kept in memory by the server).
  virtual Status UpsertNode(const api::Node& node, const std::vector<api::Gpu>& gpus) = 0;
  virtual Result<std::vector<api::Node>> ListNodes() = 0;
  virtual Result<std::vector<api::Gpu>> ListGpus() = 0;

  // Small key/value settings (e.g. "cluster_id").
  virtual Status PutSetting(const std::string& key, const std::string& value) = 0;
  virtual Result<std::optional<std::string>> GetSetting(const std::string& key) = 0;

  virtual int SchemaVersion() = 0;

  // Counters for monitoring (write batching efficiency). Implementations without them return zeros.
  virtual StoreStats Stats() { return {}; }
};

struct SqliteOptions {
  int max_batch = 2048;          // most write requests grouped into one transaction
  int max_idle_readers = 8;      // read connections kept open between reads
  int busy_timeout_ms = 5000;    // wait for locks held by other processes before failing
};

// Opens (creating if needed) a SQLite store at `path`, running schema migrations.
// Fails with kFailedPrecondition when the database was written by a newer fastgpu.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const SqliteOptions& options);

// Highest schema version this binary knows how to read and migrate to.
int SqliteLatestSchemaVersion();

}  // namespace fastgpu::store
