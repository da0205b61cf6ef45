//! kvsim's own turns, measured: where a long one went, and how much of the run kvsim held up.
//!
//! Every latency kvsim reports includes its own routing, so a turn of its loop that runs
//! long (receiving, routing, starting requests, sending) delays every datagram waiting in
//! its sockets, and shows in the replica's tail latency. To tell a replica author whether a
//! bad p99 is theirs, each turn is measured against the thread's own accounts
//! (`getrusage(RUSAGE_THREAD)`, read once a turn, just before `poll`):
//!
//! - **CPU time against wall time**: a turn whose wall time is mostly CPU was busy (then its
//!   phases say on what); one whose wall time is mostly off the CPU was descheduled, by a
//!   replica that preempted it (an involuntary context switch) or by the hypervisor (no
//!   switch the guest could see);
//! - **page faults**: minor faults are first touches of memory (growing tables), major ones
//!   wait for a disk;
//! - **phases**: `recvmmsg`, routing, `sendmmsg`, and starting requests with firing timed
//!   actions, from the loop's own counters (no extra clock reads).
//!
//! The reading at a turn's end covers the `poll` before it too; `poll` uses a few µs of CPU
//! and sleeps voluntarily, so the turn's figures are off by that much at most.
//!
//! Over the run it keeps a histogram of turn lengths, the slowest turns in full, totals over
//! the turns of at least [`SLOW_TURN_US`], and their spans, so that the end of the run can
//! say which replies waited through one ([`Attribution`]). How long the thread waited to
//! run (`/proc/thread-self/schedstat`) is read at the start and end of the loop.

use serde::Serialize;

use crate::clients::history::HistOp;
use crate::measure::stats::Percentiles;

/// A turn at least this long counts as kvsim holding the run up: at the loads kvsim
/// measures, a replica answers in a few hundred µs, so a millisecond without routing is
/// several times what the replica itself takes.
pub const SLOW_TURN_US: u64 = 1_000;
/// The slowest turns kept in full.
pub const SLOWEST_KEPT: usize = 10;
/// Spans of slow turns kept for attributing replies; past it they are only counted (a run
/// with this many slow turns has its answer already).
pub const SLOW_SPANS_MAX: usize = 100_000;
/// Upper bounds of the histogram's buckets, µs (the last bucket is everything longer).
pub const HISTOGRAM_BOUNDS_US: [u64; 9] =
    [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000];

/// What this thread has used so far.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Usage {
    pub cpu_us: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

impl Usage {
    /// This thread's accounts (zeros if the kernel refuses, which it does not on Linux).
    ///
    /// The CPU time comes from the thread's CPU clock, not from `getrusage`: for a running
    /// thread `getrusage` leaves out what it used since the last scheduler tick, so a turn
    /// of a millisecond or two could read as no CPU at all.
    pub fn of_this_thread() -> Usage {
        // SAFETY: getrusage and clock_gettime fill the structs we pass; zeroed is a valid
        // starting value for both.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
            return Usage::default();
        }
        let mut cpu: libc::timespec = unsafe { std::mem::zeroed() };
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut cpu) } != 0 {
            return Usage::default();
        }
        Usage {
            cpu_us: cpu.tv_sec as u64 * 1_000_000 + cpu.tv_nsec as u64 / 1000,
            minor_faults: ru.ru_minflt as u64,
            major_faults: ru.ru_majflt as u64,
            voluntary_switches: ru.ru_nvcsw as u64,
            involuntary_switches: ru.ru_nivcsw as u64,
        }
    }

    fn since(self, earlier: Usage) -> Usage {
        Usage {
            cpu_us: self.cpu_us.saturating_sub(earlier.cpu_us),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
            major_faults: self.major_faults.saturating_sub(earlier.major_faults),
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
        }
    }
}

/// The loop's running counters a turn is measured by (differences between its start and
/// its end).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Counters {
    pub recv_ns: u64,
    pub route_ns: u64,
    pub send_ns: u64,
    /// Starting requests and firing timed actions (their sends included).
    pub fire_ns: u64,
    pub routed: u64,
    pub sent: u64,
    pub requests_started: u64,
}

/// Why a slow turn was slow, as far as the thread's accounts tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Mostly on the CPU: kvsim's own work (its phases say which), or the kernel's on its
    /// behalf in a system call.
    Busy,
    /// Mostly off the CPU, with an involuntary context switch: another task (a replica)
    /// took the CPU.
    Preempted,
    /// Mostly off the CPU with no switch the guest saw: the virtual CPU itself was not
    /// running (the hypervisor), or the thread waited on memory it faulted in.
    OffCpu,
}

