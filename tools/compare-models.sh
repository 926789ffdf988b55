#!/usr/bin/env bash
# tools/compare-models.sh [OUTPUT]: writes the behaviour matrix, docs/comparison.md
# (or OUTPUT, relative to the repository root).
#
# Builds the default preset, then runs the contract suite
# (tests/contract/contract_test.cpp) against every chapter's server with
# COMPARISON_MD set. That makes the suite run its heavy measurements as well
# (10,000 connections per model, idle CPU over 1 s; CI skips them) and write
# what it measured as a table: one row per model, one column per property,
# with the date, the machine and this command on top. The table is written
# even when a test fails; its cell is then marked ✗ and the exit status is 1.
# About a minute on 2 cores. The counts are much the same on any machine; the
# CPU and memory figures are this machine's: run it when the machine is quiet.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
out=${1:-docs/comparison.md}

cmake --preset default >/dev/null
cmake --build --preset default

# 10,000 client sockets in the test process and 10,100 descriptors for the
# server: the tests raise their limits up to the hard limit, which must allow it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if (($(ulimit -n) < 10100)); then
    echo "compare-models: the open-file limit is $(ulimit -n) (hard); 10,100 are needed for 10,000 connections" >&2
    echo "compare-models: the connection tests will fail; raise it (e.g. in /etc/security/limits.conf)" >&2
fi

status=0
COMPARISON_MD=$out COMPARISON_COMMAND="tools/compare-models.sh${1:+ $1}" \
    build/bin/contract_test --gtest_filter='Contract/*' --gtest_brief=1 || status=$?
echo "compare-models: the table is in $out$( ((status)) && echo ' (some tests failed: see its Failures section)')"
exit "$status"
