//! Reply checks: each reply to a client matched to the attempt its MID names, checked as
//! the classic simulator checks it (a redirect or a fail is retried at once, a get's value
//! must be the client's last acknowledged put, a second reply is a duplicate or incorrect),
//! and at the end of the run the attempts that never got one.

use super::{AttemptState, Clients, KeyMode};
use crate::clients::indexed_ids::{self, Mid};
use crate::measure::stats::Stats;
use crate::network::wire::Header;
use crate::report::warnings::Warnings;

/// What a reply's MID names, for client `c`.
enum Match {
    /// An outstanding attempt of `c`, by index.
    Outstanding(usize),
    /// An attempt that got `ok`, whichever client it was for.
    Completed,
    /// Nothing `c` is waiting for; `second` when it is an attempt already answered.
    Unexpected { second: bool },
}

impl Clients {
    /// The id of a value a get returned. Ours name theirs, but only a full match proves it.
    fn value_id(&mut self, value: &str) -> u32 {
        if value.is_empty() {
            return 0;
        }
        if let Some(id) = indexed_ids::value_id(value)
            && self.values.get(id as usize).is_some_and(|v| v == value)
        {
            return id;
        }
        if let Some(&id) = self.foreign_values.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_string());
        self.foreign_values.insert(value.to_string(), id);
        id
    }

    /// The attempt a MID names, if we made it: its index is only a claim until the whole
    /// MID matches.
    fn attempt_of(&self, mid: &str) -> Option<usize> {
        let mid: &Mid = mid.as_bytes().try_into().ok()?;
        let i = indexed_ids::mid_attempt(mid)?;
        (self.attempts.get(i)?.mid == *mid).then_some(i)
    }

    fn match_mid(&self, c: usize, mid: Option<&str>) -> Match {
        let Some(i) = mid.and_then(|m| self.attempt_of(m)) else {
            return Match::Unexpected { second: false };
        };
        match self.attempts[i].state {
            AttemptState::Completed => Match::Completed,
            AttemptState::Outstanding if self.history[i].client as usize == c => {
                Match::Outstanding(i)
            }
            AttemptState::Outstanding => Match::Unexpected { second: false },
            AttemptState::Redirected | AttemptState::Failed => Match::Unexpected { second: true },
        }
    }

    /// A reply from a replica to client `c`. Returns the replica to send `self.out` to when
    /// the reply calls for a retry.
    // The arguments are the reply and the simulator state it touches; bundling them in a
    // struct would only move the list.
    #[allow(clippy::too_many_arguments)]
    pub fn on_reply(
        &mut self,
        c: usize,
        h: &Header<'_>,
        raw: &[u8],
        now_us: u64,
        living: &[usize],
        stats: &mut Stats,
        warn: &mut Warnings,
    ) -> Option<usize> {
        if h.mid.is_missing() {
            warn.raw("Message missing mid field", raw);
            stats.incorrect += 1;
            return None;
        }
        let kind = h.kind.as_str().unwrap_or("");
        if !matches!(kind, "ok" | "fail" | "redirect") {
            warn.raw("Unknown message type sent to client", raw);
            stats.incorrect += 1;
            return None;
        }
        let hist = match self.match_mid(c, h.mid.as_str()) {
            Match::Outstanding(hist) => {
                self.outstanding -= 1;
                hist
            }
            Match::Completed => {
                stats.duplicates += 1;
                self.mids_with_two_replies += 1;
                return None;
            }
            Match::Unexpected { second } => {
                if second {
                    self.mids_with_two_replies += 1;
                }
                warn.raw("client received an unexpected MID", raw);
                stats.incorrect += 1;
                return None;
            }
        };
        self.attempts[hist].state = if kind == "fail" {
            AttemptState::Failed
        } else {
            AttemptState::Redirected
        };
        let first_us = self.attempts[hist].first_us;
        let req = self.history[hist].clone();
        let leader = h
            .leader
            .canonical_id()
            .map(|id| usize::from(id.0))
            .filter(|&l| l < self.replicas);
        self.clients[c].leader = leader;
        stats
            .latencies_s
            .push(now_us.saturating_sub(req.invoke_us) as f64 / 1e6);
        self.history[hist].response_us = Some(now_us);

        if kind != "ok" {
            if kind == "fail" {
                if req.get {
                    stats.failed_get += 1;
                } else {
                    stats.failed_put += 1;
                }
            }
            stats.redirects += 1;
            return self.send(
                c, req.get, req.key, req.value, now_us, first_us, req.group, living, stats,
            );
        }

        self.attempts[hist].state = AttemptState::Completed;
        self.op_latencies_s
            .push(now_us.saturating_sub(first_us) as f64 / 1e6);
        if req.get {
            let Some(value) = h.value.as_str() else {
                warn.raw("get() response missing the value of the key", raw);
                stats.incorrect += 1;
                return None;
            };
            self.get_oks += 1;
            let value = self.value_id(value);
            let op = &mut self.history[hist];
            op.acked = true;
            op.value = value;
            if self.mode == KeyMode::PerClient && self.acked_values[req.key as usize] != value {
                warn.raw("client received an incorrect value for a key", raw);
                stats.incorrect += 1;
                // The classic check cannot know that a put this client never got an `ok`
                // for (its leader died, say) may still have committed; linearizability can.
                let own_unacked = self.history.iter().any(|h| {
                    !h.get
                        && !h.acked
                        && h.client == c as u32
                        && h.key == req.key
                        && h.value == value
                });
                if own_unacked {
                    self.incorrect_from_unacked_put += 1;
                }
            }
        } else {
            self.put_oks += 1;
            self.history[hist].acked = true;
            if self.mode == KeyMode::PerClient {
                let acked = &mut self.acked_values[req.key as usize];
                if *acked == 0 {
                    self.clients[c].item_keys.push(req.key);
                }
                *acked = req.value;
            }
        }
        None
    }

    /// Counts what is still outstanding as unanswered (the classic `finalize`), and
    /// returns them, oldest first, so a report can say where each one went.
    pub fn finalize(&mut self, stats: &mut Stats) -> Vec<Unanswered> {
        let mut unanswered = Vec::new();
        for (a, req) in self.attempts.iter().zip(&self.history) {
            if a.state != AttemptState::Outstanding {
                continue;
            }
            if req.get {
                stats.unanswered_get += 1;
            } else {
                stats.unanswered_put += 1;
            }
            unanswered.push(Unanswered {
                mid: String::from_utf8_lossy(&a.mid).into_owned(),
                client: self.clients[req.client as usize].id.to_string(),
                sent_to: a.dst.map_or_else(|| "none".to_string(), |d| d.to_string()),
                kind: if req.get { "get" } else { "put" },
                created_s: req.invoke_us as f64 / 1e6,
            });
        }
        unanswered.sort_by(|a, b| a.created_s.total_cmp(&b.created_s));
        unanswered
    }
}

/// A request that never got a reply.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unanswered {
    pub mid: String,
    pub client: String,
    pub sent_to: String,
    pub kind: &'static str,
    /// Seconds from the start of the run.
    pub created_s: f64,
}
