// `fastgpu job submit --sync DIR` (the upload of the code) and `fastgpu job files` (docs/sync.md).
#pragma once

#include <optional>
#include <string>

#include "api/types.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "common/status.h"

namespace fastgpu::cli {

// The directory a job file's `sync:` names (relative to the job file's own directory), or nullopt when it names none.
Result<std::optional<std::string>> SyncDirOfJobFile(const std::string& text, const std::string& file_name);

// Packs `dir` (ignore files honoured), uploads the archive to the job's project unless the server has it already,
// and sets spec.sync to its SHA-256. Says on ctx.err what it did ("uploaded" / "unchanged: nothing sent").
Status SyncCode(Context& ctx, const std::string& dir, api::JobSpec& spec);

// `fastgpu job files ID [PATH] [-o DIR]`: lists the files under the job's work dir (or PATH in it), or downloads
// them into `out_dir` (created when missing; PATH's relative layout kept).
int JobFiles(Context& ctx, const std::string& id, const std::string& path, const std::string& out_dir);

}  // namespace fastgpu::cli
