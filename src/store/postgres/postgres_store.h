// PostgreSQL implementation of the Store (fleet mode): the system of record shared by every
// `fastgpu server` replica. See docs/fleet.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace fastgpu::store {

struct PostgresOptions {
  int max_batch = 2048;        // most write requests grouped into one transaction
  int max_idle_readers = 8;    // read connections kept open between reads
  int connect_timeout_s = 10;  // libpq connect_timeout, unless the URL sets one
};

// Connects to the database named by a libpq connection URI ("postgres://user@host:5432/db",
// "postgresql:///db?host=/run/postgresql"), runs the schema migrations and returns the store.
// Fails with kUnavailable (one line, password redacted) when the server cannot be reached, and with
// kFailedPrecondition when the database was migrated by a newer fastgpu.
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url);
Result<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url, const PostgresOptions& options);

// Highest schema version this binary knows how to read and migrate to.
int PostgresLatestSchemaVersion();

// What MigrateSqliteToPostgres copied, table by table ("jobs" -> 1200, ...), in copy order.
using MigrationCounts = std::vector<std::pair<std::string, int64_t>>;

// Copies every row of the SQLite database `sqlite_path` (migrated to its latest schema first) into the
// PostgreSQL database `url` (migrated likewise), in one transaction: jobs keep their numbers, events and
// ledger entries their sequence numbers, audit rows their seq and hashes (so the chain verifies with the same
// audit key), and the sequences continue after them. The PostgreSQL database must hold no jobs, records,
// audit rows or ledger entries yet (kFailedPrecondition otherwise). Stop the server that uses the SQLite file
// first: writes made during the copy would not be copied.
Result<MigrationCounts> MigrateSqliteToPostgres(const std::string& sqlite_path, const std::string& url);

// `url` with any password replaced by "***" (for messages and logs).
std::string RedactPostgresUrl(const std::string& url);

}  // namespace fastgpu::store
