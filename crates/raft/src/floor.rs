//! The classic floor on messages, kept as a property of how the leader batches.
//!
//! The classic simulator fails a run whose replicas send fewer than
//! `requests × replicas × (1 − mix) × (1 − maximum_appends_batched_fraction)` messages
//! between them: batching may save at most that fraction of one append per put per
//! replica, at any request rate. The replica cannot read the fraction, so the leader holds
//! itself to the floor of fraction 0, with every message counted: for each put it appends,
//! at least `cluster size` messages sent to or received from followers, which is one
//! append of the put to half the cluster and its answer. Whatever fraction a scenario
//! sets, that is at or above its floor.
//!
//! The leader keeps the count in a [`FloorAccount`]: a put adds what it owes, every
//! message it sends to a follower or hears from one pays one. At a flush where the account
//! is short, once the answers to the appends in flight are counted in, the leader batches
//! less until what it sends covers the rest ([`Node::floor_plan`]): new entries go out at
//! once, without waiting for a round in flight; to more followers than a commit needs;
//! and, when every follower that lacks entries is already being sent them, in smaller
//! appends. It sends only entries the followers lack, never padding: the floor is met by
//! replicating less lazily, which is what it asks for.
//!
//! The classic loop relays a few hundred requests a second at most, so the floor binds
//! only at such rates: a put adds to the account only while puts come at no more than
//! `Config::floor_puts_per_s_max` (a token bucket of `Config::floor_burst_puts`). Past
//! that, batching runs free, as high-load scenarios (whose fraction is 0.999) need, and
//! what the burst before it owed is forgiven. What
//! the followers sent beyond the account is credit, capped at one burst's worth, so a
//! long quiet or busy stretch does not excuse the next one.

use crate::node::Node;
use crate::progress::{Progress, ReplicationState};
use crate::time::Time;

/// Millionths of a put: the token bucket's unit, so that refilling at a rate per second
/// from microseconds stays in whole numbers.
const MICRO_PUTS_PER_PUT: u64 = 1_000_000;

/// What a leader owes the floor: messages, and the puts that may still add to them.
#[derive(Debug)]
pub struct FloorAccount {
    /// Messages owed: `cluster size` per put, less each message sent to or received from a
    /// follower. Negative is credit.
    owed: i64,
    /// Puts that may add to `owed` now, in millionths of a put.
    allowance_micro_puts: u64,
    /// When the allowance was last refilled (`None`: not yet, it starts full).
    refilled_at: Option<Time>,
}

impl Default for FloorAccount {
    fn default() -> Self {
        Self::new()
    }
}

impl FloorAccount {
    pub fn new() -> FloorAccount {
        FloorAccount {
            owed: 0,
            allowance_micro_puts: 0,
            refilled_at: None,
        }
    }

    /// A put was appended at `now`: it owes `cluster_size` messages, if puts have come no
    /// faster than `puts_per_s_max` (allowing a burst of `burst_puts`). Credit is capped
    /// at one burst's messages.
    pub fn owe_put(
        &mut self,
        now: Time,
        cluster_size: usize,
        puts_per_s_max: u64,
        burst_puts: u64,
    ) {
        let full = burst_puts.saturating_mul(MICRO_PUTS_PER_PUT);
        self.allowance_micro_puts = match self.refilled_at {
            None => full,
            Some(at) => {
                let refill = now.since(at).as_micros().saturating_mul(puts_per_s_max);
                self.allowance_micro_puts.saturating_add(refill).min(full)
            }
        };
        self.refilled_at = Some(now);
        if self.allowance_micro_puts < MICRO_PUTS_PER_PUT {
            // Puts outrun the rate the classic relays: nothing owed binds any more, the
            // burst that led here included. Paying that off in one-entry appends, the
            // windows full, would hold the first hundreds of a high load's puts for tens
            // of milliseconds.
            self.owed = self.owed.min(0);
            return;
        }
        self.allowance_micro_puts -= MICRO_PUTS_PER_PUT;
        let size = i64::try_from(cluster_size).unwrap_or(i64::MAX);
        let credit_max = size.saturating_mul(i64::try_from(burst_puts).unwrap_or(i64::MAX));
        self.owed = self.owed.max(-credit_max).saturating_add(size);
    }

