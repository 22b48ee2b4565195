// Code sync (docs/sync.md): code archives uploaded per project (PUT/GET /v1/projects/{project}/blobs/{hash}), the
// check that a submitted job's archive exists, the archive served to the nodes a job was placed on, and the files
// under a job's work dir (GET /v1/jobs/{id}/files).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "server/http_internal.h"
#include "sync/blob_store.h"

namespace fastgpu::server {

using nlohmann::json;

namespace {

constexpr size_t kMaxListed = 10'000;  // entries in one listing
constexpr int kMaxDepth = 64;
constexpr size_t kChunk = 256 << 10;

struct OwnedFd {
  int fd = -1;
  explicit OwnedFd(int f) : fd(f) {}
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
};

// A file's bytes as a chunked body, read piece by piece (bounded memory).
void StreamFile(Response& res, std::shared_ptr<OwnedFd> fd, int64_t size, const std::string& content_type) {
  auto stream = std::make_shared<BodyStream>();
  stream->content_type = content_type;
  auto offset = std::make_shared<int64_t>(0);
  stream->next = [fd, offset, size]() -> StreamStep {
    if (*offset >= size) return StreamStep{StreamStep::Kind::kDone, {}};
    std::string buf(static_cast<size_t>(std::min<int64_t>(kChunk, size - *offset)), '\0');
    ssize_t n = ::pread(fd->fd, buf.data(), buf.size(), *offset);
    if (n < 0 && errno == EINTR) return StreamStep{StreamStep::Kind::kWait, {}};
    if (n <= 0) return StreamStep{StreamStep::Kind::kError, {}};  // shrank while being sent
    buf.resize(static_cast<size_t>(n));
    *offset += n;
    return StreamStep{StreamStep::Kind::kData, std::move(buf)};
  };
  stream->poll_ms = 1;
  res.stream = std::move(stream);
}

// Lists `dirfd` recursively (symlinks listed, never followed) into `out`; false when the limit was reached.
bool ListTree(int dirfd, const std::string& prefix, int depth, json& out) {
  int dup = ::dup(dirfd);
  if (dup < 0) return true;
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return true;
  }
  std::vector<std::string> names;
  while (dirent* de = ::readdir(d)) {
    std::string n = de->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& n : names) {
    if (out.size() >= kMaxListed) return false;
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    const std::string rel = prefix.empty() ? n : prefix + "/" + n;
    const char* type = S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : S_ISLNK(st.st_mode) ? "symlink" : "other";
    out.push_back({{"path", rel}, {"type", type}, {"size", S_ISREG(st.st_mode) ? st.st_size : 0},
                   {"mode", st.st_mode & 07777}, {"modified_at_ms", int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000}});
    if (S_ISDIR(st.st_mode) && depth < kMaxDepth) {
      OwnedFd sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.fd >= 0 && !ListTree(sub.fd, rel, depth + 1, out)) return false;
    }
  }
  return true;
}

}  // namespace

Status HttpServer::CheckSyncBlob(const std::string& project, const std::string& sha256) const {
  if (!blobs_) return FailedPrecondition("this server does not take synced code (it has no blob directory)");
  ASSIGN_OR_RETURN(auto have, blobs_->Stat(project, sha256));
  if (!have)
    return FailedPrecondition("project " + project + " has no uploaded code archive " + sha256.substr(0, 12) +
                              "…: upload it first (fastgpu job submit --sync DIR does)");
  return Status::Ok();
}

void HttpServer::ServeBlob(Ctx& ctx, const std::string& project, const std::string& sha256) {
  if (sha256.empty()) return SendError(ctx.res, NotFound("the job has no synced code"));
  if (!blobs_) return SendError(ctx.res, NotFound("this server keeps no code archives"));
  const std::string path = blobs_->Path(project, sha256);
  auto fd = std::make_shared<OwnedFd>(path.empty() ? -1 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd->fd < 0) return SendError(ctx.res, NotFound("code archive " + sha256 + " of project " + project + " is gone"));
  struct stat st {};
  ::fstat(fd->fd, &st);
  ctx.res.set_header("X-Content-Length", std::to_string(st.st_size));
  StreamFile(ctx.res, std::move(fd), st.st_size, "application/octet-stream");
}

