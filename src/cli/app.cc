#include "cli/app.h"

#include <unistd.h>

#include <set>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <algorithm>
#include <charconv>
#include <memory>
#include <optional>
#include <ostream>

#include "cli/accounts.h"
#include "cli/app_internal.h"
#include "cli/exec_cli.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/job_file.h"
#include "cli/manpage.h"
#include "cli/sync_cli.h"
#include "bench/scheduler_bench.h"
#include "sim/simulate_command.h"

#ifndef FASTGPU_VERSION
#define FASTGPU_VERSION "dev"
#endif

namespace fastgpu::cli {
namespace {

std::string SchedulerBenchJson(const bench::SchedulerBenchResult& r) {
  nlohmann::json j = {{"decisions", r.decisions},     {"seconds", r.seconds},
                      {"decisions_per_s", r.decisions_per_s}, {"binds", r.binds},
                      {"binds_per_s", r.binds_per_s}, {"pending", r.pending},
                      {"preemptions", r.preemptions}, {"gpus", r.gpus},
                      {"allocated_milli", r.allocated_milli}, {"rounds", r.rounds},
                      {"scheduler", r.scheduler}};
  return j.dump(2);
}

constexpr const char* kMainFooter = R"(
Examples:
  fastgpu up                                   # server + local agent; simulated GPUs when none are found
  fastgpu up --sim-gpus 4xA100-80GB,2xH100-80GB --listen 127.0.0.1:8400
  fastgpu gpu list
  fastgpu job submit --gpus 2 --name hello -- sh -c 'echo $CUDA_VISIBLE_DEVICES'
  fastgpu job submit --gpus 0.25 --runtime 30m -- python infer.py
  fastgpu job list --state QUEUED,RUNNING
  fastgpu job logs -f j-1
  fastgpu job wait j-1 --timeout 1h && echo done
  fastgpu job get j-1 --output json
  fastgpu login --server https://gpu.example.com --token fgp_... [--ca ca.pem]
  fastgpu project set ml --quota-gpus A100-80GB=8 --budget 500 --budget-hard
  fastgpu bill show --project ml --month 2026-11

Where the client connects: --server / --token / --ca, else $FASTGPU_SERVER / $FASTGPU_TOKEN / $FASTGPU_CA,
else what `fastgpu login` stored in $FASTGPU_HOME/credentials.json, else the url and admin.token files that
`fastgpu up` writes to $FASTGPU_HOME (default ~/.fastgpu). https:// certificates are always verified.
Exit codes: 0 ok; 1 the request failed (or the waited-for job failed); 2 bad input (nothing was sent), or
`job wait` timed out; 3 not found; 4 not logged in or not allowed; 5 the server cannot be reached.)";

constexpr const char* kSubmitFooter = R"(
The command goes after `--`; everything after it is passed to the job unchanged.
A job file (-f) holds the same fields; flags given on the command line override it:
  name: train-resnet
  command: [python, train.py, --epochs, "90"]    # or a shell string: "python train.py > out.txt"
  gpus: 2                                        # fractions allowed: 0.25
  gpu_type: A100-80GB                            # or both at once: gpus: A100-80GB:2
  memory: 40GiB                                  # GPU memory per GPU
  runtime: 24h
  priority: 70                                   # 0..100, higher runs first
  env: {BATCH: "256"}
  workdir: /data/run1
  image: localhost/train:1                       # run in this OCI image (podman on the node; never pulled)
  project: vision
  max_retries: 2
  secrets: [WANDB_KEY]                           # project secrets, given as env vars
  processes: per-gpu                             # the command once per GPU (default per-node: once per node)
  after_ok: [j-3]                                # start once j-3 SUCCEEDED (after: once it ended at all)
dstack/SkyPilot style is accepted too: resources: {gpu: A100-80GB:2} (or gpu: 2, or gpu: A100-80GB), and
--gpus A100-80GB:2. GPU types are matched exactly as the cluster names them (fastgpu gpu list): A100 is not
A100-80GB. A type or count given twice must agree. Errors in the file say where: job.yaml:3:7: ...

Examples:
  fastgpu job submit -- nvidia-smi
  fastgpu job submit --gpus 2 --gpu-type A100-80GB --name train -- python train.py --epochs 90
  fastgpu job submit --gpus 0.25 --memory 16GiB --runtime 30m --env BATCH=64 -- python infer.py
  fastgpu job submit -f job.yaml --priority 90
  fastgpu job submit --project ml --secret WANDB_KEY -- python train.py
  fastgpu job submit --gpus 8 --gpu-type H100-80GB --runtime 24h --dry-run -- python train.py
  fastgpu job submit --output json -- sleep 60        # prints the whole job object
  fastgpu job submit --gpus 4 --process-per-gpu -- python train.py   # 4 processes, RANK 0..3
  fastgpu job submit --image localhost/train:1 --gpus 2 -- python train.py   # in a container (podman)
--process-per-gpu starts the command once per GPU (on every node of a multi-node job) instead of once per
node, with RANK, LOCAL_RANK, WORLD_SIZE and LOCAL_WORLD_SIZE counted per process (as torchrun does: each
process sees all of its node's GPUs and picks its own with LOCAL_RANK); MASTER_ADDR and MASTER_PORT are set.
When one process fails, the others are stopped and the job fails with its exit code. Whole GPUs only.
Prints the new job's id (or the job as JSON with --output json). --dry-run prints the price per hour and
the estimate for the runtime limit; nothing is created.)";

// Declaring every verb's subcommands and flags with CLI11 costs more CPU than a short command's whole run
// (about 3M instructions), so a top-level verb is declared only when its name is among the arguments (or help
// is asked for: `fastgpu --help` lists them all), and gets its subcommands and flags only when named. An
// option value that happens to equal a verb's name only makes that verb be declared too.
bool VerbNamed(const std::vector<std::string>& args, std::string_view verb) {
  return std::find(args.begin(), args.end(), verb) != args.end();
}

std::string ListenFooter() {
  return R"(
Examples:
  fastgpu up
  fastgpu up --sim-gpus 8xH100-80GB --policy fair-share
  fastgpu up --home /tmp/fg --listen 127.0.0.1:0      # port 0 picks a free port (see <home>/url)
  fastgpu up --sim-gpus none                          # only real GPUs
  fastgpu up --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem)";
}

