// Service: exec sessions (`fastgpu job exec`, docs/exec.md). The session buffers live in ExecSessions (exec.h);
// this opens them for RUNNING jobs and hands the command to the node's agent with the other commands.
#include <string>

#include "server/service.h"

namespace fastgpu::server {

Result<ExecStarted> Service::StartExec(const std::string& job_id, const ExecRequest& req, const std::string& actor) {
  if (req.argv.empty() || req.argv[0].empty()) return InvalidArgument("exec needs a command: fastgpu job exec ID -- CMD");
  if (req.argv.size() > 4096) return InvalidArgument("exec takes at most 4096 arguments");
  size_t bytes = 0;
  for (const std::string& a : req.argv) {
    bytes += a.size() + 1;
    if (a.find('\0') != std::string::npos) return InvalidArgument("exec arguments cannot hold NUL bytes");
  }
  if (bytes > (256u << 10)) return InvalidArgument("exec's command line is longer than 256 KiB");
  if (req.rank < 0) return InvalidArgument("rank must be >= 0");
  if (req.rows < 0 || req.rows > 10'000 || req.cols < 0 || req.cols > 10'000)
    return InvalidArgument("rows and cols must be 0-10000");
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) {
    const api::Job* ended = FindLocked(job_id);
    if (ended == nullptr) {
      // Ended long ago (not cached) or never existed: the caller's authorisation already looked it up.
      return FailedPrecondition("job " + job_id + " has ended: exec runs a command inside a RUNNING job");
    }
    return FailedPrecondition("job " + job_id + " is " + std::string(api::JobStateName(ended->state)) +
                              ": exec runs a command inside a RUNNING job");
  }
  const api::Job& job = it->second;
  if (job.state != api::JobState::kRunning) {
    return FailedPrecondition("job " + job_id + " is " + std::string(api::JobStateName(job.state)) +
                              ": exec runs a command inside a RUNNING job" +
                              (job.state == api::JobState::kQueued || job.state == api::JobState::kScheduled ||
                                       job.state == api::JobState::kStarting
                                   ? " (wait for it: fastgpu job wait " + job_id + " --for running)"
                                   : ""));
  }
  std::string node = job.node;
  if (!job.members.empty()) {
    if (static_cast<size_t>(req.rank) >= job.members.size())
      return InvalidArgument("job " + job_id + " has no rank " + std::to_string(req.rank) + " (its ranks are 0-" +
                             std::to_string(job.members.size() - 1) + ")");
    const api::JobMember& m = job.members[static_cast<size_t>(req.rank)];
    if (m.ended) return FailedPrecondition("rank " + std::to_string(req.rank) + " of job " + job_id + " has ended");
    node = m.node;
  } else if (req.rank != 0) {
    return InvalidArgument("job " + job_id + " runs on one node: it has rank 0 only");
  }
  if (node.empty())
    return FailedPrecondition("job " + job_id + " runs on no node itself (a job array runs in its tasks: exec into "
                              "one of them, e.g. the id `fastgpu job get " + job_id + "` lists)");
  auto n = nodes_.find(node);
  if (n == nodes_.end() || !n->second.registered)
    return Unavailable("node " + node + " of job " + job_id + " is not connected: try again once its agent is back");
  ExecOpenRequest open;
  open.job_id = job_id;
  open.attempt = job.attempt;
  open.node = node;
  open.rank = req.rank;
  open.actor = actor;
  open.argv = req.argv;
  open.tty = req.tty;
  open.stdin_open = req.stdin_open;
  open.rows = req.rows;
  open.cols = req.cols;
  ASSIGN_OR_RETURN(std::string session, exec_.Open(open));
  agent::JobCommand cmd;
  cmd.kind = agent::JobCommand::Kind::kExec;
  cmd.job = MemberView(job, req.rank);
  cmd.rank = req.rank;
  cmd.session = session;
  cmd.argv = req.argv;
  cmd.tty = req.tty;
  cmd.stdin_open = req.stdin_open;
  cmd.rows = req.rows;
  cmd.cols = req.cols;
  cmd.term = req.term;
  if (directory_) {
    if (auto rules = directory_->Rules(job.spec.project)) {
      cmd.run_as_uid = rules->run_as_uid;
      cmd.run_as_user = rules->run_as_user;
      cmd.allow_root = rules->allow_root;
    }
  }
  QueueCommandLocked(node, std::move(cmd));
  return ExecStarted{session, node, req.rank};
}

Result<agent::ExecOutputAck> Service::PushExecOutput(const agent::ExecOutput& out) { return exec_.PushOutput(out); }

Result<agent::ExecInput> Service::WaitExecInput(const std::string& node, const std::string& session, int64_t offset,
                                                std::chrono::milliseconds timeout) {
  return exec_.WaitInput(node, session, offset, timeout);
}

}  // namespace fastgpu::server
