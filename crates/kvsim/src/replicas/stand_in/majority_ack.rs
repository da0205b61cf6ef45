//! `majority-ack`: the cheapest protocol that waits for a majority. The lowest living ID
//! leads. It numbers each put, and sends the puts in rounds to as many followers as a
//! majority needs (the lowest living IDs): one round in flight at a time, and the puts that
//! arrive meanwhile go together in the next, so that under load a round carries many puts
//! (as a Raft leader's batched, coalesced appends do). A follower acknowledges at once what
//! it has received without a gap; once a majority (the leader included) has a put, the
//! leader applies it to its map and answers `ok`. Gets are answered at once from that map.
//! A round unanswered for 20 ms is sent again, to every living follower.
//!
//! No log, no terms, no elections, no recovery: a leader that loses its place redirects
//! what it holds, and a new leader starts from an empty map. Its figures are what waiting
//! for a majority costs through kvsim, and nothing more.
//!
//! Messages: `fwd` (leader to follower) carries `from` and `upto`, the numbers of its
//! first and last put, and `puts`, a list of `[key, value]`; `ack` (follower to leader)
//! carries `upto`, the last number it has with none missing before it.

use ahash::AHashMap;
use serde::Deserialize;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::peers::Peers;
use super::{Behaviour, Escaped, Outgoing};
use crate::network::wire::Header;
use raft::NodeId;

/// A round unanswered this long is sent again.
const ROUND_RETRY: Duration = Duration::from_millis(20);
/// Bytes of puts in one `fwd` datagram (well under the 65,507 a datagram can carry).
const FWD_PUTS_BYTES_MAX: usize = 60_000;

struct Pending {
    seq: u64,
    client: Box<str>,
    mid: Box<str>,
    key: Box<str>,
    value: Box<str>,
}

struct Round {
    upto: u64,
    sent_at: Instant,
}

/// The numbers a `fwd` or an `ack` carries.
#[derive(Deserialize, Default)]
struct Span {
    #[serde(default)]
    from: u64,
    #[serde(default)]
    upto: u64,
}

pub(super) struct MajorityAck {
    peers: Peers,
    /// Followers whose acknowledgements, with the leader's own copy, make a majority.
    followers_needed: usize,
    /// Committed puts, as the leader applied them.
    store: AHashMap<Box<str>, Box<str>>,
    /// Leader: puts not yet committed, oldest first, numbered from `committed + 1`.
    pending: VecDeque<Pending>,
    next_seq: u64,
    /// Leader: the first put not yet sent in a round.
    unsent_from: u64,
    committed: u64,
    round: Option<Round>,
    /// Leader: per peer, the last put it acknowledged.
    acked: Vec<(NodeId, u64)>,
    /// Follower: the leader it follows and the last put it has with none missing.
    following: Option<(NodeId, u64)>,
    was_leader: bool,
}

impl MajorityAck {
    pub(super) fn new(id: NodeId, peers: &[NodeId], keys: usize) -> MajorityAck {
        let cluster = peers.len() + 1;
        MajorityAck {
            peers: Peers::new(id, peers),
            followers_needed: cluster / 2,
            store: AHashMap::with_capacity(keys),
            pending: VecDeque::new(),
            next_seq: 1,
            unsent_from: 1,
            committed: 0,
            round: None,
            acked: peers.iter().map(|&p| (p, 0)).collect(),
            following: None,
            was_leader: false,
        }
    }

