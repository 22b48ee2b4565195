// Checking the hash chain of the audit log (rows are appended and chained by the Store).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/accounts.h"
#include "common/status.h"
#include "store/store.h"

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
// `key`: the chain's key (rows from key->keyed_from must be HMACs under it, so a rewrite of the chain
// by someone without the key is detected); null for a plain SHA-256 chain.
AuditVerifyReport VerifyAuditChain(const std::vector<api::AuditRecord>& rows, int64_t expected_last_seq = 0,
                                   const store::AuditChainKey* key = nullptr);

// Keys `store`'s audit chain with a secret kept outside the database. From `env_value` when not empty
// (FASTGPU_AUDIT_KEY: 64 hex characters, keyed from row 1, or "<hex>@<first keyed row>" for a log that
// already had rows), else from the file at `path` ("<64 hex>" and "keyed_from=<seq>" lines, mode 0600),
// which is created on first use with a random key, keyed from the next row (rows written before keep
// their plain SHA-256 hashes; the first keyed row links to them, so they are covered from then on).
Status KeyAuditChain(store::Store& store, const std::string& path, const std::string& env_value);

}  // namespace fastgpu::auth
