#!/usr/bin/env bash
# Builds the libFuzzer programs in their own clang tree and runs each for a
# bounded time, printing its execution count; fails if any target crashes or
# breaks an invariant (the input is kept under <tree>/fuzz-work/<target>/).
#
#   tests/fuzz/run.sh [seconds-per-target] [target ...]
#
# Default: 30 s for each target. TCPX_FUZZ_BUILD picks the tree (build-fuzz).
# New inputs the fuzzers find stay in <tree>/fuzz-work/<target>/corpus and
# feed the next run; the committed corpus is never written to.
set -uo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-30}
shift $(( $# > 0 ? 1 : 0 ))
tree=${TCPX_FUZZ_BUILD:-build-fuzz}

if ! command -v clang++ >/dev/null; then
  echo "run.sh: clang++ not found; scripts/install-deps.sh installs clang and its libFuzzer runtime" >&2
  exit 2
fi
mkdir -p "$tree"
CC=clang CXX=clang++ cmake -S . -B "$tree" -G Ninja -DTCPX_FUZZ=ON -DTCPX_CUDA=OFF -DTCPX_PYTHON=OFF \
  >"$tree/configure.log" 2>&1 || { cat "$tree/configure.log"; exit 1; }
cmake --build "$tree" --target tcpx_fuzzers || exit 1

targets=("$@")
if ((${#targets[@]} == 0)); then
  for bin in "$tree"/bin/fuzz_*; do
    name=${bin##*/fuzz_}
    [[ $name == replay_* ]] || targets+=("$name")
  done
fi

failed=0
printf '\n%-20s %12s %8s %8s  %s\n' target executions exec/s cov result
for t in "${targets[@]}"; do
  work=$tree/fuzz-work/$t
  mkdir -p "$work/corpus" "$work/artifacts"
  inputs=("$work/corpus" "tests/fuzz/corpus/$t")
  [[ -d tests/fuzz/regressions/$t ]] && inputs+=("tests/fuzz/regressions/$t")
  "$tree/bin/fuzz_$t" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/" "${inputs[@]}" >"$work/log" 2>&1
  rc=$?
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$work/log")
  rate=$(awk '/stat::average_exec_per_sec/ {print $2}' "$work/log")
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 | cut -d' ' -f2)
  result=ok
  if ((rc != 0)); then result="FAILED (rc $rc; log $work/log)"; failed=1; fi
  printf '%-20s %12s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$result"
  if ((rc != 0)); then
    tail -40 "$work/log"
    ls -l "$work/artifacts"
  fi
done
exit $failed