/// One slow turn in full.
#[derive(Clone, Debug, Serialize)]
pub struct SlowTurn {
    /// µs into the run when it began.
    pub at_us: u64,
    pub wall_us: u64,
    pub cpu_us: u64,
    pub off_cpu_us: u64,
    pub verdict: Verdict,
    pub involuntary_switches: u64,
    pub voluntary_switches: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub datagrams_routed: u64,
    pub datagrams_sent: u64,
    pub requests_started: u64,
    pub recv_us: u64,
    pub route_us: u64,
    pub send_us: u64,
    pub fire_us: u64,
    /// Wall time in none of the phases above (exit checks, memory samples, the loop).
    pub other_us: u64,
}

/// Which replies waited through one of a run's spans of trouble (kvsim's turns of at
/// least [`SLOW_TURN_US`] here; the CPUs' stalls in `cpu_stalls`), and the latency of the
/// others.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Attribution {
    /// Replies (any kind) whose request was in flight during one of the spans.
    pub replies_through_spans: u64,
    pub replies: u64,
    /// Reply latency (creation of the attempt to its reply) of the replies that did not.
    pub reply_latency_without_them_s: Percentiles,
}

/// The turns of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TurnStats {
    pub turns: u64,
    /// Wall time in turns (outside `poll`).
    pub wall_us: u64,
    /// Turns by length: `histogram[i]` counts those under `HISTOGRAM_BOUNDS_US[i]` (and at
    /// least the bound before); the last counts the rest.
    pub histogram: Vec<u64>,
    /// Over every turn.
    pub minor_faults: u64,
    pub major_faults: u64,
    pub involuntary_switches: u64,
    /// Turns of at least [`SLOW_TURN_US`], and totals over them.
    pub slow_turns: u64,
    pub slow_wall_us: u64,
    pub slow_cpu_us: u64,
    pub slow_off_cpu_us: u64,
    pub slow_busy: u64,
    pub slow_preempted: u64,
    pub slow_off_cpu: u64,
    pub slow_minor_faults: u64,
    pub slow_major_faults: u64,
    /// Slow turns that began after the start wait, and their wall time: kvsim holding up
    /// the load. `held_fraction` is that time over the rest of the run.
    pub slow_wall_us_under_load: u64,
    pub held_fraction: f64,
    /// The slowest turns, longest first.
    pub slowest: Vec<SlowTurn>,
    /// Time the loop's thread was runnable but waiting for a CPU, over the loop
    /// (`/proc/thread-self/schedstat`).
    pub run_delay_us: Option<u64>,
    pub attribution: Attribution,
    /// `(start, end)` of each slow turn, µs into the run, in order (at most
    /// [`SLOW_SPANS_MAX`]).
    #[serde(skip)]
    pub spans: Vec<(u64, u64)>,
}

/// Measures each turn of the loop. The loop calls [`TurnMeter::begin`] when `poll` returns
/// and [`TurnMeter::end`] just before it calls `poll` again.
pub struct TurnMeter {
    stats: TurnStats,
    usage: Usage,
    counters: Counters,
    began_us: u64,
    run_delay_start_ns: Option<u64>,
}

impl Default for TurnMeter {
    fn default() -> Self {
        TurnMeter::new()
    }
}

impl TurnMeter {
    pub fn new() -> TurnMeter {
        TurnMeter {
            stats: TurnStats {
                histogram: vec![0; HISTOGRAM_BOUNDS_US.len() + 1],
                spans: Vec::with_capacity(1024),
                ..TurnStats::default()
            },
            usage: Usage::of_this_thread(),
            counters: Counters::default(),
            began_us: 0,
            run_delay_start_ns: run_delay_ns(),
        }
    }

    /// A turn begins (`poll` returned) at `now_us` with the loop's counters at `counters`.
    pub fn begin(&mut self, now_us: u64, counters: Counters) {
        self.began_us = now_us;
        self.counters = counters;
    }

    /// The turn ends (`poll` is next) at `now_us`.
    pub fn end(&mut self, now_us: u64, counters: Counters) {
        let usage = Usage::of_this_thread();
        let used = usage.since(self.usage);
        self.usage = usage;
        let wall_us = now_us.saturating_sub(self.began_us);
        let s = &mut self.stats;
        s.turns += 1;
        s.wall_us += wall_us;
        let bucket = HISTOGRAM_BOUNDS_US
            .iter()
            .position(|&b| wall_us < b)
            .unwrap_or(HISTOGRAM_BOUNDS_US.len());
        s.histogram[bucket] += 1;
        s.minor_faults += used.minor_faults;
        s.major_faults += used.major_faults;
        s.involuntary_switches += used.involuntary_switches;
        if wall_us >= SLOW_TURN_US {
            let turn = self.slow_turn(wall_us, used, counters);
            self.add_slow(turn);
        }
    }

