// Learns job runtimes from finished jobs of the same project, user and job name. Pure and deterministic:
// it only knows what it was told through Observe (never the runtime of a job still queued).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <span>
#include <string>
#include <tuple>
#include <utility>

#include "sched/model/model.h"

namespace fastgpu::sched {

class RuntimePredictor {
 public:
  // Keeps the last `history` runtimes per (project, user, name).
  explicit RuntimePredictor(size_t history = 8) : history_(history == 0 ? 1 : history) {}

  // Records the runtime of a finished job. Non-positive runtimes are ignored.
  void Observe(const std::string& project, const std::string& user, const std::string& name, int64_t runtime_s);
  // Mean of the recent runtimes of (project, user, name), rounded up; 0 when never seen.
  int64_t Predict(const std::string& project, const std::string& user, const std::string& name) const;
  // Sets predicted_runtime_s on queued jobs that have none.
  void Fill(std::span<JobRequest> queue) const;
  // How many (project, user, name) keys it has seen.
  size_t keys() const { return seen_.size(); }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;
  size_t history_;
  std::map<Key, std::deque<int64_t>> seen_;
};

}  // namespace fastgpu::sched
