//! Clients for the in-process cluster: they read and write a few shared keys, follow
//! redirects like the classic simulator's clients (a new MID per attempt), and record the
//! history a linearizability check needs.

use crate::{ClientOp, Cluster, ReplyRecord};
use raft::NodeId;
use raft::ReplyKind;
use raft::time::{Span, Time};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub clients: usize,
    pub keys: usize,
    /// Logical operations issued, spread evenly over `[start, end)`.
    pub operations: usize,
    pub start: Time,
    pub end: Time,
    pub get_fraction: f64,
    /// An operation bounced this many times means replicas send clients in circles.
    pub attempts_max: u32,
    /// Each put's value carries up to this many more bytes (0: none), so that a turn's
    /// write can span pages of the disk and tear between them.
    pub value_padding_max: usize,
}

/// What one attempt (one MID) did, as a client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A put acknowledged, or a get answered with this value.
    Ok(Option<String>),
    /// Its leader lost leadership before answering, or its replica crashed, or it timed
    /// out: a put may or may not have happened.
    Unknown,
    /// Redirected or failed: the core answers so only for a request it never proposed,
    /// so a put did not happen. The checker holds the core to that: a value read that
    /// only such a put wrote is a violation.
    NotDone,
}

/// One attempt in the history.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub client: NodeId,
    /// Attempts of the same logical operation share this number.
    pub logical: u64,
    pub op: ClientOp,
    pub invoked: Time,
    /// When the answer came; `None` for `Outcome::Unknown`.
    pub responded: Option<Time>,
    pub outcome: Outcome,
}

struct InFlight {
    logical: u64,
    op: ClientOp,
    mid: String,
    to: usize,
    /// The target's incarnation when sent: a request to a replica that has restarted
    /// since was lost with the process that received it.
    incarnation: u64,
    sent_at: Time,
    attempts: u32,
}

struct Client {
    id: NodeId,
    leader_guess: Option<usize>,
    current: Option<InFlight>,
    backlog: VecDeque<(u64, ClientOp)>,
}

#[derive(Clone, Debug, Default)]
pub struct WorkloadStats {
    pub issued: u64,
    pub completed: u64,
    pub redirects: u64,
    pub fails: u64,
    pub lost_to_crash: u64,
    pub latency_total: Span,
}

pub struct Workload {
    config: WorkloadConfig,
    rng: SmallRng,
    clients: Vec<Client>,
    issued: usize,
    mid_counter: u64,
    pub history: Vec<Attempt>,
    pub stats: WorkloadStats,
    replies: Vec<ReplyRecord>,
}

impl Workload {
    pub fn new(config: WorkloadConfig, seed: u64, first_client_id: u16) -> Workload {
        let clients = (0..config.clients)
            .map(|c| Client {
                id: NodeId(first_client_id + c as u16),
                leader_guess: None,
                current: None,
                backlog: VecDeque::new(),
            })
            .collect();
        Workload {
            config,
            rng: SmallRng::seed_from_u64(seed),
            clients,
            issued: 0,
            mid_counter: 0,
            history: Vec::new(),
            stats: WorkloadStats::default(),
            replies: Vec::new(),
        }
    }

    /// Every operation issued has completed.
    pub fn is_done(&self) -> bool {
        self.issued == self.config.operations
            && self
                .clients
                .iter()
                .all(|c| c.current.is_none() && c.backlog.is_empty())
    }

    /// Operations not yet completed.
    pub fn unfinished(&self) -> usize {
        self.config.operations - self.stats.completed as usize
    }

    /// Reacts to the replies of the last run, retries what was lost, and issues what is
    /// due by the cluster's current time.
    pub fn drive(&mut self, cluster: &mut Cluster) -> Result<(), String> {
        let now = cluster.now();
        cluster.take_replies(&mut self.replies);
        let replies = std::mem::take(&mut self.replies);
        for record in &replies {
            self.on_reply(cluster, record)?;
        }
        self.replies = replies;
        self.replies.clear();

        // An attempt whose replica crashed (or restarted since) will never be answered:
        // give up on it, and try elsewhere once some replica is up.
        let any_up = (0..cluster.len()).any(|i| !cluster.is_crashed(i));
        for c in 0..self.clients.len() {
            let lost = self.clients[c].current.as_ref().is_some_and(|f| {
                cluster.is_crashed(f.to) || cluster.incarnation(f.to) != f.incarnation
            });
            if lost && any_up {
                self.stats.lost_to_crash += 1;
                self.clients[c].leader_guess = None;
                self.retry(cluster, c, now, Outcome::Unknown)?;
            }
        }

        // New operations, evenly spaced over the window.
        let span = self.config.end.since(self.config.start).as_micros();
        while self.issued < self.config.operations {
            let due = self.config.start
                + Span(span * self.issued as u64 / self.config.operations.max(1) as u64);
            if due > now {
                break;
            }
            let logical = self.issued as u64;
            self.issued += 1;
            self.stats.issued += 1;
            let c = self.rng.random_range(0..self.clients.len());
            let key = format!("key-{}", self.rng.random_range(0..self.config.keys));
            let op = if self.rng.random_bool(self.config.get_fraction) {
                ClientOp::Get { key }
            } else {
                let mut value = format!("{}-{}", self.clients[c].id, logical);
                if self.config.value_padding_max > 0 {
                    let padding = self.rng.random_range(0..=self.config.value_padding_max);
                    value.extend(std::iter::repeat_n('v', padding));
                }
                ClientOp::Put { key, value }
            };
            self.clients[c].backlog.push_back((logical, op));
        }
        for c in 0..self.clients.len() {
            if self.clients[c].current.is_none()
                && let Some((logical, op)) = self.clients[c].backlog.pop_front()
            {
                self.send(cluster, c, logical, op, now, 1);
            }
        }
        Ok(())
    }

