// A state change made through the API and its audit row are one store transaction: when the transaction
// fails neither is written (the request's failure row follows, as for any failed request), and when it
// commits the row arrives with the change, not in a later append.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>

#include "auth/accounts.h"
#include "common/crypto.h"
#include "server/directory.h"
#include "server/http.h"
#include "server/service.h"
#include "store/store.h"

namespace fastgpu::server {
namespace {

using nlohmann::json;

// A SQLite store that can fail its next record or ledger transaction (as a full disk would) and notes
// how audit rows reach it.
class FailingStore final : public store::Store {
 public:
  explicit FailingStore(std::unique_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  void FailNextWrite() {
    std::lock_guard lock(mu_);
    fail_next_ = true;
  }
  int appends() {  // AppendAudit calls: rows written apart from any change
    std::lock_guard lock(mu_);
    return appends_;
  }
  // The row committed with the last record or ledger transaction (seq 0: none).
  api::AuditRecord last_row() {
    std::lock_guard lock(mu_);
    return last_row_;
  }

  using Store::PostLedger;
  using Store::WriteRecords;
  Status WriteRecords(const std::vector<store::RecordWrite>& writes, api::AuditRecord* audit) override {
    if (TakeFailure()) return Unavailable("disk full (test)");
    Status st = inner_->WriteRecords(writes, audit);
    Note(st, audit);
    return st;
  }
  Status PostLedger(const std::vector<api::UsageSegment>& usage, const std::vector<api::LedgerEntry>& entries,
                    api::AuditRecord* audit, const std::vector<store::RecordWrite>& records) override {
    if (TakeFailure()) return Unavailable("disk full (test)");
    Status st = inner_->PostLedger(usage, entries, audit, records);
    Note(st, audit);
    return st;
  }
  Result<api::AuditRecord> AppendAudit(api::AuditRecord record) override {
    {
      std::lock_guard lock(mu_);
      ++appends_;
    }
    return inner_->AppendAudit(std::move(record));
  }

  Result<api::Job> CreateJob(api::Job job, const api::JobEvent& event) override {
    return inner_->CreateJob(std::move(job), event);
  }
  Result<store::CreatedJob> SubmitJob(store::NewJob job) override { return inner_->SubmitJob(std::move(job)); }
  Result<std::optional<store::SubmitKey>> FindSubmitKey(const std::string& scope, const std::string& key) override {
    return inner_->FindSubmitKey(scope, key);
  }
  Status UpdateJobs(const std::vector<store::JobUpdate>& updates) override { return inner_->UpdateJobs(updates); }
  Result<api::Job> GetJob(const std::string& id) override { return inner_->GetJob(id); }
  Result<std::vector<api::Job>> ListJobs(const store::JobFilter& filter) override { return inner_->ListJobs(filter); }
  Result<std::vector<api::JobEvent>> ListEvents(const std::string& job_id) override {
    return inner_->ListEvents(job_id);
  }
  Status UpsertNode(const api::Node& node, const std::vector<api::Gpu>& gpus) override {
    return inner_->UpsertNode(node, gpus);
  }
  Result<std::vector<api::Node>> ListNodes() override { return inner_->ListNodes(); }
  Result<std::vector<api::Gpu>> ListGpus() override { return inner_->ListGpus(); }
  Status PutSetting(const std::string& key, const std::string& value) override {
    return inner_->PutSetting(key, value);
  }
  Result<std::optional<std::string>> GetSetting(const std::string& key) override { return inner_->GetSetting(key); }
  Result<std::optional<store::Record>> GetRecord(const std::string& kind, const std::string& key) override {
    return inner_->GetRecord(kind, key);
  }
  Result<std::vector<store::Record>> ListRecords(const std::string& kind, const std::string& key_prefix) override {
    return inner_->ListRecords(kind, key_prefix);
  }
  Result<int64_t> SetAuditKey(const std::string& key, int64_t keyed_from) override {
    return inner_->SetAuditKey(key, keyed_from);
  }
  std::optional<store::AuditChainKey> AuditKey() const override { return inner_->AuditKey(); }
  Result<std::vector<api::AuditRecord>> ListAudit(int64_t after_seq, int limit) override {
    return inner_->ListAudit(after_seq, limit);
  }
  Result<std::vector<api::UsageSegment>> ListUsage(const store::UsageFilter& filter) override {
    return inner_->ListUsage(filter);
  }
  Result<std::vector<api::LedgerEntry>> ListLedger(const store::LedgerFilter& filter) override {
    return inner_->ListLedger(filter);
  }
  int SchemaVersion() override { return inner_->SchemaVersion(); }
  store::StoreStats Stats() override { return inner_->Stats(); }

 private:
  bool TakeFailure() {
    std::lock_guard lock(mu_);
    return std::exchange(fail_next_, false);
  }
  void Note(const Status& st, const api::AuditRecord* audit) {
    std::lock_guard lock(mu_);
    last_row_ = st.ok() && audit ? *audit : api::AuditRecord{};
  }

  std::unique_ptr<store::Store> inner_;
  std::mutex mu_;
  bool fail_next_ = false;
  int appends_ = 0;
  api::AuditRecord last_row_;
};

class AuditTxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fastgpu-audit-tx-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    clock_.Set(1'795'000'000'000);
    store_ = std::make_unique<FailingStore>(std::move(store::OpenSqliteStore(dir_ + "/db")).value());
    key_ = std::move(auth::MasterKey::Generate()).value();
    accounts_ = std::move(auth::AccountService::Create(*store_, clock_, &*key_)).value();
    admin_token_ = std::move(RandomToken()).value();
    ASSERT_TRUE(accounts_->EnsureBootstrap(Sha256Hex(admin_token_)).ok());
    svc_ = std::move(Service::Create(*store_, clock_, {})).value();
    directory_ = std::make_unique<AccountDirectory>(*accounts_);
    svc_->SetProjectDirectory(directory_.get());
    ASSERT_TRUE(svc_->SetBilling(billing::PriceCatalog::Defaults(), {}).ok());
    HttpOptions o;
    o.port = 0;
    o.trial.amount_micro = 10'000'000;  // every new project gets a trial credit, written with the project
    http_ = std::make_unique<HttpServer>(*svc_, *accounts_, *store_, clock_, o);
    port_ = std::move(http_->Bind()).value();
    http_->Start();
  }

