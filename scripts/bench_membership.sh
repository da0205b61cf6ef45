#!/usr/bin/env bash
# Membership change under load, on this machine: how long a node joining a durable
# 3-node cluster that holds KEYS keys takes to become a voter, and what writes see
# meanwhile against steady state.
#
#   1. `kvstore cluster --nodes 3 --spares 1` (durable); KEYS distinct keys written with
#      `redis-benchmark -t set -r 1000000000 -P 16` (random keys: a few collide);
#   2. steady: `redis-benchmark -t set -n WRITES -c 50 -P 1` on the leader;
#   3. the same benchmark again, and 1 s into it `CLUSTER ADDNODE` of the spare: the
#      time from ADDNODE's +OK... to CLUSTER MEMBERS showing the spare a voter (it
#      catches up by snapshot), and the benchmark's requests/s and p99 while it did.
#
# Prints `steady,...`, `during_add,...` (requests_per_s,p50_ms,p99_ms) and
# `add_to_voter_s,...`, plus DBSIZE. Needs redis-tools.
#
# Usage: scripts/bench_membership.sh [KEYS] [WRITES]   (from the repository's root, after
# `cargo build --release`)
set -euo pipefail
KEYS=${1:-1000000}
WRITES=${2:-200000}
KVSTORE=${KVSTORE:-$PWD/target/release/kvstore}
BASE=${BASE:-17401}
work=$(mktemp -d)
"$KVSTORE" cluster --nodes 3 --spares 1 --base-port "$BASE" --data-dir "$work" >"$work/log" 2>&1 &
supervisor=$!
cleanup() {
    kill -TERM "$supervisor" 2>/dev/null || true
    wait "$supervisor" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

leader() {
    for _ in $(seq 1 300); do
        for port in $BASE $((BASE + 1)) $((BASE + 2)) $((BASE + 3)); do
            if timeout 2 redis-cli -p "$port" INFO raft 2>/dev/null | grep -q 'raft_role:leader'; then
                echo "$port"
                return
            fi
        done
        sleep 0.1
    done
    echo "no leader" >&2
    exit 1
}

bench() { # requests_per_s,p50_ms,p99_ms of a SET run on the leader
    redis-benchmark -p "$1" -t set -n "$WRITES" -c 50 -P 1 -r 1000000000 --csv 2>/dev/null |
        awk -F'"' '/"SET"/ { print $4 "," $10 "," $14 }'
}

port=$(leader)
redis-benchmark -p "$port" -t set -n "$KEYS" -c 50 -P 16 -r 1000000000 -q >/dev/null 2>&1
echo "dbsize,$(redis-cli -p "$port" DBSIZE)"
echo "steady,$(bench "$port")"

add=$(grep -o 'CLUSTER ADDNODE .*' "$work/log")
(
    sleep 1
    started=$(date +%s.%N)
    until [ "$(redis-cli -c -p "$BASE" $add 2>/dev/null)" = "OK" ]; do sleep 0.05; done
    until redis-cli -p "$(leader)" CLUSTER MEMBERS | grep -q '^4 .* voter '; do sleep 0.05; done
    echo "add_to_voter_s,$(echo "$(date +%s.%N) - $started" | bc)"
) &
adder=$!
echo "during_add,$(bench "$port")"
wait "$adder"
redis-cli -p "$(leader)" CLUSTER MEMBERS | sed 's/^/members,/'
