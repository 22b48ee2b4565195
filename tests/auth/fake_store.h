// In-memory Store for the auth tests: only the record methods (WriteRecords, GetRecord, ListRecords), ledger
// entries with records (PostLedger without usage, ListLedger unfiltered) and the audit log (AppendAudit,
// ListAudit; plain SHA-256 chain) are implemented, with the compare-and-set semantics of store/store.h; a
// write that fails writes neither its records, its entries nor its audit row. Everything else is Internal.
#pragma once

#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "store/store.h"

namespace fastgpu::auth::fakes {

class FakeStore final : public store::Store {
 public:
  using store::Store::WriteRecords;
  Status WriteRecords(const std::vector<store::RecordWrite>& writes, api::AuditRecord* audit) override {
    return Apply(writes, {}, audit);
  }
  using store::Store::PostLedger;
  Status PostLedger(const std::vector<api::UsageSegment>& usage, const std::vector<api::LedgerEntry>& entries,
                    api::AuditRecord* audit, const std::vector<store::RecordWrite>& records) override {
    if (!usage.empty()) return Unimplemented();
    return Apply(records, entries, audit);
  }
  Result<std::vector<api::LedgerEntry>> ListLedger(const store::LedgerFilter&) override {
    std::lock_guard lock(mu_);
    return ledger_;
  }

  Result<std::optional<store::Record>> GetRecord(const std::string& kind, const std::string& key) override {
    std::lock_guard lock(mu_);
    auto it = records_.find({kind, key});
    if (it == records_.end()) return std::optional<store::Record>();
    return std::optional<store::Record>(it->second);
  }

  Result<std::vector<store::Record>> ListRecords(const std::string& kind, const std::string& key_prefix) override {
    std::lock_guard lock(mu_);
    std::vector<store::Record> out;
    for (auto it = records_.lower_bound({kind, key_prefix}); it != records_.end() && it->first.first == kind; ++it) {
      if (it->first.second.compare(0, key_prefix.size(), key_prefix) != 0) break;
      out.push_back(it->second);
    }
    return out;
  }

  // Test hooks.
  struct Batch {
    std::vector<store::RecordWrite> writes;
    std::vector<api::LedgerEntry> entries;
    std::optional<api::AuditRecord> audit;  // the row committed with them, as stored
  };
  // The last WriteRecords or PostLedger that committed.
  Batch last_batch() {
    std::lock_guard lock(mu_);
    return last_batch_;
  }
  void FailNextWrite(Status st) {
    std::lock_guard lock(mu_);
    fail_next_write_ = std::move(st);
  }
  int write_calls() {
    std::lock_guard lock(mu_);
    return write_calls_;
  }
  // Every stored value, concatenated (to check that no secret appears in the store).
  std::string Dump() {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& [k, r] : records_) out += r.kind + " " + r.key + " " + r.value + "\n";
    return out;
  }

  // Not used by src/auth.
  Result<api::Job> CreateJob(api::Job, const api::JobEvent&) override { return Unimplemented(); }
  Status UpdateJobs(const std::vector<store::JobUpdate>&) override { return Unimplemented(); }
  Result<api::Job> GetJob(const std::string&) override { return Unimplemented(); }
  Result<std::vector<api::Job>> ListJobs(const store::JobFilter&) override { return Unimplemented(); }
  Result<std::vector<api::JobEvent>> ListEvents(const std::string&) override { return Unimplemented(); }
  Status UpsertNode(const api::Node&, const std::vector<api::Gpu>&) override { return Unimplemented(); }
  Result<std::vector<api::Node>> ListNodes() override { return Unimplemented(); }
  Result<std::vector<api::Gpu>> ListGpus() override { return Unimplemented(); }
  Status PutSetting(const std::string&, const std::string&) override { return Unimplemented(); }
  Result<std::optional<std::string>> GetSetting(const std::string&) override { return Unimplemented(); }
  Result<api::AuditRecord> AppendAudit(api::AuditRecord record) override {
    std::lock_guard lock(mu_);
    return AppendLocked(std::move(record));
  }
  Result<std::vector<api::AuditRecord>> ListAudit(int64_t after_seq, int limit) override {
    std::lock_guard lock(mu_);
    std::vector<api::AuditRecord> out;
    for (const auto& r : audit_) {
      if (r.seq > after_seq && (limit <= 0 || static_cast<int>(out.size()) < limit)) out.push_back(r);
    }
    return out;
  }
  Result<std::vector<api::UsageSegment>> ListUsage(const store::UsageFilter&) override { return Unimplemented(); }
  int SchemaVersion() override { return 0; }

 private:
  static Status Unimplemented() { return Internal("FakeStore: not implemented"); }

  // Records, then entries, then the row: all or nothing.
  Status Apply(const std::vector<store::RecordWrite>& writes, const std::vector<api::LedgerEntry>& entries,
               api::AuditRecord* audit) {
    std::lock_guard lock(mu_);
    if (!fail_next_write_.ok()) {
      Status st = fail_next_write_;
      fail_next_write_ = Status::Ok();
      return st;
    }
    auto next = records_;  // all or nothing
    for (const auto& w : writes) {
      auto it = next.find({w.kind, w.key});
      const bool exists = it != next.end();
      if (w.expected_version) {
        const std::string name = w.kind + "/" + w.key;
        if (w.erase && !exists) return NotFound("record " + name + " does not exist");
        if (*w.expected_version == 0 && exists) return AlreadyExists("record " + name + " already exists");
        if (*w.expected_version != 0 && (!exists || it->second.version != *w.expected_version))
          return FailedPrecondition("record " + name + " is not at version " + std::to_string(*w.expected_version));
      }
      if (w.erase) {
        if (exists) next.erase(it);
        continue;
      }
      store::Record r{w.kind, w.key, w.value, exists ? it->second.version + 1 : 1};
      next[{w.kind, w.key}] = std::move(r);
    }
    records_ = std::move(next);
    for (const auto& e : entries) {  // idempotent by key
      bool seen = false;
      for (const auto& have : ledger_) seen = seen || have.key == e.key;
      if (!seen) ledger_.push_back(e);
    }
    ++write_calls_;
    if (audit != nullptr) *audit = AppendLocked(*audit);
    last_batch_ = Batch{writes, entries, audit ? std::optional<api::AuditRecord>(*audit) : std::nullopt};
    return Status::Ok();
  }

  // Chains `r` to the last row (plain SHA-256) and keeps it. mu_ held.
  api::AuditRecord AppendLocked(api::AuditRecord r) {
    r.seq = static_cast<int64_t>(audit_.size()) + 1;
    r.prev_hash = audit_.empty() ? std::string() : audit_.back().hash;
    r.hash = api::AuditHash(r);
    audit_.push_back(r);
    return r;
  }

  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, store::Record> records_;
  Status fail_next_write_;
  int write_calls_ = 0;
  std::vector<api::AuditRecord> audit_;
  std::vector<api::LedgerEntry> ledger_;
  Batch last_batch_;
};

}  // namespace fastgpu::auth::fakes
