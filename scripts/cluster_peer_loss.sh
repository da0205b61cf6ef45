#!/usr/bin/env bash
# Cluster mode with 5% of UDP packets lost on a 1,500-byte-MTU link: peer datagrams
# bounded at 1,400 bytes (the default) against the simulator's 60,000, which the link
# fragments (losing any fragment loses the datagram).
#
# Runs in a network namespace of its own (its loopback set to MTU 1,500, and an nftables
# ingress rule dropping 5% of UDP packets, fragments one by one), so nothing else on the
# machine is touched; client traffic (TCP) is not dropped. Each run: `kvstore cluster`
# (3 nodes, in memory, so the disk is not measured), then `redis-benchmark -t set -n N
# -c 50 -P 16` against the leader. Needs root, iproute2, nftables and redis-tools.
#
# Usage: scripts/cluster_peer_loss.sh [RUNS] [REQUESTS]   (from the repository's root,
# after `cargo build --release`)
set -euo pipefail
RUNS=${1:-3}
REQUESTS=${2:-20000}
KVSTORE=${KVSTORE:-$PWD/target/release/kvstore}
NS=kvstore-loss-$$
BASE=7001
ip netns add "$NS"
work=$(mktemp -d)
supervisor=
cleanup() {
    if [ -n "$supervisor" ]; then kill -TERM "$supervisor" 2>/dev/null || true; wait "$supervisor" 2>/dev/null || true; fi
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
in_ns() { ip netns exec "$NS" "$@"; }
in_ns ip link set lo up mtu 1500
# Loopback would carry a run of same-length datagrams (the replica sends them with UDP
# segmentation offload) as one packet, which a real NIC splits: one segment a packet, as
# on the wire, so the loss applies per datagram or per fragment.
in_ns ip link set dev lo gso_max_segs 1
in_ns nft -f - <<'RULES'
table netdev loss {
  chain ingress {
    type filter hook ingress device lo priority 0;
    ip protocol udp numgen random mod 100 < 5 counter drop
  }
}
RULES

leader() {
    for i in $(seq 0 200); do
        for port in $BASE $((BASE + 1)) $((BASE + 2)); do
            if in_ns timeout 2 redis-cli -p "$port" INFO raft 2>/dev/null | grep -q 'raft_role:leader'; then
                echo "$port"; return
            fi
        done
        sleep 0.1
    done
    echo "no leader" >&2; exit 1
}

echo "datagram_bytes,run,set_rps,p50_ms,p99_ms,udp_packets_dropped"
for run in $(seq 1 "$RUNS"); do
    for bytes in 1400 60000; do
        before=$(in_ns nft list ruleset | sed -n 's/.*packets \([0-9]*\).*/\1/p')
        # Not through in_ns: $! must be the supervisor itself (ip netns exec execs it).
        ip netns exec "$NS" env KVSTORE_PEER_DATAGRAM_BYTES="$bytes" "$KVSTORE" cluster --nodes 3 \
            --base-port $BASE --in-memory --data-dir "$work/run-$run-$bytes" >/dev/null &
        supervisor=$!
        port=$(leader)
        line=$(in_ns timeout 300 redis-benchmark -p "$port" -t set -n "$REQUESTS" -c 50 -P 16 -r 100000 --csv \
            | tr -d '"' | grep '^SET,')
        after=$(in_ns nft list ruleset | sed -n 's/.*packets \([0-9]*\).*/\1/p')
        kill -TERM "$supervisor"; wait "$supervisor" || true; supervisor=
        # SET,rps,avg,min,p50,p95,p99,max
        echo "$line" | awk -F, -v b="$bytes" -v r="$run" -v d="$((after - before))" \
            '{ printf "%s,%s,%.0f,%s,%s,%s\n", b, r, $2, $5, $7, d }'
    done
done
