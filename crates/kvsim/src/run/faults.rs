//! Faults: what happens to replicas and to the traffic between them.
//!
//! The scenario's events as they fire (kills, pauses, partitions, one-way cuts; restarts
//! are `restarts`'), the
//! network's verdict on each replica-to-replica datagram as it is routed (partitions, drops,
//! duplicates, delays: decided by `network::verdicts`, applied here), and replicas that die on their
//! own. The choices made here (which replica, which majority) draw on the faults' own
//! random stream.

use rand::Rng;

use super::Sim;
use super::timers::Action;
use crate::measure::timeline::FaultKind;
use crate::network::verdicts::Fate;
use crate::scenario::config::EventKind;
use raft::NodeId;

impl Sim<'_> {
    /// Carries out one of the scenario's events as it falls due.
    pub(super) fn fault(&mut self, kind: EventKind) {
        match kind {
            EventKind::KillLeader => {
                if let Some(l) = self.leader {
                    self.kill(l);
                    self.set_leader(None);
                    self.clients.forget_all();
                }
            }
            EventKind::KillNonLeader => {
                if self.living_list.len() > 1 {
                    if let Some(r) = self.random_non_leader() {
                        self.kill(r);
                    }
                } else {
                    self.warnings.say(&format!(
                        "too few living replicas to kill another ({})",
                        self.living_list.len()
                    ));
                }
            }
            EventKind::PartEasy | EventKind::PartHard => {
                let mut size = self.n / 2 + 1;
                let mut rest: Vec<usize> = (0..self.n).collect();
                let mut majority = Vec::new();
                match (kind, self.leader) {
                    (EventKind::PartEasy, Some(l)) => {
                        majority.push(l);
                        rest.retain(|&r| r != l);
                        size -= 1;
                    }
                    _ => {
                        self.set_leader(None);
                        self.clients.forget_all();
                    }
                }
                for _ in 0..size {
                    let k = self.faults_rng.random_range(0..rest.len());
                    majority.push(rest.remove(k));
                }
                self.network.partition(&majority);
                majority.sort_unstable();
                let now = self.now_us();
                self.timeline.partition(now, &majority);
            }
            EventKind::PartEnd => {
                self.network.heal();
                let now = self.now_us();
                self.timeline.heal(now);
            }
            EventKind::PauseLeader { duration_s } => match self.leader {
                Some(l) if self.living[l] => self.pause(l, duration_s),
                _ => self
                    .warnings
                    .say("pause_leader: no known living leader; nothing paused"),
            },
            EventKind::PauseNonLeader { duration_s } => match self.random_non_leader() {
                Some(r) => self.pause(r, duration_s),
                None => self
                    .warnings
                    .say("pause_non_leader: no living non-leader; nothing paused"),
            },
            EventKind::PartOneWay(direction) => match self.leader {
                Some(l) => {
                    self.network.one_way(l, direction);
                    let now = self.now_us();
                    self.timeline.one_way(now, l, direction);
                }
                None => self
                    .warnings
                    .say("part_oneway: no known leader; no partition"),
            },
            EventKind::Restart { who, duration_s } => self.restart(who, duration_s),
        }
    }

    fn kill(&mut self, r: usize) {
        if self.living[r] {
            self.stats.killed += 1;
            self.killed[r] = true;
            self.cut_off(r);
            self.replicas[r].kill();
            let now = self.now_us();
            self.timeline.start(now, FaultKind::Kill { replica: r });
        }
    }

    /// Stops routing to and from living replica `r`, about to be killed.
    pub(super) fn cut_off(&mut self, r: usize) {
        self.mark_not_living(r);
        // As the classic simulator does, close the replica's socket before signalling
        // it: nothing it sends while dying, nor anything still queued from it, is
        // routed. (A leader killed mid-commit must not finish replicating.)
        let _ = self.poll.registry().deregister(&mut self.sockets[r]);
        self.socket_closed[r] = true;
        // Nothing queued for it is sent either; what it sent before the kill was
        // routed before the kill and leaves now, as it had with one send each.
        self.outbox.discard(r);
        self.flush_all();
    }

    pub(super) fn random_non_leader(&mut self) -> Option<usize> {
        let candidates: Vec<usize> = self
            .living_list
            .iter()
            .copied()
            .filter(|&r| Some(r) != self.leader)
            .collect();
        (!candidates.is_empty())
            .then(|| candidates[self.faults_rng.random_range(0..candidates.len())])
    }

    fn pause(&mut self, r: usize, duration_s: f64) {
        self.replicas[r].pause();
        let now = self.now_us();
        self.timeline.start(now, FaultKind::Pause { replica: r });
        let at = now + (duration_s * 1e6) as u64;
        self.timers.schedule(at, Action::Resume(r));
    }

    /// Replica-to-replica traffic: subject to partitions, drops, duplication and delay.
    pub(super) fn deliver_replica_traffic(&mut self, src: Option<usize>, dst: usize, raw: &[u8]) {
        match self.network.fate(src, dst) {
            Fate::Drop => self.stats.total_drops += 1,
            Fate::Deliver { delay_us, twice } => {
                if delay_us == 0 {
                    self.send(dst, raw);
                } else {
                    self.extra.delayed_datagrams += 1;
                    let at = self.now_us() + delay_us;
                    self.timers.schedule(
                        at,
                        Action::Deliver {
                            dst,
                            bytes: raw.to_vec(),
                        },
                    );
                }
                if twice {
                    self.extra.duplicated_datagrams += 1;
                    let at = self.now_us() + self.network.duplicate_delay_us();
                    self.timers.schedule(
                        at,
                        Action::Deliver {
                            dst,
                            bytes: raw.to_vec(),
                        },
                    );
                }
            }
        }
    }

    pub(super) fn check_exits(&mut self) {
        for r in 0..self.n {
            if self.killed[r] || self.replicas[r].ended() {
                continue;
            }
            if let Some(status) = self.replicas[r].poll_exit() {
                let id = NodeId(r as u16);
                self.warnings
                    .say(&format!("Replica {id} exited on its own ({status})"));
                self.extra.exited_on_own.push(format!("{id}: {status}"));
                let now = self.now_us();
                self.timeline.start(now, FaultKind::Died { replica: r });
                if self.living[r] {
                    self.mark_not_living(r);
                }
                // A restarted process that ends before its hello is not coming back.
                self.restarting[r] = false;
            }
        }
    }

    pub(super) fn mark_not_living(&mut self, r: usize) {
        self.living[r] = false;
        self.living_list.retain(|&x| x != r);
    }
}
