#!/usr/bin/env bash
# Regenerates bench/RESULTS.md and its plot in one command: runs bench/run.sh
# quiet, with CONTENDED (2) CPU-bound processes and quiet with --pin (one core
# per side; shown, no targets), keeps the raw records and
# summaries in bench/results/, checks the targets (bench/targets.sh) and plots
# GB/s against size (gnuplot, from ./scripts/install-deps.sh --bench).
#
# Usage: bench/report.sh [BUILD_DIR]
# Env: CONTENDED (2; 0 skips the contended run), PINNED (1; 0 skips the pinned
#      run), ROUNDS (3; more rounds steady
#      the medians on a noisy VM), REPORT_NOTE (a line about the
#      machine, e.g. "taken while other jobs ran"), and run.sh's own variables.
# Just re-render from the kept raw records: REPORT_ONLY=1 bench/report.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
out=$here/results
CONTENDED=${CONTENDED:-2}
PINNED=${PINNED:-1}
ROUNDS=${ROUNDS:-3}
mkdir -p "$out"

if [[ ${REPORT_ONLY:-0} != 1 ]]; then
  # stderr kept too: what failed goes into RESULTS.md next to its "n/a".
  "$here/run.sh" "$build" --rounds "$ROUNDS" --raw "$out/quiet.raw" 2> >(tee "$out/quiet.err" >&2) | tee "$out/quiet.txt"
  rm -f "$out"/contended.*
  if ((CONTENDED > 0)); then
    "$here/run.sh" "$build" --rounds "$ROUNDS" --contended "$CONTENDED" --raw "$out/contended.raw" \
      2> >(tee "$out/contended.err" >&2) | tee "$out/contended.txt"
  fi
  rm -f "$out"/pinned.*
  if ((PINNED)); then
    "$here/run.sh" "$build" --rounds "$ROUNDS" --pin --raw "$out/pinned.raw" \
      2> >(tee "$out/pinned.err" >&2) | tee "$out/pinned.txt"
  fi
fi
contended_raw=""
[[ -f $out/contended.raw ]] && contended_raw=$out/contended.raw

# Plot data: size_bytes tcpx_send tcpx_write tcpx_read ucx_tag_bw iperf3 [contended send, ucx].
awk -f "$here/medians.awk" "$out/quiet.raw" | sed 's/^/q /' >"$out/medians.txt"
[[ -z $contended_raw ]] || awk -f "$here/medians.awk" "$contended_raw" | sed 's/^/c /' >>"$out/medians.txt"
awk '
  function bytes(s) { return s ~ /K$/ ? s * 1024 : s ~ /M$/ ? s * 1048576 : s ~ /G$/ ? s * 1073741824 : s + 0 }
  { v[$1 " " $2 " " $3 " " $4] = $5 }
  $1 == "q" && $2 == "ucx" && $3 == "tag_bw" { sizes[++n] = $4 }
  END {
    for (i = 1; i <= n; i++) {
      s = sizes[i]
      printf "%d", bytes(s)
      split("q tcpx send|q tcpx write|q tcpx read|q ucx tag_bw|c tcpx send|c ucx tag_bw", keys, "|")
      for (k = 1; k <= 6; k++) { x = v[keys[k] " " s]; printf " %s", (x == "" || x == "n/a") ? "NaN" : x }
      printf " %s\n", v["q iperf3 stream 1M"]
    }
  }' "$out/medians.txt" >"$out/bandwidth.dat"

plot=""
if command -v gnuplot >/dev/null; then
  gnuplot <<EOF
set terminal svg size 880,420 dynamic font "sans,11"
set output "$out/bandwidth.svg"
set logscale x 2
set xrange [3000:90000000]
set xtics ("4K" 4096, "64K" 65536, "1M" 1048576, "16M" 16777216, "64M" 67108864)
set xlabel "transfer size"
set ylabel "GB/s (medians of the rounds)"
set key outside right top
set grid
plot "$out/bandwidth.dat" using 1:2 with linespoints title "tcpx send", \
     "" using 1:3 with linespoints title "tcpx write", \
     "" using 1:4 with linespoints title "tcpx read", \
     "" using 1:5 with linespoints dashtype 2 title "UCX tag\\\\_bw (TCP)", \
     "" using 1:8 with lines lw 2 lc rgb "black" dashtype 3 title "iperf3 one stream", \
     "" using 1:6 with linespoints title "tcpx send, contended", \
     "" using 1:7 with linespoints dashtype 2 title "UCX tag\\\\_bw, contended"
EOF
  plot="![GB/s against transfer size](results/bandwidth.svg)"
else
  plot="(no gnuplot here: \`./scripts/install-deps.sh --bench\`, then \`REPORT_ONLY=1 bench/report.sh\`)"
fi

{
  echo "# Benchmark results"
  echo
  echo "Regenerate with \`bench/report.sh build\` (about $((2 + (CONTENDED > 0 ? 3 : 0) + (PINNED ? 2 : 0))) minutes on 2 cores; \`REPORT_ONLY=1\` re-renders"
  echo "from the raw records in \`bench/results/\`). Loopback, two processes, medians of alternating rounds"
  echo "(three unless the header below says otherwise); tcpx-bench window 32; UCX is \`ucx_perftest\` with"
  echo "\`UCX_TLS=tcp\`. See README \"Benchmarks\" for what each column means."
  echo
  [[ -z ${REPORT_NOTE:-} ]] || { echo "**$REPORT_NOTE**"; echo; }
  echo "$plot"
  echo
  echo "## Targets (issue 10 \"Must show\", design section 7)"
  echo
  "$here/targets.sh" "$out/quiet.raw" $contended_raw
  echo
  for run in quiet contended pinned; do
    [[ -f $out/$run.raw ]] || continue
    echo
    case $run in
      quiet) echo "## Quiet" ;;
      contended) echo "## With $CONTENDED CPU-bound processes beside both" ;;
      pinned)
        echo "## Quiet, one core per side (\`bench/run.sh --pin\`; no targets)"
        echo
        echo "Every server on CPU 1 and every client on CPU 0, tcpx and baselines alike. UCX runs one busy"
        echo "thread per process, which the scheduler keeps on a core of its own; a tcpx endpoint has two"
        echo "(application and progress thread), and unpinned the scheduler may run one on its peer's core. On"
        echo "two hosts, or one with more cores than the four threads, that contest does not arise. Pinned, a"
        echo "tcpx process's two threads share its one core instead (docs/design.md, \"Where small transfers"
        echo "lose time\")."
        ;;
    esac
    echo
    echo '```text'
    "$here/summarize.sh" "$out/$run.raw"
    echo '```'
    if grep -qv '^round ' "$out/$run.err" 2>/dev/null; then
      echo
      echo "What failed in this run (each is an n/a above):"
      echo
      echo '```text'
      grep -v '^round ' "$out/$run.err"
      echo '```'
    fi
  done
} >"$here/RESULTS.md"
echo "wrote $here/RESULTS.md"
