// Durable state of the control plane. Implementations: SQLite (embedded default); PostgreSQL later.
// Every implementation passes tests/store/conformance_test.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "api/accounts.h"
#include "api/billing.h"
#include "api/types.h"
#include "common/status.h"

namespace fastgpu::store {

// Jobs newest first (highest number first), filtered in the store through its indexes.
struct JobFilter {
  std::vector<api::JobState> states;  // empty = any
  std::string project;                // empty = any
  // Only jobs of these projects (nullopt = any; an empty list matches nothing). With `project` as well,
  // both must hold.
  std::optional<std::vector<std::string>> projects;
  std::string user;                   // empty = any: only jobs submitted by this user
  std::string name;                   // empty = any: only jobs with exactly this name
  UnixMillis created_since = 0;       // 0 = any: only jobs created at or after this time
  bool no_array_tasks = false;        // leave out the tasks of job arrays (their arrays are listed)
  // Only jobs numbered below this ("j-<n>" has number n): the next page after a job. 0 = no bound.
  int64_t before_num = 0;
  int limit = 0;                      // 0 = no limit
};

// A JobFilter as one SQL query over a `jobs` table (columns num, state, project; the SQL stores' shared
// listing logic). Parameters, numbered from 1 and written by the store's `param(i)` ("?1", "$1"): the states
// (states.size() of them), then the projects, then user, name and created_since (at user_param, name_param,
// since_param, each if > 0), then before_num (at before_param, if > 0), then the limit (at limit_param, if > 0).
struct JobListSql {
  bool matches_nothing = false;  // e.g. an empty project list: answer [] without a query
  std::string sql;
  std::vector<std::string> states;    // state names, sorted, no duplicates
  std::vector<std::string> projects;  // sorted, no duplicates
  int user_param = 0;
  int name_param = 0;
  int since_param = 0;
  int before_param = 0;
  int limit_param = 0;
};
// `select_jobs`: "SELECT <columns> FROM jobs"; `union_open`: what opens one branch of a UNION ALL of newest-N
// seeks ("SELECT * FROM (" for SQLite, "(" for PostgreSQL); `param(i)`: the store's i-th parameter.
// kInvalidArgument for a negative limit or bound.
Result<JobListSql> BuildJobListSql(const JobFilter& filter, std::string_view select_jobs, std::string_view union_open,
                                   std::string (*param)(int));

// A job's new value plus the event that explains the change, applied atomically.
struct JobUpdate {
  api::Job job;                                  // full new value (id must exist)
  api::JobEvent event;                           // appended to the event log (job_id/seq filled by the store)
  std::optional<api::JobState> expected_state;   // compare-and-set: fail with kFailedPrecondition if differs
  // Metering written in the same transaction as the state change that ends a run (exactly once:
  // a segment or ledger entry whose key already exists is skipped, not an error).
  std::vector<api::UsageSegment> usage;
  std::vector<api::LedgerEntry> ledger;
  // The audit row of the request that made this change, appended in the same transaction (seq,
  // prev_hash and hash are assigned by the store).
  std::optional<api::AuditRecord> audit;
};

// A new job and what is written with it, in the same transaction.
struct NewJob {
  api::Job job;
  api::JobEvent event;  // the submit event
  // The audit row of the submit (seq, prev_hash, hash assigned by the store; an empty target becomes
  // "job:<new id>").
  std::optional<api::AuditRecord> audit;
  // Idempotency: with a non-empty key, at most one job is ever created per (scope, key), kept for good.
  // The same scope and key again returns that job (existing = true) and writes nothing; with another
  // fingerprint (a different request) it fails with kFailedPrecondition.
  std::string idempotency_scope;  // e.g. the principal ("user:alice")
  std::string idempotency_key;
  std::string fingerprint;        // of the request (e.g. SHA-256 of the canonical job spec)
};

struct CreatedJob {
  api::Job job;                           // as stored now
  bool existing = false;                  // created earlier under the same idempotency key
  std::optional<api::AuditRecord> audit;  // the row appended (absent when none was, e.g. existing)
};

struct SubmitKey {
  std::string job_id;
  std::string fingerprint;
};

// Keys the audit chain: rows with seq >= keyed_from are hashed with HMAC-SHA256 under `key` (a secret
// kept outside the database), so that someone who can only write the database cannot rewrite history
// and recompute the chain. Older rows keep their plain SHA-256 hash (api::AuditHash); the first keyed
// row links to them, so they are covered too.
struct AuditChainKey {
  std::string key;           // raw bytes, not empty
  int64_t keyed_from = 1;    // first keyed seq
};
// The hash of `r` as the chain stores it: HMAC under `key` when r.seq >= key->keyed_from, else
// api::AuditHash(r). `key` null: api::AuditHash(r).
std::string AuditRowHash(const api::AuditRecord& r, const AuditChainKey* key);

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

// Counts of a histogram with fixed upper bounds (for /metrics).
struct HistogramCounts {
  std::vector<double> bounds;
  std::vector<uint64_t> cumulative;  // observations <= bounds[i]
  uint64_t count = 0;
  double sum = 0;
  void Observe(double value);
  static HistogramCounts Of(std::span<const double> bounds);
};
// Bounds of StoreStats' histograms.
inline constexpr double kCommitSecondsBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1};
inline constexpr double kGroupSizeBounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

