// SQLite implementation of the Store.
//
// Durability: WAL journal with synchronous=FULL, so a commit is on disk when COMMIT returns.
// Throughput: all writes go through one writer thread that groups every queued request into one
// transaction (group commit: one fsync for many requests). Each request runs inside its own
// SAVEPOINT, so a failing request (e.g. a compare-and-set mismatch) fails alone.
// Reads use a pool of separate connections; WAL lets them run concurrently with the writer.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "api/accounts.h"
#include "api/json.h"
#include "common/clock.h"
#include "store/store.h"

namespace fastgpu::store {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Schema migrations. Append new steps; never edit a step that has shipped.

struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE jobs (
  num                  INTEGER PRIMARY KEY AUTOINCREMENT,  -- job id is "j-<num>"; never reused
  state                TEXT    NOT NULL,
  name                 TEXT    NOT NULL,
  command              TEXT    NOT NULL,                   -- JSON array of strings
  gpus_milli           INTEGER NOT NULL,
  gpu_type             TEXT    NOT NULL,
  memory_mib           INTEGER NOT NULL,
  runtime_limit_s      INTEGER NOT NULL,
  priority             INTEGER NOT NULL,
  env                  TEXT    NOT NULL,                   -- JSON object of strings
  workdir              TEXT    NOT NULL,
  project              TEXT    NOT NULL,
  max_retries          INTEGER NOT NULL,
  user_name            TEXT    NOT NULL,
  assigned_gpus        TEXT    NOT NULL,                   -- JSON array of GPU UUIDs
  assigned_gpu_indices TEXT    NOT NULL,                   -- JSON array of integers
  node                 TEXT    NOT NULL,
  created_at           INTEGER NOT NULL,                   -- Unix milliseconds
  started_at           INTEGER NOT NULL,
  finished_at          INTEGER NOT NULL,
  exit_code            INTEGER,
  term_signal          INTEGER,
  reason               TEXT    NOT NULL,
  attempt              INTEGER NOT NULL,
  pid                  INTEGER NOT NULL
);
CREATE INDEX jobs_by_state   ON jobs(state, num);
CREATE INDEX jobs_by_project ON jobs(project, num);
CREATE INDEX jobs_by_project_state ON jobs(project, state, num);

CREATE TABLE job_events (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  job_num    INTEGER NOT NULL REFERENCES jobs(num),
  at         INTEGER NOT NULL,
  from_state TEXT    NOT NULL,
  to_state   TEXT    NOT NULL,
  reason     TEXT    NOT NULL,
  actor      TEXT    NOT NULL
);
CREATE INDEX job_events_by_job ON job_events(job_num, seq);
CREATE TRIGGER job_events_no_update BEFORE UPDATE ON job_events
  BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;
CREATE TRIGGER job_events_no_delete BEFORE DELETE ON job_events
  BEGIN SELECT RAISE(ABORT, 'job_events is append-only'); END;

CREATE TABLE nodes (
  name TEXT PRIMARY KEY,
  data TEXT NOT NULL                                       -- JSON (api::Node)
);
CREATE TABLE gpus (
  uuid TEXT PRIMARY KEY,
  node TEXT NOT NULL REFERENCES nodes(name) ON DELETE CASCADE,
  idx  INTEGER NOT NULL,
  data TEXT NOT NULL                                       -- JSON (api::Gpu)
);
CREATE INDEX gpus_by_node ON gpus(node, idx);

CREATE TABLE settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql"},
    {2, R"sql(
CREATE TABLE records (
  kind    TEXT    NOT NULL,                                -- "user", "project", "token", ...
  key     TEXT    NOT NULL,
  value   TEXT    NOT NULL,                                -- opaque to the store (JSON)
  version INTEGER NOT NULL,                                -- 1 on create, +1 on every update
  PRIMARY KEY (kind, key)
) WITHOUT ROWID;

CREATE TABLE audit (
  seq       INTEGER PRIMARY KEY,                           -- 1, 2, ... assigned by the store
  at        INTEGER NOT NULL,                              -- Unix milliseconds
  actor     TEXT    NOT NULL,
  source    TEXT    NOT NULL,
  action    TEXT    NOT NULL,
  target    TEXT    NOT NULL,
  result    TEXT    NOT NULL,
  detail    TEXT    NOT NULL,
  prev_hash TEXT    NOT NULL,                              -- hash of row seq-1 ("" for the first)
  hash      TEXT    NOT NULL                               -- api::AuditHash of this row
);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;

CREATE TABLE usage (
  key       TEXT    PRIMARY KEY,                           -- "<job_id>/<attempt>": written once
  job_id    TEXT    NOT NULL,
  attempt   INTEGER NOT NULL,
  project   TEXT    NOT NULL,
  user_name TEXT    NOT NULL,
  gpu_type  TEXT    NOT NULL,
  milli     INTEGER NOT NULL,
  gpus      TEXT    NOT NULL,                              -- JSON array of GPU UUIDs
  start_ms  INTEGER NOT NULL,
  end_ms    INTEGER NOT NULL
);
CREATE INDEX usage_by_project ON usage(project, end_ms);
CREATE INDEX usage_by_job     ON usage(job_id);
CREATE INDEX usage_by_end     ON usage(end_ms);
CREATE TRIGGER usage_no_update BEFORE UPDATE ON usage
  BEGIN SELECT RAISE(ABORT, 'usage is append-only'); END;
CREATE TRIGGER usage_no_delete BEFORE DELETE ON usage
  BEGIN SELECT RAISE(ABORT, 'usage is append-only'); END;

CREATE TABLE ledger (
  seq              INTEGER PRIMARY KEY AUTOINCREMENT,      -- posting order; never reused
  key              TEXT    NOT NULL UNIQUE,                -- idempotency key
  at               INTEGER NOT NULL,
  project          TEXT    NOT NULL,
  kind             TEXT    NOT NULL,
  debit            TEXT    NOT NULL,
  credit           TEXT    NOT NULL,
  amount_micro     INTEGER NOT NULL,                       -- micro-USD, >= 0
  month            TEXT    NOT NULL,                       -- "2026-11"
  job_id           TEXT    NOT NULL,
  gpu_type         TEXT    NOT NULL,
  seconds          INTEGER NOT NULL,
  milli            INTEGER NOT NULL,
  unit_price_micro INTEGER NOT NULL,
  gross_micro      INTEGER NOT NULL,
  discount_micro   INTEGER NOT NULL,
  expires_at       INTEGER NOT NULL,
  memo             TEXT    NOT NULL,
  actor            TEXT    NOT NULL
);
CREATE INDEX ledger_by_month         ON ledger(month, seq);
CREATE INDEX ledger_by_project_month ON ledger(project, month, seq);
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
  BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
  BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
)sql"},
    {3, R"sql(
CREATE TABLE submit_keys (
  scope       TEXT    NOT NULL,                            -- who submitted ("user:alice", "sa:...")
  key         TEXT    NOT NULL,                            -- the client's Idempotency-Key
  fingerprint TEXT    NOT NULL,                            -- of the request: same key + other request = refused
  job_num     INTEGER NOT NULL REFERENCES jobs(num),
  PRIMARY KEY (scope, key)
) WITHOUT ROWID;
)sql"},
    {4, R"sql(
-- The nodes of a multi-node (gang) job: JSON array of api::JobMember ("[]" for a job on one node).
ALTER TABLE jobs ADD COLUMN members TEXT NOT NULL DEFAULT '[]';
)sql"},
    {5, R"sql(
-- How many processes a job runs per node: 'per-node' or 'per-gpu' (api::ProcessLayoutName).
ALTER TABLE jobs ADD COLUMN processes TEXT NOT NULL DEFAULT 'per-node';
)sql"},
    {6, R"sql(
-- A job's dependencies (api::EncodeJobExtras): '{}' or {"after":[...],"after_ok":[...]}.
ALTER TABLE jobs ADD COLUMN depends TEXT NOT NULL DEFAULT '{}';
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

// ---------------------------------------------------------------------------------------------
// Thin RAII layer over the C API.

Status SqliteError(sqlite3* db, int rc, std::string_view what) {
  std::string detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string msg = std::string(what) + ": " + detail;
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable("database is locked (" + msg +
                         "); another fastgpu process may be using the same data directory");
    case SQLITE_FULL:
      return ResourceExhausted("disk is full (" + msg + "); free space in the data directory");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      return Unavailable("cannot write the database (" + msg +
                         "); check that the data directory exists and is writable");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Internal("database file is damaged (" + msg + "); restore it from a backup");
    default:
      return Internal("database error (" + msg + ")");
  }
}

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// A borrowed, cached prepared statement; reset (and unbound) when it goes out of scope.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(std::exchange(o.s_, nullptr)) {}
  ~Stmt() {
    if (s_ != nullptr) {
      sqlite3_reset(s_);
      sqlite3_clear_bindings(s_);
    }
  }

  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Bind(int i, const std::optional<int>& v) {
    if (v) {
      sqlite3_bind_int64(s_, i, *v);
    } else {
      sqlite3_bind_null(s_, i);
    }
  }
  void BindNull(int i) { sqlite3_bind_null(s_, i); }

