// Exec sessions (`fastgpu job exec`, `fastgpu job attach`; docs/exec.md): a command run inside a running job on its
// node, with its output and input relayed through the server. Agents never listen on a port, so the server holds
// each session's buffers: the agent pushes output (PushOutput) and long-polls input (TakeInput / WaitInput); the
// client long-polls output (ReadOutput) and posts input (WriteInput). One code path for the in-process agent of
// `fastgpu up` (through Service, a ControlPlane) and remote agents (through the /v1/agent/exec routes).
//
// Memory is bounded: each stream keeps at most `output_buffer_bytes` the client has not read (the agent keeps the
// rest and stops reading from the command, so a command that writes faster than the client reads is slowed down),
// input at most `input_buffer_bytes` the agent has not taken; sessions are limited per job, per user and in all.
// A session ends when the command's exit has been pushed, or when a side goes silent (timeouts below): a client
// that stops polling closes it (the agent then kills the command), an agent that stops polling ends it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/control_plane.h"
#include "common/clock.h"
#include "common/status.h"

namespace fastgpu::server {

struct ExecLimits {
  size_t per_job = 8;                       // live sessions of one job
  size_t per_user = 16;                     // live sessions opened by one user (actor)
  size_t total = 256;                       // live sessions on this server
  int64_t output_buffer_bytes = 256 << 10;  // per stream, pushed by the agent and not yet read by the client
  int64_t input_buffer_bytes = 64 << 10;    // posted by the client and not yet taken by the agent
  int64_t read_chunk_bytes = 256 << 10;     // per stream in one answer to the client
  int64_t start_timeout_ms = 30'000;        // the node must take the session up by then
  int64_t agent_silence_ms = 45'000;        // an agent polls a session's input at least every 10 s
  int64_t client_silence_ms = 60'000;       // a client polls a session's output at least every 10 s
  int64_t linger_ms = 30'000;               // an ended session is kept this long for its client to read the end
};

struct ExecOpenRequest {
  std::string job_id;
  int attempt = 0;
  std::string node;  // where the command runs (the job's node, or its member's for rank > 0)
  int rank = 0;
  std::string actor;  // who opened it: only they may use it ("user:alice")
  std::vector<std::string> argv;
  bool tty = false;
  bool stdin_open = false;
  int rows = 0;
  int cols = 0;
};

struct ExecSessionInfo {
  std::string id;
  std::string job_id;
  std::string node;
  std::string actor;
  int rank = 0;
  bool tty = false;
  bool stdin_open = false;
};

// What the client reads: each stream's bytes from the offset it gave (or from the oldest byte kept, which is the
// same unless it asked for bytes it had already acknowledged), and the end once all output has been read.
struct ExecOutputView {
  int64_t stdout_offset = 0;
  std::string stdout_data;
  int64_t stderr_offset = 0;
  std::string stderr_data;
  bool ended = false;  // no more output: exit_code / signal, or error (why it ended otherwise)
  std::optional<int> exit_code;
  std::optional<int> signal;
  std::string error;
};

class ExecSessions {
 public:
  explicit ExecSessions(const Clock& clock, ExecLimits limits = {});
  ExecSessions(const ExecSessions&) = delete;
  ExecSessions& operator=(const ExecSessions&) = delete;

  // Called with "exec:<id>" when a session has something new for its client, "exec-in:<id>" for its agent (after
  // the change, no lock held; must be cheap). The HTTP transport wakes the requests parked on those keys.
  void SetListener(std::function<void(const std::string& key)> listener);

  // A new session (kResourceExhausted beyond the limits, naming which). Returns its id ("x-" + 16 hex digits).
  Result<std::string> Open(const ExecOpenRequest& r);
  Result<ExecSessionInfo> Info(const std::string& id) const;

  // Client side. `force`: answer even when there is nothing new (a long-poll's deadline). nullopt: nothing new yet.
  // Bytes before the offsets given are dropped (the client has them).
  Result<std::optional<ExecOutputView>> ReadOutput(const std::string& id, int64_t stdout_offset,
                                                   int64_t stderr_offset, bool force);
  // Input bytes from `offset` (a retry may repeat bytes the server has: they are skipped), `eof` once all input was
  // sent, and the window size (0: unchanged). Takes what fits in the buffer; returns the offset the server has up to,
  // from which the client sends the rest.
  Result<int64_t> WriteInput(const std::string& id, int64_t offset, std::string_view data, bool eof, int rows, int cols);
  // The client is done (Ctrl-C without a terminal, or it is leaving): the agent kills the command.
  Status Close(const std::string& id, const std::string& reason);

  // Agent side; `node` must be the session's.
  Result<agent::ExecOutputAck> PushOutput(const agent::ExecOutput& out);
  // nullopt: nothing new for the agent after `offset` (unless `force`).
  Result<std::optional<agent::ExecInput>> TakeInput(const std::string& node, const std::string& id, int64_t offset,
                                                    bool force);
  // The same, waiting up to `timeout` for something new (the in-process agent).
  Result<agent::ExecInput> WaitInput(const std::string& node, const std::string& id, int64_t offset,
                                     std::chrono::milliseconds timeout);

  // The job left RUNNING: its sessions are closed (their commands are killed), saying why.
  void JobEnded(const std::string& job_id, const std::string& reason);
  // Timeouts (see ExecLimits); the service's loop calls it every tick.
  void Sweep();
  // Wakes blocked WaitInput calls (the server is stopping).
  void Shutdown();
  // Sessions that have not ended.
  size_t Live() const;

 private:
  struct Stream {
    std::string buf;
    int64_t base = 0;  // offset of buf[0]
    int64_t End() const { return base + static_cast<int64_t>(buf.size()); }
  };
  struct Session {
    ExecSessionInfo info;
    Stream out, err;
    std::string in;        // input not yet taken by the agent
    int64_t in_base = 0;   // offset of in[0]
    bool in_eof = false;
    bool eof_delivered = false;
    int rows = 0, cols = 0;
    int sent_rows = 0, sent_cols = 0;  // the window size the agent last got
    bool agent_seen = false;           // the agent took the session up
    bool closed = false;               // the client is gone or asked to stop: the agent kills the command
    std::string close_reason;
    bool close_delivered = false;
    bool close_told = false;  // a parked output poll of the client was answered once the session closed
    bool ended = false;
    std::optional<int> exit_code;
    std::optional<int> signal;
    std::string error;
    int64_t created_ms = 0, agent_ms = 0, client_ms = 0, closed_ms = 0, ended_ms = 0;
  };
  int64_t NowMs() const { return clock_.MonotonicNanos() / 1'000'000; }
  // Requires mu_. kNotFound for an unknown session (or another node's).
  Result<Session*> FindLocked(const std::string& id, const std::string* node);
  void EndLocked(Session& s, const std::string& error, std::vector<std::string>& notify);
  void CloseLocked(Session& s, const std::string& reason, std::vector<std::string>& notify);
  bool InputReadyLocked(const Session& s, int64_t offset) const;
  agent::ExecInput InputLocked(Session& s, int64_t offset);
  void Notify(const std::vector<std::string>& keys);

  const Clock& clock_;
  const ExecLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable input_cv_;
  bool shutdown_ = false;
  std::map<std::string, Session> sessions_;
  std::map<std::string, std::set<std::string>> by_job_;
  std::mutex listener_mu_;
  std::function<void(const std::string&)> listener_;
};

}  // namespace fastgpu::server
