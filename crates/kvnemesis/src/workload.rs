//! The clients: a register workload on a few shared keys, each operation recorded as
//! invoke then ok, fail or info.
//!
//! - Each client starts at its home node (client `c` at node `c mod N` of the nodes not
//!   removed, from the cluster's [`Directory`]) for every operation, with its own
//!   connection to each node, and follows `-MOVED` for that operation only: reads keep
//!   reaching followers, which is how a follower that serves reads it must not gets
//!   caught.
//! - Only what is known not to have happened is tried again, within the operation's
//!   deadline: no connection, `-MOVED`, `-CLUSTERDOWN` (never proposed), `ERR busy` (not
//!   performed). A timeout, a closed connection or `-TIMEOUT` makes the operation `info`;
//!   the connection is dropped and the client goes on as a new process (its number plus
//!   the number of clients), as Jepsen's do, since a process has one operation at a time.
//! - Values are unique (`<process>-<sequence>`); a delete writes "no such key".
//! - Keys rotate, as in Jepsen's independent registers: after `ops_per_key` operations a
//!   key's slot moves to a fresh key, so that each key's history stays small enough for
//!   an exact linearizability search.

use crate::cluster::Directory;
use crate::history::{Draft, Process, Recorder, Type};
use crate::resp::{Connection, Failure, Reply};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Redirects followed in a row before the client pauses: nodes may name each other for a
/// moment while a leader changes.
const REDIRECTS_MAX: usize = 5;
/// How long a client waits before trying again what was refused.
const REFUSED_BACKOFF: Duration = Duration::from_millis(50);
/// How long a node holds a command while it knows no leader before `-CLUSTERDOWN`
/// (`server::command::LEADER_WAIT_MS_MAX`), with a margin.
const NODE_HOLD: Duration = Duration::from_millis(2_200);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Clone, Debug)]
pub struct WorkloadOptions {
    pub clients: usize,
    pub keys: usize,
    pub ops_per_key: u32,
    /// How long one operation may take before it is `info`.
    pub op_timeout: Duration,
    /// Each client waits up to this long between operations.
    pub think_max: Duration,
}

/// The key slots shared by every client.
pub struct Keys {
    inner: Mutex<KeySlots>,
    ops_per_key: u32,
}

struct KeySlots {
    /// Per slot: generation and operations taken on it.
    slots: Vec<(u32, u32)>,
    all: Vec<String>,
}

impl Keys {
    pub fn new(count: usize, ops_per_key: u32) -> Keys {
        Keys {
            inner: Mutex::new(KeySlots {
                slots: vec![(0, 0); count],
                all: (0..count).map(|s| key_name(s, 0)).collect(),
            }),
            ops_per_key,
        }
    }

    /// The current key of a random slot, counting the operation against it.
    fn take(&self, rng: &mut SmallRng) -> String {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let slot = rng.random_range(0..inner.slots.len());
        let (generation, ops) = &mut inner.slots[slot];
        if *ops >= self.ops_per_key {
            *generation += 1;
            *ops = 0;
            let name = key_name(slot, *generation);
            inner.all.push(name);
        }
        let (generation, ops) = &mut inner.slots[slot];
        *ops += 1;
        key_name(slot, *generation)
    }

    /// Every key any client used, in the order they came into use.
    pub fn all(&self) -> Vec<String> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .all
            .clone()
    }
}

fn key_name(slot: usize, generation: u32) -> String {
    format!("k{slot}-{generation}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Delete,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Read => "read",
            Op::Write => "write",
            Op::Delete => "delete",
        }
    }
}

/// What became of one operation.
pub struct Outcome {
    pub kind: Type,
    /// The value read (`None`: no such key).
    pub read: Option<String>,
    pub node: Option<u16>,
    pub error: Option<String>,
}

/// One client's connections, one per node, opened when first needed.
pub struct Client {
    nodes: Vec<SocketAddr>,
    connections: Vec<Option<Connection>>,
    directory: Arc<Directory>,
    /// The directory's version `nodes` was taken from.
    seen: u64,
    op_timeout: Duration,
}

