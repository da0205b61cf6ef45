//! The simulated clients: request generation, retries, reply checks, and the history.
//!
//! Classic behaviour: each client reads only keys it wrote itself and checks every `ok` to a
//! get against the last value it was acknowledged for that key. A redirect or a fail is
//! retried at once under a new MID, to the reply's leader (or a random living replica when
//! that is unknown or dead). A client forgets a MID once answered; a reply to a MID it does
//! not know is incorrect; a second reply to a MID that got `ok` is a duplicate. Clients never
//! time out.
//!
//! Every MID names its attempt and every put value its id (`indexed_ids`), so replies are matched
//! by index into `attempts` and `values`, with no hash table on the per-request path.
//!
//! Shared-key mode (ours): every client reads and writes a common pool of keys, values are
//! unique, and correctness is judged by the linearizability check over the history instead.
//!
//! This file holds the clients' state; around it:
//! - `schedule`: when requests are due (the classic's even spacing, from its own stream);
//! - `requests`: each request, and every attempt's datagram (retries included);
//! - `replies`: each reply checked against the attempt its MID names and, at the end, what
//!   got none;
//! - `indexed_ids`: MIDs and put values that carry their own index;
//! - `history`: the record of every attempt (`HistOp`), and its CSV.

pub mod history;
pub mod indexed_ids;
mod replies;
mod requests;
pub mod schedule;
#[cfg(test)]
mod tests;

use ahash::AHashMap;
use rand::rngs::SmallRng;

use crate::clients::history::HistOp;
use crate::clients::indexed_ids::{MID_CHARS, Mid};
use raft::NodeId;
use requests::{KEY_LEN, random_string};

pub use replies::Unanswered;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Classic: each client owns the keys it creates.
    PerClient,
    /// A pool of this many keys shared by every client.
    Shared(usize),
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
    /// Got a redirect (or a fail): another reply is a second reply, and incorrect.
    Redirected,
    Failed,
    /// Got `ok`: another reply is a duplicate.
    Completed,
}

/// How an attempt ended, for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Redirect,
    Fail,
    /// No reply by the end of the run.
    Unanswered,
}

/// One attempt as a report shows it.
#[derive(Debug, Clone, Copy)]
pub struct AttemptRecord<'a> {
    pub op: &'a HistOp,
    pub mid: &'a [u8],
    /// The replica it was sent to (`None`: none was alive).
    pub dst: Option<NodeId>,
    pub reply: Reply,
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
    /// indexed by key does what a map per client did, without a hash insert per put.
    acked_values: Vec<u32>,
    /// Value ids: 0 is "" (a get of a missing key); ours carry their id (`indexed_ids::new_value`).
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
    /// Attempts sent and not yet answered, now and at most: the replicas' backlog as the
    /// clients see it.
    pub outstanding: u64,
    pub outstanding_max: u64,
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
        // An attempt per request, and one per retry of a redirect or a timeout: room for
        // a quarter more, so that a run's last requests do not find the history full
        // (doubling a table of a million attempts faulted in 46 MB in one turn).
        let attempts_max = requests + requests / 4;
        Clients {
            mode,
            replicas,
            clients,
            acked_values: Vec::with_capacity(keys.capacity()),
            keys,
            values,
            foreign_values: AHashMap::new(),
            attempts: Vec::with_capacity(attempts_max),
            history: Vec::with_capacity(attempts_max),
            next_group: 0,
            rng,
            out: Vec::with_capacity(256),
            get_oks: 0,
            put_oks: 0,
            mids_with_two_replies: 0,
            incorrect_from_unacked_put: 0,
            op_latencies_s: Vec::with_capacity(requests),
            outstanding: 0,
            outstanding_max: 0,
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

    /// Every attempt, in the order made (parallel to `history`).
    pub fn attempt_records(&self) -> impl Iterator<Item = AttemptRecord<'_>> {
        self.attempts.iter().zip(&self.history).map(|(a, op)| {
            let reply = match a.state {
                AttemptState::Outstanding => Reply::Unanswered,
                AttemptState::Redirected => Reply::Redirect,
                AttemptState::Failed => Reply::Fail,
                AttemptState::Completed => Reply::Ok,
            };
            AttemptRecord {
                op,
                mid: &a.mid,
                dst: a.dst,
                reply,
            }
        })
    }

    /// The ID of client `c` (an index as in `HistOp::client`).
    pub fn client_id(&self, c: u32) -> NodeId {
        self.clients
            .get(c as usize)
            .map_or(NodeId::UNKNOWN, |client| client.id)
    }

    /// Were any puts acknowledged? (The classic `no_state` check.)
    pub fn stored_items(&self) -> usize {
        self.clients.iter().map(|c| c.item_keys.len()).sum()
    }
}
