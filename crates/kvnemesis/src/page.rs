//! `--html FILE`: the run as one self-contained page, drawn by kvsim's report script
//! (`kvsim::report::html::foreign_page`) from the data made here out of the history: a lane per
//! node with who led (the node that acknowledged writes) and the faults as spans, every
//! operation by latency, throughput and latency over time, and each violation drawn as
//! its operations. Loss is listed in the summary, not drawn (kvsim has no span for it);
//! a majorities ring is drawn as a partition every node is on the majority side of.

use crate::analysis::Analysis;
use crate::history::{Event, Type};
use crate::operations::{Kind, Operation};
use crate::report::Summary;
use kvsim::checks::score::Check;
use kvsim::report::html::model::{
    Attempts, FaultSpan, RunData, VIOLATION_OPS_MAX, VIOLATIONS_DRAWN_MAX, ViolationOp,
    ViolationView, percentile,
};
use kvsim::report::html::{ForeignSummary, SCATTER_ATTEMPTS_MAX, Sampling, foreign_page};

/// Width of a bucket of the throughput and latency charts.
const BUCKET_US: u64 = 100_000;

/// The page of a run: `ops` are the history's operations, paired.
pub fn page(summary: &Summary, events: &[Event], ops: &[Operation], clients: usize) -> String {
    let a = &summary.analysis;
    let foreign = ForeignSummary {
        title: format!("kvnemesis, {} nodes", summary.nodes),
        description: format!(
            "{} s of clients and faults, then final reads; history {}",
            summary.time_s, summary.history
        ),
        seed: summary.seed,
        passed: summary.passed,
        checks: checks(summary),
        figures: figures(a),
    };
    foreign_page(&foreign, &run_data(summary, events, ops, clients))
}

fn checks(summary: &Summary) -> Vec<Check> {
    let f = &summary.analysis.findings;
    let check = |name: &'static str, failures: usize, what: &str| Check {
        name,
        passed: failures == 0,
        message: format!("{failures} {what}"),
        skipped: None,
    };
    vec![
        check(
            "lincheck",
            f.lincheck_violations.len(),
            "keys not linearizable",
        ),
        check(
            "second checker",
            f.second_checker_violations.len(),
            "keys not linearizable (todc-utils WGLChecker)",
        ),
        check("checkers agree", f.disagreements.len(), "disagreements"),
        check("decided", f.undecided.len(), "keys undecided"),
        check(
            "no lost writes",
            f.lost_writes.len(),
            "acknowledged writes lost",
        ),
        check(
            "no failed write visible",
            f.failed_writes_visible.len(),
            "failed writes read",
        ),
        check(
            "final reads",
            f.unread_keys.len(),
            "keys never read at the end",
        ),
        check(
            "no node died",
            summary.crashes.len(),
            "nodes died on their own",
        ),
    ]
}

fn figures(a: &Analysis) -> Vec<(&'static str, String)> {
    let o = &a.operations;
    let recovery: Vec<String> = a
        .availability
        .recovery_ms
        .iter()
        .map(|r| r.map_or("none".into(), |ms| format!("{ms:.0}")))
        .collect();
    let faults: Vec<String> = a
        .faults
        .iter()
        .map(|s| format!("{} ({})", s.fault, s.description))
        .collect();
    vec![
        (
            "operations (ok/fail/info)",
            format!("{} ({}/{}/{})", o.ops, o.ok, o.fail, o.info),
        ),
        (
            "reads/writes/deletes",
            format!("{}/{}/{}", a.reads, a.writes, a.deletes),
        ),
        (
            "ok during faults / without",
            format!(
                "{:.1}% / {:.1}%",
                a.availability.during_faults.ok_percent(),
                a.availability.without_faults.ok_percent()
            ),
        ),
        ("first write after each heal (ms)", recovery.join(" ")),
        ("faults", faults.join("; ")),
        (
            "keys checked",
            format!(
                "{} keys, {} operations",
                a.findings.keys, a.findings.checked_ops
            ),
        ),
    ]
}

