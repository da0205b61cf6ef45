//! Changing who is in the cluster, one server at a time (thesis §4.1, §4.2).
//!
//! A membership entry takes effect on each replica as soon as it is in its log (and
//! stops when a conflicting leader cuts it). Changes go one server at a time, so any
//! majority of the old voters and any of the new share a voter, and one at a time: a
//! leader appends a change only once the last is committed, and only once an entry of
//! its own term is (the rule Ongaro added in 2015 after the single-server algorithm was
//! found to lose a committed change across two leaders without it).
//!
//! A server joins as a learner: sent the log (or a snapshot) but counted in no quorum.
//! The leader promotes a learner to voter itself once it has caught up (its log holds
//! everything committed) and answered lately, so the promotion cannot leave a quorum
//! waiting on a replica that lags. A change whose new voters could not make a quorum
//! with the ones heard from lately is refused, not appended: it would stop the cluster
//! until they came back.
//!
//! A replica that is not a voter of the membership it holds does not stand for election:
//! a learner waits to be promoted, and a removed replica stays quiet once it knows its
//! removal committed (if it never learns, the members that hold the entry drop what it
//! sends: it is no peer of theirs). Until then a removed replica still stands, counting
//! only the new voters' votes (thesis §4.2.2): it may hold the longest log, and the
//! replicas that lack its removal still need its vote. A leader that removes itself
//! leads until the removal commits, counting itself in no quorum, then steps down and
//! hands over to the voter furthest along (`TimeoutNow`).

use crate::NodeId;
use crate::effect::{ReplyKind, Timer};
use crate::inline_str::InlineStr;
use crate::membership::{BadMembership, Member, Membership};
use crate::message::{AppendEntries, CommandRef, EntryRef, LogIndex, Message, TimeoutNow};
use crate::node::{Node, Role};
use crate::progress::Progress;
use crate::time::Time;
use std::fmt;

/// One step of a membership change, as an operator asks for it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MembershipChange {
    /// A new server, as a learner; the leader promotes it once it has caught up.
    AddLearner { id: NodeId, address: Box<str> },
    /// A learner made a voter (the leader does this itself; an operator may too).
    Promote { id: NodeId },
    /// A voter or learner taken out, the leader itself included.
    Remove { id: NodeId },
}

/// Why a change was not appended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MembershipRefused {
    NotLeader,
    /// The last change is not committed yet, or this leader's term has not committed an
    /// entry yet: try again shortly.
    ChangeInProgress,
    /// A leadership transfer is under way.
    TransferInProgress,
    AlreadyMember,
    /// Removed before: a node that comes back takes a new id (`membership`).
    Retired,
    NotAMember,
    NotALearner,
    /// The new voters that answered lately are fewer than its quorum.
    WouldLoseQuorum,
    Invalid(BadMembership),
}

impl fmt::Display for MembershipRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MembershipRefused::NotLeader => f.write_str("not the leader"),
            MembershipRefused::ChangeInProgress => f.write_str(
                "a membership change is in progress (or this leader's first entry is not committed yet); try again",
            ),
            MembershipRefused::TransferInProgress => {
                f.write_str("a leadership transfer is in progress; try again")
            }
            MembershipRefused::AlreadyMember => f.write_str("already a member"),
            MembershipRefused::Retired => f.write_str(
                "this id was removed from the cluster and is never taken again: start the node on an empty data dir under a new id",
            ),
            MembershipRefused::NotAMember => f.write_str("not a member"),
            MembershipRefused::NotALearner => f.write_str("not a learner"),
            MembershipRefused::WouldLoseQuorum => f.write_str(
                "the new membership would have no quorum of voters heard from lately; nothing was changed",
            ),
            MembershipRefused::Invalid(bad) => write!(f, "invalid membership: {bad}"),
        }
    }
}

impl Node {
    /// The membership in effect on this replica.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// The index of the entry that set the membership in effect (0 for the configured
    /// one; the snapshot's index for one from a snapshot).
    pub fn membership_index(&self) -> LogIndex {
        self.membership_index
    }

