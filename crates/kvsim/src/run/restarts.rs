//! Restarts (durable scenarios only): a replica killed with SIGKILL, as a crash would, and
//! started again `duration` seconds later with the same ID, port, peers and data dir.
//!
//! While it is down it is treated as a killed replica is: its socket is not read, what was
//! queued for it is dropped, nothing is sent to it, and clients go elsewhere. Requests it
//! had not answered are lost with its process. It is up again once its new process says
//! hello: from then on it is living, and what it sends is routed as before. A restarted
//! replica counts neither as killed nor as died; the restarts are listed apart.

use mio::{Interest, Token};
use std::io;

use super::Sim;
use super::timers::Action;
use crate::measure::stats::Restart;
use crate::measure::timeline::FaultKind;
use crate::scenario::config::Restarted;
use raft::NodeId;

impl Sim<'_> {
    /// Carries out a restart event: takes down the replicas it names, each to be started
    /// again `duration_s` later.
    pub(super) fn restart(&mut self, who: Restarted, duration_s: f64) {
        let down: Vec<usize> = match who {
            Restarted::Leader => self
                .leader
                .filter(|&l| self.living[l])
                .into_iter()
                .collect(),
            Restarted::NonLeader => self.random_non_leader().into_iter().collect(),
            Restarted::All => self.living_list.clone(),
        };
        if down.is_empty() {
            self.warnings.say(&format!(
                "{}: no living replica to restart; nothing done",
                who.name()
            ));
            return;
        }
        if self.leader.is_some_and(|l| down.contains(&l)) {
            // As for a killed leader: nobody leads until the others elect one.
            self.set_leader(None);
            self.clients.forget_all();
        }
        let back_at_us = self.now_us() + (duration_s * 1e6) as u64;
        for r in down {
            self.take_down(r);
            self.timers.schedule(back_at_us, Action::StartAgain(r));
        }
    }

    fn take_down(&mut self, r: usize) {
        self.restarting[r] = true;
        self.cut_off(r);
        self.replicas[r].crash();
        // Its new process speaks from another port: nothing goes to it before its hello.
        self.remote[r] = None;
        let now = self.now_us();
        self.timeline.down(now, r);
        self.extra.restarts.push(Restart {
            replica: NodeId(r as u16).to_string(),
            killed_s: now as f64 / 1e6,
            started_s: None,
            back_s: None,
        });
    }

    /// Starts replica `r` again, on its data dir.
    pub(super) fn start_again(&mut self, r: usize) {
        // What the old process sent before it was killed and nobody read is not the new
        // process's to send: it is dropped, as a kill drops it.
        self.discard_unread(r);
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut self.sockets[r], Token(r), Interest::READABLE)
        {
            self.warnings.say(&format!(
                "cannot listen to replica {} again: {e}",
                NodeId(r as u16)
            ));
        }
        self.socket_closed[r] = false;
        let now = self.now_us();
        match self.launcher.spawn(r, true) {
            Ok(replica) => self.replicas[r] = replica,
            Err(e) => {
                // It stays down, and counts as died: it did not come back.
                self.restarting[r] = false;
                self.timeline.start(now, FaultKind::Died { replica: r });
                self.warnings
                    .say(&format!("cannot restart replica {}: {e}", NodeId(r as u16)));
                self.extra
                    .exited_on_own
                    .push(format!("{}: could not be restarted: {e}", NodeId(r as u16)));
                return;
            }
        }
        if let Some(rec) = self.last_restart_of(r) {
            rec.started_s = Some(now as f64 / 1e6);
        }
    }

    /// Replica `r` said hello: if it is back from a restart, it is living again.
    pub(super) fn hello_again(&mut self, r: usize) {
        if !self.restarting[r] {
            return;
        }
        self.restarting[r] = false;
        self.living[r] = true;
        // Kept in index order, as at the start, so that random choices among the living
        // replay the same for the same seed.
        let at = self.living_list.partition_point(|&x| x < r);
        self.living_list.insert(at, r);
        let now = self.now_us();
        self.timeline.back(now, r);
        if let Some(rec) = self.last_restart_of(r) {
            rec.back_s = Some(now as f64 / 1e6);
        }
    }

    fn last_restart_of(&mut self, r: usize) -> Option<&mut Restart> {
        let id = NodeId(r as u16).to_string();
        self.extra
            .restarts
            .iter_mut()
            .rev()
            .find(|x| x.replica == id)
    }

    /// Reads and drops whatever waits on replica `r`'s socket.
    fn discard_unread(&mut self, r: usize) {
        // Bounded: a socket that kept failing must not hold up the run.
        const READS_MAX: usize = 1 << 16;
        let mut buf = vec![0u8; 65_536];
        for _ in 0..READS_MAX {
            match self.sockets[r].recv_from(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // A datagram, or an error reported once (an ICMP one): more may follow.
                _ => {}
            }
        }
    }
}