  // true: a row is available; false: done.
  Result<bool> Step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(db_, rc, "executing statement");
  }
  Status Run() {
    Result<bool> r = Step();
    if (!r.ok()) return r.status();
    return Status::Ok();
  }

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string_view Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    if (p == nullptr) return {};
    return {p, static_cast<size_t>(sqlite3_column_bytes(s_, col))};
  }
  std::optional<int> OptInt(int col) const {
    if (IsNull(col)) return std::nullopt;
    return static_cast<int>(Int(col));
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* s_;
};

// One connection and its prepared-statement cache. Used by one thread at a time.
class Conn {
 public:
  static Result<std::unique_ptr<Conn>> Open(const std::string& path, bool writer, int busy_timeout_ms) {
    auto conn = OpenUnlabelled(path, writer, busy_timeout_ms);
    if (!conn.ok() && conn.status().message().find(path) == std::string::npos) {
      return Status(conn.status().code(), "database " + path + ": " + conn.status().message());
    }
    return conn;
  }

  static Result<std::unique_ptr<Conn>> OpenUnlabelled(const std::string& path, bool writer, int busy_timeout_ms) {
    sqlite3* raw = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (writer ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) return SqliteError(db.get(), rc, "opening " + path);
    sqlite3_extended_result_codes(db.get(), 1);
    auto conn = std::make_unique<Conn>(std::move(db));
    RETURN_IF_ERROR(conn->Exec("PRAGMA busy_timeout = " + std::to_string(busy_timeout_ms)));
    RETURN_IF_ERROR(conn->Exec("PRAGMA foreign_keys = ON"));
    if (writer) {
      ASSIGN_OR_RETURN(std::string mode, conn->QueryText("PRAGMA journal_mode = WAL"));
      if (mode != "wal")
        return Unavailable("cannot enable write-ahead logging on " + path + " (journal mode is '" + mode +
                           "'); the data directory must be on a local file system");
      RETURN_IF_ERROR(conn->Exec("PRAGMA synchronous = FULL"));
      RETURN_IF_ERROR(conn->Exec("PRAGMA journal_size_limit = 67108864"));
    } else {
      RETURN_IF_ERROR(conn->Exec("PRAGMA query_only = ON"));
    }
    return conn;
  }

  explicit Conn(DbPtr db) : db_(std::move(db)) {}

  sqlite3* db() const { return db_.get(); }

  Status Exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      Status st = SqliteError(nullptr, rc, "running '" + sql.substr(0, 40) + "'");
      return Status(st.code(), st.message() + ": " + msg);
    }
    return Status::Ok();
  }

  // Single statement through the statement cache (for hot paths such as SAVEPOINT/RELEASE).
  Status ExecCached(std::string_view sql) {
    ASSIGN_OR_RETURN(Stmt s, Prepare(sql));
    return s.Run();
  }

  Result<std::string> QueryText(std::string_view sql) {
    ASSIGN_OR_RETURN(Stmt s, Prepare(sql));
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Internal("query returned no row: " + std::string(sql));
    return std::string(s.Text(0));
  }

  Result<int64_t> QueryInt(std::string_view sql) {
    ASSIGN_OR_RETURN(Stmt s, Prepare(sql));
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) return Internal("query returned no row: " + std::string(sql));
    return s.Int(0);
  }

  Result<Stmt> Prepare(std::string_view sql) {
    auto it = cache_.find(sql);
    if (it == cache_.end()) {
      sqlite3_stmt* raw = nullptr;
      int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                  &raw, nullptr);
      StmtPtr stmt(raw);
      if (rc != SQLITE_OK) return SqliteError(db_.get(), rc, "preparing statement");
      it = cache_.emplace(std::string(sql), std::move(stmt)).first;
    }
    return Stmt(db_.get(), it->second.get());
  }

 private:
  // Members are destroyed in reverse order: statements are finalized before the connection closes.
  DbPtr db_;
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, StmtPtr, SqlHash, std::equal_to<>> cache_;
};

// ---------------------------------------------------------------------------------------------
// Row codecs.

#define FASTGPU_JOB_COLUMNS                                                                                  \
  "num, state, name, command, gpus_milli, gpu_type, memory_mib, runtime_limit_s, priority, env, workdir, "  \
  "project, max_retries, user_name, assigned_gpus, assigned_gpu_indices, node, created_at, started_at, "   \
  "finished_at, exit_code, term_signal, reason, attempt, pid"

// members (column 25), processes (26) and depends (27) are read after the others; a new job has no members (the
// column's default). processes is ?27 and depends ?28 of both the insert and the update (BindJob).
constexpr std::string_view kSelectJobs = "SELECT " FASTGPU_JOB_COLUMNS ", members, processes, depends FROM jobs";
constexpr std::string_view kSelectJobByNum =
    "SELECT " FASTGPU_JOB_COLUMNS ", members, processes, depends FROM jobs WHERE num = ?1";
constexpr std::string_view kInsertJob =
    "INSERT INTO jobs(" FASTGPU_JOB_COLUMNS
    ", processes, depends) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
    "?19, ?20, ?21, ?22, ?23, ?24, ?25, ?27, ?28)";
#undef FASTGPU_JOB_COLUMNS
constexpr std::string_view kUpdateJob =
    "UPDATE jobs SET state = ?2, name = ?3, command = ?4, gpus_milli = ?5, gpu_type = ?6, memory_mib = ?7, "
    "runtime_limit_s = ?8, priority = ?9, env = ?10, workdir = ?11, project = ?12, max_retries = ?13, "
    "user_name = ?14, assigned_gpus = ?15, assigned_gpu_indices = ?16, node = ?17, created_at = ?18, "
    "started_at = ?19, finished_at = ?20, exit_code = ?21, term_signal = ?22, reason = ?23, attempt = ?24, "
    "pid = ?25, members = ?26, processes = ?27, depends = ?28 WHERE num = ?1";

std::string JobId(int64_t num) { return "j-" + std::to_string(num); }

// "j-42" -> 42; nullopt for anything that is not a job id this store could have issued.
std::optional<int64_t> ParseJobNum(std::string_view id) {
  if (id.size() < 3 || id.substr(0, 2) != "j-" || id[2] == '0') return std::nullopt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(id.data() + 2, id.data() + id.size(), n);
  if (ec != std::errc() || ptr != id.data() + id.size() || n <= 0) return std::nullopt;
  return n;
}

Status JobNotFound(std::string_view id) { return NotFound("job " + std::string(id) + " does not exist"); }

std::string EncodeStrings(const std::vector<std::string>& v) { return v.empty() ? "[]" : json(v).dump(); }
std::string EncodeInts(const std::vector<int>& v) { return v.empty() ? "[]" : json(v).dump(); }
std::string EncodeMap(const std::map<std::string, std::string>& m) { return m.empty() ? "{}" : json(m).dump(); }

template <typename T>
T DecodeJson(std::string_view text) {
  if (text == "[]" || text == "{}") return T{};
  return json::parse(text).get<T>();
}

// A job with its list/map fields already encoded, so the writer thread only binds values.
struct JobRow {
  explicit JobRow(api::Job j)
      : job(std::move(j)),
        command(EncodeStrings(job.spec.command)),
        env(EncodeMap(job.spec.env)),
        assigned_gpus(EncodeStrings(job.assigned_gpus)),
        assigned_gpu_indices(EncodeInts(job.assigned_gpu_indices)),
        members(job.members.empty() ? "[]" : api::ToJson(job.members).dump()) {}
  api::Job job;
  std::string command;
  std::string env;
  std::string assigned_gpus;
  std::string assigned_gpu_indices;
  std::string members;
};

