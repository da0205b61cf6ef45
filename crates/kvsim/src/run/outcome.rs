//! The outcome of a run: everything it produced, and the work at its end that makes it
//! (the replicas stopped, the figures derived from what was counted, the classic checks
//! plus linearizability, the tiers).

use super::Options;
use super::Sim;
use crate::checks::linearizability::{self, LinReport};
use crate::checks::score::{self, Check, Tier};
use crate::measure::machine_load;
use crate::measure::stats::{Extra, Percentiles, Stats};
use crate::measure::throughput;
use crate::report::html::RunData;

/// Everything a run produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub seed: u64,
    pub passed: bool,
    pub stats: Stats,
    pub checks: Vec<Check>,
    /// Scored even when a check failed (the classic then skips them; so does our summary).
    pub tiers: Vec<Tier>,
    pub extra: Extra,
    pub linearizability: LinReport,
    /// What the HTML report draws (when `Options::page` asked for it).
    #[serde(skip)]
    pub page: Option<Box<RunData>>,
}

impl Outcome {
    /// The names of the checks it failed, in the classic order.
    pub fn failed_checks(&self) -> Vec<&'static str> {
        self.checks
            .iter()
            .filter(|c| !c.holds())
            .map(|c| c.name)
            .collect()
    }
}

impl Sim<'_> {
    /// Stops the replicas and makes the outcome of what the run counted.
    pub(super) fn finish(mut self, seed: u64, opts: &Options) -> Outcome {
        let end_us = self.now_us();
        self.note_load_cpus();
        self.sample_sockets();
        for r in 0..self.n {
            self.replicas[r].kill();
        }
        // The replicas are reaped: their CPU time is in our children's.
        self.extra.machine =
            machine_load::Reading::now().since(&self.machine_start, end_us as f64 / 1e6);
        if self.leader.is_none()
            && self.extra.first_leader_s.is_some()
            && let Some(since) = self.leaderless_since_us
        {
            let gap_s = end_us.saturating_sub(since) as f64 / 1e6;
            self.extra.leaderless_s_max = self.extra.leaderless_s_max.max(gap_s);
        }
        // Down for a restart at the end is neither killed nor died.
        let restarting = self.restarting.iter().filter(|&&r| r).count();
        self.stats.died = (self.n - self.living_list.len() - restarting) as u64 - self.stats.killed;
        self.extra.unanswered = self.clients.finalize(&mut self.stats);
        self.stats.finalize();
        let cfg = self.cfg;
        let e = &mut self.extra;
        e.reply_latency_s = Percentiles::of_sorted(&self.stats.latencies_s);
        self.clients.op_latencies_s.sort_by(f64::total_cmp);
        e.op_latency_s = Percentiles::of_sorted(&self.clients.op_latencies_s);
        e.get_oks = self.clients.get_oks;
        e.put_oks = self.clients.put_oks;
        e.mids_with_two_replies = self.clients.mids_with_two_replies;
        e.incorrect_from_unacked_put = self.clients.incorrect_from_unacked_put;
        e.throughput_ops_per_s = (e.get_oks + e.put_oks) as f64 / cfg.lifetime_s;
        e.msgs_per_committed_put = if e.put_oks > 0 {
            self.stats.total_msgs as f64 / e.put_oks as f64
        } else {
            0.0
        };
        e.committed =
            throughput::committed_puts(&self.clients.history, (cfg.lifetime_s * 1e6) as u64);
        self.request_lateness_s.sort_by(f64::total_cmp);
        e.request_lateness_s = Percentiles::of_sorted(&self.request_lateness_s);
        let late_from = self.request_lateness_s.partition_point(|&s| s < 1e-3);
        e.requests_started_late = (self.request_lateness_s.len() - late_from) as u64;
        e.outstanding_max = self.clients.outstanding_max;
        let load_from_us = (cfg.start_wait_s * 1e6) as u64;
        e.turns =
            std::mem::take(&mut self.turns).finish(load_from_us, end_us, &self.clients.history);
        e.cpu_stalls = self
            .stall_probe
            .take()
            .map(|probe| probe.finish(&self.clients.history));
        self.memory.finalize(e.put_oks);
        e.memory = self.memory;
        let us_per = |ns: u64, count: u64| {
            if count > 0 {
                ns as f64 / count as f64 / 1000.0
            } else {
                0.0
            }
        };
        let routed = e.routed_datagrams;
        e.sim_cost_us_per_datagram =
            us_per(e.recv_ns_total + e.logic_ns_total + e.send_ns_total, routed);
        e.sim_cost_recv_us_per_datagram = us_per(e.recv_ns_total, routed);
        e.sim_cost_logic_us_per_datagram = us_per(e.logic_ns_total, routed);
        e.sim_cost_send_us_per_datagram = us_per(e.send_ns_total, routed);
        e.cpu_us_per_datagram = us_per(e.loop_cpu_ns, routed);
        e.recv_us_per_call = us_per(e.recv_ns_total, e.recv_calls);
        e.send_us_per_call = us_per(e.send_ns_total, e.send_calls);
        e.send_us_per_sent_datagram = us_per(e.send_ns_total, e.sends);
        e.wall_s = end_us as f64 / 1e6;

        let lin = linearizability::check_history(&self.clients, opts.lin_states_max);
        let mut checks = score::classic_checks(&self.stats, cfg, self.clients.put_oks);
        let what = if lin.violations.len() == 1 {
            "key is"
        } else {
            "keys are"
        };
        checks.push(Check {
            name: "linearizable",
            passed: lin.violations.is_empty(),
            message: format!(
                "Error: the history of {} {what} not linearizable",
                lin.violations.len()
            ),
            skipped: None,
        });
        if let Some(stand_in) = opts.stand_in {
            for skip in stand_in.skipped_checks(cfg) {
                if let Some(c) = checks.iter_mut().find(|c| c.name == skip.check) {
                    c.skipped = Some(skip.why);
                }
            }
        }
        let passed = checks.iter().all(Check::holds);
        let tiers = score::performance(&self.stats, cfg);
        let page = opts.page.then(|| {
            Box::new(RunData::new(
                cfg,
                &self.timeline,
                &self.clients,
                &lin,
                end_us,
                opts.stand_in.map(|s| s.notice()),
            ))
        });
        Outcome {
            scenario: cfg.name.clone(),
            seed,
            passed,
            stats: self.stats,
            checks,
            tiers,
            extra: self.extra,
            linearizability: lin,
            page,
        }
    }
}
