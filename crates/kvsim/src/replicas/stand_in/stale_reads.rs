//! `stale-reads`: a store that is wrong on purpose. The lowest replica ID heard from lately
//! leads (`peers`); it applies a put at once, answers `ok`, and copies it to the others (so
//! a successor has it), but answers gets from a snapshot of its store taken once a second.
//! A get that follows its own client's put within that second misses it, which is both an
//! incorrect reply to the classic check and a violation of linearizability. Followers
//! redirect clients to the leader they know.

use ahash::AHashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::peers::Peers;
use super::{Behaviour, Escaped, Outgoing};
use crate::network::wire::Header;
use raft::NodeId;

const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

pub(super) struct StaleReads {
    peers: Peers,
    store: AHashMap<String, String>,
    /// What gets are answered from.
    snapshot: AHashMap<String, String>,
    next_snapshot: Instant,
}

impl StaleReads {
    pub(super) fn new(id: NodeId, peers: &[NodeId]) -> StaleReads {
        StaleReads {
            peers: Peers::new(id, peers),
            store: AHashMap::new(),
            snapshot: AHashMap::new(),
            next_snapshot: Instant::now() + SNAPSHOT_EVERY,
        }
    }
}

impl Behaviour for StaleReads {
    fn on_message(&mut self, now: Instant, msg: &Header<'_>, _raw: &[u8], out: &mut Outgoing) {
        self.peers.heard(now, msg.src.as_str());
        let me = self.peers.id;
        let leader = self.peers.leader(now);
        let key = msg.key.as_str().unwrap_or_default();
        let value = msg.value.as_str().unwrap_or_default();
        let (Some(kind), Some(src)) = (msg.kind.as_str(), msg.src.as_str()) else {
            return;
        };
        let mid = msg.mid.as_str().unwrap_or_default();
        match kind {
            "copy" => {
                self.store.insert(key.to_string(), value.to_string());
            }
            "get" | "put" if leader != me => out.reply(me, leader, src, "redirect", mid, None),
            "put" => {
                self.store.insert(key.to_string(), value.to_string());
                out.reply(me, me, src, "ok", mid, None);
                let mut rest = String::new();
                let _ = write!(
                    rest,
                    r#", "key": "{}", "value": "{}""#,
                    Escaped(key),
                    Escaped(value)
                );
                out.peer_message(me, NodeId::BROADCAST, me, "copy", &rest);
            }
            "get" => {
                let value = self.snapshot.get(key).map_or("", String::as_str);
                out.reply(me, me, src, "ok", mid, Some(value));
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Outgoing) {
        if now >= self.next_snapshot {
            self.snapshot.clone_from(&self.store);
            self.next_snapshot = now + SNAPSHOT_EVERY;
        }
        self.peers.tick(now, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicas::stand_in::tests::{feed, sent};

    fn request(kind: &str, key: &str, value: Option<&str>) -> String {
        let value = value.map_or(String::new(), |v| format!(r#", "value": "{v}""#));
        format!(
            r#"{{"src": "0015", "dst": "0000", "leader": "FFFF", "type": "{kind}", "MID": "M1", "key": "{key}"{value}}}"#
        )
    }

    #[test]
    fn a_put_is_acknowledged_but_reads_see_it_only_after_the_next_snapshot() {
        let mut s = StaleReads::new(NodeId(0), &[NodeId(1), NodeId(2)]);
        let t0 = Instant::now();
        let mut out = Outgoing::default();
        feed(&mut s, t0, &request("put", "k", Some("v1")), &mut out);
        let v = sent(&mut out);
        assert_eq!(v[0]["type"], "ok");
        assert_eq!(v[1]["type"], "copy", "copied to the followers");
        assert_eq!((&v[1]["key"], &v[1]["value"]), (&"k".into(), &"v1".into()));
        feed(&mut s, t0, &request("get", "k", None), &mut out);
        assert_eq!(
            sent(&mut out)[0]["value"],
            "",
            "stale: the snapshot predates the put"
        );
        s.on_tick(t0 + SNAPSHOT_EVERY + Duration::from_millis(1), &mut out);
        out.clear();
        feed(&mut s, t0, &request("get", "k", None), &mut out);
        assert_eq!(sent(&mut out)[0]["value"], "v1");
    }

    #[test]
    fn a_copy_reaches_a_follower_and_a_follower_redirects() {
        let t0 = Instant::now();
        let mut s = StaleReads::new(NodeId(2), &[NodeId(0), NodeId(1)]);
        let mut out = Outgoing::default();
        feed(&mut s, t0, &request("get", "k", None), &mut out);
        let v = sent(&mut out);
        assert_eq!(
            (&v[0]["type"], &v[0]["leader"]),
            (&"redirect".into(), &"0000".into())
        );
        let copy = r#"{"src": "0000", "dst": "FFFF", "leader": "0000", "type": "copy", "key": "k", "value": "v"}"#;
        feed(&mut s, t0, copy, &mut out);
        assert_eq!(s.store.get("k").map(String::as_str), Some("v"));
    }
}
