#include "cli/commands.h"

#include <unistd.h>

#include <cstring>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <thread>
#include <nlohmann/json.hpp>
#include <ostream>

#include "api/json.h"
#include "cli/job_file.h"
#include "cli/render.h"
#include "cli/sync_cli.h"
#include "common/quantity.h"

namespace fastgpu::cli {

using nlohmann::json;

namespace {

void PrintJson(Context& ctx, const json& j) { ctx.out << j.dump(2) << "\n" << std::flush; }

// Decodes a list field ("jobs", "gpus", ...) with `decode`.
template <typename T, typename F>
Result<std::vector<T>> DecodeList(const json& j, const char* field, F decode) {
  if (!j.is_object() || !j.contains(field) || !j[field].is_array())
    return Internal(std::string("server answer has no '") + field + "' list");
  std::vector<T> out;
  for (const auto& item : j[field]) {
    auto v = decode(item);
    if (!v.ok()) return Internal("server sent an unreadable entry in '" + std::string(field) + "': " + v.status().message());
    out.push_back(std::move(v).value());
  }
  return out;
}

Result<api::Job> DecodeJob(const json& j) {
  auto job = api::JobFromJson(j);
  if (!job.ok()) return Internal("server sent an unreadable job: " + job.status().message());
  return job;
}

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// "a, b,,c" -> {"a", "b", "c"}: the items of a comma-separated flag, blanks removed.
std::vector<std::string> CommaList(std::string_view text) {
  std::vector<std::string> out;
  for (size_t start = 0; start <= text.size();) {
    size_t comma = text.find(',', start);
    std::string item(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    item.erase(std::remove_if(item.begin(), item.end(), [](unsigned char c) { return std::isspace(c); }), item.end());
    if (!item.empty()) out.push_back(std::move(item));
  }
  return out;
}

// --state QUEUED,running -> {"QUEUED", "RUNNING"}; an unknown state is an error naming the known ones.
Result<std::vector<std::string>> ParseStateList(std::string_view text) {
  std::vector<std::string> out;
  for (const auto& item : CommaList(text)) {
    auto st = api::ParseJobState(Upper(item));
    if (!st.ok()) {
      return InvalidArgument("unknown state '" + item +
                             "' in --state (states: QUEUED, SCHEDULED, STARTING, RUNNING, SUCCEEDED, FAILED, "
                             "CANCELLED, PREEMPTED, LOST)");
    }
    out.emplace_back(api::JobStateName(*st));
  }
  return out;
}

}  // namespace

Result<OutputFormat> ParseOutputFormat(const std::string& text, bool allow_csv) {
  if (text == "table" || text.empty()) return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  if (text == "csv" && allow_csv) return OutputFormat::kCsv;
  return InvalidArgument("--output must be 'table' or 'json'" + std::string(allow_csv ? " or 'csv'" : "") +
                         ", got '" + text + "'");
}

std::string ErrorLine(const Status& st) {
  std::string msg = st.message().empty() ? std::string(ErrorCodeName(st.code())) : st.message();
  for (auto& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  return "fastgpu: error: " + msg;
}

int ReportError(std::ostream& err, const Status& st, int exit_code) {
  err << ErrorLine(st) << "\n" << std::flush;
  if (exit_code != kExitFailure) return exit_code;
  // A failed request: the kind of failure, so that scripts can tell them apart.
  switch (st.code()) {
    case ErrorCode::kNotFound:
      return kExitNotFound;
    case ErrorCode::kUnauthenticated:
    case ErrorCode::kPermissionDenied:
      return kExitDenied;
    case ErrorCode::kUnavailable:
    case ErrorCode::kDeadlineExceeded:
      return kExitUnavailable;
    default:
      return exit_code;
  }
}

namespace {

// --here: the submit directory, when the server runs its jobs on this machine (its URL is a loopback address:
// `fastgpu up`). Elsewhere the directory would name a path on some other node.
Result<std::string> SubmitDirectory(const std::string& server_url) {
  std::string host = server_url;
  if (auto p = host.find("://"); p != std::string::npos) host = host.substr(p + 3);
  host = host.substr(0, host.find('/'));
  if (!host.empty() && host[0] == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  const bool local = host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
  if (!local) {
    return InvalidArgument("--here runs the job in the directory you submit from, which only works with a server on "
                           "this machine (fastgpu up); the server is " + server_url +
                           ": give --workdir DIR (a directory on the node that runs the job) instead");
  }
  std::string cwd(4096, '\0');
  if (::getcwd(cwd.data(), cwd.size()) == nullptr) return InvalidArgument("--here: cannot read the current directory");
  cwd.resize(std::strlen(cwd.c_str()));
  return cwd;
}

}  // namespace

int JobSubmit(Context& ctx, const SubmitFlags& flags, const ReadFileFn& read_file) {
  auto spec = BuildJobSpec(flags, read_file);
  if (!spec.ok()) return ReportError(ctx.err, spec.status(), kExitUsage);
  // --after / --after-ok: ids, comma-separated or repeated.
  for (const auto& [values, into] : {std::pair{&flags.after, &spec->after}, std::pair{&flags.after_ok, &spec->after_ok}}) {
    for (const auto& v : *values) {
      for (auto& id : CommaList(v)) into->push_back(std::move(id));
    }
  }
  // --sync DIR (or the job file's `sync:`): the code is uploaded first (docs/sync.md).
  std::optional<std::string> sync_dir = flags.sync;
  if (!sync_dir && flags.file) {
    if (auto text = read_file(*flags.file)) {
      auto from_file = SyncDirOfJobFile(*text, *flags.file);
      if (!from_file.ok()) return ReportError(ctx.err, from_file.status(), kExitUsage);
      sync_dir = *from_file;
    }
  }
  if (sync_dir) {
    if (!spec->workdir.empty() || flags.here)
      return ReportError(ctx.err, InvalidArgument("--sync and --workdir/--here cannot be combined: a synced job starts in its own copy of the code"), kExitUsage);
    Status synced = SyncCode(ctx, *sync_dir, *spec);
    if (!synced.ok())
      return ReportError(ctx.err, synced, synced.code() == ErrorCode::kInvalidArgument ? kExitUsage : kExitFailure);
  }
  if (Status st = api::ValidateJobSpec(*spec); !st.ok()) return ReportError(ctx.err, st, kExitUsage);
  if (flags.here) {
    auto dir = SubmitDirectory(ctx.client.base_url());
    if (!dir.ok()) return ReportError(ctx.err, dir.status(), kExitUsage);
    spec->workdir = *dir;
  }
  auto created = ctx.client.SubmitJob(*spec);
  if (!created.ok()) return ReportError(ctx.err, created.status(), kExitFailure);
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *created);
  } else {
    ctx.out << created->value("id", "") << "\n" << std::flush;
  }
  return kExitOk;
}

int JobList(Context& ctx, const JobListFlags& flags) {
  JobListQuery q;
  q.project = flags.project;
  q.user = flags.user;
  q.name = flags.name;
  q.no_array_tasks = !flags.tasks;
  if (!flags.since.empty()) {
    auto since = ParseSince(flags.since, ctx.clock.NowMillis(), "--since");
    if (!since.ok()) return ReportError(ctx.err, since.status(), kExitUsage);
    q.since = *since;
  }
  auto states = ParseStateList(flags.states);
  if (!states.ok()) return ReportError(ctx.err, states.status(), kExitUsage);
  q.states = std::move(states).value();
  if (flags.limit && *flags.limit < 0) return ReportError(ctx.err, InvalidArgument("--limit must be >= 0"), kExitUsage);
  // The server answers in pages (newest first); follow its cursors until `want` jobs (0 = all).
  const int64_t want = flags.limit ? *flags.limit : (flags.all ? 0 : kDefaultJobListLimit);
  json all = json::array();
  std::string more;  // next_cursor after the last page read
  while (true) {
    int64_t left = want > 0 ? want - static_cast<int64_t>(all.size()) : kJobListPage;
    if (left <= 0) break;
    q.limit = static_cast<int>(std::min<int64_t>(left, kJobListPage));
    auto r = ctx.client.ListJobs(q);
    if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
    auto page = r->find("jobs");
    if (page == r->end() || !page->is_array())
      return ReportError(ctx.err, Internal("server answer has no 'jobs' list"), kExitFailure);
    for (auto& j : *page) all.push_back(std::move(j));
    auto next = r->find("next_cursor");
    more = next != r->end() && next->is_string() ? next->get<std::string>() : "";
    if (more.empty() || more == q.cursor) break;
    q.cursor = more;
  }
  json body = {{"jobs", std::move(all)}};
  if (!more.empty()) body["next_cursor"] = more;
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, body);
    return kExitOk;
  }
  auto jobs = DecodeList<api::Job>(body, "jobs", [](const json& j) { return api::JobFromJson(j); });
  if (!jobs.ok()) return ReportError(ctx.err, jobs.status(), kExitFailure);
  ctx.out << RenderJobList(*jobs, ctx.clock.NowMillis(), ctx.color) << std::flush;
  if (!more.empty())
    ctx.err << "(newest " << jobs->size() << " shown; more exist: --limit N or --all)\n" << std::flush;
  return kExitOk;
}