    /// On a leader: each follower's id, whether it votes, and how far its log is known
    /// to match this leader's. Empty on any other replica.
    pub fn follower_progress(&self) -> Vec<(NodeId, bool, LogIndex)> {
        let Some(leader) = self.leader_state.as_ref() else {
            return Vec::new();
        };
        self.peers
            .iter()
            .zip(&leader.progress)
            .map(|(&id, p)| (id, p.voter, p.match_index))
            .collect()
    }

    /// Appends `change` if this leader may: answered `Ok` through `client`'s request
    /// `mid` once committed, `OutcomeUnknown` if leadership is lost first. A refusal
    /// appends nothing and produces no reply.
    pub fn change_membership(
        &mut self,
        now: Time,
        change: MembershipChange,
        client: NodeId,
        mid: &str,
    ) -> Result<(), MembershipRefused> {
        let next = self.next_membership(now, &change)?;
        self.append_membership(now, next, Some((client, InlineStr::from(mid))));
        Ok(())
    }

    /// The membership `change` leads to, if this leader may append it now.
    fn next_membership(
        &self,
        now: Time,
        change: &MembershipChange,
    ) -> Result<Membership, MembershipRefused> {
        let Some(leader) = self
            .leader_state
            .as_ref()
            .filter(|_| self.role == Role::Leader)
        else {
            return Err(MembershipRefused::NotLeader);
        };
        if self.membership_index > self.commit_index || self.commit_index < leader.term_start_index
        {
            return Err(MembershipRefused::ChangeInProgress);
        }
        if self.transfer.is_some() {
            return Err(MembershipRefused::TransferInProgress);
        }
        let current = &self.membership;
        let next = match change {
            MembershipChange::AddLearner { id, address } => {
                if current.contains(*id) {
                    return Err(MembershipRefused::AlreadyMember);
                }
                if current.is_retired(*id) {
                    return Err(MembershipRefused::Retired);
                }
                current.with(Member {
                    id: *id,
                    voter: false,
                    address: address.clone(),
                })
            }
            MembershipChange::Promote { id } => {
                let Some(member) = current.member(*id) else {
                    return Err(MembershipRefused::NotAMember);
                };
                if member.voter {
                    return Err(MembershipRefused::NotALearner);
                }
                current.with(Member {
                    voter: true,
                    ..member.clone()
                })
            }
            MembershipChange::Remove { id } => {
                if !current.contains(*id) {
                    return Err(MembershipRefused::NotAMember);
                }
                current.without(*id)
            }
        }
        .map_err(MembershipRefused::Invalid)?;
        if !self.quorum_reachable(now, &next) {
            return Err(MembershipRefused::WouldLoseQuorum);
        }
        Ok(next)
    }

    /// Whether the voters of `next` that this leader heard from within an election
    /// timeout (itself included, if it stays a voter) make a quorum of `next`.
    fn quorum_reachable(&self, now: Time, next: &Membership) -> bool {
        let window = self.config.election_timeout_min;
        let Some(leader) = self.leader_state.as_ref() else {
            return false;
        };
        let heard = self
            .peers
            .iter()
            .zip(&leader.progress)
            .filter(|(id, p)| {
                next.is_voter(**id) && p.acked_sent_at.is_some_and(|t| now < t + window)
            })
            .count();
        let me = usize::from(next.is_voter(self.config.id));
        heard + me >= next.quorum()
    }

    fn append_membership(
        &mut self,
        now: Time,
        next: Membership,
        answer: Option<(NodeId, InlineStr)>,
    ) {
        let text = next.to_text();
        let index = self.log.append(EntryRef {
            term: self.current_term,
            command: CommandRef::Membership(&text),
        });
        if let Some(leader) = self.leader_state.as_mut() {
            leader.record_append(index, now);
            leader.membership_change = Some((index, answer));
        }
        self.set_membership(now, next, index);
    }

