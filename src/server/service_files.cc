// Service: job files of jobs on remote nodes (`fastgpu job files`, docs/sync.md). The requests in flight live in
// FileRelay (file_relay.h); this hands each one to the node's agent with the other commands.
#include <string>

#include "server/service.h"

namespace fastgpu::server {

Result<std::string> Service::RequestFiles(const std::string& node, const std::string& job_id, const std::string& path,
                                          int64_t offset, int64_t max_bytes, std::string watch_key) {
  ASSIGN_OR_RETURN(std::string request, files_.Open(node, std::move(watch_key)));
  bool connected = false;
  {
    std::lock_guard lock(mu_);
    auto n = nodes_.find(node);
    connected = n != nodes_.end() && n->second.registered;
    if (connected) {
      agent::JobCommand cmd;
      cmd.kind = agent::JobCommand::Kind::kFiles;
      cmd.job_id = job_id;
      cmd.request = request;
      cmd.files_path = path;
      cmd.files_offset = offset;
      cmd.files_max_bytes = max_bytes;
      QueueCommandLocked(node, std::move(cmd));
    }
  }
  if (!connected) {
    files_.Drop(request);
    return Unavailable("node " + node + " of job " + job_id +
                       " is not connected: its files can be read once its agent is back (or on the node, under its "
                       "agent's home/jobs/" + job_id + "/work)");
  }
  return request;
}

}  // namespace fastgpu::server
