// fastgpu-simulate: standalone trace replay, the same code as `fastgpu simulate`.
#include <CLI/CLI.hpp>
#include <iostream>

#include "common/clock.h"
#include "sim/simulate_command.h"

int main(int argc, char** argv) {
  fastgpu::sim::SimulateOptions o;
  CLI::App app{"Replay a GPU job trace against FastGPU scheduling policies"};
  app.add_option("--trace", o.trace_path, "CSV: job_id,submit_time_s,num_gpus,duration_s,user,queue,status")
      ->required();
  app.add_option("--cluster", o.cluster, "NODESxGPUSxTYPE")->capture_default_str();
  app.add_option("--policy", o.policy, "scheduling policy")->capture_default_str();
  app.add_option("--placement", o.placement, "best-fit or spread")->capture_default_str();
  app.add_option("--compare", o.compare, "comma-separated policies, or 'all'");
  app.add_option("--output", o.output, "table, json or csv")->capture_default_str();
  app.add_option("--from", o.from_s, "first submit_time_s to keep");
  app.add_option("--to", o.to_s, "last submit_time_s to keep");
  app.add_option("--queue", o.queue, "keep only this queue (virtual cluster)");
  app.add_option("--tick", o.reschedule_interval_s, "also reschedule after this many idle seconds");
  app.add_option("--preemptible", o.preemptible, "all, none or a fraction of the jobs (e.g. 0.5)")
      ->capture_default_str();
  app.add_flag("--by-project", o.by_project, "also report figures per project (queue)");
  app.add_flag("--preempt-across-projects", o.preempt_across_projects,
               "let jobs preempt other projects' jobs even when their project holds its fair share");
  bool no_timing = false;
  app.add_flag("--no-timing", no_timing, "omit wall time and memory (reproducible output)");
  CLI11_PARSE(app, argc, argv);
  o.timing = !no_timing;
  fastgpu::SystemClock clock;
  return fastgpu::sim::RunSimulateCommand(o, std::cout, std::cerr, clock);
}