    fn slow_turn(&self, wall_us: u64, used: Usage, now: Counters) -> SlowTurn {
        let was = self.counters;
        let us = |after: u64, before: u64| after.saturating_sub(before) / 1000;
        let (recv_us, route_us, send_us, fire_us) = (
            us(now.recv_ns, was.recv_ns),
            us(now.route_ns, was.route_ns),
            us(now.send_ns, was.send_ns),
            us(now.fire_ns, was.fire_ns),
        );
        // The CPU reading also covers the `poll` before the turn: never more than the turn.
        let cpu_us = used.cpu_us.min(wall_us);
        let off_cpu_us = wall_us - cpu_us;
        let verdict = if off_cpu_us * 2 <= wall_us {
            Verdict::Busy
        } else if used.involuntary_switches > 0 {
            Verdict::Preempted
        } else {
            Verdict::OffCpu
        };
        SlowTurn {
            at_us: self.began_us,
            wall_us,
            cpu_us,
            off_cpu_us,
            verdict,
            involuntary_switches: used.involuntary_switches,
            voluntary_switches: used.voluntary_switches,
            minor_faults: used.minor_faults,
            major_faults: used.major_faults,
            datagrams_routed: now.routed.saturating_sub(was.routed),
            datagrams_sent: now.sent.saturating_sub(was.sent),
            requests_started: now.requests_started.saturating_sub(was.requests_started),
            recv_us,
            route_us,
            // Sends made while starting requests are in both: count them as starting.
            send_us,
            fire_us,
            other_us: wall_us.saturating_sub(recv_us + route_us + fire_us + send_us),
        }
    }

    fn add_slow(&mut self, turn: SlowTurn) {
        let s = &mut self.stats;
        s.slow_turns += 1;
        s.slow_wall_us += turn.wall_us;
        s.slow_cpu_us += turn.cpu_us;
        s.slow_off_cpu_us += turn.off_cpu_us;
        s.slow_minor_faults += turn.minor_faults;
        s.slow_major_faults += turn.major_faults;
        match turn.verdict {
            Verdict::Busy => s.slow_busy += 1,
            Verdict::Preempted => s.slow_preempted += 1,
            Verdict::OffCpu => s.slow_off_cpu += 1,
        }
        if s.spans.len() < SLOW_SPANS_MAX {
            s.spans.push((turn.at_us, turn.at_us + turn.wall_us));
        }
        let shortest_kept = s.slowest.last().map_or(0, |t| t.wall_us);
        if s.slowest.len() < SLOWEST_KEPT || turn.wall_us > shortest_kept {
            let at = s.slowest.partition_point(|t| t.wall_us >= turn.wall_us);
            s.slowest.insert(at, turn);
            s.slowest.truncate(SLOWEST_KEPT);
        }
    }

    /// The figures of the run; `load_from_us` is when requests began to be due, `end_us`
    /// when the loop ended, `history` every attempt.
    pub fn finish(mut self, load_from_us: u64, end_us: u64, history: &[HistOp]) -> TurnStats {
        let s = &mut self.stats;
        s.run_delay_us = run_delay_ns()
            .zip(self.run_delay_start_ns)
            .map(|(end, start)| end.saturating_sub(start) / 1000);
        s.slow_wall_us_under_load = s
            .spans
            .iter()
            .filter(|&&(from, _)| from >= load_from_us)
            .map(|&(from, to)| to - from)
            .sum();
        let under_load_us = end_us.saturating_sub(load_from_us);
        s.held_fraction = if under_load_us > 0 {
            s.slow_wall_us_under_load as f64 / under_load_us as f64
        } else {
            0.0
        };
        s.attribution = attribute(&s.spans, history);
        self.stats
    }
}

