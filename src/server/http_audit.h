// The audit row of a state change, built by an HTTP handler before it calls the service that makes the
// change, so that the service writes the row in the change's own store transaction. Not a public header.
#pragma once

#include <string>

#include "api/accounts.h"
#include "common/clock.h"

namespace fastgpu::server {

// The row Serve would write after the handler for this request with result "ok": actor (ctx.audit_actor,
// else the principal), source address, `action` (the route as "METHOD /path/{param}"), target
// (ctx.audit_target, else the request path), detail (ctx.audit_detail, never a secret value). A template
// over the handler context (HttpServer::Ctx), which is private to the server.
template <typename Ctx>
api::AuditRecord ChangeAuditRow(const Ctx& ctx, UnixMillis now, std::string action) {
  api::AuditRecord row;
  row.at = now;
  row.actor = !ctx.audit_actor.empty() ? ctx.audit_actor : ctx.principal.Actor();
  row.source = ctx.req.remote_addr;
  row.action = std::move(action);
  row.target = ctx.audit_target.empty() ? ctx.req.path : ctx.audit_target;
  row.result = "ok";
  row.detail = ctx.audit_detail;
  return row;
}

}  // namespace fastgpu::server
