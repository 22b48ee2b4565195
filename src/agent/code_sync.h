// Synced code on the node (docs/sync.md): where the code archive of a job comes from.
#pragma once

#include <string>

#include "agent/control_plane.h"
#include "api/types.h"
#include "common/status.h"

namespace fastgpu::agent {

// The local path of the code archive of `job` (job.spec.sync): <blob_dir>/<project>/<sha256> when the server runs in
// this process (blob_dir set), else <home>/blobs/<sha256>, fetched through `cp` when not there yet (written to a
// temporary file, its SHA-256 checked, then renamed: a file there is always complete and correct).
Result<std::string> FetchCode(ControlPlane& cp, const std::string& blob_dir, const std::string& home,
                              const std::string& node, const api::Job& job);

}  // namespace fastgpu::agent
