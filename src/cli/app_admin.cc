// Flag declarations of `fastgpu admin`: database maintenance on the machine that holds it.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "cli/app_internal.h"

namespace fastgpu::cli {

void AddAdminVerbs(const VerbHost& host, const std::function<int(const server::AdminOptions&)>& run_admin) {
  auto* admin = host.declare("admin", "Database maintenance: backup, restore, migrate to PostgreSQL (on the server's machine)");
  if (admin == nullptr || !host.wanted("admin")) return;
  admin->require_subcommand(1);
  admin->footer(R"(
These work on the database directly, not through the API: run them where the server runs, with its home.
Examples:
  fastgpu admin backup /backups/fastgpu-2026-12-07.db       # online: fastgpu may keep running
  fastgpu admin restore /backups/fastgpu-2026-12-07.db      # stop fastgpu first
  fastgpu admin migrate --to 'postgres://fastgpu@db.internal/fastgpu'   # then: fastgpu server --store ...
A PostgreSQL store is backed up with pg_dump / pg_restore (docs/fleet.md).)");
  auto opts = std::make_shared<server::AdminOptions>();
  auto run = [&host, &run_admin, opts](const char* verb) {
    return [&host, &run_admin, opts, verb] {
      host.set_action([&host, &run_admin, opts, verb]() -> int {
        opts->verb = verb;
        if (opts->home.empty()) opts->home = ResolveHome(host.io.env);
        if (!run_admin) return ReportError(host.io.err, Internal("this build cannot run admin commands"), kExitFailure);
        return run_admin(*opts);
      });
    };
  };
  auto common = [&opts](CLI::App* c) {
    c->add_option("--home", opts->home, "Data directory (default: $FASTGPU_HOME or ~/.fastgpu)")->type_name("DIR");
    c->add_option("--store", opts->store, "The store (default: sqlite:<home>/fastgpu.db)")->type_name("URL");
  };
  {
    auto* c = admin->add_subcommand("backup", "Copy the SQLite database to FILE (a consistent online snapshot)");
    c->add_option("file", opts->file, "Backup file to write (0600)")->required()->type_name("FILE");
    common(c);
    c->callback(run("backup"));
  }
  {
    auto* c = admin->add_subcommand("restore", "Replace the SQLite database with a backup FILE (stop fastgpu first)");
    c->add_option("file", opts->file, "Backup file made by `fastgpu admin backup`")->required()->type_name("FILE");
    common(c);
    c->callback(run("restore"));
  }
  {
    auto* c = admin->add_subcommand(
        "migrate", "Copy a SQLite store into an empty PostgreSQL database: jobs, events, accounts, usage, ledger, audit chain");
    c->add_option("--from", opts->from, "SQLite store (default: sqlite:<home>/fastgpu.db)")->type_name("URL");
    c->add_option("--to", opts->to, "PostgreSQL database, empty (postgres://USER@HOST/DB)")->required()->type_name("URL");
    c->add_option("--home", opts->home, "Data directory (default: $FASTGPU_HOME or ~/.fastgpu)")->type_name("DIR");
    c->callback(run("migrate"));
  }
}

}  // namespace fastgpu::cli
