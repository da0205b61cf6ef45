//! Carrying out what the core asks for: messages and replies encoded straight into the
//! send batch, timers armed on the wheel; and firing the timers that are due.

use super::{Observed, PeerRoute, Replica, TIMERS_PER_TURN_MAX};
use crate::codec::{Body, DATAGRAM_BYTES_MAX, Datagram, encode, encode_raft};
use crate::debug_log;
use crate::event_loop::clock::Clock;
use raft::NodeId;
use raft::time::Time;
use raft::{Effect, EntrySpan, Message, OutgoingMessage, Reply, ReplyKind};

impl<C: Clock> Replica<C> {
    /// Fires every due timer, carrying out effects after each, then flushes the core.
    /// Each timer is handed to the core with a fresh reading of the clock; returns the
    /// last one.
    pub(super) fn fire_timers(&mut self) -> Time {
        let mut fired = 0;
        let mut now = self.clock.now();
        while fired < TIMERS_PER_TURN_MAX {
            let Some(timer) = self.wheel.pop_expired(now) else {
                break;
            };
            fired += 1;
            self.stats.timers_fired += 1;
            if let Some(handle) = self.timer_handles.get_mut(timer.slot()) {
                *handle = None;
            }
            let before = self.log.is_enabled().then(|| Observed::of(&self.node));
            self.node.handle_timer(now, timer);
            if let Some(before) = before {
                self.note_changes(now, before);
            }
            self.carry_out_effects(now);
            now = self.clock.now();
        }
        if fired > 0 {
            self.node.flush(now);
            self.carry_out_effects(now);
        }
        now
    }

    /// Takes the core's outbox and carries out each effect in order.
    pub(super) fn carry_out_effects(&mut self, now: Time) {
        debug_assert!(self.effects.is_empty());
        // A member added in this turn is sent to in this turn: its route first.
        let seen = (
            self.node.membership_index(),
            self.node.membership().members().len(),
        );
        if self.membership_seen != Some(seen) {
            self.membership_seen = Some(seen);
            self.net.route.learn(self.node.membership());
        }
        self.node.take_effects(&mut self.effects);
        let mut effects = std::mem::take(&mut self.effects);
        for effect in effects.drain(..) {
            match effect {
                Effect::Send { to, message } => match self.durable.as_mut() {
                    // Anything but an append or a snapshot chunk (whose pairs are
                    // committed, so held by a majority) waits for this turn's sync
                    // (`durable`).
                    Some(durable)
                        if !matches!(
                            message,
                            Message::AppendEntries(_) | Message::InstallSnapshot(_)
                        ) =>
                    {
                        durable.held.push((to, message));
                    }
                    Some(durable) => {
                        if let Message::AppendEntries(m) = &message {
                            durable.appends_sent |= m.entries.count > 0;
                        }
                        self.send_to_peer(now, to, message)
                    }
                    None => self.send_to_peer(now, to, message),
                },
                effect => self.carry_out_local(now, effect),
            }
        }
        self.effects = effects;
    }

    /// Encodes a message to a peer into the send batch.
    pub(super) fn send_to_peer(&mut self, now: Time, to: NodeId, message: OutgoingMessage) {
        let Replica {
            id,
            node,
            net,
            log,
            stats,
            stderr,
            ..
        } = self;
        let id = *id;
        // Read at send time: the leader field is our knowledge now.
        let leader = node.leader();
        // Read in place from the log: nothing is copied per entry.
        let entries = match message {
            Message::AppendEntries(m) => node.log_entries(m.entries),
            Message::InstallSnapshot(m) => match node.snapshot_pairs(m.last_index, m.pairs) {
                Some(pairs) => pairs,
                // Cut from a snapshot since replaced: dropped, as if lost.
                None => return,
            },
            _ => node.log_entries(EntrySpan::EMPTY),
        };
        let message = message.with_entries(entries);
        let buf = net.next_buffer(now, stats, log, stderr, id);
        encode_raft(buf, id, to, leader, &message);
        debug_assert!(
            buf.len() <= DATAGRAM_BYTES_MAX,
            "the core capped this append at {DATAGRAM_BYTES_MAX} bytes, not {}",
            buf.len()
        );
        net.queue(to);
    }

    /// A reply or a timer change.
    fn carry_out_local(&mut self, now: Time, effect: Effect) {
        let Replica {
            id,
            node,
            net,
            wheel,
            timer_handles,
            log,
            stats,
            stderr,
            port,
            ..
        } = self;
        let id = *id;
        match effect {
            Effect::Send { .. } => unreachable!("sends are carried out by the caller"),
            Effect::Reply(reply) if port.is_some() => {
                if let Some(port) = port.as_mut() {
                    port.reply(reply, node);
                }
            }
            Effect::Reply(Reply { client, mid, kind }) => {
                let PeerRoute::Simulator(simulator) = net.route else {
                    // Cluster mode has a port: no reply is owed over UDP.
                    return;
                };
                let mid = mid.as_str();
                let body = match &kind {
                    ReplyKind::Ok { value } => Body::Ok {
                        mid,
                        value: value.as_ref().map(|v| v.as_str()),
                    },
                    // The classic protocol has no word for an unknown outcome: its clients
                    // retry a redirected put, and its checker allows for that.
                    ReplyKind::Redirect | ReplyKind::OutcomeUnknown => Body::Redirect { mid },
                    ReplyKind::Fail => Body::Fail { mid },
                };
                let datagram = Datagram {
                    src: id,
                    dst: client,
                    leader: node.leader(),
                    body,
                };
                encode(net.next_buffer(now, stats, log, stderr, id), &datagram);
                net.queue_reply(simulator);
            }
            Effect::SetTimer { timer, at } => {
                let slot = timer.slot();
                if slot >= timer_handles.len() {
                    timer_handles.resize(slot + 1, None);
                }
                if let Some(old) = timer_handles[slot].take() {
                    wheel.cancel(old);
                }
                timer_handles[slot] = Some(wheel.insert(at, timer));
            }
            Effect::CancelTimer { timer } => {
                if let Some(old) = timer_handles.get_mut(timer.slot()).and_then(Option::take) {
                    wheel.cancel(old);
                }
            }
        }
    }

    /// Notes role, term, leader and commit-index changes in the debug log.
    pub(super) fn note_changes(&mut self, now: Time, before: Observed) {
        let after = Observed::of(&self.node);
        if after == before {
            return;
        }
        if (after.role, after.term, after.leader) != (before.role, before.term, before.leader) {
            debug_log!(
                self.log,
                now,
                "{} term {} leader {} (was {} term {} leader {})",
                after.role,
                after.term.0,
                after.leader,
                before.role,
                before.term.0,
                before.leader
            );
        }
        if after.commit_index != before.commit_index {
            debug_log!(
                self.log,
                now,
                "commit index {} -> {}",
                before.commit_index.0,
                after.commit_index.0
            );
        }
    }
}
