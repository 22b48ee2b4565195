// `fastgpu admin backup|restore|migrate`: maintenance of the database, run on the machine that holds it
// (not through the API). Called by the CLI (src/cli/app_admin.cc) after flag parsing.
#pragma once

#include <string>

namespace fastgpu::server {

struct AdminOptions {
  std::string verb;   // "backup", "restore" or "migrate"
  std::string home;   // resolved data dir: its lock tells whether `fastgpu up` runs on it
  std::string store;  // backup/restore: the store URL (empty: sqlite:<home>/fastgpu.db)
  std::string file;   // backup/restore: the backup file
  std::string from;   // migrate: sqlite:PATH (empty: sqlite:<home>/fastgpu.db)
  std::string to;     // migrate: postgres://...
};

// Prints what it did (or one line saying why not) and returns the process exit code.
int RunAdmin(const AdminOptions& options);

}  // namespace fastgpu::server
