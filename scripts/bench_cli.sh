#!/usr/bin/env bash
# CLI start-up and CLI submit rate, next to /bin/true on the same machine. Prints figures; asserts nothing.
#
#   1. CPU (user + sys) per `fastgpu --version` and per `/bin/true`, averaged over many runs.
#   2. LOOPS parallel shell loops of `fastgpu job submit -- true` against a `fastgpu up` started here
#      (temporary FASTGPU_HOME, 127.0.0.1 on a free port), against LOOPS parallel loops of `/bin/true`
#      (and of `fastgpu --version`): commands per second each, and the submit rate as a share of /bin/true's.
#
# Usage: scripts/bench_cli.sh [FASTGPU_BINARY (default build/fastgpu)] [RUNS (default 200)] [LOOPS (default 4)]
# With perf installed, `perf stat -r 20 build/fastgpu --version` gives the same start-up figure as task-clock.
set -euo pipefail

bin=$(realpath "${1:-build/fastgpu}")
runs=${2:-200}
loops=${3:-4}
[[ -x $bin ]] || { echo "no fastgpu binary at $bin (build it, or pass its path)" >&2; exit 2; }

work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Sets CPU_US to the CPU time (user + sys, microseconds) of the calling shell's finished children: bash's
# `times`, second line. `times` must run in the shell whose children are counted (a $(...) subshell has
# none of its own), so its output goes through a file.
children_cpu_us() {
  times >"$work/times"
  CPU_US=$(awk 'NR == 2 {
                  n = split($0, f, " "); t = 0
                  for (i = 1; i <= n; i++) { split(f[i], p, "m"); sub("s", "", p[2]); t += p[1] * 60 + p[2] }
                  printf "%d\n", t * 1000000
                }' "$work/times")
}

# Mean CPU milliseconds per run of "$@" over $runs runs (printed; call it in $(...)).
cpu_ms_per_run() {
  local before i
  children_cpu_us; before=$CPU_US
  for ((i = 0; i < runs; i++)); do "$@" >/dev/null 2>&1 || true; done
  children_cpu_us
  awk -v a="$CPU_US" -v b="$before" -v n="$runs" 'BEGIN { printf "%.3f", (a - b) / n / 1000 }'
}

# CPU milliseconds the server process has used so far, with its reaped children (the jobs' supervisors).
server_cpu_ms() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13 + $14 + $15) * 1000 / hz }' "/proc/$server_pid/stat"
}

# Commands per second of $loops parallel loops, each running "$@" $runs times.
parallel_rate() {
  local t0 t1 i
  t0=$EPOCHREALTIME
  for ((i = 0; i < loops; i++)); do
    (for ((j = 0; j < runs; j++)); do "$@" >/dev/null 2>&1 || echo fail >>"$work/failures"; done) &
  done
  wait
  t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" -v n=$((runs * loops)) 'BEGIN { printf "%.0f", n / (b - a) }'
}

echo "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); binary: $bin ($(ldd "$bin" | grep -c '=>') shared libraries)"
echo
echo "CPU per process (user + sys, mean of $runs runs)"
printf '  %-34s %8s ms\n' "/bin/true" "$(cpu_ms_per_run /bin/true)"
printf '  %-34s %8s ms\n' "fastgpu --version" "$(cpu_ms_per_run "$bin" --version)"

# A server for the submits: simulated GPUs, data in the temporary home.
export FASTGPU_HOME=$work/home
mkdir -p "$FASTGPU_HOME"
"$bin" up --home "$FASTGPU_HOME" --listen 127.0.0.1:0 --sim-gpus 8xA100-80GB >"$work/server.log" 2>&1 &
server_pid=$!
for ((i = 0; i < 200; i++)); do
  [[ -s $FASTGPU_HOME/url ]] && "$bin" gpu list >/dev/null 2>&1 && break
  sleep 0.05
done
"$bin" gpu list >/dev/null 2>&1 || { echo "fastgpu up did not start:" >&2; cat "$work/server.log" >&2; exit 1; }

printf '  %-34s %8s ms   (client side; the server is another process)\n' "fastgpu job submit -- true" \
  "$(cpu_ms_per_run "$bin" job submit --name bench -- true)"
echo
echo "$loops parallel loops of $runs commands each"
true_first=$(parallel_rate /bin/true)
version_rate=$(parallel_rate "$bin" --version)
: >"$work/failures"
server_before=$(server_cpu_ms)
submit_rate=$(parallel_rate "$bin" job submit --name bench -- true)
server_after=$(server_cpu_ms)
failures=$(wc -l <"$work/failures")
# /bin/true again after the submits: other load on a shared machine drifts, the mean of both is the reference.
true_rate=$(awk -v a="$true_first" -v b="$(parallel_rate /bin/true)" 'BEGIN { printf "%.0f", (a + b) / 2 }')
printf '  %-34s %8s /s   (mean of a run before and one after the others)\n' "/bin/true" "$true_rate"
printf '  %-34s %8s /s   (%s %% of /bin/true)\n' "fastgpu --version" "$version_rate" \
  "$(awk -v a="$version_rate" -v b="$true_rate" 'BEGIN { printf "%.0f", 100 * a / b }')"
printf '  %-34s %8s /s   (%s %% of /bin/true; %s failed)\n' "fastgpu job submit -- true" "$submit_rate" \
  "$(awk -v a="$submit_rate" -v b="$true_rate" 'BEGIN { printf "%.0f", 100 * a / b }')" "$failures"
printf '  %-34s %8s ms CPU per submit (HTTP, auth, store, audit, starting and ending the job)\n' "server meanwhile" \
  "$(awk -v a="$server_after" -v b="$server_before" -v n=$((runs * loops)) 'BEGIN { printf "%.2f", (a - b) / n }')"
