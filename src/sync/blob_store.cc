#include "sync/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/crypto.h"
#include "common/file_util.h"

namespace fastgpu::sync {

namespace {

bool SafeProject(const std::string& p) {
  return !p.empty() && p.size() <= 128 && p != "." && p != ".." && p[0] != '.' &&
         std::all_of(p.begin(), p.end(), [](char c) {
           return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.';
         });
}

}  // namespace

bool ValidSha256(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

BlobStore::BlobStore(std::string dir, int64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}

std::string BlobStore::Path(const std::string& project, const std::string& sha256) const {
  if (!SafeProject(project) || !ValidSha256(sha256)) return "";
  return dir_ + "/" + project + "/" + sha256;
}

Result<std::optional<BlobInfo>> BlobStore::Stat(const std::string& project, const std::string& sha256) const {
  if (!ValidSha256(sha256)) return InvalidArgument("'" + sha256 + "' is not a SHA-256 (64 lowercase hex digits)");
  const std::string path = Path(project, sha256);
  if (path.empty()) return InvalidArgument("invalid project name '" + project + "'");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<BlobInfo>();
    return Internal("cannot read '" + path + "': " + std::strerror(errno));
  }
  return std::optional<BlobInfo>(BlobInfo{sha256, st.st_size});
}

Result<BlobInfo> BlobStore::Put(const std::string& project, const std::string& sha256, std::string_view data) {
  ASSIGN_OR_RETURN(auto have, Stat(project, sha256));
  if (have) return *have;
  if (static_cast<int64_t>(data.size()) > max_bytes_)
    return Status(ErrorCode::kInvalidArgument, "the code archive is " + std::to_string(data.size()) +
                                                   " bytes, over this server's limit of " + std::to_string(max_bytes_) +
                                                   " bytes (--max-sync-bytes)");
  if (Sha256Hex(data) != sha256)
    return InvalidArgument("the uploaded bytes do not have the SHA-256 named in the path (damaged upload?)");
  const std::string path = Path(project, sha256);
  RETURN_IF_ERROR(MakeDirs(dir_ + "/" + project, 0700));
  // A temporary file of its own (two uploads of the same blob may race), fsync'd, then renamed.
  ASSIGN_OR_RETURN(std::string suffix, RandomHex(8));
  const std::string tmp = path + ".tmp." + suffix;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot create '" + tmp + "': " + std::strerror(errno));
  const char* p = data.data();
  size_t left = data.size();
  bool ok = true;
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      ok = false;
      break;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  const int e = errno;
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e2 = ok ? errno : e;
    ::unlink(tmp.c_str());
    return Internal("cannot write blob '" + path + "': " + std::strerror(e2));
  }
  return BlobInfo{sha256, static_cast<int64_t>(data.size())};
}

}  // namespace fastgpu::sync
