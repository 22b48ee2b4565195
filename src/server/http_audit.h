// The audit row of a state change, built by an HTTP handler before it calls the service that makes the
// change, so that the service writes the row in the change's own store transaction. Not a public header.
// Templates over the handler context (HttpServer::Ctx, private to the server).
#pragma once

#include <string>

#include "api/accounts.h"
#include "common/clock.h"

namespace fastgpu::server {

// The row Serve would write after the handler for this request with result "ok": actor (ctx.audit_actor,
// else the principal), source address, action (the route, "METHOD /path/{param}"), target
// (ctx.audit_target, else the request path), detail (ctx.audit_detail, never a secret value).
template <typename Ctx>
api::AuditRecord ChangeAuditRow(const Ctx& ctx, UnixMillis now) {
  api::AuditRecord row;
  row.at = now;
  row.actor = !ctx.audit_actor.empty() ? ctx.audit_actor : ctx.principal.Actor();
  row.source = ctx.req.remote_addr;
  if (ctx.route != nullptr) row.action = ctx.route->method + " " + ctx.route->path;
  row.target = ctx.audit_target.empty() ? ctx.req.path : ctx.audit_target;
  row.result = "ok";
  row.detail = ctx.audit_detail;
  return row;
}

// After the service call: when the service wrote `row` with its change (seq assigned), Serve writes none
// and counts that row as written by this process.
template <typename Ctx>
void NoteChangeAudited(Ctx& ctx, const api::AuditRecord& row) {
  if (row.seq <= 0) return;
  ctx.audited = true;
  ctx.audited_seq = row.seq;
}

}  // namespace fastgpu::server
