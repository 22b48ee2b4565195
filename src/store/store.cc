// Store helpers shared by every implementation.
#include "store/store.h"

#include "common/crypto.h"

namespace fastgpu::store {

Status PutRecord(Store& store, const std::string& kind, const std::string& key, const std::string& value,
                 std::optional<int64_t> expected_version) {
  return store.WriteRecords({RecordWrite{.kind = kind, .key = key, .value = value, .erase = false,
                                         .expected_version = expected_version}});
}

Status DeleteRecord(Store& store, const std::string& kind, const std::string& key) {
  return store.WriteRecords({RecordWrite{.kind = kind, .key = key, .erase = true}});
}

Result<CreatedJob> Store::SubmitJob(NewJob job) {
  if (job.audit || !job.idempotency_key.empty())
    return Internal("this store cannot write audit rows or idempotency keys with a job");
  ASSIGN_OR_RETURN(api::Job created, CreateJob(std::move(job.job), job.event));
  return CreatedJob{.job = std::move(created)};
}

Result<std::optional<SubmitKey>> Store::FindSubmitKey(const std::string&, const std::string&) {
  return std::optional<SubmitKey>();
}

Result<int64_t> Store::SetAuditKey(const std::string&, int64_t) {
  return Internal("this store cannot key its audit log");
}

std::string AuditRowHash(const api::AuditRecord& r, const AuditChainKey* key) {
  if (key == nullptr || r.seq < key->keyed_from) return api::AuditHash(r);
  return HmacSha256Hex(key->key, api::AuditCanonical(r));
}

}  // namespace fastgpu::store
