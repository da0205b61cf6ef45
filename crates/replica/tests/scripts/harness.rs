//! A few `Node`s in memory, driven by hand: a virtual clock, each replica's armed timers,
//! and the messages in flight, which move only when a script says so.
//!
//! Commands (node IDs are 1..=n; times in milliseconds from the script's start):
//! - `cluster n=3 seed=7 [knob=value ...]`: starts the replicas. A knob is a `Config` field
//!   in kebab case (`coalesce-appends=off`, `apply-batch=64`, spans in ms); a
//!   comma-separated value gives one per replica (`startup-delay=0,2000,2000`).
//! - `advance ms=300` (or `tick`): moves the clock, firing each timer that falls due on the
//!   way at its deadline, in deadline order; a firing that does something is headed
//!   `@time node fires timer`.
//!   `advance ms=300 stabilize` delivers everything in flight before each firing and at
//!   the end, as a network much faster than any timer would.
//! - `campaign 1`: advances until replica 1's election timer makes it campaign.
//! - `fire 1 election` (`held`, `peer2`): fires a timer of replica 1 now, armed or not.
//! - `deliver [from=1] [to=2] [count=k]`: delivers the messages in flight (those matching),
//!   oldest first, each on its own; what they cause stays in flight.
//! - `drop [from=1] [to=2] [count=k]`: loses messages in flight.
//! - `stabilize`: delivers until nothing is in flight (the clock stands still).
//! - `partition 1 2 | 3`: replicas in different groups (the unnamed ones form one more)
//!   lose what they send each other; `heal` ends it.
//! - `crash 3`: replica 3 stops: what is in flight to or from it is lost, and so is what is
//!   sent to it, its timers do not fire. Its state is kept, frozen, and `recover 3`
//!   resumes it (timers that fell due meanwhile fire at the next `advance`): a pause, in
//!   effect, with its memory intact.
//! - `restart 3` (with `durable=on`): replica 3 is killed and started again at once from
//!   what its `persist` commands wrote, through the real storage code on a disk in memory
//!   (`storage::MemDisk`): what is in flight to or from it is lost, its timers
//!   start over, and it comes back as `Recovered::restore` makes it.
//! - `put 1 a=1 [b=2 ...] [client=c] [mid=m1]`, `get 1 a [b ...] [client=c] [mid=m1]`:
//!   client requests handled as one batch of input (one flush). MIDs default to `m1`,
//!   `m2`, ... in script order; the client to `c`.
//! - `persist 1`: replica 1's driver writes and syncs what its core changed (with the
//!   knob `durable=on`; otherwise a replica counts its log as durable at once), and says
//!   so when that includes a snapshot (`1: wrote snapshot 12@2, log 13..15`).
//! - `inject from=2 to=1 vote term=5 last=3@2 [pre]` (and `vote-response`, `append`,
//!   `append-response`; see `text::parse_message`): a hand-made message, delivered at
//!   once, from any ID at all. A vote-response answers the receiver's current round
//!   unless `round=MS` says otherwise.
//! - `status [1]`, `log [1]`, `timers [1]`, `inflight`: print state.
//!
//! Output: each message a replica sends, when it sends it (`1->2 AppendEntries ...`,
//! suffixed `(dropped: ...)` if it cannot arrive); each reply to a client (`1->c m1 ok`,
//! `ok "value"` for a get, `redirect leader=2`, `fail`); and after an input that changed
//! them, a replica's role, term, vote, leader and commit index, the changed ones only
//! (`2: role=follower term=2 leader=1`). Armed timers are printed only by `timers`.

use crate::text;
use raft::NodeId;
use raft::time::Time;
use raft::{AsEntryRef, Effect, Entry, EntryRef, Message, Node, ReplyKind, Role, Term, Timer};
use std::collections::VecDeque;
use storage::{Identity, MemDisk, Storage, StorageError};

mod commands;
pub use commands::exec;

