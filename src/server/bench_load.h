// Load cases of `fastgpu bench api` (see bench_load.cc).
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "server/embedded.h"
#include "server/up.h"

namespace fastgpu::server {

// The p-quantile (0..1) of `v`, nearest rank; 0 for none.
double Percentile(std::vector<double> v, double p);

// Runs the load cases `o` asks for against `up` and adds their figures to `out`.
Status RunLoadCases(Embedded& up, const ApiBenchOptions& o, const Clock& clock, nlohmann::json& out);
void PrintLoadCases(const nlohmann::json& out);

}  // namespace fastgpu::server
