#!/bin/bash
# A room's latency, quiet and while one user storms the server with /join or /pm
# (BENCHMARKS.md, "Storms"). Needs a release build and python3:
#   cargo build --release -p ex_messenger && apps/ex_messenger/scripts/storm-latency.sh [lines/s]
# The storming client's lines are paced (default 500/s) so that they pass its own outbox
# and reach the server, whose flood limit is the default (20/s, bursts of 40).
set -u
RATE=${1:-500}
B=${EX_MESSENGER:-$(dirname "$0")/../../../target/release/ex_messenger}
C=storm-$$-$RANDOM
ADDR=127.0.0.1:$((20000 + RANDOM % 20000))
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
"$B" server --listen "$ADDR" --cookie "$C" > "$WORK/server.log" 2>&1 &
sleep 1
for n in $(seq 1 10000); do echo "/join storm$n"; done > "$WORK/joins"
for n in $(seq 1 10000); do echo "/pm target x$n"; done > "$WORK/pms"
# Paces a file's lines at $RATE per second, then stays open.
pace() {
  python3 -c '
import sys, time
start, rate = time.time(), float(sys.argv[2])
for i, line in enumerate(open(sys.argv[1])):
    try:
        sys.stdout.write(line); sys.stdout.flush()
    except BrokenPipeError:
        sys.exit(0)
    time.sleep(max(0.0, start + (i + 1) / rate - time.time()))
time.sleep(60)' "$1" "$RATE"
}
(sleep 100000) | "$B" client -s "$ADDR" -n target --cookie "$C" > /dev/null 2>&1 &
bench() { "$B" bench -s "$ADDR" --cookie "$C" -n 20 -m 100 --rate 10 2>&1 | grep "^| 20 "; }
storm() { pace "$1" | "$B" client -s "$ADDR" -n "$2" --cookie "$C" > "$WORK/$2.out" 2>&1 & echo $!; }
echo "| while | clients | messages/client | rate/client | delivered | expected | seconds | delivered/s | p50 | p99 |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
echo "| quiet $(bench)"
P=$(storm "$WORK/joins" joiner); echo "| /join storm $(bench)"; kill "$P"
echo "  (the storming user: $(grep -c 'Joined the chatroom storm' "$WORK/joiner.out") rooms joined, $(grep -c 'slow down' "$WORK/joiner.out") slow-down lines)"
P=$(storm "$WORK/pms" pmer); echo "| /pm storm $(bench)"; kill "$P"
echo "  (the storming user: $(grep -c 'slow down' "$WORK/pmer.out") slow-down lines)"
