#include "sync/job_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace fastgpu::sync {
namespace {

constexpr int kMaxDepth = 64;

bool ListTree(int dirfd, const std::string& prefix, int depth, std::vector<FileEntry>* out) {
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
    if (out->size() >= kMaxListedFiles) return false;
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    FileEntry e;
    e.path = prefix.empty() ? n : prefix + "/" + n;
    e.type = S_ISDIR(st.st_mode) ? "dir" : S_ISREG(st.st_mode) ? "file" : S_ISLNK(st.st_mode) ? "symlink" : "other";
    e.size = S_ISREG(st.st_mode) ? st.st_size : 0;
    e.mode = st.st_mode & 07777;
    e.modified_at_ms = int64_t{st.st_mtim.tv_sec} * 1000 + st.st_mtim.tv_nsec / 1'000'000;
    const std::string rel = e.path;
    out->push_back(std::move(e));
    if (S_ISDIR(st.st_mode) && depth < kMaxDepth) {
      FileHandle sub(::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.fd() >= 0 && !ListTree(sub.fd(), rel, depth + 1, out)) return false;
    }
  }
  return true;
}

}  // namespace

FileHandle::~FileHandle() {
  if (fd_ >= 0) ::close(fd_);
}

FileHandle& FileHandle::operator=(FileHandle&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

std::string TrimJobPath(std::string rel) {
  while (!rel.empty() && rel.back() == '/') rel.pop_back();
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);
  return rel;
}

Result<FileHandle> OpenJobPath(const std::string& work_dir, const std::string& job_id, const std::string& path) {
  const std::string rel = TrimJobPath(path);
  FileHandle cur(::open(work_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (cur.fd() < 0) return NotFound("job " + job_id + " has no work dir on its node (any more)");
  size_t pos = 0;
  while (!rel.empty() && pos <= rel.size()) {
    size_t slash = rel.find('/', pos);
    const std::string part = rel.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    pos = slash == std::string::npos ? rel.size() + 1 : slash + 1;
    if (part.empty() || part == "." || part == "..")
      return InvalidArgument("path '" + rel + "' must be relative to the job's work dir, without '.' or '..'");
    FileHandle next(::openat(cur.fd(), part.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
    if (next.fd() < 0) {
      if (errno == ELOOP) return InvalidArgument("'" + rel + "' goes through a symlink, which is not followed");
      return NotFound("no '" + rel + "' in the work dir of job " + job_id);
    }
    cur = std::move(next);
  }
  return cur;
}

bool ListJobTree(int dirfd, const std::string& prefix, std::vector<FileEntry>* out) {
  return ListTree(dirfd, prefix, 0, out);
}

}  // namespace fastgpu::sync
