#!/usr/bin/env bash
# Installs what building and testing tcpx-p2p needs on Debian 12 (bookworm).
# The CUDA toolkit is optional and not installed here: when nvcc is present
# (/usr/local/cuda/bin/nvcc or on PATH) the CUDA parts are built too.
# With --bench it also installs the baselines the benchmarks compare against
# and gnuplot for bench/report.sh's plot;
# with --torch, Debian's CPU torch (large) for the Python tests that use
# tensors, which skip themselves without it.
set -euo pipefail
# clang + libclang-rt-dev: the decoder fuzzers (tests/fuzz); libFuzzer and the
# sanitizer runtimes are in libclang-rt-*-dev, which clang only recommends.
# libssl-dev: libcrypto (HMAC-SHA256, RAND_bytes) for the optional handshake
# authentication (src/engine/auth.h).
pkgs=(cmake ninja-build g++ make pkg-config binutils libgtest-dev libgmock-dev
      googletest libbenchmark-dev iproute2 procps clang libclang-rt-dev libssl-dev
      python3-dev pybind11-dev python3-pytest python3-numpy)
for opt in "$@"; do
  case $opt in
    --bench) pkgs+=(iperf3 ucx-utils gnuplot-nox) ;;
    --torch) pkgs+=(python3-torch) ;;
    *) echo "install-deps.sh: unknown option $opt (--bench, --torch)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then exit 0; fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
