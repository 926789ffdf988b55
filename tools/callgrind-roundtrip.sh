#!/usr/bin/env bash
# User-space instructions per echo round trip, counted by valgrind's callgrind.
#
#   tools/callgrind-roundtrip.sh SERVER [SERVER ARGS]
#   e.g. tools/callgrind-roundtrip.sh build/bin/07-netpoller-coroutines --poller epoll
#
# Starts SERVER --port 0 [ARGS] under `valgrind --tool=callgrind`, waits for its
# ready line, warms up with WARMUP (default 1,000) 64-byte ping-pongs on one
# connection, zeroes the counters (callgrind_control -z), does ROUNDS (default
# 10,000) more, dumps the counters (callgrind_control -d), stops the server
# with SIGTERM (by its PID), and prints the dump's total instructions (Ir, from
# callgrind_annotate's PROGRAM TOTALS line) divided by ROUNDS, then the TOP
# (default 15) functions by their own instructions, also per round trip.
#
# Only the server's user-space instructions are counted: the kernel's work in
# read/write/epoll_wait is not (valgrind cannot see it). Server start-up and
# the warm-up are excluded by the zeroing. The client is Python; its speed does
# not matter, since its instructions are not counted.
# Under valgrind the server is about 50 times slower than the client, so the
# next ping often arrives before the server is back in epoll_wait: it finds
# the data at once, and the count would mix two paths in proportions that
# change from run to run (we saw 700-1,150 for the same binary). So by default
# (WAIT=1) the client, after each echo, waits until the server is blocked in
# epoll_wait/poll/select (read from /proc/PID/syscall, at most 100 ms): every
# round trip then takes the same path, the one a real ping-pong takes, with
# one wait for readiness. WAIT=0 pings back to back. The server's stats line
# (system calls over the whole run, warm-up included) is printed at the end.
# If callgrind_control cannot reach a server blocked in a system call, the
# client pings until the command has been handled; those extra round trips are
# printed, and the ones after the zeroing are counted too (0 on this machine).
# KEEP=1 keeps the dump and valgrind's log in /tmp (the path is printed).
# Needs: valgrind (apt-get install valgrind), python3.
set -euo pipefail