/// Which answered attempts were in flight during one of `spans` (sorted, disjoint), and the
/// latency percentiles of the rest.
pub fn attribute(spans: &[(u64, u64)], history: &[HistOp]) -> Attribution {
    let mut clean = Vec::with_capacity(history.len());
    let mut through = 0;
    let mut replies = 0;
    for op in history {
        let Some(response_us) = op.response_us else {
            continue;
        };
        replies += 1;
        // The first span that ends after the request was made; it overlaps the attempt if
        // it began before the reply came.
        let k = spans.partition_point(|&(_, end)| end <= op.invoke_us);
        if spans.get(k).is_some_and(|&(start, _)| start < response_us) {
            through += 1;
        } else {
            clean.push(response_us.saturating_sub(op.invoke_us) as f64 / 1e6);
        }
    }
    clean.sort_by(f64::total_cmp);
    Attribution {
        replies_through_spans: through,
        replies,
        reply_latency_without_them_s: Percentiles::of_sorted(&clean),
    }
}

/// The loop thread's time waiting on a run queue so far, ns (`None` without schedstats).
fn run_delay_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(invoke_us: u64, response_us: Option<u64>) -> HistOp {
        HistOp {
            client: 0,
            key: 0,
            get: false,
            value: 1,
            invoke_us,
            response_us,
            acked: true,
            group: 0,
        }
    }

    #[test]
    fn replies_in_flight_during_a_slow_turn_are_set_apart() {
        let spans = [(1_000, 3_000), (10_000, 12_000)];
        let history = [
            op(0, Some(500)),        // before every span
            op(500, Some(1_500)),    // reply arrived during the first
            op(2_500, Some(4_000)),  // made during it
            op(4_000, Some(9_000)),  // between the two
            op(9_000, Some(13_000)), // around the second
            op(13_000, None),        // no reply: not counted
        ];
        let a = attribute(&spans, &history);
        assert_eq!((a.replies, a.replies_through_spans), (5, 3));
        let clean = &a.reply_latency_without_them_s;
        assert_eq!(clean.count, 2);
        assert_eq!(clean.max, 0.005);
    }

    fn turn(meter: &mut TurnMeter, from_us: u64, wall_us: u64) {
        meter.begin(from_us, Counters::default());
        meter.end(from_us + wall_us, Counters::default());
    }

    #[test]
    fn turns_are_counted_by_length_and_the_slowest_kept_longest_first() {
        let mut m = TurnMeter::new();
        turn(&mut m, 0, 50);
        turn(&mut m, 100, 700);
        for k in 0..12 {
            turn(&mut m, 10_000 * (k + 1), 1_000 + 50 * k);
        }
        let s = m.finish(5_000, 200_000, &[]);
        assert_eq!(s.turns, 14);
        assert_eq!(s.histogram[0], 1, "under 100 us");
        assert_eq!(s.histogram[3], 1, "500 us to 1 ms");
        assert_eq!(s.histogram[4], 12, "1 to 2 ms");
        assert_eq!(s.slow_turns, 12);
        assert_eq!(s.spans.len(), 12);
        let kept: Vec<u64> = s.slowest.iter().map(|t| t.wall_us).collect();
        assert_eq!(kept.len(), SLOWEST_KEPT);
        assert_eq!(kept[0], 1_550);
        assert!(kept.windows(2).all(|w| w[0] >= w[1]), "{kept:?}");
        let slow_us: u64 = (0..12).map(|k| 1_000 + 50 * k).sum();
        assert_eq!(s.slow_wall_us_under_load, slow_us);
        assert!((s.held_fraction - slow_us as f64 / 195_000.0).abs() < 1e-12);
    }

    #[test]
    fn a_turn_is_busy_when_mostly_on_the_cpu_and_not_when_asleep() {
        let mut m = TurnMeter::new();
        // A turn as long as 3 ms of this thread's CPU time (wall time is given, not read,
        // so a loaded machine cannot change the verdict).
        m.begin(0, Counters::default());
        let start = Usage::of_this_thread().cpu_us;
        while Usage::of_this_thread().cpu_us < start + 3_000 {
            std::hint::black_box(0u64);
        }
        m.end(3_000, Counters::default());
        // A turn of 3 ms asleep: no CPU time.
        m.begin(10_000, Counters::default());
        std::thread::sleep(std::time::Duration::from_millis(3));
        m.end(13_000, Counters::default());
        let s = m.finish(0, 20_000, &[]);
        assert_eq!(s.slow_turns, 2);
        let by_start: Vec<Verdict> = {
            let mut t = s.slowest.clone();
            t.sort_by_key(|t| t.at_us);
            t.iter().map(|t| t.verdict).collect()
        };
        assert_eq!(by_start[0], Verdict::Busy);
        assert_ne!(by_start[1], Verdict::Busy, "asleep is off the CPU");
    }
}
