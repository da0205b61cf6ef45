//! kvsim's own figures, printed after the classic statistics: what the clients saw, what
//! happened to requests and replicas, linearizability, throughput and memory, and what
//! kvsim itself cost. One function per group of lines, in the order they print; a
//! group's lines are the same whether or not a run asked for the HTML page or the JSON.

use std::fmt::Write as _;

use super::summary::{BOLD, END, YELLOW};
use crate::checks::linearizability::LinReport;
use crate::measure::cpu_stalls::{CpuStalls, STALL_US};
use crate::measure::loop_turns::{Attribution, SLOW_TURN_US, TurnStats};
use crate::measure::machine_load::{CpusBusy, LoadCpus, MachineLoad, OTHERS_NOTICEABLE_S};
use crate::measure::stats::Extra;
use crate::run::Outcome;
use crate::scenario::config::Config;

/// Unanswered requests listed one per line; the rest are counted (all are in the JSON).
const UNANSWERED_SHOWN_MAX: usize = 10;
/// Restarts listed one per line; the rest are counted.
const RESTARTS_SHOWN_MAX: usize = 10;

/// Our figures, beyond the classic ones.
pub(super) fn figures(outcome: &Outcome, cfg: &Config) -> String {
    let extra = &outcome.extra;
    let mut out = String::new();
    let _ = writeln!(out, "{BOLD}\n## kvsim: more figures{END}");
    let _ = writeln!(
        out,
        "Seed: {} (rerun with the same seed for the same schedule, faults and drops)",
        outcome.seed
    );
    let _ = writeln!(out, "Timing: {}", extra.timing);
    latency(&mut out, extra);
    messages_by_type(&mut out, extra);
    requests_gone_wrong(&mut out, extra);
    replicas(&mut out, extra, cfg);
    linearizability(&mut out, &outcome.linearizability);
    throughput_and_memory(&mut out, extra);
    request_queues(&mut out, extra);
    kvsim_loop(&mut out, extra);
    out.push_str(&turn_lines(&extra.turns));
    if let Some(stalls) = &extra.cpu_stalls {
        out.push_str(&stall_lines(stalls));
    }
    out.push_str(&machine_lines(&extra.machine));
    if let Some(load) = &extra.load_cpus {
        out.push_str(&load_cpus_line(load));
    }
    routing_cost(&mut out, extra);
    out
}

/// Reply and operation latency, and what was completed.
fn latency(out: &mut String, extra: &Extra) {
    let reply = &extra.reply_latency_s;
    let _ = writeln!(
        out,
        "Reply latency p50/p90/p99/p99.9/max: {} ms ({} replies)",
        ms_each(&[reply.p50, reply.p90, reply.p99, reply.p999, reply.max]),
        reply.count
    );
    let operation = &extra.op_latency_s;
    let _ = writeln!(
        out,
        "Operation latency (first attempt to ok) p50/p90/p99/p99.9/max: {} ms ({} ops)",
        ms_each(&[
            operation.p50,
            operation.p90,
            operation.p99,
            operation.p999,
            operation.max
        ]),
        operation.count
    );
    let _ = writeln!(
        out,
        "Completed get()/put(): {}/{}; throughput {:.1} ops/s; {:.2} messages per committed put",
        extra.get_oks, extra.put_oks, extra.throughput_ops_per_s, extra.msgs_per_committed_put
    );
}

fn messages_by_type(out: &mut String, extra: &Extra) {
    if extra.msgs_by_type.is_empty() {
        return;
    }
    let by_type: Vec<String> = extra
        .msgs_by_type
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    let _ = writeln!(
        out,
        "Messages between replicas by type: {}",
        by_type.join(", ")
    );
}