int JobGet(Context& ctx, const std::string& id) {
  auto r = ctx.client.GetJob(id);
  if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
    return kExitOk;
  }
  auto job = DecodeJob(*r);
  if (!job.ok()) return ReportError(ctx.err, job.status(), kExitFailure);
  ctx.out << RenderJobDetail(*job, ctx.clock.NowMillis(), ctx.color) << std::flush;
  return kExitOk;
}

Result<std::string> ArrayTaskId(Context& ctx, const std::string& array_id, int index) {
  ASSIGN_OR_RETURN(json j, ctx.client.GetJob(array_id));
  ASSIGN_OR_RETURN(api::Job job, DecodeJob(j));
  if (job.spec.array.empty()) return InvalidArgument("job " + array_id + " is not a job array; --task is for arrays");
  for (const auto& t : job.array_tasks)
    if (t.index == index) return t.id;
  return NotFound("job array " + array_id + " (" + job.spec.array + ") has no task " + std::to_string(index));
}

Result<UnixMillis> ParseSince(const std::string& text, UnixMillis now, const std::string& flag) {
  if (auto back = ParseDurationSeconds(text); back.ok() && *back >= 0) return std::max<UnixMillis>(1, now - *back * 1000);
  auto at = ParseWhen(text, now, flag);
  if (!at.ok()) {
    return InvalidArgument(flag + " '" + text.substr(0, 64) + "' is neither a duration back from now (10m, 2h, 1d) "
                           "nor a time (2026-12-08T10:00:00Z)");
  }
  return *at;
}

