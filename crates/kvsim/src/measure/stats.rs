//! What a run counts: the classic statistics, plus our own figures.

use serde::Serialize;

use crate::measure::memory::Memory;
use crate::measure::throughput::CommitRate;

/// The classic simulator's statistics, under its names.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Replica-to-replica messages sent (a broadcast counts `replicas - 1`, drops included).
    pub total_msgs: u64,
    pub total_drops: u64,
    /// Datagrams the kernel refused because the replica's socket buffer was full.
    pub blocked: u64,
    /// Requests the schedule asked for (retries not included).
    pub generated_get: u64,
    pub generated_put: u64,
    /// Scheduled gets that became puts because the client had no key yet.
    pub failed_to_generate_get: u64,
    /// Requests actually sent, retries included.
    pub total_get: u64,
    pub total_put: u64,
    pub failed_get: u64,
    pub failed_put: u64,
    pub unanswered_get: u64,
    pub unanswered_put: u64,
    pub incorrect: u64,
    pub duplicates: u64,
    /// Redirects plus fails (the classic counts both here).
    pub redirects: u64,
    pub died: u64,
    pub killed: u64,
    /// The `leader` values seen, each change once.
    pub leaders: Vec<String>,
    /// Time from a request's creation to its reply, for every reply, in seconds.
    #[serde(skip)]
    pub latencies_s: Vec<f64>,
    pub mean_latency: f64,
    pub median_latency: f64,
    /// Fails plus unanswered requests.
    pub failures: u64,
}

impl Stats {
    pub fn add_leader(&mut self, leader: &str) {
        if self.leaders.last().map(String::as_str) != Some(leader) {
            self.leaders.push(leader.to_string());
        }
    }

    /// Sorts the latencies and fills in the derived figures, as the classic `finalize`.
    pub fn finalize(&mut self) {
        self.failures =
            self.failed_get + self.failed_put + self.unanswered_get + self.unanswered_put;
        if !self.latencies_s.is_empty() {
            self.latencies_s.sort_by(f64::total_cmp);
            self.mean_latency =
                self.latencies_s.iter().sum::<f64>() / self.latencies_s.len() as f64;
            self.median_latency = self.latencies_s[self.latencies_s.len() / 2];
        }
    }
}

/// Percentiles of a sorted sample, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// `sorted` must be in ascending order. Nearest-rank percentiles.
    pub fn of_sorted(sorted: &[f64]) -> Percentiles {
        if sorted.is_empty() {
            return Percentiles::default();
        }
        let at = |q: f64| {
            let rank = (q * sorted.len() as f64).ceil() as usize;
            sorted[rank.clamp(1, sorted.len()) - 1]
        };
        Percentiles {
            count: sorted.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: sorted[sorted.len() - 1],
        }
    }
}

