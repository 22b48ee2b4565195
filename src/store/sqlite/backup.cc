#include "store/backup.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "store/store.h"

namespace fastgpu::store {
namespace {

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

Result<DbPtr> OpenDb(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  DbPtr db(raw);
  if (rc != SQLITE_OK) {
    return Unavailable("cannot open " + path + ": " + (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

// Copies every page of `from` into `to` (both "main"), in steps so that writers of `from` are not held
// up for long.
Status CopyPages(sqlite3* from, sqlite3* to, const std::string& what) {
  sqlite3_backup* b = sqlite3_backup_init(to, "main", from, "main");
  if (b == nullptr) return Internal(what + ": " + sqlite3_errmsg(to));
  int rc = SQLITE_OK;
  do {
    rc = sqlite3_backup_step(b, 1024);
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) sqlite3_sleep(20);
  } while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED);
  int fin = sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE || fin != SQLITE_OK) {
    return Internal(what + ": " + sqlite3_errstr(rc != SQLITE_DONE ? rc : fin));
  }
  return Status::Ok();
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) return Internal(sqlite3_errmsg(db));
  int64_t v = 0;
  int rc = sqlite3_step(s);
  if (rc == SQLITE_ROW) v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  if (rc != SQLITE_ROW) return Internal(sqlite3_errmsg(db));
  return v;
}

}  // namespace

Result<int64_t> BackupSqlite(const std::string& db_path, const std::string& file) {
  if (::access(db_path.c_str(), R_OK) != 0) {
    return NotFound("no database at " + db_path + " (" + std::strerror(errno) + ")");
  }
  ASSIGN_OR_RETURN(DbPtr from, OpenDb(db_path, SQLITE_OPEN_READONLY));
  // The backup holds password hashes and sealed secrets: owner-only from the start.
  std::string tmp = file + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("cannot create " + tmp + ": " + std::strerror(errno));
  ::close(fd);
  {
    auto to = OpenDb(tmp, SQLITE_OPEN_READWRITE);
    Status st = to.ok() ? CopyPages(from.get(), to->get(), "backing up " + db_path) : to.status();
    if (st.ok()) {
      // A self-contained file: no -wal beside it.
      char* err = nullptr;
      if (sqlite3_exec(to->get(), "PRAGMA journal_mode = DELETE", nullptr, nullptr, &err) != SQLITE_OK) {
        st = Internal(std::string("finishing the backup: ") + (err != nullptr ? err : "error"));
      }
      sqlite3_free(err);
    }
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return st;
    }
  }
  int dfd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  if (::rename(tmp.c_str(), file.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Unavailable("cannot write " + file + ": " + std::strerror(err));
  }
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return Unavailable("cannot read back " + file + ": " + std::strerror(errno));
  return static_cast<int64_t>(st.st_size);
}

Status RestoreSqlite(const std::string& file, const std::string& db_path) {
  ASSIGN_OR_RETURN(DbPtr from, OpenDb(file, SQLITE_OPEN_READONLY));
  {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(from.get(), "PRAGMA integrity_check", -1, &s, nullptr) != SQLITE_OK) {
      return InvalidArgument(file + " is not a SQLite database: " + sqlite3_errmsg(from.get()));
    }
    std::string result;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    if (result != "ok") {
      return InvalidArgument(file + " is not an intact SQLite database (integrity check: " +
                             (result.empty() ? std::string(sqlite3_errmsg(from.get())) : result) + ")");
    }
  }
  auto jobs = QueryInt(from.get(), "SELECT count(*) FROM jobs");
  if (!jobs.ok()) return InvalidArgument(file + " is not a fastgpu database (it has no jobs table)");
  ASSIGN_OR_RETURN(int64_t version, QueryInt(from.get(), "PRAGMA user_version"));
  if (version > SqliteLatestSchemaVersion()) {
    return FailedPrecondition(file + " has schema version " + std::to_string(version) +
                              ", newer than this fastgpu supports (up to " +
                              std::to_string(SqliteLatestSchemaVersion()) + "); restore it with a newer fastgpu");
  }
  {
    // Into the live file through SQLite (its WAL included), so that the result is one consistent database.
    int fd = ::open(db_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return Unavailable("cannot open " + db_path + ": " + std::strerror(errno));
    ::close(fd);
    ASSIGN_OR_RETURN(DbPtr to, OpenDb(db_path, SQLITE_OPEN_READWRITE));
    RETURN_IF_ERROR(CopyPages(from.get(), to.get(), "restoring " + file + " into " + db_path));
  }
  // Migrates a backup made by an older fastgpu, and checks the result opens.
  ASSIGN_OR_RETURN(std::unique_ptr<Store> check, OpenSqliteStore(db_path));
  return Status::Ok();
}

}  // namespace fastgpu::store