    fn on_reply(&mut self, cluster: &mut Cluster, record: &ReplyRecord) -> Result<(), String> {
        let Some(c) = self
            .clients
            .iter()
            .position(|cl| cl.id == record.reply.client)
        else {
            return Err(format!("reply to unknown client {}", record.reply.client));
        };
        let matches = self.clients[c]
            .current
            .as_ref()
            .is_some_and(|f| f.mid == record.reply.mid.as_str());
        if !matches {
            return Err(format!(
                "client {} got a reply for MID {} it is not waiting for",
                record.reply.client, record.reply.mid
            ));
        }
        let leader = cluster.index_of(record.leader);
        self.clients[c].leader_guess = leader;
        match &record.reply.kind {
            ReplyKind::Ok { value } => {
                let flight = self.clients[c].current.take().expect("matched above");
                self.stats.completed += 1;
                self.stats.latency_total =
                    self.stats.latency_total + record.at.since(flight.sent_at);
                self.history.push(Attempt {
                    client: self.clients[c].id,
                    logical: flight.logical,
                    op: flight.op,
                    invoked: flight.sent_at,
                    responded: Some(record.at),
                    outcome: Outcome::Ok(value.as_ref().map(|v| v.as_str().to_owned())),
                });
                if let Some((logical, op)) = self.clients[c].backlog.pop_front() {
                    self.send(cluster, c, logical, op, record.at, 1);
                }
            }
            ReplyKind::Redirect => {
                self.stats.redirects += 1;
                self.retry(cluster, c, record.at, Outcome::NotDone)?;
            }
            ReplyKind::OutcomeUnknown => {
                self.stats.redirects += 1;
                self.retry(cluster, c, record.at, Outcome::Unknown)?;
            }
            ReplyKind::Fail => {
                self.stats.fails += 1;
                self.retry(cluster, c, record.at, Outcome::NotDone)?;
            }
        }
        Ok(())
    }

    /// The current attempt of client `c` ended without an answer: record it as possibly
    /// done and send the same operation again under a new MID.
    fn retry(
        &mut self,
        cluster: &mut Cluster,
        c: usize,
        now: Time,
        outcome: Outcome,
    ) -> Result<(), String> {
        let flight = self.clients[c]
            .current
            .take()
            .expect("an attempt in flight");
        if flight.attempts >= self.config.attempts_max {
            return Err(format!(
                "client {} bounced {} times for one operation ({:?})",
                self.clients[c].id, flight.attempts, flight.op
            ));
        }
        self.history.push(Attempt {
            client: self.clients[c].id,
            logical: flight.logical,
            op: flight.op.clone(),
            invoked: flight.sent_at,
            responded: None,
            outcome,
        });
        self.send(
            cluster,
            c,
            flight.logical,
            flight.op,
            now,
            flight.attempts + 1,
        );
        Ok(())
    }

    fn send(
        &mut self,
        cluster: &mut Cluster,
        c: usize,
        logical: u64,
        op: ClientOp,
        now: Time,
        attempts: u32,
    ) {
        // Live members, as a client would learn them from the cluster (Redis clients ask
        // CLUSTER NODES): of the leader's membership if there is a leader, else all.
        let members = cluster.members_hint();
        let mut live: Vec<usize> = (0..cluster.len())
            .filter(|&i| !cluster.is_crashed(i) && members.as_ref().is_none_or(|m| m.contains(&i)))
            .collect();
        if live.is_empty() {
            // Every replica is down (restarting): the request is lost, and retried.
            live = (0..cluster.len()).collect();
        }
        let to = match self.clients[c].leader_guess {
            Some(i) if !cluster.is_crashed(i) => i,
            _ => live[self.rng.random_range(0..live.len())],
        };
        self.mid_counter += 1;
        let mid = format!("M{:08X}{:06X}", self.mid_counter, c);
        cluster.submit(to, self.clients[c].id, mid.clone(), op.clone());
        self.clients[c].current = Some(InFlight {
            logical,
            op,
            mid,
            to,
            incarnation: cluster.incarnation(to),
            sent_at: now,
            attempts,
        });
    }
}