/// Figures beyond the classic ones.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Extra {
    /// Percentiles of the classic latency (every reply, redirects and fails included).
    pub reply_latency_s: Percentiles,
    /// Client-perceived latency of operations that completed: first attempt to final `ok`.
    pub op_latency_s: Percentiles,
    pub get_oks: u64,
    pub put_oks: u64,
    /// Completed operations per second over the request window (`lifetime`).
    pub throughput_ops_per_s: f64,
    /// `total_msgs / put_oks`.
    pub msgs_per_committed_put: f64,
    /// `total_msgs` by the message's `type` (a broadcast counts once per recipient, as in
    /// `total_msgs`): where a replica's message budget goes.
    pub msgs_by_type: std::collections::BTreeMap<String, u64>,
    /// Every request left without a reply: where it went and when.
    pub unanswered: Vec<crate::clients::Unanswered>,
    /// MIDs that got two replies or more (any types).
    pub mids_with_two_replies: u64,
    /// Classic "incorrect" gets explained by the client's own unacknowledged put.
    pub incorrect_from_unacked_put: u64,
    /// Replicas that ended without being killed: `"0002: exit status: 1"`.
    pub exited_on_own: Vec<String>,
    /// Replicas marked dead because something reached them before their hello.
    pub delivered_before_hello: Vec<String>,
    /// Every restart (durable scenarios), in the order they happened. Restarted replicas
    /// are neither killed nor died in the classic counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restarts: Vec<Restart>,
    /// Seconds from the start until a leader was first seen.
    pub first_leader_s: Option<f64>,
    /// The longest time after that with no known leader (the `leader` fields seen).
    pub leaderless_s_max: f64,
    pub duplicated_datagrams: u64,
    pub delayed_datagrams: u64,
    /// Committed puts per second (see `throughput` for the two definitions).
    pub committed: CommitRate,
    /// Replica memory from `/proc/<pid>/status`, sampled every 100 ms.
    pub memory: Memory,
    /// How late requests started: scheduled time to creation (`poll` sleeps in whole
    /// milliseconds, so up to about 1 ms when no datagram wakes the loop first).
    pub request_lateness_s: Percentiles,
    /// Routed datagrams: every datagram a replica sent us.
    pub routed_datagrams: u64,
    /// `recvmmsg` calls (the last of each drain finds the socket empty) and their time.
    pub recv_calls: u64,
    pub recv_ns_total: u64,
    /// Time routing the datagrams received (parsing, checks, decisions, queueing), without
    /// system calls.
    pub logic_ns_total: u64,
    /// CPU time (user and system) of the event loop's thread over the whole run.
    pub loop_cpu_ns: u64,
    /// Datagrams sent to replicas (routed ones, copies, and client requests), the
    /// `sendmmsg` calls that carried them, and the time in those calls.
    pub sends: u64,
    pub send_calls: u64,
    pub send_ns_total: u64,
    /// The event loop's CPU time per routed datagram: everything kvsim's loop did (system
    /// calls included, request generation and idle wake-ups too), so an upper bound on what
    /// routing one datagram costs; time the scheduler gave to a replica woken by our
    /// `sendmmsg` is not in it.
    pub cpu_us_per_datagram: f64,
    /// Wall time in receiving, routing and sending, per routed datagram. On a busy machine
    /// this includes being preempted by a replica our `sendmmsg` just woke.
    pub sim_cost_us_per_datagram: f64,
    /// Of which: `recvmmsg`, our own logic, and `sendmmsg`, each per routed datagram.
    pub sim_cost_recv_us_per_datagram: f64,
    pub sim_cost_logic_us_per_datagram: f64,
    pub sim_cost_send_us_per_datagram: f64,
    /// One `recvmmsg` call (empty ones included).
    pub recv_us_per_call: f64,
    /// One `sendmmsg` call on loopback (it carries the batch into the replica's socket and
    /// wakes it, so this is mostly kernel work).
    pub send_us_per_call: f64,
    /// `sendmmsg` time per datagram sent.
    pub send_us_per_sent_datagram: f64,
    pub packet_storm: bool,
    pub wall_s: f64,
    /// The longest turn of kvsim's loop outside `poll` (receiving, routing, creating
    /// requests, sending), and the longest `poll` slept past the wait it was given, each
    /// as (µs, µs into the run when it began). A stalled simulator shows as lateness and
    /// latency everywhere; these say whether it was busy or asleep (`poll` rounds its wait
    /// up to whole milliseconds, so up to 1 ms of oversleep is its own).
    pub loop_turn_max_us: (u64, u64),
    pub poll_oversleep_max_us: (u64, u64),
    /// Time starting requests and firing timed actions (sends they made included).
    pub fire_ns_total: u64,
    /// kvsim's own queues, for a run past what it or the replicas can take: the most
    /// requests due and not yet started at the start of a turn (its backlog), the requests
    /// it started 1 ms or more after their time, the most attempts sent and not yet
    /// answered (the replicas' backlog as the clients see it), the most bytes waiting in
    /// one of its receive buffers (sampled every 100 ms), and the datagrams the kernel
    /// dropped because one was full (`SO_MEMINFO`).
    pub requests_due_max: u64,
    pub requests_started_late: u64,
    pub outstanding_max: u64,
    pub sim_socket_queued_bytes_max: u64,
    pub sim_socket_drops: u64,
    /// When requests and faults fired, and what routing cost (`timing`), in words.
    pub timing: String,
    /// Where the loop and the replicas ran, and whether the loop had real-time priority
    /// (`placement`).
    pub placement: String,
    pub loop_rt_priority: bool,
    /// Every turn of the loop measured (`loop_turns`).
    pub turns: crate::measure::loop_turns::TurnStats,
    /// The CPU time of kvsim, its replicas and everything else over the run (`machine_load`).
    pub machine: crate::measure::machine_load::MachineLoad,
    /// How busy the replicas' CPUs (and kvsim's own) were over the load (`machine_load`).
    pub load_cpus: Option<crate::measure::machine_load::LoadCpus>,
    /// The CPUs' stalls, with `--stall-probe` (`cpu_stalls`).
    pub cpu_stalls: Option<crate::measure::cpu_stalls::CpuStalls>,
}

/// One restart: when the replica was killed, started again, and said hello again (each
/// in seconds from the start; `None`: not by the end of the run).
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub replica: String,
    pub killed_s: f64,
    pub started_s: Option<f64>,
    pub back_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_is_the_upper_middle_as_classic() {
        let mut s = Stats {
            latencies_s: vec![0.4, 0.1, 0.3, 0.2],
            ..Stats::default()
        };
        s.finalize();
        assert_eq!(s.median_latency, 0.3);
        assert!((s.mean_latency - 0.25).abs() < 1e-12);
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=1000).map(f64::from).collect();
        let p = Percentiles::of_sorted(&v);
        assert_eq!(
            (p.p50, p.p90, p.p99, p.p999, p.max),
            (500.0, 900.0, 990.0, 999.0, 1000.0)
        );
        assert_eq!(Percentiles::of_sorted(&[]).count, 0);
    }

    #[test]
    fn leaders_record_changes_only() {
        let mut s = Stats::default();
        for l in ["FFFF", "FFFF", "0001", "0001", "FFFF", "0001"] {
            s.add_leader(l);
        }
        assert_eq!(s.leaders, ["FFFF", "0001", "FFFF", "0001"]);
    }
}
