//! The simulated clients: request generation, retries, reply checks, and the history.
//!
//! Classic behaviour: each client reads only keys it wrote itself and checks every `ok` to a
//! get against the last value it was acknowledged for that key. A redirect or a fail is
//! retried at once under a new MID, to the reply's leader (or a random living replica when
//! that is unknown or dead). A client forgets a MID once answered; a reply to a MID it does
//! not know is incorrect; a second reply to a MID that got `ok` is a duplicate. Clients never
//! time out.
//!
//! Shared-key mode (ours): every client reads and writes a common pool of keys, values are
//! unique, and correctness is judged by the linearizability check over the history instead.

use ahash::{AHashMap, AHashSet};
use rand::Rng;
use rand::rngs::SmallRng;
use std::io::Write;

use super::stats::Stats;
use super::warn::Warnings;
use super::wire::Header;
use crate::id::NodeId;

pub type Mid = [u8; 16];

const MID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const HEX: &[u8] = b"0123456789abcdef";
const KEY_LEN: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Classic: each client owns the keys it creates.
    PerClient,
    /// A pool of this many keys shared by every client.
    Shared(usize),
}

/// One attempt (one MID) in the history.
#[derive(Debug, Clone)]
pub struct HistOp {
    pub client: u32,
    pub key: u32,
    pub get: bool,
    /// For a put, the value written; for an answered get, the value returned.
    pub value: u32,
    pub invoke_us: u64,
    pub response_us: Option<u64>,
    /// Got `ok`.
    pub acked: bool,
    /// The logical request this attempt belongs to (retries share it).
    pub group: u64,
}

struct Request {
    client: usize,
    get: bool,
    key: u32,
    value: u32,
    created_us: u64,
    first_us: u64,
    group: u64,
    hist: usize,
    /// The replica it was sent to.
    dst: Option<usize>,
}

struct Client {
    id: NodeId,
    /// The leader as last told (a replica index), `None` when unknown.
    leader: Option<usize>,
    /// key -> last acknowledged value (classic `items`), plus the keys in insertion order
    /// for uniform choice.
    items: AHashMap<u32, u32>,
    item_keys: Vec<u32>,
}

pub struct Clients {
    mode: KeyMode,
    replicas: usize,
    clients: Vec<Client>,
    pub keys: Vec<String>,
    pub values: Vec<String>,
    value_ids: AHashMap<String, u32>,
    outstanding: AHashMap<Mid, Request>,
    completed: AHashSet<Mid>,
    answered: AHashSet<Mid>,
    pub history: Vec<HistOp>,
    next_group: u64,
    rng: SmallRng,
    /// The message to send, after `create` or a retry.
    pub out: Vec<u8>,
    pub get_oks: u64,
    pub put_oks: u64,
    pub mids_with_two_replies: u64,
    /// Classic "incorrect" gets that returned the value of one of the client's own puts
    /// that never got `ok` (legal under linearizability, counted by the classic check).
    pub incorrect_from_unacked_put: u64,
    /// First attempt to final `ok`, seconds.
    pub op_latencies_s: Vec<f64>,
}

impl Clients {
    /// `requests` is how many the schedule will create: the tables that grow with every
    /// request are sized for them up front, so that none rehashes or copies a
    /// hundred-thousand-entry table in the middle of a high-load run (kvsim would stop
    /// routing for milliseconds and charge it to the replicas' latency).
    pub fn new(
        replicas: usize,
        count: usize,
        requests: usize,
        mode: KeyMode,
        mut rng: SmallRng,
    ) -> Clients {
        let clients = (0..count)
            .map(|i| Client {
                id: NodeId((replicas + 16 + i) as u16),
                leader: None,
                items: AHashMap::new(),
                item_keys: Vec::new(),
            })
            .collect();
        let mut keys = Vec::with_capacity(match mode {
            KeyMode::PerClient => requests,
            KeyMode::Shared(k) => k,
        });
        if let KeyMode::Shared(k) = mode {
            for _ in 0..k {
                keys.push(random_string(&mut rng, KEY_LEN, MID_CHARS));
            }
        }
        let mut value_ids = AHashMap::with_capacity(requests + 1);
        value_ids.insert(String::new(), 0);
        let mut values = Vec::with_capacity(requests + 1);
        values.push(String::new());
        Clients {
            mode,
            replicas,
            clients,
            keys,
            values,
            value_ids,
            outstanding: AHashMap::new(),
            completed: AHashSet::with_capacity(requests),
            answered: AHashSet::with_capacity(requests),
            history: Vec::with_capacity(requests),
            next_group: 0,
            rng,
            out: Vec::with_capacity(256),
            get_oks: 0,
            put_oks: 0,
            mids_with_two_replies: 0,
            incorrect_from_unacked_put: 0,
            op_latencies_s: Vec::with_capacity(requests),
        }
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// The client index for a (canonical) client ID, if it is one of ours.
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        let first = self.replicas + 16;
        let i = usize::from(id.0).checked_sub(first)?;
        (i < self.clients.len()).then_some(i)
    }