usage() { sed -n '2,/^[^#]/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
if [[ $# -lt 1 ]]; then usage >&2; exit 2; fi
if [[ $1 == -h || $1 == --help ]]; then usage; exit 0; fi
server=$1
shift
: "${WARMUP:=1000}" "${ROUNDS:=10000}" "${TOP:=15}" "${WAIT:=1}"
for tool in valgrind callgrind_control callgrind_annotate python3; do
    command -v "$tool" >/dev/null || { echo "callgrind-roundtrip: $tool not found (apt-get install valgrind python3)" >&2; exit 1; }
done
[[ -x $server ]] || { echo "callgrind-roundtrip: $server is not an executable" >&2; exit 1; }

work=$(mktemp -d /tmp/callgrind-roundtrip.XXXXXX)
pid=
cleanup() {
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    if [[ -n ${KEEP:-} ]]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

valgrind --tool=callgrind --log-file="$work/valgrind.log" --callgrind-out-file="$work/callgrind.out" \
    "$server" --port 0 "$@" >"$work/stdout" 2>"$work/stderr" &
pid=$!  # valgrind runs the server in its own process: this is the server's PID

# The ready line, "listening on HOST:PORT" (valgrind starts slowly: up to 60 s).
port=
for _ in $(seq 600); do
    if line=$(head -n 1 "$work/stdout" 2>/dev/null) && [[ $line == "listening on "* ]]; then port=${line##*:}; break; fi
    kill -0 "$pid" 2>/dev/null || { echo "callgrind-roundtrip: the server exited:" >&2; cat "$work/stderr" "$work/valgrind.log" >&2; exit 1; }
    sleep 0.1
done
[[ -n $port ]] || { echo "callgrind-roundtrip: no ready line within 60 s" >&2; exit 1; }

python3 - "$port" "$pid" "$WARMUP" "$ROUNDS" "$WAIT" <<'EOF'
import socket, subprocess, sys, time
port, pid, warmup, rounds, wait = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "1"
WAITING = {"7", "23", "232", "270", "281", "441"}  # x86-64: poll, select, epoll_wait, pselect6, epoll_pwait, epoll_pwait2
late = 0
msg = bytes(range(64))
s = socket.create_connection(("127.0.0.1", port), timeout=30)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

def ping():
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        chunk = s.recv(len(msg) - len(got))
        if not chunk:
            sys.exit("callgrind-roundtrip: the server closed the connection")
        got += chunk
    if got != msg:
        sys.exit("callgrind-roundtrip: wrong echo")
    if wait:
        global late
        end = time.monotonic() + 0.1
        while time.monotonic() < end:
            with open(f"/proc/{pid}/syscall") as f:
                if f.read().split(" ", 1)[0] in WAITING:
                    return
        late += 1

def control(flag):
    # callgrind_control talks to the server through vgdb; if the server sleeps
    # in epoll_wait and vgdb cannot interrupt it, a ping wakes it up.
    p = subprocess.Popen(["callgrind_control", flag, pid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    extra = 0
    while True:
        try:
            p.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            ping()
            extra += 1
    if p.returncode != 0:
        sys.exit(f"callgrind-roundtrip: callgrind_control {flag} failed ({p.returncode})")
    return extra

for _ in range(warmup):
    ping()
extra_zero = control("-z")
for _ in range(rounds):
    ping()
extra_dump = control("-d")
print(f"warm-up {warmup}, measured {rounds} round trips of 64 bytes on one connection; "
      f"extra pings to deliver the commands: {extra_zero} (zero), {extra_dump} (dump)"
      + (f"; waited for the server to block after each echo (gave up after 100 ms: {late} times)" if wait else ""))
s.close()
EOF

dump=$(find "$work" -name 'callgrind.out.*' | head -n 1)
kill -TERM "$pid"
wait "$pid" || true
pid=
[[ -n $dump ]] || { echo "callgrind-roundtrip: no dump file in $work" >&2; exit 1; }

total=$(callgrind_annotate "$dump" 2>/dev/null | grep -m 1 'PROGRAM TOTALS' | awk '{print $1}' | tr -d ,)
[[ -n $total ]] || { echo "callgrind-roundtrip: no PROGRAM TOTALS in callgrind_annotate's output" >&2; exit 1; }
echo "server: $server $*"
echo "server's $(grep -m 1 '^stats:' "$work/stderr" || echo 'stats: (none)')"
awk -v t="$total" -v n="$ROUNDS" 'BEGIN { printf "user-space instructions (Ir): %d in total, %.0f per round trip\n", t, t / n }'
echo "top $TOP functions by own instructions (inlined code counted with the function it is inlined into), per round trip:"
# callgrind_annotate prints "Ir (pct)  file:function [object]" lines after the header that names
# the columns. The "(below main)" chain shows the whole total (100.0%) after a zeroing: skipped.
callgrind_annotate --inclusive=no --threshold=100 --auto=no "$dump" 2>/dev/null |
awk -v n="$ROUNDS" '
    /file:function/ { on = 1; next }
    on && /^-+$/ && seen { exit }
    on && $1 ~ /^[0-9,]+$/ && $2 != "(100.0%)" {
        ir = $1; gsub(",", "", ir)
        line = $0; sub(/^[ \t]*[0-9,]+[ \t]+(\([^)]*\)[ \t]+)?/, "", line)
        sub(/^[^:]*:/, "", line)           # the source file: inlined lines name the header they come from
        sub(/ \[[^]]*\]$/, "", line)     # the object file
        cost[line] += ir; seen = 1
    }
    END { for (f in cost) printf "%8.1f  %s\n", cost[f] / n, substr(f, 1, 150) }' |
sort -k1,1 -rn | head -n "$TOP"
