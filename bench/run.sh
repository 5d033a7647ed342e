#!/usr/bin/env bash
# Runs tcpx-bench, tcpx-capi-bench and the baselines (bench/baselines.sh) on
# loopback in ROUNDS alternating rounds (each round: iperf3, tcpx, UCX, in
# turn), and prints the medians over the rounds as ratios (design section 7):
#   vs_ucx    = tcpx GB/s / ucx_perftest tag_bw GB/s at the same size (send,
#               write and read alike: UCX's two-sided figure is the bar)
#   vs_iperf3 = tcpx GB/s / iperf3 one stream (-l 1M)
#   latency   = tcpx-bench --latency p50 / ucx_perftest tag_lat p50, and the
#               same for the mean one-way latency over the whole run
# plus CPU seconds per GB on both sides, the C API figures and thread counts.
#
# Usage: bench/run.sh [BUILD_DIR] [--contended N] [--rounds R] [--pin] [--raw FILE]
#   --contended N  N CPU-bound processes run beside everything, the whole time
#   --pin          every server on CPU 1 and every client on CPU 0 (taskset),
#                  tcpx and baselines alike: one core per side, as on two
#                  hosts, instead of the scheduler placing 4 threads on 2 cores
#   --raw FILE     keep the raw per-round records there (bench/report.sh does)
# Env: SIZES (4K,64K,1M,16M,64M), MODES (send write read), WINDOW (32),
#      BENCH_SECONDS (1, per figure), LAT_SIZES (8), CAPI_SHAPES ("1000x4K
#      1000x64K"), UCX_ONESIDED=1 (also ucp_put_bw / ucp_get columns); TCPX_*
#      reach both tcpx processes (e.g. TCPX_EAGER_BYTES=0: no inline path).
# Needs: ./scripts/install-deps.sh --bench (iperf3, ucx-utils).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$here/../build rounds=3 contended=0 raw=""
pin_server=() pin_client=()  # command prefixes; baselines.sh uses them too
while (($#)); do
  case $1 in
    --contended) contended=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --raw) raw=$2; shift 2 ;;
    --pin) pin_server=(taskset -c 1) pin_client=(taskset -c 0); shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) build=$1; shift ;;
  esac
done
bench=$build/bin/tcpx-bench capi=$build/bin/tcpx-capi-bench
SIZES=${SIZES:-4K,64K,1M,16M,64M}
MODES=${MODES:-send write read}
WINDOW=${WINDOW:-32}
LAT_SIZES=${LAT_SIZES:-8}
CAPI_SHAPES=${CAPI_SHAPES:-1000x4K 1000x64K}
source "$here/baselines.sh"
for b in "$bench" "$capi"; do [[ -x $b ]] || { echo "no $b: build first" >&2; exit 2; }; done
command -v iperf3 >/dev/null && command -v ucx_perftest >/dev/null ||
  { echo "needs iperf3 and ucx_perftest: ./scripts/install-deps.sh --bench" >&2; exit 2; }
