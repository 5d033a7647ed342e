#!/usr/bin/env bash
# Prints bench/run.sh's tables from its raw records: medians over the rounds
# (bench/medians.awk) and the ratios against the baselines.
# Usage: bench/summarize.sh RAW_FILE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
raw=${1:?usage: bench/summarize.sh RAW_FILE}

grep '^# ' "$raw" | grep -v '^# threads' || true
awk -f "$here/medians.awk" "$raw" | awk '
  function ratio(a, b) { return (a == "n/a" || b == "n/a" || b == 0) ? "n/a" : sprintf("%.2f", a / b) }
  function num(v, f) { return v == "n/a" || v == "" ? "n/a" : sprintf(f, v) }
  {
    key = $1 " " $2 " " $3
    for (i = 4; i < NF; i++) v[key, i - 3] = $i
    seen[key] = 1
    if ($1 == "tcpx" && $2 != "lat") { if (!($2 in mseen)) modes[++nm] = $2; mseen[$2] = 1
                                       if (!($3 in sseen)) sizes[++ns] = $3; sseen[$3] = 1 }
    if ($1 == "tcpx" && $2 == "lat") lats[++nl] = $3
    if ($1 == "capi" && $2 == "write") shapes[++nc] = $3
    if (!rounds) { rounds = $NF; sub("rounds=", "", rounds) }
  }
  END {
    iperf = v["iperf3 stream 1M", 1]
    printf "\nMedians of %s round(s). iperf3 one stream (-l 1M): %s GB/s\n", rounds, num(iperf, "%.3f")
    onesided = ("ucx put_bw " sizes[1]) in seen
    printf "\n%-6s %5s %9s %9s %7s %9s %9s %9s", "mode", "size", "tcpx_GB/s", "ucx_tag", "vs_ucx",
           "vs_iperf3", "cpu_s/GB", "peer_cpu"
    if (onesided) printf " %9s %9s", "ucx_1side", "vs_1side"
    printf "\n"
    for (m = 1; m <= nm; m++) for (s = 1; s <= ns; s++) {
      k = "tcpx " modes[m] " " sizes[s]
      if (!(k in seen)) continue
      t = v[k, 1]; u = v["ucx tag_bw " sizes[s], 1]
      printf "%-6s %5s %9s %9s %7s %9s %9s %9s", modes[m], sizes[s], num(t, "%.3f"), num(u, "%.3f"),
             ratio(t, u), ratio(t, iperf), num(v[k, 2], "%.3f"), num(v[k, 3], "%.3f")
      if (onesided) {
        o = modes[m] == "write" ? v["ucx put_bw " sizes[s], 1] : modes[m] == "read" ? v["ucx get " sizes[s], 1] : "n/a"
        printf " %9s %9s", num(o, "%.3f"), ratio(t, o)
      }
      printf "\n"
    }
    # UCX percentiles cover its last 2048 round trips, ours the whole run;
    # the means are the whole run on both sides.
    printf "\n%-8s %5s %9s %9s %9s %9s %9s %9s %10s %11s\n", "latency", "size", "tcpx_p50", "tcpx_p99",
           "tcpx_mean", "ucx_p50", "ucx_p99", "ucx_mean", "p50_vs_ucx", "mean_vs_ucx"
    for (l = 1; l <= nl; l++) {
      k = "tcpx lat " lats[l]; u = "ucx tag_lat " lats[l]
      printf "%-8s %5s %9s %9s %9s %9s %9s %9s %10s %11s\n", "us", lats[l], num(v[k, 1], "%.2f"),
             num(v[k, 2], "%.2f"), num(v[k, 3], "%.2f"), num(v[u, 1], "%.2f"), num(v[u, 2], "%.2f"),
             num(v[u, 3], "%.2f"), ratio(v[k, 1], v[u, 1]), ratio(v[k, 3], v[u, 3])
    }
    printf "\nC API (tcpx-capi-bench): FIFO round trip, send_tx_md_vector to the first FIFO item\n"
    printf "  warm: median %s us, p99 %s us; after 20 ms idle: median %s us, p99 %s us\n",
           num(v["capi fifo_warm -", 1], "%.0f"), num(v["capi fifo_warm -", 2], "%.0f"),
           num(v["capi fifo_cold -", 1], "%.0f"), num(v["capi fifo_cold -", 2], "%.0f")
    printf "%-10s %10s %10s %10s %10s %10s\n", "shape", "write_GB/s", "read_GB/s", "send_GB/s", "write/send",
           "read/send"
    for (c = 1; c <= nc; c++) {
      w = v["capi write " shapes[c], 1]; r = v["capi read " shapes[c], 1]; s = v["capi send " shapes[c], 1]
      printf "%-10s %10s %10s %10s %10s %10s\n", shapes[c], num(w, "%.3f"), num(r, "%.3f"), num(s, "%.3f"),
             ratio(w, s), ratio(r, s)
    }
  }'
echo
echo "Threads (process totals: before, after creating, with one connection):"
sed -n 's/^# threads /  /p' "$raw"
