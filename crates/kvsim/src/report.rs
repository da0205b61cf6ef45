//! What a run prints: the classic summary (same lines, same order), our extra figures, the
//! table after `kvsim all`, and the JSON report.

use std::fmt::Write as _;
use std::path::Path;

use super::config::Config;
use super::machine::{MachineLoad, OTHERS_NOTICEABLE_S};
use super::run::Outcome;
use super::turns::{SLOW_TURN_US, TurnStats};

const BOLD: &str = "\x1b[1m\x1b[4m";
const RED: &str = "\x1b[91m";
const GREEN: &str = "\x1b[92m";
const YELLOW: &str = "\x1b[93m";
const BLUE: &str = "\x1b[94m";
const END: &str = "\x1b[0m";

/// The classic single-test summary, then ours.
pub fn summary(o: &Outcome, cfg: &Config) -> String {
    let s = &o.stats;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{BOLD}\n# Simulation Finished\n\n## Useful Information and Statistics{END}"
    );
    let _ = writeln!(out, "Leaders: {}", s.leaders.join(" "));
    let _ = writeln!(
        out,
        "Replicas that died/were killed: {}/{}",
        s.died, s.killed
    );
    let _ = writeln!(out, "Total messages sent: {}", s.total_msgs);
    let _ = writeln!(out, "Total messages dropped: {}", s.total_drops);
    let _ = writeln!(out, "Total messages blocked by full sockets: {}", s.blocked);
    let _ = writeln!(
        out,
        "Total client get()/put() requests: {}/{}",
        s.total_get, s.total_put
    );
    let _ = writeln!(out, "Total duplicate responses: {}", s.duplicates);
    let _ = writeln!(
        out,
        "Total unanswered get()/put() requests: {}/{}",
        s.unanswered_get, s.unanswered_put
    );
    let _ = writeln!(out, "Total redirects: {}", s.redirects);
    let _ = writeln!(
        out,
        "Total get()/put() failures: {}/{}",
        s.failed_get, s.failed_put
    );
    let _ = writeln!(out, "Total get() with incorrect response: {}", s.incorrect);
    if !s.latencies_s.is_empty() {
        let _ = writeln!(
            out,
            "Mean/Median query latency: {}sec/{}sec",
            s.mean_latency, s.median_latency
        );
    }
    out.push_str(&extras(o, cfg));
    let _ = writeln!(out, "{BOLD}\n## Correctness Checks{END}");
    for c in o.checks.iter().filter(|c| !c.holds()) {
        let _ = writeln!(out, "{RED}{}{END}", c.message);
    }
    for c in o.checks.iter().filter(|c| c.skipped.is_some()) {
        let verdict = if c.passed { "passed" } else { "failed" };
        let _ = writeln!(
            out,
            "{YELLOW}Not held against a stand-in: {} ({verdict}): {}{END}",
            c.name,
            c.skipped.unwrap_or_default()
        );
    }
    const VIOLATIONS_SHOWN_MAX: usize = 5;
    let violations = &o.linearizability.violations;
    if violations.len() > VIOLATIONS_SHOWN_MAX {
        let _ = writeln!(
            out,
            "  (the first {VIOLATIONS_SHOWN_MAX} of {} keys shown; all are in --json)",
            violations.len()
        );
    }
    for v in violations.iter().take(VIOLATIONS_SHOWN_MAX) {
        let _ = writeln!(out, "  key {}: {}", v.key, v.explanation);
        for op in &v.ops {
            let _ = writeln!(out, "    {op}");
        }
    }
    if o.passed {
        let _ = writeln!(out, "{GREEN}All correctness tests passed{END}");
        let _ = writeln!(out, "{BOLD}\n## Performance Tests{END}");
        let _ = writeln!(
            out,
            "## <test metric>: <your score> <benchmark score>, <test result>"
        );
        for t in &o.tiers {
            let colour = [BLUE, GREEN, YELLOW, RED][usize::from(t.tier.min(3))];
            let _ = writeln!(out, "{colour}{}{END}", t.line);
        }
    } else {
        let _ = writeln!(
            out,
            "\n## Correctness Checks Failed, Skipping Performance Tests"
        );
    }
    out
}

