// Code archives kept by the server, content-addressed and per project: <dir>/<project>/<sha256>.
//
// A blob is written once (to a temporary file, fsync'd, then renamed) after its SHA-256 was checked against its
// name. Blobs are per project: the same bytes uploaded by two projects are two files, so a member of one project
// can never use (or learn about) another project's code by guessing its hash.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace fastgpu::sync {

// 64 lowercase hex digits.
bool ValidSha256(std::string_view s);

struct BlobInfo {
  std::string sha256;
  int64_t size = 0;
};

class BlobStore {
 public:
  BlobStore(std::string dir, int64_t max_bytes);
  int64_t max_bytes() const { return max_bytes_; }
  const std::string& dir() const { return dir_; }
  // nullopt when the project has no such blob.
  Result<std::optional<BlobInfo>> Stat(const std::string& project, const std::string& sha256) const;
  // Stores `data` as the blob `sha256` of `project`: refused when the hash does not match or it is too large.
  // Idempotent (a blob that exists is kept).
  Result<BlobInfo> Put(const std::string& project, const std::string& sha256, std::string_view data);
  // Where the blob is (whether or not it exists); "" for invalid names.
  std::string Path(const std::string& project, const std::string& sha256) const;

 private:
  const std::string dir_;
  const int64_t max_bytes_;
};

}  // namespace fastgpu::sync