/// Requests that got no reply, two replies, or a get answered with the client's own
/// unacknowledged put.
fn requests_gone_wrong(out: &mut String, extra: &Extra) {
    for unanswered in extra.unanswered.iter().take(UNANSWERED_SHOWN_MAX) {
        let _ = writeln!(
            out,
            "Unanswered: {} {} from {} to {} created at {:.6}s",
            unanswered.kind,
            unanswered.mid,
            unanswered.client,
            unanswered.sent_to,
            unanswered.created_s
        );
    }
    more_in_json(
        out,
        "Unanswered",
        extra.unanswered.len(),
        UNANSWERED_SHOWN_MAX,
    );
    let _ = writeln!(
        out,
        "MIDs with two or more replies: {}",
        extra.mids_with_two_replies
    );
    if extra.incorrect_from_unacked_put > 0 {
        let _ = writeln!(
            out,
            "Incorrect gets that returned the client's own unacknowledged put (classic counts them; linearizable): {}",
            extra.incorrect_from_unacked_put
        );
    }
}

/// What became of the replicas: exits, restarts, early messages, leaders, and what the
/// network did to their traffic beyond drops.
fn replicas(out: &mut String, extra: &Extra, cfg: &Config) {
    if !extra.exited_on_own.is_empty() {
        let _ = writeln!(
            out,
            "Replicas that exited on their own: {}",
            extra.exited_on_own.join(", ")
        );
    }
    let seconds_or_dash = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.3}s"));
    for restart in extra.restarts.iter().take(RESTARTS_SHOWN_MAX) {
        let _ = writeln!(
            out,
            "Restarted: {} killed at {:.3}s, started again at {}, hello at {}",
            restart.replica,
            restart.killed_s,
            seconds_or_dash(restart.started_s),
            seconds_or_dash(restart.back_s)
        );
    }
    more_in_json(out, "Restarted", extra.restarts.len(), RESTARTS_SHOWN_MAX);
    if !extra.delivered_before_hello.is_empty() {
        let _ = writeln!(
            out,
            "Replicas that got a message before their hello: {}",
            extra.delivered_before_hello.join(", ")
        );
    }
    match extra.first_leader_s {
        Some(first_s) => {
            let _ = writeln!(
                out,
                "First leader seen after {first_s:.3}s; longest time with no known leader after that: {:.3}s",
                extra.leaderless_s_max
            );
        }
        None => {
            let _ = writeln!(out, "No leader was ever seen");
        }
    }
    if cfg.duplicate > 0.0 || cfg.reorder > 0.0 {
        let _ = writeln!(
            out,
            "Datagrams duplicated/delayed by the network: {}/{}",
            extra.duplicated_datagrams, extra.delayed_datagrams
        );
    }
}

fn linearizability(out: &mut String, report: &LinReport) {
    let inconclusive = if report.inconclusive_keys.is_empty() {
        String::new()
    } else {
        format!(", {} keys inconclusive", report.inconclusive_keys.len())
    };
    let _ = writeln!(
        out,
        "Linearizability: {} keys, {} ops checked ({} unread unknown puts dropped, {} windows closed by retries) in {:.1} ms; {} violations{inconclusive}",
        report.keys,
        report.ops_checked,
        report.dropped_unread_unknown_puts,
        report.closed_by_retry,
        report.check_ms,
        report.violations.len(),
    );
}

/// Committed puts per second, and the replicas' memory against them.
fn throughput_and_memory(out: &mut String, extra: &Extra) {
    let committed = &extra.committed;
    let _ = writeln!(
        out,
        "Committed puts per second: {:.0} steady (median of the request window's whole seconds); {:.0} from the first request to the last put ok ({:.3} s)",
        committed.steady_puts_per_s, committed.span_puts_per_s, committed.span_s
    );
    let memory = &extra.memory;
    let per_replica: Vec<String> = memory
        .replicas
        .iter()
        .map(|replica| format!("{} {}", replica.id, mib(replica.peak_rss_bytes)))
        .collect();
    let growth = memory
        .rss_growth_bytes_per_committed_put_max
        .map_or("-".to_string(), |bytes| format!("{bytes:.1}"));
    let _ = writeln!(
        out,
        "Replica peak RSS (VmHWM): {} MiB max ({} MiB); RSS growth per committed put {growth} bytes (max over replicas: peak minus RSS at the first request, over committed puts)",
        mib(memory.peak_rss_bytes_max),
        per_replica.join(", ")
    );
}

