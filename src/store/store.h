// Durable state of the control plane. Implementations: SQLite (embedded default); PostgreSQL later.
// Every implementation passes tests/store/conformance_test.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/accounts.h"
#include "api/billing.h"
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
  // Metering written in the same transaction as the state change that ends a run (exactly once:
  // a segment or ledger entry whose key already exists is skipped, not an error).
  std::vector<api::UsageSegment> usage;
  std::vector<api::LedgerEntry> ledger;
};

// A small versioned document (users, projects, memberships, tokens, service accounts, secrets, prices,
// plans...). The store does not interpret `value` (JSON written by src/auth and src/billing).
struct Record {
  std::string kind;
  std::string key;
  std::string value;
  int64_t version = 0;  // 1 on create, +1 on every update
};

// One write in an atomic WriteRecords batch.
struct RecordWrite {
  std::string kind;
  std::string key;
  std::string value;
  bool erase = false;
  // Compare-and-set: 0 = must not exist yet; N = must currently be at version N. Absent = blind write.
  // A mismatch fails the whole batch: kAlreadyExists when it had to be new, else kFailedPrecondition;
  // erasing a record that does not exist with an expected version fails with kNotFound.
  std::optional<int64_t> expected_version;
};

struct UsageFilter {
  std::string project;   // empty = all
  std::string job_id;    // empty = all
  UnixMillis from = 0;   // segments that end at or after `from`
  UnixMillis to = 0;     // and start before `to` (0 = no upper bound)
};

struct LedgerFilter {
  std::string project;   // empty = all
  std::string month;     // "2026-11"; empty = all
  std::string kind;      // empty = all
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

  // Documents. WriteRecords applies all writes in one durable transaction, or none. Writes apply in order,
  // so a later write in a batch sees the earlier ones. Kind and key must not be empty (kInvalidArgument).
  // A blind erase (no expected_version) of a record that does not exist is a no-op.
  virtual Status WriteRecords(const std::vector<RecordWrite>& writes) = 0;
  virtual Result<std::optional<Record>> GetRecord(const std::string& kind, const std::string& key) = 0;
  // Records of `kind` whose key starts with `key_prefix`, ordered by key.
  virtual Result<std::vector<Record>> ListRecords(const std::string& kind, const std::string& key_prefix) = 0;

  // Audit log, append-only and hash-chained: the store assigns seq (1, 2, ...), prev_hash (hash of the
  // previous row, "" for the first) and hash (api::AuditHash) inside its write transaction, so
  // concurrent appends are chained in commit order. Durable on return.
  virtual Result<api::AuditRecord> AppendAudit(api::AuditRecord record) = 0;
  // Rows with seq > after_seq in seq order, at most `limit` (0 = all).
  virtual Result<std::vector<api::AuditRecord>> ListAudit(int64_t after_seq, int limit) = 0;

  // Metering and ledger outside job updates (credits, adjustments, recovery). Idempotent by key (the
  // first posting of a key wins; a later one with the same key is skipped whatever its content), atomic,
  // durable on return. Empty keys and negative amounts are rejected with kInvalidArgument.
  virtual Status PostLedger(const std::vector<api::UsageSegment>& usage,
                            const std::vector<api::LedgerEntry>& entries) = 0;
  // Ordered by start_ms, then key.
  virtual Result<std::vector<api::UsageSegment>> ListUsage(const UsageFilter& filter) = 0;
  // In seq order.
  virtual Result<std::vector<api::LedgerEntry>> ListLedger(const LedgerFilter& filter) = 0;

  virtual int SchemaVersion() = 0;

  // Counters for monitoring (write batching efficiency). Implementations without them return zeros.
  virtual StoreStats Stats() { return {}; }
};

struct SqliteOptions {
  int max_batch = 2048;          // most write requests grouped into one transaction
  int max_idle_readers = 8;      // read connections kept open between reads
  int busy_timeout_ms = 5000;    // wait for locks held by other processes before failing
};

// Convenience wrappers over WriteRecords. DeleteRecord of a record that does not exist returns Ok
// (idempotent: a retried delete does not fail).
Status PutRecord(Store& store, const std::string& kind, const std::string& key, const std::string& value,
                 std::optional<int64_t> expected_version = std::nullopt);
Status DeleteRecord(Store& store, const std::string& kind, const std::string& key);

// Opens (creating if needed) a SQLite store at `path`, running schema migrations.
// Fails with kFailedPrecondition when the database was written by a newer fastgpu.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const SqliteOptions& options);

// Highest schema version this binary knows how to read and migrate to.
int SqliteLatestSchemaVersion();

}  // namespace fastgpu::store