/// Timer firings one `advance` may make before the script is taken to loop.
const FIRINGS_MAX: usize = 100_000;
/// Delivery rounds one `stabilize` may take.
const STABILIZE_ROUNDS_MAX: usize = 100;
/// Election timer firings `campaign` waits through.
const CAMPAIGN_FIRINGS_MAX: usize = 100;
/// Client IDs start here, clear of the replicas'.
const FIRST_CLIENT_ID: u16 = 0x100;

struct Replica {
    node: Node,
    /// Deadline per `Timer::slot`, as the last `SetTimer`/`CancelTimer` left it.
    timers: Vec<Option<Time>>,
    down: bool,
    /// With `durable=on`: what `persist` wrote.
    storage: Option<Storage<MemDisk>>,
}

/// What happens to messages while the clock moves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Network {
    /// They wait in flight for `deliver` or `stabilize`.
    Holds,
    /// Everything in flight is delivered, and what that causes, before each timer fires:
    /// a healthy network, far faster than any timer.
    Delivers,
}

struct InFlight {
    from: NodeId,
    to: NodeId,
    message: Message<Vec<Entry>>,
}

/// What a change line reports of a replica.
#[derive(PartialEq)]
struct Observed {
    role: Role,
    term: Term,
    vote: Option<NodeId>,
    leader: NodeId,
    commit: u64,
}

impl Observed {
    fn of(node: &Node) -> Observed {
        Observed {
            role: node.role(),
            term: node.term(),
            vote: node.voted_for(),
            leader: node.leader(),
            commit: node.commit_index().0,
        }
    }

    /// `role=leader term=2 ...`: the fields of `self` that differ from `before`.
    fn changes_since(&self, before: &Observed) -> Vec<String> {
        let mut fields = Vec::new();
        if self.role != before.role {
            fields.push(format!("role={}", self.role));
        }
        if self.term != before.term {
            fields.push(format!("term={}", self.term.0));
        }
        if self.vote != before.vote {
            fields.push(format!(
                "vote={}",
                self.vote.map_or("none".into(), text::id)
            ));
        }
        if self.leader != before.leader {
            fields.push(format!("leader={}", text::id(self.leader)));
        }
        if self.commit != before.commit {
            fields.push(format!("commit={}", self.commit));
        }
        fields
    }
}

pub struct Cluster {
    replicas: Vec<Replica>,
    now: Time,
    /// In send order, across all links.
    in_flight: VecDeque<InFlight>,
    /// The partition group of each replica, if partitioned.
    groups: Option<Vec<usize>>,
    clients: Vec<String>,
    mids_issued: u64,
    out: Vec<String>,
    /// Scratch for `take_effects`.
    effects: Vec<Effect>,
}

impl Cluster {
    // ----- driving the replicas ------------------------------------------------------

    /// One batch of input to replica `i`: `feed`, then `flush`, then its effects.
    fn input(&mut self, i: usize, feed: impl FnOnce(&mut Node, Time)) {
        let node = &mut self.replicas[i].node;
        let before = Observed::of(node);
        feed(node, self.now);
        node.flush(self.now);
        let changes = Observed::of(node).changes_since(&before);
        if !changes.is_empty() {
            self.out
                .push(format!("{}: {}", text::id(node.id()), changes.join(" ")));
        }
        self.carry_out_effects(i);
    }

