//! Which attempts the scatter draws. Up to [`SCATTER_ATTEMPTS_MAX`], all of them; past that
//! (a high-load run has half a million), a sample chosen by request, so that a request drawn
//! has all its attempts: every request that got a redirect, a fail or no reply (or one in
//! k of them, if they alone are more than half the budget), the slowest of those answered
//! `ok` at once, and one in k of the rest, which is uniform over time. The page says which
//! rule drew it; what it counts (percentile lines, throughput) comes from every attempt.

use serde::Serialize;

use super::model::{Attempts, short};
use crate::clients::{Clients, Reply};

/// Attempts drawn at most: a page with this many opens in a second or two and is about a
/// megabyte of data.
pub const SCATTER_ATTEMPTS_MAX: usize = 12_000;
/// The slowest requests kept, as a share of those answered `ok` at once.
const SLOWEST_SHARE: f64 = 0.01;

#[derive(Debug, Clone, Serialize)]
pub struct Sampling {
    pub attempts_total: usize,
    pub attempts_shown: usize,
    /// How the attempts shown were chosen; empty when all are shown.
    pub method: String,
}

#[derive(Clone, Copy, Default)]
struct Request {
    attempts: usize,
    /// Got a redirect, a fail, or no reply at some attempt.
    troubled: bool,
    /// First send to `ok`, for a request answered `ok` at once.
    latency_us: u64,
}

/// The attempts the scatter draws, at most about `budget` (a request drawn brings all its
/// attempts, so a few more may come).
pub fn attempts(clients: &Clients, budget: usize) -> (Attempts, Sampling) {
    let total = clients.history.len();
    let keep = if total <= budget {
        None
    } else {
        Some(choose(clients, budget))
    };
    let mut out = Attempts::default();
    for a in clients.attempt_records() {
        if let Some((keep, _)) = &keep
            && !keep[a.op.group as usize]
        {
            continue;
        }
        let reply = match a.reply {
            Reply::Ok => 0,
            Reply::Redirect => 1,
            Reply::Fail => 2,
            Reply::Unanswered => 3,
        };
        out.t.push(a.op.invoke_us);
        out.lat.push(
            a.op.response_us
                .map_or(-1, |r| r.saturating_sub(a.op.invoke_us) as i64),
        );
        out.put.push(u8::from(!a.op.get));
        out.reply.push(reply);
        out.dst.push(a.dst.map_or(-1, |d| i32::from(d.0)));
        out.client.push(a.op.client);
        out.req.push(a.op.group);
        out.mid.push(String::from_utf8_lossy(a.mid).into_owned());
        out.key.push(short(&clients.keys[a.op.key as usize]));
    }
    let sampling = Sampling {
        attempts_total: total,
        attempts_shown: out.t.len(),
        method: keep.map(|(_, method)| method).unwrap_or_default(),
    };
    (out, sampling)
}

/// Per request, whether it is drawn, and the rule in a sentence.
fn choose(clients: &Clients, budget: usize) -> (Vec<bool>, String) {
    let groups = clients
        .history
        .iter()
        .map(|h| h.group as usize + 1)
        .max()
        .unwrap_or(0);
    let mut requests = vec![Request::default(); groups];
    let mut first_us = vec![u64::MAX; groups];
    for a in clients.attempt_records() {
        let g = a.op.group as usize;
        let r = &mut requests[g];
        r.attempts += 1;
        first_us[g] = first_us[g].min(a.op.invoke_us);
        match (a.reply, a.op.response_us) {
            (Reply::Ok, Some(at)) => r.latency_us = at.saturating_sub(first_us[g]),
            _ => r.troubled = true,
        }
    }
    let mut keep = vec![false; groups];
    let mut used = 0;

    let troubled: Vec<usize> = (0..groups).filter(|&g| requests[g].troubled).collect();
    let troubled_attempts: usize = troubled.iter().map(|&g| requests[g].attempts).sum();
    let troubled_every = troubled_attempts.div_ceil(budget / 2).max(1);
    for (k, &g) in troubled.iter().enumerate() {
        if k % troubled_every == 0 {
            keep[g] = true;
            used += requests[g].attempts;
        }
    }

    let mut answered: Vec<usize> = (0..groups)
        .filter(|&g| !requests[g].troubled && requests[g].attempts > 0)
        .collect();
    answered.sort_by_key(|&g| std::cmp::Reverse(requests[g].latency_us));
    let slowest = ((answered.len() as f64 * SLOWEST_SHARE).ceil() as usize)
        .min(budget / 4)
        .min(answered.len());
    for &g in &answered[..slowest] {
        keep[g] = true;
        used += 1;
    }
    let slow_from_us = answered[..slowest]
        .last()
        .map_or(0, |&g| requests[g].latency_us);

    let rest = answered.len() - slowest;
    let left = budget.saturating_sub(used).max(1);
    let rest_every = rest.div_ceil(left).max(1);
    // In request order, which is the order they were made: uniform over time.
    let mut rest_in_order: Vec<usize> = answered[slowest..].to_vec();
    rest_in_order.sort_unstable();
    for (k, &g) in rest_in_order.iter().enumerate() {
        if k % rest_every == 0 {
            keep[g] = true;
        }
    }

    let troubled_rule = if troubled_every == 1 {
        format!(
            "every attempt of the {} requests that got a redirect, a fail or no reply",
            troubled.len()
        )
    } else {
        format!(
            "one in {troubled_every} of the {} requests that got a redirect, a fail or no reply (all their attempts)",
            troubled.len()
        )
    };
    let method = format!(
        "Sampled: {troubled_rule}; the {slowest} slowest requests answered ok at once (from {:.3} ms up); and one in {rest_every} of the other {rest} requests, in the order they were made, so uniform over time. Percentile lines and throughput count every attempt.",
        slow_from_us as f64 / 1e3
    );
    (keep, method)
}
