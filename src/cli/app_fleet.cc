// Fleet verbs: `fastgpu agent` (this machine joins a server as a node), `fastgpu node …` (list, get,
// cordon, uncordon, drain, remove) and `fastgpu node token create`.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <ostream>
#include <string>

#include "cli/app_internal.h"
#include "cli/table.h"
#include "common/quantity.h"

namespace fastgpu::cli {
namespace {

using nlohmann::json;

Color StateColor(const std::string& s) {
  if (s == "ready") return Color::kGreen;
  if (s == "offline" || s == "unhealthy") return Color::kRed;
  return Color::kYellow;
}

std::string NodeRows(const json& nodes, int64_t now_ms, bool color) {
  Table t({"NAME", "STATE", "GPUS", "KIND", "JOBS", "CONNECTION", "HEARTBEAT"});
  for (const auto& n : nodes) {
    const std::string state = n.value("state", std::string(n.value("healthy", true) ? "ready" : "unhealthy"));
    const int64_t hb = n.value("last_heartbeat_ms", int64_t{0});
    const size_t jobs = n.contains("jobs") && n["jobs"].is_array() ? n["jobs"].size() : 0;
    std::string conn = n.value("connection", std::string());
    t.AddRow({n.value("name", std::string()), Cell(state, StateColor(state)),
              std::to_string(n.value("gpu_count", 0)), n.value("simulated", false) ? "simulated" : "physical",
              std::to_string(jobs), conn.empty() ? "-" : conn,
              hb > 0 ? ShortDuration(now_ms - hb) + " ago" : "-"});
  }
  return t.Render(color);
}

int PrintNode(Context& ctx, const Result<json>& r) {
  if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
  if (ctx.format == OutputFormat::kJson) {
    ctx.out << r->dump(2) << "\n";
    return kExitOk;
  }
  json arr = json::array({*r});
  ctx.out << NodeRows(arr, ctx.clock.NowMillis(), ctx.color);
  if (r->contains("jobs") && (*r)["jobs"].is_array() && !(*r)["jobs"].empty()) {
    std::string list;
    for (const auto& j : (*r)["jobs"]) list += (list.empty() ? "" : " ") + j.get<std::string>();
    ctx.out << "jobs: " << list << "\n";
  }
  return kExitOk;
}

}  // namespace

void AddFleetVerbs(const VerbHost& host, const std::function<int(const agent::AgentRunOptions&)>& run_agent) {
  const Globals& g = host.g;
  const Io& io = host.io;

  // ---- agent ------------------------------------------------------------------------------------------
  if (auto* agent = host.declare("agent", "Run this machine as a node of a fastgpu server (fleet mode)")) {
    auto opts = std::make_shared<agent::AgentRunOptions>();
    if (host.wanted("agent")) {
      agent->add_option("--join-token", opts->join_token,
                        "One-time join token (fgj_…) from `fastgpu node token create`; needed on the first start "
                        "only (env FASTGPU_JOIN_TOKEN)")
          ->type_name("TOKEN")
          ->envname("FASTGPU_JOIN_TOKEN");
      agent->add_option("--name", opts->name,
                        "Node name (default: the name it joined with, else the host name; env FASTGPU_NODE_NAME)")
          ->envname("FASTGPU_NODE_NAME");
      agent->add_option("--sim-gpus", opts->sim_gpus,
                        "Simulated GPUs: 'auto' (real GPUs if NVML finds any, else 4xA100-80GB), 'none', or a spec "
                        "such as 8xA100-80GB")
          ->capture_default_str();
      agent->add_option("--home", opts->home, "Agent state: credential, job records, logs (default: $FASTGPU_HOME/agent)")
          ->type_name("DIR");
      agent->add_option("--checkpoint-root", opts->checkpoint_root,
                        "Where jobs keep their checkpoints: DIR/<job id> is each job's FASTGPU_CHECKPOINT_DIR, kept "
                        "across its attempts. Give every node the same shared storage (NFS, CephFS, ...) so that a "
                        "job resumed on another node finds it (default: <home>/checkpoints, on this node only)")
          ->type_name("DIR");
      agent->footer(R"(
Uses the global --server URL and --ca FILE (the server's CA when its certificate is self-signed).
The first start exchanges the join token for this node's own credential, stored 0600 in <home>/node.json;
later starts reuse it (no token needed). `fastgpu node remove NAME` on the server revokes it.
Examples:
  fastgpu agent --server https://gpu-a:8400 --join-token fgj_... --ca ca.pem --name gpu-b
  fastgpu agent                                  # a restart: reuses the stored credential
  fastgpu agent --server http://127.0.0.1:8400 --join-token fgj_... --sim-gpus 8xA100-80GB --home /tmp/b
  fastgpu agent --checkpoint-root /shared/fastgpu/checkpoints   # the same directory on every node)");
      agent->callback([&, opts] {
        host.set_action([&, opts]() -> int {
          opts->server = !g.server.empty() ? g.server : io.env("FASTGPU_SERVER").value_or("");
          opts->ca_file = !g.ca.empty() ? g.ca : io.env("FASTGPU_CA").value_or("");
          if (opts->home.empty() && !io.env("FASTGPU_HOME").has_value()) {
            opts->checkpoint_fallback_base = std::string(kCheckpointFallbackBase);
          }
          if (opts->home.empty()) opts->home = ResolveHome(io.env) + "/agent";
          if (!run_agent) return ReportError(io.err, Internal("this build cannot run the agent"), kExitFailure);
          return run_agent(*opts);
        });
      });
    }
  }

  // ---- node -------------------------------------------------------------------------------------------
  auto* node = host.declare("node", "Nodes of the cluster: list, inspect, cordon, drain, remove; join tokens");
  if (node == nullptr || !host.wanted("node")) return;
  node->require_subcommand(1);
  node->footer(R"(
Examples:
  fastgpu node token create --ttl 1h      # admin: a one-time join token for `fastgpu agent --join-token`
  fastgpu node list
  fastgpu node cordon gpu-b               # place nothing new there
  fastgpu node drain gpu-b --wait         # and wait until no job runs there
  fastgpu node remove gpu-b               # forget it and revoke its credential)");
  auto name = std::make_shared<std::string>();

  auto* list = node->add_subcommand("list", "List nodes with state, GPU count, jobs, connection and last heartbeat");
  list->alias("ls");
  list->footer("\nSTATE: ready, cordoned, draining, drained, unhealthy or offline (not registered since the server "
               "started).\nExample:\n  fastgpu node list --output json");
  list->callback([&] {
    host.set_client_action(
        [](Context& ctx) -> int {
          auto r = ctx.client.GetJson("/v1/nodes");
          if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
          if (ctx.format == OutputFormat::kJson) {
            ctx.out << (*r)["nodes"].dump(2) << "\n";
            return kExitOk;
          }
          ctx.out << NodeRows((*r)["nodes"], ctx.clock.NowMillis(), ctx.color);
          return kExitOk;
        },
        false);
  });

  auto name_verb = [&](const char* verb, const char* desc, const char* example) {
    auto* c = node->add_subcommand(verb, desc);
    c->add_option("name", *name, "Node name")->required()->type_name("NAME");
    c->footer(std::string("\nExample:\n  ") + example);
    return c;
  };
  name_verb("get", "Show one node (state, GPUs, jobs, connection)", "fastgpu node get gpu-b --output json")
      ->callback([&, name] {
        host.set_client_action(
            [name](Context& ctx) { return PrintNode(ctx, ctx.client.GetJson("/v1/nodes/" + UrlEncode(*name))); }, false);
      });
  for (const char* verb : {"cordon", "uncordon"}) {
    name_verb(verb,
              std::string(verb) == "cordon" ? "Place nothing new on a node (running jobs go on)"
                                            : "Place jobs on a node again",
              std::string(verb) == "cordon" ? "fastgpu node cordon gpu-b" : "fastgpu node uncordon gpu-b")
        ->callback([&, name, verb] {
          host.set_client_action(
              [name, verb](Context& ctx) {
                return PrintNode(ctx, ctx.client.PostJson("/v1/nodes/" + UrlEncode(*name) + "/" + verb, "{}"));
              },
              false);
        });
  }
  auto drain_wait = std::make_shared<bool>(false);
  auto drain_timeout = std::make_shared<std::string>();
  auto* drain = name_verb("drain", "Place nothing new on a node and let its jobs finish",
                          "fastgpu node drain gpu-b --wait --timeout 2h");
  drain->add_flag("--wait", *drain_wait, "Return when no job runs there any more (exit 2 on timeout)");
  drain->add_option("--timeout", *drain_timeout, "With --wait: give up after this long (default: forever)")
      ->type_name("DURATION");
  drain->callback([&, name, drain_wait, drain_timeout] {
    host.set_client_action(
        [name, drain_wait, drain_timeout](Context& ctx) -> int {
          const std::string path = "/v1/nodes/" + UrlEncode(*name) + "/drain";
          if (!*drain_wait) return PrintNode(ctx, ctx.client.PostJson(path, "{}"));
          int64_t limit_s = -1;
          if (!drain_timeout->empty()) {
            auto d = ParseDurationSeconds(*drain_timeout);
            if (!d.ok()) return ReportError(ctx.err, d.status(), kExitUsage);
            limit_s = *d;
          }
          const int64_t start = ctx.clock.MonotonicNanos();
          while (true) {
            // Each call parks on the server (no thread held there) for up to 60 s.
            int64_t left_s = limit_s < 0 ? 60 : limit_s - (ctx.clock.MonotonicNanos() - start) / 1'000'000'000;
            if (left_s < 0) left_s = 0;
            auto r = ctx.client.PostJson(path + "?wait=true&timeout=" + std::to_string(std::min<int64_t>(left_s, 60)) + "s",
                                         "{}");
            if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
            const bool empty = !r->contains("jobs") || (*r)["jobs"].empty();
            if (empty) return PrintNode(ctx, r);
            if (limit_s >= 0 && (ctx.clock.MonotonicNanos() - start) / 1'000'000'000 >= limit_s) {
              PrintNode(ctx, r);
              return ReportError(ctx.err,
                                 DeadlineExceeded("node " + *name + " still runs " + std::to_string((*r)["jobs"].size()) +
                                                  " job(s) after " + *drain_timeout),
                                 kExitUsage);
            }
          }
        },
        false);
  });
  name_verb("remove", "Forget a node and revoke its credential (drain it first)", "fastgpu node remove gpu-b")
      ->callback([&, name] {
        host.set_client_action(
            [name](Context& ctx) -> int {
              auto r = ctx.client.Delete("/v1/nodes/" + UrlEncode(*name));
              if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
              if (ctx.format == OutputFormat::kJson) {
                ctx.out << r->dump(2) << "\n";
              } else {
                ctx.out << "removed node " << *name << " (its credential is revoked)\n";
              }
              return kExitOk;
            },
            false);
      });

  auto* token = node->add_subcommand("token", "Join tokens for new nodes");
  token->require_subcommand(1);
  auto ttl = std::make_shared<std::string>("1h");
  auto* create = token->add_subcommand("create", "Create a one-time join token (admin; shown once)");
  create->add_option("--ttl", *ttl, "How long the token stays valid (1m..30d)")->capture_default_str()->type_name("DURATION");
  create->footer(R"(
The token is printed once and kept by the server only as a hash; the first `fastgpu agent --join-token`
that presents it uses it up.
Example:
  fastgpu node token create --ttl 1h)");
  create->callback([&, ttl] {
    host.set_client_action(
        [ttl](Context& ctx) -> int {
          auto r = ctx.client.PostJson("/v1/node-tokens", json{{"ttl", *ttl}}.dump());
          if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
          if (ctx.format == OutputFormat::kJson) {
            ctx.out << r->dump(2) << "\n";
            return kExitOk;
          }
          ctx.out << (*r)["token"].get<std::string>() << "\n";
          ctx.err << "one-time join token, valid until " << r->value("expires_at", std::string()) << ":\n"
                  << "  fastgpu agent --server " << ctx.client.base_url() << " --join-token <token> [--ca ca.pem]\n";
          return kExitOk;
        },
        false);
  });
}

}  // namespace fastgpu::cli