void AddUpOptions(CLI::App* cmd, server::UpOptions& o) {
  cmd->add_option("--home", o.home, "Data directory (default: $FASTGPU_HOME or ~/.fastgpu)");
  cmd->add_option("--store", o.store,
                  "Database: sqlite:PATH or postgres://USER@HOST[:PORT]/DB (a libpq URI; "
                  "?host=/run/postgresql for a Unix socket). Default: sqlite:<home>/fastgpu.db")
      ->type_name("URL");
  cmd->add_option("--listen", o.listen, "HOST:PORT to listen on; port 0 picks a free port")->capture_default_str();
  cmd->add_option("--sim-gpus", o.sim_gpus,
                  "Simulated GPUs: 'auto' (real GPUs if NVML finds any, else 4xA100-80GB), 'none', or a spec "
                  "such as 4xA100-80GB,2xH100-80GB")
      ->capture_default_str();
  cmd->add_option("--policy", o.policy,
                  "Scheduling policy: default (fair-las: priority, then least attained service, fair across "
                  "projects, no runtime estimates needed), priority, fifo, fair-share, sjf, las, backfill")
      ->capture_default_str();
  cmd->add_option("--placement", o.placement, "GPU placement (best-fit, spread, ...)")->capture_default_str();
  cmd->add_option("--preempt-min-runtime", o.preempt_min_runtime,
                  "A running job may be preempted only after it has run this long since it started or resumed "
                  "(0 = at once)")
      ->capture_default_str()
      ->type_name("DURATION");
  cmd->add_flag("--preempt-across-projects", o.preempt_across_projects,
                "Let a job preempt other projects' jobs even while its own project holds at least its fair share "
                "of the GPUs (by default it may not)");
  cmd->add_option("--node-name", o.node_name, "Name of the local node (default: host name)");
  cmd->add_option("--tls-cert", o.tls_cert, "PEM certificate chain: serve HTTPS (with --tls-key)")->type_name("FILE");
  cmd->add_option("--tls-key", o.tls_key, "PEM private key of --tls-cert")->type_name("FILE");
  cmd->add_flag("--insecure", o.insecure, "Allow plain HTTP on a non-loopback address (not recommended)");
  cmd->add_option("--trial-credit", o.trial_credit, "Free-trial credit in USD for each new project (0 = none)")
      ->capture_default_str()
      ->type_name("USD");
  cmd->add_option("--trial-days", o.trial_days, "Days the trial credit stays valid")->capture_default_str();
  cmd->add_option("--node-timeout", o.node_timeout,
                  "A remote node silent this long is DOWN: its jobs end LOST and are requeued while retries remain")
      ->capture_default_str()
      ->type_name("DURATION");
  cmd->add_flag("--standby", o.standby,
                "When another fastgpu server leads the database, wait and take over when it stops (instead of "
                "refusing to start)");
  cmd->add_option("--stop-grace", o.stop_grace,
                  "Time a job gets between SIGTERM and SIGKILL when it is cancelled, hits its runtime limit or is "
                  "fenced (default 10s)")
      ->type_name("DURATION");
  cmd->add_option("--fence-timeout", o.fence_timeout,
                  "A remote node that cannot reach the server this long stops its jobs by itself, and the retries "
                  "of a DOWN node's jobs start only after that (plus the stop grace), so a job never runs twice "
                  "during a network split. 0 = no fencing")
      ->capture_default_str()
      ->type_name("DURATION");
  cmd->add_option("--job-uid-range", o.job_uid_range,
                  "Unix uids given to projects for their jobs, one each, never reused (when running as root; "
                  "default 1900000000-1999999999)")
      ->type_name("FIRST-LAST");
  cmd->add_option("--max-sync-mib", o.max_sync_mib,
                  "The largest code archive `job submit --sync DIR` may upload, in MiB (docs/sync.md)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{16384}));
  cmd->add_option("--metrics-token-file", o.metrics_token_file,
                  "File holding a token (16+ characters, e.g. from `openssl rand -hex 32`) that may scrape GET /metrics "
                  "and nothing else; admins' API tokens may scrape too (docs/monitoring.md)")
      ->type_name("FILE");
  cmd->footer(ListenFooter());
}

}  // namespace

namespace {

// Optimal string alignment distance (edits, with a swap of neighbours counting one).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The closest of `names` to `word` when it is close enough to be a typo of it.
std::optional<std::string> Closest(std::string_view word, const std::vector<std::string>& names) {
  const size_t limit = word.size() <= 3 ? 1 : 2;
  std::optional<std::string> best;
  size_t best_d = limit + 1;
  for (const auto& n : names) {
    const size_t d = EditDistance(word, n);
    if (d < best_d && d > 0) {
      best = n;
      best_d = d;
    }
  }
  return best;
}

// The deepest subcommand the parse entered ("fastgpu job submit" → that App).
const CLI::App* Deepest(const CLI::App& app) {
  const CLI::App* cur = &app;
  for (bool deeper = true; deeper;) {
    deeper = false;
    for (const CLI::App* sub : cur->get_subcommands([](const CLI::App* a) { return a->parsed(); })) {
      cur = sub;
      deeper = true;
      break;
    }
  }
  return cur;
}

// "fastgpu job submit --help" for the deepest command the parse entered.
std::string HelpCommand(const CLI::App& app) {
  std::vector<std::string> path;
  for (const CLI::App* cur = Deepest(app); cur != nullptr && cur->get_parent() != nullptr; cur = cur->get_parent())
    path.insert(path.begin(), cur->get_name());
  std::string out = "fastgpu";
  for (const auto& p : path) out += " " + p;
  return out + " --help";
}

// A line for a mistyped verb or flag ("unknown command 'sumbit' (did you mean 'submit'?) ..."), when one is
// close to a known name; else nothing (the parser's own message is used).
std::optional<std::string> Typo(const CLI::App& app, const std::vector<std::string>& args,
                                const std::set<std::string, std::less<>>& vocabulary) {
  const CLI::App* cur = Deepest(app);
  std::vector<std::string> verbs(vocabulary.begin(), vocabulary.end());
  for (const CLI::App* sub : cur->get_subcommands({})) verbs.push_back(sub->get_name());
  std::vector<std::string> flags;
  for (const CLI::App* a = cur; a != nullptr; a = a->get_parent()) {
    for (const CLI::Option* o : a->get_options()) {
      for (const auto& l : o->get_lnames()) flags.push_back("--" + l);
    }
  }
  for (const std::string& a : args) {
    if (a == "--") break;
    if (a.rfind("--", 0) == 0) {
      const std::string flag = a.substr(0, a.find('='));
      if (std::find(flags.begin(), flags.end(), flag) != flags.end()) continue;
      if (auto near = Closest(flag, flags))
        return "unknown option '" + flag + "' (did you mean '" + *near + "'?); run '" + HelpCommand(app) + "'";
      continue;
    }
    if (a.empty() || a[0] == '-' || vocabulary.count(a) > 0) continue;
    if (auto near = Closest(a, verbs))
      return "unknown command '" + a + "' (did you mean '" + *near + "'?); run '" + HelpCommand(app) + "'";
  }
  return std::nullopt;
}

// `fastgpu manpage`: the head from the top-level declarations, then each verb's sections from a run that names
// it (verbs declare their options only when named); `fastgpu manpage VERB` writes that verb's sections only.
int WriteManPage(const CLI::App& app, const std::vector<std::string>& args, const Hooks& hooks, const Io& io) {
  if (args.size() > 2) return ReportError(io.err, InvalidArgument("manpage takes at most one command name"), kExitUsage);
  if (args.size() == 2) {
    for (const CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() == args[1]) {
        WriteManVerb(*sub, io.out);
        return kExitOk;
      }
    }
    return ReportError(io.err, InvalidArgument("no command '" + args[1] + "'"), kExitUsage);
  }
  // SOURCE_DATE_EPOCH (reproducible builds) fixes the page's date.
  UnixMillis when = io.clock.NowMillis();
  if (auto epoch = io.env("SOURCE_DATE_EPOCH"); epoch && !epoch->empty()) {
    int64_t secs = -1;
    auto [end, ec] = std::from_chars(epoch->data(), epoch->data() + epoch->size(), secs);
    if (ec != std::errc() || end != epoch->data() + epoch->size() || secs < 0 || secs > 253402300799)
      return ReportError(io.err, InvalidArgument("SOURCE_DATE_EPOCH '" + *epoch + "' is not Unix seconds"), kExitUsage);
    when = secs * 1000;
  }
  WriteManHead(app, FASTGPU_VERSION, FormatTimestamp(when).substr(0, 10), io.out);
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (sub->get_name().rfind("__", 0) == 0) continue;
    int rc = RunApp({"manpage", sub->get_name()}, hooks, io);
    if (rc != kExitOk) return rc;
  }
  WriteManTail(io.out);
  io.out << std::flush;
  return kExitOk;
}

