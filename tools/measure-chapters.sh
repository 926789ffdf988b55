#!/usr/bin/env bash
# Re-runs every measurement quoted in the chapter READMEs (about 8 minutes on 2 cores).
# Build first (tools/course build); run on a quiet machine; the output is what
# docs/measurements/ holds.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
B=build/bin
run() { echo "== $*"; "$@"; }
{
run $B/io-cost $B/02-nonblocking-spin --idle-cpu 3
for b in 100 1000 10000; do run $B/io-cost $B/02-nonblocking-spin --idle-cpu 3 -- --backoff-us $b; done
for s in "01-blocking --threads" 03-select 04-poll 05-epoll-lt 06-epoll-et; do
    set -- $s; run $B/io-cost $B/$1 --idle-cpu 3 ${2:+-- $2}  # the sleeping servers: ~0% CPU
done
run $B/io-cost $B/02-nonblocking-spin --idle 0,10,100,1000
for b in 100 1000 10000; do run $B/io-cost $B/02-nonblocking-spin --idle 0 --round-trips 2000 -- --backoff-us $b; done
run $B/io-cost $B/01-blocking --idle 0,10,100,1000 -- --threads
run $B/io-cost $B/03-select --idle 0,10,100,1000
run $B/io-cost $B/04-poll --idle 0,10,100,1000,10000
run $B/io-cost $B/05-epoll-lt --idle 0,10,100,1000,10000
run $B/io-cost $B/06-epoll-et --idle 0,10,100,1000,10000
run $B/syscall-counts $B/01-blocking,--threads $B/02-nonblocking-spin $B/03-select $B/04-poll $B/05-epoll-lt $B/06-epoll-et
run $B/syscall-counts --clients 2 --rounds 20 --size 1048576 $B/05-epoll-lt $B/06-epoll-et
# Chapter 07 (docs/measurements/2026-11-24-chapter-07.txt has more: repeated runs, memory, callgrind).
run $B/io-cost $B/07-netpoller-coroutines --idle 0,10,100,1000,10000
run $B/conn-memory $B/07-netpoller-coroutines --counts 1000,10000
run tools/callgrind-roundtrip.sh $B/07-netpoller-coroutines
}