impl Client {
    pub fn new(directory: Arc<Directory>, op_timeout: Duration) -> Client {
        let mut client = Client {
            nodes: Vec::new(),
            connections: Vec::new(),
            directory,
            seen: u64::MAX,
            op_timeout,
        };
        client.refresh();
        client
    }

    /// Takes the nodes there are now, keeping the connections to those still there.
    fn refresh(&mut self) {
        let Some((version, nodes)) = self.directory.changed_since(self.seen) else {
            return;
        };
        let mut old: Vec<(SocketAddr, Option<Connection>)> = self
            .nodes
            .drain(..)
            .zip(self.connections.drain(..))
            .collect();
        self.connections = nodes
            .iter()
            .map(|a| {
                old.iter_mut()
                    .find(|(b, _)| b == a)
                    .and_then(|(_, c)| c.take())
            })
            .collect();
        self.nodes = nodes;
        self.seen = version;
    }

    /// Performs `op` starting at node `home` (modulo the nodes there are), following
    /// redirects and trying again what was refused, until the operation's deadline.
    pub fn perform(&mut self, op: Op, key: &str, value: &str, home: usize) -> Outcome {
        let deadline = Instant::now() + self.op_timeout;
        self.refresh();
        if self.nodes.is_empty() {
            return fail(None, "no node".into());
        }
        let mut target = home % self.nodes.len();
        let mut redirects = 0;
        let mut refusal = String::from("no attempt");
        let args: Vec<&[u8]> = match op {
            Op::Read => vec![b"GET", key.as_bytes()],
            Op::Write => vec![b"SET", key.as_bytes(), value.as_bytes()],
            Op::Delete => vec![b"DEL", key.as_bytes()],
        };
        while Instant::now() < deadline {
            let answering = crate::cluster::id_of(self.nodes[target]);
            let reply = match self.connection(target, deadline) {
                Ok(connection) => connection.command(&args, deadline),
                Err(failure) => Err(failure),
            };
            match reply {
                Err(Failure::NotSent(why)) => {
                    refusal = why;
                    self.connections[target] = None;
                    // The node is down: any other one redirects to whoever leads now.
                    self.refresh();
                    target = (target + 1) % self.nodes.len();
                    pause_until(deadline, REFUSED_BACKOFF);
                }
                Err(Failure::Unknown(why)) => {
                    self.connections[target] = None;
                    return info(answering, why);
                }
                Ok(Reply::Error(error)) => {
                    if let Some(next) = self.moved_to(&error) {
                        redirects += 1;
                        if redirects > REDIRECTS_MAX {
                            // Nodes that name each other while a leader changes: wait
                            // for them to agree.
                            refusal = format!("{redirects} redirects in a row");
                            redirects = 0;
                            pause_until(deadline, REFUSED_BACKOFF);
                        }
                        target = next;
                        continue;
                    }
                    if error.starts_with("CLUSTERDOWN") || error.starts_with("ERR busy") {
                        refusal = error;
                        // Another node may know a leader (this one may not be a member).
                        target = (target + 1) % self.nodes.len();
                        // Sent again, the command may be held past the deadline and end
                        // as `info` though never proposed: give up while it is a `fail`.
                        if deadline.saturating_duration_since(Instant::now()) < NODE_HOLD {
                            break;
                        }
                        pause_until(deadline, REFUSED_BACKOFF);
                        continue;
                    }
                    // `-TIMEOUT`, or anything not known to mean "not performed".
                    self.connections[target] = None;
                    return info(answering, error);
                }
                Ok(reply) => return ok(op, reply, answering),
            }
        }
        fail(None, format!("refused: {refusal}"))
    }

    fn connection(&mut self, i: usize, deadline: Instant) -> Result<&mut Connection, Failure> {
        if self.connections[i].is_none() {
            let timeout = CONNECT_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
            self.connections[i] = Some(Connection::connect(self.nodes[i], timeout)?);
        }
        Ok(self.connections[i].as_mut().expect("just connected"))
    }

