#include "server/admin.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/status.h"
#include "store/backup.h"
#include "store/open.h"
#include "store/postgres/postgres_store.h"

namespace fastgpu::server {
namespace {

// Fails when a `fastgpu up` / `fastgpu server` holds the home's lock (it would keep writing the database).
Status CheckNotRunning(const std::string& home, const std::string& what) {
  std::string lock_path = home + "/fastgpu.lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return Status::Ok();  // never started there
  bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);
  if (!free) {
    return FailedPrecondition("fastgpu is running with home " + home + "; stop it before " + what +
                              " (running jobs keep running and are re-adopted at the next start)");
  }
  return Status::Ok();
}

Result<store::StoreUrl> Resolve(const std::string& url, const std::string& home) {
  return store::ParseStoreUrl(url.empty() ? "sqlite:" + home + "/fastgpu.db" : url);
}

Status Run(const AdminOptions& o) {
  const std::string home_db = o.home + "/fastgpu.db";
  if (o.verb == "backup" || o.verb == "restore") {
    if (o.file.empty()) return InvalidArgument("give the backup FILE");
    ASSIGN_OR_RETURN(store::StoreUrl u, Resolve(o.store, o.home));
    if (u.kind == store::StoreUrl::Kind::kPostgres) {
      return FailedPrecondition(
          "a PostgreSQL store is backed up with PostgreSQL's tools: pg_dump -Fc -d '" +
          store::RedactStoreUrl(u.target) + "' -f " + o.file + ", restored with pg_restore -d DB " + o.file +
          " (docs/fleet.md)");
    }
    if (o.verb == "backup") {
      ASSIGN_OR_RETURN(int64_t bytes, store::BackupSqlite(u.target, o.file));
      std::printf("backed up %s to %s (%lld bytes)\n", u.target.c_str(), o.file.c_str(), static_cast<long long>(bytes));
      return Status::Ok();
    }
    if (u.target == home_db) RETURN_IF_ERROR(CheckNotRunning(o.home, "restoring its database"));
    RETURN_IF_ERROR(store::RestoreSqlite(o.file, u.target));
    std::printf("restored %s from %s\n", u.target.c_str(), o.file.c_str());
    return Status::Ok();
  }
  if (o.verb == "migrate") {
    ASSIGN_OR_RETURN(store::StoreUrl from, Resolve(o.from, o.home));
    if (from.kind != store::StoreUrl::Kind::kSqlite) {
      return InvalidArgument("--from must be a SQLite store (sqlite:PATH); migrating out of PostgreSQL is done "
                             "with pg_dump");
    }
    if (o.to.empty()) return InvalidArgument("give --to postgres://USER@HOST/DB (an empty database)");
    ASSIGN_OR_RETURN(store::StoreUrl to, store::ParseStoreUrl(o.to));
    if (to.kind != store::StoreUrl::Kind::kPostgres) {
      return InvalidArgument("--to must be a PostgreSQL URL (postgres://USER@HOST/DB)");
    }
    if (from.target == home_db) RETURN_IF_ERROR(CheckNotRunning(o.home, "migrating its database"));
    ASSIGN_OR_RETURN(store::MigrationCounts counts, store::MigrateSqliteToPostgres(from.target, to.target));
    std::printf("copied %s to %s:\n", from.target.c_str(), store::RedactStoreUrl(to.target).c_str());
    for (const auto& [table, n] : counts) std::printf("  %-12s %lld\n", table.c_str(), static_cast<long long>(n));
    std::printf("start the server with --store '%s' (and the same home, for its audit key)\n",
                store::RedactStoreUrl(to.target).c_str());
    return Status::Ok();
  }
  return InvalidArgument("unknown admin verb '" + o.verb + "'");
}

}  // namespace

int RunAdmin(const AdminOptions& options) {
  Status st = Run(options);
  if (st.ok()) return 0;
  std::fprintf(stderr, "fastgpu: error: %s\n", st.message().c_str());
  return st.code() == ErrorCode::kInvalidArgument ? 2 : 1;
}

}  // namespace fastgpu::server