int JobLogs(Context& ctx, const std::string& id, const JobLogsFlags& flags) {
  LogOptions opts;
  opts.tail = flags.tail;
  opts.timestamps = flags.timestamps;
  if (!flags.since.empty()) {
    auto since = ParseSince(flags.since, ctx.clock.NowMillis(), "--since");
    if (!since.ok()) return ReportError(ctx.err, since.status(), kExitUsage);
    opts.since = *since;
  }
  // Said once, on stderr (the output stays the log): a log written before times were recorded.
  auto note_times_unknown = [&] {
    if (!opts.timestamps && opts.since == 0) return;
    ctx.err << "fastgpu: job " << id << "'s log has no recorded times (it was written before FastGPU kept them): "
            << (opts.timestamps ? "its lines are shown with '-' for the time" : "")
            << (opts.timestamps && opts.since > 0 ? ", and " : "")
            << (opts.since > 0 ? "--since cannot leave any line out" : "") << "\n";
  };
  if (!flags.follow) {
    auto chunk = ctx.client.ReadLogs(id, 0, flags.rank, opts);
    if (!chunk.ok()) return ReportError(ctx.err, chunk.status(), kExitFailure);
    ctx.out << chunk->data << std::flush;
    if (chunk->times_unknown) note_times_unknown();
    return kExitOk;
  }
  bool times_unknown = false;
  Status st = ctx.client.FollowLogs(
      id, 0,
      [&](std::string_view data) {
        ctx.out.write(data.data(), static_cast<std::streamsize>(data.size()));
        ctx.out.flush();
        return static_cast<bool>(ctx.out);
      },
      flags.rank, opts, &times_unknown);
  if (times_unknown) note_times_unknown();
  if (!st.ok()) return ReportError(ctx.err, st, kExitFailure);
  return kExitOk;
}

std::string WaitProgressLine(const api::Job& job, UnixMillis now) {
  std::string line = job.id + " " + std::string(api::JobStateName(job.state));
  const bool running = job.state == api::JobState::kRunning && job.started_at > 0;
  const UnixMillis since = running ? job.started_at : job.created_at;
  if (since > 0 && now >= since) line += (running ? " for " : " since submit, ") + FormatDuration((now - since) / 1000);
  if (running && !job.node.empty()) line += " on " + job.node;
  if (job.state == api::JobState::kQueued && job.expected_start_at > now)
    line += ", expected start in " + FormatDuration((job.expected_start_at - now + 999) / 1000);
  if (!running && !job.reason.empty()) line += ": " + job.reason;
  // One terminal line: long reasons are cut rather than wrapped (a wrapped line cannot be redrawn).
  constexpr size_t kMax = 100;
  if (line.size() > kMax) {
    size_t cut = kMax - 3;
    while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 character
    line = line.substr(0, cut) + "...";
  }
  return line;
}

