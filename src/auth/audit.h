// Checking the hash chain of the audit log (rows are appended and chained by the Store).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/accounts.h"

namespace fastgpu::auth {

struct AuditVerifyReport {
  bool ok = true;
  int64_t rows = 0;
  int64_t first_bad_seq = 0;  // 0 when ok
  std::string problem;        // "row 17 was modified (hash mismatch)", "row 18 is missing (seq gap)", ...
};

// Rows must be the whole log in seq order. Detects a modified row (hash mismatch), a deleted row
// (seq gap or prev_hash mismatch) and a truncated head (first seq != 1). `expected_last_seq`, when > 0,
// also detects deletion of the newest rows (the server keeps the last seq it wrote).
AuditVerifyReport VerifyAuditChain(const std::vector<api::AuditRecord>& rows, int64_t expected_last_seq = 0);

}  // namespace fastgpu::auth
