// Flag declarations of the account, security and billing verbs. Flag storage is owned by the verbs'
// callbacks (shared_ptr captured by value), so it lives as long as the CLI::App.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cli/accounts.h"
#include "cli/app_internal.h"

namespace fastgpu::cli {
namespace {

// A verb group, declared with its description. Its subcommands and flags are declared only when it is named
// in the arguments (see VerbNamed in app.cc): otherwise this returns nullptr and the group's blocks are skipped.
CLI::App* Group(const VerbHost& host, const char* name, const char* desc, const char* footer) {
  auto* g = host.declare(name, desc);
  if (g == nullptr || !host.wanted(name)) return nullptr;
  g->require_subcommand(1);
  g->footer(footer);
  return g;
}

CLI::App* Verb(CLI::App* parent, const char* name, const char* desc, const std::string& examples) {
  auto* c = parent->add_subcommand(name, desc);
  c->footer("\nExample" + std::string(examples.find('\n') != std::string::npos ? "s" : "") + ":\n  " + examples);
  return c;
}

// An option whose absence is distinguishable from an empty value.
CLI::Option* Opt(CLI::App* c, const std::string& name, std::optional<std::string>& dst, const std::string& desc,
                 const std::string& type_name) {
  return c->add_option_function<std::string>(name, [&dst](const std::string& v) { dst = v; }, desc)->type_name(type_name);
}

}  // namespace

void AddAccountVerbs(const VerbHost& host) {
  const Globals& g = host.g;
  const Io& io = host.io;

  // ---- login / logout / whoami ----------------------------------------------------------------------
  if (auto* login = host.declare(
          "login", "Check a server URL and token (GET /v1/whoami) and store them in $FASTGPU_HOME/credentials.json "
                   "(mode 0600) for later commands")) {
    auto token_stdin = std::make_shared<bool>(false);
    login->add_flag("--token-stdin", *token_stdin,
                    "Read the token from standard input (keeps it out of the shell history and ps)");
    login->footer(R"x(
Uses the global --server, --token and --ca flags (or FASTGPU_SERVER / FASTGPU_TOKEN / FASTGPU_CA). Without
--server, the server this home already knows (an earlier login, or the fastgpu up of this home) is used.
Without --token or --token-stdin, the token is asked for on the terminal (not echoed).
Examples:
  fastgpu login --server https://gpu.example.com --token-stdin < token.txt
  fastgpu login --server https://10.0.0.5:8400 --ca /etc/fastgpu/ca.pem
  fastgpu login          (again, with a new token, for the server stored before))x");
    login->callback([&, token_stdin] {
      host.set_action([&, token_stdin]() -> int {
        std::string server = !g.server.empty() ? g.server : io.env("FASTGPU_SERVER").value_or("");
        std::string token = !g.token.empty() ? g.token : io.env("FASTGPU_TOKEN").value_or("");
        std::string ca = !g.ca.empty() ? g.ca : io.env("FASTGPU_CA").value_or("");
        if (*token_stdin && !g.token.empty())
          return ReportError(io.err, InvalidArgument("give --token or --token-stdin, not both"), kExitUsage);
        if (server.empty()) {
          // The server this home knows: credentials.json, else the url file of `fastgpu up`.
          auto known = ResolveClientConfig("", "", io.env, io.read_file, "");
          if (known.ok() && known->server_from != "default") {
            server = known->server_url;
            if (ca.empty() && !known->ca_from.empty()) ca = known->ca_file;
          }
        }
        if (server.empty()) {
          return ReportError(io.err,
                             InvalidArgument("login needs --server URL (this home knows no server yet: " +
                                             ResolveHome(io.env) + ")"),
                             kExitUsage);
        }
        if (*token_stdin) {
          if (io.in == nullptr) return ReportError(io.err, InvalidArgument("no standard input to read the token from"), kExitUsage);
          std::string line;
          std::getline(*io.in, line);
          while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
          token = line;
          if (token.empty())
            return ReportError(io.err, InvalidArgument("--token-stdin: standard input holds no token"), kExitUsage);
        } else if (token.empty()) {
          if (!io.in_is_tty || !io.prompt_hidden) {
            return ReportError(io.err,
                               InvalidArgument("login needs a token: --token TOKEN, --token-stdin (piped), or run it "
                                               "on a terminal to type it"),
                               kExitUsage);
          }
          auto typed = io.prompt_hidden("Token for " + server + " (not echoed): ");
          if (!typed.ok()) return ReportError(io.err, typed.status(), kExitUsage);
          token = *typed;
          if (token.empty()) return ReportError(io.err, InvalidArgument("no token typed"), kExitUsage);
        }
        auto url = NormalizeServerUrl(server);
        if (!url.ok()) return ReportError(io.err, url.status(), kExitUsage);
        if (!ca.empty()) {
          std::error_code ec;
          auto abs = std::filesystem::absolute(ca, ec);  // later commands may run from another directory
          if (!ec) ca = abs.string();
        }
        ClientConfig cfg{*url, token, ca, "--server", "--token", ca.empty() ? "" : "--ca"};
        Credentials creds{*url, token, ca};
        std::string home = ResolveHome(io.env);
        return host.run_with(cfg, [creds, home](Context& ctx) { return Login(ctx, home, creds); }, false);
      });
    });
  }

  if (auto* logout = host.declare("logout", "Forget the stored credentials ($FASTGPU_HOME/credentials.json)")) {
    logout->footer("\nExample:\n  fastgpu logout");
    logout->callback([&] { host.set_action([&] { return Logout(io.out, io.err, ResolveHome(io.env)); }); });
  }

  if (auto* whoami = host.declare("whoami", "Show who the token belongs to and its projects")) {
    whoami->footer("\nExample:\n  fastgpu whoami --output json");
    whoami->callback([&] { host.set_client_action(Whoami, false); });
  }

  // ---- user -----------------------------------------------------------------------------------------
  auto* user = Group(host, "user", "Users (admin)", R"(
Examples:
  fastgpu user create alice --display-name "Alice Liddell"
  fastgpu user list
  fastgpu user disable alice)");
  if (user) {
    auto f = std::make_shared<std::tuple<std::string, bool, std::optional<std::string>>>();
    auto* c = Verb(user, "create", "Create a user", "fastgpu user create bob --admin");
    c->add_option("name", std::get<0>(*f), "User name")->required()->type_name("NAME");
    c->add_flag("--admin", std::get<1>(*f), "Make the user an administrator");
    Opt(c, "--display-name", std::get<2>(*f), "Full name", "TEXT");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return UserCreate(ctx, std::get<0>(*f), std::get<1>(*f), std::get<2>(*f)); },
                             false);
    });
  }
  if (user) {
    auto* c = Verb(user, "list", "List users", "fastgpu user list --output json");
    c->alias("ls");
    c->callback([&host] { host.set_client_action(UserList, false); });
  }
  if (user) {
    auto name = std::make_shared<std::string>();
    auto* c = Verb(user, "get", "Show one user", "fastgpu user get alice");
    c->add_option("name", *name, "User name")->required()->type_name("NAME");
    c->callback([&host, name] { host.set_client_action([name](Context& ctx) { return UserGet(ctx, *name); }, false); });
  }
  for (bool disable : {true, false}) {
    if (!user) break;
    auto name = std::make_shared<std::string>();
    auto* c = Verb(user, disable ? "disable" : "enable",
                   disable ? "Disable a user: their tokens stop working until enabled again" : "Enable a disabled user",
                   disable ? "fastgpu user disable alice" : "fastgpu user enable alice");
    c->add_option("name", *name, "User name")->required()->type_name("NAME");
    c->callback([&host, name, disable] {
      host.set_client_action(
          [name, disable](Context& ctx) { return UserSet(ctx, *name, std::nullopt, disable, std::nullopt); }, false);
    });
  }
  if (user) {
    struct F {
      std::string name;
      std::optional<std::string> admin, display_name;
    };
    auto f = std::make_shared<F>();
    auto* c = Verb(user, "set", "Change a user's admin flag or display name",
                   "fastgpu user set alice --admin true\n  fastgpu user set bob --display-name \"Bob B.\"");
    c->add_option("name", f->name, "User name")->required()->type_name("NAME");
    Opt(c, "--admin", f->admin, "Administrator or not", "true|false");
    Opt(c, "--display-name", f->display_name, "Full name", "TEXT");
    c->callback([&host, f] {
      host.set_client_action(
          [f](Context& ctx) {
            std::optional<bool> admin;
            if (f->admin) {
              auto b = ParseBoolFlag(*f->admin, "--admin");
              if (!b.ok()) return ReportError(ctx.err, b.status(), kExitUsage);
              admin = *b;
            }
            return UserSet(ctx, f->name, admin, std::nullopt, f->display_name);
          },
          false);
    });
  }

  // ---- project --------------------------------------------------------------------------------------
  auto* project = Group(host, "project", "Projects: the tenants, with quotas and budgets", R"(
Examples:
  fastgpu project create ml --description "ML team" --owner alice
  fastgpu project set ml --quota-gpus A100-80GB=8 --quota-gpus '*=16' --budget 500 --budget-hard
  fastgpu project get ml)");
  if (project) {
    struct F {
      std::string name;
      std::optional<std::string> description, owner;
    };
    auto f = std::make_shared<F>();
    auto* c = Verb(project, "create", "Create a project (admin); its owner defaults to you",
                   "fastgpu project create ml --description \"ML team\" --owner alice");
    c->add_option("name", f->name, "Project name")->required()->type_name("NAME");
    Opt(c, "--description", f->description, "What the project is for", "TEXT");
    Opt(c, "--owner", f->owner, "User who becomes its owner", "USER");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return ProjectCreate(ctx, f->name, f->description, f->owner); }, false);
    });
  }
  if (project) {
    auto* c = Verb(project, "list", "List your projects (admins: all)", "fastgpu project list");
    c->alias("ls");
    c->callback([&host] { host.set_client_action(ProjectList, false); });
  }
  if (project) {
    auto name = std::make_shared<std::string>();
    auto* c = Verb(project, "get", "Show a project with its quota and budget", "fastgpu project get ml --output json");
    c->add_option("name", *name, "Project name")->required()->type_name("NAME");
    c->callback([&host, name] { host.set_client_action([name](Context& ctx) { return ProjectGet(ctx, *name); }, false); });
  }
  if (project) {
    struct F {
      std::string name;
      ProjectSetFlags flags;
    };
    auto f = std::make_shared<F>();
    auto* c = Verb(project, "set",
                   "Change a project: description and budget (owner); quota, run-as user and allow-root (admin)",
                   "fastgpu project set ml --quota-gpus A100-80GB=8 --quota-gpus '*=16' --quota-gpu-hours 1000\n"
                   "  fastgpu project set ml --quota-gpus A100-80GB=none          # remove that limit\n"
                   "  fastgpu project set ml --budget 500 --budget-hard            # at $500: hold new jobs, stop running ones\n"
                   "  fastgpu project set ml --run-as mlrunner --allow-root false");
    c->add_option("name", f->name, "Project name")->required()->type_name("NAME");
    Opt(c, "--description", f->flags.description, "What the project is for", "TEXT");
    c->add_option("--quota-gpus", f->flags.quota_gpus,
                  "Max GPUs held at once per type, TYPE=N (repeatable; '*' = all types together; N=none removes)")
        ->allow_extra_args(false)
        ->type_name("TYPE=N");
    Opt(c, "--quota-gpu-hours", f->flags.quota_gpu_hours, "Max GPU-hours per calendar month (0 = unlimited)", "N");
    Opt(c, "--quota-queued", f->flags.quota_queued, "Max queued jobs (0 = unlimited)", "N");
    Opt(c, "--budget", f->flags.budget, "Monthly budget in USD (0 = none)", "USD");
    auto* hard = c->add_flag_callback("--budget-hard", [f] { f->flags.budget_hard = true; },
                                      "At 100 % of the budget also stop running jobs gracefully (new jobs are always held)");
    auto* soft = c->add_flag_callback("--budget-soft", [f] { f->flags.budget_hard = false; },
                                      "At 100 % only hold new jobs; running jobs go on (the default)");
    hard->excludes(soft);
    Opt(c, "--run-as", f->flags.run_as,
        "Named OS user that runs the project's jobs instead of its own uid when the agent runs as root (never "
        "shared with another project; \"\" = back to the project's uid)",
        "USER");
    Opt(c, "--allow-root", f->flags.allow_root, "Let jobs run as root", "true|false");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return ProjectSet(ctx, f->name, f->flags); }, false);
    });
  }

  // ---- member ---------------------------------------------------------------------------------------
  auto* member = Group(host, "member", "Members of a project and their roles (viewer, member, owner)", R"(
Examples:
  fastgpu member add ml bob --role member
  fastgpu member list ml
  fastgpu member remove ml bob)");
  if (member) {
    struct F {
      std::string project, user, role;
    };
    auto f = std::make_shared<F>();
    auto* c = Verb(member, "add", "Add a user to a project, or change their role (owner)",
                   "fastgpu member add ml bob --role viewer");
    c->add_option("project", f->project, "Project")->required()->type_name("PROJECT");
    c->add_option("user", f->user, "User")->required()->type_name("USER");
    c->add_option("--role", f->role, "viewer, member or owner")->required()->type_name("ROLE");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return MemberAdd(ctx, f->project, f->user, f->role); }, false);
    });
  }
  if (member) {
    auto p = std::make_shared<std::string>();
    auto* c = Verb(member, "list", "List the members of a project", "fastgpu member list ml");
    c->alias("ls");
    c->add_option("project", *p, "Project")->required()->type_name("PROJECT");
    c->callback([&host, p] { host.set_client_action([p](Context& ctx) { return MemberList(ctx, *p); }, false); });
  }
  if (member) {
    auto f = std::make_shared<std::pair<std::string, std::string>>();
    auto* c = Verb(member, "remove", "Remove a user from a project (owner)", "fastgpu member remove ml bob");
    c->alias("rm");
    c->add_option("project", f->first, "Project")->required()->type_name("PROJECT");
    c->add_option("user", f->second, "User")->required()->type_name("USER");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return MemberRemove(ctx, f->first, f->second); }, false);
    });
  }

  // ---- token ----------------------------------------------------------------------------------------
  auto* token = Group(host, "token", "API tokens", R"(
Examples:
  fastgpu token create --name laptop --expires 30d > ~/.fastgpu-token
  fastgpu token list
  fastgpu token revoke tok-3f2a)");
  if (token) {
    struct F {
      std::optional<std::string> name, expires, user;
    };
    auto f = std::make_shared<F>();
    auto* c = Verb(token, "create",
                   "Create an API token. The token is printed once on stdout and is not shown again",
                   "fastgpu token create --name ci --expires 90d\n  fastgpu token create --user bob --expires 7d   # admin");
    Opt(c, "--name", f->name, "Label of the token", "NAME");
    Opt(c, "--expires", f->expires, "Lifetime: 30d, 12h, ... (default 90d, at most 366d)", "DURATION");
    Opt(c, "--user", f->user, "Create it for another user (admin)", "USER");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return TokenCreate(ctx, f->name, f->expires, f->user); }, false);
    });
  }
  if (token) {
    auto f = std::make_shared<std::pair<bool, std::string>>();
    auto* c = Verb(token, "list", "List your tokens (admin: --all or --user)", "fastgpu token list --all");
    c->alias("ls");
    c->add_flag("--all,-a", f->first, "Every user's tokens (admin)");
    c->add_option("--user", f->second, "This user's tokens (admin)")->type_name("USER");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return TokenList(ctx, f->first, f->second); }, false);
    });
  }
  if (token) {
    auto id = std::make_shared<std::string>();
    auto* c = Verb(token, "revoke", "Revoke a token now", "fastgpu token revoke tok-3f2a");
    c->add_option("id", *id, "Token id (tok-...)")->required()->type_name("ID");
    c->callback([&host, id] { host.set_client_action([id](Context& ctx) { return TokenRevoke(ctx, *id); }, false); });
  }

  // ---- sa -------------------------------------------------------------------------------------------
  auto* sa = Group(host, "sa", "Service accounts of a project (OAuth2 client credentials)", R"(
Examples:
  fastgpu sa create ml ci --role member
  fastgpu sa list ml
  fastgpu sa delete ml sa-81c2)");
  if (sa) {
    struct F {
      std::string project, name, role = "member";
    };
    auto f = std::make_shared<F>();
    auto* c = Verb(sa, "create",
                   "Create a service account (owner); prints client_id and client_secret once",
                   "fastgpu sa create ml ci --role member");
    c->add_option("project", f->project, "Project")->required()->type_name("PROJECT");
    c->add_option("name", f->name, "Service account name")->required()->type_name("NAME");
    c->add_option("--role", f->role, "viewer, member or owner")->capture_default_str()->type_name("ROLE");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return ServiceAccountCreate(ctx, f->project, f->name, f->role); },
                             false);
    });
  }
  if (sa) {
    auto p = std::make_shared<std::string>();
    auto* c = Verb(sa, "list", "List a project's service accounts (owner)", "fastgpu sa list ml");
    c->alias("ls");
    c->add_option("project", *p, "Project")->required()->type_name("PROJECT");
    c->callback([&host, p] { host.set_client_action([p](Context& ctx) { return ServiceAccountList(ctx, *p); }, false); });
  }
  if (sa) {
    auto f = std::make_shared<std::pair<std::string, std::string>>();
    auto* c = Verb(sa, "delete", "Delete a service account and revoke its tokens (owner)", "fastgpu sa delete ml sa-81c2");
    c->alias("rm");
    c->add_option("project", f->first, "Project")->required()->type_name("PROJECT");
    c->add_option("id", f->second, "Service account id (sa-...)")->required()->type_name("ID");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return ServiceAccountDelete(ctx, f->first, f->second); }, false);
    });
  }

  // ---- secret ---------------------------------------------------------------------------------------
  auto* secret = Group(host, "secret", "Project secrets, given to jobs as environment variables", R"(
Examples:
  printf %s "$WANDB_KEY" | fastgpu secret set WANDB_KEY --project ml
  fastgpu secret set WANDB_KEY --project ml          # on a terminal: prompts without echo
  fastgpu job submit --project ml --secret WANDB_KEY -- python train.py
  fastgpu secret list --project ml)");
  if (secret) {
    auto f = std::make_shared<std::pair<std::string, std::string>>();
    auto* c = Verb(secret, "set",
                   "Create or replace a secret (member). The value is read from stdin (one trailing newline "
                   "is dropped), or typed without echo on a terminal; it never goes on the command line",
                   "printf %s \"$TOKEN\" | fastgpu secret set HF_TOKEN --project ml\n"
                   "  fastgpu secret set DB_PASSWORD --project ml < password.txt");
    c->add_option("name", f->first, "Secret name (A-Z, 0-9, _)")->required()->type_name("NAME");
    c->add_option("--project,-p", f->second, "Project")->required()->type_name("PROJECT");
    c->callback([&host, f] {
      host.set_client_action(
          [&host, f](Context& ctx) {
            auto value = ReadSecretValue(host.io.in, host.io.in_is_tty, host.io.prompt_hidden, f->first);
            if (!value.ok()) return ReportError(ctx.err, value.status(), kExitUsage);
            return SecretSet(ctx, f->second, f->first, *value);
          },
          false);
    });
  }
  if (secret) {
    auto p = std::make_shared<std::string>();
    auto* c = Verb(secret, "list", "List secret names (never values)", "fastgpu secret list --project ml");
    c->alias("ls");
    c->add_option("--project,-p", *p, "Project")->required()->type_name("PROJECT");
    c->callback([&host, p] { host.set_client_action([p](Context& ctx) { return SecretList(ctx, *p); }, false); });
  }
  if (secret) {
    auto f = std::make_shared<std::pair<std::string, std::string>>();
    auto* c = Verb(secret, "delete", "Delete a secret (member)", "fastgpu secret delete WANDB_KEY --project ml");
    c->alias("rm");
    c->add_option("name", f->first, "Secret name")->required()->type_name("NAME");
    c->add_option("--project,-p", f->second, "Project")->required()->type_name("PROJECT");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return SecretDelete(ctx, f->second, f->first); }, false);
    });
  }
  if (secret) {
    auto* c = Verb(secret, "rotate-key", "Re-encrypt every secret under a new master key (admin)",
                   "fastgpu secret rotate-key");
    c->callback([&host] { host.set_client_action(SecretRotateKey, false); });
  }

  // ---- audit ----------------------------------------------------------------------------------------
  auto* audit = Group(host, "audit", "The hash-chained audit log (admin)", R"(
Examples:
  fastgpu audit list --limit 20
  fastgpu audit list --after 1200 --output json
  fastgpu audit verify || echo "audit log was tampered with")");
  if (audit) {
    auto f = std::make_shared<std::pair<std::optional<int64_t>, std::optional<int>>>();
    auto* c = Verb(audit, "list", "List audit records, oldest first", "fastgpu audit list --after 1200 --limit 50");
    c->alias("ls");
    c->add_option_function<int64_t>("--after", [f](const int64_t& v) { f->first = v; }, "Only records after this sequence number")
        ->type_name("SEQ");
    c->add_option_function<int>("--limit", [f](const int& v) { f->second = v; }, "At most N records")->type_name("N");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return AuditList(ctx, f->first, f->second); }, false);
    });
  }
  if (audit) {
    auto* c = Verb(audit, "verify", "Recompute the hash chain; exit 1 and name the first bad record when broken",
                   "fastgpu audit verify");
    c->callback([&host] { host.set_client_action(AuditVerify, false); });
  }
}