int JobWait(Context& ctx, const std::string& id, const std::string& timeout) {
  std::optional<int64_t> limit_s;
  if (!timeout.empty()) {
    auto d = ParseDurationSeconds(timeout);
    if (!d.ok()) return ReportError(ctx.err, InvalidArgument("invalid --timeout: " + d.status().message()), kExitUsage);
    limit_s = *d;
  }
  constexpr int64_t kPollS = 30;  // one long poll; the server answers early when the job ends
  // On a terminal the state is redrawn on one stderr line every few seconds while it waits, then erased.
  constexpr int64_t kProgressPollS = 2;
  bool drawn = false;
  auto erase = [&] {
    if (drawn) ctx.err << "\r\033[K" << std::flush;
    drawn = false;
  };
  const int64_t start_ns = ctx.clock.MonotonicNanos();
  while (true) {
    int64_t poll_s = ctx.progress ? kProgressPollS : kPollS;
    if (limit_s) {
      int64_t elapsed_s = (ctx.clock.MonotonicNanos() - start_ns) / 1'000'000'000;
      poll_s = std::clamp<int64_t>(*limit_s - elapsed_s, 0, poll_s);
    }
    auto r = ctx.client.WaitJob(id, poll_s);
    if (!r.ok()) {
      erase();
      return ReportError(ctx.err, r.status(), kExitUsage);
    }
    auto job = DecodeJob(*r);
    if (!job.ok()) {
      erase();
      return ReportError(ctx.err, job.status(), kExitUsage);
    }
    if (api::IsTerminal(job->state)) {
      erase();
      const bool ok = job->state == api::JobState::kSucceeded;
      if (ctx.format == OutputFormat::kJson) PrintJson(ctx, *r);
      if (ok) {
        if (ctx.format == OutputFormat::kTable) ctx.out << JobOutcomeLine(*job) << "\n" << std::flush;
        return kExitOk;
      }
      ctx.err << JobOutcomeLine(*job) << "\n" << std::flush;
      return kExitFailure;
    }
    if (limit_s && ctx.clock.MonotonicNanos() - start_ns >= *limit_s * 1'000'000'000) {
      erase();
      return ReportError(ctx.err,
                         DeadlineExceeded("job " + id + " is still " + std::string(api::JobStateName(job->state)) +
                                          " after " + FormatDuration(*limit_s) +
                                          (job->reason.empty() ? "" : " (" + job->reason + ")")),
                         kExitUsage);
    }
    if (ctx.progress) {
      ctx.err << "\r\033[K" << WaitProgressLine(*job, ctx.clock.NowMillis()) << std::flush;
      drawn = true;
    }
  }
}

int JobCancel(Context& ctx, const std::string& id) {
  auto r = ctx.client.CancelJob(id);
  if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
    return kExitOk;
  }
  auto job = DecodeJob(*r);
  if (!job.ok()) return ReportError(ctx.err, job.status(), kExitFailure);
  ctx.out << job->id << " " << api::JobStateName(job->state)
          << (api::IsTerminal(job->state) ? "" : " (cancel requested)") << "\n"
          << std::flush;
  return kExitOk;
}

int JobMigrate(Context& ctx, const std::string& id, const std::string& reason, bool force) {
  auto r = ctx.client.MigrateJob(id, reason, force);
  if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
    return kExitOk;
  }
  auto job = DecodeJob(*r);
  if (!job.ok()) return ReportError(ctx.err, job.status(), kExitFailure);
  ctx.out << job->id << " " << api::JobStateName(job->state);
  if (!job->reason.empty()) ctx.out << " (" << job->reason << ")";
  ctx.out << "; it goes back to the queue once it has stopped (fastgpu job events " << job->id << ")\n" << std::flush;
  return kExitOk;
}

