// The files a job left under its work dir (`fastgpu job files`, docs/sync.md), read safely: the path is relative to
// the work dir, without '.' or '..', and every component is opened relative to its parent without following a
// symlink, so a job cannot point whoever reads its files (the server for the agent of `fastgpu up`, a remote agent
// for the server) at files outside its directory. Listings and reads are bounded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace fastgpu::sync {

inline constexpr size_t kMaxListedFiles = 10'000;  // entries in one listing (then truncated)

// A descriptor that closes itself.
class FileHandle {
 public:
  FileHandle() = default;
  explicit FileHandle(int fd) : fd_(fd) {}
  ~FileHandle();
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;
  FileHandle(FileHandle&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  FileHandle& operator=(FileHandle&& o) noexcept;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

struct FileEntry {
  std::string path;   // relative to the work dir
  std::string type;   // dir, file, symlink, other
  int64_t size = 0;   // files only
  int64_t mode = 0;   // permission bits
  int64_t modified_at_ms = 0;
};

// `path` without leading and trailing slashes ("" = the work dir itself).
std::string TrimJobPath(std::string path);

// Opens `rel` (trimmed) under the directory `work_dir` of job `job_id` (named in messages). kNotFound when the work
// dir or the path does not exist, kInvalidArgument for '.', '..', empty components or a symlink on the way.
Result<FileHandle> OpenJobPath(const std::string& work_dir, const std::string& job_id, const std::string& rel);

// Lists the directory `dirfd` recursively (symlinks listed, never followed; depth at most 64) into `out` with paths
// under `prefix`; false when kMaxListedFiles entries were reached (the listing is truncated).
bool ListJobTree(int dirfd, const std::string& prefix, std::vector<FileEntry>* out);

}  // namespace fastgpu::sync