// Binds parameters ?2..?25 and ?27 (every column but num and members) of kInsertJob / kUpdateJob.
void BindJob(Stmt& s, const JobRow& row) {
  const api::Job& j = row.job;
  s.Bind(2, api::JobStateName(j.state));
  s.Bind(3, j.spec.name);
  s.Bind(4, row.command);
  s.Bind(5, j.spec.gpus_milli);
  s.Bind(6, j.spec.gpu_type);
  s.Bind(7, j.spec.memory_mib);
  s.Bind(8, j.spec.runtime_limit_s);
  s.Bind(9, int64_t{j.spec.priority});
  s.Bind(10, row.env);
  s.Bind(11, j.spec.workdir);
  s.Bind(12, j.spec.project);
  s.Bind(13, int64_t{j.spec.max_retries});
  s.Bind(14, j.user);
  s.Bind(15, row.assigned_gpus);
  s.Bind(16, row.assigned_gpu_indices);
  s.Bind(17, j.node);
  s.Bind(18, j.created_at);
  s.Bind(19, j.started_at);
  s.Bind(20, j.finished_at);
  s.Bind(21, j.exit_code);
  s.Bind(22, j.signal);
  s.Bind(23, j.reason);
  s.Bind(24, int64_t{j.attempt});
  s.Bind(25, j.pid);
  s.Bind(27, api::ProcessLayoutName(j.spec.processes));
  s.Bind(28, api::EncodeJobExtras(j));
}

Result<api::Job> ReadJob(const Stmt& s) {
  api::Job j;
  int64_t num = s.Int(0);
  j.id = JobId(num);
  auto state = api::ParseJobState(s.Text(1));
  if (!state.ok()) return Internal("job " + j.id + " has a damaged row: " + state.status().message());
  j.state = *state;
  try {
    j.spec.name = s.Text(2);
    j.spec.command = DecodeJson<std::vector<std::string>>(s.Text(3));
    j.spec.gpus_milli = s.Int(4);
    j.spec.gpu_type = s.Text(5);
    j.spec.memory_mib = s.Int(6);
    j.spec.runtime_limit_s = s.Int(7);
    j.spec.priority = static_cast<int>(s.Int(8));
    j.spec.env = DecodeJson<std::map<std::string, std::string>>(s.Text(9));
    j.spec.workdir = s.Text(10);
    j.spec.project = s.Text(11);
    j.spec.max_retries = static_cast<int>(s.Int(12));
    j.user = s.Text(13);
    j.assigned_gpus = DecodeJson<std::vector<std::string>>(s.Text(14));
    j.assigned_gpu_indices = DecodeJson<std::vector<int>>(s.Text(15));
  } catch (const std::exception& e) {
    return Internal("job " + j.id + " has a damaged row: " + e.what());
  }
  j.node = s.Text(16);
  j.created_at = s.Int(17);
  j.started_at = s.Int(18);
  j.finished_at = s.Int(19);
  j.exit_code = s.OptInt(20);
  j.signal = s.OptInt(21);
  j.reason = s.Text(22);
  j.attempt = static_cast<int>(s.Int(23));
  j.pid = s.Int(24);
  if (std::string_view members = s.Text(25); members != "[]") {
    auto parsed = api::ParseJson(members, "stored job members");
    if (!parsed.ok()) return Internal("job " + j.id + " has a damaged row: " + parsed.status().message());
    auto m = api::JobMembersFromJson(*parsed);
    if (!m.ok()) return Internal("job " + j.id + " has a damaged row: " + m.status().message());
    j.members = std::move(m).value();
  }
  auto processes = api::ParseProcessLayout(s.Text(26));
  if (!processes.ok()) return Internal("job " + j.id + " has a damaged row: " + processes.status().message());
  j.spec.processes = *processes;
  if (Status deps = api::DecodeJobExtras(s.Text(27), &j); !deps.ok())
    return Internal("job " + j.id + " has a damaged row: " + deps.message());
  return j;
}

Status InsertEvent(Conn& c, int64_t job_num, const api::JobEvent& e, std::string_view from, std::string_view to) {
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO job_events(job_num, at, from_state, to_state, reason, actor) "
                                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
  s.Bind(1, job_num);
  s.Bind(2, e.at);
  s.Bind(3, from);
  s.Bind(4, to);
  s.Bind(5, e.reason);
  s.Bind(6, e.actor);
  return s.Run();
}

// ---------------------------------------------------------------------------------------------
// Records, audit rows, usage segments and ledger entries.

std::string RecordName(std::string_view kind, std::string_view key) {
  return "record " + std::string(kind) + " '" + std::string(key) + "'";
}

Status ValidateRecordWrite(const RecordWrite& w) {
  if (w.kind.empty()) return InvalidArgument("record kind must not be empty (key '" + w.key + "')");
  if (w.key.empty()) return InvalidArgument("record key must not be empty (kind " + w.kind + ")");
  if (w.expected_version && *w.expected_version < 0) {
    return InvalidArgument(RecordName(w.kind, w.key) + ": expected version must not be negative, got " +
                           std::to_string(*w.expected_version));
  }
  return Status::Ok();
}

// Applies one write of a WriteRecords batch; the caller's savepoint undoes earlier writes on failure.
Status ApplyRecordWrite(Conn& c, const RecordWrite& w) {
  std::optional<int64_t> current;
  {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT version FROM records WHERE kind = ?1 AND key = ?2"));
    s.Bind(1, w.kind);
    s.Bind(2, w.key);
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (row) current = s.Int(0);
  }
  if (w.expected_version) {
    const int64_t want = *w.expected_version;
    if (!current) {
      if (w.erase) return NotFound(RecordName(w.kind, w.key) + " does not exist");
      if (want != 0) {
        return FailedPrecondition(RecordName(w.kind, w.key) + " does not exist, expected version " +
                                  std::to_string(want) + " (it was deleted concurrently; reload it and retry)");
      }
    } else if (want == 0) {
      return AlreadyExists(RecordName(w.kind, w.key) + " already exists");
    } else if (*current != want) {
      return FailedPrecondition(RecordName(w.kind, w.key) + " is at version " + std::to_string(*current) +
                                ", not " + std::to_string(want) + " (it changed concurrently; reload it and retry)");
    }
  }
  if (w.erase) {
    if (!current) return Status::Ok();  // deleting what is not there (without a version check) is a no-op
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM records WHERE kind = ?1 AND key = ?2"));
    s.Bind(1, w.kind);
    s.Bind(2, w.key);
    return s.Run();
  }
  if (current) {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("UPDATE records SET value = ?3, version = version + 1 "
                                       "WHERE kind = ?1 AND key = ?2"));
    s.Bind(1, w.kind);
    s.Bind(2, w.key);
    s.Bind(3, w.value);
    return s.Run();
  }
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO records(kind, key, value, version) VALUES(?1, ?2, ?3, 1)"));
  s.Bind(1, w.kind);
  s.Bind(2, w.key);
  s.Bind(3, w.value);
  return s.Run();
}