    /// A message went to a follower, or came from one.
    pub fn pay(&mut self) {
        self.owed = self.owed.saturating_sub(1);
    }

    /// Messages owed (negative: credit).
    pub fn owed(&self) -> i64 {
        self.owed
    }
}

/// What a leader's flush sends: new entries to the followers in `targets` (a bit per
/// peer), at most `entries_per_append` in one append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct FlushPlan {
    pub targets: u64,
    pub entries_per_append: usize,
}

/// Appends carrying entries that replicating to `p` would send now, at most
/// `entries_per_append` entries each (its pipeline window permitting), and the entries it
/// lacks.
fn appends_due(
    p: &Progress,
    last_index: u64,
    entries_per_append: usize,
    window: usize,
) -> (u64, u64) {
    let lacking = (last_index + 1).saturating_sub(p.next_index.0);
    let room = match p.state {
        ReplicationState::Replicate => window.saturating_sub(p.inflight.len()),
        ReplicationState::Probe => usize::from(p.inflight.is_empty()),
        ReplicationState::Snapshot => 0,
    } as u64;
    let per = entries_per_append.max(1) as u64;
    (lacking.div_ceil(per).min(room), lacking)
}

impl Node {
    /// Messages the leader is short of the floor once the appends in flight are answered
    /// (each answer pays one); 0 or less when it is not, or keeps no floor.
    pub(super) fn floor_shortfall(&self) -> i64 {
        let Some(leader) = self.leader_state.as_ref() else {
            return 0;
        };
        if !self.config.message_floor {
            return 0;
        }
        let answers_due: usize = leader.progress.iter().map(|p| p.inflight.len()).sum();
        leader.floor.owed() - i64::try_from(answers_due).unwrap_or(i64::MAX)
    }

    /// The flush that covers `shortfall` (see the module): `targets`, the followers a
    /// commit needs, widened to more followers that lack entries, best ranked first, and
    /// then, if all of them together would still fall short, appends cut smaller. Each
    /// append is counted with its answer.
    pub(super) fn floor_plan(&self, now: Time, targets: u64, shortfall: i64) -> FlushPlan {
        let normal = FlushPlan {
            targets,
            entries_per_append: self.config.append_entries_max,
        };
        let Some(leader) = self.leader_state.as_ref() else {
            return normal;
        };
        if shortfall <= 0 {
            return normal;
        }
        let last = self.log.last_index().0;
        let window = self.config.inflight_appends_max;
        let batched = self.config.append_entries_max;
        let due = |i: usize, per: usize| appends_due(&leader.progress[i], last, per, window);
        let wanted = u64::try_from(shortfall).unwrap_or(u64::MAX).div_ceil(2);
        let peers = self.peers.len();
        let mut chosen = targets;
        let mut planned: u64 = (0..peers)
            .filter(|&i| chosen & (1 << i) != 0)
            .map(|i| due(i, batched).0)
            .sum();
        let stall = self.stall_timeout();
        while planned < wanted {
            let best = (0..peers)
                .filter(|&i| chosen & (1 << i) == 0 && due(i, batched).0 > 0)
                .min_by_key(|&i| self.replication_rank(now, i, stall));
            let Some(i) = best else {
                break;
            };
            chosen |= 1 << i;
            planned += due(i, batched).0;
        }
        if planned >= wanted {
            return FlushPlan {
                targets: chosen,
                entries_per_append: batched,
            };
        }
        // Every follower that can take entries is chosen: cut them into enough appends,
        // as large as that allows (the largest size whose appends still cover the
        // shortfall; one entry each if none does, the pipeline windows being full).
        let appends = |per: usize| -> u64 {
            (0..peers)
                .filter(|&i| chosen & (1 << i) != 0)
                .map(|i| due(i, per).0)
                .sum()
        };
        let (mut covering, mut short) = (1, batched.max(1));
        while covering + 1 < short {
            let mid = covering + (short - covering) / 2;
            if appends(mid) >= wanted {
                covering = mid;
            } else {
                short = mid;
            }
        }
        FlushPlan {
            targets: chosen,
            entries_per_append: covering,
        }
    }
}
