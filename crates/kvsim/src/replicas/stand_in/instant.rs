//! `instant`: the relay's ceiling. The lowest living ID answers every put and get at once
//! from a map of its own and replicates nothing; the others redirect clients to it. What a
//! run with it measures is kvsim alone: its routing, its system calls, its clients, with a
//! replica that costs next to nothing.

use ahash::AHashMap;
use std::time::Instant as Time;

use super::peers::Peers;
use super::{Behaviour, Outgoing};
use crate::network::wire::Header;
use raft::NodeId;

pub(super) struct Instant {
    peers: Peers,
    store: AHashMap<Box<str>, Box<str>>,
}

impl Instant {
    pub(super) fn new(id: NodeId, peers: &[NodeId], keys: usize) -> Instant {
        Instant {
            peers: Peers::new(id, peers),
            store: AHashMap::with_capacity(keys),
        }
    }
}

impl Behaviour for Instant {
    fn on_message(&mut self, now: Time, msg: &Header<'_>, _raw: &[u8], out: &mut Outgoing) {
        self.peers.heard(now, msg.src.as_str());
        let kind = msg.kind.as_str();
        if !matches!(kind, Some("get" | "put")) {
            return;
        }
        let (Some(client), Some(mid)) = (msg.src.as_str(), msg.mid.as_str()) else {
            return;
        };
        let me = self.peers.id;
        let leader = self.peers.leader(now);
        let key = msg.key.as_str().unwrap_or_default();
        if leader != me {
            out.reply(me, leader, client, "redirect", mid, None);
        } else if kind == Some("put") {
            let value = msg.value.as_str().unwrap_or_default();
            match self.store.get_mut(key) {
                Some(v) => *v = value.into(),
                None => {
                    self.store.insert(key.into(), value.into());
                }
            }
            out.reply(me, me, client, "ok", mid, None);
        } else {
            let value = self.store.get(key).map_or("", |v| v);
            out.reply(me, me, client, "ok", mid, Some(value));
        }
    }

    fn on_tick(&mut self, now: Time, out: &mut Outgoing) {
        self.peers.tick(now, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicas::stand_in::tests::{feed, sent};

    const PUT: &str = r#"{"src": "0015", "dst": "0000", "leader": "FFFF", "type": "put", "MID": "M1", "key": "k", "value": "v1"}"#;
    const GET: &str = r#"{"src": "0015", "dst": "0000", "leader": "0000", "type": "get", "MID": "M2", "key": "k"}"#;

    #[test]
    fn the_leader_answers_at_once_and_the_others_redirect() {
        let t0 = Time::now();
        let mut out = Outgoing::default();
        let mut leader = Instant::new(NodeId(0), &[NodeId(1), NodeId(2)], 16);
        feed(&mut leader, t0, GET, &mut out);
        feed(&mut leader, t0, PUT, &mut out);
        feed(&mut leader, t0, GET, &mut out);
        let v = sent(&mut out);
        assert_eq!(
            (&v[0]["type"], &v[0]["value"], &v[0]["MID"]),
            (&"ok".into(), &"".into(), &"M2".into())
        );
        assert_eq!(
            (&v[1]["type"], &v[1]["dst"]),
            (&"ok".into(), &"0015".into())
        );
        assert_eq!(v[2]["value"], "v1");
        assert_eq!(v.len(), 3, "nothing goes to the other replicas");

        let mut other = Instant::new(NodeId(1), &[NodeId(0), NodeId(2)], 16);
        feed(&mut other, t0, PUT, &mut out);
        let v = sent(&mut out);
        assert_eq!(
            (&v[0]["type"], &v[0]["leader"]),
            (&"redirect".into(), &"0000".into())
        );
    }
}