/// Whether kvsim kept up with the schedule: lateness, and how full its queues got.
fn request_queues(out: &mut String, extra: &Extra) {
    let lateness = &extra.request_lateness_s;
    let _ = writeln!(
        out,
        "Request start lateness (schedule to creation) p50/p99/max: {} ms; queues: {} requests started 1 ms late or more, at most {} due and not started, at most {} attempts unanswered, kvsim's fullest socket {:.1} KiB, {} datagrams dropped by the kernel",
        ms_each(&[lateness.p50, lateness.p99, lateness.max]),
        extra.requests_started_late,
        extra.requests_due_max,
        extra.outstanding_max,
        extra.sim_socket_queued_bytes_max as f64 / 1024.0,
        extra.sim_socket_drops
    );
}

fn kvsim_loop(out: &mut String, extra: &Extra) {
    let took_at = |(took_us, began_us): (u64, u64)| {
        format!(
            "{:.3} ms (at {:.3} s)",
            took_us as f64 / 1e3,
            began_us as f64 / 1e6
        )
    };
    let _ = writeln!(
        out,
        "kvsim's own loop: longest turn {}, longest oversleep in poll {}; {}",
        took_at(extra.loop_turn_max_us),
        took_at(extra.poll_oversleep_max_us),
        extra.placement
    );
}

/// Where kvsim's own time went: its slow turns, what they were, and the replies they held.
fn turn_lines(turns: &TurnStats) -> String {
    let mut out = String::new();
    let slow_ms = SLOW_TURN_US as f64 / 1e3;
    let waited = turns.run_delay_us.map_or(String::new(), |delay| {
        format!(
            "; over the run it waited {:.1} ms for a CPU",
            delay as f64 / 1e3
        )
    });
    let _ = writeln!(
        out,
        "kvsim's turns: {} in {:.1} ms; {} of {slow_ms} ms or more, {:.1} ms in all ({:.3}% of the run after start_wait): {} busy, {} preempted, {} off the CPU; page faults {} ({} in slow turns), involuntary switches {}{waited}",
        turns.turns,
        turns.wall_us as f64 / 1e3,
        turns.slow_turns,
        turns.slow_wall_us as f64 / 1e3,
        turns.held_fraction * 100.0,
        turns.slow_busy,
        turns.slow_preempted,
        turns.slow_off_cpu,
        turns.minor_faults + turns.major_faults,
        turns.slow_minor_faults + turns.slow_major_faults,
        turns.involuntary_switches,
    );
    if let Some(slowest) = turns.slowest.first() {
        let _ = writeln!(
            out,
            "kvsim's slowest turn: {:.3} ms at {:.3} s, {:?}: CPU {:.3} ms, off the CPU {:.3} ms, {} involuntary switches, {} page faults; recvmmsg {:.3}, routing {:.3}, sendmmsg {:.3}, requests and timers {:.3}, other {:.3} ms; {} datagrams routed, {} sent, {} requests started",
            slowest.wall_us as f64 / 1e3,
            slowest.at_us as f64 / 1e6,
            slowest.verdict,
            slowest.cpu_us as f64 / 1e3,
            slowest.off_cpu_us as f64 / 1e3,
            slowest.involuntary_switches,
            slowest.minor_faults + slowest.major_faults,
            slowest.recv_us as f64 / 1e3,
            slowest.route_us as f64 / 1e3,
            slowest.send_us as f64 / 1e3,
            slowest.fire_us as f64 / 1e3,
            slowest.other_us as f64 / 1e3,
            slowest.datagrams_routed,
            slowest.datagrams_sent,
            slowest.requests_started,
        );
    }
    let attribution = &turns.attribution;
    if attribution.replies > 0 {
        let _ = writeln!(
            out,
            "Replies in flight during a kvsim turn of {slow_ms} ms or more: {}",
            replies_through(attribution)
        );
    }
    out
}

/// How many replies were in flight during a span of trouble, and the latency of the rest.
fn replies_through(a: &Attribution) -> String {
    let without = &a.reply_latency_without_them_s;
    format!(
        "{} of {} ({:.3}%); reply latency without them p50/p99/p99.9/max: {} ms",
        a.replies_through_spans,
        a.replies,
        a.replies_through_spans as f64 * 100.0 / a.replies.max(1) as f64,
        ms_each(&[without.p50, without.p99, without.p999, without.max])
    )
}

