// Building a JobSpec from `fastgpu job submit` flags and an optional job file (YAML). Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/types.h"
#include "cli/config.h"
#include "common/status.h"

namespace fastgpu::cli {

// Flags of `job submit` as typed by the user; unset optionals were not given.
struct SubmitFlags {
  std::optional<std::string> gpus;         // --gpus "0.25"
  std::optional<std::string> gpu_type;     // --gpu-type
  std::optional<std::string> memory;       // --memory "16GiB" or MiB
  std::optional<std::string> runtime;      // --runtime "24h"
  std::optional<std::string> priority;     // --priority 0..100
  std::optional<std::string> name;         // --name
  std::optional<std::string> workdir;      // --workdir (absolute, on the node)
  bool here = false;                       // --here: the submit directory (server on this machine only)
  std::optional<std::string> project;      // --project
  std::optional<std::string> max_retries;  // --max-retries
  std::vector<std::string> env;            // --env K=V (repeatable)
  std::vector<std::string> secrets;        // --secret NAME (repeatable): project secrets as env vars
  bool dry_run = false;                    // --dry-run: price and estimate only
  bool process_per_gpu = false;            // --process-per-gpu: processes "per-gpu" (overrides the file)
  std::optional<std::string> file;         // -f job.yaml
  std::vector<std::string> command;        // after --
};

// "K=V" -> {K, V}. The value may be empty or contain '='; the key must be a valid variable name.
Result<std::pair<std::string, std::string>> ParseEnvAssignment(std::string_view text);

// Parses a job file. Fields: name, command (list or shell string), gpus, gpu_type, memory, runtime,
// priority, env (map), workdir, project, max_retries, secrets (list of names), processes (per-node | per-gpu).
// Unknown keys are errors naming the key.
// Fields missing from the file keep their values in `base`.
Result<api::JobSpec> ParseJobYaml(std::string_view text, api::JobSpec base = {});

// Job file (if any) first, then flags on top; validates the result with api::ValidateJobSpec.
// Errors name the flag or file field at fault.
Result<api::JobSpec> BuildJobSpec(const SubmitFlags& flags, const ReadFileFn& read_file);

// Request body of POST /v1/jobs for a spec.
std::string JobSpecRequestBody(const api::JobSpec& spec);

}  // namespace fastgpu::cli
