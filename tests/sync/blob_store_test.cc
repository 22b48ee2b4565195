#include "sync/blob_store.h"

#include <unistd.h>

#include <filesystem>
#include <gtest/gtest.h>

#include "common/crypto.h"

namespace fastgpu::sync {
namespace {

TEST(BlobStoreTest, PutVerifiesHashAndSizeAndKeepsProjectsApart) {
  char tmpl[] = "/tmp/fastgpu-blobs-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  BlobStore store(dir, 100);
  const std::string data = "hello";
  const std::string sha = Sha256Hex(data);
  EXPECT_FALSE(store.Stat("ml", "nothex").ok());
  EXPECT_FALSE(store.Stat("../x", sha).ok());
  auto none = store.Stat("ml", sha);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_FALSE(store.Put("ml", Sha256Hex("other"), data).ok());  // wrong hash
  EXPECT_FALSE(store.Put("ml", Sha256Hex(std::string(101, 'x')), std::string(101, 'x')).ok());  // too large
  auto put = store.Put("ml", sha, data);
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->size, 5);
  auto got = store.Stat("ml", sha);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->size, 5);
  auto other = store.Stat("vision", sha);  // another project does not see it
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->has_value());
  EXPECT_TRUE(store.Put("ml", sha, data).ok());  // idempotent
  EXPECT_TRUE(std::filesystem::exists(store.Path("ml", sha)));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace fastgpu::sync
