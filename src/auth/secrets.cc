#include "auth/secrets.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "common/crypto.h"
#include "common/file_util.h"

namespace fastgpu::auth {

namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

std::string Aad(const std::string& project, const std::string& name) { return project + '\0' + name; }

const unsigned char* U(const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); }
const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

std::string Octal(mode_t m) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

}  // namespace

Result<MasterKey> MasterKey::FromBytes(std::string bytes) {
  if (bytes.size() != kKeyBytes)
    return InvalidArgument("a master key must be exactly 32 bytes, got " + std::to_string(bytes.size()));
  MasterKey k;
  k.id_ = Sha256Hex(bytes).substr(0, 16);
  k.bytes_ = std::move(bytes);
  return k;
}

Result<MasterKey> MasterKey::FromHex(std::string_view hex) {
  // Never echo the text: it is (almost) a key.
  if (hex.size() != 2 * kKeyBytes)
    return InvalidArgument("a master key must be 64 hex characters (32 bytes), got " + std::to_string(hex.size()) +
                           " characters; generate one with: openssl rand -hex 32");
  auto bytes = HexDecode(hex);
  if (!bytes.ok())
    return InvalidArgument("a master key must be 64 hex characters (0-9, a-f); generate one with: openssl rand -hex 32");
  return FromBytes(std::move(bytes).value());
}

Result<MasterKey> MasterKey::Generate() {
  ASSIGN_OR_RETURN(auto bytes, RandomBytes(kKeyBytes));
  return FromBytes(std::move(bytes));
}

Status MasterKey::WriteFile(const std::string& path) const {
  Status st = WriteFileAtomic(path, HexEncode(bytes_) + "\n", 0600, /*sync=*/true);
  if (!st.ok()) return Internal("cannot write master key file: " + st.message());
  return Status::Ok();
}

Result<MasterKey> MasterKey::LoadFile(const std::string& path, bool create) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Internal("cannot read master key file " + path + ": " + std::strerror(errno));
    if (!create)
      return NotFound("master key file " + path + " does not exist");
    ASSIGN_OR_RETURN(MasterKey key, Generate());
    RETURN_IF_ERROR(key.WriteFile(path));
    return key;
  }
  if (!S_ISREG(st.st_mode)) return FailedPrecondition("master key file " + path + " is not a regular file");
  if ((st.st_mode & 077) != 0) {
    return FailedPrecondition("master key file " + path + " has mode " + Octal(st.st_mode) +
                              ": it must not be readable or writable by group or others; run: chmod 600 " + path);
  }
  auto text = ReadFileToString(path, 4096);
  if (!text) return Internal("cannot read master key file " + path + ": " + std::strerror(errno));
  std::string_view v = *text;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ' || v.back() == '\t'))
    v.remove_suffix(1);
  auto key = FromHex(v);
  if (!key.ok()) return InvalidArgument("master key file " + path + " is not valid: " + key.status().message());
  return key;
}

Result<api::SecretRecord> SealSecret(const MasterKey& key, const std::string& project, const std::string& name,
                                     std::string_view value) {
  if (key.bytes().size() != kKeyBytes) return Internal("master key is not initialised");
  if (value.size() > (size_t{1} << 30)) return InvalidArgument("secret value is too large to seal");
  ASSIGN_OR_RETURN(std::string nonce, RandomBytes(kNonceBytes));
  const std::string aad = Aad(project, name);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Internal("cannot allocate a cipher context");
  std::string out(value.size() + kTagBytes, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0, total = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, U(key.bytes()), U(nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) {
    return Internal("AES-256-GCM initialisation failed");
  }
  if (!value.empty()) {
    if (EVP_EncryptUpdate(ctx.get(), o, &len, U(value), static_cast<int>(value.size())) != 1)
      return Internal("AES-256-GCM encryption failed");
    total = len;
  }
  if (EVP_EncryptFinal_ex(ctx.get(), o + total, &len) != 1) return Internal("AES-256-GCM encryption failed");
  total += len;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), o + total) != 1)
    return Internal("AES-256-GCM tag computation failed");
  out.resize(static_cast<size_t>(total) + kTagBytes);

  api::SecretRecord rec;
  rec.project = project;
  rec.name = name;
  rec.key_id = key.id();
  rec.nonce_hex = HexEncode(nonce);
  rec.ciphertext_hex = HexEncode(out);
  return rec;
}

Result<std::string> OpenSecret(const MasterKey& key, const api::SecretRecord& record) {
  const std::string what = "secret " + record.project + "/" + record.name;
  if (record.key_id != key.id()) {
    return FailedPrecondition(what + " was sealed by master key " + record.key_id + ", but the server has key " +
                              key.id() + " (wrong FASTGPU_MASTER_KEY or master.key?)");
  }
  auto nonce = HexDecode(record.nonce_hex);
  auto data = HexDecode(record.ciphertext_hex);
  if (!nonce.ok() || !data.ok() || nonce->size() != kNonceBytes || data->size() < kTagBytes)
    return Internal(what + " is malformed in the store (bad nonce or ciphertext); it may have been tampered with");
  const std::string aad = Aad(record.project, record.name);
  const size_t n = data->size() - kTagBytes;
  std::string tag = data->substr(n);
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return Internal("cannot allocate a cipher context");
  std::string plain(n, '\0');
  auto* p = reinterpret_cast<unsigned char*>(plain.data());
  int len = 0, total = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(kNonceBytes), nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, U(key.bytes()), U(*nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1) {
    return Internal("AES-256-GCM initialisation failed");
  }
  if (n > 0) {
    if (EVP_DecryptUpdate(ctx.get(), p, &len, U(*data), static_cast<int>(n)) != 1)
      return Internal(what + " could not be decrypted");
    total = len;
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes), tag.data()) != 1)
    return Internal("AES-256-GCM tag setup failed");
  if (EVP_DecryptFinal_ex(ctx.get(), p + total, &len) != 1) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return Internal(what + " does not verify: its ciphertext was tampered with or moved from another secret");
  }
  total += len;
  plain.resize(static_cast<size_t>(total));
  return plain;
}

}  // namespace fastgpu::auth
