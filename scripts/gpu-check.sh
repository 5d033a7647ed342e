#!/usr/bin/env bash
# The GPU checks in one go, for a host with an NVIDIA GPU (or a borrowed one):
# the unpack kernel against the CPU reference, the unpacker keeping results
# until their owners collect them, the two-process GPU transfer tests
# through the bounce-buffer path (not the emulated ones), a dozen
# connections receiving into GPU memory at once, the unpack
# throughput next to cudaMemcpyAsync, tcpx-bench over loopback with host
# memory and then with device memory (--mem cuda: receives through the bounce
# buffer and the unpack kernel), and tcpx-doctor. Any skipped GPU test
# counts as a failure here: on a GPU host a skip means something is wrong.
#
# Device memory goes on both sides, on GPUs 0 and 1, when the host has two.
# With one GPU it goes on the receiving side only (the server for send and
# write, the client for read, the client for latency): two processes that
# launch kernels in turn on one GPU pay a context switch each time (an empty
# kernel ping-ponged between two processes on an H200: 308 us per round trip,
# against 10 us without GPU work), which two hosts, or two GPUs, never see.
#
#   scripts/gpu-check.sh [build|run|all] [BUILD_DIR]     (default: all build-gpu)
#
# "build" needs the CUDA toolkit and the packages of install-deps.sh, but no
# GPU: build here, then copy BUILD_DIR to the GPU host (its lib/ also gets the
# CUDA runtime, so the GPU host needs only a driver) and "run" there. Output
# goes to stdout and, when $OUT is set, to $OUT/gpu-check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${1:-all}
build=${2:-build-gpu}
# The GPU test programs; any skip among them fails the check (do_run).
gpu_tests=(unpack_gpu_test cuda_unpacker_tickets_test engine_gpu_test many_connections_gpu_test)
targets=("${gpu_tests[@]}" engine_gpu_peer tcpx_unpack_bench tcpx-bench tcpx-doctor tcpx_net_tcp tcpx_cuda)

do_build() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTCPX_CUDA=ON
  cmake --build "$build" --target "${targets[@]}"
  # The CUDA runtime next to the binaries, for a GPU host without the toolkit.
  local rt
  rt=$(find /usr/local/cuda/lib64/ -maxdepth 1 -name 'libcudart.so.*' 2>/dev/null | sort | tail -1)
  [[ -n $rt ]] && cp -L "$rt" "$build/lib/"
  echo "built $build"
}

# One tcpx-bench pair on loopback:
#   bench_pair "SERVER_ARGS" CLIENT_ARGS...   (SERVER_ARGS: e.g. "--mem cuda --gpu 1")
bench_pair() {
  local server_args=$1 log port rc=0
  shift
  log=$(mktemp)
  # shellcheck disable=SC2086 # SERVER_ARGS is a word list
  TCPX_LISTEN_ADDR=127.0.0.1 timeout 120 "$build/bin/tcpx-bench" --server $server_args >"$log" 2>&1 &
  local server=$!
  for _ in $(seq 200); do grep -q 'port [0-9]' "$log" && break; sleep 0.05; done
  port=$(sed -nE 's/.*\(port ([0-9]+)\).*/\1/p' "$log")
  TCPX_LISTEN_ADDR=127.0.0.1 timeout 120 "$build/bin/tcpx-bench" --client "127.0.0.1:$port" "$@" \
    2>"$log.client" | grep -E '^(mode|lat|send|read|write) ' || { rc=1; cat "$log.client"; }
  wait "$server" || { rc=1; cat "$log"; }
  grep -h '^tcpx_cuda profile' "$log.client" | sed 's/^/client /' || true
  grep -h '^tcpx_cuda profile' "$log" | sed 's/^/server /' || true
  rm -f "$log" "$log.client"
  return $rc
}

do_run() {
  export LD_LIBRARY_PATH="$PWD/$build/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  local rc=0 log
  nvidia-smi -L || { echo "gpu-check: nvidia-smi found no GPU"; return 1; }
  for t in "${gpu_tests[@]}"; do
    echo "== $t"
    log=$(mktemp)
    timeout 300 "$build/bin/$t" 2>&1 | tee "$log" || rc=1
    if grep -q '\[  SKIPPED \]' "$log"; then echo "gpu-check: $t skipped tests on a GPU host"; rc=1; fi
    grep -q '\[  PASSED  \]' "$log" || rc=1
    rm -f "$log"
  done
  for layout in pages mixed; do
    echo "== tcpx_unpack_bench --layout $layout"
    timeout 120 "$build/bin/tcpx_unpack_bench" --layout "$layout" || rc=1
  done
  # Small jobs, from both kinds of bounce buffer: TCPX's (device memory) and
  # the built-in plugin's (mapped host memory, what --mem cuda below uses).
  for bounce in device host; do
    echo "== tcpx_unpack_bench --bounce $bounce, small chunks"
    timeout 120 "$build/bin/tcpx_unpack_bench" --bounce "$bounce" --sizes 8,4K,64K,512K || rc=1
  done
  # shellcheck disable=SC2054 # commas inside one argument
  local sizes=(--sizes 4K,64K,1M,16M,64M --seconds 0.5) lat=(--latency --sizes 8,4K,64K --seconds 0.5)
  echo "== tcpx-bench, loopback, host memory on both sides"
  bench_pair "--mem host" --mem host "${lat[@]}" || rc=1
  for mode in send read write; do bench_pair "--mem host" --mem host --mode "$mode" "${sizes[@]}" || rc=1; done
  # With device memory, each process also reports what its CUDA calls cost
  # (TCPX_CUDA_PROFILE), one line per run and side.
  export TCPX_CUDA_PROFILE=1
  if (($(nvidia-smi -L | grep -c '^GPU') >= 2)); then
    echo "== tcpx-bench, loopback, device memory on both sides (server GPU 1, client GPU 0)"
    local server="--mem cuda --gpu 1" client=(--mem cuda --gpu 0 --remote-gpu 1)
    bench_pair "$server" "${client[@]}" "${lat[@]}" || rc=1
    for mode in send read write; do bench_pair "$server" "${client[@]}" --mode "$mode" "${sizes[@]}" || rc=1; done
  else
    echo "== tcpx-bench, loopback, device memory on the receiving side (one GPU: see the header)"
    bench_pair "--mem host" --mem cuda "${lat[@]}" || rc=1
    bench_pair "--mem cuda" --mem host --mode send "${sizes[@]}" || rc=1
    bench_pair "--mem host" --mem cuda --mode read "${sizes[@]}" || rc=1
    bench_pair "--mem cuda" --mem host --mode write "${sizes[@]}" || rc=1
  fi
  unset TCPX_CUDA_PROFILE
  echo "== tcpx-doctor"
  timeout 60 "$build/bin/tcpx-doctor" || true
  echo "gpu-check: $([[ $rc == 0 ]] && echo PASS || echo FAIL)"
  return $rc
}

main() {
  case $stage in
    build) do_build ;;
    run) do_run ;;
    all) do_build && do_run ;;
    *) echo "usage: $0 [build|run|all] [BUILD_DIR]" >&2; return 2 ;;
  esac
}

if [[ -n ${OUT:-} ]]; then
  main 2>&1 | tee "$OUT/gpu-check.log"
  exit "${PIPESTATUS[0]}"
fi
main
