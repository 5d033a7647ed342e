#!/usr/bin/env bash
# run-conformance.sh PATH_TO_TEST_BINARY [GTEST_FILTER]
#
# Runs the ncclNet v7 conformance suite (net_conformance_test) with one
# process per test: Google's GPUDirect-TCPX plugin refuses a second init() in
# a process (error 3, "gpu lib init twice"), so a plugin must be loaded fresh
# for every test. Lists the tests with --gtest_list_tests, runs each with
# --gtest_filter=<that test> under `timeout`, and prints one line per test:
#
#   PASS <test>
#   SKIP <test>: <the reason the test gave>
#   FAIL <test> (<exit status or "timed out after N s">), followed by its output
#
# then "N passed, N failed, N skipped". Exits 1 when any test failed (or none
# ran), 0 otherwise. The environment passes through unchanged: TCPX_NET_PLUGIN
# picks the plugin, TCPX_CONFORMANCE_ROLE / _RENDEZVOUS the two-host mode
# (start the runner on both hosts with the same filter). Each test is bounded
# by TCPX_CONFORMANCE_TEST_TIMEOUT seconds (default 120).
set -u

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ ! -x "$1" ]; then
  echo "usage: $0 PATH_TO_TEST_BINARY [GTEST_FILTER]" >&2
  exit 2
fi
bin=$1
filter=${2:-*}
limit=${TCPX_CONFORMANCE_TEST_TIMEOUT:-120}

# --gtest_list_tests prints "Suite." lines and indented "  Test" lines (with a
# "  # GetParam() = ..." comment for parameterised tests).
listing=$("$bin" --gtest_list_tests "--gtest_filter=$filter") || {
  echo "FAIL: $bin --gtest_list_tests exited $?" >&2
  exit 1
}
tests=()
suite=""
while IFS= read -r line; do
  case "$line" in
    "  "*) name=${line#  }; tests+=("$suite${name%%  *}") ;;
    *.) suite=$line ;;
  esac
done <<< "$listing"
if [ ${#tests[@]} -eq 0 ]; then
  echo "FAIL: no test matches '$filter'" >&2
  exit 1
fi

passed=0 failed=0 skipped=0
out=$(mktemp) || exit 1
trap 'rm -f "$out"' EXIT
for t in "${tests[@]}"; do
  timeout --kill-after=10 "$limit" "$bin" "--gtest_filter=$t" >"$out" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ] && grep -qF "[  SKIPPED ] $t " "$out"; then
    # gtest prints "<file>:<line>: Skipped" and the message on the next line.
    reason=$(awk '/: Skipped$/ { getline; print; exit }' "$out")
    echo "SKIP $t: ${reason:-no reason given}"
    skipped=$((skipped + 1))
  elif [ "$rc" -eq 0 ] && grep -qF "[       OK ] $t " "$out"; then
    echo "PASS $t"
    passed=$((passed + 1))
  else
    case "$rc" in
      0) why="exit 0 but no OK line" ;;
      124 | 137) why="timed out after $limit s" ;;
      *) why="exit $rc" ;;
    esac
    echo "FAIL $t ($why); its output:"
    sed 's/^/    /' "$out"
    failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