fn run_data(summary: &Summary, events: &[Event], ops: &[Operation], clients: usize) -> RunData {
    let nodes = usize::from(summary.nodes_started);
    let us = |ns: u64| ns / 1_000;
    let end_us = events.last().map_or(0, |e| us(e.time)) + 1;
    let buckets = (end_us / BUCKET_US + 1) as usize;
    let bucket = |t_us: u64| ((t_us / BUCKET_US) as usize).min(buckets - 1);
    let mut ok_gets = vec![0u32; buckets];
    let mut ok_puts = vec![0u32; buckets];
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); buckets];
    // The node that acknowledged a write led then: its claims draw the leader lanes.
    let mut claims: Vec<[i64; 3]> = Vec::new();
    let mut last_leader = None;
    for op in ops {
        let Some(complete) = op.complete.filter(|_| op.outcome == Type::Ok) else {
            continue;
        };
        let (invoke, complete) = (us(op.invoke), us(complete));
        latencies[bucket(invoke)].push(u32::try_from(complete - invoke).unwrap_or(u32::MAX));
        let counts = if op.is_write() {
            &mut ok_puts
        } else {
            &mut ok_gets
        };
        counts[bucket(complete)] += 1;
        if let (true, Some(node)) = (op.is_write(), op.node)
            && last_leader != Some(node)
        {
            last_leader = Some(node);
            let r = i64::from(node) - 1;
            claims.push([complete as i64, r, r]);
        }
    }
    let (latency_p50_us, latency_p99_us) = latencies
        .iter_mut()
        .map(|l| {
            l.sort_unstable();
            (percentile(l, 0.50), percentile(l, 0.99))
        })
        .unzip();
    let requests_to_us = ops
        .iter()
        .filter(|o| o.is_final_read())
        .map(|o| us(o.invoke))
        .min()
        .unwrap_or(end_us);
    let (attempts, sampling) = attempts(ops, clients);
    let findings = &summary.analysis.findings;
    RunData {
        replicas: (1..=nodes).map(|i| format!("n{i}")).collect(),
        clients: (0..clients)
            .map(|c| c.to_string())
            .chain(["final".to_string()])
            .collect(),
        end_us,
        requests_from_us: 0,
        requests_to_us,
        bucket_us: BUCKET_US,
        types: Vec::new(),
        votes: vec![vec![0; buckets]; nodes],
        claims,
        sim_leader: Vec::new(),
        faults: summary
            .analysis
            .faults
            .iter()
            .flat_map(|s| fault_spans(&s.fault, &s.description, us(s.start), us(s.stop), nodes))
            .collect(),
        ok_gets,
        ok_puts,
        latency_p50_us,
        latency_p99_us,
        attempts,
        sampling,
        violations: findings
            .lincheck_violations
            .iter()
            .take(VIOLATIONS_DRAWN_MAX)
            .map(|v| violation_view(&v.key, &v.explanation, &v.invocations, ops, clients))
            .collect(),
        violations_total: findings.lincheck_violations.len(),
        stand_in: summary.unsafe_local_reads.then(|| {
            "Every node ran with --unsafe-local-reads (test only): followers answered GET from their own state, so reads were not linearizable on purpose.".to_string()
        }),
    }
}

/// Node indices named `nI` in `text`.
fn named(text: &str) -> Vec<usize> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| w.strip_prefix('n')?.parse::<usize>().ok())
        .filter(|&i| i >= 1)
        .map(|i| i - 1)
        .collect()
}