struct StoreStats {
  int64_t writes = 0;          // write requests applied (committed or failed individually)
  int64_t commits = 0;         // transactions committed; writes / commits = average group size
  int64_t max_batch = 0;       // largest number of requests applied in one transaction
  int64_t last_audit_seq = 0;  // newest audit row appended through this instance (0 = none)
  // Stores that group commits (SQLite, PostgreSQL): how long each transaction took (fsync included) and how
  // many write requests it held. Empty bounds: not measured.
  HistogramCounts commit_seconds;
  HistogramCounts group_size;
};

class Store {
 public:
  virtual ~Store() = default;

  // Inserts a new job (state QUEUED) and its submit event. Assigns the id ("j-<n>", n increasing).
  // Returns only once the job is durable (fsync'd). Concurrent calls share commits (group commit).
  virtual Result<api::Job> CreateJob(api::Job job, const api::JobEvent& event) = 0;
  // CreateJob with its audit row and idempotency key in the same transaction (see NewJob). Durable on
  // return. The default supports neither and is for stores that hold no jobs.
  virtual Result<CreatedJob> SubmitJob(NewJob job);
  // A job array (api::JobSpec::array): `parent` and its `tasks` in one durable transaction, with consecutive ids
  // (the parent's number n, then n+1, n+2 ... for the tasks in order), each task's array_parent set to the parent's
  // id. Idempotency and audit as SubmitJob, for the parent (a replay returns it with existing = true and creates no
  // task). The default (stores of tests) creates them one by one.
  virtual Result<CreatedJob> SubmitJobGroup(NewJob parent, std::vector<NewJob> tasks);
  // The job created under an idempotency key, if any.
  virtual Result<std::optional<SubmitKey>> FindSubmitKey(const std::string& scope, const std::string& key);

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
  // `audit` not null: the audit row of the request that makes this change, appended in the same
  // transaction exactly as AppendAudit does (seq, prev_hash and hash assigned by the store, keyed chain
  // included), also when `writes` is empty. On success *audit holds the row as stored (seq and hash
  // filled); when the batch fails nothing is written, neither the records nor the row, and *audit is
  // left as it was.
  virtual Status WriteRecords(const std::vector<RecordWrite>& writes, api::AuditRecord* audit) = 0;
  // Without an audit row. Implementations add `using Store::WriteRecords;` so that this stays visible.
  Status WriteRecords(const std::vector<RecordWrite>& writes) { return WriteRecords(writes, nullptr); }
  virtual Result<std::optional<Record>> GetRecord(const std::string& kind, const std::string& key) = 0;
  // Records of `kind` whose key starts with `key_prefix`, ordered by key.
  virtual Result<std::vector<Record>> ListRecords(const std::string& kind, const std::string& key_prefix) = 0;

