// Small file helpers shared by the agent, the server and the CLI.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "common/status.h"

namespace fastgpu {

// Reads a whole file, up to `max_bytes`. nullopt when it cannot be opened.
std::optional<std::string> ReadFileToString(const std::string& path, size_t max_bytes = 64 << 20);

// Writes `data` to path.tmp, optionally fsyncs it, then renames it over `path`.
Status WriteFileAtomic(const std::string& path, const std::string& data, mode_t mode = 0600, bool sync = false);

// mkdir -p with `mode` for the directories it creates.
Status MakeDirs(const std::string& path, mode_t mode = 0700);

// Up to `want` bytes of the open file `fd` from `offset` (pread, retried on EINTR and short reads); fewer at
// the end of the file or on a read error.
std::string PreadUpTo(int fd, int64_t offset, int64_t want);

}  // namespace fastgpu
