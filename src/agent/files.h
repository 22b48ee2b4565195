// `fastgpu job files` of a job on this node (docs/sync.md): the agent's answer to a files command, read under the
// job's work dir with the same rules as the server's own reads (sync/job_files.h).
#pragma once

#include <string>

#include "agent/control_plane.h"

namespace fastgpu::agent {

// Lists `cmd.files_path` under `<jobs_dir>/<cmd.job_id>/work` (a directory), or reads at most cmd.files_max_bytes of
// it from cmd.files_offset (a file). Errors are in the answer.
FilesAnswer AnswerFiles(const std::string& jobs_dir, const std::string& node, const JobCommand& cmd);

}  // namespace fastgpu::agent
