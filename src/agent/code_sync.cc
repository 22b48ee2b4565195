#include "agent/code_sync.h"

#include <sys/stat.h>
#include <unistd.h>

#include "common/crypto.h"
#include "common/file_util.h"

namespace fastgpu::agent {

Result<std::string> FetchCode(ControlPlane& cp, const std::string& blob_dir, const std::string& home,
                              const std::string& node, const api::Job& job) {
  const std::string& sha = job.spec.sync;
  struct stat st {};
  if (!blob_dir.empty()) {
    const std::string path = blob_dir + "/" + job.spec.project + "/" + sha;
    if (::stat(path.c_str(), &st) != 0)
      return FailedPrecondition("the synced code of job " + job.id + " (" + sha.substr(0, 12) + "…) is not on the server");
    return path;
  }
  const std::string dir = home + "/blobs";
  const std::string path = dir + "/" + sha;
  if (::stat(path.c_str(), &st) == 0) return path;  // fetched (and checked) before
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  ASSIGN_OR_RETURN(std::string suffix, RandomHex(8));
  const std::string tmp = path + ".tmp." + suffix;
  Status got = cp.FetchBlob(node, job.id, sha, tmp);
  if (!got.ok()) {
    ::unlink(tmp.c_str());
    return Status(got.code(), "cannot fetch the synced code of job " + job.id + ": " + got.message());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Internal("cannot keep the synced code of job " + job.id + " in " + dir);
  }
  return path;
}

}  // namespace fastgpu::agent
