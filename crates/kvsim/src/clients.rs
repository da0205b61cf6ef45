//! The simulated clients: request generation, retries, reply checks, and the history.
//!
//! Classic behaviour: each client reads only keys it wrote itself and checks every `ok` to a
//! get against the last value it was acknowledged for that key. A redirect or a fail is
//! retried at once under a new MID, to the reply's leader (or a random living replica when
//! that is unknown or dead). A client forgets a MID once answered; a reply to a MID it does
//! not know is incorrect; a second reply to a MID that got `ok` is a duplicate. Clients never
//! time out.
//!
//! Every MID names its attempt and every put value its id (`ids`), so replies are matched
//! by index into `attempts` and `values`, with no hash table on the per-request path.
//!
//! Shared-key mode (ours): every client reads and writes a common pool of keys, values are
//! unique, and correctness is judged by the linearizability check over the history instead.

use ahash::AHashMap;
use rand::Rng;
use rand::rngs::SmallRng;
use std::io::Write;

use super::ids::{self, MID_CHARS, Mid};
use super::stats::Stats;
use super::warn::Warnings;
use super::wire::Header;
use datagram::NodeId;

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

/// What the reply check needs of one attempt beyond its `HistOp`. The request itself (client,
/// key, op, value, sent at) is read from the `HistOp`, which nothing changes before the
/// attempt is answered; keeping it only there keeps this small, as one lives per attempt
/// for the whole run.
struct Attempt {
    mid: Mid,
    /// When the request's first attempt was sent: an op's latency runs from there.
    first_us: u64,
    /// The replica it was sent to.
    dst: Option<NodeId>,
    state: AttemptState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AttemptState {
    Outstanding,
    /// Got a redirect or a fail: another reply is a second reply, and incorrect.
    Answered,
    /// Got `ok`: another reply is a duplicate.
    Completed,
}

/// What a reply's MID names, for client `c`.
enum Match {
    /// An outstanding attempt of `c`, by index.
    Outstanding(usize),
    /// An attempt that got `ok`, whichever client it was for.
    Completed,
    /// Nothing `c` is waiting for; `second` when it is an attempt already answered.
    Unexpected { second: bool },
}

struct Client {
    id: NodeId,
    /// The leader as last told (a replica index), `None` when unknown.
    leader: Option<usize>,
    /// The keys this client has an acknowledged put of, in the order of the first, for
    /// uniform choice (the classic `items`' keys; their values are in
    /// `Clients::acked_values`). Per-client keys only.
    item_keys: Vec<u32>,
}

pub struct Clients {
    mode: KeyMode,
    replicas: usize,
    clients: Vec<Client>,
    pub keys: Vec<String>,
    /// Per key, the value of its owner's last acknowledged put (0: none yet), for the
    /// classic check of a get. Per-client keys only: each has one owner, so a vector
    /// indexed by key does what a map per client did, without a hash insert per put (1.6%
    /// of the machine's time at 50,000 puts/s).
    acked_values: Vec<u32>,
    /// Value ids: 0 is "" (a get of a missing key); ours carry their id (`ids::new_value`).
    pub values: Vec<String>,
    /// Values a replica returned that we never wrote, so that each keeps one id.
    foreign_values: AHashMap<String, u32>,
    /// Invariant: parallel to `history`, and the MID of `attempts[i]` names `i`.
    attempts: Vec<Attempt>,
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
    /// `requests` is how many the schedule will create: the vectors that grow with every
    /// request are sized for them up front, so that none copies a hundred-thousand-entry
    /// buffer in the middle of a high-load run (kvsim would stop routing for milliseconds
    /// and charge it to the replicas' latency). They are filled in order, so their pages
    /// are touched a few at a time as the run goes, not all at once when load starts.
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
        let mut values = Vec::with_capacity(requests + 1);
        values.push(String::new());
        Clients {
            mode,
            replicas,
            clients,
            acked_values: Vec::with_capacity(keys.capacity()),
            keys,
            values,
            foreign_values: AHashMap::new(),
            attempts: Vec::with_capacity(requests),
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
        self.clients.iter().map(|c| c.item_keys.len()).sum()
    }

    /// The id of a value a get returned. Ours name theirs, but only a full match proves it.
    fn value_id(&mut self, value: &str) -> u32 {
        if value.is_empty() {
            return 0;
        }
        if let Some(id) = ids::value_id(value)
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

    fn fresh_value(&mut self) -> u32 {
        let id = self.values.len() as u32;
        let v = ids::new_value(&mut self.rng, id);
        self.values.push(v);
        id
    }

    /// The attempt a MID names, if we made it: its index is only a claim until the whole
    /// MID matches.
    fn attempt_of(&self, mid: &str) -> Option<usize> {
        let mid: &Mid = mid.as_bytes().try_into().ok()?;
        let i = ids::mid_attempt(mid)?;
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
            AttemptState::Answered => Match::Unexpected { second: true },
        }
    }