    /// Every client forgets the leader (after a leader kill or a hard partition).
    pub fn forget_all(&mut self) {
        for c in &mut self.clients {
            c.leader = None;
        }
    }

    /// Were any puts acknowledged? (The classic `no_state` check.)
    pub fn stored_items(&self) -> usize {
        self.clients.iter().map(|c| c.items.len()).sum()
    }

    fn intern(&mut self, value: &str) -> u32 {
        if let Some(&id) = self.value_ids.get(value) {
            return id;
        }
        let id = self.values.len() as u32;
        self.values.push(value.to_string());
        self.value_ids.insert(value.to_string(), id);
        id
    }

    fn fresh_value(&mut self) -> u32 {
        let v = random_string(&mut self.rng, 32, HEX);
        self.intern(&v)
    }

    fn fresh_key(&mut self) -> u32 {
        let k = random_string(&mut self.rng, KEY_LEN, MID_CHARS);
        self.keys.push(k);
        (self.keys.len() - 1) as u32
    }

    /// A new request from client `c`, as the schedule asks (`get` or put). Returns the
    /// replica to send `self.out` to, or `None` when no replica is alive.
    pub fn create(
        &mut self,
        c: usize,
        get: bool,
        now_us: u64,
        living: &[usize],
        stats: &mut Stats,
    ) -> Option<usize> {
        let (get, key, value) = match self.mode {
            KeyMode::PerClient => {
                let n = self.clients[c].item_keys.len();
                if get && n > 0 {
                    let key = self.clients[c].item_keys[self.rng.random_range(0..n)];
                    (true, key, 0)
                } else {
                    if get {
                        stats.failed_to_generate_get += 1;
                    }
                    // A new key, or an update of an existing one, half and half.
                    if n == 0 || self.rng.random::<f64>() > 0.5 {
                        let key = self.fresh_key();
                        (false, key, self.fresh_value())
                    } else {
                        let key = self.clients[c].item_keys[self.rng.random_range(0..n)];
                        (false, key, self.fresh_value())
                    }
                }
            }
            KeyMode::Shared(k) => {
                let key = self.rng.random_range(0..k) as u32;
                if get {
                    (true, key, 0)
                } else {
                    (false, key, self.fresh_value())
                }
            }
        };
        let group = self.next_group;
        self.next_group += 1;
        self.send(c, get, key, value, now_us, now_us, group, living, stats)
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        c: usize,
        get: bool,
        key: u32,
        value: u32,
        now_us: u64,
        first_us: u64,
        group: u64,
        living: &[usize],
        stats: &mut Stats,
    ) -> Option<usize> {
        if get {
            stats.total_get += 1;
        } else {
            stats.total_put += 1;
        }
        let mut mid: Mid = [0; 16];
        for b in &mut mid {
            *b = MID_CHARS[self.rng.random_range(0..MID_CHARS.len())];
        }
        let hist = self.history.len();
        self.history.push(HistOp {
            client: c as u32,
            key,
            get,
            value,
            invoke_us: now_us,
            response_us: None,
            acked: false,
            group,
        });
        // Destination: the leader if known and alive, else a random living replica (and the
        // leader is forgotten).
        let dst = if living.is_empty() {
            None
        } else {
            match self.clients[c].leader {
                Some(l) if living.contains(&l) => Some(l),
                _ => {
                    self.clients[c].leader = None;
                    Some(living[self.rng.random_range(0..living.len())])
                }
            }
        };
        self.outstanding.insert(
            mid,
            Request {
                client: c,
                get,
                key,
                value,
                created_us: now_us,
                first_us,
                group,
                hist,
                dst,
            },
        );
        let client = &self.clients[c];
        self.out.clear();
        let leader = client
            .leader
            .map(|l| NodeId(l as u16))
            .unwrap_or(NodeId::UNKNOWN);
        let dst_id = dst.map(|d| NodeId(d as u16)).unwrap_or(NodeId::UNKNOWN);
        // The classic's json.dumps layout.
        let _ = write!(
            self.out,
            r#"{{"src": "{}", "dst": "{}", "leader": "{}", "type": "{}", "MID": "{}", "key": "{}""#,
            client.id,
            dst_id,
            leader,
            if get { "get" } else { "put" },
            std::str::from_utf8(&mid).unwrap_or(""),
            self.keys[key as usize]
        );
        if !get {
            let _ = write!(self.out, r#", "value": "{}""#, self.values[value as usize]);
        }
        self.out.push(b'}');
        dst
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
        // A MID that is not a 16-byte string cannot be one of ours.
        let mid: Option<Mid> = h.mid.as_str().and_then(|m| m.as_bytes().try_into().ok());
        if let Some(mid) = mid
            && self.completed.contains(&mid)
        {
            stats.duplicates += 1;
            self.mids_with_two_replies += 1;
            return None;
        }
        let req = match mid {
            Some(mid) if self.outstanding.get(&mid).is_some_and(|r| r.client == c) => {
                self.outstanding.remove(&mid)
            }
            _ => None,
        };
        let (Some(mid), Some(req)) = (mid, req) else {
            if mid.is_some_and(|m| self.answered.contains(&m)) {
                self.mids_with_two_replies += 1;
            }
            warn.raw("client received an unexpected MID", raw);
            stats.incorrect += 1;
            return None;
        };
        self.answered.insert(mid);
        let leader = h
            .leader
            .canonical_id()
            .map(|id| usize::from(id.0))
            .filter(|&l| l < self.replicas);
        self.clients[c].leader = leader;
        stats
            .latencies_s
            .push(now_us.saturating_sub(req.created_us) as f64 / 1e6);
        self.history[req.hist].response_us = Some(now_us);

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
                c,
                req.get,
                req.key,
                req.value,
                now_us,
                req.first_us,
                req.group,
                living,
                stats,
            );
        }

