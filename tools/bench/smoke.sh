#!/usr/bin/env bash
# ctest smoke test of the benchmark tools: every tcpx-bench mode and
# tcpx-capi-bench run briefly on loopback, exit 0, and print the lines
# bench/run.sh parses. Checks formats and exit codes only, never speed.
# With a third argument, the stand-in CUDA library of tests/gpu, tcpx-bench
# also runs --mem cuda on both sides over it (its "device" memory is host
# memory, so this checks the bench's device-memory plumbing, not a GPU).
# Usage: smoke.sh TCPX_BENCH TCPX_CAPI_BENCH [EMULATED_CUDA_LIB]
set -euo pipefail
bench=$1 capi=$2 emulated_cuda=${3:-}
export TCPX_LISTEN_ADDR=127.0.0.1
log=$(mktemp)
server_pid=""
trap 'rm -f "$log"; [[ -z $server_pid ]] || kill "$server_pid" 2>/dev/null || true' EXIT

serve() {  # ready_regex server_cmd...: starts it, sets server_pid and server_line
  local re=$1
  shift
  : >"$log"  # emptied here, not in the job: the last server's ready line must not count
  timeout 120 "$@" >>"$log" 2>&1 &
  server_pid=$!
  for _ in $(seq 400); do
    server_line=$(grep -m1 -E "$re" "$log" || true)
    [[ -n $server_line ]] && return 0
    sleep 0.05
  done
  echo "server did not start: $(cat "$log")" >&2
  exit 1
}

expect() {  # regex text: fails the test when no line matches
  grep -qE "$1" <<<"$2" || { echo "no line matching '$1' in:"; echo "$2"; exit 1; } >&2
}

for mode in send write read latency; do
  serve 'port [0-9]+' "$bench" --server
  port=$(sed -E 's/.*\(port ([0-9]+)\).*/\1/' <<<"$server_line")
  args=(--mode "$mode" --sizes 4K,1M)
  [[ $mode == latency ]] && args=(--latency --sizes 8,4K)
  out=$(timeout 120 "$bench" --client "127.0.0.1:$port" "${args[@]}" --seconds 0.1 --warmup 0.05)
  wait "$server_pid"
  server_pid=""
  expect '^threads: [0-9]+ before the endpoint' "$out"
  if [[ $mode == latency ]]; then
    expect '^lat +8 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[1-9][0-9]* ' "$out"
  else
    expect "^$mode +4K +[0-9.]+ +[1-9][0-9]* +[0-9.]+ +32 +[0-9.]+ +[0-9.]+$" "$out"
    expect "^$mode +1M " "$out"
  fi
done

if [[ -n $emulated_cuda ]]; then
  for mode in send read latency; do
    serve 'port [0-9]+' env TCPX_CUDA_LIB="$emulated_cuda" "$bench" --server --mem cuda
    port=$(sed -E 's/.*\(port ([0-9]+)\).*/\1/' <<<"$server_line")
    args=(--mode "$mode" --sizes 4K,1M)
    [[ $mode == latency ]] && args=(--latency --sizes 8,64K)
    out=$(TCPX_CUDA_LIB="$emulated_cuda" timeout 120 "$bench" --client "127.0.0.1:$port" --mem cuda "${args[@]}" \
          --seconds 0.1 --warmup 0.05)
    wait "$server_pid"
    server_pid=""
    expect '^memory: cuda, GPU 0$' "$out"
    expect '^memory: cuda, GPU 0$' "$(cat "$log")"
    if [[ $mode == latency ]]; then
      expect '^lat +64K +[0-9.]+ +[0-9.]+ +[0-9.]+ +[1-9][0-9]* ' "$out"
    else
      expect "^$mode +1M +[0-9.]+ +[1-9][0-9]* " "$out"
    fi
  done
fi

serve '^META ' "$capi" --server
out=$(timeout 120 "$capi" --client "${server_line#META }" --descs 20 --desc-size 4K --rounds 1 --fifo 20 --cold 2 \
      --gap-ms 5)
wait "$server_pid"
server_pid=""
expect '^capi server threads: ' "$(cat "$log")"
for re in '^capi client threads: ' '^capi fifo warm: median [0-9.]+ us p99 [0-9.]+' \
          '^capi fifo cold .*: median [0-9.]+ us p99 [0-9.]+' '^capi write 20x4K: [0-9.]+ GB/s' \
          '^capi read 20x4K: [0-9.]+ GB/s' '^capi send 1x80K: [0-9.]+ GB/s' \
          '^capi phases write 20x4K: md vector and FIFO items [0-9]+ us, posting [0-9]+ us, completion [0-9]+ us' \
          '^capi phases read 20x4K: md vector and FIFO items [0-9]+ us'; do
  expect "$re" "$out"
done
echo "benchmark tools: ok"
