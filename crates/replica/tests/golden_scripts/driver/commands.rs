//! The command language: each line of a script parsed and carried out on the cluster
//! (the commands are listed in `driver`'s module doc).

use super::{Cluster, FIRST_CLIENT_ID, InFlight, Network, Observed, Wire};
use crate::text::{self, Args};
use harness::{Core, Cores, open_mem_disk, peers_of};
use raft::time::{Span, Time};
use raft::{ClientRequest, Config, MembershipChange, Node, NodeId, Operation, Timer};
use std::collections::VecDeque;
use storage::MemDisk;

/// The identity's cluster name on the replicas' disks.
const CLUSTER_NAME: &str = "script";

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
    Ok(std::mem::take(&mut c.network.out))
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
                // Each replica its own seed, so their election timeouts differ.
                Config::new(
                    me,
                    peers_of(&ids, me),
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
        // Members leave the replicas that are joining out of their membership.
        let joining: Vec<NodeId> = configs.iter().filter(|c| c.joining).map(|c| c.id).collect();
        for config in configs.iter_mut() {
            config.joining_peers = joining.clone();
        }
        let mut cores = Vec::new();
        for config in configs {
            let storage = config
                .durable
                .then(|| {
                    open_mem_disk(
                        &config,
                        MemDisk::new(),
                        u64::from(config.id.0),
                        CLUSTER_NAME,
                    )
                })
                .transpose()
                .map_err(|e| format!("an empty disk: {e}"))?
                .map(|(storage, _)| storage);
            cores.push(Core::new(Node::new(config, Time::ZERO), storage));
        }
        let n = cores.len();
        let mut cluster = Cluster {
            cores: Cores::new(cores),
            now: Time::ZERO,
            network: Wire {
                in_flight: VecDeque::new(),
                groups: None,
                down: vec![false; n],
                clients: Vec::new(),
                mids_issued: 0,
                out: Vec::new(),
            },
        };
        for i in 0..n {
            // The first election timer.
            cluster.carry_out_effects(i);
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
                self.cores.core_mut(i).timers.disarm(timer.slot());
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
                    self.network.out.push(format!("dropped {}", Wire::line(&m)));
                }
                Ok(())
            }
            "stabilize" => self.stabilize(),
            "partition" => self.partition(args),
            "heal" => {
                self.network.groups = None;
                Ok(())
            }
            "crash" => {
                let i = self.replica_arg(args)?;
                self.network.down[i] = true;
                self.drop_undeliverable();
                Ok(())
            }
            "recover" => {
                let i = self.replica_arg(args)?;
                self.network.down[i] = false;
                Ok(())
            }
            "restart" => self.restart(args),
            "put" | "get" => self.client_requests(args),
            "transfer" => self.transfer(args),
            "add-learner" | "promote" | "remove" => self.change_membership(args),
            "inject" => self.inject(args),
            "persist" => {
                // A durable replica's driver: what changed is written and synced.
                let i = self.replica_arg(args)?;
                let before = Observed::of(self.cores.node(i));
                let wrote_snapshot = self.cores.persist(i, self.now);
                let node = self.cores.node(i);
                let log = node.log();
                let wrote = wrote_snapshot.then(|| {
                    format!(
                        "{}: wrote snapshot {} ({} keys), log {}..{}",
                        text::id(node.id()),
                        text::at(log.snapshot_index(), log.snapshot_term()),
                        node.snapshot().len(),
                        log.snapshot_index().0 + 1,
                        log.last_index().0
                    )
                });
                self.cores.input(i, self.now, |_| {});
                self.note_changes(i, &before);
                self.carry_out_effects(i);
                self.network.out.extend(wrote);
                Ok(())
            }
            "status" => {
                self.network
                    .out
                    .push(format!("now={}", text::time(self.now)));
                for i in self.replicas_arg(args)? {
                    let line = self.status_line(i);
                    self.network.out.push(line);
                }
                Ok(())
            }
            "log" => {
                for i in self.replicas_arg(args)? {
                    let line = self.log_line(i);
                    self.network.out.push(line);
                }
                Ok(())
            }
            "timers" => {
                for i in self.replicas_arg(args)? {
                    let line = self.timers_line(i);
                    self.network.out.push(line);
                }
                Ok(())
            }
            "inflight" => {
                let lines: Vec<String> = self.network.in_flight.iter().map(Wire::line).collect();
                self.network.out.extend(lines);
                Ok(())
            }
            other => Err(format!("no command {other:?}")),
        }
    }

    /// `restart 3`: killed, then started again from its disk.
    fn restart(&mut self, args: &mut Args) -> Result<(), String> {
        let i = self.replica_arg(args)?;
        let core = self.cores.core_mut(i);
        let storage = core
            .storage
            .take()
            .ok_or("restart needs durable=on: a replica without a disk cannot come back")?;
        let mut disk = storage.into_disk();
        disk.kill();
        let (storage, recovered) = open_mem_disk(core.node.config(), disk, 0, CLUSTER_NAME)
            .map_err(|e| format!("its disk does not recover: {e}"))?;
        core.restart(storage, recovered, self.now);
        self.network.down[i] = false;
        // What it had in flight went with the process; what was on its way to it is lost.
        let node = self.cores.node(i);
        let id = node.id();
        self.network
            .in_flight
            .retain(|m| m.from != id && m.to != id);
        self.network.out.push(format!(
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
        if self.network.down[i] {
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
            self.network.mids_issued += 1;
            mids.push(
                fixed_mid
                    .clone()
                    .unwrap_or(format!("m{}", self.network.mids_issued)),
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

    /// The client name, its ID and the MID of an operator's request (`client=`, `mid=`).
    fn operator_request(&mut self, args: &mut Args) -> (String, NodeId, String) {
        let client_name = args.take_raw("client").unwrap_or_else(|| "c".to_owned());
        let client = self.client_id(&client_name);
        self.network.mids_issued += 1;
        let mid = args
            .take_raw("mid")
            .unwrap_or(format!("m{}", self.network.mids_issued));
        (client_name, client, mid)
    }

    /// `add-learner 1 id=4 [address=a]`, `promote 1 id=4`, `remove 1 id=3`.
    fn change_membership(&mut self, args: &mut Args) -> Result<(), String> {
        let i = self.replica_arg(args)?;
        if self.network.down[i] {
            return Err(format!("replica {} is down", i + 1));
        }
        let id = NodeId(args.require("id")?);
        let change = match args.command.as_str() {
            "add-learner" => MembershipChange::AddLearner {
                id,
                address: args.take_raw("address").unwrap_or_default().into(),
            },
            "promote" => MembershipChange::Promote { id },
            _ => MembershipChange::Remove { id },
        };
        let (client_name, client, mid) = self.operator_request(args);
        let mut refused = None;
        self.input(i, |node, now| {
            refused = node.change_membership(now, change, client, &mid).err();
        });
        if let Some(why) = refused {
            self.network
                .out
                .push(format!("{}->{client_name} {mid} refused: {why}", i + 1));
        }
        Ok(())
    }

    /// `transfer 1 to=3 [client=c] [mid=m1]`: an operator asks replica 1 to hand its
    /// leadership to replica 3; the answer is a reply like a client's.
    fn transfer(&mut self, args: &mut Args) -> Result<(), String> {
        let i = self.replica_arg(args)?;
        if self.network.down[i] {
            return Err(format!("replica {} is down", i + 1));
        }
        let target = NodeId(args.require("to")?);
        let (_, client, mid) = self.operator_request(args);
        self.input(i, |node, now| {
            node.transfer_leadership(now, target, client, &mid);
        });
        Ok(())
    }

    fn inject(&mut self, args: &mut Args) -> Result<(), String> {
        let from = NodeId(args.require("from")?);
        let to = NodeId(args.require("to")?);
        if self.index_of(to).is_none_or(|i| self.network.down[i]) {
            return Err(format!("to={}: no such replica up", to.0));
        }
        let kind: String = args.positional("a message kind")?;
        let round = (self.cores)
            .node(self.index_of(to).expect("checked above"))
            .round_started_at();
        let message = text::parse_message(&kind, args, self.now, round)?;
        self.deliver(InFlight { from, to, message });
        Ok(())
    }

    fn partition(&mut self, args: &mut Args) -> Result<(), String> {
        let n = self.cores.len();
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
        self.network.groups = Some(groups);
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
        for m in std::mem::take(&mut self.network.in_flight) {
            let selected =
                count > 0 && from.is_none_or(|f| m.from.0 == f) && to.is_none_or(|t| m.to.0 == t);
            if selected {
                count -= 1;
                taken.push(m);
            } else {
                kept.push_back(m);
            }
        }
        self.network.in_flight = kept;
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
            None => Ok((0..self.cores.len()).collect()),
        }
    }

    fn client_id(&mut self, name: &str) -> NodeId {
        let clients = &mut self.network.clients;
        let k = match clients.iter().position(|c| c == name) {
            Some(k) => k,
            None => {
                clients.push(name.to_owned());
                clients.len() - 1
            }
        };
        NodeId(FIRST_CLIENT_ID + k as u16)
    }

    fn parse_timer(&self, i: usize, name: &str) -> Result<Timer, String> {
        let peers = self.cores.node(i).peers();
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
        "joining" => c.joining = switch()?,
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
