// The agent protocol's HTTP routes (/v1/agent/…) and node administration (/v1/nodes/…, /v1/node-tokens).
// Agents authenticate with their node credential (fgn_…), which is good for the agent routes of its own
// node only; API tokens are refused there, and node credentials are refused everywhere else (they are not
// API tokens). Every agent call carries the protocol version (header X-FastGPU-Agent-Protocol).
#include <nlohmann/json.hpp>

#include <algorithm>

#include "agent/protocol.h"
#include "api/json.h"
#include "common/quantity.h"
#include "server/http_audit.h"
#include "server/http_internal.h"
#include "server/nodes.h"

namespace fastgpu::server {

using nlohmann::json;
using auth::Action;

struct Fleet {
  Fleet(store::Store& store, const Clock& clock, const std::string& log_dir)
      : credentials(store, clock), logs(log_dir.empty() ? nullptr : std::make_unique<ShippedLogs>(log_dir)) {}
  NodeCredentials credentials;
  std::unique_ptr<ShippedLogs> logs;
};

namespace {

const std::vector<RouteInfo> kAgentRoutes = {
    {"POST", "/v1/agent/join", Action::kPublic, Scope::kNone, "Agent: exchange a join token for a node credential"},
    {"POST", "/v1/agent/register", Action::kPublic, Scope::kNone, "Agent: register the node, its GPUs and its jobs"},
    {"GET", "/v1/agent/commands", Action::kPublic, Scope::kNone,
     "Agent: long-poll for commands (ack = highest command id applied)"},
    {"POST", "/v1/agent/reports", Action::kPublic, Scope::kNone, "Agent: job starts and ends"},
    {"POST", "/v1/agent/heartbeat", Action::kPublic, Scope::kNone, "Agent: GPU metrics and running attempts"},
    {"POST", "/v1/agent/logs", Action::kPublic, Scope::kNone, "Agent: push job log bytes from an offset"},
    {"POST", "/v1/agent/log-times", Action::kPublic, Scope::kNone,
     "Agent: push a job log's time index (24-byte records) from an offset"},
    {"GET", "/v1/agent/blobs", Action::kPublic, Scope::kNone,
     "Agent: the code archive of a job placed on this node (?job=ID)"},
    {"POST", "/v1/agent/exec/output", Action::kPublic, Scope::kNone,
     "Agent: an exec session's output from its offsets (base64), and its end"},
    {"GET", "/v1/agent/exec/input", Action::kPublic, Scope::kNone,
     "Agent: long-poll an exec session's input from ?offset= (?session=, timeout_ms=)"},
    {"POST", "/v1/agent/files", Action::kPublic, Scope::kNone,
     "Agent: the answer to a files command (a job's files listing or a piece of a file, base64)"},
};

bool Loopback(const std::string& addr) {
  return addr == "127.0.0.1" || addr == "::1" || addr == "::ffff:127.0.0.1" || addr.rfind("127.", 0) == 0;
}

// The version an agent speaks, from the header every agent call carries.
Status CheckVersion(const Request& req) {
  const std::string v = req.get_header_value(agent::kProtocolHeader);
  if (v.empty())
    return FailedPrecondition(std::string("agent protocol version missing (header ") + agent::kProtocolHeader +
                              "); the server speaks version " + std::to_string(agent::kProtocolVersion) +
                              ": run the same fastgpu release on the server and its nodes");
  if (v != std::to_string(agent::kProtocolVersion)) {
    int theirs = 0;
    for (char c : v) theirs = (c >= '0' && c <= '9' && theirs < 100000) ? theirs * 10 + (c - '0') : theirs;
    return FailedPrecondition(agent::VersionMismatch(agent::kProtocolVersion, theirs));
  }
  return Status::Ok();
}

std::string NodeState(const NodeInfo& n) {
  if (!n.registered) return n.remote ? "down" : "offline";
  if (n.draining) return n.jobs.empty() ? "drained" : "draining";
  if (n.cordoned) return "cordoned";
  if (!n.node.healthy) return "unhealthy";
  return "ready";
}

}  // namespace

const std::vector<RouteInfo>& AgentRoutes() { return kAgentRoutes; }

json NodeJson(const NodeInfo& n) {
  json j = api::ToJson(n.node);
  j["state"] = NodeState(n);
  j["cordoned"] = n.cordoned;
  j["draining"] = n.draining || n.cordoned;
  j["registered"] = n.registered;
  j["jobs"] = n.jobs;
  j["connection"] = n.connection;
  return j;
}

void HttpServer::InstallAgent() {
  fleet_ = std::make_shared<Fleet>(store_, clock_, options_.node_log_dir);
  const bool tls = !options_.tls_cert.empty();
  // Logs of remote nodes: read from what their agents pushed, also while a node is away or after it left.
  // The function holds the Fleet, so it outlives this server if the service does.
  if (fleet_->logs) {
    service_.SetFallbackLogSource([fleet = fleet_](const std::string& node) { return fleet->logs->ForNode(node); });
  }

  // Authenticates an agent call: the protocol version, then the node credential. The node's name, or the
  // error already sent.
  auto node_of = [this](Ctx& ctx) -> std::optional<std::string> {
    // Agent calls (reports, heartbeats, log pushes, polls) are not audited row by row: they would turn every
    // heartbeat into a durable write. Joins are.
    ctx.audited = true;
    if (Status v = CheckVersion(ctx.req); !v.ok()) {
      SendError(ctx.res, v);
      return std::nullopt;
    }
    auto token = auth::BearerToken(ctx.req.get_header_value("Authorization"));
    Result<std::string> node = token ? fleet_->credentials.Authenticate(*token)
                                     : Result<std::string>(Unauthenticated(
                                           "missing node credential: agent routes take the credential "
                                           "`fastgpu agent --join-token` obtained (Authorization: Bearer fgn_…)"));
    if (!node.ok()) {
      ctx.res.set_header("WWW-Authenticate", "Bearer");
      SendError(ctx.res, node.status());
      return std::nullopt;
    }
    return *node;
  };
  auto not_yours = [](const std::string& node, const std::string& named) {
    return PermissionDenied("the credential of node " + node + " cannot act for node " + named);
  };

  Add("POST", "/v1/agent/join", [this](Ctx& ctx) {
    auto& res = ctx.res;
    auto body = ObjectBody(ctx.req, {"token", "node", "protocol_version"});
    if (!body.ok()) return SendError(res, body.status());
    auto version = OptInt(*body, "protocol_version", 0, 1'000'000);
    if (!version.ok()) return SendError(res, version.status());
    if (!*version || **version != agent::kProtocolVersion)
      return SendError(res, FailedPrecondition(agent::VersionMismatch(agent::kProtocolVersion,
                                                                      static_cast<int>(version->value_or(0)))));
    auto token = OptString(*body, "token");
    auto node = OptString(*body, "node");
    if (!token.ok() || !node.ok() || !*token || !*node)
      return SendError(res, InvalidArgument("the join needs 'token' (fgj_…) and 'node' (this node's name)"));
    ctx.audit_actor = "node:" + **node;
    ctx.audit_target = "node:" + **node;
    ctx.audit_detail = "joined";  // never the token
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    auto credential = fleet_->credentials.Join(**token, **node, &row);
    if (!credential.ok()) {
      ctx.audit_detail = "join refused";  // audited after the request
      return SendError(res, credential.status());
    }
    NoteChangeAudited(ctx, row);
    SendJson(res, {{"credential", *credential}, {"node", **node}, {"protocol_version", agent::kProtocolVersion}}, 201);
  });
  Add("POST", "/v1/agent/register", [this, node_of, not_yours, tls](Ctx& ctx) {
    auto node = node_of(ctx);
    if (!node) return;
    auto parsed = api::ParseJson(ctx.req.body, "registration");
    if (!parsed.ok()) return SendError(ctx.res, parsed.status());
    auto reg = agent::NodeRegistrationFromJson(*parsed);
    if (!reg.ok()) return SendError(ctx.res, reg.status());
    if (reg->node.name != *node) return SendError(ctx.res, not_yours(*node, reg->node.name));
    for (const auto& r : reg->recovered)
      if (r.node != *node) return SendError(ctx.res, not_yours(*node, r.node));
    service_.SetNodeConnection(*node, std::string(tls ? "https" : "http") + " from " + ctx.req.remote_addr,
                               ctx.req.remote_addr);
    RETURN_IF_SEND_ERROR(ctx.res, service_.RegisterNode(*reg));
    const agent::Lease lease = service_.RemoteLease();
    SendJson(ctx.res, {{"node", *node},
                       {"protocol_version", agent::kProtocolVersion},
                       {"lease_ms", lease.lease_ms},
                       {"fence_grace_ms", lease.grace_ms}});
  });
  Add("GET", "/v1/agent/commands", [this, node_of, tls](Ctx& ctx) {
    auto node = node_of(ctx);
    if (!node) return;
    auto ack = IntParam(ctx.req, "ack", 0, 0, int64_t{1} << 62);
    if (!ack.ok()) return SendError(ctx.res, ack.status());
    auto timeout = IntParam(ctx.req, "timeout_ms", 10'000, 0, 60'000);
    if (!timeout.ok()) return SendError(ctx.res, timeout.status());
    if (!service_.NodeRegistered(*node))
      return SendError(ctx.res, NotFound("node " + *node + " is not registered (the server restarted): register again"));
    // Secrets travel only over TLS (or loopback, which never leaves the machine).
    const bool secure = tls || Loopback(ctx.req.remote_addr);
    // Parked in the transport (no worker held) until commands are queued for the node or the time is up.
    auto reply = std::make_shared<DeferredReply>();
    reply->watch_key = "node:" + *node;
    reply->timeout_ms = *timeout;
    reply->check = [this, n = *node, a = static_cast<uint64_t>(*ack), secure](Response& out, bool timed_out) {
      auto cmds = service_.PollCommands(n, a, secure);
      if (!cmds.ok()) {
        SendError(out, cmds.status());
        return true;
      }
      if (cmds->empty() && !timed_out) return false;
      json arr = json::array();
      for (const auto& c : *cmds) arr.push_back(agent::ToJson(c));
      SendJson(out, {{"commands", std::move(arr)}});
      return true;
    };
    ctx.res.deferred = std::move(reply);
  });
  Add("POST", "/v1/agent/reports", [this, node_of, not_yours](Ctx& ctx) {
    auto node = node_of(ctx);
    if (!node) return;
    auto body = ObjectBody(ctx.req, {"reports"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    if (!body->contains("reports") || !(*body)["reports"].is_array())
      return SendError(ctx.res, InvalidArgument("field 'reports' must be an array"));
    std::vector<agent::JobReport> reports;
    for (const auto& r : (*body)["reports"]) {
      auto rep = agent::JobReportFromJson(r);
      if (!rep.ok()) return SendError(ctx.res, rep.status());
      if (rep->node != *node) return SendError(ctx.res, not_yours(*node, rep->node));
      reports.push_back(std::move(rep).value());
    }
    // Not registered (the server restarted): 503, so the agent keeps the reports and sends them with its
    // registration (which its next command poll triggers), instead of dropping them.
    if (!service_.NodeRegistered(*node))
      return SendError(ctx.res, Unavailable("node " + *node + " is not registered (the server restarted): register again"));
    RETURN_IF_SEND_ERROR(ctx.res, service_.ReportJobs(reports));
    SendJson(ctx.res, {{"recorded", reports.size()}});
  });
  Add("POST", "/v1/agent/heartbeat", [this, node_of, not_yours](Ctx& ctx) {
    auto node = node_of(ctx);
    if (!node) return;
    auto parsed = api::ParseJson(ctx.req.body, "heartbeat");
    if (!parsed.ok()) return SendError(ctx.res, parsed.status());
    auto hb = agent::NodeHeartbeatFromJson(*parsed);
    if (!hb.ok()) return SendError(ctx.res, hb.status());
    if (hb->node != *node) return SendError(ctx.res, not_yours(*node, hb->node));
    RETURN_IF_SEND_ERROR(ctx.res, service_.Heartbeat(*hb));
    // The lease is renewed by every heartbeat answered (see agent::Lease).
    const agent::Lease lease = service_.RemoteLease();
    SendJson(ctx.res, {{"ok", true}, {"lease_ms", lease.lease_ms}, {"fence_grace_ms", lease.grace_ms}});
  });
  // A push of a job's log bytes or of its time index (agent/log_times.h, pushed before the bytes it covers): only
  // a node the job was placed on may push (each member node of a multi-node job its own output); idempotent by
  // offset. Nothing (the error sent) when the push is refused.
  struct LogPush {
    std::string node;
    std::string job;
    int64_t offset = 0;
  };
  auto log_push = [this, node_of, not_yours](Ctx& ctx) -> std::optional<LogPush> {
    auto node = node_of(ctx);
    if (!node) return std::nullopt;
    Status refused;
    const std::string id = Param(ctx.req, "job");
    auto offset = IntParam(ctx.req, "offset", 0, 0, int64_t{1} << 50);
    if (!fleet_->logs) {
      refused = Unavailable("this server keeps no logs of remote nodes");
    } else if (!offset.ok()) {
      refused = offset.status();
    } else if (auto job = service_.GetJob(id); !job.ok()) {
      refused = job.status();
    } else if (!JobOnNode(*job, *node)) {
      refused = not_yours(*node, job->node.empty() ? "(none)" : job->node);
    } else {
      return LogPush{*node, id, *offset};
    }
    SendError(ctx.res, refused);
    return std::nullopt;
  };
  Add("POST", "/v1/agent/logs", [this, log_push](Ctx& ctx) {
    auto push = log_push(ctx);
    if (!push) return;
    auto size = fleet_->logs->Append(push->node, push->job, push->offset, ctx.req.body);
    if (!size.ok()) return SendError(ctx.res, size.status());
    if (*size > push->offset) transport_->Notify(push->job);  // followers of this job's log
    SendJson(ctx.res, {{"size", *size}});
  });
  Add("POST", "/v1/agent/log-times", [this, log_push](Ctx& ctx) {
    auto push = log_push(ctx);
    if (!push) return;
    auto size = fleet_->logs->AppendTimes(push->node, push->job, push->offset, ctx.req.body);
    if (!size.ok()) return SendError(ctx.res, size.status());
    SendJson(ctx.res, {{"size", *size}});
  });

  // The code of a synced job (docs/sync.md), for the nodes it was placed on only.
  Add("GET", "/v1/agent/blobs", [this, node_of, not_yours](Ctx& ctx) {
    auto node = node_of(ctx);
    if (!node) return;
    auto job = service_.GetJob(Param(ctx.req, "job"));
    if (!job.ok()) return SendError(ctx.res, job.status());
    if (!JobOnNode(*job, *node)) return SendError(ctx.res, not_yours(*node, job->node.empty() ? "(none)" : job->node));
    ServeBlob(ctx, job->spec.project, job->spec.sync);
  });

  // Job files (docs/sync.md): the answer to a files command, from the node it was sent to only; wakes its waiter.
  Add("POST", "/v1/agent/files", [this, node_of, not_yours](Ctx& ctx) {
    auto node = node_of(ctx);
    if (!node) return;
    auto parsed = api::ParseJson(ctx.req.body, "files answer");
    if (!parsed.ok()) return SendError(ctx.res, parsed.status());
    auto answer = agent::FilesAnswerFromJson(*parsed);
    if (!answer.ok()) return SendError(ctx.res, answer.status());
    if (answer->node != *node) return SendError(ctx.res, not_yours(*node, answer->node));
    auto key = service_.Files().Answer(std::move(*answer));
    if (!key.ok()) return SendError(ctx.res, key.status());
    transport_->Notify(*key);
    SendJson(ctx.res, json::object());
  });

  // Exec sessions (docs/exec.md): only the node the session runs on may push its output or take its input.
  Add("POST", "/v1/agent/exec/output", [this, node_of, not_yours](Ctx& ctx) {
    auto node = node_of(ctx);
    if (!node) return;
    auto parsed = api::ParseJson(ctx.req.body, "exec output");
    if (!parsed.ok()) return SendError(ctx.res, parsed.status());
    auto out = agent::ExecOutputFromJson(*parsed);
    if (!out.ok()) return SendError(ctx.res, out.status());
    if (out->node != *node) return SendError(ctx.res, not_yours(*node, out->node));
    auto ack = service_.PushExecOutput(*out);
    if (!ack.ok()) return SendError(ctx.res, ack.status());
    SendJson(ctx.res, agent::ToJson(*ack));
  });
  Add("GET", "/v1/agent/exec/input", [this, node_of](Ctx& ctx) {
    auto node = node_of(ctx);
    if (!node) return;
    const std::string sid = Param(ctx.req, "session");
    auto offset = IntParam(ctx.req, "offset", 0, 0, int64_t{1} << 60);
    if (!offset.ok()) return SendError(ctx.res, offset.status());
    auto timeout = IntParam(ctx.req, "timeout_ms", 10'000, 0, 60'000);
    if (!timeout.ok()) return SendError(ctx.res, timeout.status());
    auto first = service_.Exec().TakeInput(*node, sid, *offset, *timeout == 0);
    if (!first.ok()) return SendError(ctx.res, first.status());
    if (first->has_value()) return SendJson(ctx.res, agent::ToJson(**first));
    // Parked (no worker held) until the client sends input, resizes, or the session closes.
    auto reply = std::make_shared<DeferredReply>();
    reply->watch_key = "exec-in:" + sid;
    reply->timeout_ms = *timeout;
    reply->check = [this, n = *node, sid, o = *offset](Response& out, bool timed_out) {
      auto in = service_.Exec().TakeInput(n, sid, o, timed_out);
      if (!in.ok()) {
        SendError(out, in.status());
        return true;
      }
      if (!in->has_value()) return false;
      SendJson(out, agent::ToJson(**in));
      return true;
    };
    ctx.res.deferred = std::move(reply);
  });

  // ---- node administration ----
  Add("GET", "/v1/nodes/{name}", [this](Ctx& ctx) {
    auto n = service_.GetNode(ctx.req.matches[1]);
    if (!n.ok()) return SendError(ctx.res, n.status());
    SendJson(ctx.res, NodeJson(*n));
  });
  auto set_cordon = [this](Ctx& ctx, bool cordoned, bool draining) {
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    auto n = service_.SetNodeCordon(ctx.req.matches[1], cordoned, draining, &row);
    if (!n.ok()) return SendError(ctx.res, n.status());
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, NodeJson(*n));
  };
  Add("POST", "/v1/nodes/{name}/cordon", [set_cordon](Ctx& ctx) { set_cordon(ctx, true, false); });
  Add("POST", "/v1/nodes/{name}/uncordon", [set_cordon](Ctx& ctx) { set_cordon(ctx, false, false); });
  Add("POST", "/v1/nodes/{name}/drain", [this](Ctx& ctx) {
    const std::string name = ctx.req.matches[1];
    std::string wait = Param(ctx.req, "wait");
    if (!wait.empty() && wait != "true" && wait != "false")
      return SendError(ctx.res, InvalidArgument("query parameter 'wait' must be true or false"));
    int64_t timeout_s = 300;
    if (std::string t = Param(ctx.req, "timeout"); !t.empty()) {
      auto d = ParseDurationSeconds(t);
      if (!d.ok()) return SendError(ctx.res, d.status());
      timeout_s = std::min<int64_t>(*d, 300);
    }
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    auto n = service_.SetNodeCordon(name, true, true, &row);
    if (!n.ok()) return SendError(ctx.res, n.status());
    NoteChangeAudited(ctx, row);
    if (wait != "true" || n->jobs.empty()) return SendJson(ctx.res, NodeJson(*n));
    // Parked until no job holds GPUs there (re-checked on every job change) or the time is up (then the node
    // as it is: the caller sees the jobs still there).
    auto reply = std::make_shared<DeferredReply>();
    reply->watch_key = "nodes";
    reply->timeout_ms = timeout_s * 1000;
    reply->check = [this, name](Response& out, bool timed_out) {
      auto node = service_.GetNode(name);
      if (!node.ok()) {
        SendError(out, node.status());
        return true;
      }
      if (!node->jobs.empty() && !timed_out) return false;
      SendJson(out, NodeJson(*node));
      return true;
    };
    ctx.res.deferred = std::move(reply);
  });
  Add("DELETE", "/v1/nodes/{name}", [this](Ctx& ctx) {
    const std::string name = ctx.req.matches[1];
    auto n = service_.GetNode(name);
    if (n.ok() && !n->jobs.empty()) {
      std::string list;
      for (const auto& id : n->jobs) list += (list.empty() ? "" : ", ") + id;
      return SendError(ctx.res, FailedPrecondition("node " + name + " still has " + std::to_string(n->jobs.size()) +
                                                   " job(s) (" + list + "); drain it first: fastgpu node drain " +
                                                   name + " --wait"));
    }
    // The node's credentials are revoked in the removal's own transaction, with the request's audit row.
    auto revoke = fleet_->credentials.RevokeWrites(name);
    if (!revoke.ok()) return SendError(ctx.res, revoke.status());
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    Status removed = service_.RemoveNode(name, *revoke, &row);
    // A node that joined but never registered is unknown to the scheduler: revoking its credential removes it.
    if (removed.code() == ErrorCode::kNotFound && !revoke->empty())
      removed = fleet_->credentials.Revoke(name, &row);
    if (!removed.ok()) return SendError(ctx.res, removed);
    fleet_->credentials.Forget(name);
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, {{"removed", name}});
  });
  Add("POST", "/v1/node-tokens", [this](Ctx& ctx) {
    auto body = ObjectBody(ctx.req, {"ttl"});
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto ttl = OptString(*body, "ttl");
    if (!ttl.ok()) return SendError(ctx.res, ttl.status());
    int64_t ttl_s = 3600;
    if (*ttl) {
      auto d = ParseDurationSeconds(**ttl);
      if (!d.ok()) return SendError(ctx.res, d.status());
      ttl_s = *d;
    }
    ctx.audit_detail = "ttl " + FormatDuration(ttl_s);  // never the token
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    auto t = fleet_->credentials.CreateJoinToken(ttl_s * 1000, ctx.principal.Actor(), &row);
    if (!t.ok()) return SendError(ctx.res, t.status());
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, {{"token", t->token}, {"expires_at", Timestamp(t->expires_at)}, {"expires_at_ms", t->expires_at}},
             201);
  });
}

}  // namespace fastgpu::server
