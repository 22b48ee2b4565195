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
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>

#include "server/http_internal.h"
#include "agent/protocol.h"
#include "sync/blob_store.h"
#include "sync/job_files.h"

namespace fastgpu::server {

using nlohmann::json;

namespace {

constexpr size_t kChunk = 256 << 10;
// How long a request for the files of a job on a remote node waits for the node's answer (each piece of a file too).
constexpr int64_t kRemoteFilesTimeoutMs = 15'000;

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

json FilesJson(const std::string& id, const std::string& rel, const std::vector<sync::FileEntry>& entries,
               bool truncated) {
  json files = json::array();
  for (const sync::FileEntry& e : entries)
    files.push_back({{"path", e.path}, {"type", e.type}, {"size", e.size}, {"mode", e.mode},
                     {"modified_at_ms", e.modified_at_ms}});
  return {{"job", id}, {"path", rel}, {"files", std::move(files)}, {"truncated", truncated}};
}

Status FilesError(const agent::FilesAnswer& a) {
  if (a.error_code == "invalid_argument") return InvalidArgument(a.error);
  if (a.error_code == "not_found") return NotFound(a.error);
  return Internal("node " + a.node + ": " + a.error);
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

// The files of a job on a remote node: the node's agent is asked (a files command) and the request waits, parked, for
// its answer; a file larger than one answer is streamed piece by piece, one request to the node at a time (memory per
// reader: one piece).
void HttpServer::RemoteFiles(Ctx& ctx, const api::Job& job, const std::string& rel) {
  const std::string id = job.id, node = job.node;
  auto request = service_.RequestFiles(node, id, rel, 0, agent::kMaxFilesChunk);
  if (!request.ok()) return SendError(ctx.res, request.status());
  auto reply = std::make_shared<DeferredReply>();
  reply->watch_key = "files:" + *request;
  reply->timeout_ms = kRemoteFilesTimeoutMs;
  reply->check = [this, id, node, rel, r = *request](Response& out, bool timed_out) {
    auto a = service_.Files().Take(r);
    if (!a) {
      if (!timed_out) return false;
      service_.Files().Drop(r);
      SendError(out, DeadlineExceeded("node " + node + " did not answer within " +
                                      std::to_string(kRemoteFilesTimeoutMs / 1000) + " s for the files of job " + id +
                                      ": its agent may be busy or cut off from the server; try again"));
      return true;
    }
    if (!a->error_code.empty()) {
      SendError(out, FilesError(*a));
      return true;
    }
    if (a->dir) {
      std::vector<sync::FileEntry> entries;
      entries.reserve(a->files.size());
      for (agent::FileInfo& f : a->files)
        entries.push_back(sync::FileEntry{std::move(f.path), std::move(f.type), f.size, f.mode, f.modified_at_ms});
      SendJson(out, FilesJson(id, rel, entries, a->truncated));
      return true;
    }
    const int64_t size = a->size;
    out.set_header("X-Content-Length", std::to_string(size));
    if (static_cast<int64_t>(a->data.size()) >= size) {
      out.set_content(std::move(a->data), "application/octet-stream");
      return true;
    }
    // The rest, piece by piece: each pull asks the node for the next piece and waits for it (woken by its answer).
    struct Reading {
      int64_t offset = 0;
      std::string pending;  // request in flight
      int64_t asked_at = 0;
      std::string first;  // the piece that came with the first answer
    };
    auto st = std::make_shared<Reading>();
    st->offset = 0;
    st->first = std::move(a->data);
    auto stream = std::make_shared<BodyStream>();
    stream->content_type = "application/octet-stream";
    stream->watch_key = "files-stream:" + r;
    stream->poll_ms = 250;
    stream->next = [this, st, id, node, rel, size, key = stream->watch_key]() -> StreamStep {
      if (!st->first.empty()) {
        st->offset += static_cast<int64_t>(st->first.size());
        return StreamStep{StreamStep::Kind::kData, std::exchange(st->first, {})};
      }
      if (st->pending.empty()) {
        if (st->offset >= size) return StreamStep{StreamStep::Kind::kDone, {}};
        auto next = service_.RequestFiles(node, id, rel, st->offset, agent::kMaxFilesChunk, key);
        if (!next.ok()) return StreamStep{StreamStep::Kind::kError, {}};  // the client sees a cut body
        st->pending = *next;
        st->asked_at = clock_.NowMillis();
        return StreamStep{StreamStep::Kind::kWait, {}};
      }
      auto piece = service_.Files().Take(st->pending);
      if (!piece) {
        if (clock_.NowMillis() - st->asked_at <= kRemoteFilesTimeoutMs) return StreamStep{StreamStep::Kind::kWait, {}};
        service_.Files().Drop(st->pending);
        return StreamStep{StreamStep::Kind::kError, {}};
      }
      st->pending.clear();
      // An error, a file that shrank, or no progress: cut the body rather than send other bytes. A file that grew is
      // sent up to the size announced.
      if (!piece->error_code.empty() || piece->dir || piece->size < size || piece->offset != st->offset ||
          piece->data.empty())
        return StreamStep{StreamStep::Kind::kError, {}};
      if (static_cast<int64_t>(piece->data.size()) > size - st->offset)
        piece->data.resize(static_cast<size_t>(size - st->offset));
      st->offset += static_cast<int64_t>(piece->data.size());
      return StreamStep{StreamStep::Kind::kData, std::move(piece->data)};
    };
    out.stream = std::move(stream);
    return true;
  };
  ctx.res.deferred = std::move(reply);
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
    const std::string rel = sync::TrimJobPath(Param(ctx.req, "path"));
    if (options_.local_job_root.empty() || job->node != options_.local_node) return RemoteFiles(ctx, *job, rel);
    auto opened = sync::OpenJobPath(options_.local_job_root + "/" + id + "/work", id, rel);
    if (!opened.ok()) return SendError(res, opened.status());
    auto cur = std::make_shared<OwnedFd>(::dup(opened->fd()));
    if (cur->fd < 0) return SendError(res, Internal(std::string("dup: ") + std::strerror(errno)));
    struct stat st {};
    if (::fstat(cur->fd, &st) != 0) return SendError(res, Internal(std::string("fstat: ") + std::strerror(errno)));
    if (S_ISDIR(st.st_mode)) {
      std::vector<sync::FileEntry> entries;
      const bool complete = sync::ListJobTree(cur->fd, rel, &entries);
      return SendJson(res, FilesJson(id, rel, entries, !complete));
    }
    if (!S_ISREG(st.st_mode)) return SendError(res, InvalidArgument("'" + rel + "' is not a regular file"));
    res.set_header("X-Content-Length", std::to_string(st.st_size));
    StreamFile(res, cur, st.st_size, "application/octet-stream");
  });
}

}  // namespace fastgpu::server
