#!/usr/bin/env bash
# Runs tcpx-bench (two processes on loopback) and the baselines in one run and
# prints each figure next to them as ratios (design section 7):
#   vs iperf3  = tcpx GB/s / iperf3 one-stream (-l 1M) GB/s
#   vs ucx     = tcpx GB/s / ucx_perftest over TCP at the same size
#                (tag_bw for send, ucp_put_bw for write, ucp_get for read)
# Usage: bench/run.sh [BUILD_DIR] ; env: SIZES, MODES, BENCH_SECONDS, WINDOW.
# Needs: ./scripts/install-deps.sh --bench (iperf3, ucx-utils).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
bench=$build/bin/tcpx-bench
SIZES=${SIZES:-4K,64K,1M,16M,64M}
MODES=${MODES:-send write read}
WINDOW=${WINDOW:-32}
source "$here/baselines.sh"
[[ -x $bench ]] || { echo "no $bench: build first" >&2; exit 2; }
command -v iperf3 >/dev/null && command -v ucx_perftest >/dev/null ||
  { echo "needs iperf3 and ucx_perftest: ./scripts/install-deps.sh --bench" >&2; exit 2; }

echo "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
iperf=$(iperf3_gbps)
echo "iperf3 one stream -l 1M: $iperf GB/s"

tcpx_sweep() {  # mode -> lines "size GB/s"
  local mode=$1 port=$((BASE_PORT + 10)) out
  TCPX_LISTEN_ADDR=127.0.0.1 timeout 600 "$bench" --server --port "$port" >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  out=$(TCPX_LISTEN_ADDR=127.0.0.1 timeout 600 "$bench" --client "127.0.0.1:$port" --mode "$mode" \
        --sizes "$SIZES" --window "$WINDOW" --seconds "$BENCH_SECONDS")
  wait "$srv" 2>/dev/null || true
  echo "$out" | awk -v m="$mode" '$1 == m {print $2, $3}'
}

printf "\n%-6s %6s %9s %9s %9s %9s\n" mode size tcpx_GB/s ucx_GB/s vs_ucx vs_iperf3
for mode in $MODES; do
  case $mode in send) ucx_test=tag_bw ;; write) ucx_test=ucp_put_bw ;; read) ucx_test=ucp_get ;; esac
  while read -r size gbps; do
    ucx=$(ucx_gbps "$ucx_test" "$(size_bytes "$size")")
    awk -v m="$mode" -v s="$size" -v t="$gbps" -v u="$ucx" -v i="$iperf" 'BEGIN {
      vu = (u == "n/a" || u == 0) ? "n/a" : sprintf("%.2f", t / u);
      printf "%-6s %6s %9.3f %9s %9s %9.2f\n", m, s, t, u, vu, t / i }'
  done < <(tcpx_sweep "$mode")
done
latency=$(TCPX_LISTEN_ADDR=127.0.0.1 bash -c '
  "$0" --server --port '"$((BASE_PORT + 11))"' >/dev/null 2>&1 & srv=$!; sleep 0.5
  "$0" --client 127.0.0.1:'"$((BASE_PORT + 11))"' --latency --seconds 2 | grep latency; wait $srv' "$bench" || true)
echo; echo "tcpx-bench $latency"; echo "ucx_perftest tag_lat 8 B: $(ucx_lat_us) us one-way (average)"
