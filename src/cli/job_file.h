// Building a JobSpec from `fastgpu job submit` flags and an optional job file (YAML). Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/types.h"
#include "cli/config.h"
#include "common/quantity.h"
#include "common/status.h"

namespace fastgpu::cli {

// Flags of `job submit` as typed by the user; unset optionals were not given.
struct SubmitFlags {
  std::optional<std::string> gpus;         // --gpus "0.25" or "A100-80GB:2"
  std::optional<std::string> gpu_type;     // --gpu-type
  std::optional<std::string> memory;       // --memory "16GiB" or MiB
  std::optional<std::string> runtime;      // --runtime "24h"
  std::optional<std::string> priority;     // --priority 0..100
  std::optional<std::string> name;         // --name
  std::optional<std::string> workdir;      // --workdir (absolute, on the node)
  std::optional<std::string> sync;         // --sync DIR: upload DIR, the job starts in a copy (docs/sync.md)
  std::optional<std::string> image;        // --image: OCI image to run the command in (podman on the node)
  std::optional<std::string> array;        // --array 0-99%8: a job array (one task per index, at most %N at once)
  bool here = false;                       // --here: the submit directory (server on this machine only)
  std::optional<std::string> project;      // --project
  std::optional<std::string> max_retries;  // --max-retries
  std::vector<std::string> env;            // --env K=V (repeatable)
  std::vector<std::string> secrets;        // --secret NAME (repeatable): project secrets as env vars
  bool dry_run = false;                    // --dry-run: price and estimate only
  bool process_per_gpu = false;            // --process-per-gpu: processes "per-gpu" (overrides the file)
  std::optional<std::string> file;         // -f job.yaml
  std::vector<std::string> after;          // --after ID[,ID]: start once these have ended (any state)
  std::vector<std::string> after_ok;       // --after-ok ID[,ID]: start once these SUCCEEDED; cancelled otherwise
  bool preemptible = false;                // --preemptible
  std::optional<std::string> checkpoint_signal;  // --checkpoint-signal SIGUSR1
  std::optional<std::string> checkpoint_grace;   // --checkpoint-grace 60s
  std::optional<std::string> begin;        // --begin TIME (RFC 3339, or now+DURATION / +DURATION)
  std::optional<std::string> deadline;     // --deadline TIME
  UnixMillis now = 0;                      // the time relative --begin/--deadline count from (0: refused)
  std::vector<std::string> command;        // after --
};

// A point in time as users write it: "2026-12-08T10:00:00Z", "2026-12-08T10:00+01:00", "2026-12-08", or relative
// to `now` as "now+2h", "+30m" (relative forms need now > 0). `what` names the flag or field in errors.
Result<UnixMillis> ParseWhen(std::string_view text, UnixMillis now, std::string_view what);

// "K=V" -> {K, V}. The value may be empty or contain '='; the key must be a valid variable name.
Result<std::pair<std::string, std::string>> ParseEnvAssignment(std::string_view text);

// GPUs as asked for in one piece of text: "2", "0.25", "A100-80GB:2" (dstack/SkyPilot style), or a type alone.
struct GpuRequest {
  std::string type;                 // empty: not named
  std::optional<MilliGpu> milli;    // unset: not named (a type alone)
};

// Parses a job file. Fields: name, command (list or shell string), gpus (COUNT or TYPE:COUNT), gpu_type,
// resources ({gpu: TYPE:COUNT | COUNT | TYPE}), memory, runtime, priority, env (map), workdir, project,
// max_retries, secrets (list of names), processes (per-node | per-gpu), after, after_ok, preemptible,
// checkpoint_signal, checkpoint_grace, begin, deadline (absolute times only).
// Every error reads "FILE:LINE:COLUMN: what is wrong" (FILE is `file_name`): YAML syntax errors in plain
// words, unknown fields, fields given twice, values that do not parse, GPU type or count stated twice
// differently (gpus, gpu_type, resources.gpu).
// Fields missing from the file keep their values in `base`.
Result<api::JobSpec> ParseJobYaml(std::string_view text, api::JobSpec base = {},
                                  std::string_view file_name = "job file");

// Job file (if any) first, then flags on top; validates the result with api::ValidateJobSpec.
// Errors name the flag or file field at fault.
Result<api::JobSpec> BuildJobSpec(const SubmitFlags& flags, const ReadFileFn& read_file);

// Request body of POST /v1/jobs for a spec.
std::string JobSpecRequestBody(const api::JobSpec& spec);

}  // namespace fastgpu::cli
