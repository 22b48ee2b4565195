// Shared by the two files that declare the `fastgpu` verbs with CLI11 (app.cc, app_accounts.cc).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "cli/app.h"
#include "cli/commands.h"

namespace CLI {
class App;
}

namespace fastgpu::cli {

struct Globals {
  std::string server;
  std::string token;
  std::string ca;
  std::string output = "table";
};

using ClientVerb = std::function<int(Context&)>;

// What a verb group needs from RunApp. Lives until the chosen action has run.
struct VerbHost {
  const Globals& g;
  const Io& io;
  // The action to run after parsing, without a client (login, logout).
  std::function<void(std::function<int()>)> set_action;
  // Runs `verb` now with a client for `cfg` (output format and colour as for every verb).
  std::function<int(const ClientConfig& cfg, const ClientVerb& verb, bool allow_csv)> run_with;
  // The action to run with a client built from the resolved configuration.
  std::function<void(ClientVerb, bool allow_csv)> set_client_action;
  // Whether a top-level verb is named in the arguments: only those get their subcommands and flags.
  std::function<bool(std::string_view verb)> wanted;
  // Declares a top-level verb (app.add_subcommand) when it is named or help is asked for; else nullptr.
  std::function<CLI::App*(const char* name, const std::string& desc)> declare;
};

// login, logout, whoami, user, project, member, token, sa, secret, audit.
void AddAccountVerbs(const VerbHost& host);
// price, usage, bill, credit.
void AddBillingVerbs(const VerbHost& host);
// agent, node (app_fleet.cc).
void AddFleetVerbs(const VerbHost& host, const std::function<int(const agent::AgentRunOptions&)>& run_agent);
// admin (app_admin.cc).
void AddAdminVerbs(const VerbHost& host, const std::function<int(const server::AdminOptions&)>& run_admin);
// reservation (app_reservations.cc).
void AddReservationVerbs(const VerbHost& host);

}  // namespace fastgpu::cli
