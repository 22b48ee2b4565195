#include "server/exec.h"

#include <algorithm>
#include <utility>

#include "common/crypto.h"

namespace fastgpu::server {

ExecSessions::ExecSessions(const Clock& clock, ExecLimits limits) : clock_(clock), limits_(limits) {}

void ExecSessions::SetListener(std::function<void(const std::string& key)> listener) {
  std::lock_guard lock(listener_mu_);
  listener_ = std::move(listener);
}

void ExecSessions::Notify(const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  input_cv_.notify_all();
  std::lock_guard lock(listener_mu_);
  if (!listener_) return;
  for (const std::string& k : keys) listener_(k);
}

Result<std::string> ExecSessions::Open(const ExecOpenRequest& r) {
  if (r.argv.empty() || r.argv[0].empty()) return InvalidArgument("exec needs a command to run");
  ASSIGN_OR_RETURN(std::string hex, RandomHex(8));
  const std::string id = "x-" + hex;
  std::lock_guard lock(mu_);
  size_t live = 0, of_job = 0, of_user = 0;
  for (const auto& [sid, s] : sessions_) {
    if (s.ended) continue;
    ++live;
    if (s.info.job_id == r.job_id) ++of_job;
    if (s.info.actor == r.actor) ++of_user;
  }
  if (of_job >= limits_.per_job)
    return ResourceExhausted("job " + r.job_id + " already has " + std::to_string(of_job) +
                             " exec sessions (at most " + std::to_string(limits_.per_job) +
                             "): end one of them first");
  if (of_user >= limits_.per_user)
    return ResourceExhausted("you already have " + std::to_string(of_user) + " exec sessions open (at most " +
                             std::to_string(limits_.per_user) + "): end one of them first");
  if (live >= limits_.total)
    return ResourceExhausted("this server relays " + std::to_string(live) + " exec sessions, its most (" +
                             std::to_string(limits_.total) + "): try again later");
  Session s;
  s.info.id = id;
  s.info.job_id = r.job_id;
  s.info.node = r.node;
  s.info.actor = r.actor;
  s.info.rank = r.rank;
  s.info.tty = r.tty;
  s.info.stdin_open = r.stdin_open;
  s.rows = r.rows;
  s.cols = r.cols;
  s.sent_rows = r.rows;  // the command carries the first window size
  s.sent_cols = r.cols;
  s.created_ms = s.client_ms = NowMs();
  sessions_.emplace(id, std::move(s));
  by_job_[r.job_id].insert(id);
  return id;
}

Result<ExecSessions::Session*> ExecSessions::FindLocked(const std::string& id, const std::string* node) {
  auto it = sessions_.find(id);
  if (it == sessions_.end() || (node != nullptr && it->second.info.node != *node))
    return NotFound("no exec session " + id + (node != nullptr ? " on node " + *node : std::string()) +
                    " (it ended, or timed out)");
  return &it->second;
}

Result<ExecSessionInfo> ExecSessions::Info(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return NotFound("no exec session " + id + " (it ended, or timed out)");
  return it->second.info;
}

void ExecSessions::EndLocked(Session& s, const std::string& error, std::vector<std::string>& notify) {
  if (s.ended) return;
  s.ended = true;
  s.ended_ms = NowMs();
  if (s.error.empty()) s.error = error;
  notify.push_back("exec:" + s.info.id);
  notify.push_back("exec-in:" + s.info.id);
}

void ExecSessions::CloseLocked(Session& s, const std::string& reason, std::vector<std::string>& notify) {
  if (s.closed || s.ended) return;
  s.closed = true;
  s.close_reason = reason;
  s.closed_ms = NowMs();
  notify.push_back("exec-in:" + s.info.id);
  notify.push_back("exec:" + s.info.id);
}

Result<std::optional<ExecOutputView>> ExecSessions::ReadOutput(const std::string& id, int64_t stdout_offset,
                                                               int64_t stderr_offset, bool force) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Session * s, FindLocked(id, nullptr));
  s->client_ms = NowMs();
  auto drop = [](Stream& st, int64_t offset, const char* name) -> Status {
    if (offset < 0 || offset > st.End())
      return InvalidArgument(std::string(name) + "_offset " + std::to_string(offset) + " is beyond the output (" +
                             std::to_string(st.End()) + " bytes)");
    if (offset > st.base) {
      st.buf.erase(0, static_cast<size_t>(offset - st.base));
      st.base = offset;
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(drop(s->out, stdout_offset, "stdout"));
  RETURN_IF_ERROR(drop(s->err, stderr_offset, "stderr"));
  const bool fresh = s->out.End() > stdout_offset || s->err.End() > stderr_offset;
  const bool drained = s->out.buf.empty() && s->err.buf.empty();
  const bool closed_news = s->closed && !s->close_told;  // once: a client that ended the session may leave at once
  if (!fresh && !(s->ended && drained) && !closed_news && !force) return std::optional<ExecOutputView>();
  if (s->closed) s->close_told = true;
  ExecOutputView v;
  const size_t chunk = static_cast<size_t>(limits_.read_chunk_bytes);
  v.stdout_offset = s->out.base;
  v.stdout_data = s->out.buf.substr(0, chunk);
  v.stderr_offset = s->err.base;
  v.stderr_data = s->err.buf.substr(0, chunk);
  // The end is told once everything before it has been handed out.
  if (s->ended && v.stdout_data.size() == s->out.buf.size() && v.stderr_data.size() == s->err.buf.size()) {
    v.ended = true;
    v.exit_code = s->exit_code;
    v.signal = s->signal;
    v.error = s->error;
  }
  return std::optional<ExecOutputView>(std::move(v));
}

Result<int64_t> ExecSessions::WriteInput(const std::string& id, int64_t offset, std::string_view data, bool eof,
                                         int rows, int cols) {
  std::vector<std::string> notify;
  int64_t have = 0;
  {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(Session * s, FindLocked(id, nullptr));
    s->client_ms = NowMs();
    if (s->ended || s->closed) return FailedPrecondition("exec session " + id + " has ended");
    if (!s->info.stdin_open && !data.empty())
      return FailedPrecondition("exec session " + id + " takes no input (start it with -i)");
    const int64_t end = s->in_base + static_cast<int64_t>(s->in.size());
    if (offset < 0 || offset > end)
      return InvalidArgument("input offset " + std::to_string(offset) + " is beyond the input the server has (" +
                             std::to_string(end) + " bytes)");
    if (s->in_eof && offset + static_cast<int64_t>(data.size()) > end)
      return FailedPrecondition("the input of exec session " + id + " has ended");
    const size_t skip = static_cast<size_t>(std::min<int64_t>(end - offset, static_cast<int64_t>(data.size())));
    data.remove_prefix(skip);
    const size_t room = static_cast<size_t>(std::max<int64_t>(0, limits_.input_buffer_bytes - static_cast<int64_t>(s->in.size())));
    const size_t take = std::min(room, data.size());
    s->in.append(data.substr(0, take));
    have = end + static_cast<int64_t>(take);
    if (eof && take == data.size()) s->in_eof = true;
    if (rows > 0 && cols > 0 && rows <= 10'000 && cols <= 10'000) {
      s->rows = rows;
      s->cols = cols;
    }
    if (take > 0 || s->in_eof || s->rows != s->sent_rows || s->cols != s->sent_cols) notify.push_back("exec-in:" + id);
  }
  Notify(notify);
  return have;
}

Status ExecSessions::Close(const std::string& id, const std::string& reason) {
  std::vector<std::string> notify;
  {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(Session * s, FindLocked(id, nullptr));
    s->client_ms = NowMs();
    CloseLocked(*s, reason, notify);
  }
  Notify(notify);
  return Status::Ok();
}

Result<agent::ExecOutputAck> ExecSessions::PushOutput(const agent::ExecOutput& o) {
  std::vector<std::string> notify;
  agent::ExecOutputAck ack;
  {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(Session * s, FindLocked(o.session, &o.node));
    s->agent_seen = true;
    s->agent_ms = NowMs();
    bool all_taken = true;
    auto append = [&](Stream& st, int64_t offset, std::string_view data) {
      // Bytes the server has already are skipped (a retried push); a gap is refused by answering where it is.
      if (offset > st.End()) {
        all_taken = false;
        return;
      }
      const size_t skip = static_cast<size_t>(std::min<int64_t>(st.End() - offset, static_cast<int64_t>(data.size())));
      data.remove_prefix(skip);
      const size_t room =
          static_cast<size_t>(std::max<int64_t>(0, limits_.output_buffer_bytes - static_cast<int64_t>(st.buf.size())));
      const size_t take = std::min(room, data.size());
      st.buf.append(data.substr(0, take));
      if (take < data.size()) all_taken = false;
      if (take > 0) notify.push_back("exec:" + s->info.id);
    };
    if (!s->ended) {
      append(s->out, o.stdout_offset, o.stdout_data);
      append(s->err, o.stderr_offset, o.stderr_data);
      if (o.exited && all_taken) {
        s->exit_code = o.exit_code;
        s->signal = o.signal;
        std::string why = o.error;
        if (why.empty() && s->closed) why = s->close_reason;
        EndLocked(*s, why, notify);
      }
    }
    ack.stdout_offset = s->out.End();
    ack.stderr_offset = s->err.End();
    ack.closed = s->closed || s->ended;
  }
  Notify(notify);
  return ack;
}

bool ExecSessions::InputReadyLocked(const Session& s, int64_t offset) const {
  return s.ended || (s.closed && !s.close_delivered) ||
         s.in_base + static_cast<int64_t>(s.in.size()) > offset || (s.in_eof && !s.eof_delivered) ||
         s.rows != s.sent_rows || s.cols != s.sent_cols;
}

agent::ExecInput ExecSessions::InputLocked(Session& s, int64_t offset) {
  agent::ExecInput in;
  const int64_t end = s.in_base + static_cast<int64_t>(s.in.size());
  offset = std::clamp(offset, s.in_base, end);
  // The agent has everything before `offset`: those bytes are dropped.
  s.in.erase(0, static_cast<size_t>(offset - s.in_base));
  s.in_base = offset;
  in.offset = offset;
  in.data = s.in;
  in.eof = s.in_eof;
  if (s.in_eof) s.eof_delivered = true;
  in.rows = s.rows;
  in.cols = s.cols;
  s.sent_rows = s.rows;
  s.sent_cols = s.cols;
  in.close = s.closed || s.ended;
  if (in.close) {
    in.close_reason = s.closed ? s.close_reason : "the session ended";
    s.close_delivered = true;
  }
  return in;
}

Result<std::optional<agent::ExecInput>> ExecSessions::TakeInput(const std::string& node, const std::string& id,
                                                                int64_t offset, bool force) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Session * s, FindLocked(id, &node));
  s->agent_seen = true;
  s->agent_ms = NowMs();
  if (!force && !InputReadyLocked(*s, offset)) return std::optional<agent::ExecInput>();
  return std::optional<agent::ExecInput>(InputLocked(*s, offset));
}