void AddBillingVerbs(const VerbHost& host) {
  // ---- price ----------------------------------------------------------------------------------------
  auto* price = Group(host, "price", "Prices per GPU-hour", R"(
Examples:
  fastgpu price list
  fastgpu price set A100-80GB 2.50
  fastgpu price set H100-80GB 4.10 --effective 2026-12-01T00:00:00Z)");
  if (price) {
    auto all = std::make_shared<bool>(false);
    auto* c = Verb(price, "list", "Current prices (--all: with history)", "fastgpu price list --all");
    c->alias("ls");
    c->add_flag("--all,-a", *all, "Include past and future entries");
    c->callback([&host, all] { host.set_client_action([all](Context& ctx) { return PriceList(ctx, *all); }, false); });
  }
  if (price) {
    struct F {
      std::string gpu_type, price;
      std::optional<std::string> effective;
    };
    auto f = std::make_shared<F>();
    auto* c = Verb(price, "set", "Set the price of a GPU type from a moment on (admin); '*' = types without their own",
                   "fastgpu price set A100-80GB 2.50\n  fastgpu price set '*' 1.00 --effective 2026-12-01");
    c->add_option("gpu_type", f->gpu_type, "GPU type, e.g. A100-80GB, or *")->required()->type_name("GPU_TYPE");
    c->add_option("price", f->price, "USD per GPU-hour, e.g. 2.50")->required()->type_name("PRICE_USD");
    Opt(c, "--effective", f->effective, "When the price applies (RFC 3339; default now)", "TIME");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return PriceSet(ctx, f->gpu_type, f->price, f->effective); }, false);
    });
  }

  // ---- usage ----------------------------------------------------------------------------------------
  auto* usage = host.declare("usage", "GPU-hours and cost per project and GPU type for a month");
  if (usage != nullptr && host.wanted("usage")) {
    auto f = std::make_shared<std::pair<std::string, std::string>>();
    auto* c = usage;
    c->footer(R"(
Without --project: all projects you can see (admins: all). Running jobs' accrued cost is shown separately.
Examples:
  fastgpu usage
  fastgpu usage --month 2026-11 --project ml --output json)");
    c->add_option("--month", f->first, "Month YYYY-MM (default: this month)")->type_name("YYYY-MM");
    c->add_option("--project,-p", f->second, "Only this project")->type_name("PROJECT");
    c->callback([&host, f] { host.set_client_action([f](Context& ctx) { return Usage(ctx, f->first, f->second); }, false); });
  }

  // ---- bill -----------------------------------------------------------------------------------------
  auto* bill = Group(host, "bill", "Invoices", R"(
Examples:
  fastgpu bill show --project ml --month 2026-11
  fastgpu bill show --project ml --output csv > ml-2026-11.csv)");
  if (bill) {
    auto f = std::make_shared<std::pair<std::string, std::string>>();
    auto* c = Verb(bill, "show", "A project's invoice for a month: lines per GPU type, credits, amount due",
                   "fastgpu bill show --project ml --month 2026-11\n"
                   "  fastgpu bill show --project ml --output csv      # the server's CSV export");
    c->add_option("--project,-p", f->first, "Project")->required()->type_name("PROJECT");
    c->add_option("--month", f->second, "Month YYYY-MM (default: this month)")->type_name("YYYY-MM");
    c->callback([&host, f] {
      host.set_client_action([f](Context& ctx) { return BillShow(ctx, f->first, f->second); }, /*allow_csv=*/true);
    });
  }

  // ---- credit ---------------------------------------------------------------------------------------
  auto* credit = Group(host, "credit", "Credits of a project (prepaid plans, trial credit, adjustments)", R"(
Examples:
  fastgpu credit list --project ml
  fastgpu credit add --project ml --amount 100 --kind trial_credit --memo "welcome")");
  if (credit) {
    auto p = std::make_shared<std::string>();
    auto* c = Verb(credit, "list", "Credit balance and entries", "fastgpu credit list --project ml");
    c->alias("ls");
    c->add_option("--project,-p", *p, "Project")->required()->type_name("PROJECT");
    c->callback([&host, p] { host.set_client_action([p](Context& ctx) { return CreditList(ctx, *p); }, false); });
  }
  if (credit) {
    struct F {
      std::string project, amount, kind = "adjustment";
      std::optional<int> months;
      std::optional<std::string> memo;
    };
    auto f = std::make_shared<F>();
    auto* c = Verb(credit, "add", "Add credit to a project (admin)",
                   "fastgpu credit add --project ml --amount 100.00 --kind trial_credit\n"
                   "  fastgpu credit add --project ml --amount 6000 --kind prepaid --months 6\n"
                   "  fastgpu credit add --project ml --amount -25 --memo \"refund reversed\"   # adjustment");
    c->add_option("--project,-p", f->project, "Project")->required()->type_name("PROJECT");
    c->add_option("--amount", f->amount, "USD, e.g. 100.00 (negative only for adjustments)")->required()->type_name("USD");
    c->add_option("--kind", f->kind, "adjustment, prepaid or trial_credit")->capture_default_str()->type_name("KIND");
    c->add_option_function<int>("--months", [f](const int& v) { f->months = v; }, "Length of a prepaid plan")
        ->type_name("N");
    Opt(c, "--memo", f->memo, "Note kept with the entry", "TEXT");
    c->callback([&host, f] {
      host.set_client_action(
          [f](Context& ctx) { return CreditAdd(ctx, f->project, f->amount, f->kind, f->months, f->memo); }, false);
    });
  }
}

}  // namespace fastgpu::cli