// The smallest string above every string that starts with `prefix` (byte order), or nullopt when there is
// none (empty prefix, or only 0xff bytes).
std::optional<std::string> PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto last = static_cast<unsigned char>(prefix.back());
    if (last != 0xff) {
      prefix.back() = static_cast<char>(last + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::nullopt;
}

// Chains `r` to the newest audit row (seq, prev_hash, hash) and inserts it. Runs on the writer, so
// appends are chained in commit order (BEGIN IMMEDIATE also serializes other processes on the file).
// `key`: the chain's key (null: plain SHA-256).
Status AppendAuditRow(Conn& c, api::AuditRecord& r, const AuditChainKey* key) {
  {
    ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"));
    ASSIGN_OR_RETURN(bool row, s.Step());
    r.seq = row ? s.Int(0) + 1 : 1;
    r.prev_hash = row ? std::string(s.Text(1)) : std::string();
  }
  r.hash = AuditRowHash(r, key);
  ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO audit(seq, at, actor, source, action, target, result, detail, "
                                     "prev_hash, hash) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  s.Bind(1, r.seq);
  s.Bind(2, r.at);
  s.Bind(3, r.actor);
  s.Bind(4, r.source);
  s.Bind(5, r.action);
  s.Bind(6, r.target);
  s.Bind(7, r.result);
  s.Bind(8, r.detail);
  s.Bind(9, r.prev_hash);
  s.Bind(10, r.hash);
  return s.Run();
}

Status ValidateMetering(const std::vector<api::UsageSegment>& usage, const std::vector<api::LedgerEntry>& entries) {
  for (const api::UsageSegment& u : usage) {
    if (u.key.empty()) return InvalidArgument("usage segment of job '" + u.job_id + "' has an empty key");
  }
  for (const api::LedgerEntry& e : entries) {
    if (e.key.empty()) return InvalidArgument("ledger entry of kind '" + e.kind + "' has an empty key");
    if (e.amount_micro < 0) {
      return InvalidArgument("ledger entry " + e.key + " has a negative amount (" + std::to_string(e.amount_micro) +
                             " micro-USD); post the opposite direction instead");
    }
  }
  return Status::Ok();
}

// Usage GPU lists encoded before the request reaches the writer thread.
std::vector<std::string> EncodeUsageGpus(const std::vector<api::UsageSegment>& usage) {
  std::vector<std::string> out;
  out.reserve(usage.size());
  for (const api::UsageSegment& u : usage) out.push_back(EncodeStrings(u.gpus));
  return out;
}

#define FASTGPU_USAGE_COLUMNS "key, job_id, attempt, project, user_name, gpu_type, milli, gpus, start_ms, end_ms"
constexpr std::string_view kInsertUsage = "INSERT INTO usage(" FASTGPU_USAGE_COLUMNS
                                          ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                                          "ON CONFLICT(key) DO NOTHING";
constexpr std::string_view kSelectUsage = "SELECT " FASTGPU_USAGE_COLUMNS " FROM usage";
#undef FASTGPU_USAGE_COLUMNS

#define FASTGPU_LEDGER_COLUMNS                                                                              \
  "key, at, project, kind, debit, credit, amount_micro, month, job_id, gpu_type, seconds, milli, "         \
  "unit_price_micro, gross_micro, discount_micro, expires_at, memo, actor"
constexpr std::string_view kInsertLedger =
    "INSERT INTO ledger(" FASTGPU_LEDGER_COLUMNS
    ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
constexpr std::string_view kSelectLedger = "SELECT seq, " FASTGPU_LEDGER_COLUMNS " FROM ledger";
#undef FASTGPU_LEDGER_COLUMNS

// Inserts usage segments and ledger entries; any whose key is already there is skipped (exactly once).
Status InsertMetering(Conn& c, const std::vector<api::UsageSegment>& usage, const std::vector<std::string>& gpus,
                      const std::vector<api::LedgerEntry>& entries) {
  for (size_t i = 0; i < usage.size(); ++i) {
    const api::UsageSegment& u = usage[i];
    ASSIGN_OR_RETURN(Stmt s, c.Prepare(kInsertUsage));
    s.Bind(1, u.key);
    s.Bind(2, u.job_id);
    s.Bind(3, int64_t{u.attempt});
    s.Bind(4, u.project);
    s.Bind(5, u.user);
    s.Bind(6, u.gpu_type);
    s.Bind(7, u.milli);
    s.Bind(8, gpus[i]);
    s.Bind(9, u.start_ms);
    s.Bind(10, u.end_ms);
    RETURN_IF_ERROR(s.Run());
  }
  for (const api::LedgerEntry& e : entries) {
    {
      // Checked first rather than INSERT ... ON CONFLICT DO NOTHING, which would use up a seq number and leave
      // a gap for every skipped duplicate.
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT 1 FROM ledger WHERE key = ?1"));
      s.Bind(1, e.key);
      ASSIGN_OR_RETURN(bool exists, s.Step());
      if (exists) continue;
    }
    ASSIGN_OR_RETURN(Stmt s, c.Prepare(kInsertLedger));
    s.Bind(1, e.key);
    s.Bind(2, e.at);
    s.Bind(3, e.project);
    s.Bind(4, e.kind);
    s.Bind(5, e.debit);
    s.Bind(6, e.credit);
    s.Bind(7, e.amount_micro);
    s.Bind(8, e.month);
    s.Bind(9, e.job_id);
    s.Bind(10, e.gpu_type);
    s.Bind(11, e.seconds);
    s.Bind(12, e.milli);
    s.Bind(13, e.unit_price_micro);
    s.Bind(14, e.gross_micro);
    s.Bind(15, e.discount_micro);
    s.Bind(16, e.expires_at);
    s.Bind(17, e.memo);
    s.Bind(18, e.actor);
    RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

Result<api::UsageSegment> ReadUsage(const Stmt& s) {
  api::UsageSegment u;
  u.key = s.Text(0);
  u.job_id = s.Text(1);
  u.attempt = static_cast<int>(s.Int(2));
  u.project = s.Text(3);
  u.user = s.Text(4);
  u.gpu_type = s.Text(5);
  u.milli = s.Int(6);
  try {
    u.gpus = DecodeJson<std::vector<std::string>>(s.Text(7));
  } catch (const std::exception& e) {
    return Internal("usage segment " + u.key + " has a damaged row: " + e.what());
  }
  u.start_ms = s.Int(8);
  u.end_ms = s.Int(9);
  return u;
}

api::LedgerEntry ReadLedger(const Stmt& s) {
  api::LedgerEntry e;
  e.seq = s.Int(0);
  e.key = s.Text(1);
  e.at = s.Int(2);
  e.project = s.Text(3);
  e.kind = s.Text(4);
  e.debit = s.Text(5);
  e.credit = s.Text(6);
  e.amount_micro = s.Int(7);
  e.month = s.Text(8);
  e.job_id = s.Text(9);
  e.gpu_type = s.Text(10);
  e.seconds = s.Int(11);
  e.milli = s.Int(12);
  e.unit_price_micro = s.Int(13);
  e.gross_micro = s.Int(14);
  e.discount_micro = s.Int(15);
  e.expires_at = s.Int(16);
  e.memo = s.Text(17);
  e.actor = s.Text(18);
  return e;
}

// ---------------------------------------------------------------------------------------------
// Migrations.

Status Migrate(Conn& c, const std::string& path, int& version_out) {
  ASSIGN_OR_RETURN(int64_t current, c.QueryInt("PRAGMA user_version"));
  if (current > kLatestVersion) {
    return FailedPrecondition("database " + path + " has schema version " + std::to_string(current) +
                              ", which is newer than this fastgpu supports (up to version " + std::to_string(kLatestVersion) +
                              "); upgrade fastgpu (or restore a backup made by this version)");
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= current) continue;
    RETURN_IF_ERROR(c.ExecCached("BEGIN IMMEDIATE"));
    // Re-check under the write lock: another process may have migrated meanwhile.
    auto now = c.QueryInt("PRAGMA user_version");
    Status st = now.ok() ? Status::Ok() : now.status();
    if (st.ok() && *now < m.version) {
      st = c.Exec(m.sql);
      if (st.ok()) st = c.Exec("PRAGMA user_version = " + std::to_string(m.version));
    }
    if (st.ok()) st = c.ExecCached("COMMIT");
    if (!st.ok()) {
      (void)c.Exec("ROLLBACK");
      return Status(st.code(), "migrating database " + path + " to schema version " + std::to_string(m.version) +
                                   " failed: " + st.message());
    }
    current = m.version;
  }
  version_out = static_cast<int>(current);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

class SqliteStore final : public Store {
 public:
  SqliteStore(std::string path, SqliteOptions options, std::unique_ptr<Conn> writer, int version)
      : path_(std::move(path)), options_(options), writer_conn_(std::move(writer)), version_(version) {
    writer_thread_ = std::thread([this] { WriterLoop(); });
  }

  ~SqliteStore() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    writer_cv_.notify_one();
    writer_thread_.join();
    if (lead_fd_ >= 0) ::close(lead_fd_);
  }

  // One machine: an exclusive lock on <database>.lead, released by the kernel when the process ends. The
  // epoch is not needed (no other process can write while the lock is held).
  Result<int64_t> TryLead(const std::string& holder, int64_t now_ms) override {
    (void)now_ms;
    std::lock_guard lock(lead_mu_);
    if (lead_fd_ >= 0 || path_ == ":memory:" || path_.empty()) return int64_t{1};
    const std::string lead = path_ + ".lead";
    int fd = ::open(lead.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Internal("cannot open " + lead + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      char buf[256] = {};
      ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
      ::close(fd);
      std::string who = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
      while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
      return FailedPrecondition("another fastgpu server uses the database " + path_ + (who.empty() ? "" : " (" + who + ")"));
    }
    if (::ftruncate(fd, 0) == 0) (void)::pwrite(fd, (holder + "\n").data(), holder.size() + 1, 0);
    lead_fd_ = fd;
    return int64_t{1};
  }

  Result<api::Job> CreateJob(api::Job job, const api::JobEvent& event) override {
    ASSIGN_OR_RETURN(CreatedJob created, SubmitJob(NewJob{.job = std::move(job), .event = event}));
    return std::move(created.job);
  }

  Result<CreatedJob> SubmitJob(NewJob n) override {
    n.job.state = api::JobState::kQueued;
    n.job.id.clear();
    JobRow row(std::move(n.job));
    CreatedJob out;
    const bool keyed = !n.idempotency_key.empty();
    Status st = Write([&](Conn& c) -> Status {
      if (keyed) {
        std::optional<int64_t> earlier;
        {
          ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT job_num, fingerprint FROM submit_keys WHERE scope = ?1 AND key = ?2"));
          s.Bind(1, n.idempotency_scope);
          s.Bind(2, n.idempotency_key);
          ASSIGN_OR_RETURN(bool found, s.Step());
          if (found) {
            if (s.Text(1) != n.fingerprint) {
              return FailedPrecondition("Idempotency-Key '" + n.idempotency_key + "' was already used for another "
                                        "request (job " + JobId(s.Int(0)) + "); send a new key for a new job");
            }
            earlier = s.Int(0);
          }
        }
        if (earlier) {
          ASSIGN_OR_RETURN(Stmt s, c.Prepare(kSelectJobByNum));
          s.Bind(1, *earlier);
          ASSIGN_OR_RETURN(bool found, s.Step());
          if (!found) return Internal("job " + JobId(*earlier) + " of Idempotency-Key '" + n.idempotency_key + "' is missing");
          ASSIGN_OR_RETURN(out.job, ReadJob(s));
          out.existing = true;
          return Status::Ok();
        }
      }
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(kInsertJob));
      s.BindNull(1);
      BindJob(s, row);
      RETURN_IF_ERROR(s.Run());
      const int64_t num = sqlite3_last_insert_rowid(c.db());
      RETURN_IF_ERROR(InsertEvent(c, num, n.event, "", api::JobStateName(api::JobState::kQueued)));
      if (keyed) {
        ASSIGN_OR_RETURN(Stmt k, c.Prepare("INSERT INTO submit_keys(scope, key, fingerprint, job_num) VALUES(?1, ?2, ?3, ?4)"));
        k.Bind(1, n.idempotency_scope);
        k.Bind(2, n.idempotency_key);
        k.Bind(3, n.fingerprint);
        k.Bind(4, num);
        RETURN_IF_ERROR(k.Run());
      }
      if (n.audit) {
        if (n.audit->target.empty()) n.audit->target = "job:" + JobId(num);
        std::optional<AuditChainKey> key = CurrentAuditKey();
        RETURN_IF_ERROR(AppendAuditRow(c, *n.audit, key ? &*key : nullptr));
      }
      row.job.id = JobId(num);
      out.job = row.job;
      return Status::Ok();
    });
    if (!st.ok()) return st;
    if (!out.existing && n.audit) {
      NoteAudit(n.audit->seq);
      out.audit = std::move(n.audit);
    }
    return out;
  }

  Result<CreatedJob> SubmitJobGroup(NewJob parent, std::vector<NewJob> tasks) override {
    if (!parent.idempotency_key.empty()) {
      // A replay returns the array job and creates nothing.
      ASSIGN_OR_RETURN(auto earlier, FindSubmitKey(parent.idempotency_scope, parent.idempotency_key));
      if (earlier) return SubmitJob(std::move(parent));
    }
    parent.job.state = api::JobState::kQueued;
    parent.job.id.clear();
    CreatedJob out;
    Status st = Write([&](Conn& c) -> Status {
      int64_t num = 0;
      {
        // Its own scope: the statement (cached per connection) is reset before the tasks bind it again.
        JobRow prow(parent.job);
        ASSIGN_OR_RETURN(Stmt s, c.Prepare(kInsertJob));
        s.BindNull(1);
        BindJob(s, prow);
        RETURN_IF_ERROR(s.Run());
        num = sqlite3_last_insert_rowid(c.db());
      }
      RETURN_IF_ERROR(InsertEvent(c, num, parent.event, "", api::JobStateName(api::JobState::kQueued)));
      if (!parent.idempotency_key.empty()) {
        ASSIGN_OR_RETURN(Stmt k, c.Prepare("INSERT INTO submit_keys(scope, key, fingerprint, job_num) VALUES(?1, ?2, ?3, ?4)"));
        k.Bind(1, parent.idempotency_scope);
        k.Bind(2, parent.idempotency_key);
        k.Bind(3, parent.fingerprint);
        k.Bind(4, num);
        RETURN_IF_ERROR(k.Run());
      }
      for (size_t i = 0; i < tasks.size(); ++i) {
        tasks[i].job.state = api::JobState::kQueued;
        tasks[i].job.array_parent = JobId(num);
        JobRow row(tasks[i].job);
        ASSIGN_OR_RETURN(Stmt t, c.Prepare(kInsertJob));
        t.Bind(1, num + 1 + static_cast<int64_t>(i));
        BindJob(t, row);
        RETURN_IF_ERROR(t.Run());
        RETURN_IF_ERROR(InsertEvent(c, num + 1 + static_cast<int64_t>(i), tasks[i].event, "",
                                    api::JobStateName(api::JobState::kQueued)));
      }
      if (parent.audit) {
        if (parent.audit->target.empty()) parent.audit->target = "job:" + JobId(num);
        std::optional<AuditChainKey> key = CurrentAuditKey();
        RETURN_IF_ERROR(AppendAuditRow(c, *parent.audit, key ? &*key : nullptr));
      }
      out.job = parent.job;
      out.job.id = JobId(num);
      return Status::Ok();
    });
    if (!st.ok()) return st;
    if (parent.audit) {
      NoteAudit(parent.audit->seq);
      out.audit = std::move(parent.audit);
    }
    return out;
  }

  Result<std::optional<SubmitKey>> FindSubmitKey(const std::string& scope, const std::string& key) override {
    return Read([&](Conn& c) -> Result<std::optional<SubmitKey>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT job_num, fingerprint FROM submit_keys WHERE scope = ?1 AND key = ?2"));
      s.Bind(1, scope);
      s.Bind(2, key);
      ASSIGN_OR_RETURN(bool found, s.Step());
      if (!found) return std::optional<SubmitKey>();
      return std::optional<SubmitKey>(SubmitKey{.job_id = JobId(s.Int(0)), .fingerprint = std::string(s.Text(1))});
    });
  }

  Status UpdateJobs(const std::vector<JobUpdate>& updates) override {
    if (updates.empty()) return Status::Ok();
    std::vector<JobRow> rows;
    std::vector<std::vector<std::string>> usage_gpus;
    rows.reserve(updates.size());
    usage_gpus.reserve(updates.size());
    for (const JobUpdate& u : updates) {
      RETURN_IF_ERROR(ValidateMetering(u.usage, u.ledger));
      rows.emplace_back(u.job);
      usage_gpus.push_back(EncodeUsageGpus(u.usage));
    }
    int64_t audit_seq = 0;
    Status st = Write([&](Conn& c) -> Status {
      std::optional<AuditChainKey> key;
      for (size_t i = 0; i < updates.size(); ++i) {
        RETURN_IF_ERROR(ApplyUpdate(c, updates[i], rows[i]));
        RETURN_IF_ERROR(InsertMetering(c, updates[i].usage, usage_gpus[i], updates[i].ledger));
        if (updates[i].audit) {
          if (!key) key = CurrentAuditKey();
          api::AuditRecord rec = *updates[i].audit;
          RETURN_IF_ERROR(AppendAuditRow(c, rec, key ? &*key : nullptr));
          audit_seq = rec.seq;
        }
      }
      return Status::Ok();
    });
    if (st.ok() && audit_seq > 0) NoteAudit(audit_seq);
    return st;
  }

  Result<api::Job> GetJob(const std::string& id) override {
    std::optional<int64_t> num = ParseJobNum(id);
    if (!num) return JobNotFound(id);
    return Read([&](Conn& c) -> Result<api::Job> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(kSelectJobByNum));
      s.Bind(1, *num);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return JobNotFound(id);
      return ReadJob(s);
    });
  }

  Result<std::vector<api::Job>> ListJobs(const JobFilter& filter) override {
    ASSIGN_OR_RETURN(JobListSql q, BuildJobListSql(filter, kSelectJobs, "SELECT * FROM (",
                                                   [](int i) { return "?" + std::to_string(i); }));
    if (q.matches_nothing) return std::vector<api::Job>{};
    const std::string& sql = q.sql;
    const std::vector<std::string>& states = q.states;
    const std::vector<std::string>& projects = q.projects;
    const int k = static_cast<int>(states.size());
    const int before_param = q.before_param;
    const int limit_param = q.limit_param;
    return Read([&](Conn& c) -> Result<std::vector<api::Job>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
      for (size_t i = 0; i < states.size(); ++i) s.Bind(static_cast<int>(i) + 1, states[i]);
      for (size_t i = 0; i < projects.size(); ++i) s.Bind(k + static_cast<int>(i) + 1, projects[i]);
      if (q.user_param) s.Bind(q.user_param, filter.user);
      if (q.name_param) s.Bind(q.name_param, filter.name);
      if (q.since_param) s.Bind(q.since_param, filter.created_since);
      if (before_param) s.Bind(before_param, filter.before_num);
      if (limit_param) s.Bind(limit_param, int64_t{filter.limit});
      std::vector<api::Job> out;
      if (filter.limit > 0) out.reserve(static_cast<size_t>(std::min(filter.limit, 4096)));
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(api::Job j, ReadJob(s));
        out.push_back(std::move(j));
      }
      return out;
    });
  }

  Result<std::vector<api::JobEvent>> ListEvents(const std::string& job_id) override {
    std::optional<int64_t> num = ParseJobNum(job_id);
    if (!num) return JobNotFound(job_id);
    return Read([&](Conn& c) -> Result<std::vector<api::JobEvent>> {
      // One statement = one consistent snapshot of the job row and its events.
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT e.seq, e.at, e.from_state, e.to_state, e.reason, e.actor "
                                         "FROM jobs j LEFT JOIN job_events e ON e.job_num = j.num "
                                         "WHERE j.num = ?1 ORDER BY e.seq"));
      s.Bind(1, *num);
      std::vector<api::JobEvent> out;
      bool found = false;
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        found = true;
        if (s.IsNull(0)) continue;
        api::JobEvent e;
        e.seq = s.Int(0);
        e.job_id = job_id;
        e.at = s.Int(1);
        e.from = s.Text(2);
        e.to = s.Text(3);
        e.reason = s.Text(4);
        e.actor = s.Text(5);
        out.push_back(std::move(e));
      }
      if (!found) return JobNotFound(job_id);
      return out;
    });
  }

  Status UpsertNode(const api::Node& node, const std::vector<api::Gpu>& gpus) override {
    if (node.name.empty()) return InvalidArgument("node name must not be empty");
    for (const api::Gpu& g : gpus) {
      if (g.uuid.empty()) return InvalidArgument("GPU " + std::to_string(g.index) + " of node " + node.name +
                                                 " has an empty UUID");
    }
    std::string node_data = api::ToJson(node).dump();
    std::vector<std::string> gpu_data;
    gpu_data.reserve(gpus.size());
    for (api::Gpu g : gpus) {
      g.node = node.name;
      gpu_data.push_back(api::ToJson(g).dump());
    }
    return Write([&](Conn& c) -> Status {
      {
        ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO nodes(name, data) VALUES(?1, ?2) "
                                           "ON CONFLICT(name) DO UPDATE SET data = excluded.data"));
        s.Bind(1, node.name);
        s.Bind(2, node_data);
        RETURN_IF_ERROR(s.Run());
      }
      {
        ASSIGN_OR_RETURN(Stmt s, c.Prepare("DELETE FROM gpus WHERE node = ?1"));
        s.Bind(1, node.name);
        RETURN_IF_ERROR(s.Run());
      }
      for (size_t i = 0; i < gpus.size(); ++i) {
        // A GPU that moved from another node is re-homed here.
        ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO gpus(uuid, node, idx, data) VALUES(?1, ?2, ?3, ?4) "
                                           "ON CONFLICT(uuid) DO UPDATE SET node = excluded.node, "
                                           "idx = excluded.idx, data = excluded.data"));
        s.Bind(1, gpus[i].uuid);
        s.Bind(2, node.name);
        s.Bind(3, int64_t{gpus[i].index});
        s.Bind(4, gpu_data[i]);
        RETURN_IF_ERROR(s.Run());
      }
      return Status::Ok();
    });
  }

  Result<std::vector<api::Node>> ListNodes() override {
    return Read([&](Conn& c) -> Result<std::vector<api::Node>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT name, data FROM nodes ORDER BY name"));
      std::vector<api::Node> out;
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        json j = json::parse(s.Text(1), nullptr, /*allow_exceptions=*/false);
        auto n = api::NodeFromJson(j);
        if (!n.ok()) return Internal("node " + std::string(s.Text(0)) + " has a damaged row: " + n.status().message());
        out.push_back(std::move(*n));
      }
      return out;
    });
  }

  Result<std::vector<api::Gpu>> ListGpus() override {
    return Read([&](Conn& c) -> Result<std::vector<api::Gpu>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT uuid, data FROM gpus ORDER BY node, idx, uuid"));
      std::vector<api::Gpu> out;
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        json j = json::parse(s.Text(1), nullptr, /*allow_exceptions=*/false);
        auto g = api::GpuFromJson(j);
        if (!g.ok()) return Internal("GPU " + std::string(s.Text(0)) + " has a damaged row: " + g.status().message());
        out.push_back(std::move(*g));
      }
      return out;
    });
  }

  Status PutSetting(const std::string& key, const std::string& value) override {
    if (key.empty()) return InvalidArgument("setting name must not be empty");
    return Write([&](Conn& c) -> Status {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("INSERT INTO settings(key, value) VALUES(?1, ?2) "
                                         "ON CONFLICT(key) DO UPDATE SET value = excluded.value"));
      s.Bind(1, key);
      s.Bind(2, value);
      return s.Run();
    });
  }

  Result<std::optional<std::string>> GetSetting(const std::string& key) override {
    return Read([&](Conn& c) -> Result<std::optional<std::string>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT value FROM settings WHERE key = ?1"));
      s.Bind(1, key);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return std::optional<std::string>();
      return std::optional<std::string>(std::string(s.Text(0)));
    });
  }

  using Store::WriteRecords;
  Status WriteRecords(const std::vector<RecordWrite>& writes, api::AuditRecord* audit) override {
    if (writes.empty() && audit == nullptr) return Status::Ok();
    for (const RecordWrite& w : writes) RETURN_IF_ERROR(ValidateRecordWrite(w));
    std::optional<api::AuditRecord> row;
    Status st = Write([&](Conn& c) -> Status {
      for (const RecordWrite& w : writes) RETURN_IF_ERROR(ApplyRecordWrite(c, w));
      return AppendRequestRow(c, audit, &row);
    });
    return FinishRequestRow(st, audit, row);
  }

  Result<std::optional<Record>> GetRecord(const std::string& kind, const std::string& key) override {
    return Read([&](Conn& c) -> Result<std::optional<Record>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT value, version FROM records WHERE kind = ?1 AND key = ?2"));
      s.Bind(1, kind);
      s.Bind(2, key);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return std::optional<Record>();
      return std::optional<Record>(Record{.kind = kind, .key = key, .value = std::string(s.Text(0)),
                                          .version = s.Int(1)});
    });
  }

  Result<std::vector<Record>> ListRecords(const std::string& kind, const std::string& key_prefix) override {
    // A key range instead of a LIKE/substr test, so the primary key index bounds the scan.
    std::optional<std::string> end = PrefixEnd(key_prefix);
    std::string_view sql = "SELECT key, value, version FROM records WHERE kind = ?1 ORDER BY key";
    if (!key_prefix.empty()) {
      sql = end ? "SELECT key, value, version FROM records WHERE kind = ?1 AND key >= ?2 AND key < ?3 ORDER BY key"
                : "SELECT key, value, version FROM records WHERE kind = ?1 AND key >= ?2 ORDER BY key";
    }
    return Read([&](Conn& c) -> Result<std::vector<Record>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
      s.Bind(1, kind);
      if (!key_prefix.empty()) s.Bind(2, key_prefix);
      if (!key_prefix.empty() && end) s.Bind(3, *end);
      std::vector<Record> out;
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        out.push_back(Record{.kind = kind, .key = std::string(s.Text(0)), .value = std::string(s.Text(1)),
                             .version = s.Int(2)});
      }
      return out;
    });
  }

  Result<api::AuditRecord> AppendAudit(api::AuditRecord record) override {
    Status st = Write([&](Conn& c) -> Status {
      std::optional<AuditChainKey> key = CurrentAuditKey();
      return AppendAuditRow(c, record, key ? &*key : nullptr);
    });
    if (!st.ok()) return st;
    NoteAudit(record.seq);
    return record;
  }

  Result<int64_t> SetAuditKey(const std::string& key, int64_t keyed_from) override {
    if (key.size() < 16) return InvalidArgument("the audit chain key must be at least 16 bytes");
    if (keyed_from < 0) return InvalidArgument("the first keyed audit row must be >= 1");
    int64_t from = keyed_from;
    // On the writer, so that no append runs between reading the head and keying the chain.
    Status st = Write([&](Conn& c) -> Status {
      if (from == 0) {
        ASSIGN_OR_RETURN(int64_t last, c.QueryInt("SELECT COALESCE(MAX(seq), 0) FROM audit"));
        from = last + 1;
      }
      std::lock_guard lock(key_mu_);
      audit_key_ = AuditChainKey{.key = key, .keyed_from = from};
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return from;
  }

  std::optional<AuditChainKey> AuditKey() const override { return CurrentAuditKey(); }

  Result<std::vector<api::AuditRecord>> ListAudit(int64_t after_seq, int limit) override {
    if (limit < 0) return InvalidArgument("limit must not be negative, got " + std::to_string(limit));
    return Read([&](Conn& c) -> Result<std::vector<api::AuditRecord>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT seq, at, actor, source, action, target, result, detail, "
                                         "prev_hash, hash FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"));
      s.Bind(1, after_seq);
      s.Bind(2, limit > 0 ? int64_t{limit} : int64_t{-1});  // a negative LIMIT means none
      std::vector<api::AuditRecord> out;
      if (limit > 0) out.reserve(static_cast<size_t>(std::min(limit, 4096)));
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        api::AuditRecord r;
        r.seq = s.Int(0);
        r.at = s.Int(1);
        r.actor = s.Text(2);
        r.source = s.Text(3);
        r.action = s.Text(4);
        r.target = s.Text(5);
        r.result = s.Text(6);
        r.detail = s.Text(7);
        r.prev_hash = s.Text(8);
        r.hash = s.Text(9);
        out.push_back(std::move(r));
      }
      return out;
    });
  }

  using Store::PostLedger;
  Status PostLedger(const std::vector<api::UsageSegment>& usage, const std::vector<api::LedgerEntry>& entries,
                    api::AuditRecord* audit, const std::vector<RecordWrite>& records) override {
    if (usage.empty() && entries.empty() && audit == nullptr && records.empty()) return Status::Ok();
    for (const RecordWrite& w : records) RETURN_IF_ERROR(ValidateRecordWrite(w));
    RETURN_IF_ERROR(ValidateMetering(usage, entries));
    std::vector<std::string> gpus = EncodeUsageGpus(usage);
    std::optional<api::AuditRecord> row;
    Status st = Write([&](Conn& c) -> Status {
      for (const RecordWrite& w : records) RETURN_IF_ERROR(ApplyRecordWrite(c, w));
      RETURN_IF_ERROR(InsertMetering(c, usage, gpus, entries));
      return AppendRequestRow(c, audit, &row);
    });
    return FinishRequestRow(st, audit, row);
  }

  Result<std::vector<api::UsageSegment>> ListUsage(const UsageFilter& filter) override {
    // Fixed parameter numbers (?1 project, ?2 job, ?3 from, ?4 to): gaps are allowed, and each combination of
    // filters is one cached statement.
    std::string sql(kSelectUsage);
    std::vector<std::string_view> where;
    if (!filter.project.empty()) where.push_back("project = ?1");
    if (!filter.job_id.empty()) where.push_back("job_id = ?2");
    if (filter.from != 0) where.push_back("end_ms >= ?3");
    if (filter.to != 0) where.push_back("start_ms < ?4");
    for (size_t i = 0; i < where.size(); ++i) {
      sql += i ? " AND " : " WHERE ";
      sql += where[i];
    }
    sql += " ORDER BY start_ms, key";
    return Read([&](Conn& c) -> Result<std::vector<api::UsageSegment>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
      if (!filter.project.empty()) s.Bind(1, filter.project);
      if (!filter.job_id.empty()) s.Bind(2, filter.job_id);
      if (filter.from != 0) s.Bind(3, filter.from);
      if (filter.to != 0) s.Bind(4, filter.to);
      std::vector<api::UsageSegment> out;
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        ASSIGN_OR_RETURN(api::UsageSegment u, ReadUsage(s));
        out.push_back(std::move(u));
      }
      return out;
    });
  }

  Result<std::vector<api::LedgerEntry>> ListLedger(const LedgerFilter& filter) override {
    // ?1 project, ?2 month, ?3 kind (see ListUsage).
    std::string sql(kSelectLedger);
    std::vector<std::string_view> where;
    if (!filter.project.empty()) where.push_back("project = ?1");
    if (!filter.month.empty()) where.push_back("month = ?2");
    if (!filter.kind.empty()) where.push_back("kind = ?3");
    for (size_t i = 0; i < where.size(); ++i) {
      sql += i ? " AND " : " WHERE ";
      sql += where[i];
    }
    sql += " ORDER BY seq";
    return Read([&](Conn& c) -> Result<std::vector<api::LedgerEntry>> {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(sql));
      if (!filter.project.empty()) s.Bind(1, filter.project);
      if (!filter.month.empty()) s.Bind(2, filter.month);
      if (!filter.kind.empty()) s.Bind(3, filter.kind);
      std::vector<api::LedgerEntry> out;
      while (true) {
        ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        out.push_back(ReadLedger(s));
      }
      return out;
    });
  }

  int SchemaVersion() override { return version_; }

  StoreStats Stats() override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  // A queued write: `apply` runs on the writer thread inside a SAVEPOINT of the batch transaction.
  // Completion is signalled through the op's own mutex, so waking one caller does not contend with the
  // queue or with other callers.
  struct WriteOp {
    std::function<Status(Conn&)> apply;
    Status result;  // written by the writer thread before `done`
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
  };

  Status ApplyUpdate(Conn& c, const JobUpdate& u, const JobRow& row) {
    std::optional<int64_t> num = ParseJobNum(u.job.id);
    if (!num) return JobNotFound(u.job.id);
    std::string previous;
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare("SELECT state FROM jobs WHERE num = ?1"));
      s.Bind(1, *num);
      ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) return JobNotFound(u.job.id);
      previous = s.Text(0);
    }
    if (u.expected_state && previous != api::JobStateName(*u.expected_state)) {
      return FailedPrecondition("job " + u.job.id + " is " + previous + ", not " +
                                std::string(api::JobStateName(*u.expected_state)) +
                                " (it changed concurrently; reload it and retry)");
    }
    {
      ASSIGN_OR_RETURN(Stmt s, c.Prepare(kUpdateJob));
      s.Bind(1, *num);
      BindJob(s, row);
      s.Bind(26, row.members);
      RETURN_IF_ERROR(s.Run());
    }
    std::string_view from = u.event.from.empty() ? std::string_view(previous) : std::string_view(u.event.from);
    std::string_view to = u.event.to.empty() ? api::JobStateName(u.job.state) : std::string_view(u.event.to);
    return InsertEvent(c, *num, u.event, from, to);
  }

  // In a write: appends a copy of the request's audit row (if any) to the chain, as *row. A fresh copy on
  // every attempt, so the caller's row changes only once committed (FinishRequestRow).
  Status AppendRequestRow(Conn& c, const api::AuditRecord* audit, std::optional<api::AuditRecord>* row) const {
    if (audit == nullptr) return Status::Ok();
    *row = *audit;
    std::optional<AuditChainKey> key = CurrentAuditKey();
    return AppendAuditRow(c, **row, key ? &*key : nullptr);
  }
  // After the write: on success hands the stored row back to the caller.
  Status FinishRequestRow(Status st, api::AuditRecord* audit, std::optional<api::AuditRecord>& row) {
    if (!st.ok() || !row) return st;
    NoteAudit(row->seq);
    *audit = std::move(*row);
    return st;
  }

  std::optional<AuditChainKey> CurrentAuditKey() const {
    std::lock_guard lock(key_mu_);
    return audit_key_;
  }

  // Remembers the newest audit row appended through this instance (after its commit).
  void NoteAudit(int64_t seq) {
    std::lock_guard lock(mu_);
    stats_.last_audit_seq = std::max(stats_.last_audit_seq, seq);
  }

  // Queues `apply` for the writer thread and waits until its transaction is durable.
  Status Write(std::function<Status(Conn&)> apply) {
    WriteOp op;
    op.apply = std::move(apply);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return Unavailable("store is shutting down");
      queue_.push_back(&op);
      // The writer only sleeps when the queue is empty; otherwise it picks this op up with the next batch.
      if (queue_.size() == 1) writer_cv_.notify_one();
    }
    std::unique_lock lock(op.mu);
    op.cv.wait(lock, [&] { return op.done; });
    return std::move(op.result);
  }

  void WriterLoop() {
    std::vector<WriteOp*> batch;
    while (true) {
      {
        std::unique_lock lock(mu_);
        writer_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping and drained
        size_t n = std::min(queue_.size(), static_cast<size_t>(std::max(1, options_.max_batch)));
        batch.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
        queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      }
      const int64_t started = clock_.MonotonicNanos();
      bool committed = ApplyBatch(batch);
      const double took = static_cast<double>(clock_.MonotonicNanos() - started) / 1e9;
      {
        std::lock_guard lock(mu_);
        stats_.writes += static_cast<int64_t>(batch.size());
        if (stats_.commit_seconds.bounds.empty()) {
          stats_.commit_seconds = HistogramCounts::Of(kCommitSecondsBounds);
          stats_.group_size = HistogramCounts::Of(kGroupSizeBounds);
        }
        stats_.commit_seconds.Observe(took);
        stats_.group_size.Observe(static_cast<double>(batch.size()));
        if (committed) stats_.commits++;
        stats_.max_batch = std::max<int64_t>(stats_.max_batch, static_cast<int64_t>(batch.size()));
      }
      for (WriteOp* op : batch) {
        // Notify while holding op->mu: the caller owns `op` and may destroy it as soon as it sees `done`.
        std::lock_guard lock(op->mu);
        op->done = true;
        op->cv.notify_one();
      }
      batch.clear();
    }
  }

  static Status RollbackSavepoint(Conn& c) {
    RETURN_IF_ERROR(c.ExecCached("ROLLBACK TO w"));
    return c.ExecCached("RELEASE w");
  }

  // Runs each op in its own savepoint inside one transaction; sets every op's result.
  bool ApplyBatch(const std::vector<WriteOp*>& batch) {
    Conn& c = *writer_conn_;
    auto fail_all = [&](const Status& st, size_t from) {
      for (size_t i = from; i < batch.size(); ++i) batch[i]->result = st;
    };
    Status st = c.ExecCached("BEGIN IMMEDIATE");
    if (!st.ok()) {
      fail_all(st, 0);
      return false;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      WriteOp* op = batch[i];
      st = c.ExecCached("SAVEPOINT w");
      if (st.ok()) {
        op->result = op->apply(c);
        if (sqlite3_get_autocommit(c.db()) != 0) {
          // A severe error (I/O, disk full) rolled back the whole transaction.
          Status err = op->result.ok() ? Internal("transaction was rolled back by the database") : op->result;
          fail_all(err, 0);
          return false;
        }
        st = op->result.ok() ? c.ExecCached("RELEASE w") : RollbackSavepoint(c);
      }
      if (!st.ok()) {
        (void)c.Exec("ROLLBACK");
        fail_all(st, 0);
        return false;
      }
    }
    st = c.ExecCached("COMMIT");
    if (!st.ok()) {
      (void)c.Exec("ROLLBACK");
      for (WriteOp* op : batch) {
        if (op->result.ok()) op->result = Status(st.code(), "commit failed: " + st.message());
      }
      return false;
    }
    return true;
  }

  // Runs `fn` on a pooled read connection.
  template <typename F>
  auto Read(F&& fn) -> decltype(fn(std::declval<Conn&>())) {
    std::unique_ptr<Conn> conn;
    {
      std::lock_guard lock(readers_mu_);
      if (!idle_readers_.empty()) {
        conn = std::move(idle_readers_.back());
        idle_readers_.pop_back();
      }
    }
    if (!conn) {
      auto opened = Conn::Open(path_, /*writer=*/false, options_.busy_timeout_ms);
      if (!opened.ok()) return opened.status();
      conn = std::move(*opened);
    }
    auto result = fn(*conn);
    {
      std::lock_guard lock(readers_mu_);
      if (static_cast<int>(idle_readers_.size()) < options_.max_idle_readers) {
        idle_readers_.push_back(std::move(conn));
      }
    }
    return result;
  }

  const std::string path_;
  const SqliteOptions options_;
  std::unique_ptr<Conn> writer_conn_;  // used only by the writer thread after construction
  const int version_;

  std::mutex mu_;  // guards queue_, stopping_ and stats_
  std::condition_variable writer_cv_;
  std::deque<WriteOp*> queue_;
  bool stopping_ = false;
  StoreStats stats_;
  SystemClock clock_;  // times commits (StoreStats::commit_seconds)

  std::mutex readers_mu_;
  std::vector<std::unique_ptr<Conn>> idle_readers_;

  mutable std::mutex key_mu_;
  std::optional<AuditChainKey> audit_key_;  // set once at start (SetAuditKey)

  std::mutex lead_mu_;
  int lead_fd_ = -1;  // holds the flock of <database>.lead once leading

  std::thread writer_thread_;  // last: started after every member above is ready
};

