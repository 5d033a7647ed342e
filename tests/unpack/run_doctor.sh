#!/bin/sh
# run_doctor.sh DOCTOR EXPECTED_RC PATTERN [VAR=VALUE ...]
# Runs tcpx-doctor with the TCPX-related variables cleared and then set to
# the given values, and checks its exit status and that its output contains
# PATTERN (a fixed string). "@RXDM@" in a value becomes a fresh directory
# holding a fake RxDM socket (made with $MAKE_UNIX_SOCKET).
doctor="$1"; want_rc="$2"; pattern="$3"; shift 3
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
if [ -n "$MAKE_UNIX_SOCKET" ]; then
  "$MAKE_UNIX_SOCKET" "$tmp/get_gpu_fd_0000:04:00.0" || exit 1
fi
set_vars=""
for kv in "$@"; do
  set_vars="$set_vars $(printf '%s' "$kv" | sed "s#@RXDM@#$tmp#g")"
done
# shellcheck disable=SC2086  # the assignments are meant to split
out=$(env -u TCPX_NET_PLUGIN -u TCPX_CUDA_LIB -u NCCL_GPUDIRECTTCPX_UNIX_CLIENT_PREFIX \
      -u NCCL_GPUDIRECTTCPX_SOCKET_IFNAME -u NCCL_GPUDIRECTTCPX_CTRL_DEV -u NCCL_SOCKET_IFNAME \
      -u NCCL_DYNAMIC_CHUNK_SIZE \
      $set_vars "$doctor" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne "$want_rc" ]; then
  echo "FAIL: tcpx-doctor exited $rc, expected $want_rc" >&2
  exit 1
fi
if ! printf '%s\n' "$out" | grep -qF -- "$pattern"; then
  echo "FAIL: the output does not contain: $pattern" >&2
  exit 1
fi
echo "PASS"
