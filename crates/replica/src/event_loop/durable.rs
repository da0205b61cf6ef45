//! The end of a durable replica's turn: what the core changed goes to storage in one
//! write and one sync, and only then do the messages that depend on it leave.
//!
//! A leader's appends are sent before the sync, so that its followers write while it
//! does; it counts its own log toward a commit only once the sync returns
//! (`Node::persisted`). Every other message to a peer (votes, vote requests, append
//! answers, anything carrying a term just adopted) is held here until the sync, as §5.1
//! asks. If the write or the sync fails, the held messages are dropped and the replica
//! exits with the reason: after a failed `fdatasync` the page cache may have dropped what
//! it could not write, so retrying proves nothing, and a leader that stayed up would keep
//! its followers from electing anyone while it could never count its own log again.

use super::Replica;
use super::clock::Clock;
use crate::debug_log;
use raft::NodeId;
use raft::time::Time;
use raft::{LogIndex, OutgoingMessage};
use storage::{Storage, save_changes};

pub(super) struct Durable {
    pub(super) storage: Storage,
    /// Messages to peers waiting for this turn's sync.
    pub(super) held: Vec<(NodeId, OutgoingMessage)>,
    /// Why storage failed, if it did: the loop stops, and the replica exits with it.
    pub(super) failed: Option<std::io::Error>,
}

impl Durable {
    pub(super) fn new(storage: Storage) -> Durable {
        Durable {
            storage,
            held: Vec::with_capacity(64),
            failed: None,
        }
    }
}

impl<C: Clock> Replica<C> {
    /// Persists what the core changed, then releases what waited for it. Call after the
    /// turn's inputs and timers, before the last flush.
    pub(super) fn persist(&mut self, now: Time) {
        let Some(durable) = self.durable.as_mut() else {
            return;
        };
        let changes = self.node.take_unpersisted();
        let last: LogIndex = self.node.log().last_index();
        save_changes(&mut durable.storage, &self.node, changes);
        if durable.storage.has_pending() {
            // The appends already queued leave now: the followers write while we do.
            self.send_queued(now);
        }
        let Some(durable) = self.durable.as_mut() else {
            return;
        };
        match durable.storage.sync() {
            Ok(()) => {
                let held = std::mem::take(&mut durable.held);
                self.node.persisted(now, last);
                for (to, message) in &held {
                    self.send_to_peer(now, *to, *message);
                }
                // What the sync settled: commits, and the replies they answer.
                self.carry_out_effects(now);
                if let Some(durable) = self.durable.as_mut() {
                    let mut held = held;
                    held.clear();
                    durable.held = held;
                }
            }
            Err(error) => {
                self.stats.unpersisted_sends += durable.held.len() as u64;
                durable.held.clear();
                debug_log!(self.log, now, "storage failed, exiting: {error}");
                durable.failed = Some(std::io::Error::new(
                    error.kind(),
                    format!("storage failed, exiting without acknowledging more: {error}"),
                ));
                self.stop = true;
            }
        }
    }
}
