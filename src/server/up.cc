#include "server/up.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "auth/accounts.h"
#include "server/embedded.h"
#include "server/service.h"

namespace fastgpu::server {

int RunUp(const UpOptions& options) {
  // Block termination signals in every thread; one thread waits for them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  Embedded up;
  Status st = up.Start(options);
  if (!st.ok()) {
    std::cerr << "fastgpu: error: " << st.message() << "\n";
    return 1;
  }
  if (!options.local_agent) {
    std::cout << "FastGPU server is up at " << up.url() << "\n"
              << "  home:  " << up.home() << " (admin token in " << up.home() << "/admin.token)\n"
              << "  nodes: none on this machine; add GPU machines with\n"
              << "           fastgpu node token create --ttl 1h            # here (admin): a one-time join token\n"
              << "           fastgpu agent --server " << up.url() << " --join-token fgj_...   # on each node\n"
              << "Press Ctrl-C to stop.\n"
              << std::flush;
    int sig = 0;
    sigwait(&set, &sig);
    if (std::string lost = up.lost_lead(); !lost.empty()) {
      std::cerr << "fastgpu: error: " << lost << ": stopping (another server may lead the database now; "
                << "start this one again, with --standby, to take over after it)\n";
      up.Stop();
      return 1;
    }
    std::cout << "\nfastgpu: stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ")\n" << std::flush;
    up.Stop();
    return 0;
  }
  std::cout << "FastGPU is up at " << up.url() << "\n"
            << "  home:  " << up.home() << " (admin token in " << up.home() << "/admin.token)\n"
            << "  GPUs:  " << up.fleet_description();
  if (up.simulated()) std::cout << "  [SIMULATED: no NVIDIA GPU found; jobs still run as real processes]";
  std::cout << "\n  jobs:  ";
  if (::geteuid() == 0) {
    std::cout << "each project's jobs run as its own Unix uid (from "
              << (options.job_uid_range.empty() ? auth::FormatJobUidRange({}) : options.job_uid_range)
              << "), never shared with another project\n"
              << "         (--job-uid-range FIRST-LAST picks the range; `fastgpu project set P --run-as USER` runs a "
                 "project's jobs as a named Unix user)";
  } else {
    std::cout << "run as this user (uid " << ::geteuid()
              << "): not root, so jobs of different projects are not isolated from each other\n"
              << "         (run fastgpu up as root to give each project its own Unix uid)";
  }
  std::cout << "\n\nIn another terminal:\n";
  if (const char* h = std::getenv("HOME"); h == nullptr || up.home() != std::string(h) + "/.fastgpu")
    std::cout << "  export FASTGPU_HOME=" << up.home() << "      # this home is not the default (~/.fastgpu)\n";
  std::cout << "  fastgpu gpu list\n"
            << "  fastgpu job submit --gpus 2 --name hello -- sh -c 'echo $CUDA_VISIBLE_DEVICES; nvidia-smi || true'\n"
            << "  fastgpu job list\n"
            << "Press Ctrl-C to stop (running jobs keep running and are re-adopted by the next `fastgpu up`).\n"
            << std::flush;
  int sig = 0;
  sigwait(&set, &sig);
  if (std::string lost = up.lost_lead(); !lost.empty()) {
    std::cerr << "fastgpu: error: " << lost << ": stopping\n";
    up.Stop();
    return 1;
  }
  std::cout << "\nfastgpu: stopping (" << (sig == SIGINT ? "SIGINT" : "SIGTERM") << ")\n" << std::flush;
  up.Stop();
  return 0;
}

}  // namespace fastgpu::server
