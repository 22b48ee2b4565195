// Helpers shared by the store tests.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

#include "api/types.h"

namespace fastgpu::store::testing {

// A fresh directory under $TMPDIR (or /tmp), removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/fastgpu-store-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    }
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// "j-42" -> 42, or -1 when the id is not of that form.
inline int64_t JobNumber(const std::string& id) {
  if (id.size() < 3 || id.compare(0, 2, "j-") != 0) return -1;
  int64_t n = -1;
  auto [ptr, ec] = std::from_chars(id.data() + 2, id.data() + id.size(), n);
  if (ec != std::errc() || ptr != id.data() + id.size()) return -1;
  return n;
}

inline api::Job SampleJob(const std::string& name, const std::string& project = "default") {
  api::Job j;
  j.spec.name = name;
  j.spec.command = {"python", "train.py", "--epochs", "3"};
  j.spec.gpus_milli = 250;
  j.spec.gpu_type = "A100-80GB";
  j.spec.memory_mib = 20480;
  j.spec.runtime_limit_s = 3600;
  j.spec.priority = 70;
  j.spec.env = {{"SEED", "1"}, {"MODE", "fast \"quoted\""}};
  j.spec.workdir = "/data/run";
  j.spec.project = project;
  j.spec.max_retries = 2;
  j.user = "alice";
  j.created_at = 1'700'000'000'123;
  return j;
}

inline api::JobEvent SubmitEvent(UnixMillis at = 1'700'000'000'123) {
  api::JobEvent e;
  e.at = at;
  e.reason = "submitted";
  e.actor = "user:alice";
  return e;
}

}  // namespace fastgpu::store::testing