    /// Sends puts `from..=upto` to `to`, in as many datagrams as they need.
    fn forward(&self, out: &mut Outgoing, to: NodeId, from: u64, upto: u64) {
        let me = self.peers.id;
        let first = self.pending.front().map_or(upto + 1, |p| p.seq);
        let mut puts = String::new();
        let mut chunk_from = from;
        for p in self
            .pending
            .iter()
            .skip(from.saturating_sub(first) as usize)
        {
            if p.seq > upto {
                break;
            }
            if !puts.is_empty() {
                puts.push(',');
            }
            let _ = write!(puts, r#"["{}", "{}"]"#, Escaped(&p.key), Escaped(&p.value));
            if puts.len() >= FWD_PUTS_BYTES_MAX || p.seq == upto {
                let rest = format!(
                    r#", "from": {chunk_from}, "upto": {}, "puts": [{puts}]"#,
                    p.seq
                );
                out.peer_message(me, to, me, "fwd", &rest);
                puts.clear();
                chunk_from = p.seq + 1;
            }
        }
    }

    /// Starts a round with the puts that arrived since the last, if none is in flight.
    fn start_round(&mut self, now: Instant, out: &mut Outgoing) {
        if self.round.is_some() || self.unsent_from >= self.next_seq {
            return;
        }
        let (from, upto) = (self.unsent_from, self.next_seq - 1);
        let alive: Vec<NodeId> = self.peers.alive(now).take(self.followers_needed).collect();
        for to in alive {
            self.forward(out, to, from, upto);
        }
        self.round = Some(Round { upto, sent_at: now });
        self.unsent_from = self.next_seq;
    }

    /// Applies and answers every put a majority has.
    fn commit(&mut self, now: Instant, out: &mut Outgoing) {
        let mut acks: Vec<u64> = self.acked.iter().map(|&(_, a)| a).collect();
        acks.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&majority_has) = acks.get(self.followers_needed.saturating_sub(1)) else {
            return;
        };
        let me = self.peers.id;
        while self.pending.front().is_some_and(|p| p.seq <= majority_has) {
            let p = self.pending.pop_front().expect("front was just seen");
            out.reply(me, me, &p.client, "ok", &p.mid, None);
            self.store.insert(p.key, p.value);
            self.committed = p.seq;
        }
        if self
            .round
            .as_ref()
            .is_some_and(|r| r.upto <= self.committed)
        {
            self.round = None;
            self.start_round(now, out);
        }
    }

    /// No longer the leader: what it held goes to the new one.
    fn step_down(&mut self, leader: NodeId, out: &mut Outgoing) {
        let me = self.peers.id;
        for p in self.pending.drain(..) {
            out.reply(me, leader, &p.client, "redirect", &p.mid, None);
        }
        self.round = None;
        self.unsent_from = self.next_seq;
        self.committed = self.next_seq - 1;
        for (_, a) in &mut self.acked {
            *a = self.committed;
        }
    }
}

