// Exec sessions over HTTP, client side (docs/exec.md): open one in a running job, long-poll its output, send its
// input, end it. Authorised by the route table (members who may change the job's project's jobs); a session is used
// only by the caller who opened it (anyone else gets 404, so its existence does not leak). Opening is audited
// (who, job, node, command line); input is not (it may be typed secrets, and every keystroke would be a row).
#include <nlohmann/json.hpp>

#include "common/crypto.h"
#include "server/http_internal.h"

namespace fastgpu::server {

using nlohmann::json;

namespace {

constexpr int64_t kMaxOutputWaitMs = 30'000;

// The session named in the path, when it belongs to this job and this caller.
template <typename CtxT>
Result<ExecSessionInfo> OwnSession(Service& service, const CtxT& ctx) {
  const std::string& job = ctx.req.matches[1];
  const std::string& id = ctx.req.matches[2];
  auto info = service.Exec().Info(id);
  if (!info.ok() || info->job_id != job || info->actor != ctx.principal.Actor())
    return NotFound("no exec session " + id + " of job " + job + " (it ended, timed out, or is not yours)");
  return info;
}

json ViewJson(const ExecOutputView& v) {
  json j{{"stdout_offset", v.stdout_offset}, {"stderr_offset", v.stderr_offset}, {"ended", v.ended}};
  if (!v.stdout_data.empty()) j["stdout"] = Base64Encode(v.stdout_data);
  if (!v.stderr_data.empty()) j["stderr"] = Base64Encode(v.stderr_data);
  if (v.exit_code) j["exit_code"] = *v.exit_code;
  if (v.signal) j["signal"] = *v.signal;
  if (!v.error.empty()) j["error"] = v.error;
  return j;
}

}  // namespace

void HttpServer::InstallExec() {
  // Parked output polls and agents' input polls wake when their session changes.
  service_.Exec().SetListener([this](const std::string& key) { transport_->Notify(key); });

  Add("POST", "/v1/jobs/{id}/exec", [this](Ctx& ctx) {
    auto& res = ctx.res;
    auto body = ObjectBody(ctx.req, {"command", "tty", "stdin", "rank", "rows", "cols", "term"});
    if (!body.ok()) return SendError(res, body.status());
    ExecRequest req;
    auto cmd = body->find("command");
    if (cmd == body->end() || !cmd->is_array() || cmd->empty())
      return SendError(res, InvalidArgument("field 'command' must be a non-empty array of strings"));
    for (const auto& a : *cmd) {
      if (!a.is_string()) return SendError(res, InvalidArgument("field 'command' must be a non-empty array of strings"));
      req.argv.push_back(a.get<std::string>());
    }
    auto tty = OptBool(*body, "tty");
    auto in = OptBool(*body, "stdin");
    auto rank = OptInt(*body, "rank", 0, 1 << 20);
    auto rows = OptInt(*body, "rows", 0, 10'000);
    auto cols = OptInt(*body, "cols", 0, 10'000);
    auto term = OptString(*body, "term");
    for (const Status& st : {tty.status(), in.status(), rank.status(), rows.status(), cols.status(), term.status()})
      if (!st.ok()) return SendError(res, st);
    req.tty = tty->value_or(false);
    req.stdin_open = in->value_or(false);
    req.rank = static_cast<int>(rank->value_or(0));
    req.rows = static_cast<int>(rows->value_or(0));
    req.cols = static_cast<int>(cols->value_or(0));
    req.term = term->value_or("");
    if (req.term.size() > 64) return SendError(res, InvalidArgument("field 'term' is longer than 64 characters"));
    const std::string id = ctx.req.matches[1];
    ctx.audit_target = "job:" + id;
    // Never stdin; the command line as given (JSON, so that its words stay apart).
    ctx.audit_detail = "exec rank " + std::to_string(req.rank) + (req.tty ? " tty" : "") +
                       (req.stdin_open ? " stdin" : "") + ": " + json(req.argv).dump(-1, ' ', false, json::error_handler_t::replace);
    auto started = service_.StartExec(id, req, ctx.principal.Actor());
    if (!started.ok()) return SendError(res, started.status());
    ctx.audit_detail = "session " + started->session + " on node " + started->node + ", " + ctx.audit_detail;
    SendJson(res,
             {{"session", started->session}, {"job", id}, {"node", started->node}, {"rank", started->rank},
              {"tty", req.tty}, {"stdin", req.stdin_open}},
             201);
  });

  Add("GET", "/v1/jobs/{id}/exec/{session}/output", [this](Ctx& ctx) {
    auto& res = ctx.res;
    auto info = OwnSession(service_, ctx);
    if (!info.ok()) return SendError(res, info.status());
    auto out_off = IntParam(ctx.req, "stdout_offset", 0, 0, int64_t{1} << 60);
    auto err_off = IntParam(ctx.req, "stderr_offset", 0, 0, int64_t{1} << 60);
    auto timeout = IntParam(ctx.req, "timeout_ms", 10'000, 0, kMaxOutputWaitMs);
    for (const Status& st : {out_off.status(), err_off.status(), timeout.status()})
      if (!st.ok()) return SendError(res, st);
    // Answers at once when there is output (or the end); else parked (no worker held) until the agent pushes some.
    auto first = service_.Exec().ReadOutput(info->id, *out_off, *err_off, *timeout == 0);
    if (!first.ok()) return SendError(res, first.status());
    if (first->has_value()) return SendJson(res, ViewJson(**first));
    auto reply = std::make_shared<DeferredReply>();
    reply->watch_key = "exec:" + info->id;
    reply->timeout_ms = *timeout;
    reply->check = [this, sid = info->id, o = *out_off, e = *err_off](Response& out, bool timed_out) {
      auto view = service_.Exec().ReadOutput(sid, o, e, timed_out);
      if (!view.ok()) {
        SendError(out, view.status());
        return true;
      }
      if (!view->has_value()) return false;
      SendJson(out, ViewJson(**view));
      return true;
    };
    res.deferred = std::move(reply);
  });

  Add("POST", "/v1/jobs/{id}/exec/{session}/input", [this](Ctx& ctx) {
    auto& res = ctx.res;
    ctx.audited = true;  // not audited row by row: input may be typed secrets, and each keystroke is a request
    auto info = OwnSession(service_, ctx);
    if (!info.ok()) return SendError(res, info.status());
    auto body = ObjectBody(ctx.req, {"offset", "data", "eof", "rows", "cols"});
    if (!body.ok()) return SendError(res, body.status());
    auto offset = OptInt(*body, "offset", 0, int64_t{1} << 60);
    auto data = OptString(*body, "data");
    auto eof = OptBool(*body, "eof");
    auto rows = OptInt(*body, "rows", 0, 10'000);
    auto cols = OptInt(*body, "cols", 0, 10'000);
    for (const Status& st : {offset.status(), data.status(), eof.status(), rows.status(), cols.status()})
      if (!st.ok()) return SendError(res, st);
    auto bytes = Base64Decode(data->value_or(""));
    if (!bytes.ok()) return SendError(res, InvalidArgument("field 'data' must be base64: " + bytes.status().message()));
    auto have = service_.Exec().WriteInput(info->id, offset->value_or(0), *bytes, eof->value_or(false),
                                           static_cast<int>(rows->value_or(0)), static_cast<int>(cols->value_or(0)));
    if (!have.ok()) return SendError(res, have.status());
    SendJson(res, {{"offset", *have}});
  });

  Add("DELETE", "/v1/jobs/{id}/exec/{session}", [this](Ctx& ctx) {
    auto& res = ctx.res;
    auto info = OwnSession(service_, ctx);
    if (!info.ok()) return SendError(res, info.status());
    ctx.audit_target = "job:" + info->job_id;
    ctx.audit_detail = "exec session " + info->id + " ended by its client";
    RETURN_IF_SEND_ERROR(res, service_.Exec().Close(info->id, "ended by " + ctx.principal.Actor()));
    SendJson(res, {{"session", info->id}, {"closed", true}});
  });
}

}  // namespace fastgpu::server
