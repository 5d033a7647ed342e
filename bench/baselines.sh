#!/usr/bin/env bash
# The baselines tcpx-p2p is compared against, on loopback, measured in the same
# run (sourced by bench/run.sh):
#   iperf3 one stream with 1 MiB writes (the practical TCP ceiling), and
#   ucx_perftest over TCP (UCX_TLS=tcp): tag_bw (and put_bw / get) per size,
#   tag_lat percentiles.
# GB = 1e9 bytes. Every process runs under a timeout; every server port is a
# random free one, so runs beside ctest (or another bench) do not collide.
# Servers start under the command prefix pin_server, clients under
# pin_client (run.sh --pin: taskset), both empty unless set.
set -euo pipefail
[[ -v pin_server ]] || pin_server=()
[[ -v pin_client ]] || pin_client=()

BENCH_SECONDS=${BENCH_SECONDS:-1}         # per figure
# Whole seconds (iperf3 -t): three figures' worth, at least 1.
IPERF_SECONDS=${IPERF_SECONDS:-$(awk -v s="$BENCH_SECONDS" 'BEGIN {n = int(s * 3); print n < 1 ? 1 : n}')}

size_bytes() {  # 4K -> 4096, 1M -> 1048576
  local s=$1 n=${1%[KkMmGg]}
  case "${s: -1}" in
    K|k) echo $((n * 1024)) ;; M|m) echo $((n * 1048576)) ;; G|g) echo $((n * 1073741824)) ;;
    *) echo "$s" ;;
  esac
}

free_port() {  # a random TCP port nobody listens on
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 30000))
    ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
  echo "$p"
}

wait_listening() {  # port [seconds]: true once something listens on it
  local deadline=$((SECONDS + ${2:-10}))
  until ss -Hltn "sport = :$1" | grep -q .; do
    ((SECONDS < deadline)) || return 1
    sleep 0.05
  done
}

iperf3_gbps() {  # one stream, -l 1M, IPERF_SECONDS seconds
  local port bps srv
  port=$(free_port)
  "${pin_server[@]}" timeout $((IPERF_SECONDS + 30)) iperf3 -s -1 -B 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  srv=$!
  wait_listening "$port" || true
  bps=$("${pin_client[@]}" timeout $((IPERF_SECONDS + 20)) iperf3 -c 127.0.0.1 -p "$port" -l 1M -t "$IPERF_SECONDS" -J |
        awk -F: '/"bits_per_second"/ {v=$2} END {gsub(/[ ,]/, "", v); print v}') || true
  wait "$srv" 2>/dev/null || true
  [[ -n "$bps" ]] || { echo "n/a"; return; }
  awk -v b="$bps" 'BEGIN {printf "%.3f\n", b / 8e9}'
}

# Runs one ucx_perftest client against a fresh server; prints its "Final:" line.
ucx_final() {  # test bytes iters [extra args...]
  local test=$1 bytes=$2 iters=$3 port srv
  shift 3
  port=$(free_port)
  export UCX_TLS=tcp UCX_NET_DEVICES=lo
  "${pin_server[@]}" timeout 120 ucx_perftest -p "$port" >/dev/null 2>&1 &
  srv=$!
  wait_listening "$port" || true
  "${pin_client[@]}" timeout 120 ucx_perftest 127.0.0.1 -p "$port" -t "$test" -s "$bytes" -n "$iters" \
    -w $((iters / 10 + 1)) "$@" 2>/dev/null | awk '/^Final:/' || true
  wait "$srv" 2>/dev/null || true
}

# ucx_perftest <test> <bytes>: GB/s. Iterations sized to take about
# BENCH_SECONDS at UCX's usual loopback speed (fixed counts, as perftest has
# no duration option). The "overall" column ($7, MiB/s): the "average" one
# ($6) covers only the last report interval, a few iterations at large sizes
# (it read 0.13 GB/s where the whole run moved 0.94).
ucx_gbps() {
  local test=$1 bytes=$2 rate iters mibps
  rate=$(( bytes <= 8192 ? 600000000 : (bytes <= 262144 ? 2000000000 : 4000000000) ))
  iters=$(awk -v s="$BENCH_SECONDS" -v r="$rate" -v b="$bytes" \
          'BEGIN {n = int(s * r / b); print (n < 20 ? 20 : (n > 1000000 ? 1000000 : n))}')
  mibps=$(ucx_final "$test" "$bytes" "$iters" | awk '{print $7}')
  [[ -n "$mibps" ]] || { echo "n/a"; return; }
  awk -v m="$mibps" 'BEGIN {printf "%.3f\n", m * 1048576 / 1e9}'
}

# tag_lat: "p50 p99 mean" one-way microseconds at `bytes` (two runs: perftest
# reports one percentile per run, -R, and only over its timing queue, the last
# 2048 iterations; the mean is its "overall" column, the whole run's time over
# its iterations, as tcpx-bench's mean is).
ucx_lat_us() {
  local bytes=${1:-8} p50 p99 mean iters
  iters=$(awk -v s="$BENCH_SECONDS" 'BEGIN {print int(s * 50000)}')
  read -r p50 mean < <(ucx_final tag_lat "$bytes" "$iters" -R 50 | awk '{print $3, $5}') || true
  p99=$(ucx_final tag_lat "$bytes" "$iters" -R 99 | awk '{print $3}')
  echo "${p50:-n/a} ${p99:-n/a} ${mean:-n/a}"
}
