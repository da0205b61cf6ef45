#!/usr/bin/env bash
# How long the disk itself took over a command: every block request issued while it ran,
# from the moment the kernel handed it to the device's driver to the device's answer
# (the block layer's `block_rq_issue` and `block_rq_complete` events), by kind of request.
# The time an `fdatasync` takes in a replica and not here is the guest's own: the system
# call's path, the virtual machine's exits, and waiting for a CPU.
#
# Kinds, in the kernel's letters: WS a synchronous write (the write-ahead log's bytes),
# WSM one of metadata (an inode's block), FF a cache flush (the durable part of each
# sync), W a write nobody waits for (a spare segment, a snapshot, written back). Flushes
# carry no sector, so they are paired in order of issue; a flush issued before the
# recording began is not counted.
#
# Needs root and perf.
#
# Usage: scripts/device_latency.sh COMMAND [ARGS...]
# e.g.   scripts/device_latency.sh target/release/kvsim --silence --durable configs/extra/high-load-50k.json
set -euo pipefail
if [ $# -eq 0 ]; then
    echo "usage: scripts/device_latency.sh COMMAND [ARGS...]" >&2
    exit 1
fi
DATA=$(mktemp -d)
trap 'rm -rf "$DATA"' EXIT
perf record -q -o "$DATA/perf.data" -e block:block_rq_issue -e block:block_rq_complete -a -- "$@"
perf script -i "$DATA/perf.data" -F time,event,trace 2>/dev/null | awk '
    # A line: "TIME: block:block_rq_issue: MAJ,MIN RWBS BYTES () SECTOR + N ..." or
    # "TIME: block:block_rq_complete: MAJ,MIN RWBS () SECTOR + N ...".
    {
        t = $1; sub(":", "", t); t += 0
        kind = $4
        if ($2 ~ /issue/) {
            if (kind ~ /^F/) { flushes[++issued] = t; next }
            at[$3, kind, $7] = t
        } else if (kind ~ /^F/) {
            if (answered < issued) { answered++; print kind, (t - flushes[answered]) * 1000 }
        } else if (($3, kind, $6) in at) {
            print kind, (t - at[$3, kind, $6]) * 1000
            delete at[$3, kind, $6]
        }
    }' | sort -k1,1 -k2,2n | awk '
    function report() {
        if (n == 0) return
        printf "%-4s %7d requests, ms p50 %.3f p90 %.3f p99 %.3f p99.9 %.3f max %.3f\n",
            kind, n, ms[int(n * 0.5) + 1], ms[int(n * 0.9) + 1], ms[int(n * 0.99) + 1],
            ms[int(n * 0.999) + 1], ms[n]
    }
    $1 != kind { report(); kind = $1; n = 0 }
    { ms[++n] = $2 }
    END { report() }'
