#include "agent/files.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "agent/protocol.h"
#include "common/file_util.h"
#include "sync/job_files.h"

namespace fastgpu::agent {

FilesAnswer AnswerFiles(const std::string& jobs_dir, const std::string& node, const JobCommand& cmd) {
  FilesAnswer a;
  a.request = cmd.request;
  a.node = node;
  auto fail = [&](const Status& st) {
    a.error_code = st.code() == ErrorCode::kInvalidArgument ? "invalid_argument"
                   : st.code() == ErrorCode::kNotFound      ? "not_found"
                                                            : "internal";
    a.error = st.message();
    return a;
  };
  const std::string& id = cmd.job_id;
  if (id.empty() || id == "." || id == ".." || id.find('/') != std::string::npos)
    return fail(InvalidArgument("invalid job id '" + id + "'"));
  auto f = sync::OpenJobPath(jobs_dir + "/" + id + "/work", id, cmd.files_path);
  if (!f.ok()) return fail(f.status());
  struct stat st {};
  if (::fstat(f->fd(), &st) != 0) return fail(Internal(std::string("fstat: ") + std::strerror(errno)));
  if (S_ISDIR(st.st_mode)) {
    std::vector<sync::FileEntry> entries;
    a.dir = true;
    a.truncated = !sync::ListJobTree(f->fd(), sync::TrimJobPath(cmd.files_path), &entries);
    a.files.reserve(entries.size());
    int64_t bytes = 256;  // the answer's JSON, about: each entry's path as JSON and ~120 bytes of fields
    for (sync::FileEntry& e : entries) {
      bytes += static_cast<int64_t>(
                   nlohmann::json(e.path).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).size()) +
               120;
      if (bytes > kMaxFilesAnswerBytes) {
        a.truncated = true;
        break;
      }
      a.files.push_back(FileInfo{std::move(e.path), std::move(e.type), e.size, e.mode, e.modified_at_ms});
    }
    return a;
  }
  if (!S_ISREG(st.st_mode))
    return fail(InvalidArgument("'" + sync::TrimJobPath(cmd.files_path) + "' is not a regular file"));
  a.size = st.st_size;
  a.offset = std::min<int64_t>(cmd.files_offset, st.st_size);
  const int64_t want = std::min<int64_t>({cmd.files_max_bytes, kMaxFilesChunk, st.st_size - a.offset});
  if (want > 0) a.data = PreadUpTo(f->fd(), a.offset, want);
  return a;
}

}  // namespace fastgpu::agent
