//! `stale-reads`: a store that is wrong on purpose. The lowest replica ID heard from lately
//! leads; it applies a put at once, answers `ok`, and copies it to the others (so a
//! successor has it), but answers gets from a snapshot of its store taken once a second.
//! A get that follows its own client's put within that second misses it, which is both an
//! incorrect reply to the classic check and a violation of linearizability.
//!
//! Every replica says it is alive every 200 ms (`hb`, to all), and a replica unheard for
//! 600 ms is taken for dead; on either side of a partition the lowest ID leads, so a
//! partition also splits the store. Followers redirect clients to the leader they know.

use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::Behaviour;
use datagram::NodeId;

const HEARTBEAT: Duration = Duration::from_millis(200);
const PRESUMED_DEAD_AFTER: Duration = Duration::from_millis(600);
/// As a real replica waits for its peers' hellos before it speaks to them.
const FIRST_HEARTBEAT_AFTER: Duration = Duration::from_millis(300);
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

pub(super) struct StaleReads {
    id: NodeId,
    last_heard: HashMap<NodeId, Instant>,
    store: HashMap<String, String>,
    /// What gets are answered from.
    snapshot: HashMap<String, String>,
    next_snapshot: Instant,
    next_heartbeat: Instant,
}

impl StaleReads {
    pub(super) fn new(id: NodeId, peers: &[NodeId]) -> StaleReads {
        let now = Instant::now();
        // Peers count as heard at the start, so nobody claims to lead before it has heard
        // whether a lower ID is alive.
        let last_heard = peers.iter().map(|&p| (p, now)).collect();
        StaleReads {
            id,
            last_heard,
            store: HashMap::new(),
            snapshot: HashMap::new(),
            next_snapshot: now + SNAPSHOT_EVERY,
            next_heartbeat: now + FIRST_HEARTBEAT_AFTER,
        }
    }

    /// The lowest ID among this replica and the peers heard from lately.
    fn leader(&self, now: Instant) -> NodeId {
        self.last_heard
            .iter()
            .filter(|&(_, &at)| now.duration_since(at) < PRESUMED_DEAD_AFTER)
            .map(|(&p, _)| p)
            .chain([self.id])
            .min_by_key(|p| p.0)
            .unwrap_or(self.id)
    }

    fn reply(&self, now: Instant, msg: &Value, kind: &str) -> Value {
        json!({
            "src": self.id.to_string(),
            "dst": msg["src"],
            "leader": self.leader(now).to_string(),
            "type": kind,
            "MID": msg["MID"],
        })
    }
}

impl Behaviour for StaleReads {
    fn on_message(&mut self, now: Instant, msg: &Value, out: &mut Vec<Value>) {
        let src = msg["src"].as_str().and_then(NodeId::parse);
        if let Some(src) = src
            && let Some(at) = self.last_heard.get_mut(&src)
        {
            *at = now;
        }
        let key = msg["key"].as_str().unwrap_or_default().to_string();
        match msg["type"].as_str() {
            Some("copy") => {
                let value = msg["value"].as_str().unwrap_or_default().to_string();
                self.store.insert(key, value);
            }
            Some("get" | "put") if self.leader(now) != self.id => {
                out.push(self.reply(now, msg, "redirect"));
            }
            Some("put") => {
                let value = msg["value"].as_str().unwrap_or_default().to_string();
                self.store.insert(key.clone(), value.clone());
                out.push(self.reply(now, msg, "ok"));
                out.push(json!({
                    "src": self.id.to_string(), "dst": "FFFF", "leader": self.id.to_string(),
                    "type": "copy", "key": key, "value": value,
                }));
            }
            Some("get") => {
                let mut reply = self.reply(now, msg, "ok");
                reply["value"] = json!(self.snapshot.get(&key).cloned().unwrap_or_default());
                out.push(reply);
            }
            _ => {}
        }
    }

    fn on_tick(&mut self, now: Instant, out: &mut Vec<Value>) {
        if now >= self.next_snapshot {
            self.snapshot.clone_from(&self.store);
            self.next_snapshot = now + SNAPSHOT_EVERY;
        }
        if now >= self.next_heartbeat {
            out.push(json!({
                "src": self.id.to_string(), "dst": "FFFF",
                "leader": self.leader(now).to_string(), "type": "hb",
            }));
            self.next_heartbeat = now + HEARTBEAT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: &str, key: &str, value: Option<&str>) -> Value {
        let mut m = json!({"src": "0015", "dst": "0000", "leader": "FFFF", "type": kind,
                           "MID": "M1", "key": key});
        if let Some(v) = value {
            m["value"] = json!(v);
        }
        m
    }

    #[test]
    fn a_put_is_acknowledged_but_reads_see_it_only_after_the_next_snapshot() {
        let mut s = StaleReads::new(NodeId(0), &[NodeId(1), NodeId(2)]);
        let t0 = Instant::now();
        let mut out = Vec::new();
        s.on_message(t0, &request("put", "k", Some("v1")), &mut out);
        assert_eq!(out[0]["type"], "ok");
        assert_eq!(out[1]["type"], "copy", "copied to the followers");
        out.clear();
        s.on_message(t0, &request("get", "k", None), &mut out);
        assert_eq!(out[0]["value"], "", "stale: the snapshot predates the put");
        out.clear();
        s.on_tick(t0 + SNAPSHOT_EVERY + Duration::from_millis(1), &mut out);
        out.clear();
        s.on_message(t0, &request("get", "k", None), &mut out);
        assert_eq!(out[0]["value"], "v1");
    }

    #[test]
    fn the_lowest_id_alive_leads_and_the_others_redirect_to_it() {
        let t0 = Instant::now();
        let mut s = StaleReads::new(NodeId(2), &[NodeId(0), NodeId(1)]);
        let mut out = Vec::new();
        s.on_message(t0, &request("get", "k", None), &mut out);
        assert_eq!(
            (&out[0]["type"], &out[0]["leader"]),
            (&json!("redirect"), &json!("0000"))
        );
        // 0000 and 0001 fall silent: 0002 leads.
        let later = t0 + PRESUMED_DEAD_AFTER + Duration::from_millis(1);
        assert_eq!(s.leader(later), NodeId(2));
        // 0001 speaks again: it leads.
        s.on_message(
            later,
            &json!({"src": "0001", "dst": "FFFF", "leader": "0001", "type": "hb"}),
            &mut out,
        );
        assert_eq!(s.leader(later), NodeId(1));
    }
}
