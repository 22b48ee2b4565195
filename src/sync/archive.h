// The code archive of `fastgpu job submit --sync DIR`: a deterministic, content-addressed snapshot of a directory.
//
// Format (fastgpu's own, simpler than tar and byte-for-byte reproducible):
//   "FGSYNC1\n"
//   per entry, sorted by path (bytewise): "<type> <mode> <size> <path length>\n" <path> <data>
//     type 'f' (regular file: data = its bytes, mode 644 or 755 in octal: only the owner's execute bit of the
//     source is kept) or 'l' (symbolic link: data = its target, mode 777)
//   "END\n"
// Directories are implied by the paths (created 0755); owners and times are not recorded, so the same tree
// always gives the same bytes and the same SHA-256, which names the blob on the server.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace fastgpu::sync {

inline constexpr int64_t kDefaultMaxArchiveBytes = int64_t{100} << 20;  // 100 MiB
inline constexpr size_t kMaxEntries = 200'000;
inline constexpr size_t kMaxPathBytes = 4096;

// SHA-256 over a stream of bytes (OpenSSL).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t n);
  std::string HexDigest();  // once

 private:
  void* ctx_;
};

struct Entry {
  std::string path;  // relative, '/'-separated
  char type = 'f';   // 'f' or 'l'
  int mode = 0644;
  int64_t size = 0;  // file bytes, or the link target's length
  std::string link_target;
};

struct Scan {
  std::vector<Entry> entries;      // sorted by path
  std::vector<std::string> notes;  // what was skipped and why (symlinks leaving DIR, sockets, ...)
  int64_t total_bytes = 0;         // the archive's size
  int64_t ignored = 0;             // entries left out by ignore rules
};

// Walks `dir`: skips `.git`, what .gitignore / .fastgpuignore files (at any level) exclude, and what is neither a
// regular file nor a symlink. A symlink whose target is absolute or leaves `dir` is left out with a note.
Result<Scan> ScanTree(const std::string& dir);

// The size limit's error: the total and the largest files, so the user knows what to add to .fastgpuignore.
Status TooLarge(const Scan& scan, int64_t max_bytes, const std::string& dir);

// Writes the archive of `scan` (taken from `dir`) to `out_path` (0600); returns its SHA-256 (hex). Files that
// changed size since the scan are an error (try again).
Result<std::string> WriteArchive(const std::string& dir, const Scan& scan, const std::string& out_path);

// Unpacks the archive at `archive_path` into the existing directory `dest`, creating what it holds; files that
// exist are replaced. Refuses absolute paths, empty, '.' and '..' components, symlinks whose target is absolute or
// leaves `dest`, and anything reached through a symlink (every component is opened with O_NOFOLLOW, relative to
// its parent's descriptor). With `owner` (uid, gid), everything created is given to it.
struct Owner {
  uid_t uid;
  gid_t gid;
};
Status Unpack(const std::string& archive_path, const std::string& dest, std::optional<Owner> owner);

// Whether a relative archive path is acceptable (see Unpack).
Status CheckEntryPath(const std::string& path);
// Whether a symlink at `path` with `target` stays inside the tree.
bool LinkStaysInside(const std::string& path, const std::string& target);

}  // namespace fastgpu::sync