  // Audit log, append-only and hash-chained: the store assigns seq (1, 2, ...), prev_hash (hash of the
  // previous row, "" for the first) and hash (api::AuditHash) inside its write transaction, so
  // concurrent appends are chained in commit order. Durable on return.
  virtual Result<api::AuditRecord> AppendAudit(api::AuditRecord record) = 0;
  // Keys the chain from now on (call once at start, before any append). keyed_from = 0: from the next
  // row this store appends. Returns the first keyed seq.
  virtual Result<int64_t> SetAuditKey(const std::string& key, int64_t keyed_from);
  // The key set by SetAuditKey (nullopt: plain SHA-256 chain).
  virtual std::optional<AuditChainKey> AuditKey() const { return std::nullopt; }
  // Rows with seq > after_seq in seq order, at most `limit` (0 = all).
  virtual Result<std::vector<api::AuditRecord>> ListAudit(int64_t after_seq, int limit) = 0;

  // Metering and ledger outside job updates (credits, adjustments, recovery). Idempotent by key (the
  // first posting of a key wins; a later one with the same key is skipped whatever its content), atomic,
  // durable on return. Empty keys and negative amounts are rejected with kInvalidArgument.
  // `audit` not null: the request's audit row, appended in the same transaction as WriteRecords does
  // (also when every posting was skipped as already there, or none was given); untouched on failure.
  // `records`: record writes applied first in the same transaction, exactly as WriteRecords applies them
  // (validation, in order, compare-and-set); a failed version check fails the whole call with the same
  // code as WriteRecords, and then neither the records, the usage, the entries nor the row are written.
  // For a change that writes documents and ledger entries together (a prepaid plan with its credit, a new
  // project with its trial credit).
  virtual Status PostLedger(const std::vector<api::UsageSegment>& usage, const std::vector<api::LedgerEntry>& entries,
                            api::AuditRecord* audit, const std::vector<RecordWrite>& records) = 0;
  // Without record writes. Implementations add `using Store::PostLedger;` so that these stay visible.
  Status PostLedger(const std::vector<api::UsageSegment>& usage, const std::vector<api::LedgerEntry>& entries,
                    api::AuditRecord* audit) {
    return PostLedger(usage, entries, audit, {});
  }
  // Without an audit row or record writes.
  Status PostLedger(const std::vector<api::UsageSegment>& usage, const std::vector<api::LedgerEntry>& entries) {
    return PostLedger(usage, entries, nullptr, {});
  }
  // Ordered by start_ms, then key.
  virtual Result<std::vector<api::UsageSegment>> ListUsage(const UsageFilter& filter) = 0;
  // In seq order.
  virtual Result<std::vector<api::LedgerEntry>> ListLedger(const LedgerFilter& filter) = 0;

  virtual int SchemaVersion() = 0;

  // Leadership: exactly one `fastgpu server` schedules and writes a database. TryLead takes the lead when no
  // other process holds it, and answers its epoch; kFailedPrecondition naming the holder otherwise. From then
  // on every write transaction of this store checks that epoch, so that once another process has taken over,
  // this one's writes fail (kFailedPrecondition) instead of mixing with the new leader's. PostgreSQL: a
  // session advisory lock on a connection of its own and an epoch row; SQLite: an exclusive lock on
  // <database>.lead (one machine). `holder` says who leads, for the others' messages.
  // Default (stores of one process, e.g. test fakes): granted.
  virtual Result<int64_t> TryLead(const std::string& holder, int64_t now_ms) {
    (void)holder;
    (void)now_ms;
    return int64_t{1};
  }
  // Ok while the lead holds (PostgreSQL: the session holding the lock is alive). Ok when not leading.
  virtual Status CheckLead() { return Status::Ok(); }

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

// Opens (creating if needed) a SQLite store at `path`, running schema migrations. The database file and
// its -wal/-shm files are readable and writable by their owner only (0600).
// Fails with kFailedPrecondition when the database was written by a newer fastgpu.
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);
Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const SqliteOptions& options);

// Highest schema version this binary knows how to read and migrate to.
int SqliteLatestSchemaVersion();

}  // namespace fastgpu::store
