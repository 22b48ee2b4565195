// The agent <-> server protocol on the wire: HTTP+JSON under /v1/agent/, with a protocol version that
// both sides send on every call (header X-FastGPU-Agent-Protocol and the join body). JSON codecs for the
// ControlPlane types live here so that the server (src/server/http_agent.cc) and the agent's HTTP client
// (http_control_plane.cc) share one definition.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "agent/control_plane.h"
#include "common/status.h"

namespace fastgpu::agent {

// Bumped on any incompatible change of the agent routes or their bodies. Server and agent refuse to talk
// across versions, naming both. 2: multi-node jobs (start commands carry rank, master_addr, master_port and
// the job's members; reports carry the member's rank). 3: a job's "processes" ("per-gpu": the agent starts one
// process per GPU; a version 2 agent would start one per node), and master_addr/master_port in the start of such
// a job on one node. 4: preemption with checkpoints (a stop's checkpoint_signal and checkpoint_grace_ms: a version 3
// agent would send SIGTERM at once; jobs carry preemptible, checkpoint_signal and checkpoint_grace_s). 5: exec
// sessions (`fastgpu job exec`: a command of kind "exec" and the routes /v1/agent/exec/output and
// /v1/agent/exec/input, which a version 4 agent does not know). 6: job files of remote nodes (`fastgpu job files`:
// a command of kind "files" and the route /v1/agent/files, which a version 5 agent does not know).
inline constexpr int kProtocolVersion = 6;
// The most bytes of a file one files command asks for (and one answer carries, base64 in JSON: ~350 KB, under the
// server's 1 MiB body limit).
inline constexpr int64_t kMaxFilesChunk = 256 << 10;
// The largest files answer an agent sends (JSON): a longer listing is cut there and marked truncated.
inline constexpr int64_t kMaxFilesAnswerBytes = 4 << 20;
inline constexpr const char* kProtocolHeader = "X-FastGPU-Agent-Protocol";
// Node credentials and join tokens, told apart from API tokens (fgp_) by their prefix.
inline constexpr const char* kNodeCredentialPrefix = "fgn_";
inline constexpr const char* kJoinTokenPrefix = "fgj_";

// The message for a version mismatch, seen from `who` ("server" or "agent").
std::string VersionMismatch(int server_version, int agent_version);

nlohmann::json ToJson(const JobReport& r);
nlohmann::json ToJson(const NodeRegistration& r);
nlohmann::json ToJson(const NodeHeartbeat& h);
// `with_secrets`: include secret_env values (only ever sent to the node that runs the job, over TLS).
nlohmann::json ToJson(const JobCommand& c);

// Exec sessions: bytes travel base64-encoded inside JSON.
nlohmann::json ToJson(const ExecOutput& o);
nlohmann::json ToJson(const ExecOutputAck& a);
nlohmann::json ToJson(const ExecInput& i);

// Job files (`fastgpu job files` of a job on a remote node): a file's bytes travel base64-encoded inside JSON.
nlohmann::json ToJson(const FilesAnswer& a);
Result<FilesAnswer> FilesAnswerFromJson(const nlohmann::json& j);

// Strict decoders (unknown fields are errors; messages name the field).
Result<ExecOutput> ExecOutputFromJson(const nlohmann::json& j);
Result<ExecOutputAck> ExecOutputAckFromJson(const nlohmann::json& j);
Result<ExecInput> ExecInputFromJson(const nlohmann::json& j);
Result<JobReport> JobReportFromJson(const nlohmann::json& j);
Result<NodeRegistration> NodeRegistrationFromJson(const nlohmann::json& j);
Result<NodeHeartbeat> NodeHeartbeatFromJson(const nlohmann::json& j);
Result<JobCommand> JobCommandFromJson(const nlohmann::json& j);

// A node name usable in paths, file names and tokens: 1-63 of [A-Za-z0-9._-], not starting with '.' or '-'.
Status ValidateNodeName(std::string_view name);

}  // namespace fastgpu::agent