// Candidates for the last of `words` (the word being completed) after the others, one per line: the
// subcommands of the command they name, or its flags (and the global ones) when the word starts with '-'.
int Complete(const CLI::App& app, const std::vector<std::string>& words, std::ostream& out) {
  const CLI::App* cur = &app;
  const std::string current = words.empty() ? "" : words.back();
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == "--") return 0;  // the job's own command: nothing to offer
    if (!w.empty() && w[0] == '-') {
      // A flag that takes a value consumes the next word.
      for (const CLI::App* a = cur; a != nullptr; a = a->get_parent()) {
        const CLI::Option* o = nullptr;
        try {
          o = a->get_option_no_throw(w.substr(0, w.find('=')));
        } catch (...) {
          o = nullptr;
        }
        if (o != nullptr) {
          if (o->get_type_size() != 0 && w.find('=') == std::string::npos) ++i;
          break;
        }
      }
      continue;
    }
    for (const CLI::App* sub : cur->get_subcommands({})) {
      if (sub->get_name() == w) {
        cur = sub;
        break;
      }
    }
  }
  std::vector<std::string> cands;
  if (!current.empty() && current[0] == '-') {
    for (const CLI::App* a = cur; a != nullptr; a = a->get_parent())
      for (const CLI::Option* o : a->get_options())
        for (const auto& l : o->get_lnames()) cands.push_back("--" + l);
  } else {
    for (const CLI::App* sub : cur->get_subcommands({})) cands.push_back(sub->get_name());
  }
  std::sort(cands.begin(), cands.end());
  cands.erase(std::unique(cands.begin(), cands.end()), cands.end());
  for (const auto& c : cands)
    if (c.rfind(current, 0) == 0 && c != "__complete") out << c << "\n";
  return 0;
}

int PrintCompletionScript(const std::string& shell, std::ostream& out) {
  if (shell == "fish") {
    out << "# fastgpu completion for fish (fastgpu completion fish)\n"
           "complete -c fastgpu -f -a '(fastgpu __complete (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'\n";
    return 0;
  }
  if (shell == "zsh") out << "#compdef fastgpu\n# fastgpu completion for zsh (fastgpu completion zsh)\n"
                             "autoload -U +X bashcompinit && bashcompinit\n";
  else out << "# fastgpu completion for bash (fastgpu completion bash)\n";
  out << "_fastgpu() {\n"
         "  local IFS=$'\\n'\n"
         "  COMPREPLY=($(fastgpu __complete \"${COMP_WORDS[@]:1:COMP_CWORD}\" 2>/dev/null))\n"
         "}\n"
         "complete -o default -F _fastgpu fastgpu\n";
  return 0;
}

// A setting of the user's config (<home>/config.json); nothing when unset or unreadable (the `config` verb reports
// a broken file).
std::optional<std::string> ConfigValue(const Io& io, const std::string& key) {
  auto v = ReadUserConfig(io.read_file, ResolveHome(io.env), key);
  return v.ok() ? *v : std::nullopt;
}

// The product's own word for a job works too: `fastgpu task …` is `fastgpu job …` (the first verb only, so that a
// job named "task" or a command `task` is left alone).
std::vector<std::string> WithAliases(std::vector<std::string> args) {
  for (size_t i = args.empty() || args[0] != "__complete" ? 0 : 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (a == "--server" || a == "--token" || a == "--ca" || a == "--output" || a == "-o") {
      ++i;  // its value
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;
    if (a == "task") args[i] = "job";
    break;
  }
  return args;
}

}  // namespace

