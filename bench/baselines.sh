#!/usr/bin/env bash
# Measures the baselines tcpx-p2p is compared against, on loopback, in this run:
#   iperf3 one stream with 1 MiB writes (the practical TCP ceiling), and
#   ucx_perftest over TCP (tag_bw, put_bw, get_bw) at each size.
# Prints "name size GB/s" lines (GB = 1e9 bytes). Sourced by bench/run.sh.
set -euo pipefail

BENCH_SECONDS=${BENCH_SECONDS:-5}
BASE_PORT=${BENCH_BASE_PORT:-15200}

size_bytes() {  # 4K -> 4096, 1M -> 1048576
  local s=$1 n=${1%[KkMmGg]}
  case "${s: -1}" in
    K|k) echo $((n * 1024)) ;; M|m) echo $((n * 1048576)) ;; G|g) echo $((n * 1073741824)) ;;
    *) echo "$s" ;;
  esac
}

iperf3_gbps() {  # one stream, -l 1M, BENCH_SECONDS seconds
  local port=$((BASE_PORT + 1))
  timeout $((BENCH_SECONDS + 20)) iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  local bps
  bps=$(timeout $((BENCH_SECONDS + 15)) iperf3 -c 127.0.0.1 -p "$port" -l 1M -t "$BENCH_SECONDS" -J |
        awk -F: '/"bits_per_second"/ {v=$2} END {gsub(/[ ,]/, "", v); print v}')
  wait "$srv" 2>/dev/null || true
  awk -v b="$bps" 'BEGIN {printf "%.3f\n", b / 8e9}'
}

# ucx_perftest <test> <bytes>: GB/s from the "Final:" line (its MB/s is MiB/s).
ucx_gbps() {
  local test=$1 bytes=$2 port=$((BASE_PORT + 2))
  local iters=$(( bytes >= 16777216 ? 200 : (bytes >= 1048576 ? 2000 : 20000) ))
  export UCX_TLS=tcp UCX_NET_DEVICES=lo
  timeout 120 ucx_perftest -p "$port" >/dev/null 2>&1 &
  local srv=$!
  sleep 0.7
  local mibps
  mibps=$(timeout 120 ucx_perftest 127.0.0.1 -p "$port" -t "$test" -s "$bytes" -n "$iters" 2>/dev/null |
          awk '/^Final:/ {print $6}')
  wait "$srv" 2>/dev/null || true
  if [[ -z "$mibps" ]]; then echo "n/a"; return; fi
  awk -v m="$mibps" 'BEGIN {printf "%.3f\n", m * 1048576 / 1e9}'
}

# ucx_perftest tag_lat with 8-byte messages: average one-way latency in us.
ucx_lat_us() {
  local port=$((BASE_PORT + 3))
  export UCX_TLS=tcp UCX_NET_DEVICES=lo
  timeout 60 ucx_perftest -p "$port" >/dev/null 2>&1 &
  local srv=$!
  sleep 0.7
  timeout 60 ucx_perftest 127.0.0.1 -p "$port" -t tag_lat -s 8 -n 20000 2>/dev/null |
    awk '/^Final:/ {print $4}'
  wait "$srv" 2>/dev/null || true
}
