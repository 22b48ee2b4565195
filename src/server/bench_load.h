// Load cases of `fastgpu bench api` (see bench_load.cc).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "common/clock.h"
#include "common/status.h"
#include "server/embedded.h"
#include "server/up.h"

namespace fastgpu::server {

// Runs the load cases `o` asks for against `up` and adds their figures to `out`.
Status RunLoadCases(Embedded& up, const ApiBenchOptions& o, const Clock& clock, nlohmann::json& out);
void PrintLoadCases(const nlohmann::json& out);

}  // namespace fastgpu::server
