// Project secrets sealed with AES-256-GCM under a master key.
#pragma once

#include <string>
#include <string_view>

#include "api/accounts.h"
#include "common/status.h"

namespace fastgpu::auth {

class MasterKey {
 public:
  // 32 raw bytes.
  static Result<MasterKey> FromBytes(std::string bytes);
  // 64 hex characters (FASTGPU_MASTER_KEY).
  static Result<MasterKey> FromHex(std::string_view hex);
  // Reads a key file (64 hex chars + optional newline). Refuses a file readable or writable by group/others
  // ("chmod 600 FILE"). When the file does not exist and `create` is true, writes a new random key (0600).
  static Result<MasterKey> LoadFile(const std::string& path, bool create);
  static Result<MasterKey> Generate();
  Status WriteFile(const std::string& path) const;  // atomic, 0600

  const std::string& id() const { return id_; }  // first 16 hex of SHA-256 of the key
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
  std::string id_;
};

// Seals `value` for project/name (both bound as associated data: a ciphertext moved to another
// secret's row fails to open). Fresh random 96-bit nonce per call.
Result<api::SecretRecord> SealSecret(const MasterKey& key, const std::string& project, const std::string& name,
                                     std::string_view value);
// kFailedPrecondition when the record was sealed by another key; kInternal("... tampered ...") when the
// tag does not verify.
Result<std::string> OpenSecret(const MasterKey& key, const api::SecretRecord& record);

}  // namespace fastgpu::auth
