#include "sched/policies/runtime_predictor.h"

namespace fastgpu::sched {

void RuntimePredictor::Observe(const std::string& project, const std::string& user, const std::string& name,
                               int64_t runtime_s) {
  if (runtime_s <= 0) return;
  auto& d = seen_[Key{project, user, name}];
  d.push_back(runtime_s);
  while (d.size() > history_) d.pop_front();
}

int64_t RuntimePredictor::Predict(const std::string& project, const std::string& user,
                                  const std::string& name) const {
  auto it = seen_.find(Key{project, user, name});
  if (it == seen_.end() || it->second.empty()) return 0;
  int64_t sum = 0;
  for (int64_t v : it->second) sum += v;
  const int64_t n = static_cast<int64_t>(it->second.size());
  return (sum + n - 1) / n;
}

void RuntimePredictor::Fill(std::span<JobRequest> queue) const {
  for (JobRequest& j : queue) {
    if (j.predicted_runtime_s == 0) j.predicted_runtime_s = Predict(j.project, j.user, j.name);
  }
}

}  // namespace fastgpu::sched