    /// After the commit index moved, on a leader: answers the change it committed, steps
    /// down if that change removed it, and promotes a learner that has caught up.
    pub(super) fn membership_after_commit(&mut self, now: Time) {
        let committed = self
            .leader_state
            .as_ref()
            .and_then(|l| l.membership_change.as_ref())
            .is_some_and(|(index, _)| *index <= self.commit_index);
        if committed {
            let (index, answer) = self
                .leader_state
                .as_mut()
                .and_then(|l| l.membership_change.take())
                .expect("seen just above");
            if let Some((client, mid)) = answer {
                self.reply(client, mid, ReplyKind::Ok { value: None });
            }
            self.bid_farewell(now, index);
            if !self.membership.contains(self.config.id) {
                self.hand_over_after_removal(now);
                return;
            }
        }
        self.maybe_promote_learner(now);
    }

    /// The membership entry at `index`, just committed, removed followers: each is sent
    /// what it lacks of the log through that entry (from where its log last matched),
    /// with the commit index, so that it learns it is out (a leader stops replicating to
    /// a follower once the entry removing it is appended, and a removed node that never
    /// learns waits for a leader that will not speak to it again; cluster mode stops a
    /// node once it knows). One datagram each: if it is lost, the follower stays as it
    /// is, harmless.
    fn bid_farewell(&mut self, now: Time, index: LogIndex) {
        let departed = self
            .leader_state
            .as_mut()
            .map(|l| std::mem::take(&mut l.departed))
            .unwrap_or_default();
        for (to, matched) in departed {
            let first = matched.next().max(self.log.snapshot_index().next());
            let Some(previous) = self.log.term_at(first.prev()) else {
                continue;
            };
            let wanted = (index.0 + 1).saturating_sub(first.0);
            let entries = self.batch_from(first, usize::try_from(wanted).unwrap_or(usize::MAX));
            self.send(
                to,
                Message::AppendEntries(AppendEntries {
                    term: self.current_term,
                    prev_log_index: first.prev(),
                    prev_log_term: previous,
                    leader_commit: self.commit_index,
                    sent_at_us: now.as_micros(),
                    ack_requested: false,
                    entries,
                }),
            );
        }
    }

    /// This leader's removal committed: the voter furthest along is told to stand at
    /// once, and this replica, a member no more, steps down and stays quiet.
    fn hand_over_after_removal(&mut self, now: Time) {
        let best = self.leader_state.as_ref().and_then(|l| {
            self.peers
                .iter()
                .zip(&l.progress)
                .filter(|(id, _)| self.membership.is_voter(**id))
                .max_by_key(|(_, p)| p.match_index)
                .map(|(id, _)| *id)
        });
        if let Some(to) = best {
            let term = self.current_term;
            self.send(to, Message::TimeoutNow(TimeoutNow { term }));
        }
        let term = self.current_term;
        self.become_follower(now, term, NodeId::UNKNOWN);
    }

    /// A learner whose log holds everything committed and that answered within an
    /// election timeout is made a voter, one at a time.
    pub(super) fn maybe_promote_learner(&mut self, now: Time) {
        let Some(leader) = self.leader_state.as_ref() else {
            return;
        };
        let window = self.config.election_timeout_min;
        let ready = self.peers.iter().zip(&leader.progress).find(|(id, p)| {
            !self.membership.is_voter(**id)
                && self.membership.contains(**id)
                && p.match_index >= self.commit_index
                && p.acked_sent_at.is_some_and(|t| now < t + window)
        });
        let Some((&id, _)) = ready else {
            return;
        };
        if let Ok(next) = self.next_membership(now, &MembershipChange::Promote { id }) {
            self.append_membership(now, next, None);
        }
    }