    fn fresh_key(&mut self) -> u32 {
        let k = random_string(&mut self.rng, KEY_LEN, MID_CHARS);
        self.keys.push(k);
        self.acked_values.push(0);
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
        let mid = ids::new_mid(&mut self.rng, self.history.len());
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
        self.attempts.push(Attempt {
            mid,
            first_us,
            dst: dst.map(|d| NodeId(d as u16)),
            state: AttemptState::Outstanding,
        });
        debug_assert_eq!(self.attempts.len(), self.history.len());
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
        let hist = match self.match_mid(c, h.mid.as_str()) {
            Match::Outstanding(hist) => hist,
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
        self.attempts[hist].state = AttemptState::Answered;
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

fn random_string(rng: &mut SmallRng, len: usize, chars: &[u8]) -> String {
    (0..len)
        .map(|_| char::from(chars[rng.random_range(0..chars.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse;
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

    /// Two clients of three replicas; client 0 has sent one put.
    fn one_put_sent() -> (Clients, Stats) {
        let mut c = Clients::new(3, 2, 4, KeyMode::PerClient, SmallRng::seed_from_u64(5));
        let mut s = Stats::default();
        c.create(0, false, 0, &[0, 1, 2], &mut s);
        (c, s)
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

    /// Delivers a reply of `kind` for `mid` to `client`; the returned retry destination.
    fn deliver(
        c: &mut Clients,
        s: &mut Stats,
        client: usize,
        kind: &str,
        mid: &str,
        value: Option<&str>,
    ) -> Option<usize> {
        let r = reply(c, client, kind, mid, "0000", value);
        let h = parse(r.as_bytes()).unwrap();
        c.on_reply(
            client,
            &h,
            r.as_bytes(),
            1_000,
            &[0, 1, 2],
            s,
            &mut Warnings::quiet(),
        )
    }

    /// An `ok` to the last request made.
    fn answer_last(c: &mut Clients, s: &mut Stats, client: usize, value: Option<&str>) {
        let mid = last_mid(c);
        deliver(c, s, client, "ok", &mid, value);
    }

    /// Client 0 with one acknowledged put; returns the put's value.
    fn one_acked_put(c: &mut Clients, s: &mut Stats) -> String {
        c.create(0, false, 0, &[0, 1, 2], s);
        let m: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
        answer_last(c, s, 0, None);
        assert_eq!(c.stored_items(), 1);
        m["value"].as_str().unwrap().to_string()
    }

    #[test]
    fn a_mid_naming_a_real_attempt_with_another_random_part_is_unexpected() {
        let (mut c, mut s) = one_put_sent();
        let mid = last_mid(&c);
        let forged = format!(
            "{}{}",
            if mid.starts_with('A') { "B" } else { "A" },
            &mid[1..]
        );
        assert_eq!(
            ids::mid_attempt(forged.as_bytes().try_into().unwrap()),
            Some(0)
        );
        assert_eq!(deliver(&mut c, &mut s, 0, "ok", &forged, None), None);
        assert_eq!((s.incorrect, c.put_oks, c.mids_with_two_replies), (1, 0, 0));
        // The real attempt is untouched and still accepted.
        deliver(&mut c, &mut s, 0, "ok", &mid, None);
        assert_eq!((s.incorrect, c.put_oks), (1, 1));
    }

    #[test]
    fn a_mid_with_a_bad_index_is_unexpected_not_fatal() {
        let (mut c, mut s) = one_put_sent();
        let random = &last_mid(&c)[..8];
        let bad = [
            format!("{random}AAAAAAAB"), // attempt 1: never made
            format!("{random}99999999"), // the largest index a MID can hold
            format!("{random}AAAAAAAa"),
            format!("{random}AAAA-AAA"),
            format!("{random}ÄÄÄÄ"), // 16 bytes, not ASCII
            format!("{random}AAAAAAA"),
            format!("{random}AAAAAAAAA"),
            String::new(),
        ];
        for mid in &bad {
            assert_eq!(deliver(&mut c, &mut s, 0, "ok", mid, None), None, "{mid}");
        }
        assert_eq!((s.incorrect, c.put_oks), (bad.len() as u64, 0));
        c.finalize(&mut s);
        assert_eq!(s.unanswered_put, 1);
    }

    #[test]
    fn a_second_ok_for_a_completed_mid_is_a_duplicate_whoever_gets_it() {
        let (mut c, mut s) = one_put_sent();
        let mid = last_mid(&c);
        deliver(&mut c, &mut s, 0, "ok", &mid, None);
        deliver(&mut c, &mut s, 0, "ok", &mid, None);
        deliver(&mut c, &mut s, 1, "redirect", &mid, None);
        assert_eq!(
            (
                s.duplicates,
                c.mids_with_two_replies,
                s.incorrect,
                c.put_oks
            ),
            (2, 2, 0, 1)
        );
        assert_eq!(s.total_put, 1, "a duplicate is never retried");
    }

    #[test]
    fn a_reply_to_another_clients_outstanding_mid_is_unexpected() {
        let (mut c, mut s) = one_put_sent();
        let mid = last_mid(&c);
        deliver(&mut c, &mut s, 1, "ok", &mid, None);
        assert_eq!((s.incorrect, c.mids_with_two_replies, c.put_oks), (1, 0, 0));
        // Still outstanding for its own client.
        deliver(&mut c, &mut s, 0, "ok", &mid, None);
        assert_eq!((s.incorrect, c.put_oks), (1, 1));
    }

    #[test]
    fn a_value_like_ours_but_not_ours_is_foreign_and_incorrect() {
        let mut c = Clients::new(3, 2, 4, KeyMode::PerClient, SmallRng::seed_from_u64(5));
        let mut s = Stats::default();
        let ours = one_acked_put(&mut c, &mut s);
        let last = if ours.ends_with('0') { "1" } else { "0" };
        let like = format!("{}{last}", &ours[..31]);
        assert_eq!(ids::value_id(&like), ids::value_id(&ours));
        let values = c.values.len();
        c.create(0, true, 0, &[0, 1, 2], &mut s);
        answer_last(&mut c, &mut s, 0, Some(&like));
        assert_eq!(s.incorrect, 1);
        let id = c.history.last().unwrap().value as usize;
        assert_eq!(
            (id, c.values.len(), &c.values[id]),
            (values, values + 1, &like)
        );
        // The same foreign value keeps its id; our own value is still ours, and correct.
        c.create(0, true, 0, &[0, 1, 2], &mut s);
        answer_last(&mut c, &mut s, 0, Some(&like));
        assert_eq!(c.history.last().unwrap().value as usize, id);
        c.create(0, true, 0, &[0, 1, 2], &mut s);
        answer_last(&mut c, &mut s, 0, Some(&ours));
        assert_eq!((s.incorrect, c.get_oks, c.values.len()), (2, 3, values + 1));
        assert_eq!(c.values[c.history.last().unwrap().value as usize], ours);
    }

    #[test]
    fn shared_keys_map_each_returned_value_to_one_id() {
        let mut c = Clients::new(3, 2, 8, KeyMode::Shared(1), SmallRng::seed_from_u64(5));
        let mut s = Stats::default();
        c.create(0, false, 0, &[0, 1, 2], &mut s);
        let m: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
        let put = c.history.last().unwrap().value;
        assert_eq!(c.values[put as usize], m["value"].as_str().unwrap());
        for (value, id) in [("", 0), (m["value"].as_str().unwrap(), put), ("odd", 2)] {
            c.create(1, true, 0, &[0, 1, 2], &mut s);
            answer_last(&mut c, &mut s, 1, Some(value));
            assert_eq!(c.history.last().unwrap().value, id, "{value:?}");
        }
        assert_eq!(
            (s.incorrect, c.get_oks),
            (0, 3),
            "shared keys leave it to the checker"
        );
    }

    #[test]
    fn finalize_lists_what_is_outstanding_oldest_first() {
        let mut c = Clients::new(3, 2, 8, KeyMode::PerClient, SmallRng::seed_from_u64(5));
        let mut s = Stats::default();
        c.create(1, false, 20, &[2], &mut s);
        let first = last_mid(&c);
        c.create(0, false, 30, &[], &mut s);
        let answered = last_mid(&c);
        c.create(0, false, 10, &[1], &mut s);
        let oldest = last_mid(&c);
        deliver(&mut c, &mut s, 0, "ok", &answered, None);
        let u = c.finalize(&mut s);
        let got: Vec<_> = u
            .iter()
            .map(|u| (u.mid.as_str(), u.sent_to.as_str()))
            .collect();
        assert_eq!(got, [(oldest.as_str(), "0001"), (first.as_str(), "0002")]);
        assert_eq!((s.unanswered_put, u[1].client.as_str()), (2, "0014"));
    }
}
