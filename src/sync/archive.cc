#include "sync/archive.h"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/crypto.h"
#include "common/file_util.h"
#include "sync/ignore.h"

namespace fastgpu::sync {

namespace {

std::string Errno(int e) { return std::strerror(e); }

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (true) {
    size_t s = path.find('/', pos);
    parts.push_back(path.substr(pos, s == std::string::npos ? std::string::npos : s - pos));
    if (s == std::string::npos) break;
    pos = s + 1;
  }
  return parts;
}

std::string Human(int64_t bytes) {
  char buf[64];
  if (bytes >= (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
  } else if (bytes >= 1024) {
    std::snprintf(buf, sizeof(buf), "%.1f KiB", static_cast<double>(bytes) / 1024);
  } else {
    std::snprintf(buf, sizeof(buf), "%lld bytes", static_cast<long long>(bytes));
  }
  return buf;
}

int64_t HeaderBytes(const Entry& e) {
  return static_cast<int64_t>(std::snprintf(nullptr, 0, "%c %o %lld %zu\n", e.type, e.mode,
                                            static_cast<long long>(e.size), e.path.size()) +
                              e.path.size());
}

constexpr char kMagic[] = "FGSYNC1\n";
constexpr char kEnd[] = "END\n";

class Walker {
 public:
  Walker(const std::string& root, Scan& scan) : root_(root), scan_(scan) {}

  Status Walk(const std::string& rel) {
    const std::string abs = rel.empty() ? root_ : root_ + "/" + rel;
    for (const char* name : {".gitignore", ".fastgpuignore"}) {
      if (auto text = ReadFileToString(abs + "/" + name, 1 << 20)) rules_.AddFile(rel, *text);
    }
    DIR* d = ::opendir(abs.c_str());
    if (!d) return InvalidArgument("cannot read directory '" + abs + "': " + Errno(errno));
    std::vector<std::string> names;
    while (dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(std::move(n));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      const std::string r = rel.empty() ? n : rel + "/" + n;
      const std::string a = abs + "/" + n;
      struct stat st {};
      if (::lstat(a.c_str(), &st) != 0) return InvalidArgument("cannot read '" + a + "': " + Errno(errno));
      const bool is_dir = S_ISDIR(st.st_mode);
      if (is_dir && n == ".git") continue;
      if (rules_.Ignored(r, is_dir)) {
        ++scan_.ignored;
        continue;
      }
      if (is_dir) {
        RETURN_IF_ERROR(Walk(r));
        continue;
      }
      if (r.size() > kMaxPathBytes) return InvalidArgument("path too long to sync: '" + r.substr(0, 200) + "…'");
      Entry e;
      e.path = r;
      if (S_ISREG(st.st_mode)) {
        e.type = 'f';
        e.mode = (st.st_mode & S_IXUSR) ? 0755 : 0644;
        e.size = st.st_size;
      } else if (S_ISLNK(st.st_mode)) {
        char buf[4096];
        ssize_t n2 = ::readlink(a.c_str(), buf, sizeof(buf));
        if (n2 < 0) return InvalidArgument("cannot read symlink '" + a + "': " + Errno(errno));
        e.type = 'l';
        e.mode = 0777;
        e.link_target.assign(buf, static_cast<size_t>(n2));
        e.size = n2;
        if (!LinkStaysInside(r, e.link_target)) {
          scan_.notes.push_back("left out symlink " + r + " -> " + e.link_target + " (it points outside the directory)");
          continue;
        }
      } else {
        scan_.notes.push_back("left out " + r + " (not a regular file or symlink)");
        continue;
      }
      if (scan_.entries.size() >= kMaxEntries)
        return InvalidArgument("more than " + std::to_string(kMaxEntries) +
                               " files to sync: add what the job does not need to .fastgpuignore");
      scan_.total_bytes += HeaderBytes(e) + e.size;
      scan_.entries.push_back(std::move(e));
    }
    return Status::Ok();
  }

 private:
  const std::string root_;
  Scan& scan_;
  IgnoreRules rules_;
};

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Buffered reader over a file descriptor.
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  // Reads exactly n bytes (false at the end of the file).
  bool Read(char* out, size_t n) {
    while (n > 0) {
      if (pos_ == len_) {
        ssize_t r = ::read(fd_, buf_, sizeof(buf_));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        pos_ = 0;
        len_ = static_cast<size_t>(r);
      }
      size_t k = std::min(n, len_ - pos_);
      std::memcpy(out, buf_ + pos_, k);
      pos_ += k;
      out += k;
      n -= k;
    }
    return true;
  }
  bool Line(std::string& out, size_t max) {
    out.clear();
    char c;
    while (Read(&c, 1)) {
      if (c == '\n') return true;
      if (out.size() >= max) return false;
      out.push_back(c);
    }
    return false;
  }

 private:
  int fd_;
  char buf_[1 << 16];
  size_t pos_ = 0, len_ = 0;
};

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr); }
Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }
void Sha256::Update(const void* data, size_t n) { EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), data, n); }
std::string Sha256::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(md), len));
}