/// Our figures, beyond the classic ones.
fn extras(o: &Outcome, cfg: &Config) -> String {
    let e = &o.extra;
    let l = &o.linearizability;
    let mut out = String::new();
    let _ = writeln!(out, "{BOLD}\n## kvsim: more figures{END}");
    let _ = writeln!(
        out,
        "Seed: {} (rerun with the same seed for the same schedule, faults and drops)",
        o.seed
    );
    let _ = writeln!(out, "Timing: {}", e.timing);
    let r = &e.reply_latency_s;
    let _ = writeln!(
        out,
        "Reply latency p50/p90/p99/p99.9/max: {} ms ({} replies)",
        ms_each(&[r.p50, r.p90, r.p99, r.p999, r.max]),
        r.count
    );
    let p = &e.op_latency_s;
    let _ = writeln!(
        out,
        "Operation latency (first attempt to ok) p50/p90/p99/p99.9/max: {} ms ({} ops)",
        ms_each(&[p.p50, p.p90, p.p99, p.p999, p.max]),
        p.count
    );
    let _ = writeln!(
        out,
        "Completed get()/put(): {}/{}; throughput {:.1} ops/s; {:.2} messages per committed put",
        e.get_oks, e.put_oks, e.throughput_ops_per_s, e.msgs_per_committed_put
    );
    if !e.msgs_by_type.is_empty() {
        let by_type: Vec<String> = e
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
    const UNANSWERED_SHOWN_MAX: usize = 10;
    for u in e.unanswered.iter().take(UNANSWERED_SHOWN_MAX) {
        let _ = writeln!(
            out,
            "Unanswered: {} {} from {} to {} created at {:.6}s",
            u.kind, u.mid, u.client, u.sent_to, u.created_s
        );
    }
    if e.unanswered.len() > UNANSWERED_SHOWN_MAX {
        let _ = writeln!(
            out,
            "Unanswered: {} more (all in --json)",
            e.unanswered.len() - UNANSWERED_SHOWN_MAX
        );
    }
    let _ = writeln!(
        out,
        "MIDs with two or more replies: {}",
        e.mids_with_two_replies
    );
    if e.incorrect_from_unacked_put > 0 {
        let _ = writeln!(
            out,
            "Incorrect gets that returned the client's own unacknowledged put (classic counts them; linearizable): {}",
            e.incorrect_from_unacked_put
        );
    }
    if !e.exited_on_own.is_empty() {
        let _ = writeln!(
            out,
            "Replicas that exited on their own: {}",
            e.exited_on_own.join(", ")
        );
    }
    const RESTARTS_SHOWN_MAX: usize = 10;
    let at = |t: Option<f64>| t.map_or("-".to_string(), |t| format!("{t:.3}s"));
    for r in e.restarts.iter().take(RESTARTS_SHOWN_MAX) {
        let _ = writeln!(
            out,
            "Restarted: {} killed at {:.3}s, started again at {}, hello at {}",
            r.replica,
            r.killed_s,
            at(r.started_s),
            at(r.back_s)
        );
    }
    if e.restarts.len() > RESTARTS_SHOWN_MAX {
        let _ = writeln!(
            out,
            "Restarted: {} more (all in --json)",
            e.restarts.len() - RESTARTS_SHOWN_MAX
        );
    }
    if !e.delivered_before_hello.is_empty() {
        let _ = writeln!(
            out,
            "Replicas that got a message before their hello: {}",
            e.delivered_before_hello.join(", ")
        );
    }
    match e.first_leader_s {
        Some(t) => {
            let _ = writeln!(
                out,
                "First leader seen after {t:.3}s; longest time with no known leader after that: {:.3}s",
                e.leaderless_s_max
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
            e.duplicated_datagrams, e.delayed_datagrams
        );
    }
    let _ = writeln!(
        out,
        "Linearizability: {} keys, {} ops checked ({} unread unknown puts dropped, {} windows closed by retries) in {:.1} ms; {} violations{}",
        l.keys,
        l.ops_checked,
        l.dropped_unread_unknown_puts,
        l.closed_by_retry,
        l.check_ms,
        l.violations.len(),
        if l.inconclusive_keys.is_empty() {
            String::new()
        } else {
            format!(", {} keys inconclusive", l.inconclusive_keys.len())
        }
    );
    let c = &e.committed;
    let _ = writeln!(
        out,
        "Committed puts per second: {:.0} steady (median of the request window's whole seconds); {:.0} from the first request to the last put ok ({:.3} s)",
        c.steady_puts_per_s, c.span_puts_per_s, c.span_s
    );
    let m = &e.memory;
    let per_replica: Vec<String> = m
        .replicas
        .iter()
        .map(|r| format!("{} {}", r.id, mib(r.peak_rss_bytes)))
        .collect();
    let growth = m
        .rss_growth_bytes_per_committed_put_max
        .map_or("-".to_string(), |g| format!("{g:.1}"));
    let _ = writeln!(
        out,
        "Replica peak RSS (VmHWM): {} MiB max ({} MiB); RSS growth per committed put {growth} bytes (max over replicas: peak minus RSS at the first request, over committed puts)",
        mib(m.peak_rss_bytes_max),
        per_replica.join(", ")
    );
    let late = &e.request_lateness_s;
    let _ = writeln!(
        out,
        "Request start lateness (schedule to creation) p50/p99/max: {} ms; queues: {} requests started 1 ms late or more, at most {} due and not started, at most {} attempts unanswered, kvsim's fullest socket {:.1} KiB, {} datagrams dropped by the kernel",
        ms_each(&[late.p50, late.p99, late.max]),
        e.requests_started_late,
        e.requests_due_max,
        e.outstanding_max,
        e.sim_socket_queued_bytes_max as f64 / 1024.0,
        e.sim_socket_drops
    );
    let at_s = |(took_us, began_us): (u64, u64)| {
        format!(
            "{:.3} ms (at {:.3} s)",
            took_us as f64 / 1e3,
            began_us as f64 / 1e6
        )
    };
    let _ = writeln!(
        out,
        "kvsim's own loop: longest turn {}, longest oversleep in poll {}; {}",
        at_s(e.loop_turn_max_us),
        at_s(e.poll_oversleep_max_us),
        e.placement
    );
    out.push_str(&turn_lines(&e.turns));
    out.push_str(&machine_lines(&e.machine));
    let per_call = |datagrams: u64, calls: u64| {
        if calls > 0 {
            datagrams as f64 / calls as f64
        } else {
            0.0
        }
    };
    let _ = writeln!(
        out,
        "Sim cost per datagram: {:.2} us of kvsim CPU time ({} datagrams routed); wall time in the routing path {:.2} us: recvmmsg {:.2} us ({:.2} us per call, {:.1} datagrams per call), our logic {:.2} us, sendmmsg {:.2} us ({:.2} us per call, {:.1} datagrams per call)",
        e.cpu_us_per_datagram,
        e.routed_datagrams,
        e.sim_cost_us_per_datagram,
        e.sim_cost_recv_us_per_datagram,
        e.recv_us_per_call,
        per_call(e.routed_datagrams, e.recv_calls),
        e.sim_cost_logic_us_per_datagram,
        e.sim_cost_send_us_per_datagram,
        e.send_us_per_call,
        per_call(e.sends, e.send_calls),
    );
    out
}

/// Where kvsim's own time went: its slow turns, what they were, and the replies they held.
fn turn_lines(t: &TurnStats) -> String {
    let mut out = String::new();
    let slow_ms = SLOW_TURN_US as f64 / 1e3;
    let waited = t.run_delay_us.map_or(String::new(), |delay| {
        format!(
            "; over the run it waited {:.1} ms for a CPU",
            delay as f64 / 1e3
        )
    });
    let _ = writeln!(
        out,
        "kvsim's turns: {} in {:.1} ms; {} of {slow_ms} ms or more, {:.1} ms in all ({:.3}% of the run after start_wait): {} busy, {} preempted, {} off the CPU; page faults {} ({} in slow turns), involuntary switches {}{waited}",
        t.turns,
        t.wall_us as f64 / 1e3,
        t.slow_turns,
        t.slow_wall_us as f64 / 1e3,
        t.held_fraction * 100.0,
        t.slow_busy,
        t.slow_preempted,
        t.slow_off_cpu,
        t.minor_faults + t.major_faults,
        t.slow_minor_faults + t.slow_major_faults,
        t.involuntary_switches,
    );
    if let Some(w) = t.slowest.first() {
        let _ = writeln!(
            out,
            "kvsim's slowest turn: {:.3} ms at {:.3} s, {:?}: CPU {:.3} ms, off the CPU {:.3} ms, {} involuntary switches, {} page faults; recvmmsg {:.3}, routing {:.3}, sendmmsg {:.3}, requests and timers {:.3}, other {:.3} ms; {} datagrams routed, {} sent, {} requests started",
            w.wall_us as f64 / 1e3,
            w.at_us as f64 / 1e6,
            w.verdict,
            w.cpu_us as f64 / 1e3,
            w.off_cpu_us as f64 / 1e3,
            w.involuntary_switches,
            w.minor_faults + w.major_faults,
            w.recv_us as f64 / 1e3,
            w.route_us as f64 / 1e3,
            w.send_us as f64 / 1e3,
            w.fire_us as f64 / 1e3,
            w.other_us as f64 / 1e3,
            w.datagrams_routed,
            w.datagrams_sent,
            w.requests_started,
        );
    }
    let a = &t.attribution;
    if a.replies > 0 {
        let c = &a.reply_latency_without_slow_turns_s;
        let _ = writeln!(
            out,
            "Replies in flight during a kvsim turn of {slow_ms} ms or more: {} of {} ({:.3}%); reply latency without them p50/p99/p99.9/max: {} ms",
            a.replies_through_slow_turns,
            a.replies,
            a.replies_through_slow_turns as f64 * 100.0 / a.replies as f64,
            ms_each(&[c.p50, c.p99, c.p999, c.max])
        );
    }
    out
}

/// The CPU time of the run, and a warning when something else ran.
fn machine_lines(m: &MachineLoad) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "CPU time over the run: kvsim {:.2} s, replicas {:.2} s, other processes {:.2} s, steal {:.2} s (of {:.1} s on {} CPUs)",
        m.kvsim_s, m.replicas_s, m.others_s, m.steal_s, m.cpu_s_available, m.cpus,
    );
    if m.others_s > OTHERS_NOTICEABLE_S {
        let _ = writeln!(
            out,
            "{YELLOW}The machine was not quiet: other processes used {:.2} s of CPU during the run, so its timings are not kvsim's and the replicas' alone{END}",
            m.others_s
        );
    }
    out
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Seconds as milliseconds, slash-separated (`0.413/0.715/36.576`).
fn ms_each(seconds: &[f64]) -> String {
    seconds.iter().map(|&s| ms(s)).collect::<Vec<_>>().join("/")
}

fn ms(s: f64) -> String {
    format!("{:.3}", s * 1000.0)
}

/// One row of the `all` table.
pub struct Row {
    pub scenario: String,
    pub outcome: Result<Outcome, String>,
}

/// The table after `kvsim all`.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let width = rows
        .iter()
        .map(|r| r.scenario.len())
        .max()
        .unwrap_or(8)
        .max(8);
    let _ = writeln!(
        out,
        "{:<width$}  {:<6}  {:>4} {:>4} {:>4} {:>4}  {:>8} {:>6} {:>5} {:>10} {:>8}  notes",
        "scenario",
        "result",
        "msgs",
        "fail",
        "dup",
        "lat",
        "messages",
        "fails",
        "dups",
        "median_ms",
        "p99_ms",
    );
    for r in rows {
        match &r.outcome {
            Ok(o) => {
                let tiers: Vec<String> = o
                    .tiers
                    .iter()
                    .map(|t| {
                        if o.passed {
                            t.tier.to_string()
                        } else {
                            "-".into()
                        }
                    })
                    .collect();
                let failed = o.failed_checks();
                let _ = writeln!(
                    out,
                    "{:<width$}  {:<6}  {:>4} {:>4} {:>4} {:>4}  {:>8} {:>6} {:>5} {:>10.3} {:>8.3}  {}",
                    r.scenario,
                    if o.passed { "PASS" } else { "FAIL" },
                    tiers[0],
                    tiers[1],
                    tiers[2],
                    tiers[3],
                    o.stats.total_msgs,
                    o.stats.failures,
                    o.stats.duplicates,
                    o.stats.median_latency * 1000.0,
                    o.extra.reply_latency_s.p99 * 1000.0,
                    if failed.is_empty() {
                        String::new()
                    } else {
                        format!("failed: {}", failed.join(", "))
                    }
                );
            }
            Err(e) => {
                let _ = writeln!(out, "{:<width$}  {:<6}  {e}", r.scenario, "ERROR");
            }
        }
    }
    let passed = rows
        .iter()
        .filter(|r| r.outcome.as_ref().is_ok_and(|o| o.passed))
        .count();
    let _ = writeln!(
        out,
        "Passed {passed} out of {} tests (tiers: 0 bonus, 1 full, 2 partial, 3 none)",
        rows.len()
    );
    out
}

/// The JSON report of one or several runs.
pub fn json(rows: &[Row]) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| match &r.outcome {
            Ok(o) => serde_json::to_value(o).unwrap_or(serde_json::Value::Null),
            Err(e) => serde_json::json!({ "scenario": r.scenario, "error": e }),
        })
        .collect();
    serde_json::json!({ "runs": runs })
}

/// Writes the JSON report of `rows` to `path`.
pub fn write_json(path: &Path, rows: &[Row]) -> Result<(), String> {
    let text = serde_json::to_string_pretty(&json(rows)).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
