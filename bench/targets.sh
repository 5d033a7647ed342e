#!/usr/bin/env bash
# Checks the medians of bench/run.sh raw records against issue 10's "Must
# show" list and design section 7; prints one markdown list item per target.
# Usage: bench/targets.sh QUIET_RAW [CONTENDED_RAW]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
quiet=${1:?usage: bench/targets.sh QUIET_RAW [CONTENDED_RAW]}
contended=${2:-}

# Medians, tagged with the run they come from ("q" quiet, "c" contended).
{
  awk -f "$here/medians.awk" "$quiet" | sed 's/^/q /'
  [[ -z $contended ]] || awk -f "$here/medians.awk" "$contended" | sed 's/^/c /'
} | awk '
  function bytes(s) { return s ~ /K$/ ? s * 1024 : s ~ /M$/ ? s * 1048576 : s ~ /G$/ ? s * 1073741824 : s + 0 }
  function verdict(ok) { return ok ? "PASS" : "FAIL" }
  { key = $1 " " $2 " " $3 " " $4; v[key] = $5; v2[key] = $6; v3[key] = $7
    if ($2 == "tcpx" && $3 != "lat") { figs[++n] = $1 " " $3 " " $4 } }
  END {
    iperf = v["q iperf3 stream 1M"]
    # 8-byte latency: p50 at most 1.5x UCX tag_lat.
    t = v["q tcpx lat 8"]; u = v["q ucx tag_lat 8"]
    if (t != "" && u > 0)
      printf "- %s 8-byte one-way latency p50 %.1f us = %.2fx UCX tag_lat %.1f us (target <= 1.5x)\n",
             verdict(t <= 1.5 * u), t, t / u, u
    for (i = 1; i <= n; i++) {
      split(figs[i], f, " "); run = f[1]; mode = f[2]; size = f[3]
      t = v[run " tcpx " mode " " size]; u = v[run " ucx tag_bw " size]
      if (t == "n/a" || u == "n/a" || u == 0) continue
      if (run == "q") {
        need = bytes(size) == 4096 ? 2 : 1
        printf "- %s %s %s: %.2fx UCX tag_bw (target >= %dx)\n", verdict(t >= need * u), mode, size, t / u, need
        if (bytes(size) >= 1048576 && iperf > 0)
          printf "- %s %s %s: %.2fx iperf3 one stream (target >= 0.95x)\n", verdict(t >= 0.95 * iperf), mode,
                 size, t / iperf
      } else {
        printf "- %s contended %s %s: %.2fx UCX tag_bw under the same load (target >= 1x)\n", verdict(t >= u),
               mode, size, t / u
      }
    }
    # Beside CPU hogs the latency is judged on the mean one-way latency over
    # the whole run, measured alike on both sides (round trips over time).
    # The p50s are not alike there: perftest takes its percentile over its
    # last 2048 round trips only, tcpx-bench over all of them, and a loaded
    # run mixes stretches where both ends have a core with stretches where
    # one waits for the scheduler. Shown beside, not judged.
    t = v3["c tcpx lat 8"]; u = v3["c ucx tag_lat 8"]; tp = v["c tcpx lat 8"]; up = v["c ucx tag_lat 8"]
    if (t != "" && t != "n/a" && u > 0)
      printf "- %s contended 8-byte latency, mean over the run %.1f us = %.2fx UCX tag_lat %.1f us (target <= 1x; p50 %.1f against %.1f us over its last 2048)\n",
             verdict(t <= u), t, t / u, u, tp, up
  }'