int RunApp(const std::vector<std::string>& args_in, const Hooks& hooks, const Io& io) {
  const std::vector<std::string> args = WithAliases(args_in);
  CLI::App app{"FastGPU: a self-hostable GPU cloud. Submit jobs to GPUs, fractional or whole, and watch them run.",
               "fastgpu"};
  app.fallthrough();  // global flags are accepted after the verb too
  app.require_subcommand(1);
  app.footer(kMainFooter);
  app.set_version_flag("--version", std::string("fastgpu ") + FASTGPU_VERSION);

  Globals g;
  app.add_option("--server", g.server, "Server URL (env FASTGPU_SERVER; default: $FASTGPU_HOME/url)")->type_name("URL");
  app.add_option("--token", g.token, "API token (env FASTGPU_TOKEN; default: $FASTGPU_HOME/admin.token)")->type_name("TOKEN");
  app.add_option("--ca", g.ca, "CA bundle (PEM) trusted for https:// servers (env FASTGPU_CA)")->type_name("FILE");
  app.add_option("--output,-o", g.output, "Output format: table or json (bill show: also csv)")
      ->capture_default_str()
      ->type_name("FORMAT");

  std::function<int()> action;

  // Runs a client verb with a given configuration.
  auto run_with = [&](const ClientConfig& cfg, const ClientVerb& verb, bool allow_csv) -> int {
    auto format = ParseOutputFormat(g.output, allow_csv);
    if (!format.ok()) return ReportError(io.err, format.status(), kExitUsage);
    Client client(cfg.server_url, cfg.token, cfg.ca_file);
    // A home other than the default is named when the server cannot be reached: the usual cause of "nothing
    // runs there" is a shell without the FASTGPU_HOME of the `fastgpu up` that runs.
    if (auto home = io.env("FASTGPU_HOME"); home && !home->empty() && cfg.server_from != "--server" &&
                                             cfg.server_from != "FASTGPU_SERVER") {
      client.set_url_origin("from FASTGPU_HOME=" + *home);
    }
    bool color = io.out_is_tty && !io.env("NO_COLOR").has_value() && io.env("TERM").value_or("") != "dumb";
    Context ctx{client, io.out, io.err, *format, color, io.clock};
    ctx.progress = io.err_is_tty && io.env("TERM").value_or("") != "dumb";
    return verb(ctx);
  };
  // Runs a client verb with the resolved configuration.
  auto client_verb = [&](ClientVerb verb, bool allow_csv = false) {
    return [&, verb, allow_csv]() -> int {
      auto format = ParseOutputFormat(g.output, allow_csv);  // checked before the config, as before
      if (!format.ok()) return ReportError(io.err, format.status(), kExitUsage);
      auto cfg = ResolveClientConfig(g.server, g.token, io.env, io.read_file, g.ca);
      if (!cfg.ok()) return ReportError(io.err, cfg.status(), kExitUsage);
      return run_with(*cfg, verb, allow_csv);
    };
  };
  // A top-level verb is declared when it is named, or when help is asked for (`fastgpu --help` lists them all).
  // `fastgpu __complete WORD… CURRENT` (what the shell completion scripts call): every verb is declared, as for
  // help, and the candidates for CURRENT are printed instead of running anything.
  const bool completing = !args.empty() && args[0] == "__complete";
  // `fastgpu manpage [VERB]`: every verb is declared as for help; the page (or VERB's part of it) is written from
  // the declarations instead of parsing.
  const bool manpage = !args.empty() && args[0] == "manpage" && !VerbNamed(args, "-h") && !VerbNamed(args, "--help");
  const bool help = completing || manpage || VerbNamed(args, "-h") || VerbNamed(args, "--help");
  // Every verb name asked about (declared or not): the words a typo is compared with.
  std::set<std::string, std::less<>> vocabulary;
  auto named = [&](std::string_view verb) {
    vocabulary.emplace(verb);
    return VerbNamed(args, verb);
  };
  auto declare = [&](const char* name, const std::string& desc) -> CLI::App* {
    return named(name) || help ? app.add_subcommand(name, desc) : nullptr;
  };
  VerbHost host{g, io, [&](std::function<int()> a) { action = std::move(a); }, run_with,
                [&](ClientVerb verb, bool allow_csv) { action = client_verb(std::move(verb), allow_csv); },
                named, declare};

  // ---- up / server -------------------------------------------------------------------------------
  server::UpOptions up_opts;
  auto* up = declare("up", "Run the server, a local agent and the database in this process");
  if (VerbNamed(args, "up")) {
    AddUpOptions(up, up_opts);
    up->add_option("--checkpoint-root", up_opts.checkpoint_root,
                   "Where jobs keep their checkpoints: DIR/<job id> is each job's FASTGPU_CHECKPOINT_DIR, kept across "
                   "its attempts (default: <home>/checkpoints; see docs/scheduling.md)")
        ->type_name("DIR");
  }
  auto run_up = [&]() -> int {
    if (up_opts.home.empty() && !io.env("FASTGPU_HOME").has_value()) {
      up_opts.checkpoint_fallback_base = std::string(kCheckpointFallbackBase);
    }
    if (up_opts.home.empty()) up_opts.home = ResolveHome(io.env);
    if (!hooks.run_up) return ReportError(io.err, Internal("this build cannot run the server"), kExitFailure);
    return hooks.run_up(up_opts);
  };
  if (up) up->callback([&] { action = run_up; });
  auto* server_cmd = declare(
      "server", "Run the server without a local agent: GPU nodes join with `fastgpu agent --join-token` (fleet mode)");
  if (VerbNamed(args, "server")) AddUpOptions(server_cmd, up_opts);
  if (server_cmd) server_cmd->callback([&] {
    up_opts.local_agent = false;
    action = run_up;
  });

  // ---- version -----------------------------------------------------------------------------------
  if (auto* version = declare("version", "Print the client version")) {
    version->callback([&] {
      action = [&] {
        io.out << "fastgpu " << FASTGPU_VERSION << "\n";
        return kExitOk;
      };
    });
  }

  // ---- job ---------------------------------------------------------------------------------------
  auto* job = declare("job", "Submit, list, inspect and cancel jobs (`fastgpu task` is the same)");
  if (job) {
    job->require_subcommand(1);
    job->footer(R"(
Examples:
  fastgpu job submit --gpus 1 -- python train.py
  fastgpu job list --state RUNNING
  fastgpu job logs -f j-3
  fastgpu job wait j-3 --timeout 2h
  fastgpu job cancel j-3)");
  }

  SubmitFlags submit;
  std::string s_gpus, s_type, s_mem, s_runtime, s_prio, s_name, s_workdir, s_project, s_retries, s_file, s_image;
  JobListFlags list_flags;
  JobCancelFlags cancel_flags;
  int list_limit = 0;
  std::string job_id;
  bool follow = false;
  int log_rank = 0;
  JobLogsFlags logs_flags;
  std::string wait_timeout;
  std::string migrate_reason;
  std::string s_sync, files_path, files_out;  // job submit --sync, job files
  ExecFlags exec_flags;  // job exec, job attach
  CLI::Option* o_sync = nullptr;
  bool migrate_force = false;
  // Flags whose presence is checked in the callbacks (declared only when `job` is named).
  CLI::Option *o_gpus = nullptr, *o_type = nullptr, *o_mem = nullptr, *o_runtime = nullptr, *o_prio = nullptr;
  CLI::Option *o_name = nullptr, *o_workdir = nullptr, *o_project = nullptr, *o_retries = nullptr, *o_file = nullptr;
  CLI::Option* o_image = nullptr;
  CLI::Option* o_array = nullptr;
  std::string s_array;
  int log_task = -1;
  CLI::Option* o_limit = nullptr;
  CLI::Option *o_ckpt_sig = nullptr, *o_ckpt_grace = nullptr, *o_begin = nullptr, *o_deadline = nullptr;
  std::string s_ckpt_sig, s_ckpt_grace, s_begin, s_deadline;
  if (VerbNamed(args, "job")) {
    // Likewise one level down: only the named `job` subcommands (all of them for help).
    auto sub_named = [&](std::string_view name) { return named(name) || help; };
    if (sub_named("submit")) {
      auto* sub = job->add_subcommand("submit", "Submit a job; prints its id");
      o_gpus = sub->add_option("--gpus", s_gpus,
                               "GPUs per job, fractions allowed (default 1; 0.25 = a quarter), or TYPE:N (A100-80GB:2)")
                   ->type_name("N");
      o_type = sub->add_option("--gpu-type", s_type, "GPU type, e.g. A100-80GB (default: any)")->type_name("TYPE");
      o_mem = sub->add_option("--memory", s_mem, "GPU memory per GPU: MiB or 16GiB, 512MiB")->type_name("SIZE");
      o_runtime = sub->add_option("--runtime", s_runtime, "Runtime limit: 30m, 24h, 1h30m (default: none)")->type_name("DURATION");
      o_prio = sub->add_option("--priority", s_prio, "Priority 0..100, higher first (default 50)")->type_name("0..100");
      o_name = sub->add_option("--name", s_name, "Job name")->type_name("NAME");
      sub->add_option("--env", submit.env, "Environment variable NAME=VALUE (repeatable)")
          ->allow_extra_args(false)
          ->type_name("K=V");
      o_workdir = sub->add_option("--workdir", s_workdir,
                                  "Working directory of the process: an absolute path on the node that runs it "
                                  "(default: a fresh directory of the job's own)")
                      ->type_name("DIR");
      o_sync = sub->add_option("--sync", s_sync,
                               "Upload DIR (minus what .gitignore/.fastgpuignore exclude; unchanged trees are not sent "
                               "again) and start the job in a copy of it on its node (docs/sync.md)")
                   ->type_name("DIR");
      o_image = sub->add_option("--image", s_image,
                                "Run the command in this OCI image with podman on the node (it must be there: jobs "
                                "never pull; default: a plain process)")
                    ->type_name("IMAGE");
      o_array = sub->add_option("--array", s_array,
                                "A job array: one task per index (0-99, 1,3,5-7, 0-99:2), at most N at once with %N "
                                "(0-99%8); each task gets FASTGPU_ARRAY_INDEX")
                    ->type_name("INDICES[%N]");
      sub->add_flag("--here", submit.here,
                    "Run in the directory you submit from (only with a server that runs jobs on this machine, "
                    "i.e. fastgpu up)");
      o_project = sub->add_option("--project", s_project, "Project to account the job to (default: default)")->type_name("PROJECT");
      o_retries = sub->add_option("--max-retries", s_retries, "Requeues after the node is lost (default 0)")->type_name("N");
      o_file = sub->add_option("-f,--file", s_file, "Job file (YAML); flags override its fields")->type_name("FILE");
      sub->add_option("--secret", submit.secrets, "Project secret to give the job as an env var (repeatable)")
          ->allow_extra_args(false)
          ->type_name("NAME");
      sub->add_option("--after", submit.after, "Start only once these jobs have ended, in any state (Slurm afterany)")
          ->allow_extra_args(false)
          ->type_name("ID[,ID]");
      sub->add_option("--after-ok", submit.after_ok,
                      "Start only once these jobs have SUCCEEDED; cancelled with the reason if one does not (Slurm "
                      "afterok)")
          ->allow_extra_args(false)
          ->type_name("ID[,ID]");
      sub->add_flag("--preemptible", submit.preemptible,
                    "May be stopped for a more urgent job and requeued; gets --checkpoint-signal first and "
                    "FASTGPU_CHECKPOINT_DIR to save its work (default: never preempted)");
      o_ckpt_sig = sub->add_option("--checkpoint-signal", s_ckpt_sig,
                                   "Signal sent before a preemption or migration (default SIGUSR1)")
                       ->type_name("SIG");
      o_ckpt_grace = sub->add_option("--checkpoint-grace", s_ckpt_grace,
                                     "Time between the checkpoint signal and SIGTERM (default 60s, at most 1h)")
                         ->type_name("DURATION");
      o_begin = sub->add_option("--begin", s_begin, "Not started before TIME: 2026-12-08T10:00:00Z, now+2h, +30m")
                    ->type_name("TIME");
      o_deadline = sub->add_option("--deadline", s_deadline,
                                   "Must finish by TIME; refused at once when its --runtime cannot end by then")
                       ->type_name("TIME");
      sub->add_flag("--dry-run", submit.dry_run, "Print the price per hour and the estimate; submit nothing");
      sub->add_flag("--process-per-gpu", submit.process_per_gpu,
                    "Start the command once per GPU, with RANK/LOCAL_RANK/WORLD_SIZE per process (default: once "
                    "per node)");
      sub->add_option("command", submit.command, "Command and arguments, after --")->type_name("CMD");
      sub->footer(kSubmitFooter);
      sub->callback([&] {
        auto set = [](CLI::Option* o, const std::string& v, std::optional<std::string>& dst) {
          if (o->count() > 0) dst = v;
        };
        set(o_gpus, s_gpus, submit.gpus);
        set(o_type, s_type, submit.gpu_type);
        set(o_mem, s_mem, submit.memory);
        set(o_runtime, s_runtime, submit.runtime);
        set(o_prio, s_prio, submit.priority);
        set(o_name, s_name, submit.name);
        set(o_workdir, s_workdir, submit.workdir);
        set(o_sync, s_sync, submit.sync);
        set(o_image, s_image, submit.image);
        set(o_array, s_array, submit.array);
        set(o_project, s_project, submit.project);
        // The user's default project: FASTGPU_PROJECT, else `fastgpu config set project P`.
        if (!submit.project) {
          if (auto p = io.env("FASTGPU_PROJECT"); p && !p->empty()) {
            submit.project = *p;
          } else if (auto c = ConfigValue(io, "project")) {
            submit.project = *c;
          }
        }
        set(o_retries, s_retries, submit.max_retries);
        set(o_file, s_file, submit.file);
        set(o_ckpt_sig, s_ckpt_sig, submit.checkpoint_signal);
        set(o_ckpt_grace, s_ckpt_grace, submit.checkpoint_grace);
        set(o_begin, s_begin, submit.begin);
        set(o_deadline, s_deadline, submit.deadline);
        submit.now = io.clock.NowMillis();
        action = client_verb([&](Context& ctx) {
          return submit.dry_run ? JobSubmitDryRun(ctx, submit, io.read_file) : JobSubmit(ctx, submit, io.read_file);
        });
      });
    }

    if (sub_named("list") || sub_named("ls")) {
      auto* list = job->add_subcommand("list", "List jobs, newest first");
      list->alias("ls");
      list->add_option("--state", list_flags.states, "Only these states, comma-separated (e.g. QUEUED,RUNNING)")
          ->type_name("S,...");
      o_limit =
          list->add_option("--limit", list_limit, "At most N jobs (default " + std::to_string(kDefaultJobListLimit) + ")");
      list->add_flag("--all,-a", list_flags.all, "All jobs, no limit");
      list->add_option("--project", list_flags.project, "Only jobs of this project");
      list->add_option("--user", list_flags.user, "Only jobs submitted by this user")->type_name("USER");
      list->add_option("--name", list_flags.name, "Only jobs with this name")->type_name("NAME");
      list->add_option("--since", list_flags.since,
                       "Only jobs submitted since: a duration back from now (2h, 1d) or a time (2026-12-08T10:00Z)")
          ->type_name("WHEN");
      list->add_flag("--tasks", list_flags.tasks, "Also list the tasks of job arrays (default: one row per array)");
      list->footer(R"(
Examples:
  fastgpu job list
  fastgpu job list --state QUEUED,RUNNING --limit 10
  fastgpu job list --user alice --name sweep --since 2h
  fastgpu job list --all --output json)");
      list->callback([&] {
        if (o_limit->count() > 0) list_flags.limit = list_limit;
        action = client_verb([&](Context& ctx) { return JobList(ctx, list_flags); });
      });
    }

    auto add_id_verb = [&](const char* name, const char* desc, const char* example,
                           std::function<int(Context&)> verb) -> CLI::App* {
      if (!sub_named(name)) return nullptr;
      auto* c = job->add_subcommand(name, desc);
      c->add_option("id", job_id, "Job id (j-…)")->required()->type_name("ID");
      c->footer(std::string("\nExample:\n  ") + example);
      c->callback([&, verb] { action = client_verb(verb); });
      return c;
    };
    add_id_verb("get", "Show one job", "fastgpu job get j-3 --output json",
                [&](Context& ctx) { return JobGet(ctx, job_id); });
    if (sub_named("cancel")) {
      auto* c = job->add_subcommand("cancel", "Cancel jobs (SIGTERM, then SIGKILL after the grace period)");
      c->add_option("ids", cancel_flags.ids, "Job ids (j-…)")->type_name("ID...");
      c->add_flag("--all", cancel_flags.all, "Every job not ended yet that you may see, narrowed by the flags below");
      c->add_option("--state", cancel_flags.states, "With --all: only these states (e.g. QUEUED)")->type_name("S,...");
      c->add_option("--name", cancel_flags.name, "With --all: only jobs with this name")->type_name("NAME");
      c->add_option("--project", cancel_flags.project, "With --all: only jobs of this project")->type_name("PROJECT");
      c->footer(R"(
Examples:
  fastgpu job cancel j-3
  fastgpu job cancel j-3 j-4 j-9
  fastgpu job cancel --all --state QUEUED --name sweep --project ml
Exit code: 0 when every job was cancelled (or had ended), else that of the first failure.)");
      c->callback([&] { action = client_verb([&](Context& ctx) { return JobCancelMany(ctx, cancel_flags); }); });
    }
    if (sub_named("migrate")) {
      auto* c = job->add_subcommand(
          "migrate", "Move a running job: checkpoint signal, grace, stop, then requeue it on other GPUs");
      c->add_option("id", job_id, "Job id (j-…)")->required()->type_name("ID");
      c->add_option("--reason", migrate_reason, "Why (shown in the job's events)")->type_name("TEXT");
      c->add_flag("--force", migrate_force,
                  "Also a job that is not preemptible: it gets no checkpoint signal (SIGTERM at once) and starts over");
      c->footer(R"(
The job gets its checkpoint signal (SIGUSR1 unless it chose another), its checkpoint grace to save its work in
$FASTGPU_CHECKPOINT_DIR, then SIGTERM and SIGKILL; it becomes PREEMPTED, goes back to the queue and its next
attempt prefers other GPUs (docs/scheduling.md).
Examples:
  fastgpu job migrate j-3 --reason "GPU 2 shows ECC errors"
  fastgpu job migrate j-4 --force
Exit code: 0 when the job was asked to move, 1 when refused (not running, or not preemptible without --force).)");
      c->callback([&] {
        action = client_verb([&](Context& ctx) { return JobMigrate(ctx, job_id, migrate_reason, migrate_force); });
      });
    }
    add_id_verb("events", "A job's state changes: when, from, to, why and by whom", "fastgpu job events j-3",
                [&](Context& ctx) { return JobEvents(ctx, job_id); });
    auto* logs = add_id_verb("logs", "Print a job's output (stdout and stderr)", "fastgpu job logs -f j-3",
                             [&](Context& ctx) {
                               logs_flags.follow = follow;
                               logs_flags.rank = log_rank;
                               if (log_task < 0) return JobLogs(ctx, job_id, logs_flags);
                               auto task = ArrayTaskId(ctx, job_id, log_task);
                               if (!task.ok()) return ReportError(ctx.err, task.status(), kExitFailure);
                               return JobLogs(ctx, *task, logs_flags);
                             });
    if (logs) {
      logs->footer(R"(
Examples:
  fastgpu job logs -f j-3
  fastgpu job logs j-3 --tail 100            # the last 100 lines
  fastgpu job logs j-3 --since 10m -t        # lines written in the last 10 minutes, with their times
  fastgpu job logs -f j-3 --tail 20          # the last 20 lines, then new ones until the job ends
  fastgpu job logs j-7 --task 3 --since 2026-12-08T10:00:00Z
Times: the node records when each part of the output was written (within ~10 ms; a line's time is that of its
first byte). Output written before times were recorded has none: --timestamps shows '-' for those lines and
--since keeps them (a note on stderr says so).)");
      logs->add_flag("-f,--follow", follow, "Keep streaming until the job ends");
      logs->add_option("--tail", logs_flags.tail, "Only the last N lines (with -f: then what follows)")
          ->type_name("N")
          ->check(CLI::NonNegativeNumber);
      logs->add_option("--since", logs_flags.since,
                       "Only lines written since: a duration back from now (10m, 2h, 1d) or a time (2026-12-08T10:00Z)")
          ->type_name("WHEN");
      logs->add_flag("-t,--timestamps", logs_flags.timestamps,
                     "Prefix each line with the time it was written (RFC 3339 UTC, milliseconds)");
      logs->add_option("--rank", log_rank, "A multi-node job: the member (node rank) whose output to show (default 0)")
          ->type_name("K")
          ->check(CLI::NonNegativeNumber);
      logs->add_option("--task", log_task, "A job array: the task (its index) whose output to show")
          ->type_name("INDEX")
          ->check(CLI::NonNegativeNumber);
    }
    if (sub_named("files")) {
      auto* c = job->add_subcommand("files", "List the files under a job's work dir, or download them (-o DIR)");
      c->add_option("id", job_id, "Job id (j-…)")->required()->type_name("ID");
      c->add_option("path", files_path, "A file or directory under the work dir (default: all of it)")->type_name("PATH");
      c->add_option("--to", files_out, "Download into DIR (-o DIR says the same here)")->type_name("DIR");
      c->footer(R"(
Works while the job runs and after it ended, until its node cleans its directory (jobs on the server's own node;
docs/sync.md). Symlinks are listed, never followed.
Examples:
  fastgpu job files j-3
  fastgpu job files j-3 outputs -o ./results
  fastgpu job files j-3 outputs/metrics.json)");
      c->callback([&] {
        // -o is the global output format elsewhere; here a value that is no format names the download directory.
        if (g.output != "table" && g.output != "json" && !g.output.empty()) {
          files_out = g.output;
          g.output = "table";
        }
        action = client_verb([&](Context& ctx) { return JobFiles(ctx, job_id, files_path, files_out); });
      });
    }
    if (sub_named("exec")) {
      auto* c = job->add_subcommand("exec", "Run a command inside a running job (its user, environment, directory)");
      c->add_option("id", exec_flags.id, "Job id (j-…)")->required()->type_name("ID");
      c->add_flag("-i,--stdin", exec_flags.stdin_open, "Pass standard input to the command");
      c->add_flag("-t,--tty", exec_flags.tty,
                  "Give the command a terminal (this terminal goes into raw mode until it ends)");
      c->add_option("--rank", exec_flags.rank, "A multi-node job: the member (node rank) to run it on (default 0)")
          ->type_name("K")
          ->check(CLI::NonNegativeNumber);
      c->add_option("command", exec_flags.command, "Command and arguments, after --")->type_name("CMD");
      c->footer(R"(
The command runs on the job's node as the job's user, with the job's environment (CUDA_VISIBLE_DEVICES,
FASTGPU_*, its secrets) in its working directory; in a container job, inside its container. Output streams back
as it comes; the exit code is the command's (128+N after signal N). Only members of the job's project who may
change its jobs can do this, and every exec is in the audit log (docs/exec.md).
Examples:
  fastgpu job exec j-3 -- nvidia-smi
  fastgpu job exec j-3 -- sh -c 'ls -l $FASTGPU_CHECKPOINT_DIR'
  fastgpu job exec -i j-3 -- python3 - < probe.py
  fastgpu job exec -it j-3 -- htop)");
      c->callback([&] {
        exec_flags.term = io.env("TERM").value_or("");
        action = client_verb([&](Context& ctx) { return JobExec(ctx, exec_flags); });
      });
    }
    if (sub_named("attach")) {
      auto* c = job->add_subcommand("attach", "An interactive shell inside a running job (needs a terminal)");
      c->add_option("id", exec_flags.id, "Job id (j-…)")->required()->type_name("ID");
      c->add_option("--rank", exec_flags.rank, "A multi-node job: the member (node rank) to attach to (default 0)")
          ->type_name("K")
          ->check(CLI::NonNegativeNumber);
      c->footer(R"(
Runs bash (sh where the job has no bash) as `job exec -it` would: leave it with exit or Ctrl-D.
Example:
  fastgpu job attach j-3)");
      c->callback([&] {
        exec_flags.attach = true;
        exec_flags.term = io.env("TERM").value_or("");
        action = client_verb([&](Context& ctx) { return JobExec(ctx, exec_flags); });
      });
    }
    auto* wait = add_id_verb("wait", "Wait until a job ends; exit 0 if it SUCCEEDED, 1 if not, 2 on timeout",
                             "fastgpu job wait j-3 --timeout 1h && echo succeeded",
                             [&](Context& ctx) { return JobWait(ctx, job_id, wait_timeout); });
    if (wait) {
      wait->add_option("--timeout", wait_timeout, "Give up after this long (30s, 10m, 2h; default: forever)")
          ->type_name("DURATION");
    }
  }

  // ---- gpu / node --------------------------------------------------------------------------------
  std::string top_interval = "2s";  // gpu top
  int64_t top_count = 0;
  if (auto* gpu = declare("gpu", "GPUs of the cluster")) {
    gpu->require_subcommand(1);
    auto* gpu_list = gpu->add_subcommand("list", "List GPUs with memory, utilisation, temperature, power and jobs");
    gpu_list->alias("ls");
    gpu_list->footer("\nSimulated GPUs are marked \"(simulated)\".\nExample:\n  fastgpu gpu list --output json");
    gpu_list->callback([&] { action = client_verb([](Context& ctx) { return GpuList(ctx); }); });
    auto* gpu_top = gpu->add_subcommand(
        "top", "A live view of every GPU (utilisation, memory, temperature, power, SM clock, XID, job), like nvidia-smi dmon");
    gpu_top->add_option("--interval", top_interval, "Time between refreshes")->capture_default_str()->type_name("DURATION");
    gpu_top->add_option("--count", top_count, "Frames to show, then exit (0 = until Ctrl-C)")
        ->capture_default_str()
        ->check(CLI::Range(int64_t{0}, int64_t{1} << 31));
    gpu_top->footer("\nOn a terminal the view is redrawn in place; otherwise the frames follow one another\n"
                    "(with --output json: one JSON object per frame and line).\nExample:\n  fastgpu gpu top --interval 1s");
    gpu_top->callback([&] {
      action = client_verb([&](Context& ctx) {
        auto s = ParseDurationSeconds(top_interval);
        if (!s.ok() || *s < 1 || *s > 3600) {
          ctx.err << "fastgpu: error: --interval must be a duration of 1s to 1h, e.g. 2s\n";
          return kExitUsage;
        }
        return GpuTop(ctx, *s * 1000, top_count, ::isatty(STDOUT_FILENO) == 1 && ctx.format != OutputFormat::kJson);
      });
    });
  }

  AddFleetVerbs(host, hooks.run_agent);  // agent, node (app_fleet.cc)
  AddAdminVerbs(host, hooks.run_admin);  // admin backup|restore|migrate (app_admin.cc)
  AddReservationVerbs(host);             // reservation create|list|delete (app_reservations.cc)

  // ---- accounts, security, billing (app_accounts.cc) -----------------------------------------------
  AddAccountVerbs(host);
  AddBillingVerbs(host);

  // ---- bench -------------------------------------------------------------------------------------
  server::ApiBenchOptions bench_opts;
  bench::SchedulerBenchOptions sched_opts;
  auto* bench = declare("bench", "Benchmarks (they print figures)");
  if (VerbNamed(args, "bench")) {
    bench->require_subcommand(1);
    auto* bench_api = bench->add_subcommand("api", "Durable submits/s and submit->RUNNING latency of the server");
    bench_api->add_option("--clients", bench_opts.clients, "Concurrent HTTP clients")->capture_default_str();
    bench_api->add_option("--submits", bench_opts.submits, "Total submits in the throughput phase")->capture_default_str();
    bench_api->add_option("--latency-samples", bench_opts.latency_samples, "Sequential submit->RUNNING samples")
        ->capture_default_str();
    bench_api->add_option("--home", bench_opts.home, "Data directory (default: a temporary one)");
    bench_api->add_option("--followers", bench_opts.followers, "Load case: clients following a job's log")
        ->capture_default_str();
    bench_api->add_option("--waiters", bench_opts.waiters, "Load case: clients in GET /wait (then they disconnect)")
        ->capture_default_str();
    bench_api->add_option("--idle", bench_opts.idle, "Load case: connected sockets that send nothing")
        ->capture_default_str();
    bench_api->add_option("--slowloris", bench_opts.slowloris, "Load case: sockets that send half a header and stop")
        ->capture_default_str();
    bench_api->add_option("--big-headers", bench_opts.big_headers, "Load case: requests with a 12.9 MB header")
        ->capture_default_str();
    bench_api->add_option("--log-readers", bench_opts.log_readers, "Load case: concurrent readers of a big log")
        ->capture_default_str();
    bench_api->add_option("--log-mib", bench_opts.log_mib, "Size of that log in MiB")->capture_default_str();
    bench_api->add_option("--drain", bench_opts.drain,
                          "Drain phase: one-GPU `true` jobs submitted at once, timed until all have ended")
        ->capture_default_str();
    bench_api->footer(
        "\nThe load cases run before the throughput phase; /healthz is probed and submits go on while they\n"
        "hold their connections.\nExamples:\n  fastgpu bench api --clients 32 --submits 50000 --output json\n"
        "  fastgpu bench api --followers 1000 --waiters 1000 --idle 1000 --slowloris 64 --big-headers 4 \\\n"
        "      --log-readers 8 --submits 2000\n"
        "  fastgpu bench api --drain 1000 --submits 0 --latency-samples 0");
    bench_api->callback([&] {
      action = [&]() -> int {
        auto format = ParseOutputFormat(g.output);
        if (!format.ok()) return ReportError(io.err, format.status(), kExitUsage);
        bench_opts.json = *format == OutputFormat::kJson;
        if (bench_opts.clients < 1 || bench_opts.submits < 0 || bench_opts.latency_samples < 0 ||
            bench_opts.drain < 0 || (bench_opts.submits == 0 && bench_opts.drain == 0))
          return ReportError(io.err,
                             InvalidArgument("--clients must be at least 1, and --submits at least 1 unless --drain is given"),
                             kExitUsage);
        if (!hooks.run_api_bench) return ReportError(io.err, Internal("this build cannot run the server"), kExitFailure);
        return hooks.run_api_bench(bench_opts);
      };
    });
    auto* bench_sched = bench->add_subcommand("scheduler", "Placement decisions/s of the scheduler library");
    bench_sched->add_option("--nodes", sched_opts.nodes, "Nodes in the synthetic cluster")->capture_default_str();
    bench_sched->add_option("--gpus-per-node", sched_opts.gpus_per_node, "GPUs per node")->capture_default_str();
    bench_sched->add_option("--pending", sched_opts.pending, "Queued jobs (mixed 1/2/4/8 GPUs and fractions)")
        ->capture_default_str();
    bench_sched->add_option("--policy", sched_opts.policy, "Queue policy")->capture_default_str();
    bench_sched->add_option("--placement", sched_opts.placement, "best-fit or spread")->capture_default_str();
    bench_sched->add_option("--rounds", sched_opts.rounds, "Schedule calls to time")->capture_default_str();
    bench_sched->add_option("--seed", sched_opts.seed, "Random seed of the synthetic queue")->capture_default_str();
    bench_sched->footer(
        "\nA decision is one verdict (bind or waiting) per queued job per scheduling round.\n"
        "Example:\n  fastgpu bench scheduler --nodes 1000 --gpus-per-node 8 --pending 100000 --output json");
    bench_sched->callback([&] {
      action = [&]() -> int {
        auto format = ParseOutputFormat(g.output);
        if (!format.ok()) return ReportError(io.err, format.status(), kExitUsage);
        if (sched_opts.nodes < 1 || sched_opts.nodes > 100000 || sched_opts.gpus_per_node < 1 ||
            sched_opts.gpus_per_node > 64 || sched_opts.pending < 0 || sched_opts.pending > 10'000'000 ||
            sched_opts.rounds < 1 || sched_opts.rounds > 1000)
          return ReportError(io.err,
                             InvalidArgument("--nodes must be 1..100000, --gpus-per-node 1..64, --pending "
                                             "0..10000000 and --rounds 1..1000"),
                             kExitUsage);
        auto r = bench::RunSchedulerBench(sched_opts, io.clock);
        if (!r.ok()) return ReportError(io.err, r.status(), kExitUsage);
        if (*format == OutputFormat::kJson) {
          io.out << SchedulerBenchJson(*r) << "\n";
        } else {
          io.out << bench::FormatSchedulerBench(*r);
        }
        return kExitOk;
      };
    });

  }

  // ---- simulate ----------------------------------------------------------------------------------
  sim::SimulateOptions sim_opts;
  bool sim_no_timing = false;
  auto* simulate = declare("simulate", "Replay a GPU job trace against scheduling policies");
  if (VerbNamed(args, "simulate")) {
    simulate->add_option("--trace", sim_opts.trace_path,
                         "CSV trace: job_id,submit_time_s,num_gpus,duration_s,user,queue,status "
                         "(e.g. data/traces/philly_2017_sep_nov.csv)")
        ->required();
    simulate->add_option("--cluster", sim_opts.cluster, "NODESxGPUSxTYPE")->capture_default_str();
    simulate->add_option("--policy", sim_opts.policy,
                         "default (= fair-las), fifo, priority, fair-share, sjf, las, backfill")
        ->capture_default_str();
    simulate->add_option("--placement", sim_opts.placement, "best-fit or spread")->capture_default_str();
    simulate->add_option("--compare", sim_opts.compare, "Comma-separated policies, or 'all'");
    simulate->add_option("--from", sim_opts.from_s, "First submit_time_s to keep");
    simulate->add_option("--to", sim_opts.to_s, "Last submit_time_s to keep");
    simulate->add_option("--queue", sim_opts.queue, "Keep only this queue (virtual cluster)");
    simulate->add_option("--tick", sim_opts.reschedule_interval_s, "Also reschedule after this many idle seconds");
    simulate->add_option("--preemptible", sim_opts.preemptible,
                         "Which jobs may be preempted: all, none, or a fraction such as 0.5 (picked by a seeded "
                         "hash of the job id)")
        ->capture_default_str();
    simulate->add_flag("--by-project", sim_opts.by_project, "Also report figures per project (trace queue)");
    simulate->add_flag("--preempt-across-projects", sim_opts.preempt_across_projects,
                       "Let jobs preempt other projects' jobs even while their project holds its fair share (as the "
                       "server's --preempt-across-projects)");
    simulate->add_flag("--no-timing", sim_no_timing, "Omit wall time and memory (byte-for-byte reproducible output)");
    simulate->footer(
        "\nOutput: --output table (default), json or csv. A progress bar is drawn on stderr when it is a terminal.\n"
        "Examples:\n"
        "  fastgpu simulate --trace data/traces/philly_2017_sep_nov.csv --compare all\n"
        "  fastgpu simulate --trace data/traces/philly_2017_sep_nov.csv --cluster 32x8xA100-80GB --policy las\n"
        "  fastgpu simulate --trace data/traces/philly_2017_sep_nov.csv --compare fifo,sjf --output csv\n"
        "  fastgpu simulate --trace data/traces/philly_2017_sep_nov.csv --policy default --preemptible 0.5");
    simulate->callback([&] {
      action = [&]() -> int {
        sim_opts.output = g.output.empty() ? "table" : g.output;
        sim_opts.timing = !sim_no_timing;
        return sim::RunSimulateCommand(sim_opts, io.out, io.err, io.clock);
      };
    });

  }

  // ---- config ------------------------------------------------------------------------------------
  std::string config_key, config_value;
  if (auto* config = declare("config", "Your settings: the default project of your submits")) {
    auto key_ok = CLI::IsMember({"project"});
    auto* set = config->add_subcommand("set", "Set a setting: fastgpu config set project ml");
    set->add_option("key", config_key, "project")->required()->check(key_ok);
    set->add_option("value", config_value, "Its value")->required();
    auto* get = config->add_subcommand("get", "Print a setting (nothing when unset)");
    get->add_option("key", config_key, "project")->required()->check(key_ok);
    auto* unset = config->add_subcommand("unset", "Remove a setting");
    unset->add_option("key", config_key, "project")->required()->check(key_ok);
    config->require_subcommand(1);
    config->footer(R"(
Settings live in $FASTGPU_HOME/config.json (default ~/.fastgpu). project: the project `job submit` uses when
--project is not given (FASTGPU_PROJECT wins over it); without either, the server picks "default", or your
only project when you are in just one.
Examples:
  fastgpu config set project ml
  fastgpu config get project
  fastgpu config unset project)");
    const std::string home = ResolveHome(io.env);
    set->callback([&, home] {
      action = [&, home]() -> int {
        Status st = WriteUserConfig(io.read_file, home, config_key, config_value);
        return st.ok() ? kExitOk : ReportError(io.err, st, kExitFailure);
      };
    });
    get->callback([&, home] {
      action = [&, home]() -> int {
        auto v = ReadUserConfig(io.read_file, home, config_key);
        if (!v.ok()) return ReportError(io.err, v.status(), kExitFailure);
        if (*v) io.out << **v << "\n";
        return kExitOk;
      };
    });
    unset->callback([&, home] {
      action = [&, home]() -> int {
        Status st = WriteUserConfig(io.read_file, home, config_key, std::nullopt);
        return st.ok() ? kExitOk : ReportError(io.err, st, kExitFailure);
      };
    });
  }

  // ---- shell completion ---------------------------------------------------------------------------
  std::string shell;
  std::string man_verb;
  if (auto* man = declare("manpage", "Print the manual page (roff) generated from these command definitions")) {
    man->add_option("command", man_verb, "Only this command's part of the page")->type_name("COMMAND");
    man->footer(R"(
Examples:
  fastgpu manpage > /usr/share/man/man1/fastgpu.1 && man fastgpu
  fastgpu manpage | man -l -)");
  }

  if (auto* completion = declare("completion", "Print a shell completion script: bash, zsh or fish")) {
    completion->add_option("shell", shell, "bash, zsh or fish")->required()->check(CLI::IsMember({"bash", "zsh", "fish"}));
    completion->footer(R"(
Examples:
  source <(fastgpu completion bash)                      # now; add it to ~/.bashrc to keep it
  fastgpu completion bash > /etc/bash_completion.d/fastgpu
  fastgpu completion zsh > "${fpath[1]}/_fastgpu"
  fastgpu completion fish > ~/.config/fish/completions/fastgpu.fish)");
    completion->callback([&] { action = [&]() -> int { return PrintCompletionScript(shell, io.out); }; });
  }
  if (completing) return Complete(app, std::vector<std::string>(args.begin() + 1, args.end()), io.out);

  // CLI11 takes the arguments in reverse order.
  if (manpage) return WriteManPage(app, args, hooks, io);
  std::vector<std::string> rev(args.rbegin(), args.rend());
  try {
    app.parse(rev);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, io.out, io.err);
  } catch (const CLI::CallForVersion&) {
    io.out << "fastgpu " << FASTGPU_VERSION << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    if (auto typo = Typo(app, args, vocabulary)) return ReportError(io.err, InvalidArgument(*typo), kExitUsage);
    std::string what = e.what();
    if (what == "A subcommand is required") what = "a command is required";
    return ReportError(io.err, InvalidArgument(what + " (run '" + HelpCommand(app) + "' for usage)"), kExitUsage);
  }
  if (!action) {
    if (auto typo = Typo(app, args, vocabulary)) return ReportError(io.err, InvalidArgument(*typo), kExitUsage);
    return ReportError(io.err, InvalidArgument("a command is required (run '" + HelpCommand(app) + "')"), kExitUsage);
  }
  return action();
}

}  // namespace fastgpu::cli