Result<agent::ExecInput> ExecSessions::WaitInput(const std::string& node, const std::string& id, int64_t offset,
                                                 std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  ASSIGN_OR_RETURN(Session * s, FindLocked(id, &node));
  s->agent_seen = true;
  s->agent_ms = NowMs();
  input_cv_.wait_for(lock, timeout, [&] {
    auto it = sessions_.find(id);
    return shutdown_ || it == sessions_.end() || InputReadyLocked(it->second, offset);
  });
  ASSIGN_OR_RETURN(s, FindLocked(id, &node));
  s->agent_ms = NowMs();
  return InputLocked(*s, offset);
}

void ExecSessions::JobEnded(const std::string& job_id, const std::string& reason) {
  std::vector<std::string> notify;
  {
    std::lock_guard lock(mu_);
    auto j = by_job_.find(job_id);
    if (j == by_job_.end()) return;
    for (const std::string& id : j->second) {
      if (auto it = sessions_.find(id); it != sessions_.end()) CloseLocked(it->second, reason, notify);
    }
  }
  Notify(notify);
}

void ExecSessions::Sweep() {
  std::vector<std::string> notify;
  {
    std::lock_guard lock(mu_);
    const int64_t now = NowMs();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      Session& s = it->second;
      if (s.ended) {
        if (now - s.ended_ms >= limits_.linger_ms) {
          if (auto j = by_job_.find(s.info.job_id); j != by_job_.end()) {
            j->second.erase(s.info.id);
            if (j->second.empty()) by_job_.erase(j);
          }
          it = sessions_.erase(it);
          continue;
        }
      } else if (!s.agent_seen && now - s.created_ms >= limits_.start_timeout_ms) {
        EndLocked(s, "node " + s.info.node + " did not start the command within " +
                         std::to_string(limits_.start_timeout_ms / 1000) + " s (is its agent connected?)",
                  notify);
      } else if (s.agent_seen && now - s.agent_ms >= limits_.agent_silence_ms) {
        EndLocked(s, "node " + s.info.node + " stopped answering for this session", notify);
      } else if (s.closed && now - s.closed_ms >= limits_.agent_silence_ms) {
        EndLocked(s, s.close_reason, notify);
      } else if (!s.closed && now - s.client_ms >= limits_.client_silence_ms) {
        CloseLocked(s, "the client went away (no request for " + std::to_string(limits_.client_silence_ms / 1000) +
                           " s)",
                    notify);
      }
      ++it;
    }
  }
  Notify(notify);
}

void ExecSessions::Shutdown() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  input_cv_.notify_all();
}

size_t ExecSessions::Live() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(std::count_if(sessions_.begin(), sessions_.end(), [](const auto& e) { return !e.second.ended; }));
}

}  // namespace fastgpu::server