    /// Makes `membership`, set by the entry at `index`, the one in effect: the peers
    /// follow it, and a leader keeps the progress of the followers that stay, starts
    /// that of new ones from its log's end, and re-arms every follower's timer (their
    /// positions moved).
    pub(super) fn set_membership(&mut self, now: Time, membership: Membership, index: LogIndex) {
        let old_peers = std::mem::replace(&mut self.peers, membership.peers_of(self.config.id));
        self.membership = membership;
        self.membership_index = index;
        let next_index = self.log.last_index().next();
        let Some(leader) = self.leader_state.as_mut() else {
            return;
        };
        let mut old: Vec<(NodeId, Progress)> = old_peers
            .iter()
            .copied()
            .zip(leader.progress.drain(..))
            .collect();
        leader.departed = old
            .iter()
            .filter(|(id, _)| !self.peers.contains(id))
            .map(|(id, p)| (*id, p.match_index))
            .collect();
        for &id in &self.peers {
            let mut p = match old.iter().position(|(o, _)| *o == id) {
                Some(k) => old.swap_remove(k).1,
                None => Progress::new(next_index, now),
            };
            p.voter = self.membership.is_voter(id);
            p.timer_armed_at = None;
            leader.progress.push(p);
        }
        leader.leader_votes = self.membership.is_voter(self.config.id);
        for i in 0..old_peers.len() {
            self.outbox.push(crate::effect::Effect::CancelTimer {
                timer: Timer::Peer(i),
            });
        }
        for i in 0..self.peers.len() {
            self.arm_peer_timer(i);
        }
    }

    /// Reads the membership in effect from the log again after entries were appended or
    /// cut by a leader (or a snapshot installed): the last membership entry, else the
    /// snapshot's, else the configured one.
    pub(super) fn reload_membership(&mut self, now: Time) {
        let (membership, index) = self.membership_as_of(self.log.last_index());
        if membership != self.membership || index != self.membership_index {
            self.set_membership(now, membership, index);
        }
    }

    /// The membership in effect at `index` (at least the snapshot index), and the index
    /// of the entry that set it.
    fn membership_as_of(&self, index: LogIndex) -> (Membership, LogIndex) {
        let mut i = index.min(self.log.last_index());
        while i > self.log.snapshot_index() {
            if let Some(EntryRef {
                command: CommandRef::Membership(text),
                ..
            }) = self.log.get(i)
                && let Ok(m) = Membership::parse(text)
            {
                return (m, i);
            }
            i = i.prev();
        }
        if let Some(m) = self
            .snapshot_membership
            .as_deref()
            .and_then(|t| Membership::parse(t).ok())
        {
            return (m, self.log.snapshot_index());
        }
        (configured_membership(&self.config), LogIndex(0))
    }

    /// The text of the membership in effect at `index`, if it is not the configured
    /// one: what a snapshot of `index` begins with. Asked at each compaction: the
    /// membership in effect answers unless it was set after `index`, so the log is
    /// scanned only then.
    pub(super) fn membership_text_as_of(&self, index: LogIndex) -> Option<Box<str>> {
        let (m, at) = if self.membership_index <= index {
            (self.membership.clone(), self.membership_index)
        } else {
            self.membership_as_of(index)
        };
        (at.0 > 0 || self.snapshot_membership.is_some()).then(|| m.to_text().into())
    }

    /// Whether this replica is a voter of the membership it holds (its own vote counts).
    pub(super) fn is_voter(&self) -> bool {
        self.membership.is_voter(self.config.id)
    }

    /// Whether this replica may stand for election: a voter of the membership it holds,
    /// or one that membership removed before the entry is known committed (thesis
    /// §4.2.2). The second still counts in the quorums of replicas that lack the entry,
    /// and if its log is the longest their votes go to no one else: with the removal
    /// appended on the old leader alone, the rest could never elect anyone. It stands
    /// with the new membership's voters only, its own vote not counted.
    pub(super) fn may_stand(&self) -> bool {
        self.is_voter()
            || (!self.membership.contains(self.config.id)
                && self.membership_index > self.commit_index)
    }
}

/// The membership from the configuration: its peers but the joining ones, and this
/// replica unless it is joining, all voters.
pub(super) fn configured_membership(config: &crate::Config) -> Membership {
    let founders = config
        .peers
        .iter()
        .copied()
        .filter(|p| !config.joining_peers.contains(p));
    if config.joining {
        Membership::of_voters(founders)
    } else {
        Membership::of_voters(founders.chain([config.id]))
    }
}

/// The membership a snapshot's pairs begin with, if any.
pub(super) fn snapshot_membership_of(pairs: &crate::log::Log) -> Option<Box<str>> {
    match pairs.get(LogIndex(1)).map(|e| e.command) {
        Some(CommandRef::Membership(text)) => Some(text.into()),
        _ => None,
    }
}
