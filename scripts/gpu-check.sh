#!/usr/bin/env bash
# The GPU checks in one go, for a host with an NVIDIA GPU (or a borrowed one):
# the unpack kernel against the CPU reference, the two-process GPU transfer
# tests through the bounce-buffer path (not the emulated ones), the unpack
# throughput next to cudaMemcpyAsync, tcpx-bench over loopback with host
# memory and then device memory on both sides (--mem cuda: receives through
# the bounce buffer and the unpack kernel), and tcpx-doctor. Any skipped GPU test
# counts as a failure here: on a GPU host a skip means something is wrong.
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
targets=(unpack_gpu_test engine_gpu_test engine_gpu_peer tcpx_unpack_bench tcpx-bench tcpx-doctor tcpx_net_tcp tcpx_cuda)

do_build() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTCPX_CUDA=ON
  cmake --build "$build" --target "${targets[@]}"
  # The CUDA runtime next to the binaries, for a GPU host without the toolkit.
  local rt
  rt=$(find /usr/local/cuda/lib64/ -maxdepth 1 -name 'libcudart.so.*' 2>/dev/null | sort | tail -1)
  [[ -n $rt ]] && cp -L "$rt" "$build/lib/"
  echo "built $build"
}

# One tcpx-bench pair on loopback: bench_pair MEM CLIENT_ARGS... (both sides MEM).
bench_pair() {
  local mem=$1 log port rc=0
  shift
  log=$(mktemp)
  TCPX_LISTEN_ADDR=127.0.0.1 timeout 120 "$build/bin/tcpx-bench" --server --mem "$mem" >"$log" 2>&1 &
  local server=$!
  for _ in $(seq 200); do grep -q 'port [0-9]' "$log" && break; sleep 0.05; done
  port=$(sed -nE 's/.*\(port ([0-9]+)\).*/\1/p' "$log")
  TCPX_LISTEN_ADDR=127.0.0.1 timeout 120 "$build/bin/tcpx-bench" --client "127.0.0.1:$port" --mem "$mem" "$@" \
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
  for t in unpack_gpu_test engine_gpu_test; do
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
  for mem in host cuda; do
    echo "== tcpx-bench, loopback, --mem $mem on both sides"
    # With device memory, each process also reports what its CUDA calls
    # cost (TCPX_CUDA_PROFILE), one line per run and side.
    [[ $mem == cuda ]] && export TCPX_CUDA_PROFILE=1
    bench_pair "$mem" --latency --sizes 8,4K,64K --seconds 0.5 || rc=1
    for mode in send read write; do
      bench_pair "$mem" --mode "$mode" --sizes 4K,64K,1M,16M,64M --seconds 0.5 || rc=1
    done
    unset TCPX_CUDA_PROFILE
  done
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
