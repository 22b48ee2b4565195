// Reservation routes: GPUs set aside for a project in a time window (docs/scheduling.md, docs/api.md).
// Admins create and delete them; every caller lists those of the projects they belong to (admins: all).
#include <nlohmann/json.hpp>

#include "api/json.h"
#include "api/reservations.h"
#include "server/http_audit.h"
#include "server/http_internal.h"

namespace fastgpu::server {

using nlohmann::json;

void HttpServer::InstallReservations() {
  Add("POST", "/v1/reservations", [this](Ctx& ctx) {
    auto body = api::ParseJson(ctx.req.body, "request body");
    if (!body.ok()) return SendError(ctx.res, body.status());
    auto r = api::ReservationRequestFromJson(*body);
    if (!r.ok()) return SendError(ctx.res, r.status());
    if (!accounts_.GetProject(r->project).ok())
      return SendError(ctx.res, NotFound("project " + r->project + " does not exist"));
    ctx.audit_detail = "project " + r->project + ", " + std::to_string(r->gpus) + " GPUs" +
                       (r->gpu_type.empty() ? "" : " " + r->gpu_type) + ", " + FormatTimestamp(r->start_at) + " to " +
                       FormatTimestamp(r->end_at);
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    row.target.clear();  // "reservation:<id>", set once the id is known
    auto created = service_.CreateReservation(std::move(r).value(), ctx.principal.Actor(), &row);
    if (!created.ok()) return SendError(ctx.res, created.status());
    ctx.audit_target = "reservation:" + created->id;
    NoteChangeAudited(ctx, row);
    ctx.res.set_header("Location", "/v1/reservations/" + created->id);
    SendJson(ctx.res, api::ToJson(*created, clock_.NowMillis()), 201);
  });
  Add("GET", "/v1/reservations", [this](Ctx& ctx) {
    const std::string project = Param(ctx.req, "project");
    std::set<std::string> visible;
    const std::set<std::string>* filter = nullptr;
    if (!project.empty()) {
      RETURN_IF_SEND_ERROR(ctx.res, auth::Authorize(ctx.principal, auth::Action::kProjectRead, project,
                                                    "project " + project + " does not exist"));
      visible.insert(project);
      filter = &visible;
    } else if (!ctx.principal.admin) {
      for (const auto& [p, role] : ctx.principal.roles) visible.insert(p);
      filter = &visible;
    }
    const UnixMillis now = clock_.NowMillis();
    json arr = json::array();
    for (const auto& r : service_.ListReservations(filter)) arr.push_back(api::ToJson(r, now));
    SendJson(ctx.res, {{"reservations", std::move(arr)}});
  });
  Add("DELETE", "/v1/reservations/{id}", [this](Ctx& ctx) {
    const std::string id = ctx.req.matches[1];
    ctx.audit_target = "reservation:" + id;
    auto existing = service_.GetReservation(id);
    if (!existing.ok()) return SendError(ctx.res, existing.status());
    ctx.audit_detail = "project " + existing->project;
    api::AuditRecord row = ChangeAuditRow(ctx, clock_.NowMillis());
    RETURN_IF_SEND_ERROR(ctx.res, service_.DeleteReservation(id, &row));
    NoteChangeAudited(ctx, row);
    SendJson(ctx.res, {{"deleted", id}});
  });
}

}  // namespace fastgpu::server
