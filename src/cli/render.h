// Human-readable views of API objects. Pure: time comes in as `now`.
#pragma once

#include <string>
#include <vector>

#include "api/types.h"
#include "common/clock.h"

namespace fastgpu::cli {

// ID, NAME, STATE, GPUS, TYPE, NODE, AGE, DURATION, REASON (reason truncated).
std::string RenderJobList(const std::vector<api::Job>& jobs, UnixMillis now, bool color);
// "Key:  value" lines for one job.
std::string RenderJobDetail(const api::Job& job, UnixMillis now, bool color);
// SEQ, TIME, FROM, TO, ACTOR, REASON.
std::string RenderEvents(const std::vector<api::JobEvent>& events, bool color);
// NODE, INDEX, UUID, TYPE ("A100-80GB (simulated)" for simulated GPUs), HEALTH, MEMORY, UTIL, TEMP,
// POWER, ALLOC, JOBS.
std::string RenderGpuList(const std::vector<api::Gpu>& gpus, bool color);
// `gpu top`: one row per GPU with its live readings and the job on it.
std::string RenderGpuTop(const std::vector<api::Gpu>& gpus, bool color);
// NAME, STATUS, GPUS, KIND (simulated|physical), ADDRESS, HEARTBEAT, LABELS.
std::string RenderNodeList(const std::vector<api::Node>& nodes, UnixMillis now, bool color);
// One line describing how a job ended: "j-12 FAILED (exit code 3): out of memory".
std::string JobOutcomeLine(const api::Job& job);

}  // namespace fastgpu::cli