/// kvsim's spans for one fault, from its name and description.
fn fault_spans(fault: &str, description: &str, from: u64, to: u64, nodes: usize) -> Vec<FaultSpan> {
    let span =
        |kind: &'static str, replica: Option<usize>, majority: Option<Vec<usize>>| FaultSpan {
            kind,
            replica,
            majority,
            from_leader: None,
            from_us: from,
            to_us: Some(to),
        };
    let each = |kind: &'static str| {
        named(description)
            .into_iter()
            .map(|r| span(kind, Some(r), None))
            .collect()
    };
    // A replaced member is out of the cluster from its removal to its return.
    if fault.starts_with("kill") || fault.starts_with("member-replace") {
        return each("restart");
    }
    if fault.starts_with("pause") {
        return each("pause");
    }
    match fault {
        "partition-leader" | "partition-halves" => {
            let (a, b) = description.split_once('|').unwrap_or((description, ""));
            let (a, b) = (named(a), named(b));
            let majority = if a.len() > b.len() { a } else { b };
            vec![span("partition", None, Some(majority))]
        }
        "partition-ring" => vec![span("partition", None, Some((0..nodes).collect()))],
        "partition-one-way" => {
            let senders = named(description.split("-/->").next().unwrap_or(""));
            senders
                .into_iter()
                .map(|r| FaultSpan {
                    from_leader: Some(true),
                    ..span("one_way", Some(r), None)
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// One attempt per operation (the clients' retries inside an operation are not
/// recorded), at most about [`SCATTER_ATTEMPTS_MAX`]: past that, one in k.
fn attempts(ops: &[Operation], clients: usize) -> (Attempts, Sampling) {
    let step = ops.len().div_ceil(SCATTER_ATTEMPTS_MAX).max(1);
    let mut out = Attempts::default();
    for (i, op) in ops.iter().enumerate().step_by(step) {
        let invoke = op.invoke / 1_000;
        out.t.push(invoke);
        out.lat.push(match (op.outcome, op.complete) {
            (Type::Ok | Type::Fail, Some(c)) => (c / 1_000 - invoke) as i64,
            _ => -1,
        });
        out.put.push(u8::from(op.is_write()));
        out.reply.push(match op.outcome {
            Type::Ok => 0,
            Type::Fail => 2,
            _ => 3,
        });
        out.dst.push(op.node.map_or(-1, |n| i32::from(n) - 1));
        out.client.push(client_of(op, clients));
        out.req.push(i as u64);
        out.mid.push(format!("process {}", op.process));
        out.key.push(op.key.chars().take(8).collect());
    }
    let sampling = Sampling {
        attempts_total: ops.len(),
        attempts_shown: out.t.len(),
        method: if step > 1 {
            format!("one operation in {step}, in order")
        } else {
            String::new()
        },
    };
    (out, sampling)
}

/// The key's operations around a violation: the offending ones, and those nearest them
/// in invocation order up to [`VIOLATION_OPS_MAX`].
fn violation_view(
    key: &str,
    sentence: &str,
    offending: &[u64],
    ops: &[Operation],
    clients: usize,
) -> ViolationView {
    let of_key: Vec<&Operation> = ops
        .iter()
        .filter(|o| o.key == key && checkable(o))
        .collect();
    let first = of_key
        .iter()
        .position(|o| offending.contains(&o.invoke_index))
        .unwrap_or(0);
    let from = first.saturating_sub(VIOLATION_OPS_MAX / 4);
    let mut drawn: Vec<&Operation> = of_key
        .iter()
        .skip(from)
        .take(VIOLATION_OPS_MAX)
        .copied()
        .collect();
    for o in &of_key {
        if offending.contains(&o.invoke_index)
            && !drawn.iter().any(|d| d.invoke_index == o.invoke_index)
        {
            drawn.push(o);
        }
    }
    drawn.sort_by_key(|o| o.invoke);
    ViolationView {
        key: key.to_owned(),
        sentence: sentence.to_owned(),
        ops: drawn
            .iter()
            .map(|o| ViolationOp {
                client: client_of(o, clients),
                put: o.is_write(),
                value: match o.kind {
                    Kind::Read => o.value.clone().unwrap_or_default(),
                    _ => o.written().unwrap_or_default().to_owned(),
                },
                invoke_us: o.invoke / 1_000,
                response_us: o
                    .complete
                    .filter(|_| o.outcome == Type::Ok)
                    .map(|c| c / 1_000),
                minimal: offending.contains(&o.invoke_index),
            })
            .collect(),
        key_ops: of_key.len(),
    }
}

/// The client (thread) an operation's process belongs to, as the page lists them: a
/// client takes process `p + clients` after an `info`; the final reads come last.
fn client_of(op: &Operation, clients: usize) -> u32 {
    if op.is_final_read() {
        clients as u32
    } else {
        (op.process % clients as u64) as u32
    }
}

/// Whether the checkers take the operation: an ok read, or a write not known to fail.
fn checkable(o: &Operation) -> bool {
    match o.kind {
        Kind::Read => o.outcome == Type::Ok,
        _ => o.outcome != Type::Fail,
    }
}
