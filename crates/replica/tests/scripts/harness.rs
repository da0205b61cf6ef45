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
//!   resumes it (timers that fell due meanwhile fire at the next `advance`): the core keeps
//!   its "persistent" state in memory and has no restart from disk to test.
//! - `put 1 a=1 [b=2 ...] [client=c] [mid=m1]`, `get 1 a [b ...] [client=c] [mid=m1]`:
//!   client requests handled as one batch of input (one flush). MIDs default to `m1`,
//!   `m2`, ... in script order; the client to `c`.
//! - `inject from=2 to=1 vote term=5 last=3@2 [pre]` (and `vote-response`, `append`,
//!   `append-response`; see `text::parse_message`): a hand-made message, delivered at
//!   once, from any ID at all.
//! - `status [1]`, `log [1]`, `timers [1]`, `inflight`: print state.
//!
//! Output: each message a replica sends, when it sends it (`1->2 AppendEntries ...`,
//! suffixed `(dropped: ...)` if it cannot arrive); each reply to a client (`1->c m1 ok`,
//! `ok "value"` for a get, `redirect leader=2`, `fail`); and after an input that changed
//! them, a replica's role, term, vote, leader and commit index, the changed ones only
//! (`2: role=follower term=2 leader=1`). Armed timers are printed only by `timers`.

use crate::text::{self, Args};
use datagram::NodeId;
use replica::raft::{
    AsEntryRef, ClientRequest, Config, Effect, Entry, EntryRef, Message, Node, Operation,
    ReplyKind, Role, Term, Timer,
};
use replica::time::{Span, Time};
use std::collections::VecDeque;

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

/// Runs one command line against `cluster`, which the first command (`cluster`) creates.
pub fn exec(cluster: &mut Option<Cluster>, line: &str) -> Result<Vec<String>, String> {
    let mut args = Args::parse(line)?;
    if args.command == "cluster" {
        *cluster = Some(Cluster::new(&mut args)?);
        args.finish()?;
        return Ok(Vec::new());
    }
    let c = cluster
        .as_mut()
        .ok_or("no cluster yet: a script starts with `cluster n=3`")?;
    c.command(&mut args)?;
    args.finish()?;
    Ok(std::mem::take(&mut c.out))
}

impl Cluster {
    fn new(args: &mut Args) -> Result<Cluster, String> {
        let n: u16 = args.take("n")?.unwrap_or(3);
        if !(1..FIRST_CLIENT_ID).contains(&n) {
            return Err(format!(
                "n={n}: a cluster has 1 to {} replicas",
                FIRST_CLIENT_ID - 1
            ));
        }
        let seed: u64 = args.take("seed")?.unwrap_or(1);
        let ids: Vec<NodeId> = (1..=n).map(NodeId).collect();
        let mut configs: Vec<Config> = ids
            .iter()
            .map(|&me| {
                let peers = ids.iter().copied().filter(|&p| p != me).collect();
                // Each replica its own seed, so their election timeouts differ.
                Config::new(
                    me,
                    peers,
                    seed.wrapping_mul(1000).wrapping_add(u64::from(me.0)),
                )
            })
            .collect();
        for (knob, value) in args.take_all_named() {
            let values: Vec<&str> = value.split(',').collect();
            if values.len() != 1 && values.len() != configs.len() {
                return Err(format!("{knob}={value}: one value, or one per replica"));
            }
            for (i, config) in configs.iter_mut().enumerate() {
                set_knob(config, &knob, values[i.min(values.len() - 1)])?;
            }
        }
        let mut cluster = Cluster {
            replicas: Vec::new(),
            now: Time::ZERO,
            in_flight: VecDeque::new(),
            groups: None,
            clients: Vec::new(),
            mids_issued: 0,
            out: Vec::new(),
            effects: Vec::new(),
        };
        for config in configs {
            let slots = Timer::count(config.peers.len());
            cluster.replicas.push(Replica {
                node: Node::new(config, Time::ZERO),
                timers: vec![None; slots],
                down: false,
            });
            // The first election timer.
            cluster.carry_out_effects(cluster.replicas.len() - 1);
        }
        Ok(cluster)
    }