// The database holds password hashes, token hashes and sealed secrets: owner-only. SQLite gives the -wal
// and -shm files the mode of the database file, so creating that one 0600 covers them; existing files
// (from an older fastgpu) are tightened.
Status RestrictDatabaseFiles(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Unavailable("cannot open database " + path + ": " + std::strerror(errno) +
                       "; check that the data directory exists and is writable");
  }
  int rc = ::fchmod(fd, 0600);
  int err = errno;
  ::close(fd);
  if (rc != 0) return Unavailable("cannot make database " + path + " private (chmod 600): " + std::strerror(err));
  for (const char* suffix : {"-wal", "-shm", "-journal"}) {
    std::string f = path + suffix;
    if (::chmod(f.c_str(), 0600) != 0 && errno != ENOENT) {
      return Unavailable("cannot make " + f + " private (chmod 600): " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

}  // namespace

int SqliteLatestSchemaVersion() { return kLatestVersion; }

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  return OpenSqliteStore(path, SqliteOptions{});
}

Result<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path, const SqliteOptions& options) {
  if (path.empty()) return InvalidArgument("database path must not be empty");
  if (path != ":memory:" && path.rfind("file:", 0) != 0) RETURN_IF_ERROR(RestrictDatabaseFiles(path));
  ASSIGN_OR_RETURN(std::unique_ptr<Conn> writer, Conn::Open(path, /*writer=*/true, options.busy_timeout_ms));
  int version = 0;
  RETURN_IF_ERROR(Migrate(*writer, path, version));
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(path, options, std::move(writer), version));
}

}  // namespace fastgpu::store
