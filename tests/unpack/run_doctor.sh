#!/bin/sh
# Runs tcpx-doctor with no TCPX settings and checks it declares the host ready
# (exit 0) with the built-in TCP plugin as the data path.
doctor="$1"
out=$(env -u TCPX_NET_PLUGIN -u NCCL_GPUDIRECTTCPX_SOCKET_IFNAME -u NCCL_GPUDIRECTTCPX_CTRL_DEV \
      "$doctor" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 0 ]; then
  echo "FAIL: tcpx-doctor exited $rc, expected 0" >&2
  exit 1
fi
if ! printf '%s\n' "$out" | grep -q "TCP fallback"; then
  echo "FAIL: the verdict does not mention the TCP fallback" >&2
  exit 1
fi
echo "PASS"