void HttpServer::InstallSync() {
  if (!options_.blob_dir.empty())
    blobs_ = std::make_shared<sync::BlobStore>(options_.blob_dir, options_.max_sync_bytes);

  Add("GET", "/v1/projects/{project}/blobs/{hash}", [this](Ctx& ctx) {
    if (!blobs_) return SendError(ctx.res, NotFound("this server keeps no code archives"));
    const std::string sha = ctx.req.matches[2];
    auto have = blobs_->Stat(ctx.project, sha);
    if (!have.ok()) return SendError(ctx.res, have.status());
    // 200 either way (the CLI asks before it uploads): whether the project has it, and the largest upload taken.
    SendJson(ctx.res, {{"sha256", sha},
                       {"project", ctx.project},
                       {"present", have->has_value()},
                       {"size", *have ? (*have)->size : 0},
                       {"max_bytes", blobs_->max_bytes()}});
  });

  Add("PUT", "/v1/projects/{project}/blobs/{hash}", [this](Ctx& ctx) {
    if (!blobs_) return SendError(ctx.res, FailedPrecondition("this server does not take synced code"));
    const std::string sha = ctx.req.matches[2];
    ctx.audit_detail = std::to_string(ctx.req.body.size()) + " bytes";
    auto put = blobs_->Put(ctx.project, sha, ctx.req.body);
    if (!put.ok()) return SendError(ctx.res, put.status());
    SendJson(ctx.res, {{"sha256", sha}, {"size", put->size}, {"project", ctx.project}}, 201);
  });

  Add("GET", "/v1/jobs/{id}/files", [this](Ctx& ctx) {
    auto& res = ctx.res;
    const std::string id = ctx.req.matches[1];
    auto job = service_.GetJob(id);
    if (!job.ok()) return SendError(res, job.status());
    if (!job->spec.workdir.empty())
      return SendError(res, FailedPrecondition("job " + id + " ran in --workdir " + job->spec.workdir +
                                               " on its node; only a job's own work dir can be listed"));
    if (job->node.empty()) return SendError(res, FailedPrecondition("job " + id + " has not started on a node yet"));
    if (options_.local_job_root.empty() || job->node != options_.local_node)
      return SendError(res, FailedPrecondition("job " + id + " ran on node " + job->node +
                                               ": files of jobs on remote nodes cannot be read through the server "
                                               "yet (read them on the node, under its agent's home/jobs/" + id + "/work)"));
    std::string rel = Param(ctx.req, "path");
    while (!rel.empty() && rel.back() == '/') rel.pop_back();
    while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
    const std::string root = options_.local_job_root + "/" + id + "/work";
    auto cur = std::make_shared<OwnedFd>(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (cur->fd < 0) return SendError(res, NotFound("job " + id + " has no work dir on node " + job->node + " (any more)"));
    // Every component opened relative to its parent, never through a symlink: a job cannot point the server
    // at files outside its directory.
    size_t pos = 0;
    while (!rel.empty() && pos <= rel.size()) {
      size_t slash = rel.find('/', pos);
      const std::string part = rel.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      pos = slash == std::string::npos ? rel.size() + 1 : slash + 1;
      if (part.empty() || part == "." || part == "..")
        return SendError(res, InvalidArgument("path '" + rel + "' must be relative to the job's work dir, without '.' or '..'"));
      int next = ::openat(cur->fd, part.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
      if (next < 0) {
        if (errno == ELOOP) return SendError(res, InvalidArgument("'" + rel + "' goes through a symlink, which is not followed"));
        return SendError(res, NotFound("no '" + rel + "' in the work dir of job " + id));
      }
      cur = std::make_shared<OwnedFd>(next);
    }
    struct stat st {};
    if (::fstat(cur->fd, &st) != 0) return SendError(res, Internal(std::string("fstat: ") + std::strerror(errno)));
    if (S_ISDIR(st.st_mode)) {
      json files = json::array();
      const bool complete = ListTree(cur->fd, rel, 0, files);
      return SendJson(res, {{"job", id}, {"path", rel}, {"files", std::move(files)}, {"truncated", !complete}});
    }
    if (!S_ISREG(st.st_mode)) return SendError(res, InvalidArgument("'" + rel + "' is not a regular file"));
    res.set_header("X-Content-Length", std::to_string(st.st_size));
    StreamFile(res, cur, st.st_size, "application/octet-stream");
  });
}

}  // namespace fastgpu::server
