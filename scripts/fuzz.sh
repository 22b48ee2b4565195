#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ (Clang, ASan+UBSan) into build-fuzz/ and runs each for
# SECONDS_PER_TARGET seconds (default 60) on a copy of its seed corpus (fuzz/corpus/<target>/).
# Exits non-zero on any crash, leak, sanitizer report or broken invariant; the input that triggered it is
# kept under build-fuzz/findings/<target>/ and printed (logs: build-fuzz/findings/<target>.log).
# Needs clang and libclang-rt-dev (libFuzzer). Longer runs by hand: fuzz/README.md.
#
#   scripts/fuzz.sh            # 60 s per target
#   scripts/fuzz.sh 20         # what CI runs
#   FUZZ_TARGETS="job_file_yaml_fuzz" scripts/fuzz.sh 3600    # one target, longer
# Reproduce a finding:  build-fuzz/fuzz/<target> build-fuzz/findings/<target>/crash-<sha1>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if ! [[ $seconds =~ ^[0-9]+$ ]] || (( seconds < 1 )); then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi
build="build-fuzz"
targets=${FUZZ_TARGETS:-"job_spec_json_fuzz api_json_fuzz accounts_json_fuzz billing_json_fuzz job_file_yaml_fuzz"}

CC=${CC:-clang} CXX=${CXX:-clang++} cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFASTGPU_FUZZ=ON -DFASTGPU_BUILD_TESTS=OFF -DFASTGPU_BUILD_BENCH=OFF >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j2 --target $targets

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for t in $targets; do
  corpus="$work/$t"
  findings="$build/findings/$t"
  log="$build/findings/$t.log"
  rm -rf "$findings"
  mkdir -p "$corpus" "$findings"
  if [[ -d fuzz/corpus/$t ]]; then cp -R "fuzz/corpus/$t/." "$corpus/"; fi
  echo "+ $t: ${seconds}s"
  # Any sanitizer report, leak, timeout, OOM or abort ends the run with a non-zero status and writes
  # the input to $findings.
  if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     "$build/fuzz/$t" "$corpus" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
       -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1; then
    grep -E '^(Done|stat::new_units_added)' "$log" | tr -s ' \n' ' '
    echo
  else
    # The report, from its first line (or the end of the log when there is no recognisable start).
    report=$(sed -n '/terminate called\|==ERROR\|runtime error\|fuzz invariant broken\|ERROR: libFuzzer/,$p' "$log" | head -n 150 || true)
    echo "${report:-$(tail -n 60 "$log")}"
    echo "FAIL: $t (full log: $log); reproduce with:"
    found=$(find "$findings" -type f)
    if [[ -n $found ]]; then
      while read -r f; do echo "  $build/fuzz/$t $f"; done <<<"$found"
    else
      echo "  (no input was written; see the log)"
    fi
    failed+=("$t")
  fi
done
if (( ${#failed[@]} )); then
  echo "fuzzing found problems in: ${failed[*]}" >&2
  exit 1
fi
echo "fuzzing: all targets clean (${seconds}s each)"
