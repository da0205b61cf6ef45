//! What a run's page draws, made at the end of the run from the timeline, the clients'
//! history and the linearizability report, and embedded in the page as JSON. Times are
//! µs since kvsim started, replicas and clients are indices (their IDs are listed once).
//!
//! Everything counted (throughput, latency percentiles, messages) is made from every
//! attempt; only the scatter of attempts is sampled (`sample`), and it says how.

use serde::Serialize;

use super::sample::{self, Sampling};
use crate::checks::linearizability::LinReport;
use crate::clients::{Clients, Reply};
use crate::measure::timeline::{FaultKind, Timeline};
use crate::scenario::config::Config;

/// Violations drawn on a page; the rest are listed in the text summary and `--json`.
pub const VIOLATIONS_DRAWN_MAX: usize = 5;
/// Operations of a key drawn around a violation: the offending ones and those nearest them.
pub const VIOLATION_OPS_MAX: usize = 40;
/// Characters of a key or a value shown beside a mark (the whole is in its tooltip).
const SHORT_CHARS: usize = 8;

#[derive(Debug, Clone, Serialize)]
pub struct RunData {
    pub replicas: Vec<String>,
    pub clients: Vec<String>,
    /// The run's end, and the request window (from the end of the start wait to the last
    /// request scheduled).
    pub end_us: u64,
    pub requests_from_us: u64,
    pub requests_to_us: u64,
    pub bucket_us: u64,
    pub types: Vec<TypeSeries>,
    /// Per replica, vote requests per bucket.
    pub votes: Vec<Vec<u32>>,
    /// `[at_us, replica, leader]`; leader -1: none known, -2: not a replica of this run.
    pub claims: Vec<[i64; 3]>,
    /// `[at_us, leader]` of the simulator's own idea of the leader (-1: none).
    pub sim_leader: Vec<[i64; 2]>,
    pub faults: Vec<FaultSpan>,
    /// `ok` replies per bucket (by reply time), gets and puts.
    pub ok_gets: Vec<u32>,
    pub ok_puts: Vec<u32>,
    /// Per bucket (by send time), the median and 99th percentile latency of the attempts
    /// answered, in µs (-1: none answered).
    pub latency_p50_us: Vec<i64>,
    pub latency_p99_us: Vec<i64>,
    pub attempts: Attempts,
    pub sampling: Sampling,
    pub violations: Vec<ViolationView>,
    pub violations_total: usize,
    /// Said plainly at the top of the page when a stand-in ran.
    pub stand_in: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeSeries {
    pub name: String,
    pub vote_request: bool,
    pub total: u64,
    pub counts: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FaultSpan {
    /// `kill`, `died`, `pause`, `restart`, `partition` or `one_way`.
    pub kind: &'static str,
    pub replica: Option<usize>,
    /// A partition's sides: `majority` holds the replicas of the first.
    pub majority: Option<Vec<usize>>,
    /// A one-way cut: `true` when the replica's messages are lost, `false` when it hears
    /// nobody.
    pub from_leader: Option<bool>,
    pub from_us: u64,
    pub to_us: Option<u64>,
}

/// The attempts drawn in the scatter, one column per field (a compact JSON).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Attempts {
    /// Sent at, µs.
    pub t: Vec<u64>,
    /// Latency to its reply, µs; -1: unanswered.
    pub lat: Vec<i64>,
    /// 1 for a put, 0 for a get.
    pub put: Vec<u8>,
    /// 0 ok, 1 redirect, 2 fail, 3 unanswered.
    pub reply: Vec<u8>,
    /// Replica sent to; -1: none alive.
    pub dst: Vec<i32>,
    pub client: Vec<u32>,
    /// The request it belongs to (its retries share it).
    pub req: Vec<u64>,
    pub mid: Vec<String>,
    /// The key's first characters.
    pub key: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViolationView {
    pub key: String,
    pub sentence: String,
    /// The key's operations drawn, by invocation.
    pub ops: Vec<ViolationOp>,
    /// How many operations the key has in all.
    pub key_ops: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct ViolationOp {
    pub client: u32,
    pub put: bool,
    pub value: String,
    pub invoke_us: u64,
    /// `None`: a put whose outcome is unknown (no `ok`).
    pub response_us: Option<u64>,
    /// One of the smallest set that cannot be ordered.
    pub minimal: bool,
}

impl RunData {
    pub fn new(
        cfg: &Config,
        timeline: &Timeline,
        clients: &Clients,
        lin: &LinReport,
        end_us: u64,
        stand_in: Option<String>,
    ) -> RunData {
        let n = timeline.votes.len();
        let buckets = timeline
            .buckets()
            .max((end_us / timeline.bucket_us + 1) as usize);
        let bucket = |us: u64| ((us / timeline.bucket_us) as usize).min(buckets - 1);
        let mut ok_gets = vec![0u32; buckets];
        let mut ok_puts = vec![0u32; buckets];
        let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); buckets];
        for a in clients.attempt_records() {
            let Some(response) = a.op.response_us else {
                continue;
            };
            let latency = response.saturating_sub(a.op.invoke_us);
            latencies[bucket(a.op.invoke_us)].push(u32::try_from(latency).unwrap_or(u32::MAX));
            if a.reply == Reply::Ok {
                let counts = if a.op.get { &mut ok_gets } else { &mut ok_puts };
                counts[bucket(response)] += 1;
            }
        }
        let (latency_p50_us, latency_p99_us) = latencies
            .iter_mut()
            .map(|l| {
                l.sort_unstable();
                (percentile(l, 0.50), percentile(l, 0.99))
            })
            .unzip();
        let index = |id: raft::NodeId| -> i64 {
            if id == raft::NodeId::UNKNOWN {
                -1
            } else if usize::from(id.0) < n {
                i64::from(id.0)
            } else {
                -2
            }
        };
        let start_us = (cfg.start_wait_s * 1e6) as u64;
        let (attempts, sampling) = sample::attempts(clients, sample::SCATTER_ATTEMPTS_MAX);
        RunData {
            replicas: (0..n).map(|r| raft::NodeId(r as u16).to_string()).collect(),
            clients: (0..clients.len() as u32)
                .map(|c| clients.client_id(c).to_string())
                .collect(),
            end_us,
            requests_from_us: start_us,
            requests_to_us: start_us + (cfg.lifetime_s * 1e6) as u64,
            bucket_us: timeline.bucket_us,
            types: timeline
                .types
                .iter()
                .map(|t| {
                    let mut counts = t.per_bucket.clone();
                    counts.resize(buckets, 0);
                    TypeSeries {
                        name: t.name.clone(),
                        vote_request: t.vote_request,
                        total: counts.iter().map(|&c| u64::from(c)).sum(),
                        counts,
                    }
                })
                .collect(),
            votes: timeline
                .votes
                .iter()
                .map(|v| {
                    let mut v = v.clone();
                    v.resize(buckets, 0);
                    v
                })
                .collect(),
            claims: timeline
                .claims
                .iter()
                .map(|c| [c.at_us as i64, c.replica as i64, index(c.leader)])
                .collect(),
            sim_leader: timeline
                .sim_leader
                .iter()
                .map(|&(at, l)| [at as i64, l.map_or(-1, |l| l as i64)])
                .collect(),
            faults: timeline.faults.iter().map(fault_span).collect(),
            ok_gets,
            ok_puts,
            latency_p50_us,
            latency_p99_us,
            attempts,
            sampling,
            violations: lin
                .violations
                .iter()
                .take(VIOLATIONS_DRAWN_MAX)
                .map(|v| violation_view(v, clients))
                .collect(),
            violations_total: lin.violations.len(),
            stand_in,
        }
    }
}

/// Nearest rank, as `stats::Percentiles`; -1 for none.
pub fn percentile(sorted: &[u32], q: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    i64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn fault_span(f: &crate::measure::timeline::Fault) -> FaultSpan {
    let (kind, replica, majority, from_leader) = match &f.kind {
        FaultKind::Kill { replica } => ("kill", Some(*replica), None, None),
        FaultKind::Died { replica } => ("died", Some(*replica), None, None),
        FaultKind::Pause { replica } => ("pause", Some(*replica), None, None),
        FaultKind::Restart { replica } => ("restart", Some(*replica), None, None),
        FaultKind::Partition { majority } => ("partition", None, Some(majority.clone()), None),
        FaultKind::OneWay {
            replica,
            from_leader,
        } => ("one_way", Some(*replica), None, Some(*from_leader)),
    };
    FaultSpan {
        kind,
        replica,
        majority,
        from_leader,
        from_us: f.from_us,
        to_us: f.to_us,
    }
}

pub(super) fn short(text: &str) -> String {
    text.chars().take(SHORT_CHARS).collect()
}

/// The key's operations around the offending ones: all of them when there are few, else
/// the offending ones and those whose windows are nearest theirs.
pub(super) fn violation_view(
    v: &crate::checks::linearizability::LinViolation,
    clients: &Clients,
) -> ViolationView {
    let op_of = |i: usize| {
        let h = &clients.history[i];
        ViolationOp {
            client: h.client,
            put: !h.get,
            value: clients.values[h.value as usize].clone(),
            invoke_us: h.invoke_us,
            response_us: if h.acked { h.response_us } else { None },
            minimal: v.minimal.contains(&i),
        }
    };
    let mut ops: Vec<ViolationOp> = v.history.iter().map(|&i| op_of(i)).collect();
    if ops.len() > VIOLATION_OPS_MAX {
        let from = ops
            .iter()
            .filter(|o| o.minimal)
            .map(|o| o.invoke_us)
            .min()
            .unwrap_or(0);
        let to = ops
            .iter()
            .filter(|o| o.minimal)
            .map(|o| o.response_us.unwrap_or(o.invoke_us))
            .max()
            .unwrap_or(0);
        // Distance from the offending window; the offending ones are at 0 and stay.
        let distance = |o: &ViolationOp| {
            if o.minimal {
                return 0;
            }
            let end = o.response_us.unwrap_or(u64::MAX);
            if end < from {
                from - end + 1
            } else if o.invoke_us > to {
                o.invoke_us - to + 1
            } else {
                1
            }
        };
        ops.sort_by_key(distance);
        ops.truncate(VIOLATION_OPS_MAX);
    }
    ops.sort_by_key(|o| o.invoke_us);
    ViolationView {
        key: v.key.clone(),
        sentence: v.explanation.clone(),
        ops,
        key_ops: v.history.len(),
    }
}
