#include "auth/secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/crypto.h"
#include "common/file_util.h"

namespace fastgpu::auth {
namespace {

MasterKey Key() { return std::move(MasterKey::Generate()).value(); }

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fastgpu-auth-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

mode_t Mode(const std::string& path) {
  struct stat st {};
  ::stat(path.c_str(), &st);
  return st.st_mode & 07777;
}

TEST(MasterKey, FromBytesAndHex) {
  EXPECT_EQ(MasterKey::FromBytes("short").status().code(), ErrorCode::kInvalidArgument);
  const std::string hex(64, 'a');
  auto k = MasterKey::FromHex(hex);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->bytes().size(), 32u);
  EXPECT_EQ(k->id(), Sha256Hex(k->bytes()).substr(0, 16));
  EXPECT_EQ(k->id().size(), 16u);
  EXPECT_EQ(MasterKey::FromHex(std::string(63, 'a')).status().code(), ErrorCode::kInvalidArgument);
  auto bad = MasterKey::FromHex(std::string(62, 'a') + "zz");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("zz"), std::string::npos) << "must not echo key material";
  EXPECT_NE(Key().id(), Key().id());
}

TEST(Seal, RoundTrip) {
  auto key = Key();
  for (std::string value : {std::string("s3cr3t"), std::string(), std::string("\0binary\xff", 8), std::string(10000, 'x')}) {
    auto rec = SealSecret(key, "ml", "WANDB_KEY", value);
    ASSERT_TRUE(rec.ok()) << rec.status().ToString();
    EXPECT_EQ(rec->project, "ml");
    EXPECT_EQ(rec->name, "WANDB_KEY");
    EXPECT_EQ(rec->key_id, key.id());
    EXPECT_EQ(rec->nonce_hex.size(), 24u);
    EXPECT_EQ(rec->ciphertext_hex.size(), 2 * (value.size() + 16));
    if (!value.empty()) {
      EXPECT_EQ(rec->ciphertext_hex.find(HexEncode(value)), std::string::npos);
    }
    auto opened = OpenSecret(key, *rec);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_EQ(*opened, value);
  }
}

TEST(Seal, FreshNoncePerCall) {
  auto key = Key();
  auto a = SealSecret(key, "ml", "X", "same");
  auto b = SealSecret(key, "ml", "X", "same");
  EXPECT_NE(a->nonce_hex, b->nonce_hex);
  EXPECT_NE(a->ciphertext_hex, b->ciphertext_hex);
}

TEST(Seal, WrongKeyIsFailedPrecondition) {
  auto key = Key(), other = Key();
  auto rec = SealSecret(key, "ml", "X", "v");
  auto r = OpenSecret(other, *rec);
  EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find(key.id()), std::string::npos) << r.status().message();
  // A forged key id does not help: the tag does not verify.
  rec->key_id = other.id();
  r = OpenSecret(other, *rec);
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
}

TEST(Seal, TamperedCiphertextOrTagOrNonceIsDetected) {
  auto key = Key();
  auto rec = *SealSecret(key, "ml", "X", "value");
  for (size_t pos : {size_t{0}, rec.ciphertext_hex.size() - 1}) {  // first byte of data, last byte of tag
    auto bad = rec;
    bad.ciphertext_hex[pos] = bad.ciphertext_hex[pos] == '0' ? '1' : '0';
    auto r = OpenSecret(key, bad);
    EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
    EXPECT_NE(r.status().message().find("tampered"), std::string::npos) << r.status().message();
  }
  auto bad = rec;
  bad.nonce_hex[0] = bad.nonce_hex[0] == '0' ? '1' : '0';
  EXPECT_EQ(OpenSecret(key, bad).status().code(), ErrorCode::kInternal);
  bad = rec;
  bad.ciphertext_hex = "abcd";  // shorter than a tag
  EXPECT_EQ(OpenSecret(key, bad).status().code(), ErrorCode::kInternal);
  bad = rec;
  bad.nonce_hex = "zz";
  EXPECT_EQ(OpenSecret(key, bad).status().code(), ErrorCode::kInternal);
}

TEST(Seal, CiphertextMovedToAnotherRowDoesNotOpen) {
  auto key = Key();
  auto rec = *SealSecret(key, "ml", "WANDB_KEY", "value");
  auto moved = rec;
  moved.name = "OTHER_KEY";
  EXPECT_EQ(OpenSecret(key, moved).status().code(), ErrorCode::kInternal);
  moved = rec;
  moved.project = "web";
  EXPECT_EQ(OpenSecret(key, moved).status().code(), ErrorCode::kInternal);
  // The framing is unambiguous: "ab" + "c" is not "a" + "bc".
  auto a = *SealSecret(key, "ab", "C", "v");
  a.project = "a";
  a.name = "bC";
  EXPECT_FALSE(OpenSecret(key, a).ok());
}

TEST(MasterKeyFile, CreatesWith0600AndReloads) {
  TempDir dir;
  const std::string path = dir.path() + "/master.key";
  EXPECT_EQ(MasterKey::LoadFile(path, /*create=*/false).status().code(), ErrorCode::kNotFound);
  auto created = MasterKey::LoadFile(path, /*create=*/true);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(Mode(path), 0600u);
  auto text = ReadFileToString(path);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, HexEncode(created->bytes()) + "\n");
  auto again = MasterKey::LoadFile(path, /*create=*/true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id(), created->id());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(MasterKeyFile, WriteFileIsAtomicAnd0600) {
  TempDir dir;
  const std::string path = dir.path() + "/master.key.new";
  auto key = Key();
  ASSERT_TRUE(key.WriteFile(path).ok());
  EXPECT_EQ(Mode(path), 0600u);
  auto loaded = MasterKey::LoadFile(path, false);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->bytes(), key.bytes());
  // Overwriting a file that had loose permissions leaves it 0600.
  ::chmod(path.c_str(), 0644);
  ASSERT_TRUE(Key().WriteFile(path).ok());
  EXPECT_EQ(Mode(path), 0600u);
}

TEST(MasterKeyFile, RefusesGroupOrOtherPermissions) {
  TempDir dir;
  const std::string path = dir.path() + "/master.key";
  ASSERT_TRUE(Key().WriteFile(path).ok());
  for (mode_t mode : {0640, 0604, 0620, 0602, 0644}) {
    ::chmod(path.c_str(), mode);
    auto r = MasterKey::LoadFile(path, /*create=*/true);
    ASSERT_FALSE(r.ok()) << std::oct << mode;
    EXPECT_EQ(r.status().code(), ErrorCode::kFailedPrecondition);
    EXPECT_NE(r.status().message().find("chmod 600 " + path), std::string::npos) << r.status().message();
  }
  ::chmod(path.c_str(), 0400);
  EXPECT_TRUE(MasterKey::LoadFile(path, false).ok());
}

TEST(MasterKeyFile, RejectsGarbage) {
  TempDir dir;
  const std::string path = dir.path() + "/master.key";
  ASSERT_TRUE(WriteFileAtomic(path, "not a key\n", 0600).ok());
  auto r = MasterKey::LoadFile(path, true);
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(path), std::string::npos);
  // Hex with surrounding whitespace is fine.
  ASSERT_TRUE(WriteFileAtomic(path, std::string(64, 'b') + "\r\n", 0600).ok());
  EXPECT_TRUE(MasterKey::LoadFile(path, false).ok());
}

}  // namespace
}  // namespace fastgpu::auth
