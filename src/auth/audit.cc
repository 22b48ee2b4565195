#include "auth/audit.h"

namespace fastgpu::auth {

namespace {

AuditVerifyReport Bad(AuditVerifyReport r, int64_t seq, std::string problem) {
  r.ok = false;
  r.first_bad_seq = seq;
  r.problem = std::move(problem);
  return r;
}

std::string Range(int64_t from, int64_t to) {
  return from == to ? "row " + std::to_string(from) + " is"
                    : "rows " + std::to_string(from) + "-" + std::to_string(to) + " are";
}

}  // namespace

AuditVerifyReport VerifyAuditChain(const std::vector<api::AuditRecord>& rows, int64_t expected_last_seq) {
  AuditVerifyReport report;
  report.rows = static_cast<int64_t>(rows.size());
  const api::AuditRecord* prev = nullptr;
  for (const auto& r : rows) {
    const int64_t want = prev ? prev->seq + 1 : 1;
    if (r.seq != want) {
      if (!prev && r.seq > 1)
        return Bad(report, 1, Range(1, r.seq - 1) + " missing: the log was truncated at its head (first row is " +
                                  std::to_string(r.seq) + ")");
      if (r.seq > want)
        return Bad(report, want, Range(want, r.seq - 1) + " missing (seq gap: " + std::to_string(want - 1) +
                                     " is followed by " + std::to_string(r.seq) + ")");
      return Bad(report, r.seq, "row " + std::to_string(r.seq) + " is out of order or duplicated (expected seq " +
                                    std::to_string(want) + ")");
    }
    if (api::AuditHash(r) != r.hash)
      return Bad(report, r.seq, "row " + std::to_string(r.seq) + " was modified (hash mismatch)");
    const std::string& link = prev ? prev->hash : std::string();
    if (r.prev_hash != link) {
      return Bad(report, r.seq,
                 prev ? "row " + std::to_string(r.seq) + " does not link to row " + std::to_string(prev->seq) +
                            " (prev_hash mismatch: a row was deleted or replaced)"
                      : "row 1 has a prev_hash, so rows before it were deleted (log truncated at its head)");
    }
    prev = &r;
  }
  const int64_t last = prev ? prev->seq : 0;
  if (expected_last_seq > 0 && last < expected_last_seq) {
    return Bad(report, last + 1,
               Range(last + 1, expected_last_seq) + " missing: the newest rows were deleted (the log ends at " +
                   std::to_string(last) + ", the server wrote up to " + std::to_string(expected_last_seq) + ")");
  }
  return report;
}

}  // namespace fastgpu::auth
