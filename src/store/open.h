// Choosing a store by URL: the one place that parses `--store`.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "store/store.h"

namespace fastgpu::store {

struct StoreUrl {
  enum class Kind { kSqlite, kPostgres };
  Kind kind = Kind::kSqlite;
  std::string target;  // the SQLite file, or the libpq connection URI
};

// "sqlite:PATH" (also "sqlite://PATH"), or a libpq connection URI "postgres://USER@HOST[:PORT]/DB[?...]" /
// "postgresql://..." (e.g. "postgresql:///fastgpu?host=/run/postgresql" for a Unix socket).
// kInvalidArgument with the accepted forms otherwise.
Result<StoreUrl> ParseStoreUrl(const std::string& url);

// Opens (creating or migrating as needed) the store a URL names.
Result<std::unique_ptr<Store>> Open(const std::string& url);

// The URL for messages: passwords replaced by "***".
std::string RedactStoreUrl(const std::string& url);

}  // namespace fastgpu::store
