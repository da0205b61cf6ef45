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
//! - `add-learner 1 id=4 [address=a]`, `promote 1 id=4`, `remove 1 id=3` (each with
//!   `[client=c] [mid=m1]`): an operator asks replica 1 to change the membership
//!   (`Node::change_membership`); a refusal prints `1->c m1 refused: why`. A replica that
//!   starts outside the cluster has the knob `joining=on`: the others leave it out of
//!   their membership, and it leaves itself out of its own.
//! - `transfer 1 to=3 [client=c] [mid=m1]`: an operator asks replica 1 to hand its
//!   leadership to replica 3 (`Node::transfer_leadership`), answered like a request.
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
use harness::message::{copy_out, hand_in};
use harness::{Cores, Outbox, OwnedMessage};
use raft::time::Time;
use raft::{Node, NodeId, OutgoingMessage, Reply, ReplyKind, Role, Term, Timer};
use std::collections::VecDeque;

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
    message: OwnedMessage,
}

/// What a change line reports of a replica.
#[derive(PartialEq)]
struct Observed {
    role: Role,
    term: Term,
    vote: Option<NodeId>,
    leader: NodeId,
    commit: u64,
    /// The membership in effect, as text (`raft::Membership::to_text`).
    members: String,
}

impl Observed {
    fn of(node: &Node) -> Observed {
        Observed {
            role: node.role(),
            term: node.term(),
            vote: node.voted_for(),
            leader: node.leader(),
            commit: node.commit_index().0,
            members: node.membership().to_text(),
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
        if self.members != before.members {
            fields.push(format!("members=[{}]", self.members));
        }
        fields
    }
}

/// The replicas (with `durable=on`, each with what `persist` wrote on its disk in memory)
/// and the messages between them.
pub struct Cluster {
    cores: Cores,
    now: Time,
    network: Wire,
}

/// Where the replicas' effects go: messages in flight until a command moves them, and
/// every line the script prints.
struct Wire {
    /// In send order, across all links.
    in_flight: VecDeque<InFlight>,
    /// The partition group of each replica, if partitioned.
    groups: Option<Vec<usize>>,
    /// Which replicas are down: they neither send nor receive.
    down: Vec<bool>,
    clients: Vec<String>,
    mids_issued: u64,
    out: Vec<String>,
}

impl Cluster {
    // ----- driving the replicas ------------------------------------------------------

    /// One batch of input to replica `i`: `feed`, then `flush`, then its effects.
    fn input(&mut self, i: usize, feed: impl FnOnce(&mut Node, Time)) {
        let now = self.now;
        let before = Observed::of(self.cores.node(i));
        self.cores.input(i, now, |node| feed(node, now));
        self.note_changes(i, &before);
        self.carry_out_effects(i);
    }

    /// The fields of replica `i` that changed since `before`, on one line.
    fn note_changes(&mut self, i: usize, before: &Observed) {
        let node = self.cores.node(i);
        let changes = Observed::of(node).changes_since(before);
        if !changes.is_empty() {
            self.network
                .out
                .push(format!("{}: {}", text::id(node.id()), changes.join(" ")));
        }
    }

    fn carry_out_effects(&mut self, i: usize) {
        self.cores.carry_out(i, &mut self.network);
    }