    /// The node a `MOVED <slot> <address>` names.
    /// The node a `-MOVED` names, added to those known if it is new (a node added to the
    /// cluster after the client started).
    fn moved_to(&mut self, error: &str) -> Option<usize> {
        let address: SocketAddr = error
            .strip_prefix("MOVED ")?
            .split(' ')
            .nth(1)?
            .parse()
            .ok()?;
        self.refresh();
        if let Some(i) = self.nodes.iter().position(|&a| a == address) {
            return Some(i);
        }
        self.nodes.push(address);
        self.connections.push(None);
        Some(self.nodes.len() - 1)
    }
}

fn pause_until(deadline: Instant, pause: Duration) {
    let left = deadline.saturating_duration_since(Instant::now());
    std::thread::sleep(pause.min(left));
}

fn info(node: Option<u16>, error: String) -> Outcome {
    Outcome {
        kind: Type::Info,
        read: None,
        node,
        error: Some(error),
    }
}

fn fail(node: Option<u16>, error: String) -> Outcome {
    Outcome {
        kind: Type::Fail,
        read: None,
        node,
        error: Some(error),
    }
}

fn ok(op: Op, reply: Reply, node: Option<u16>) -> Outcome {
    let read = match (op, reply) {
        (Op::Read, Reply::Bulk(bytes)) => bytes.map(|b| String::from_utf8_lossy(&b).into_owned()),
        (Op::Write, Reply::Simple(s)) if s == "OK" => None,
        (Op::Delete, Reply::Integer(_)) => None,
        (_, other) => {
            // A reply of the wrong shape: the node did something, but not what was
            // asked; the checks cannot use it.
            return info(node, format!("unexpected reply {other:?}"));
        }
    };
    Outcome {
        kind: Type::Ok,
        read,
        node,
        error: None,
    }
}

/// Runs client `c` until `stop`: pick an operation and perform it, recorded.
pub fn run_client(
    c: usize,
    directory: Arc<Directory>,
    options: &WorkloadOptions,
    keys: &Keys,
    recorder: &Recorder,
    stop: &AtomicBool,
    seed: u64,
) {
    let mut rng = SmallRng::seed_from_u64(seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let home = c;
    let mut client = Client::new(directory, options.op_timeout);
    let mut process = c as u64;
    let mut sequence = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let op = match rng.random_range(0..10) {
            0..5 => Op::Read,
            5..9 => Op::Write,
            _ => Op::Delete,
        };
        let key = keys.take(&mut rng);
        sequence += 1;
        let value = format!("{process}-{sequence}");
        let kind = recorded(&mut client, recorder, process, op, &key, &value, home);
        if kind == Type::Info {
            process += options.clients as u64;
        }
        if !options.think_max.is_zero() {
            let think = rng.random_range(0..=options.think_max.as_micros() as u64);
            std::thread::sleep(Duration::from_micros(think));
        }
    }
}

/// Reads `key` as process `process` until a read succeeds or `within` passes; each
/// attempt is an operation in the history. Whether one succeeded.
pub fn final_read(
    client: &mut Client,
    key: &str,
    process: &mut u64,
    recorder: &Recorder,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match recorded(client, recorder, *process, Op::Read, key, "", 0) {
            Type::Ok => return true,
            Type::Info => *process += 1,
            _ => {}
        }
    }
    false
}

/// Records the invocation of `op`, performs it, records what became of it.
fn recorded(
    client: &mut Client,
    recorder: &Recorder,
    process: u64,
    op: Op,
    key: &str,
    value: &str,
    home: usize,
) -> Type {
    let written = (op == Op::Write).then(|| value.to_owned());
    recorder.record(Draft {
        kind: Type::Invoke,
        process: Process::Client(process),
        f: op.name().into(),
        key: Some(key.into()),
        value: written.clone(),
        node: None,
        error: None,
    });
    let outcome = client.perform(op, key, value, home);
    recorder.record(Draft {
        kind: outcome.kind,
        process: Process::Client(process),
        f: op.name().into(),
        key: Some(key.into()),
        value: if op == Op::Read {
            outcome.read
        } else {
            written
        },
        node: outcome.node,
        error: outcome.error,
    });
    outcome.kind
}
