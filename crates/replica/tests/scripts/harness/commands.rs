//! The command language: each line of a script parsed and carried out on the cluster
//! (the commands are listed in `harness`'s module doc).

use super::{Cluster, FIRST_CLIENT_ID, InFlight, Network, Replica};
use crate::text::{self, Args};
use raft::NodeId;
use raft::time::{Span, Time};
use raft::{ClientRequest, Config, Node, Operation, Timer};
use std::collections::VecDeque;
use storage::MemDisk;

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
            let node = Node::new(config, Time::ZERO);
            let storage = node
                .config()
                .durable
                .then(|| Cluster::open_disk(&node, MemDisk::new()).map(|(s, _)| s))
                .transpose()
                .map_err(|e| format!("an empty disk: {e}"))?;
            cluster.replicas.push(Replica {
                node,
                timers: vec![None; slots],
                down: false,
                storage,
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
            "restart" => self.restart(args),
            "put" | "get" => self.client_requests(args),
            "inject" => self.inject(args),
            "persist" => {
                // A durable replica's driver: what changed is written and synced.
                let i = self.replica_arg(args)?;
                let now = self.now;
                let mut wrote = None;
                let mut storage = self.replicas[i].storage.take();
                self.input(i, |node, _| {
                    let changes = node.take_unpersisted();
                    if let Some(storage) = storage.as_mut() {
                        storage::save_changes(storage, node, changes);
                        storage.sync().expect("a disk in memory");
                    }
                    let log = node.log();
                    let last = log.last_index();
                    if changes.snapshot.is_some() {
                        wrote = Some(format!(
                            "{}: wrote snapshot {} ({} keys), log {}..{}",
                            text::id(node.id()),
                            text::at(log.snapshot_index(), log.snapshot_term()),
                            node.snapshot().len(),
                            log.snapshot_index().0 + 1,
                            last.0
                        ));
                    }
                    node.persisted(now, last);
                });
                self.replicas[i].storage = storage;
                self.out.extend(wrote);
                Ok(())
            }
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

    /// `restart 3`: killed, then started again from its disk.
    fn restart(&mut self, args: &mut Args) -> Result<(), String> {
        let i = self.replica_arg(args)?;
        let storage = self.replicas[i]
            .storage
            .take()
            .ok_or("restart needs durable=on: a replica without a disk cannot come back")?;
        let mut disk = storage.into_disk();
        disk.kill();
        let (storage, recovered) = Cluster::open_disk(&self.replicas[i].node, disk)
            .map_err(|e| format!("its disk does not recover: {e}"))?;
        let config = self.replicas[i].node.config().clone();
        let r = &mut self.replicas[i];
        r.node = recovered.restore(config, self.now);
        r.storage = Some(storage);
        r.down = false;
        r.timers.iter_mut().for_each(|t| *t = None);
        // What it had in flight went with the process; what was on its way to it is lost.
        let id = r.node.id();
        self.in_flight.retain(|m| m.from != id && m.to != id);
        let node = &self.replicas[i].node;
        self.out.push(format!(
            "{}: restarted term={} vote={} log={}",
            text::id(id),
            node.term().0,
            node.voted_for().map_or("none".into(), text::id),
            node.log().last_index().0
        ));
        self.carry_out_effects(i);
        Ok(())
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
        let round = self.replicas[self.index_of(to).expect("checked above")]
            .node
            .round_started_at();
        let message = text::parse_message(&kind, args, self.now, round)?;
        self.deliver(InFlight { from, to, message });
        Ok(())
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
        "message-floor" => c.message_floor = switch()?,
        "floor-puts-per-s-max" => c.floor_puts_per_s_max = count()? as u64,
        "floor-burst-puts" => c.floor_burst_puts = count()? as u64,
        "inflight-appends-max" => c.inflight_appends_max = count()?,
        "append-entries-max" => c.append_entries_max = count()?,
        "append-bytes-max" => c.append_bytes_max = count()?,
        "apply-batch" => c.apply_batch = count()?,
        "compaction-log-bytes" => c.compaction_log_bytes = count()?,
        "durable" => c.durable = switch()?,
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