    fn command(&mut self, args: &mut Args) -> Result<(), String> {
        match args.command.as_str() {
            "advance" | "tick" => {
                let span = text::parse_ms(&args.require::<String>("ms")?)?;
                let network = if args.flag("stabilize") {
                    Network::Delivers
                } else {
                    Network::Holds
                };
                self.advance(self.now + Span::from_micros(span), network)
            }
            "campaign" => {
                let i = self.replica_arg(args)?;
                self.campaign(i)
            }
            "fire" => {
                let i = self.replica_arg(args)?;
                let name: String = args.positional("a timer (election, held, peerN)")?;
                let timer = self.parse_timer(i, &name)?;
                self.replicas[i].timers[timer.slot()] = None;
                self.input(i, |node, now| node.handle_timer(now, timer));
                Ok(())
            }
            "deliver" => {
                for m in self.take_in_flight(args)? {
                    self.deliver(m);
                }
                Ok(())
            }
            "drop" => {
                for m in self.take_in_flight(args)? {
                    self.out.push(format!("dropped {}", Self::line(&m)));
                }
                Ok(())
            }
            "stabilize" => self.stabilize(),
            "partition" => self.partition(args),
            "heal" => {
                self.groups = None;
                Ok(())
            }
            "crash" => {
                let i = self.replica_arg(args)?;
                self.replicas[i].down = true;
                self.drop_undeliverable();
                Ok(())
            }
            "recover" => {
                let i = self.replica_arg(args)?;
                self.replicas[i].down = false;
                Ok(())
            }
            "put" | "get" => self.client_requests(args),
            "inject" => self.inject(args),
            "status" => {
                self.out.push(format!("now={}", text::time(self.now)));
                for i in self.replicas_arg(args)? {
                    self.out.push(self.status_line(i));
                }
                Ok(())
            }
            "log" => {
                for i in self.replicas_arg(args)? {
                    self.out.push(self.log_line(i));
                }
                Ok(())
            }
            "timers" => {
                for i in self.replicas_arg(args)? {
                    self.out.push(self.timers_line(i));
                }
                Ok(())
            }
            "inflight" => {
                let lines: Vec<String> = self.in_flight.iter().map(Self::line).collect();
                self.out.extend(lines);
                Ok(())
            }
            other => Err(format!("no command {other:?}")),
        }
    }

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
    fn send(&mut self, i: usize, to: NodeId, message: replica::raft::OutgoingMessage) {
        let node = &self.replicas[i].node;
        let entries = match message {
            Message::AppendEntries(a) => node
                .log_entries(a.entries)
                .into_iter()
                .map(Entry::from_ref)
                .collect(),
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
            _ => Vec::new(),
        };
        let incoming = m.message.with_entries(&refs[..]);
        self.input(to, |node, now| node.handle_message(now, m.from, incoming));
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

    fn client_requests(&mut self, args: &mut Args) -> Result<(), String> {
        let i = self.replica_arg(args)?;
        if self.replicas[i].down {
            return Err(format!("replica {} is down", i + 1));
        }
        let client_name = args.take_raw("client").unwrap_or_else(|| "c".to_owned());
        let fixed_mid = args.take_raw("mid");
        let requests: Vec<(String, Option<String>)> = if args.command == "put" {
            let puts = args.take_all_named();
            puts.into_iter().map(|(k, v)| (k, Some(v))).collect()
        } else {
            std::iter::from_fn(|| args.next_positional())
                .map(|k| (k, None))
                .collect()
        };
        if requests.is_empty() || (fixed_mid.is_some() && requests.len() > 1) {
            return Err("one request or more, and mid= only with one".to_owned());
        }
        let client = self.client_id(&client_name);
        let mut mids = Vec::new();
        for _ in &requests {
            self.mids_issued += 1;
            mids.push(
                fixed_mid
                    .clone()
                    .unwrap_or(format!("m{}", self.mids_issued)),
            );
        }
        self.input(i, |node, now| {
            for ((key, value), mid) in requests.iter().zip(&mids) {
                let operation = match value {
                    Some(value) => Operation::Put { key, value },
                    None => Operation::Get { key },
                };
                node.handle_client_request(
                    now,
                    ClientRequest {
                        client,
                        mid,
                        operation,
                    },
                );
            }
        });
        Ok(())
    }

    fn inject(&mut self, args: &mut Args) -> Result<(), String> {
        let from = NodeId(args.require("from")?);
        let to = NodeId(args.require("to")?);
        if self.index_of(to).is_none_or(|i| self.replicas[i].down) {
            return Err(format!("to={}: no such replica up", to.0));
        }
        let kind: String = args.positional("a message kind")?;
        let message = text::parse_message(&kind, args, self.now)?;
        self.deliver(InFlight { from, to, message });
        Ok(())
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

    fn partition(&mut self, args: &mut Args) -> Result<(), String> {
        let n = self.replicas.len();
        let mut groups = vec![usize::MAX; n];
        let mut group = 0;
        while let Some(word) = args.next_positional() {
            if word == "|" {
                group += 1;
                continue;
            }
            let i = self.parse_replica(&word)?;
            groups[i] = group;
        }
        for g in &mut groups {
            if *g == usize::MAX {
                *g = group + 1;
            }
        }
        self.groups = Some(groups);
        self.drop_undeliverable();
        Ok(())
    }

    /// Removes from flight the messages `from=`, `to=` and `count=` select, oldest first.
    fn take_in_flight(&mut self, args: &mut Args) -> Result<Vec<InFlight>, String> {
        let from: Option<u16> = args.take("from")?;
        let to: Option<u16> = args.take("to")?;
        let mut count: usize = args.take("count")?.unwrap_or(usize::MAX);
        let mut taken = Vec::new();
        let mut kept = VecDeque::new();
        for m in std::mem::take(&mut self.in_flight) {
            let selected =
                count > 0 && from.is_none_or(|f| m.from.0 == f) && to.is_none_or(|t| m.to.0 == t);
            if selected {
                count -= 1;
                taken.push(m);
            } else {
                kept.push_back(m);
            }
        }
        self.in_flight = kept;
        Ok(taken)
    }

    // ----- naming things -------------------------------------------------------------

    fn index_of(&self, id: NodeId) -> Option<usize> {
        let i = usize::from(id.0).checked_sub(1)?;
        (i < self.replicas.len()).then_some(i)
    }

    fn parse_replica(&self, word: &str) -> Result<usize, String> {
        word.parse()
            .ok()
            .and_then(|n| self.index_of(NodeId(n)))
            .ok_or(format!("no replica {word:?}"))
    }

    fn replica_arg(&self, args: &mut Args) -> Result<usize, String> {
        let word = args.next_positional().ok_or("missing a replica")?;
        self.parse_replica(&word)
    }

    /// The replica named, or all of them.
    fn replicas_arg(&self, args: &mut Args) -> Result<Vec<usize>, String> {
        match args.next_positional() {
            Some(word) => Ok(vec![self.parse_replica(&word)?]),
            None => Ok((0..self.replicas.len()).collect()),
        }
    }

    fn client_id(&mut self, name: &str) -> NodeId {
        let k = match self.clients.iter().position(|c| c == name) {
            Some(k) => k,
            None => {
                self.clients.push(name.to_owned());
                self.clients.len() - 1
            }
        };
        NodeId(FIRST_CLIENT_ID + k as u16)
    }

    /// `election`, `held`, or `peerN` for the timer of peer N.
    fn timer_name(&self, i: usize, timer: Timer) -> String {
        match timer {
            Timer::Election => "election".to_owned(),
            Timer::HeldRequests => "held".to_owned(),
            Timer::Peer(p) => format!("peer{}", text::id(self.replicas[i].node.peers()[p])),
        }
    }

    fn parse_timer(&self, i: usize, name: &str) -> Result<Timer, String> {
        let peers = self.replicas[i].node.peers();
        match name {
            "election" => Ok(Timer::Election),
            "held" => Ok(Timer::HeldRequests),
            _ => name
                .strip_prefix("peer")
                .and_then(|p| p.parse().ok())
                .and_then(|p| peers.iter().position(|&id| id == NodeId(p)))
                .map(Timer::Peer)
                .ok_or(format!("no timer {name:?} (election, held, peerN)")),
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
            .map(|(k, e)| text::entry(replica::raft::LogIndex(k as u64 + 1), e))
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

/// Sets the `Config` field `knob` (kebab case) from `value`: spans in milliseconds,
/// switches `on`/`off`.
fn set_knob(c: &mut Config, knob: &str, value: &str) -> Result<(), String> {
    let span = || text::parse_ms(value).map(Span::from_micros);
    let count = || {
        value
            .parse::<usize>()
            .map_err(|_| format!("{knob}={value}: a count"))
    };
    let switch = || match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("{knob}={value}: on or off")),
    };
    match knob {
        "election-timeout-min" => c.election_timeout_min = span()?,
        "election-timeout-max" => c.election_timeout_max = span()?,
        "startup-delay" => c.startup_delay = span()?,
        "vote-retry-interval" => c.vote_retry_interval = span()?,
        "vote-retry-interval-max" => c.vote_retry_interval_max = span()?,
        "heartbeat-interval" => c.heartbeat_interval = span()?,
        "retransmit-timeout" => c.retransmit_timeout = span()?,
        "retransmit-timeout-uncommitted" => c.retransmit_timeout_uncommitted = span()?,
        "retransmit-timeout-max" => c.retransmit_timeout_max = span()?,
        "replicate-to-quorum-only" => c.replicate_to_quorum_only = switch()?,
        "replication-stall-timeout" => c.replication_stall_timeout = span()?,
        "replication-stall-timeout-min" => c.replication_stall_timeout_min = span()?,
        "stall-timeout-rtts" => c.stall_timeout_rtts = count()? as u64,
        "append-presumed-lost-after" => c.append_presumed_lost_after = span()?,
        "ack-refresh-interval" => c.ack_refresh_interval = span()?,
        "lease-margin" => c.lease_margin = span()?,
        "coalesce-appends" => c.coalesce_appends = switch()?,
        "inflight-appends-max" => c.inflight_appends_max = count()?,
        "append-entries-max" => c.append_entries_max = count()?,
        "append-bytes-max" => c.append_bytes_max = count()?,
        "apply-batch" => c.apply_batch = count()?,
        "held-requests-max" => c.held_requests_max = count()?,
        "held-request-timeout" => c.held_request_timeout = span()?,
        "pending-puts-max" => c.pending_puts_max = count()?,
        "pending-reads-max" => c.pending_reads_max = count()?,
        "key-bytes-max" => c.key_bytes_max = count()?,
        "value-bytes-max" => c.value_bytes_max = count()?,
        _ => return Err(format!("no Config knob {knob:?}")),
    }
    Ok(())
}
