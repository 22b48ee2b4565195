// The OpenAPI 3 document: paths come from the route table (so none is forgotten); the per-route
// details and schemas are written here. tests/server/openapi_test.cc checks that they agree.
#include <nlohmann/json.hpp>

#include "server/http.h"

namespace fastgpu::server {

using nlohmann::json;

namespace {

json Ref(const std::string& name) { return {{"$ref", "#/components/schemas/" + name}}; }

json JsonResponse(const std::string& desc, const json& schema) {
  return {{"description", desc}, {"content", {{"application/json", {{"schema", schema}}}}}};
}

json ErrorResponses() {
  json r;
  for (auto [code, desc] : std::vector<std::pair<std::string, std::string>>{
           {"400", "Bad input"}, {"401", "Missing or invalid token"}, {"404", "Not found"},
           {"409", "State does not allow it"}, {"413", "Body too large"}, {"422", "Can never be scheduled"},
           {"500", "Internal error"}}) {
    r[code] = JsonResponse(desc, Ref("Error"));
  }
  return r;
}

json IdParam() {
  return {{"name", "id"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}},
          {"description", "Job id, e.g. j-42"}};
}

json QueryParam(const std::string& name, const std::string& type, const std::string& desc) {
  return {{"name", name}, {"in", "query"}, {"required", false}, {"schema", {{"type", type}}}, {"description", desc}};
}

json Operation(const RouteInfo& r) {
  json op = {{"summary", r.summary}, {"responses", ErrorResponses()}};
  const std::string& p = r.path;
  if (p.find("{id}") != std::string::npos) op["parameters"] = json::array({IdParam()});
  if (r.method == "POST" && p == "/v1/jobs") {
    op["requestBody"] = {{"required", true}, {"content", {{"application/json", {{"schema", Ref("JobSpec")}}}}}};
    op["responses"]["201"] = JsonResponse("The queued job", Ref("Job"));
  } else if (p == "/v1/jobs") {
    op["parameters"] = json::array(
        {QueryParam("state", "string", "Comma-separated states, e.g. QUEUED,RUNNING"),
         QueryParam("project", "string", "Only this project's jobs"),
         QueryParam("limit", "integer", "Jobs per page, 1-1000 (default 100)"),
         QueryParam("user", "string", "Only jobs submitted by this user"),
         QueryParam("name", "string", "Only jobs with exactly this name"),
         QueryParam("since", "string", "Only jobs submitted at or after this RFC 3339 time"),
         QueryParam("tasks", "boolean", "false: leave out the tasks of job arrays (each array is one row)"),
         QueryParam("cursor", "string", "The next_cursor of the previous page (opaque); absent: the newest jobs")});
    op["responses"]["200"] = JsonResponse(
        "One page of jobs, newest first (filtered in the store; non-admins see only their projects' jobs)",
        {{"type", "object"},
         {"properties",
          {{"jobs", {{"type", "array"}, {"items", Ref("Job")}}},
           {"next_cursor", {{"type", "string"}, {"description", "Present when more jobs follow: pass it as cursor"}}}}}});
  } else if (p == "/v1/jobs/{id}" || p == "/v1/jobs/{id}/cancel") {
    op["responses"]["200"] = JsonResponse("The job", Ref("Job"));
  } else if (p == "/v1/jobs/{id}/migrate") {
    op["requestBody"] = {
        {"required", false},
        {"content",
         {{"application/json",
           {{"schema",
             {{"type", "object"},
              {"properties",
               {{"reason", {{"type", "string"}, {"description", "Why (one line, at most 500 characters); in the job's events"}}},
                {"force",
                 {{"type", "boolean"},
                  {"description", "Also a job that is not preemptible (no checkpoint signal: SIGTERM at once)"}}}}}}}}}}}};
    op["responses"]["200"] = JsonResponse(
        "The job, still RUNNING while it checkpoints and stops; it then becomes PREEMPTED and QUEUED, and its next "
        "attempt prefers other GPUs. 409: the job is not RUNNING, is already being stopped, or is not preemptible "
        "(without force)",
        Ref("Job"));
  } else if (p == "/v1/jobs/{id}/wait") {
    op["parameters"].push_back(QueryParam("timeout", "string", "How long to wait, e.g. 30s (max 300s)"));
    op["parameters"].push_back(QueryParam("for", "string", "'end' (default) or 'running'"));
    op["responses"]["200"] = JsonResponse("The job when it ended, or as it is at the timeout", Ref("Job"));
  } else if (p == "/v1/jobs/{id}/events") {
    op["responses"]["200"] = JsonResponse(
        "State changes in order",
        {{"type", "object"}, {"properties", {{"events", {{"type", "array"}, {"items", Ref("JobEvent")}}}}}});
  } else if (p == "/v1/jobs/{id}/logs") {
    op["parameters"].push_back(QueryParam("offset", "integer", "Byte offset to start from"));
    op["parameters"].push_back(QueryParam("follow", "boolean", "Stream until the job ends"));
    op["parameters"].push_back(
        QueryParam("rank", "integer", "A multi-node job: the member (node rank) whose output to read; default 0"));
    op["parameters"].push_back(QueryParam(
        "tail", "string", "Only the last N lines (N >= 0, at most 2^31; 'all' or absent: every line); with follow, "
                          "then what follows"));
    op["parameters"].push_back(QueryParam(
        "since", "string", "Only lines written at or after this time: RFC 3339 (2026-12-08T10:00:00Z) or a duration "
                           "back from the server's now (10m, 2h, 1d). A line's time is when the node saw its first "
                           "byte (within ~10 ms); lines of unknown time (written before times were recorded) are "
                           "kept unless the log last changed before it"));
    op["parameters"].push_back(QueryParam(
        "timestamps", "boolean", "Prefix each line with its time, RFC 3339 UTC with milliseconds and a space "
                                 "(2026-12-08T10:00:00.123Z ...), or '- ' where no time is known"));
    op["responses"]["200"] = {
        {"description",
         "Combined stdout and stderr, streamed (chunked): without follow up to the end of the log as it is, with "
         "follow until the job has ended. The reply starts at the log's byte offset in the header "
         "X-FastGPU-Log-Offset (the latest of offset and the starts that tail and since select); to resume a cut "
         "stream ask again with offset = that + log bytes received (without the time prefixes) and the same since "
         "and timestamps. Header X-FastGPU-Log-Times: none when timestamps or since was asked for and the log has "
         "no recorded times. 400: a bad tail, since, timestamps, follow, offset or rank"},
        {"headers",
         {{"X-FastGPU-Log-Offset", {{"schema", {{"type", "integer"}}}, {"description", "Byte offset of the reply's first byte"}}},
          {"X-FastGPU-Log-Times", {{"schema", {{"type", "string"}}}, {"description", "'none': no times are known"}}}}},
        {"content", {{"text/plain", {{"schema", {{"type", "string"}}}}}}}};
  } else if (p.rfind("/v1/jobs/{id}/exec", 0) == 0) {
    // Exec sessions (docs/exec.md).
    if (p.find("{session}") != std::string::npos)
      op["parameters"].push_back({{"name", "session"}, {"in", "path"}, {"required", true},
                                  {"schema", {{"type", "string"}}}, {"description", "Exec session id, e.g. x-0123abcd…"}});
    if (p == "/v1/jobs/{id}/exec") {
      op["requestBody"] = {
          {"required", true},
          {"content",
           {{"application/json",
             {{"schema",
               {{"type", "object"},
                {"required", {"command"}},
                {"properties",
                 {{"command", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "argv"}}},
                  {"tty", {{"type", "boolean"}, {"description", "A pseudo-terminal on the node"}}},
                  {"stdin", {{"type", "boolean"}, {"description", "Input will be sent (else /dev/null)"}}},
                  {"rank", {{"type", "integer"}, {"description", "A multi-node job: the member's node (default 0)"}}},
                  {"rows", {{"type", "integer"}}},
                  {"cols", {{"type", "integer"}}},
                  {"term", {{"type", "string"}, {"description", "TERM for the terminal"}}}}}}}}}}}};
      op["responses"]["201"] = JsonResponse(
          "The session (use its id with the routes below, as the same caller). 409: the job is not RUNNING (its "
          "state is named); 403: viewers; 429: too many sessions; 503: the job's node is not connected",
          {{"type", "object"},
           {"properties",
            {{"session", {{"type", "string"}}},
             {"job", {{"type", "string"}}},
             {"node", {{"type", "string"}}},
             {"rank", {{"type", "integer"}}},
             {"tty", {{"type", "boolean"}}},
             {"stdin", {{"type", "boolean"}}}}}});
    } else if (p.find("/output") != std::string::npos) {
      op["parameters"].push_back(QueryParam("stdout_offset", "integer", "Bytes of stdout already received"));
      op["parameters"].push_back(QueryParam("stderr_offset", "integer", "Bytes of stderr already received"));
      op["parameters"].push_back(QueryParam("timeout_ms", "integer", "Longest wait for output (default 10000, max 30000)"));
      op["responses"]["200"] = JsonResponse(
          "Output from the offsets (base64; *_offset is where each piece starts), at once when there is some; and "
          "once all was read, ended with exit_code or signal (error: why it ended otherwise)",
          {{"type", "object"},
           {"properties",
            {{"stdout", {{"type", "string"}, {"format", "byte"}}},
             {"stdout_offset", {{"type", "integer"}}},
             {"stderr", {{"type", "string"}, {"format", "byte"}}},
             {"stderr_offset", {{"type", "integer"}}},
             {"ended", {{"type", "boolean"}}},
             {"exit_code", {{"type", "integer"}}},
             {"signal", {{"type", "integer"}}},
             {"error", {{"type", "string"}}}}}});
    } else if (p.find("/input") != std::string::npos) {
      op["requestBody"] = {
          {"required", true},
          {"content",
           {{"application/json",
             {{"schema",
               {{"type", "object"},
                {"properties",
                 {{"offset", {{"type", "integer"}, {"description", "Input bytes sent before this piece"}}},
                  {"data", {{"type", "string"}, {"format", "byte"}}},
                  {"eof", {{"type", "boolean"}}},
                  {"rows", {{"type", "integer"}}},
                  {"cols", {{"type", "integer"}}}}}}}}}}}};
      op["responses"]["200"] = JsonResponse(
          "How much input the server has (send the rest from there: it holds at most 64 KiB the node has not taken)",
          {{"type", "object"}, {"properties", {{"offset", {{"type", "integer"}}}}}});
    } else {
      op["responses"]["200"] = JsonResponse("The session is closed; its command is killed",
                                            {{"type", "object"}, {"properties", {{"closed", {{"type", "boolean"}}}}}});
    }
  } else if (p == "/v1/jobs/{id}/files") {
    op["parameters"].push_back(QueryParam("path", "string", "A file or directory under the job's work dir (default: all of it)"));
    op["responses"]["200"] = {
        {"description",
         "A directory: its files, recursively (symlinks listed, never followed; at most 10,000, then truncated). A "
         "regular file: its bytes (chunked). A job on a remote node is read by its agent, asked by the server (256 KiB "
         "per request to the node). 400: a path with '..' or through a symlink; 409: the job ran in a --workdir of "
         "its own or has not started on a node; 503: the job's node is not connected; 504: its node did not answer "
         "within 15 s"},
        {"content",
         {{"application/json",
           {{"schema",
             {{"type", "object"},
              {"properties",
               {{"job", {{"type", "string"}}},
                {"path", {{"type", "string"}}},
                {"truncated", {{"type", "boolean"}}},
                {"files",
                 {{"type", "array"},
                  {"items",
                   {{"type", "object"},
                    {"properties",
                     {{"path", {{"type", "string"}}},
                      {"type", {{"type", "string"}, {"enum", {"file", "dir", "symlink", "other"}}}},
                      {"size", {{"type", "integer"}}},
                      {"mode", {{"type", "integer"}}},
                      {"modified_at_ms", {{"type", "integer"}}}}}}}}}}}}}}},
          {"application/octet-stream", {{"schema", {{"type", "string"}, {"format", "binary"}}}}}}}};
  } else if (p == "/v1/projects/{project}/blobs/{hash}") {
    const json blob = {{"type", "object"},
                       {"properties",
                        {{"sha256", {{"type", "string"}}},
                         {"project", {{"type", "string"}}},
                         {"present", {{"type", "boolean"}}},
                         {"size", {{"type", "integer"}}},
                         {"max_bytes", {{"type", "integer"}, {"description", "The largest archive this server takes"}}}}}};
    if (r.method == "PUT") {
      op["requestBody"] = {{"required", true},
                           {"content", {{"application/octet-stream", {{"schema", {{"type", "string"}, {"format", "binary"}}}}}}}};
      op["responses"]["201"] = JsonResponse(
          "Stored (or already there). 400: the body's SHA-256 is not {hash}, or it is larger than max_bytes; 413: "
          "larger than the server's upload limit",
          blob);
    } else {
      op["responses"]["200"] = JsonResponse("Whether the project has the archive (never another project's)", blob);
    }
  } else if (p == "/v1/gpus") {
    op["responses"]["200"] = JsonResponse(
        "GPUs", {{"type", "object"}, {"properties", {{"gpus", {{"type", "array"}, {"items", Ref("Gpu")}}}}}});
  } else if (p == "/v1/nodes") {
    op["responses"]["200"] = JsonResponse(
        "Nodes", {{"type", "object"}, {"properties", {{"nodes", {{"type", "array"}, {"items", Ref("Node")}}}}}});
  } else if (p == "/v1/reservations" && r.method == "POST") {
    op["requestBody"] = {{"required", true},
                         {"content", {{"application/json", {{"schema", Ref("ReservationRequest")}}}}}};
    op["responses"]["201"] = JsonResponse("The reservation", Ref("Reservation"));
  } else if (p == "/v1/reservations") {
    op["parameters"] = json::array({QueryParam("project", "string", "Only this project's reservations")});
    op["responses"]["200"] = JsonResponse(
        "Reservations in start order (non-admins see only their projects')",
        {{"type", "object"}, {"properties", {{"reservations", {{"type", "array"}, {"items", Ref("Reservation")}}}}}});
  } else if (p == "/v1/reservations/{id}") {
    op["responses"]["200"] = JsonResponse("Deleted", {{"type", "object"}, {"properties", {{"deleted", {{"type", "string"}}}}}});
  } else if (p == "/healthz") {
    op["responses"] = {{"200", JsonResponse("Server is up", {{"type", "object"}})}};
  } else if (p == "/v1/openapi.json") {
    op["responses"] = {{"200", JsonResponse("OpenAPI 3 document", {{"type", "object"}})}};
  } else if (p == "/metrics") {
    op["description"] =
        "Prometheus text exposition format 0.0.4 (docs/monitoring.md). Per GPU of every node, the readings of its "
        "last heartbeat under DCGM-exporter names (DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED, DCGM_FI_DEV_GPU_TEMP, "
        "DCGM_FI_DEV_POWER_USAGE, DCGM_FI_DEV_XID_ERRORS ...) labelled gpu, UUID, device, modelName, Hostname, and "
        "job_id and project of the job on it, simulated=\"true\" for simulated GPUs; jobs by state and project, "
        "pending GPUs by type, queueing and scheduling histograms, API requests by route template and status, store "
        "commits, spend and budgets per project (micro-USD). The bearer token is the metrics token "
        "(--metrics-token-file), which is accepted here only, or an admin's API token.";
    op["responses"]["200"] = {
        {"description", "The metrics"},
        {"content", {{"text/plain; version=0.0.4", {{"schema", {{"type", "string"}}}}}}}};
    op["responses"]["403"] = JsonResponse("An API token of a user who is not an admin", Ref("Error"));
  }
  // Path parameters of the account and billing routes, and a generic success response.
  for (const char* name : {"project", "name", "user", "hash"}) {
    if (p.find(std::string("{") + name + "}") == std::string::npos) continue;
    if (!op.contains("parameters")) op["parameters"] = json::array();
    op["parameters"].push_back({{"name", name}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}});
  }
  if (p.find("{id}") != std::string::npos && p.rfind("/v1/jobs", 0) != 0) op["parameters"][0]["description"] = "Object id";
  bool has_success = false;
  for (const char* code : {"200", "201", "204"}) has_success |= op["responses"].contains(code);
  if (!has_success) {
    int code = r.method == "DELETE" ? 204 : r.method == "POST" && r.path != "/oauth/token" ? 201 : 200;
    op["responses"][std::to_string(code)] =
        code == 204 ? json{{"description", "Done"}} : JsonResponse("See docs/security.md and docs/billing.md", {{"type", "object"}});
  }
  op["x-fastgpu-authorization"] = std::string(auth::ActionName(r.action));
  if (r.action == auth::Action::kPublic) op["security"] = json::array();
  return op;
}

