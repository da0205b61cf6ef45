#!/usr/bin/env bash
# Cluster mode side by side with Redis and etcd on this machine, one system at a time:
#
#   redis-aof   Debian's redis-server, `appendonly yes`, `appendfsync always`: one durable
#               node that syncs before it answers, as our durable cluster does
#   redis-mem   redis-server without persistence: the protocol's in-memory ceiling here
#   kv-durable  `kvstore cluster`, 3 nodes, each on a data dir of its own
#   kv-memory   `kvstore cluster --in-memory`, 3 nodes
#   etcd        3 etcd members (Debian's etcd-server), each on a data dir of its own
#
# Redis and kvstore are driven by `redis-benchmark -t set,get -n N -c 50`, with -P 1 and
# -P 16, on the node that leads (kvstore's followers would answer MOVED). etcd speaks no
# RESP: `hey -c 50` drives its HTTP gateway (`/v3/kv/put`, `/v3/kv/range`, linearizable
# reads), 50 connections with one request outstanding on each, as `-c 50 -P 1`; HTTP/1.1
# has no pipelining, so etcd has no -P 16 row. Every system gets the same one key.
#
# Prints one CSV row per run: system,test,pipeline,run,requests_per_s,p50_ms,p99_ms.
# Needs redis-server, redis-tools, etcd-server and hey (Debian packages of those names).
#
# Usage: scripts/bench_against_redis_etcd.sh [RUNS] [REQUESTS]   (from the repository's
# root, after `cargo build --release`)
set -euo pipefail
RUNS=${1:-3}
REQUESTS=${2:-200000}
KVSTORE=${KVSTORE:-$PWD/target/release/kvstore}
BASE=${BASE:-17001}
work=$(mktemp -d)
pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
cleanup() {
    stop_all
    rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # a command that succeeds once the system serves
    for _ in $(seq 1 300); do
        if "$@" >/dev/null 2>&1; then return; fi
        sleep 0.1
    done
    echo "not serving: $*" >&2
    exit 1
}

kv_leader() {
    for _ in $(seq 1 300); do
        for port in $BASE $((BASE + 1)) $((BASE + 2)); do
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

redis_benchmark() { # system run port
    for pipeline in 1 16; do
        # CSV: "test","rps","avg","min","p50","p95","p99","max"
        redis-benchmark -p "$3" -t set,get -n "$REQUESTS" -c 50 -P "$pipeline" --csv \
            | tr -d '"' | grep -E '^(SET|GET),' \
            | awk -F, -v s="$1" -v p="$pipeline" -v r="$2" \
                '{ printf "%s,%s,%s,%s,%.0f,%s,%s\n", s, $1, p, r, $2, $5, $7 }'
    done
}

hey_row() { # system run test url body
    hey -n "$REQUESTS" -c 50 -m POST -T application/json -d "$5" "$4" >"$work/hey.txt"
    # Every answer a 200, and no errors: otherwise the figures would count failures.
    if grep -q 'Error distribution' "$work/hey.txt" || ! awk '
        /Status code distribution:/ { codes = 1; next }
        codes && /\[[0-9]+\]/ { seen = 1; if ($1 != "[200]") bad = 1 }
        END { exit !(seen && !bad) }' "$work/hey.txt"; then
        echo "hey: answers other than 200 from $4" >&2
        cat "$work/hey.txt" >&2
        exit 1
    fi
    awk -v s="$1" -v r="$2" -v t="$3" '
        /Requests\/sec:/ { rps = $2 }
        /  50% in / { p50 = $3 * 1000 }
        /  99% in / { p99 = $3 * 1000 }
        END { printf "%s,%s,1,%s,%.0f,%.3f,%.3f\n", s, t, r, rps, p50, p99 }
    ' "$work/hey.txt"
}

echo "system,test,pipeline,run,requests_per_s,p50_ms,p99_ms"
for run in $(seq 1 "$RUNS"); do
    for persistence in aof mem; do
        dir="$work/redis-$persistence-$run"
        mkdir -p "$dir"
        if [ "$persistence" = aof ]; then
            set -- --appendonly yes --appendfsync always
        else
            set -- --appendonly no
        fi
        redis-server --port "$BASE" --dir "$dir" --save '' "$@" >"$dir/log" 2>&1 &
        pids+=($!)
        wait_for redis-cli -p "$BASE" PING
        redis_benchmark "redis-$persistence" "$run" "$BASE"
        stop_all
    done

    for mode in durable memory; do
        dir="$work/kv-$mode-$run"
        flag=()
        if [ "$mode" = memory ]; then flag=(--in-memory); fi
        "$KVSTORE" cluster --nodes 3 --base-port "$BASE" --data-dir "$dir" "${flag[@]}" >/dev/null &
        pids+=($!)
        redis_benchmark "kv-$mode" "$run" "$(kv_leader)"
        stop_all
    done

    dir="$work/etcd-$run"
    cluster=""
    for i in 0 1 2; do
        cluster+="${cluster:+,}e$i=http://127.0.0.1:$((BASE + 100 + i))"
    done
    for i in 0 1 2; do
        etcd --name "e$i" --data-dir "$dir/e$i" \
            --listen-peer-urls "http://127.0.0.1:$((BASE + 100 + i))" \
            --initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 100 + i))" \
            --listen-client-urls "http://127.0.0.1:$((BASE + 200 + i))" \
            --advertise-client-urls "http://127.0.0.1:$((BASE + 200 + i))" \
            --initial-cluster "$cluster" --initial-cluster-state new \
            --initial-cluster-token "bench-$run" >"$work/etcd-$run-e$i.log" 2>&1 &
        pids+=($!)
    done
    url="http://127.0.0.1:$((BASE + 200))"
    # Base64 of "key" and "value": the gateway's JSON carries bytes so.
    put='{"key":"a2V5","value":"dmFsdWU="}'
    wait_for curl -sf -X POST -d "$put" "$url/v3/kv/put"
    # Through the leader, as kvstore's and Redis's are: a follower forwards each request.
    leader=$(python3 - "$BASE" <<'PY'
import json, sys, urllib.request
base = int(sys.argv[1])
for i in range(3):
    url = f"http://127.0.0.1:{base + 200 + i}"
    request = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}")
    status = json.load(urllib.request.urlopen(request, timeout=2))
    if status["leader"] == status["header"]["member_id"]:
        print(url)
        break
PY
)
    hey_row etcd "$run" SET "$leader/v3/kv/put" "$put"
    hey_row etcd "$run" GET "$leader/v3/kv/range" '{"key":"a2V5"}'
    stop_all
done