Status CheckEntryPath(const std::string& path) {
  if (path.empty() || path.size() > kMaxPathBytes) return InvalidArgument("archive entry with an empty or too long path");
  if (path[0] == '/') return InvalidArgument("archive entry '" + path + "' is an absolute path");
  if (path.find('\0') != std::string::npos) return InvalidArgument("archive entry path holds a NUL byte");
  for (const std::string& c : Split(path)) {
    if (c.empty() || c == "." || c == "..")
      return InvalidArgument("archive entry '" + path + "' has an empty, '.' or '..' component");
  }
  return Status::Ok();
}

bool LinkStaysInside(const std::string& path, const std::string& target) {
  if (target.empty() || target[0] == '/' || target.find('\0') != std::string::npos) return false;
  // Depth of the link's directory, then walk the target's components.
  int depth = static_cast<int>(Split(path).size()) - 1;
  for (const std::string& c : Split(target)) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (--depth < 0) return false;
    } else {
      ++depth;
    }
  }
  return true;
}

Result<Scan> ScanTree(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return InvalidArgument("--sync '" + dir + "' is not a directory");
  Scan scan;
  scan.total_bytes = static_cast<int64_t>(sizeof(kMagic) - 1 + sizeof(kEnd) - 1);
  Walker w(dir, scan);
  RETURN_IF_ERROR(w.Walk(""));
  std::sort(scan.entries.begin(), scan.entries.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
  return scan;
}

Status TooLarge(const Scan& scan, int64_t max_bytes, const std::string& dir) {
  std::vector<const Entry*> big;
  for (const Entry& e : scan.entries) big.push_back(&e);
  std::sort(big.begin(), big.end(), [](const Entry* a, const Entry* b) { return a->size > b->size; });
  std::string msg = "'" + dir + "' is " + Human(scan.total_bytes) + " to sync, over the limit of " + Human(max_bytes) +
                    "; the largest files:";
  for (size_t i = 0; i < big.size() && i < 5; ++i) msg += " " + big[i]->path + " (" + Human(big[i]->size) + ")";
  msg += ". List what the job does not need in .fastgpuignore (same syntax as .gitignore)";
  return Status(ErrorCode::kInvalidArgument, msg);
}

Result<std::string> WriteArchive(const std::string& dir, const Scan& scan, const std::string& out_path) {
  Fd out(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (out.fd < 0) return Internal("cannot create '" + out_path + "': " + Errno(errno));
  Sha256 sha;
  auto put = [&](const char* p, size_t n) -> Status {
    sha.Update(p, n);
    if (!WriteAll(out.fd, p, n)) return Internal("cannot write '" + out_path + "': " + Errno(errno));
    return Status::Ok();
  };
  RETURN_IF_ERROR(put(kMagic, sizeof(kMagic) - 1));
  std::vector<char> buf(1 << 16);
  for (const Entry& e : scan.entries) {
    char head[128];
    int n = std::snprintf(head, sizeof(head), "%c %o %lld %zu\n", e.type, e.mode, static_cast<long long>(e.size),
                          e.path.size());
    RETURN_IF_ERROR(put(head, static_cast<size_t>(n)));
    RETURN_IF_ERROR(put(e.path.data(), e.path.size()));
    if (e.type == 'l') {
      RETURN_IF_ERROR(put(e.link_target.data(), e.link_target.size()));
      continue;
    }
    const std::string src = dir + "/" + e.path;
    Fd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (in.fd < 0) return Internal("cannot read '" + src + "': " + Errno(errno));
    int64_t left = e.size;
    while (left > 0) {
      ssize_t r = ::read(in.fd, buf.data(), static_cast<size_t>(std::min<int64_t>(left, static_cast<int64_t>(buf.size()))));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return FailedPrecondition("'" + src + "' changed while it was being packed: try again");
      RETURN_IF_ERROR(put(buf.data(), static_cast<size_t>(r)));
      left -= r;
    }
    char extra;
    if (::read(in.fd, &extra, 1) > 0)
      return FailedPrecondition("'" + src + "' changed while it was being packed: try again");
  }
  RETURN_IF_ERROR(put(kEnd, sizeof(kEnd) - 1));
  if (::fsync(out.fd) != 0) return Internal("cannot write '" + out_path + "': " + Errno(errno));
  return sha.HexDigest();
}

Status Unpack(const std::string& archive_path, const std::string& dest, std::optional<Owner> owner) {
  Fd in(::open(archive_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) return Internal("cannot open code archive '" + archive_path + "': " + Errno(errno));
  Fd root(::open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.fd < 0) return Internal("cannot open '" + dest + "': " + Errno(errno));
  Reader r(in.fd);
  const std::string bad = "the code archive is damaged";
  char magic[sizeof(kMagic) - 1];
  if (!r.Read(magic, sizeof(magic)) || std::memcmp(magic, kMagic, sizeof(magic)) != 0)
    return InvalidArgument(bad + " (not a fastgpu code archive)");
  std::string line;
  std::vector<char> buf(1 << 16);
  size_t count = 0;
  auto give = [&](int fd, const std::string& what) -> Status {
    if (owner && ::fchown(fd, owner->uid, owner->gid) != 0)
      return Internal("cannot give '" + what + "' to uid " + std::to_string(owner->uid) + ": " + Errno(errno));
    return Status::Ok();
  };
  while (true) {
    if (!r.Line(line, 256)) return InvalidArgument(bad + " (truncated)");
    if (line == "END") break;
    if (++count > kMaxEntries) return InvalidArgument(bad + " (too many entries)");
    char type = 0;
    unsigned mode = 0;
    long long size = -1;
    size_t plen = 0;
    char tail = 0;
    if (std::sscanf(line.c_str(), "%c %o %lld %zu%c", &type, &mode, &size, &plen, &tail) != 4 ||
        (type != 'f' && type != 'l') || size < 0 || plen == 0 || plen > kMaxPathBytes)
      return InvalidArgument(bad + " (bad entry header '" + line.substr(0, 80) + "')");
    std::string path(plen, '\0');
    if (!r.Read(path.data(), plen)) return InvalidArgument(bad + " (truncated)");
    RETURN_IF_ERROR(CheckEntryPath(path));
    // Parent directories: made when missing, entered without following symlinks.
    std::vector<std::string> parts = Split(path);
    int dirfd = ::dup(root.fd);
    if (dirfd < 0) return Internal("dup: " + Errno(errno));
    Fd cur(dirfd);
    std::string sofar;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      sofar += (sofar.empty() ? "" : "/") + parts[i];
      bool made = ::mkdirat(cur.fd, parts[i].c_str(), 0755) == 0;
      if (!made && errno != EEXIST) return Internal("cannot create '" + dest + "/" + sofar + "': " + Errno(errno));
      int next = ::openat(cur.fd, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (next < 0)
        return InvalidArgument("cannot unpack '" + path + "': '" + sofar + "' is not a directory (or is a symlink)");
      if (made) {
        Status g = give(next, sofar);
        if (!g.ok()) {
          ::close(next);
          return g;
        }
        ::fchmod(next, 0755);
      }
      ::close(cur.fd);
      cur.fd = next;
    }
    const std::string& name = parts.back();
    if (::unlinkat(cur.fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      if (errno == EISDIR || errno == EPERM)
        return InvalidArgument("cannot unpack '" + path + "': a directory of that name exists");
      return Internal("cannot replace '" + dest + "/" + path + "': " + Errno(errno));
    }
    if (type == 'l') {
      if (size > 4096) return InvalidArgument(bad + " (symlink target too long)");
      std::string target(static_cast<size_t>(size), '\0');
      if (!r.Read(target.data(), target.size())) return InvalidArgument(bad + " (truncated)");
      if (!LinkStaysInside(path, target))
        return InvalidArgument("code archive refused: symlink '" + path + "' -> '" + target + "' points outside the directory");
      if (::symlinkat(target.c_str(), cur.fd, name.c_str()) != 0)
        return Internal("cannot create symlink '" + dest + "/" + path + "': " + Errno(errno));
      if (owner && ::fchownat(cur.fd, name.c_str(), owner->uid, owner->gid, AT_SYMLINK_NOFOLLOW) != 0)
        return Internal("cannot give '" + path + "' to uid " + std::to_string(owner->uid) + ": " + Errno(errno));
      continue;
    }
    Fd f(::openat(cur.fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (f.fd < 0) return Internal("cannot create '" + dest + "/" + path + "': " + Errno(errno));
    long long left = size;
    while (left > 0) {
      size_t k = static_cast<size_t>(std::min<long long>(left, static_cast<long long>(buf.size())));
      if (!r.Read(buf.data(), k)) return InvalidArgument(bad + " (truncated)");
      if (!WriteAll(f.fd, buf.data(), k)) return Internal("cannot write '" + dest + "/" + path + "': " + Errno(errno));
      left -= static_cast<long long>(k);
    }
    RETURN_IF_ERROR(give(f.fd, path));
    if (::fchmod(f.fd, (mode & 0100) ? 0755 : 0644) != 0)
      return Internal("cannot set the mode of '" + dest + "/" + path + "': " + Errno(errno));
  }
  return Status::Ok();
}

}  // namespace fastgpu::sync
