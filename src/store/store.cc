// Store helpers shared by every implementation.
#include "store/store.h"

#include <algorithm>

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

Result<CreatedJob> Store::SubmitJobGroup(NewJob parent, std::vector<NewJob> tasks) {
  ASSIGN_OR_RETURN(CreatedJob created, SubmitJob(std::move(parent)));
  if (created.existing) return created;
  for (auto& t : tasks) {
    t.job.array_parent = created.job.id;
    ASSIGN_OR_RETURN(api::Job task, CreateJob(std::move(t.job), t.event));
    (void)task;
  }
  return created;
}

Result<std::optional<SubmitKey>> Store::FindSubmitKey(const std::string&, const std::string&) {
  return std::optional<SubmitKey>();
}

Result<int64_t> Store::SetAuditKey(const std::string&, int64_t) {
  return Internal("this store cannot key its audit log");
}

Result<JobListSql> BuildJobListSql(const JobFilter& filter, std::string_view select_jobs, std::string_view union_open,
                                   std::string (*param)(int)) {
  if (filter.limit < 0) return InvalidArgument("limit must not be negative, got " + std::to_string(filter.limit));
  if (filter.before_num < 0)
    return InvalidArgument("before_num must not be negative, got " + std::to_string(filter.before_num));
  JobListSql q;
  std::vector<api::JobState> states = filter.states;
  std::sort(states.begin(), states.end());
  states.erase(std::unique(states.begin(), states.end()), states.end());
  for (api::JobState s : states) q.states.emplace_back(api::JobStateName(s));
  // The projects to match: `project` and `projects` intersected; nothing to match = nothing listed.
  if (filter.projects) {
    q.projects = *filter.projects;
    if (!filter.project.empty()) {
      if (std::find(q.projects.begin(), q.projects.end(), filter.project) == q.projects.end()) {
        q.matches_nothing = true;
        return q;
      }
      q.projects = {filter.project};
    }
    if (q.projects.empty()) {
      q.matches_nothing = true;
      return q;
    }
  } else if (!filter.project.empty()) {
    q.projects = {filter.project};
  }
  std::sort(q.projects.begin(), q.projects.end());
  q.projects.erase(std::unique(q.projects.begin(), q.projects.end()), q.projects.end());

  const int k = static_cast<int>(q.states.size());
  const int p = static_cast<int>(q.projects.size());
  int next_param = k + p + 1;
  q.user_param = filter.user.empty() ? 0 : next_param++;
  q.name_param = filter.name.empty() ? 0 : next_param++;
  q.since_param = filter.created_since > 0 ? next_param++ : 0;
  if (filter.created_since < 0)
    return InvalidArgument("created_since must not be negative, got " + std::to_string(filter.created_since));
  std::vector<std::string> extra;  // conditions every branch carries
  if (q.user_param) extra.push_back("user_name = " + param(q.user_param));
  if (q.name_param) extra.push_back("name = " + param(q.name_param));
  if (q.since_param) extra.push_back("created_at >= " + param(q.since_param));
  // A task of a job array has "array_parent" in its extras (api::EncodeJobExtras); nothing else writes that key.
  if (filter.no_array_tasks) extra.push_back("depends NOT LIKE '%\"array_parent\"%'");
  q.before_param = filter.before_num > 0 ? next_param++ : 0;
  q.limit_param = filter.limit > 0 ? next_param++ : 0;
  const std::string before_cond = q.before_param ? "num < " + param(q.before_param) : "";
  const std::string limit_clause = q.limit_param ? " LIMIT " + param(q.limit_param) : "";
  std::string& sql = q.sql;
  const int seeks = std::max(k, 1) * std::max(p, 1);
  if (q.limit_param && seeks > 1 && seeks <= 256) {
    // Newest N over several states and/or projects: take the newest N of each (state, project) through its
    // index and merge, instead of sorting every matching job.
    for (int i = 0; i < std::max(k, 1); ++i) {
      for (int j = 0; j < std::max(p, 1); ++j) {
        std::vector<std::string> where;
        if (k > 0) where.push_back("state = " + param(i + 1));
        if (p > 0) where.push_back("project = " + param(k + j + 1));
        where.insert(where.end(), extra.begin(), extra.end());
        if (q.before_param) where.push_back(before_cond);
        if (!sql.empty()) sql += " UNION ALL ";
        sql += std::string(union_open) + std::string(select_jobs);
        for (size_t w = 0; w < where.size(); ++w) sql += (w ? " AND " : " WHERE ") + where[w];
        sql += " ORDER BY num DESC" + limit_clause + ")";
      }
    }
  } else {
    std::vector<std::string> where;
    auto in = [&](const char* column, int first, int count) {
      std::string c = std::string(column) + " IN (";
      for (int i = 0; i < count; ++i) c += (i ? ", " : "") + param(first + i);
      return c + ")";
    };
    if (k > 0) where.push_back(in("state", 1, k));
    if (p > 0) where.push_back(in("project", k + 1, p));
    where.insert(where.end(), extra.begin(), extra.end());
    if (q.before_param) where.push_back(before_cond);
    sql = std::string(select_jobs);
    for (size_t i = 0; i < where.size(); ++i) sql += (i ? " AND " : " WHERE ") + where[i];
  }
  sql += " ORDER BY num DESC" + limit_clause;
  return q;
}

std::string AuditRowHash(const api::AuditRecord& r, const AuditChainKey* key) {
  if (key == nullptr || r.seq < key->keyed_from) return api::AuditHash(r);
  return HmacSha256Hex(key->key, api::AuditCanonical(r));
}

void HistogramCounts::Observe(double value) {
  for (size_t i = 0; i < bounds.size() && i < cumulative.size(); ++i) {
    if (value <= bounds[i]) ++cumulative[i];
  }
  ++count;
  sum += value;
}

HistogramCounts HistogramCounts::Of(std::span<const double> b) {
  HistogramCounts h;
  h.bounds.assign(b.begin(), b.end());
  h.cumulative.assign(b.size(), 0);
  return h;
}

}  // namespace fastgpu::store