json Schemas() {
  json str = {{"type", "string"}}, integer = {{"type", "integer"}}, boolean = {{"type", "boolean"}};
  json nullable_int = {{"type", "integer"}, {"nullable", true}};
  json strs = {{"type", "array"}, {"items", str}};
  json states = {{"type", "string"},
                 {"enum", {"QUEUED", "SCHEDULED", "STARTING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED",
                           "PREEMPTED", "LOST"}}};
  json processes = {
      {"type", "string"},
      {"enum", {"per-node", "per-gpu"}},
      {"default", "per-node"},
      {"description",
       "Processes per node: per-node starts the command once on each node (for torchrun, which starts one "
       "process per GPU itself); per-gpu starts it once per GPU of each node, with RANK, LOCAL_RANK, WORLD_SIZE "
       "and LOCAL_WORLD_SIZE counted per process (every process sees all of its node's GPUs; whole GPUs only)"}};
  return {
      {"Error",
       {{"type", "object"},
        {"properties",
         {{"error", {{"type", "object"}, {"properties", {{"code", str}, {"message", str}}}}}}}}},
      {"JobSpec",
       {{"type", "object"},
        {"additionalProperties", false},
        {"required", {"command"}},
        {"properties",
         {{"name", str},
          {"command", {{"oneOf", {strs, str}}, {"description", "argv array, or a shell string run with sh -c"}}},
          {"gpus", {{"oneOf", {{{"type", "number"}}, str}}, {"description", "GPUs: 2, or a fraction such as 0.25"}}},
          {"gpu_type", str},
          {"memory_mib", integer},
          {"runtime", {{"oneOf", {integer, str}}, {"description", "Wall-clock limit: seconds or 24h, 30m"}}},
          {"runtime_limit_s", integer},
          {"priority", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100}}},
          {"env", {{"type", "object"}, {"additionalProperties", str}}},
          {"workdir", str},
          {"image",
           {{"type", "string"},
            {"description", "OCI image to run the command in, with podman on the node (docs/containers.md); it must "
                            "be on the node already. Empty: a plain process"}}},
          {"sync",
           {{"type", "string"},
            {"description", "SHA-256 of a code archive uploaded to the job's project (PUT /v1/projects/{project}/blobs/{hash}): "
                            "the job starts in a copy of it (docs/sync.md); not with workdir"}}},
          {"project", str},
          {"max_retries", {{"type", "integer"}, {"minimum", 0}, {"maximum", 100}}},
          {"secrets", {{"type", "array"}, {"items", str}, {"description", "Project secrets to inject as env"}}},
          {"processes", processes},
          {"after", {{"type", "array"}, {"items", str}, {"description", "Start once these jobs have ended (any state)"}}},
          {"after_ok",
           {{"type", "array"},
            {"items", str},
            {"description", "Start once these jobs have SUCCEEDED; cancelled with the reason if one does not"}}},
          {"preemptible",
           {{"type", "boolean"},
            {"description", "May be stopped for a more urgent job and requeued (checkpoint signal first)"}}},
          {"checkpoint_signal", {{"type", "string"}, {"description", "SIGUSR1 (default), SIGUSR2, SIGINT, SIGTERM, ..."}}},
          {"checkpoint_grace", {{"oneOf", {integer, str}}, {"description", "Seconds or 90s, 2m: signal to SIGTERM (default 60)"}}},
          {"checkpoint_grace_s", integer},
          {"begin_at", {{"oneOf", {integer, str}}, {"description", "Not started before: RFC 3339 time or Unix ms"}}},
          {"deadline_at",
           {{"oneOf", {integer, str}},
            {"description", "Must finish by: RFC 3339 or Unix ms; refused when the runtime limit cannot end by then"}}},
          {"array",
           {{"type", "string"},
            {"description", "A job array: 0-99, 1,3,5-7, 0-99:2, optionally %N (at most N tasks at once); one task "
                            "per index, at most 10000"}}}}}}},
      {"Job",
       {{"type", "object"},
        {"properties",
         {{"id", str}, {"name", str}, {"state", states}, {"gpus", str}, {"gpus_milli", integer},
          {"gpu_type", str}, {"memory_mib", integer}, {"assigned_gpus", strs},
          {"assigned_gpu_indices", {{"type", "array"}, {"items", integer}}}, {"node", str},
          {"members",
           {{"type", "array"},
            {"description",
             "A multi-node job's nodes, one per node rank (empty for a job on one node); assigned_gpus is then "
             "the union of their GPUs, node and assigned_gpu_indices rank 0's"},
            {"items",
             {{"type", "object"},
              {"properties",
               {{"rank", integer}, {"node", str}, {"gpu_uuids", strs},
                {"gpu_indices", {{"type", "array"}, {"items", integer}}}, {"started", {{"type", "boolean"}}},
                {"ended", {{"type", "boolean"}}}, {"pid", integer}, {"exit_code", integer}, {"signal", integer},
                {"reason", str}}}}}}},
          {"priority", integer},
          {"command", strs}, {"env", {{"type", "object"}}}, {"workdir", str}, {"image", str}, {"project", str}, {"user", str},
          {"runtime_limit_s", integer}, {"max_retries", integer}, {"processes", processes}, {"after", strs}, {"after_ok", strs}, {"created_at", str},
          {"started_at", {{"type", "string"}, {"nullable", true}}},
          {"finished_at", {{"type", "string"}, {"nullable", true}}}, {"created_at_ms", integer},
          {"started_at_ms", integer}, {"finished_at_ms", integer}, {"exit_code", nullable_int},
          {"signal", nullable_int}, {"reason", str}, {"attempt", integer}, {"pid", integer},
          {"preemptible", {{"type", "boolean"}}}, {"checkpoint_signal", str}, {"checkpoint_grace_s", integer},
          {"begin_at", {{"type", "string"}, {"nullable", true}}}, {"deadline_at", {{"type", "string"}, {"nullable", true}}},
          {"begin_at_ms", integer}, {"deadline_at_ms", integer},
          {"attained_gpu_ms", {{"type", "integer"}, {"description", "GPU-ms received by earlier (preempted) attempts"}}},
          {"expected_start_at", {{"type", "string"}, {"nullable", true}, {"description", "Queued jobs: estimated start"}}},
          {"expected_start_at_ms", integer},
          {"expected_start_note", {{"type", "string"}, {"description", "Queued jobs without an expected start: why it is unknown"}}},
          {"deadline_warning", {{"type", "string"}, {"description", "Set when the deadline has become unlikely"}}},
          {"array", {{"type", "string"}, {"description", "A job array's spec (the array job); empty otherwise"}}},
          {"array_parent", {{"type", "string"}, {"description", "A task of a job array: the array job's id"}}},
          {"array_index", {{"type", "integer"}, {"description", "A task of a job array: its index (-1 otherwise)"}}},
          {"gpu_usage",
           {{"type", "array"},
            {"description", "Per GPU of the current (or last) run, from its node's heartbeats (docs/monitoring.md)"},
            {"items",
             {{"type", "object"},
              {"properties",
               {{"uuid", str}, {"node", str}, {"samples", integer}, {"avg_util_pct", integer}, {"peak_util_pct", integer},
                {"peak_memory_mib", integer}, {"energy_j", integer}, {"energy_mj", integer}}}}}}},
          {"array_tasks",
           {{"type", "array"},
            {"description", "The array job (GET /v1/jobs/{id}): every task in index order"},
            {"items",
             {{"type", "object"},
              {"properties",
               {{"index", integer}, {"id", str}, {"state", states}, {"exit_code", integer}, {"reason", str}}}}}}}}}}},
      {"JobEvent",
       {{"type", "object"},
        {"properties",
         {{"seq", integer}, {"job_id", str}, {"at", str}, {"at_ms", integer}, {"from", str}, {"to", str},
          {"reason", str}, {"actor", str}}}}},
      {"Gpu",
       {{"type", "object"},
        {"properties",
         {{"uuid", str}, {"index", integer}, {"name", str}, {"type", str}, {"node", str}, {"pci_bus_id", str},
          {"memory_total_mib", integer}, {"memory_used_mib", integer}, {"utilization_pct", integer},
          {"temperature_c", integer}, {"power_mw", integer}, {"simulated", boolean}, {"healthy", boolean},
          {"allocated_milli", integer}, {"jobs", strs},
          {"memory_util_pct", integer}, {"sm_clock_mhz", integer}, {"power_limit_mw", integer},
          {"energy_mj", {{"type", "integer"}, {"description", "Energy since the driver loaded (0 = not reported)"}}},
          {"ecc_corrected_volatile", integer}, {"ecc_uncorrected_volatile", integer},
          {"ecc_corrected_aggregate", integer}, {"ecc_uncorrected_aggregate", integer},
          {"remapped_rows_correctable", integer}, {"remapped_rows_uncorrectable", integer},
          {"remap_pending", boolean}, {"remap_failure", boolean},
          {"throttle_reasons", {{"type", "integer"}, {"description", "NVML clocks throttle reasons bitmask"}}},
          {"last_xid", {{"type", "integer"}, {"description", "The most recent XID error (0 = none)"}}},
          {"xid_count", integer}}}}},
      {"ReservationRequest",
       {{"type", "object"},
        {"additionalProperties", false},
        {"required", {"project", "gpus", "start_at", "end_at"}},
        {"properties",
         {{"project", str},
          {"gpus", {{"type", "integer"}, {"minimum", 1}, {"description", "Whole GPUs, at most the cluster's of the type"}}},
          {"gpu_type", {{"type", "string"}, {"description", "Empty or absent: any type"}}},
          {"start_at", {{"oneOf", {str, integer}}, {"description", "RFC 3339 time or Unix milliseconds"}}},
          {"end_at", {{"oneOf", {str, integer}}, {"description", "After start_at, in the future"}}},
          {"name", str}}}}},
      {"Reservation",
       {{"type", "object"},
        {"properties",
         {{"id", str}, {"name", str}, {"project", str}, {"gpus", integer}, {"gpu_type", str}, {"start_at", str},
          {"start_at_ms", integer}, {"end_at", str}, {"end_at_ms", integer}, {"created_at", str},
          {"created_at_ms", integer}, {"created_by", str},
          {"state", {{"type", "string"}, {"enum", {"upcoming", "active", "ended"}}}}}}}},
      {"Node",
       {{"type", "object"},
        {"properties",
         {{"name", str}, {"address", str}, {"labels", {{"type", "object"}}}, {"healthy", boolean},
          {"draining", boolean}, {"simulated", boolean}, {"last_heartbeat", str}, {"last_heartbeat_ms", integer},
          {"gpu_count", integer}}}}},
  };
}

}  // namespace

std::string OpenApiJson() {
  json paths = json::object();
  for (const auto& r : Routes()) {
    std::string m = r.method;
    for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    paths[r.path][m] = Operation(r);
  }
  for (const auto& r : AgentRoutes()) {
    std::string m = r.method;
    for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    json op = Operation(r);
    op["description"] =
        "Agent protocol (docs/architecture.md): 'Authorization: Bearer <node credential fgn_…>' for the "
        "credential's own node only, and header X-FastGPU-Agent-Protocol on every call. API tokens are refused.";
    paths[r.path][m] = std::move(op);
  }
  json doc = {{"openapi", "3.0.3"},
              {"info",
               {{"title", "FastGPU API"},
                {"version", "0.1.0"},
                {"description", "Submit and manage GPU jobs. Authenticate with 'Authorization: Bearer <token>'."}}},
              {"paths", paths},
              {"components",
               {{"schemas", Schemas()},
                {"securitySchemes", {{"bearer", {{"type", "http"}, {"scheme", "bearer"}}}}}}},
              {"security", json::array({{{"bearer", json::array()}}})}};
  return doc.dump(2);
}

}  // namespace fastgpu::server