    fn deliver(&mut self, m: InFlight) {
        let to = self.index_of(m.to).expect("only replicas are sent to");
        let mut refused = None;
        self.input(to, |node, now| {
            refused = hand_in(node, now, m.from, &m.message).err();
        });
        if let Some(why) = refused {
            self.network.out.push(format!(
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
            let due = (0..self.cores.len())
                .filter(|&i| !self.network.down[i])
                .flat_map(|i| {
                    let armed = self.cores.core(i).timers.armed();
                    armed.map(move |(slot, at)| (at, i, slot))
                })
                .filter(|&(at, _, _)| at <= until)
                .min();
            let Some((at, i, slot)) = due else {
                self.now = self.now.max(until);
                return Ok(());
            };
            // A recovered replica's overdue timers fire now, not in the past.
            self.now = self.now.max(at);
            self.cores.core_mut(i).timers.disarm(slot);
            let timer = Timer::from_slot(slot);
            let mark = self.network.out.len();
            self.input(i, |node, now| node.handle_timer(now, timer));
            if self.network.out.len() > mark {
                let header = format!(
                    "@{} {} fires {}",
                    text::time(self.now),
                    i + 1,
                    self.timer_name(i, timer)
                );
                self.network.out.insert(mark, header);
            }
        }
        Err(format!(
            "more than {FIRINGS_MAX} timer firings: a timer loops"
        ))
    }

    /// Advances to replica `i`'s election deadline, and on until it stops being a follower
    /// (an election timer armed early only re-arms itself when it fires).
    fn campaign(&mut self, i: usize) -> Result<(), String> {
        for _ in 0..CAMPAIGN_FIRINGS_MAX {
            if self.cores.node(i).role() != Role::Follower {
                return Ok(());
            }
            let at = (self.cores.core(i).timers)
                .deadline(Timer::Election)
                .filter(|_| !self.network.down[i])
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
            if self.network.in_flight.is_empty() {
                return Ok(());
            }
            for m in std::mem::take(&mut self.network.in_flight) {
                self.deliver(m);
            }
        }
        Err(format!(
            "still messages in flight after {STABILIZE_ROUNDS_MAX} rounds"
        ))
    }

    // ----- the network ---------------------------------------------------------------

    /// Loses what is in flight and can no longer arrive (after a crash or a partition).
    fn drop_undeliverable(&mut self) {
        let in_flight = std::mem::take(&mut self.network.in_flight);
        for m in in_flight {
            match self.network.undeliverable(&m) {
                Some(why) => self
                    .network
                    .out
                    .push(format!("dropped {} ({why})", Wire::line(&m))),
                None => self.network.in_flight.push_back(m),
            }
        }
    }

    // ----- naming things -------------------------------------------------------------

    fn index_of(&self, id: NodeId) -> Option<usize> {
        index_of(id, self.cores.len())
    }

    /// `election`, `held`, or `peerN` for the timer of peer N.
    fn timer_name(&self, i: usize, timer: Timer) -> String {
        match timer {
            Timer::Election => "election".to_owned(),
            Timer::HeldRequests => "held".to_owned(),
            Timer::Peer(p) => format!("peer{}", text::id(self.cores.node(i).peers()[p])),
        }
    }

    // ----- printing state ------------------------------------------------------------

    fn status_line(&self, i: usize) -> String {
        let n = self.cores.node(i);
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
            if self.network.down[i] { " down" } else { "" }
        )
    }

    fn log_line(&self, i: usize) -> String {
        let log = self.cores.node(i).log();
        let entries: Vec<String> = log
            .entries()
            .into_iter()
            .enumerate()
            .map(|(k, e)| text::entry(raft::LogIndex(k as u64 + 1), e))
            .collect();
        format!("{} log: [{}]", i + 1, entries.join(", "))
    }

    fn timers_line(&self, i: usize) -> String {
        let armed: Vec<String> = (self.cores.core(i).timers)
            .armed()
            .map(|(slot, at)| {
                let name = self.timer_name(i, Timer::from_slot(slot));
                format!("{name}@{}", text::time(at))
            })
            .collect();
        format!("{} timers: [{}]", i + 1, armed.join(", "))
    }
}

/// Replica IDs are 1..=n: the replica at index `id - 1`.
fn index_of(id: NodeId, n: usize) -> Option<usize> {
    let i = usize::from(id.0).checked_sub(1)?;
    (i < n).then_some(i)
}

impl Wire {
    fn line(m: &InFlight) -> String {
        text::message(m.from, m.to, &m.message)
    }

    /// Why `m` cannot arrive, if it cannot.
    fn undeliverable(&self, m: &InFlight) -> Option<String> {
        let n = self.down.len();
        let (from, to) = (index_of(m.from, n)?, index_of(m.to, n)?);
        for end in [from, to] {
            if self.down[end] {
                return Some(format!("{} is down", end + 1));
            }
        }
        let cut = self.groups.as_ref().is_some_and(|g| g[from] != g[to]);
        cut.then(|| "partitioned".to_owned())
    }
}

impl Outbox for Wire {
    /// Puts a message in flight, or reports why it cannot arrive.
    fn send(&mut self, _: usize, sender: &Node, to: NodeId, message: OutgoingMessage) {
        let Some(message) = copy_out(sender, message) else {
            self.out.push(format!(
                "{}: a chunk of a replaced snapshot is not sent",
                text::id(sender.id())
            ));
            return;
        };
        let m = InFlight {
            from: sender.id(),
            to,
            message,
        };
        match self.undeliverable(&m) {
            Some(why) => self
                .out
                .push(format!("{} (dropped: {why})", Wire::line(&m))),
            None => {
                self.out.push(Wire::line(&m));
                self.in_flight.push_back(m);
            }
        }
    }

    fn reply(&mut self, _: usize, node: &Node, reply: Reply) {
        let kind = match reply.kind {
            ReplyKind::Ok { value: None } => "ok".to_owned(),
            ReplyKind::Ok { value: Some(v) } => format!("ok {:?}", v.as_str()),
            ReplyKind::Redirect => format!("redirect leader={}", text::id(node.leader())),
            ReplyKind::OutcomeUnknown => format!("unknown leader={}", text::id(node.leader())),
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
}