impl Behaviour for MajorityAck {
    fn on_message(&mut self, now: Instant, msg: &Header<'_>, raw: &[u8], out: &mut Outgoing) {
        self.peers.heard(now, msg.src.as_str());
        let me = self.peers.id;
        let leader = self.peers.leader(now);
        if self.was_leader && leader != me {
            self.step_down(leader, out);
        }
        self.was_leader = leader == me;
        match msg.kind.as_str() {
            Some("fwd") => {
                let (Some(src), Ok(span)) = (msg.src.id(), serde_json::from_slice::<Span>(raw))
                else {
                    return;
                };
                let has = match self.following {
                    Some((l, has)) if l == src => has,
                    _ => span.from.saturating_sub(1),
                };
                let has = if span.from <= has + 1 {
                    has.max(span.upto)
                } else {
                    has
                };
                self.following = Some((src, has));
                out.peer_message(me, src, leader, "ack", &format!(r#", "upto": {has}"#));
            }
            Some("ack") if leader == me => {
                let (Some(src), Ok(span)) = (msg.src.id(), serde_json::from_slice::<Span>(raw))
                else {
                    return;
                };
                if let Some((_, a)) = self.acked.iter_mut().find(|(p, _)| *p == src) {
                    *a = (*a).max(span.upto.min(self.next_seq - 1));
                }
                self.commit(now, out);
            }
            Some(kind @ ("get" | "put")) => {
                let (Some(client), Some(mid)) = (msg.src.as_str(), msg.mid.as_str()) else {
                    return;
                };
                let key = msg.key.as_str().unwrap_or_default();
                if leader != me {
                    out.reply(me, leader, client, "redirect", mid, None);
                } else if kind == "put" {
                    self.pending.push_back(Pending {
                        seq: self.next_seq,
                        client: client.into(),
                        mid: mid.into(),
                        key: key.into(),
                        value: msg.value.as_str().unwrap_or_default().into(),
                    });
                    self.next_seq += 1;
                } else {
                    let value = self.store.get(key).map_or("", |v| v);
                    out.reply(me, me, client, "ok", mid, Some(value));
                }
            }
            _ => {}
        }
    }

    fn after_batch(&mut self, now: Instant, out: &mut Outgoing) {
        if self.peers.leader(now) == self.peers.id {
            self.start_round(now, out);
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Outgoing) {
        self.peers.tick(now, out);
        let leader = self.peers.leader(now);
        if self.was_leader && leader != self.peers.id {
            self.step_down(leader, out);
            self.was_leader = false;
        }
        let Some(round) = &self.round else {
            return;
        };
        if now.duration_since(round.sent_at) >= ROUND_RETRY {
            let (from, upto) = (self.committed + 1, round.upto);
            let alive: Vec<NodeId> = self.peers.alive(now).collect();
            for to in alive {
                self.forward(out, to, from, upto);
            }
            self.round = Some(Round { upto, sent_at: now });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicas::stand_in::tests::{feed, sent};

    fn put(mid: &str, key: &str) -> String {
        format!(
            r#"{{"src": "0015", "dst": "0000", "leader": "0000", "type": "put", "MID": "{mid}", "key": "{key}", "value": "v-{mid}"}}"#
        )
    }

    fn ack(from: &str, upto: u64) -> String {
        format!(
            r#"{{"src": "{from}", "dst": "0000", "leader": "0000", "type": "ack", "upto": {upto}}}"#
        )
    }

    #[test]
    fn puts_are_answered_once_a_majority_has_them_one_round_at_a_time() {
        let t0 = Instant::now();
        let peers = [NodeId(1), NodeId(2), NodeId(3), NodeId(4)];
        let mut l = MajorityAck::new(NodeId(0), &peers, 16);
        let mut out = Outgoing::default();
        feed(&mut l, t0, &put("M1", "a"), &mut out);
        feed(&mut l, t0, &put("M2", "b"), &mut out);
        l.after_batch(t0, &mut out);
        let v = sent(&mut out);
        // Two of the four followers make a majority of five with the leader.
        assert_eq!(v.len(), 2);
        assert_eq!(
            (&v[0]["type"], &v[0]["dst"]),
            (&"fwd".into(), &"0001".into())
        );
        assert_eq!(v[1]["dst"], "0002");
        assert_eq!((&v[0]["from"], &v[0]["upto"]), (&1.into(), &2.into()));
        assert_eq!(v[0]["puts"][1][0], "b");

        // A third put waits for the round in flight.
        feed(&mut l, t0, &put("M3", "c"), &mut out);
        l.after_batch(t0, &mut out);
        assert!(sent(&mut out).is_empty());

        // One follower is not a majority; two are, and the next round leaves.
        feed(&mut l, t0, &ack("0001", 2), &mut out);
        assert!(sent(&mut out).is_empty());
        feed(&mut l, t0, &ack("0002", 2), &mut out);
        let v = sent(&mut out);
        let types: Vec<&str> = v.iter().map(|m| m["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["ok", "ok", "fwd", "fwd"]);
        assert_eq!((&v[0]["MID"], &v[1]["MID"]), (&"M1".into(), &"M2".into()));
        assert_eq!((&v[2]["from"], &v[2]["upto"]), (&3.into(), &3.into()));

        // A get reads what was committed.
        let get = r#"{"src": "0015", "dst": "0000", "leader": "0000", "type": "get", "MID": "G", "key": "b"}"#;
        feed(&mut l, t0, get, &mut out);
        assert_eq!(sent(&mut out)[0]["value"], "v-M2");
    }

    #[test]
    fn a_follower_acknowledges_what_it_has_without_a_gap() {
        let t0 = Instant::now();
        let mut f = MajorityAck::new(NodeId(1), &[NodeId(0), NodeId(2)], 16);
        let mut out = Outgoing::default();
        let fwd = |from: u64, upto: u64| {
            format!(
                r#"{{"src": "0000", "dst": "0001", "leader": "0000", "type": "fwd", "from": {from}, "upto": {upto}, "puts": []}}"#
            )
        };
        feed(&mut f, t0, &fwd(1, 5), &mut out);
        feed(&mut f, t0, &fwd(9, 12), &mut out); // 6 to 8 lost
        feed(&mut f, t0, &fwd(6, 8), &mut out);
        let v = sent(&mut out);
        let upto: Vec<u64> = v.iter().map(|m| m["upto"].as_u64().unwrap()).collect();
        assert_eq!(upto, [5, 5, 8]);
        assert_eq!(
            (&v[0]["type"], &v[0]["dst"]),
            (&"ack".into(), &"0000".into())
        );
    }

    #[test]
    fn an_unanswered_round_is_sent_again_to_every_living_follower() {
        let t0 = Instant::now();
        let mut l = MajorityAck::new(NodeId(0), &[NodeId(1), NodeId(2)], 16);
        let mut out = Outgoing::default();
        feed(&mut l, t0, &put("M1", "a"), &mut out);
        l.after_batch(t0, &mut out);
        assert_eq!(
            sent(&mut out).len(),
            1,
            "one follower makes a majority of three"
        );
        l.on_tick(t0 + ROUND_RETRY, &mut out);
        let v = sent(&mut out);
        let fwd: Vec<&str> = v
            .iter()
            .filter(|m| m["type"] == "fwd")
            .map(|m| m["dst"].as_str().unwrap())
            .collect();
        assert_eq!(fwd, ["0001", "0002"]);
    }
}
