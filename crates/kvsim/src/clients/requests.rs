//! Request generation: a new request as the schedule asks (a get of a key the client
//! wrote, or a put of a fresh value to a new or an existing key; in shared-key mode any key
//! of the pool), and the datagram of every attempt, retries included, with its MID, its
//! destination and its line in the history.

use rand::Rng;
use rand::rngs::SmallRng;
use std::io::Write;

use super::{Attempt, AttemptState, Clients, KeyMode};
use crate::clients::history::HistOp;
use crate::clients::indexed_ids::{self, MID_CHARS};
use crate::measure::stats::Stats;
use raft::NodeId;

pub(super) const KEY_LEN: usize = 32;

impl Clients {
    fn fresh_value(&mut self) -> u32 {
        let id = self.values.len() as u32;
        let v = indexed_ids::new_value(&mut self.rng, id);
        self.values.push(v);
        id
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
    pub(super) fn send(
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
        let mid = indexed_ids::new_mid(&mut self.rng, self.history.len());
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
        self.outstanding += 1;
        self.outstanding_max = self.outstanding_max.max(self.outstanding);
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
}

pub(super) fn random_string(rng: &mut SmallRng, len: usize, chars: &[u8]) -> String {
    (0..len)
        .map(|_| char::from(chars[rng.random_range(0..chars.len())]))
        .collect()
}
