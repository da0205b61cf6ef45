#!/usr/bin/env bash
# Where a durable run's late replies came from: each reply over a latency line (3 ms by
# default) is put in the first 200 ms of load, or in the 20 ms window its request started
# in, by how many replicas logged a slow sync (1 ms or more) in that window or the one
# before. With three or more slow in a cluster of five, no quorum was fast: the disk held
# everyone up. Late replies in windows with no slow sync waited for something else (the
# CPU the replicas share, a slow turn).
#
# Then the same replies counted by the half second of load they started in, and the run's
# p99 without every reply that was in flight during a window where three or more replicas
# synced slowly (late or not): what the run's tail would be had the disk not stalled for a
# quorum at once, the disk's counterpart of `kvsim --stall-probe`'s figure.
#
# Usage: scripts/late_replies.sh HISTORY.csv LOG_DIR [LINE_MS]
# where the run was
#   kvsim --silence --durable --env KV_DEBUG_LOG_DIR=LOG_DIR --history HISTORY.csv FILE
#
# Both clocks count from about kvsim's start (the replicas' from their own, a few ms
# later), close enough for 20 ms windows.
set -euo pipefail
HISTORY=${1:?usage: scripts/late_replies.sh HISTORY.csv LOG_DIR [LINE_MS]}
LOGS=${2:?usage: scripts/late_replies.sh HISTORY.csv LOG_DIR [LINE_MS]}
LINE_US=$(( ${3:-3} * 1000 ))
shopt -s nullglob
logs=("$LOGS"/*.log)
if [ ${#logs[@]} -eq 0 ]; then
    echo "late_replies: no *.log in $LOGS" >&2
    exit 1
fi
KEPT=$(mktemp)
trap 'rm -f "$KEPT"' EXIT
# Slow syncs: "<ms> slow sync: <us> us[, in the turn]", logged when the sync returned.
for log in "${logs[@]}"; do
    awk -v id="$(basename "$log" .log)" \
        '$2 == "slow" && $3 == "sync:" { end = $1 * 1000; print id, end - $4, end }' "$log"
done | awk -v line="$LINE_US" -v W=20000 -v kept="$KEPT" -F'[ ,]' '
    # Replicas with a slow sync in window w, counted once per window.
    function slow_in(w,    id, s) {
        if (w in memo) return memo[w]
        s = 0
        for (id in ids) if ((w, id) in slow) s++
        return memo[w] = s
    }
    FNR == NR { for (w = int($2 / W); w <= int($3 / W); w++) slow[w, $1] = 1; ids[$1] = 1; next }
    FNR == 1 { next }
    $6 == "" { next }
    {
        replies++
        invoke = $5 + 0
        if (first == "" || invoke < first) first = invoke
        if ($6 - invoke > line) late[++n] = invoke
        stalled = 0
        for (w = int(invoke / W); w <= int($6 / W) && !stalled; w++) stalled = slow_in(w) >= 3
        if (stalled) left_out++; else print $6 - invoke > kept
    }
    END {
        for (k = 1; k <= n; k++) {
            i = late[k]; w = int(i / W)
            if (i < first + 200000) { start++; continue }
            s = 0
            for (id in ids) if ((w, id) in slow || (w - 1, id) in slow) s++
            if (s >= 3) quorum++; else if (s >= 1) some++; else none++
        }
        printf "replies %d, over %d ms %d (1%% of replies is %d): first 200 ms %d; in windows with 3 or more replicas syncing slowly %d, 1 or 2 %d, none %d\n",
            replies, line / 1000, n, replies / 100, start, quorum, some, none
        last = -1
        for (k = 1; k <= n; k++) {
            b = int((late[k] - first) / 500000); half[b]++
            if (b > last) last = b
        }
        printf "over %d ms by the half second of load they started in (from 0):", line / 1000
        for (b = 0; b <= last; b++) if (b in half) printf " %d:%d", b, half[b]
        printf "\n"
        printf "in flight during a window with 3 or more replicas syncing slowly: %d replies; ", left_out
    }' /dev/stdin "$HISTORY"
sort -n "$KEPT" | awk '{ us[NR] = $1 } END {
    if (NR == 0) { print "no reply left"; exit }
    i = int(NR * 0.99); if (i < 1) i = 1
    printf "p99 without them %.3f ms\n", us[i] / 1000
}'