  void TearDown() override {
    http_.reset();
    svc_.reset();
    accounts_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::vector<api::AuditRecord> Rows() { return std::move(store_->ListAudit(0, 0)).value(); }

  std::string dir_;
  FakeClock clock_;
  std::unique_ptr<FailingStore> store_;
  std::optional<auth::MasterKey> key_;
  std::unique_ptr<auth::AccountService> accounts_;
  std::string admin_token_;
  std::unique_ptr<Service> svc_;
  std::unique_ptr<AccountDirectory> directory_;
  std::unique_ptr<HttpServer> http_;
  int port_ = 0;
};

struct Case {
  std::string method, path, body;
  std::string action;                    // the route, as the audit row names it
  std::string target;                    // "" = not checked (an id the server makes up)
  std::function<bool()> changed;         // whether the change is in the store
  std::function<bool()> any;             // whether any part of it is (null: changed)
};

TEST_F(AuditTxTest, AccountAndBillingChangesCommitWithTheirAuditRow) {
  httplib::Client cli("127.0.0.1", port_);
  httplib::Headers admin{{"Authorization", "Bearer " + admin_token_}};
  auto record_exists = [&](const std::string& kind, const std::string& key) {
    auto r = store_->GetRecord(kind, key);
    return r.ok() && r->has_value();
  };
  auto records_of = [&](const std::string& kind) { return std::move(store_->ListRecords(kind, "")).value().size(); };
  auto has_entries = [&](const std::string& project, const std::string& kind) {
    return !std::move(store_->ListLedger({.project = project, .kind = kind})).value().empty();
  };
  const size_t tokens_before = records_of("token");
  const std::vector<Case> cases = {
      {"POST", "/v1/users", R"({"name":"carol"})", "POST /v1/users", "user:carol",
       [&] { return record_exists("user", "carol"); }},
      {"POST", "/v1/tokens", R"({"name":"ci","user":"carol"})", "POST /v1/tokens", "",
       [&] { return records_of("token") > tokens_before; }},
      {"PUT", "/v1/projects/default/members/carol", R"({"role":"viewer"})",
       "PUT /v1/projects/{project}/members/{user}", "member:default/carol",
       [&] { return record_exists("member", "default/carol"); }},
      {"PUT", "/v1/projects/default/secrets/API_KEY", R"({"value":"hunter2-secret"})",
       "PUT /v1/projects/{project}/secrets/{name}", "secret:default/API_KEY",
       [&] { return record_exists("secret", "default/API_KEY"); }},
      {"POST", "/v1/prices", R"({"gpu_type":"H100","price":"3.10"})", "POST /v1/prices", "price:H100",
       [&] { return !std::move(store_->ListRecords("price", "H100@")).value().empty(); }},
      {"POST", "/v1/projects/default/credits", R"({"kind":"adjustment","amount":"25.00","memo":"goodwill"})",
       "POST /v1/projects/{project}/credits", "credits:default",
       [&] { return !std::move(store_->ListLedger({.project = "default", .kind = "adjustment"})).value().empty(); }},
      // A prepaid plan's discount record and its credit entries: both or neither.
      {"POST", "/v1/projects/default/credits", R"({"kind":"prepaid","amount":"600.00","months":6})",
       "POST /v1/projects/{project}/credits", "credits:default",
       [&] { return records_of("plan") > 0 && has_entries("default", "prepaid"); },
       [&] { return records_of("plan") > 0 || has_entries("default", "prepaid"); }},
      // A new project's records and its trial credit: both or neither.
      {"POST", "/v1/projects", R"({"name":"web"})", "POST /v1/projects", "project:web",
       [&] {
         return record_exists("project", "web") && record_exists("member", "web/admin") &&
                has_entries("web", "trial_credit");
       },
       [&] {
         return record_exists("project", "web") || record_exists("member", "web/admin") ||
                has_entries("web", "trial_credit");
       }},
  };
  auto send = [&](const Case& c) {
    httplib::Result r = c.method == "POST" ? cli.Post(c.path, admin, c.body, "application/json")
                                           : cli.Put(c.path, admin, c.body, "application/json");
    return r ? r->status : -1;
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.action);
    // The transaction fails: no change, no "ok" row; the failure is audited afterwards like any other.
    const size_t before = Rows().size();
    store_->FailNextWrite();
    EXPECT_EQ(send(c), 503);
    EXPECT_FALSE(c.any ? c.any() : c.changed());
    auto rows = Rows();
    ASSERT_EQ(rows.size(), before + 1);
    EXPECT_EQ(rows.back().action, c.action);
    EXPECT_EQ(rows.back().result, "unavailable");

    // It commits: the row came with the change (no separate append), seq and all.
    const int appends = store_->appends();
    const int status = send(c);
    EXPECT_TRUE(status == 200 || status == 201) << status;
    EXPECT_TRUE(c.changed());
    EXPECT_EQ(store_->appends(), appends) << "the row was appended apart from the change";
    rows = Rows();
    ASSERT_EQ(rows.size(), before + 2);
    const api::AuditRecord& row = rows.back();
    EXPECT_EQ(store_->last_row().seq, row.seq);
    EXPECT_EQ(store_->last_row().hash, row.hash);
    EXPECT_EQ(row.action, c.action);
    EXPECT_EQ(row.actor, "user:admin");
    EXPECT_EQ(row.result, "ok");
    if (!c.target.empty()) {
      EXPECT_EQ(row.target, c.target);
    }
    EXPECT_EQ(api::AuditCanonical(row).find("hunter2"), std::string::npos);
  }
  const auto rows = Rows();
  EXPECT_EQ(rows[3].target.rfind("token:tok-", 0), 0u) << rows[3].target;
  EXPECT_EQ(rows[5].detail, "role viewer");
  EXPECT_EQ(rows[9].detail.rfind("$3.10 per GPU-hour", 0), 0u) << rows[9].detail;
  EXPECT_EQ(rows[11].detail, "adjustment $25.00");
  EXPECT_EQ(rows[13].detail.rfind("prepaid $600.00", 0), 0u) << rows[13].detail;
  EXPECT_EQ(rows[15].target, "project:web");
  // The plan the prepaid credit bought is in force, and the new project can spend its trial credit.
  EXPECT_EQ(records_of("plan"), 1u);
  auto credits = json::parse(cli.Get("/v1/projects/web/credits", admin)->body);
  EXPECT_EQ(credits["balance_micro"], 10'000'000) << credits.dump();

  auto verify = json::parse(cli.Get("/v1/audit/verify", admin)->body);
  EXPECT_TRUE(verify["ok"].get<bool>()) << verify.dump();
  EXPECT_EQ(verify["rows"], static_cast<int64_t>(rows.size()));
}

}  // namespace
}  // namespace fastgpu::server
