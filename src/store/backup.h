// Backup and restore of a SQLite store (`fastgpu admin backup|restore`). PostgreSQL stores are backed up
// with PostgreSQL's own tools (pg_dump / pg_restore, docs/fleet.md).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace fastgpu::store {

// Copies the SQLite database at `db_path` to `file` (created 0600; an existing file is replaced) with
// SQLite's online backup API: a consistent snapshot, also while a server is writing to the database.
// Returns the size of the backup in bytes.
Result<int64_t> BackupSqlite(const std::string& db_path, const std::string& file);

// Replaces the SQLite database at `db_path` with the backup `file`, after checking that the file is an
// intact fastgpu database (integrity check, schema version this binary can read). Stop the server that
// uses `db_path` first.
Status RestoreSqlite(const std::string& file, const std::string& db_path);

}  // namespace fastgpu::store
