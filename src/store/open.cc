#include "store/open.h"

#include "store/postgres/postgres_store.h"

namespace fastgpu::store {

Result<StoreUrl> ParseStoreUrl(const std::string& url) {
  auto starts = [&](std::string_view p) { return url.compare(0, p.size(), p) == 0; };
  if (starts("postgres://") || starts("postgresql://")) {
    size_t host = url.find("://") + 3;
    if (url.size() == host) {
      return InvalidArgument("store URL '" + url + "' names no database: use postgres://USER@HOST/DB");
    }
    return StoreUrl{.kind = StoreUrl::Kind::kPostgres, .target = url};
  }
  if (starts("sqlite:")) {
    std::string path = url.substr(7);
    if (path.rfind("//", 0) == 0) path.erase(0, 2);  // sqlite://relative or sqlite:///absolute
    if (path.empty()) return InvalidArgument("store URL '" + url + "' names no file: use sqlite:PATH");
    return StoreUrl{.kind = StoreUrl::Kind::kSqlite, .target = path};
  }
  return InvalidArgument("unknown store URL '" + RedactStoreUrl(url) +
                         "': use sqlite:PATH or postgres://USER@HOST[:PORT]/DB (a libpq connection URI, e.g. "
                         "postgresql:///fastgpu?host=/run/postgresql for a Unix socket)");
}

Result<std::unique_ptr<Store>> Open(const std::string& url) {
  ASSIGN_OR_RETURN(StoreUrl u, ParseStoreUrl(url));
  if (u.kind == StoreUrl::Kind::kPostgres) return OpenPostgresStore(u.target);
  return OpenSqliteStore(u.target);
}

std::string RedactStoreUrl(const std::string& url) { return RedactPostgresUrl(url); }

}  // namespace fastgpu::store