int JobCancelMany(Context& ctx, const JobCancelFlags& flags) {
  const bool filtered = !flags.states.empty() || !flags.name.empty() || !flags.project.empty();
  if (flags.all == !flags.ids.empty()) {
    return ReportError(ctx.err,
                       InvalidArgument(flags.all ? "give job ids or --all, not both"
                                                 : "name the jobs to cancel (fastgpu job cancel j-3 j-4), or --all "
                                                   "with --state/--name/--project to pick them"),
                       kExitUsage);
  }
  if (filtered && !flags.all)
    return ReportError(ctx.err, InvalidArgument("--state, --name and --project pick jobs for --all"), kExitUsage);
  std::vector<std::string> ids = flags.ids;
  if (flags.all) {
    JobListQuery q;
    q.project = flags.project;
    q.limit = kJobListPage;
    auto states = ParseStateList(flags.states.empty() ? "QUEUED,SCHEDULED,STARTING,RUNNING" : flags.states);
    if (!states.ok()) return ReportError(ctx.err, states.status(), kExitUsage);
    q.states = std::move(states).value();
    while (true) {
      auto page = ctx.client.ListJobs(q);
      if (!page.ok()) return ReportError(ctx.err, page.status(), kExitFailure);
      for (const auto& j : page->value("jobs", json::array())) {
        if (!flags.name.empty() && j.value("name", "") != flags.name) continue;
        ids.push_back(j.value("id", ""));
      }
      auto next = page->find("next_cursor");
      if (next == page->end() || !next->is_string() || next->get<std::string>().empty()) break;
      q.cursor = next->get<std::string>();
    }
  }
  int code = kExitOk;
  int done = 0;
  json out = json::array();
  for (const auto& id : ids) {
    auto r = ctx.client.CancelJob(id);
    if (!r.ok()) {
      int c = ReportError(ctx.err, Status(r.status().code(), id + ": " + r.status().message()), kExitFailure);
      if (code == kExitOk) code = c;
      continue;
    }
    ++done;
    if (ctx.format == OutputFormat::kJson) {
      out.push_back(*r);
      continue;
    }
    auto job = DecodeJob(*r);
    if (!job.ok()) continue;
    ctx.out << job->id << " " << api::JobStateName(job->state)
            << (api::IsTerminal(job->state) ? "" : " (cancel requested)") << "\n";
  }
  if (ctx.format == OutputFormat::kJson) {
    ctx.out << (flags.ids.size() == 1 && out.size() == 1 ? out[0] : json{{"jobs", out}}).dump(2) << "\n";
  } else if (flags.all) {
    ctx.out << done << " job" << (done == 1 ? "" : "s") << " cancelled\n";
  }
  ctx.out << std::flush;
  return code;
}

namespace {

// The shared shape of the listing verbs: JSON passes through; tables are decoded, then rendered.
template <typename T, typename Decode, typename Render>
int PrintList(Context& ctx, const Result<json>& r, const char* field, Decode decode, Render render) {
  if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
  if (ctx.format == OutputFormat::kJson) {
    PrintJson(ctx, *r);
    return kExitOk;
  }
  auto items = DecodeList<T>(*r, field, decode);
  if (!items.ok()) return ReportError(ctx.err, items.status(), kExitFailure);
  ctx.out << render(*items) << std::flush;
  return kExitOk;
}

}  // namespace

int JobEvents(Context& ctx, const std::string& id) {
  return PrintList<api::JobEvent>(
      ctx, ctx.client.JobEvents(id), "events", [](const json& j) { return api::JobEventFromJson(j); },
      [&](const std::vector<api::JobEvent>& v) { return RenderEvents(v, ctx.color); });
}

int GpuList(Context& ctx) {
  return PrintList<api::Gpu>(
      ctx, ctx.client.ListGpus(), "gpus", [](const json& j) { return api::GpuFromJson(j); },
      [&](const std::vector<api::Gpu>& v) { return RenderGpuList(v, ctx.color); });
}

int GpuTop(Context& ctx, int64_t interval_ms, int64_t count, bool redraw) {
  for (int64_t frame = 0; count <= 0 || frame < count; ++frame) {
    if (frame > 0) std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));  // the refresh period
    auto r = ctx.client.ListGpus();
    if (!r.ok()) return ReportError(ctx.err, r.status(), kExitFailure);
    if (ctx.format == OutputFormat::kJson) {
      ctx.out << r->dump() << "\n" << std::flush;
      continue;
    }
    auto gpus = DecodeList<api::Gpu>(*r, "gpus", [](const json& j) { return api::GpuFromJson(j); });
    if (!gpus.ok()) return ReportError(ctx.err, gpus.status(), kExitFailure);
    std::string text = RenderGpuTop(*gpus, ctx.color);
    if (redraw) {
      ctx.out << "\033[H\033[2J" << "fastgpu gpu top - " << FormatTimestamp(ctx.clock.NowMillis())
              << " (every " << interval_ms / 1000.0 << " s, Ctrl-C to stop)\n\n";
    } else if (frame > 0) {
      ctx.out << "\n";
    }
    ctx.out << text << std::flush;
  }
  return kExitOk;
}

int NodeList(Context& ctx) {
  return PrintList<api::Node>(
      ctx, ctx.client.ListNodes(), "nodes", [](const json& j) { return api::NodeFromJson(j); },
      [&](const std::vector<api::Node>& v) { return RenderNodeList(v, ctx.clock.NowMillis(), ctx.color); });
}

}  // namespace fastgpu::cli