/// The machine's own stalls (`--stall-probe`), and the replies they held.
fn stall_lines(stalls: &CpuStalls) -> String {
    let priority = match stalls.real_time {
        true => "",
        false => " (not at real-time priority: these may be the guest's own scheduling)",
    };
    format!(
        "CPU stalls (a probe thread on each of {} CPUs woken {} ms late or more){priority}: {}, longest {:.3} ms, {:.1} ms in all; replies in flight during one: {}\n",
        stalls.cpus,
        STALL_US as f64 / 1e3,
        stalls.stalls,
        stalls.longest_us as f64 / 1e3,
        stalls.total_us as f64 / 1e3,
        replies_through(&stalls.attribution)
    )
}

/// The CPU time of the run, and a warning when something else ran.
fn machine_lines(load: &MachineLoad) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "CPU time over the run: kvsim {:.2} s, replicas {:.2} s, other processes {:.2} s, steal {:.2} s (of {:.1} s on {} CPUs)",
        load.kvsim_s, load.replicas_s, load.others_s, load.steal_s, load.cpu_s_available, load.cpus,
    );
    if load.others_s > OTHERS_NOTICEABLE_S {
        let _ = writeln!(
            out,
            "{YELLOW}The machine was not quiet: other processes used {:.2} s of CPU during the run, so its timings are not kvsim's and the replicas' alone{END}",
            load.others_s
        );
    }
    out
}

/// How busy the CPUs were over the load.
fn load_cpus_line(load: &LoadCpus) -> String {
    let set = |busy: &CpusBusy| {
        let cpus: Vec<String> = busy.cpus.iter().map(usize::to_string).collect();
        format!(
            "({}) {:.1}% busy, {:.1}% stolen",
            cpus.join(", "),
            busy.busy * 100.0,
            busy.steal * 100.0
        )
    };
    let mut line = format!(
        "CPUs over the load ({:.1} s, first request to last): the replicas' {}",
        load.seconds,
        set(&load.replicas)
    );
    if let Some(kvsim) = &load.kvsim {
        let _ = write!(line, "; kvsim's loop's {}", set(kvsim));
    }
    line.push('\n');
    line
}

/// What routing one datagram cost kvsim, in CPU time and in wall time by system call.
fn routing_cost(out: &mut String, extra: &Extra) {
    let datagrams_per_call = |datagrams: u64, calls: u64| {
        if calls > 0 {
            datagrams as f64 / calls as f64
        } else {
            0.0
        }
    };
    let _ = writeln!(
        out,
        "Sim cost per datagram: {:.2} us of kvsim CPU time ({} datagrams routed); wall time in the routing path {:.2} us: recvmmsg {:.2} us ({:.2} us per call, {:.1} datagrams per call), our logic {:.2} us, sendmmsg {:.2} us ({:.2} us per call, {:.1} datagrams per call)",
        extra.cpu_us_per_datagram,
        extra.routed_datagrams,
        extra.sim_cost_us_per_datagram,
        extra.sim_cost_recv_us_per_datagram,
        extra.recv_us_per_call,
        datagrams_per_call(extra.routed_datagrams, extra.recv_calls),
        extra.sim_cost_logic_us_per_datagram,
        extra.sim_cost_send_us_per_datagram,
        extra.send_us_per_call,
        datagrams_per_call(extra.sends, extra.send_calls),
    );
}

/// After a list cut at `shown_max` lines, how many it left out.
fn more_in_json(out: &mut String, label: &str, listed: usize, shown_max: usize) {
    if listed > shown_max {
        let _ = writeln!(out, "{label}: {} more (all in --json)", listed - shown_max);
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Seconds as milliseconds, slash-separated (`0.413/0.715/36.576`).
fn ms_each(seconds: &[f64]) -> String {
    seconds
        .iter()
        .map(|&s| format!("{:.3}", s * 1000.0))
        .collect::<Vec<_>>()
        .join("/")
}