if ((${#pin_server[@]})) && { ! command -v taskset >/dev/null || (($(nproc) < 2)); }; then
  echo "--pin needs taskset and two CPUs" >&2
  exit 2
fi
export TCPX_LISTEN_ADDR=127.0.0.1

work=$(mktemp -d)
hogs=()
cleanup() {
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
raw=${raw:-$work/raw}
: >"$raw"
record() { echo "$round $*" >>"$raw"; }

# Starts `server_cmd...` with its output in $work/server, waits for the line
# that matches $ready_re, and sets server_pid and server_line.
start_server() {
  local ready_re=$1
  shift
  : >"$work/server"  # emptied here, not in the job: the last server's ready line must not count
  "${pin_server[@]}" timeout 900 "$@" >>"$work/server" 2>&1 &
  server_pid=$!
  server_line=""
  for _ in $(seq 200); do
    server_line=$(grep -m1 -E "$ready_re" "$work/server" || true)
    [[ -n $server_line ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "server did not start: $(cat "$work/server")" >&2
  return 1
}
# Gives the server 10 s to end after its client (one whose client failed to
# connect waits in accept), then stops it.
finish_server() {
  for _ in $(seq 200); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || echo "(server exit $?: $(tail -2 "$work/server"))" >&2
}

tcpx_client() {  # client args... -> its output; the server's port is ephemeral
  start_server 'port [0-9]+' "$bench" --server || return 0
  local port
  port=$(sed -E 's/.*\(port ([0-9]+)\).*/\1/' <<<"$server_line")
  "${pin_client[@]}" timeout 900 "$bench" --client "127.0.0.1:$port" "$@" || echo "tcpx-bench client failed ($*)" >&2
  finish_server
  grep '^threads:' "$work/server" | sed 's/^/server /'
}

tcpx_round() {
  local mode out
  for mode in $MODES; do
    out=$(tcpx_client --mode "$mode" --sizes "$SIZES" --window "$WINDOW" --seconds "$BENCH_SECONDS")
    # mode size GB/s transfers seconds window cpu_s/GB peer_cpu_s/GB
    awk -v m="$mode" '$1 == m {print m, $2, $3, $7, $8, $4, $5}' <<<"$out" |
      while read -r line; do record tcpx $line; done
    if [[ $round == 1 && $mode == "${MODES%% *}" ]]; then
      awk '/^threads:/ {$1 = ""; print "tcpx client" $0} /^server threads:/ {$1 = $2 = ""; print "tcpx server" $0}' \
        <<<"$out" >"$work/threads"
    fi
  done
  out=$(tcpx_client --latency --sizes "$LAT_SIZES" --seconds "$BENCH_SECONDS")
  # lat size p50 p99 mean
  awk '$1 == "lat" {print $2, $3, $4, $5}' <<<"$out" | while read -r line; do record tcpx lat $line; done
}

ucx_round() {
  local size bytes
  for size in ${SIZES//,/ }; do
    bytes=$(size_bytes "$size")
    record ucx tag_bw "$size" "$(ucx_gbps tag_bw "$bytes")"
    if [[ ${UCX_ONESIDED:-0} == 1 ]]; then
      record ucx put_bw "$size" "$(ucx_gbps ucp_put_bw "$bytes")"
      record ucx get "$size" "$(ucx_gbps ucp_get "$bytes")"
    fi
  done
  for size in ${LAT_SIZES//,/ }; do record ucx tag_lat "$size" $(ucx_lat_us "$(size_bytes "$size")"); done
}

capi_round() {
  local shape out fifo_done=0 args
  for shape in $CAPI_SHAPES; do
    start_server '^META ' "$capi" --server || continue
    args=(--descs "${shape%x*}" --desc-size "${shape#*x}")
    ((fifo_done)) && args+=(--fifo 1 --cold 1)  # the FIFO figures once per round
    out=$("${pin_client[@]}" timeout 300 "$capi" --client "${server_line#META }" "${args[@]}" 2>"$work/capi.err") ||
      echo "tcpx-capi-bench $shape failed: $(grep -v WARN "$work/capi.err" | tail -1)" >&2
    finish_server
    if ((!fifo_done)); then
      awk '/^capi fifo warm/ {print "fifo_warm -", $5, $8} /^capi fifo cold/ {print "fifo_cold -", $9, $12}' \
        <<<"$out" | while read -r line; do record capi $line; done
      fifo_done=1
    fi
    local w r s
    w=$(awk '/^capi write/ {print $4}' <<<"$out")
    r=$(awk '/^capi read/ {print $4}' <<<"$out")
    s=$(awk '/^capi send/ {print $4}' <<<"$out")
    record capi write "$shape" "${w:-n/a}"
    record capi read "$shape" "${r:-n/a}"
    record capi send "$shape" "${s:-n/a}"
    if [[ $round == 1 && $shape == "${CAPI_SHAPES%% *}" ]]; then
      grep '^capi client threads' <<<"$out" | sed 's/^capi client threads:/capi client/' >>"$work/threads" || true
      grep '^capi server threads' "$work/server" | sed 's/^capi server threads:/capi server/' >>"$work/threads" || true
    fi
  done
}

{
  echo "# host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
  # The commit the measured build was made from (its CMake source tree), not
  # this script's checkout: comparing an older build records the older one.
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$build/CMakeCache.txt" 2>/dev/null)
  echo "# commit: $(git -C "${src:-$here}" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "# rounds $rounds, contended $contended, window $WINDOW, $BENCH_SECONDS s per figure"
  ((${#pin_server[@]} == 0)) || echo "# pinned: every server on CPU 1, every client on CPU 0"
} >>"$raw"
for ((i = 0; i < contended; i++)); do
  sh -c 'while :; do :; done' &
  hogs+=($!)
done
((contended == 0)) || echo "# $contended CPU-bound processes running beside everything" >>"$raw"

for ((round = 1; round <= rounds; round++)); do
  echo "round $round/$rounds ..." >&2
  record iperf3 stream 1M "$(iperf3_gbps)"
  tcpx_round
  ucx_round
  capi_round
done
sed 's/^/# threads /' "$work/threads" >>"$raw"

"$here/summarize.sh" "$raw"
