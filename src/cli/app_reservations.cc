// `fastgpu reservation create|list|delete`: GPUs set aside for a project in a time window (docs/scheduling.md).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "cli/app_internal.h"
#include "cli/client.h"
#include "cli/job_file.h"
#include "cli/table.h"

namespace fastgpu::cli {
namespace {

using nlohmann::json;

std::string Rows(const json& list, bool color) {
  Table t({"ID", "NAME", "PROJECT", "GPUS", "TYPE", "START", "END", "STATE"});
  for (const auto& r : list) {
    const std::string state = r.value("state", std::string());
    const Color c = state == "active" ? Color::kGreen : state == "ended" ? Color::kDim : Color::kYellow;
    const std::string name = r.value("name", std::string());
    const std::string type = r.value("gpu_type", std::string());
    t.AddRow({r.value("id", std::string()), name.empty() ? "-" : Truncate(name, 24), r.value("project", std::string()),
              std::to_string(r.value("gpus", 0)), type.empty() ? "any" : type, r.value("start_at", std::string()),
              r.value("end_at", std::string()), Cell(state, c)});
  }
  return t.Render(color);
}

int Print(Context& ctx, const Result<json>& r, bool list) {
  if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
  const json items = list ? r->value("reservations", json::array()) : json::array({*r});
  if (ctx.format == OutputFormat::kJson) {
    ctx.out << (list ? items : *r).dump(2) << "\n";
    return kExitOk;
  }
  if (list && items.empty()) {
    ctx.out << "No reservations.\n";
    return kExitOk;
  }
  ctx.out << Rows(items, ctx.color);
  return kExitOk;
}

}  // namespace

void AddReservationVerbs(const VerbHost& host) {
  auto* group = host.declare("reservation", "GPUs set aside for a project in a time window: create, list, delete");
  if (group == nullptr || !host.wanted("reservation")) return;
  group->require_subcommand(1);
  group->footer(R"(
Inside its window a reservation's GPUs run its project's jobs first; jobs of other projects may use them only when
their runtime limit ends before the window starts. Times: RFC 3339 (2026-12-08T10:00:00Z), a date, or now+2h / +30m.
Examples:
  fastgpu reservation create --project ml --gpus 8 --gpu-type A100-80GB --start 2026-12-08T09:00:00Z --end 2026-12-08T17:00:00Z
  fastgpu reservation create --project ml --gpus 4 --start now+1h --end now+5h --name demo
  fastgpu reservation list
  fastgpu reservation delete r-3)");

  struct CreateFlags {
    std::string project, gpu_type, start, end, name;
    int gpus = 0;
  };
  auto f = std::make_shared<CreateFlags>();
  auto* create = group->add_subcommand("create", "Reserve GPUs for a project in a time window (admin)");
  create->add_option("--project,-p", f->project, "The project the GPUs are kept for")->required()->type_name("PROJECT");
  create->add_option("--gpus", f->gpus, "Whole GPUs to keep")->required()->type_name("N");
  create->add_option("--gpu-type", f->gpu_type, "GPU type, e.g. A100-80GB (default: any)")->type_name("TYPE");
  create->add_option("--start", f->start, "When the window opens")->required()->type_name("TIME");
  create->add_option("--end", f->end, "When it closes")->required()->type_name("TIME");
  create->add_option("--name", f->name, "A label")->type_name("NAME");
  create->footer(
      "\nExample:\n  fastgpu reservation create --project ml --gpus 8 --start 2026-12-08T09:00:00Z --end now+8h");
  create->callback([&host, f] {
    host.set_client_action(
        [f](Context& ctx) -> int {
          const UnixMillis now = ctx.clock.NowMillis();
          auto start = ParseWhen(f->start, now, "--start");
          if (!start.ok()) return ReportError(ctx.err, start.status(), kExitUsage);
          auto end = ParseWhen(f->end, now, "--end");
          if (!end.ok()) return ReportError(ctx.err, end.status(), kExitUsage);
          if (f->gpus < 1) return ReportError(ctx.err, InvalidArgument("--gpus must be at least 1"), kExitUsage);
          if (*end <= *start)
            return ReportError(ctx.err,
                               InvalidArgument("--end (" + FormatTimestamp(*end) + ") must be after --start (" +
                                               FormatTimestamp(*start) + ")"),
                               kExitUsage);
          json body = {{"project", f->project}, {"gpus", f->gpus}, {"start_at", *start}, {"end_at", *end}};
          if (!f->gpu_type.empty()) body["gpu_type"] = f->gpu_type;
          if (!f->name.empty()) body["name"] = f->name;
          return Print(ctx, ctx.client.PostJson("/v1/reservations", body.dump()), false);
        },
        false);
  });

  auto project = std::make_shared<std::string>();
  auto* list = group->add_subcommand("list", "Reservations of your projects (admins: all), in start order");
  list->alias("ls");
  list->add_option("--project,-p", *project, "Only this project's")->type_name("PROJECT");
  list->footer("\nSTATE: upcoming, active or ended.\nExample:\n  fastgpu reservation list --output json");
  list->callback([&host, project] {
    host.set_client_action(
        [project](Context& ctx) {
          const std::string q = project->empty() ? "" : "?project=" + UrlEncode(*project);
          return Print(ctx, ctx.client.GetJson("/v1/reservations" + q), true);
        },
        false);
  });

  auto id = std::make_shared<std::string>();
  auto* del = group->add_subcommand("delete", "Delete a reservation (admin); its GPUs are free for everyone again");
  del->alias("rm");
  del->add_option("id", *id, "Reservation id (r-…)")->required()->type_name("ID");
  del->footer("\nExample:\n  fastgpu reservation delete r-3");
  del->callback([&host, id] {
    host.set_client_action(
        [id](Context& ctx) -> int {
          auto r = ctx.client.Delete("/v1/reservations/" + UrlEncode(*id));
          if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
          if (ctx.format == OutputFormat::kJson) {
            ctx.out << r->dump(2) << "\n";
          } else {
            ctx.out << "deleted " << *id << "\n";
          }
          return kExitOk;
        },
        false);
  });
}

}  // namespace fastgpu::cli
