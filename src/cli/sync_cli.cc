#include "cli/sync_cli.h"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/client.h"
#include "cli/table.h"
#include "common/crypto.h"
#include "common/file_util.h"
#include "sync/archive.h"

namespace fastgpu::cli {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string Human(int64_t bytes) {
  char buf[64];
  if (bytes >= (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld B", static_cast<long long>(bytes));
  }
  return buf;
}

}  // namespace

Result<std::optional<std::string>> SyncDirOfJobFile(const std::string& text, const std::string& file_name) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception&) {
    return std::optional<std::string>();  // the job file's own parser reports it
  }
  if (!root.IsMap() || !root["sync"] || root["sync"].IsNull()) return std::optional<std::string>();
  if (!root["sync"].IsScalar())
    return InvalidArgument(file_name + ": sync must be a directory (sync: . is the job file's own directory)");
  std::string dir = root["sync"].Scalar();
  if (dir.empty()) return std::optional<std::string>();
  if (dir[0] != '/') {
    const fs::path base = fs::path(file_name).parent_path();
    dir = (base.empty() ? fs::path(dir) : base / dir).lexically_normal().string();
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return std::optional<std::string>(dir);
}

Status SyncCode(Context& ctx, const std::string& dir_in, api::JobSpec& spec) {
  std::error_code ec;
  const std::string dir = fs::absolute(dir_in, ec).lexically_normal().string();
  ASSIGN_OR_RETURN(sync::Scan scan, sync::ScanTree(dir));
  if (spec.project.empty()) {
    // The archive goes to the project the server will file the job under: as it decides for a submit that names
    // none (a caller in exactly one project, not "default", means that one).
    ASSIGN_OR_RETURN(json me, ctx.client.GetJson("/v1/whoami"));
    const json projects = me.value("projects", json::array());
    spec.project = "default";
    if (!me.value("admin", false) && projects.size() == 1 && projects[0].value("project", "") != "default")
      spec.project = projects[0].value("project", "default");
  }
  for (const std::string& note : scan.notes) ctx.err << "fastgpu: sync: " << note << "\n";
  // What the server holds already, and the largest archive it takes.
  const std::string probe = "/v1/projects/" + UrlEncode(spec.project) + "/blobs/";
  ASSIGN_OR_RETURN(json limits, ctx.client.GetJson(probe + std::string(64, '0')));
  const int64_t max_bytes = limits.value("max_bytes", sync::kDefaultMaxArchiveBytes);
  if (scan.total_bytes > max_bytes) return sync::TooLarge(scan, max_bytes, dir_in);
  char tmpl[] = "/tmp/fastgpu-sync-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) return Internal("cannot create a temporary file for the code archive");
  ::close(fd);
  const std::string tmp = tmpl;
  struct Cleanup {
    std::string path;
    ~Cleanup() { ::unlink(path.c_str()); }
  } cleanup{tmp};
  ASSIGN_OR_RETURN(std::string sha, sync::WriteArchive(dir, scan, tmp));
  ASSIGN_OR_RETURN(json have, ctx.client.GetJson(probe + sha));
  const std::string what = std::to_string(scan.entries.size()) + " files, " + Human(scan.total_bytes);
  if (have.value("present", false)) {
    ctx.err << "fastgpu: sync: " << dir_in << " (" << what << ") unchanged since an earlier upload: nothing sent ("
            << sha.substr(0, 12) << ")\n";
  } else {
    auto bytes = ReadFileToString(tmp, static_cast<size_t>(max_bytes) + 1);
    if (!bytes) return Internal("cannot read back the code archive " + tmp);
    ASSIGN_OR_RETURN(json put, ctx.client.PutJson(probe + sha, *bytes));
    (void)put;
    ctx.err << "fastgpu: sync: uploaded " << dir_in << " (" << what << ", " << sha.substr(0, 12) << ")\n";
  }
  ctx.err << std::flush;
  spec.sync = sha;
  return Status::Ok();
}

int JobFiles(Context& ctx, const std::string& id, const std::string& path, const std::string& out_dir) {
  const std::string base = "/v1/jobs/" + UrlEncode(id) + "/files?path=";
  auto got = ctx.client.GetText(base + UrlEncode(path));
  if (!got.ok()) return ReportError(ctx.err, got.status(), got.status().code() == ErrorCode::kNotFound ? kExitNotFound : kExitFailure);
  const bool listing = got->content_type.rfind("application/json", 0) == 0;
  if (out_dir.empty()) {
    if (!listing) {  // one file: its bytes
      ctx.out << got->body << std::flush;
      return kExitOk;
    }
    json j = json::parse(got->body, nullptr, false);
    if (ctx.format == OutputFormat::kJson) {
      ctx.out << j.dump(2) << "\n";
      return kExitOk;
    }
    for (const auto& f : j.value("files", json::array())) {
      const std::string type = f.value("type", "");
      ctx.out << (type == "dir" ? "" : Human(f.value("size", int64_t{0}))) << "\t" << f.value("path", "")
              << (type == "dir" ? "/" : type == "symlink" ? " (symlink)" : "") << "\n";
    }
    if (j.value("truncated", false)) ctx.out << "(more files not listed)\n";
    return kExitOk;
  }
  // Download: the file itself, or every regular file of the listing, kept at its place relative to PATH.
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) return ReportError(ctx.err, InvalidArgument("cannot create '" + out_dir + "': " + ec.message()), kExitUsage);
  auto save = [&](const std::string& rel, const std::string& bytes) -> Status {
    RETURN_IF_ERROR(sync::CheckEntryPath(rel));  // never outside out_dir, whatever the server says
    const fs::path dest = fs::path(out_dir) / rel;
    fs::create_directories(dest.parent_path(), ec);
    std::ofstream o(dest, std::ios::binary | std::ios::trunc);
    o << bytes;
    if (!o) return Internal("cannot write '" + dest.string() + "'");
    return Status::Ok();
  };
  int64_t files = 0, bytes = 0;
  if (!listing) {
    const std::string name = fs::path(path).filename().string();
    if (Status st = save(name.empty() ? "file" : name, got->body); !st.ok()) return ReportError(ctx.err, st, kExitFailure);
    files = 1;
    bytes = static_cast<int64_t>(got->body.size());
  } else {
    json j = json::parse(got->body, nullptr, false);
    const std::string prefix = j.value("path", std::string());
    for (const auto& f : j.value("files", json::array())) {
      if (f.value("type", "") != "file") continue;
      const std::string p = f.value("path", "");
      std::string rel = prefix.empty() ? p : p.substr(std::min(p.size(), prefix.size() + 1));
      auto one = ctx.client.GetText(base + UrlEncode(p));
      if (!one.ok()) return ReportError(ctx.err, Status(one.status().code(), p + ": " + one.status().message()), kExitFailure);
      if (Status st = save(rel, one->body); !st.ok()) return ReportError(ctx.err, st, kExitFailure);
      ++files;
      bytes += static_cast<int64_t>(one->body.size());
    }
  }
  ctx.err << "fastgpu: downloaded " << files << " file" << (files == 1 ? "" : "s") << " (" << Human(bytes) << ") into "
          << out_dir << "\n";
  return kExitOk;
}

}  // namespace fastgpu::cli