        self.completed.insert(mid);
        self.op_latencies_s
            .push(now_us.saturating_sub(req.first_us) as f64 / 1e6);
        if req.get {
            let Some(value) = h.value.as_str() else {
                warn.raw("get() response missing the value of the key", raw);
                stats.incorrect += 1;
                return None;
            };
            self.get_oks += 1;
            let value = self.intern(value);
            let op = &mut self.history[req.hist];
            op.acked = true;
            op.value = value;
            if self.mode == KeyMode::PerClient
                && self.clients[c].items.get(&req.key) != Some(&value)
            {
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
            self.history[req.hist].acked = true;
            let client = &mut self.clients[c];
            if client.items.insert(req.key, req.value).is_none() {
                client.item_keys.push(req.key);
            }
        }
        None
    }

    /// Counts what is still outstanding as unanswered (the classic `finalize`), and
    /// returns them, oldest first, so a report can say where each one went.
    pub fn finalize(&mut self, stats: &mut Stats) -> Vec<Unanswered> {
        let mut unanswered = Vec::with_capacity(self.outstanding.len());
        for (mid, req) in &self.outstanding {
            if req.get {
                stats.unanswered_get += 1;
            } else {
                stats.unanswered_put += 1;
            }
            unanswered.push(Unanswered {
                mid: String::from_utf8_lossy(mid).into_owned(),
                client: self.clients[req.client].id.to_string(),
                sent_to: req
                    .dst
                    .map_or_else(|| "none".to_string(), |d| NodeId(d as u16).to_string()),
                kind: if req.get { "get" } else { "put" },
                created_s: req.created_us as f64 / 1e6,
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

fn random_string(rng: &mut SmallRng, len: usize, chars: &[u8]) -> String {
    (0..len)
        .map(|_| char::from(chars[rng.random_range(0..chars.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::wire::parse;
    use rand::SeedableRng;

    fn reply(
        c: &Clients,
        client: usize,
        kind: &str,
        mid: &str,
        leader: &str,
        value: Option<&str>,
    ) -> String {
        let v = value
            .map(|v| format!(r#", "value": "{v}""#))
            .unwrap_or_default();
        format!(
            r#"{{"src": "0000", "dst": "{}", "leader": "{leader}", "type": "{kind}", "MID": "{mid}"{v}}}"#,
            c.clients[client].id
        )
    }

    fn last_mid(c: &Clients) -> String {
        let v: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
        v["MID"].as_str().unwrap().to_string()
    }

    #[test]
    fn classic_client_flow() {
        let mut c = Clients::new(5, 8, 16, KeyMode::PerClient, SmallRng::seed_from_u64(3));
        let mut s = Stats::default();
        let mut w = Warnings::quiet();
        let living = [0, 1, 2, 3, 4];
        assert_eq!(c.index_of(NodeId(0x15)), Some(0));
        assert_eq!(c.index_of(NodeId(0x1D)), None);
        // A get with no key yet becomes a put, counted as a generation failure.
        let dst = c.create(0, true, 0, &living, &mut s).unwrap();
        assert!(dst < 5);
        assert_eq!((s.failed_to_generate_get, s.total_put), (1, 1));
        let m: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
        assert_eq!(m["type"], "put");
        assert_eq!(m["src"], "0015");
        assert_eq!(m["leader"], "FFFF");
        assert_eq!(m["key"].as_str().unwrap().len(), 32);
        assert_eq!(m["MID"].as_str().unwrap().len(), 16);
        // Redirect to 0003: retried at once to 0003 with a new MID.
        let mid = last_mid(&c);
        let r = reply(&c, 0, "redirect", &mid, "0003", None);
        let dst = c.on_reply(
            0,
            &parse(r.as_bytes()).unwrap(),
            r.as_bytes(),
            100,
            &living,
            &mut s,
            &mut w,
        );
        assert_eq!(dst, Some(3));
        assert_eq!((s.redirects, s.total_put), (1, 2));
        assert_ne!(last_mid(&c), mid);
        // A second reply to the redirected MID is incorrect.
        let dst = c.on_reply(
            0,
            &parse(r.as_bytes()).unwrap(),
            r.as_bytes(),
            100,
            &living,
            &mut s,
            &mut w,
        );
        assert_eq!((dst, s.incorrect, c.mids_with_two_replies), (None, 1, 1));
        // ok: stored; a second ok is a duplicate.
        let mid2 = last_mid(&c);
        let r = reply(&c, 0, "ok", &mid2, "0003", None);
        assert_eq!(
            c.on_reply(
                0,
                &parse(r.as_bytes()).unwrap(),
                r.as_bytes(),
                300,
                &living,
                &mut s,
                &mut w
            ),
            None
        );
        assert_eq!(c.stored_items(), 1);
        c.on_reply(
            0,
            &parse(r.as_bytes()).unwrap(),
            r.as_bytes(),
            400,
            &living,
            &mut s,
            &mut w,
        );
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.latencies_s.len(), 2);
        // Now a get is possible; a wrong value is incorrect.
        let dst = c.create(0, true, 500, &living, &mut s);
        assert_eq!(dst, Some(3), "goes to the known leader");
        let r = reply(&c, 0, "ok", &last_mid(&c), "0003", Some("nope"));
        c.on_reply(
            0,
            &parse(r.as_bytes()).unwrap(),
            r.as_bytes(),
            600,
            &living,
            &mut s,
            &mut w,
        );
        assert_eq!(s.incorrect, 2);
        // The leader is dead: a random living one instead.
        let dst = c.create(0, true, 700, &[0, 1], &mut s).unwrap();
        assert!(dst < 2);
        c.finalize(&mut s);
        assert_eq!((s.unanswered_get, s.unanswered_put), (1, 0));
        // History: the redirected attempt and its acked retry share a group.
        assert_eq!(c.history[0].group, c.history[1].group);
        assert!(!c.history[0].acked && c.history[1].acked);
    }

    #[test]
    fn garbage_replies_are_counted_not_fatal() {
        let mut c = Clients::new(3, 8, 16, KeyMode::Shared(4), SmallRng::seed_from_u64(1));
        let mut s = Stats::default();
        let mut w = Warnings::quiet();
        for raw in [
            r#"{"src": "0000", "dst": "0013", "leader": "0000", "type": "ok"}"#,
            r#"{"src": "0000", "dst": "0013", "leader": "0000", "type": "what", "MID": "x"}"#,
            r#"{"src": "0000", "dst": "0013", "leader": "0000", "type": "ok", "MID": ["x"]}"#,
            r#"{"src": "0000", "dst": "0013", "leader": "0000", "type": 7, "MID": "ABCDEFGHIJKLMNOP"}"#,
        ] {
            assert_eq!(
                c.on_reply(
                    0,
                    &parse(raw.as_bytes()).unwrap(),
                    raw.as_bytes(),
                    1,
                    &[0],
                    &mut s,
                    &mut w
                ),
                None
            );
        }
        assert_eq!(s.incorrect, 4);
    }
}