    fn carry_out_effects(&mut self, i: usize) {
        let mut effects = std::mem::take(&mut self.effects);
        self.replicas[i].node.take_effects(&mut effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, message } => self.send(i, to, message),
                Effect::Reply(reply) => {
                    let node = &self.replicas[i].node;
                    let kind = match reply.kind {
                        ReplyKind::Ok { value: None } => "ok".to_owned(),
                        ReplyKind::Ok { value: Some(v) } => format!("ok {:?}", v.as_str()),
                        ReplyKind::Redirect => {
                            format!("redirect leader={}", text::id(node.leader()))
                        }
                        ReplyKind::OutcomeUnknown => {
                            format!("unknown leader={}", text::id(node.leader()))
                        }
                        ReplyKind::Fail => "fail".to_owned(),
                    };
                    let client = usize::from(reply.client.0 - FIRST_CLIENT_ID);
                    self.out.push(format!(
                        "{}->{} {} {kind}",
                        text::id(node.id()),
                        self.clients[client],
                        reply.mid
                    ));
                }
                Effect::SetTimer { timer, at } => self.replicas[i].timers[timer.slot()] = Some(at),
                Effect::CancelTimer { timer } => self.replicas[i].timers[timer.slot()] = None,
            }
        }
        self.effects = effects;
    }

    /// Puts a message in flight, or reports why it cannot arrive.
    fn send(&mut self, i: usize, to: NodeId, message: raft::OutgoingMessage) {
        let node = &self.replicas[i].node;
        let entries = match message {
            Message::AppendEntries(a) => node
                .log_entries(a.entries)
                .into_iter()
                .map(Entry::from_ref)
                .collect(),
            Message::InstallSnapshot(m) => match node.snapshot_pairs(m.last_index, m.pairs) {
                Some(pairs) => pairs.into_iter().map(Entry::from_ref).collect(),
                None => {
                    self.out.push(format!(
                        "{}: a chunk of a replaced snapshot is not sent",
                        text::id(node.id())
                    ));
                    return;
                }
            },
            _ => Vec::new(),
        };
        let m = InFlight {
            from: node.id(),
            to,
            message: message.with_entries(entries),
        };
        match self.undeliverable(&m) {
            Some(why) => self
                .out
                .push(format!("{} (dropped: {why})", Self::line(&m))),
            None => {
                self.out.push(Self::line(&m));
                self.in_flight.push_back(m);
            }
        }
    }

    fn deliver(&mut self, m: InFlight) {
        let to = self.index_of(m.to).expect("only replicas are sent to");
        let refs: Vec<EntryRef<'_>> = match &m.message {
            Message::AppendEntries(a) => a.entries.iter().map(AsEntryRef::as_entry_ref).collect(),
            Message::InstallSnapshot(s) => s.pairs.iter().map(AsEntryRef::as_entry_ref).collect(),
            _ => Vec::new(),
        };
        let incoming = m.message.with_entries(&refs[..]);
        let mut refused = None;
        self.input(to, |node, now| {
            refused = node.handle_message(now, m.from, incoming).err();
        });
        if let Some(why) = refused {
            self.out.push(format!(
                "{}: dropped the message from {}: {why}",
                text::id(m.to),
                text::id(m.from)
            ));
        }
    }

    fn advance(&mut self, until: Time, network: Network) -> Result<(), String> {
        for _ in 0..FIRINGS_MAX {
            if network == Network::Delivers {
                self.stabilize()?;
            }
            let due = self
                .replicas
                .iter()
                .enumerate()
                .filter(|(_, r)| !r.down)
                .flat_map(|(i, r)| {
                    r.timers
                        .iter()
                        .enumerate()
                        .filter_map(move |(slot, at)| at.map(|at| (at, i, slot)))
                })
                .filter(|&(at, _, _)| at <= until)
                .min();
            let Some((at, i, slot)) = due else {
                self.now = self.now.max(until);
                return Ok(());
            };
            // A recovered replica's overdue timers fire now, not in the past.
            self.now = self.now.max(at);
            self.replicas[i].timers[slot] = None;
            let timer = Timer::from_slot(slot);
            let mark = self.out.len();
            self.input(i, |node, now| node.handle_timer(now, timer));
            if self.out.len() > mark {
                let header = format!(
                    "@{} {} fires {}",
                    text::time(self.now),
                    i + 1,
                    self.timer_name(i, timer)
                );
                self.out.insert(mark, header);
            }
        }
        Err(format!(
            "more than {FIRINGS_MAX} timer firings: a timer loops"
        ))
    }

    /// Advances to replica `i`'s election deadline, and on until it stops being a follower
    /// (an election timer armed early only re-arms itself when it fires).
    fn campaign(&mut self, i: usize) -> Result<(), String> {
        let slot = Timer::Election.slot();
        for _ in 0..CAMPAIGN_FIRINGS_MAX {
            if self.replicas[i].node.role() != Role::Follower {
                return Ok(());
            }
            let at = self.replicas[i].timers[slot]
                .filter(|_| !self.replicas[i].down)
                .ok_or(format!(
                    "replica {} has no election timer to wait for",
                    i + 1
                ))?;
            self.advance(at, Network::Holds)?;
        }
        Err(format!("replica {} never campaigned", i + 1))
    }

    fn stabilize(&mut self) -> Result<(), String> {
        for _ in 0..STABILIZE_ROUNDS_MAX {
            if self.in_flight.is_empty() {
                return Ok(());
            }
            for m in std::mem::take(&mut self.in_flight) {
                self.deliver(m);
            }
        }
        Err(format!(
            "still messages in flight after {STABILIZE_ROUNDS_MAX} rounds"
        ))
    }

    // ----- the network ---------------------------------------------------------------

    fn line(m: &InFlight) -> String {
        text::message(m.from, m.to, &m.message)
    }

    /// Why `m` cannot arrive, if it cannot.
    fn undeliverable(&self, m: &InFlight) -> Option<String> {
        let (from, to) = (self.index_of(m.from)?, self.index_of(m.to)?);
        for end in [from, to] {
            if self.replicas[end].down {
                return Some(format!("{} is down", end + 1));
            }
        }
        let cut = self.groups.as_ref().is_some_and(|g| g[from] != g[to]);
        cut.then(|| "partitioned".to_owned())
    }

    /// Loses what is in flight and can no longer arrive (after a crash or a partition).
    fn drop_undeliverable(&mut self) {
        let in_flight = std::mem::take(&mut self.in_flight);
        for m in in_flight {
            match self.undeliverable(&m) {
                Some(why) => self.out.push(format!("dropped {} ({why})", Self::line(&m))),
                None => self.in_flight.push_back(m),
            }
        }
    }

    /// Opens replica `i`'s disk (empty at first) as its event loop would.
    fn open_disk(
        node: &Node,
        disk: MemDisk,
    ) -> Result<(Storage<MemDisk>, storage::Recovered), StorageError> {
        let identity = Identity {
            id: node.id(),
            peers: node.peers().to_vec(),
            cluster: "script".to_owned(),
        };
        Storage::open(disk, &identity, u64::from(node.id().0))
    }

    // ----- naming things -------------------------------------------------------------

    fn index_of(&self, id: NodeId) -> Option<usize> {
        let i = usize::from(id.0).checked_sub(1)?;
        (i < self.replicas.len()).then_some(i)
    }

    /// `election`, `held`, or `peerN` for the timer of peer N.
    fn timer_name(&self, i: usize, timer: Timer) -> String {
        match timer {
            Timer::Election => "election".to_owned(),
            Timer::HeldRequests => "held".to_owned(),
            Timer::Peer(p) => format!("peer{}", text::id(self.replicas[i].node.peers()[p])),
        }
    }

    // ----- printing state ------------------------------------------------------------

    fn status_line(&self, i: usize) -> String {
        let r = &self.replicas[i];
        let n = &r.node;
        let log = n.log();
        format!(
            "{} {} term={} vote={} leader={} last={} commit={} applied={} owed={}{}",
            i + 1,
            n.role(),
            n.term().0,
            n.voted_for().map_or("none".into(), text::id),
            text::id(n.leader()),
            text::at(log.last_index(), log.last_term()),
            n.commit_index().0,
            n.last_applied().0,
            n.requests_owed(),
            if r.down { " down" } else { "" }
        )
    }

    fn log_line(&self, i: usize) -> String {
        let log = self.replicas[i].node.log();
        let entries: Vec<String> = log
            .entries()
            .into_iter()
            .enumerate()
            .map(|(k, e)| text::entry(raft::LogIndex(k as u64 + 1), e))
            .collect();
        format!("{} log: [{}]", i + 1, entries.join(", "))
    }

    fn timers_line(&self, i: usize) -> String {
        let armed: Vec<String> = self.replicas[i]
            .timers
            .iter()
            .enumerate()
            .filter_map(|(slot, at)| {
                let name = self.timer_name(i, Timer::from_slot(slot));
                at.map(|at| format!("{name}@{}", text::time(at)))
            })
            .collect();
        format!("{} timers: [{}]", i + 1, armed.join(", "))
    }
}
