//! The end of a durable replica's turn: what the core changed goes to storage, and the
//! messages that depend on it leave only once it is synced.
//!
//! The `fdatasync` runs on a thread of its own, so that the loop goes on receiving while
//! the disk works: a leader counts its followers' answers while its own sync is out (a
//! quorum of them may commit without it: `Node::persisted` counts its own log only once
//! the sync returns), and a follower takes in the next appends. While one batch's sync is
//! in flight, later turns' changes gather in storage and go out as the next batch, synced
//! once the first returns (group commit): one batch unsynced at a time, so recovery sees
//! at most one torn write, as with a sync in the loop. A snapshot or a new segment (a
//! compaction, an install: now and then) is written and synced in the turn, as before,
//! after waiting for the sync in flight.
//!
//! A leader's appends are sent before its sync, so that its followers write while it
//! does; and a leader writes its new entries when an append carries them, not before
//! (`leader_write_can_wait`). Every other message to a peer (votes, vote requests,
//! append answers, anything carrying a term just adopted) waits for the sync of the
//! batch that holds what it depends on, as §5.1 asks. If a write or a sync fails, the
//! waiting messages are dropped and the replica exits with the reason: after a failed
//! `fdatasync` the page cache may have dropped what it could not write, so retrying
//! proves nothing, and a leader that stayed up would keep its followers from electing
//! anyone while it could never count its own log again.

use super::Replica;
use super::clock::Clock;
use crate::debug_log;
use mio::{Registry, Token, Waker};
use raft::NodeId;
use raft::time::Time;
use raft::{LogIndex, OutgoingMessage, Role};
use std::fs::File;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::{Duration, Instant};
use storage::{Storage, save_changes};

/// The sync thread's wake-up.
pub const SYNCED: Token = Token(2);

type Held = Vec<(NodeId, OutgoingMessage)>;

pub(super) struct Durable {
    pub(super) storage: Storage,
    /// Messages to peers waiting for the next batch's sync (this turn's, or the one after
    /// the sync in flight).
    pub(super) held: Held,
    /// An emptied `held` kept for reuse, so that a steady load allocates nothing.
    spare: Held,
    /// The batch whose sync is out, if one is.
    in_flight: Option<InFlight>,
    /// The first log index changed since the batch in flight was written: its sync does
    /// not make those entries durable, whatever the batch held.
    changed_since_write: Option<LogIndex>,
    syncer: Option<Syncer>,
    /// An append carrying entries has left since the last write (a leader's new entries
    /// are written when one does: `leader_write_can_wait`).
    pub(super) appends_sent: bool,
    /// Why storage failed, if it did: the loop stops, and the replica exits with it.
    pub(super) failed: Option<io::Error>,
}

struct InFlight {
    /// The log's last index when the batch was written.
    last: LogIndex,
    held: Held,
}

/// A sync at least this long is noted in the debug log: the disk, not the replica, is then
/// what a reply waits for, and when every replica's sync is slow at once no quorum is
/// faster.
const SLOW_SYNC: Duration = Duration::from_millis(1);

/// The thread that syncs: files in, results (with how long each sync took) out, and a
/// wake-up for the loop's poll.
struct Syncer {
    files: Sender<File>,
    results: Receiver<(io::Result<()>, Duration)>,
}

/// The real-time priority the sync thread asks for (`SCHED_FIFO`): the lowest, above every
/// ordinary task.
const SYNC_THREAD_RT_PRIORITY: i32 = 1;

impl Syncer {
    /// The thread, and whether it runs at real-time priority (see `raise_to_real_time`).
    fn start(registry: &Registry) -> io::Result<(Syncer, io::Result<()>)> {
        let waker = Arc::new(Waker::new(registry, SYNCED)?);
        let (files, to_sync) = mpsc::channel::<File>();
        let (done, results) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || {
                // Ends when the loop drops its sender.
                for file in to_sync {
                    let started = Instant::now();
                    let result = file.sync_data();
                    if done.send((result, started.elapsed())).is_err() {
                        break;
                    }
                    // A lost wake-up would only delay: the loop also looks each turn.
                    let _ = waker.wake();
                }
            })?;
        let priority = raise_to_real_time(&thread);
        Ok((Syncer { files, results }, priority))
    }
}

/// Puts the sync thread above the replica's loop (and any other ordinary task): it sleeps
/// in `fdatasync` nearly all the time, but a sync is two requests to the disk, a write and
/// a cache flush, and each answer must wake it on a CPU before the sync goes on and the
/// loop hears of it. Where replicas share a CPU, those wake-ups waited out other loops'
/// turns, and a commit waits for the slowest sync of its quorum. At this priority each
/// answer preempts whatever runs, which costs some CPU in switches and a little p50, for a
/// lower tail (`docs/PERFORMANCE.md`, "The cost of durability"). Needs `CAP_SYS_NICE` or
/// an `RLIMIT_RTPRIO`; without them the thread stays at ordinary priority.
fn raise_to_real_time(thread: &std::thread::JoinHandle<()>) -> io::Result<()> {
    use std::os::unix::thread::JoinHandleExt;
    let param = libc::sched_param {
        sched_priority: SYNC_THREAD_RT_PRIORITY,
    };
    // SAFETY: the handle is neither joined nor dropped, so its pthread_t still names the
    // thread (detached only when the handle drops); `param` is valid for the call.
    let error =
        unsafe { libc::pthread_setschedparam(thread.as_pthread_t(), libc::SCHED_FIFO, &param) };
    if error == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(error))
    }
}

impl Durable {
    pub(super) fn new(storage: Storage) -> Durable {
        Durable {
            storage,
            held: Vec::with_capacity(64),
            spare: Vec::with_capacity(64),
            in_flight: None,
            changed_since_write: None,
            syncer: None,
            appends_sent: false,
            failed: None,
        }
    }

    /// Syncs go to a thread of their own from now on, which wakes `registry`'s poll with
    /// `SYNCED` when one returns. Returns whether that thread got real-time priority.
    pub(super) fn sync_off_the_loop(&mut self, registry: &Registry) -> io::Result<io::Result<()>> {
        let (syncer, priority) = Syncer::start(registry)?;
        self.syncer = Some(syncer);
        Ok(priority)
    }

    fn note_changed(&mut self, from: LogIndex) {
        if self.in_flight.is_some() {
            let changed = self.changed_since_write.get_or_insert(from);
            *changed = (*changed).min(from);
        }
    }
}

impl<C: Clock> Replica<C> {
    /// Hands storage what the core changed, and writes it unless a sync is out; releases
    /// what a returned sync settled. Call after the turn's inputs and timers, before the
    /// last flush.
    pub(super) fn persist(&mut self, now: Time) {
        self.collect_sync(now, false);
        let Some(durable) = self.durable.as_mut() else {
            return;
        };
        if durable.failed.is_some() {
            return;
        }
        if let Some(error) = durable.storage.take_preallocation_failure() {
            debug_log!(
                self.log,
                now,
                "log segments no longer preallocated: {error}"
            );
            eprintln!(
                "{}: {error}; the log goes on in segments that are not preallocated",
                self.node.id()
            );
        }
        let changes = self.node.take_unpersisted();
        if let Some(index) = changes.snapshot {
            let how = if changes.snapshot_installed {
                "installed"
            } else {
                "compacted"
            };
            debug_log!(
                self.log,
                now,
                "snapshot through {} {how}: to storage",
                index.0
            );
        }
        if let Some(from) = changes.entries_from {
            durable.note_changed(from);
        }
        if changes.snapshot_installed {
            durable.note_changed(self.node.log().snapshot_index().next());
        }
        save_changes(&mut durable.storage, &self.node, changes);
        if durable.syncer.is_none() || durable.storage.sync_must_be_inline() {
            self.collect_sync(now, true);
            self.persist_inline(now);
            return;
        }
        if let Some(in_flight) = durable.in_flight.as_mut() {
            if !durable.storage.has_pending() {
                // They depend only on what was written before the sync went out.
                in_flight.held.append(&mut durable.held);
            }
            return;
        }
        if self.leader_write_can_wait() {
            return;
        }
        self.write_and_send_to_sync(now);
    }

    /// Whether a leader's write may wait for the append that carries its new entries to
    /// the followers. Under load a leader's appends leave in rounds, the next when a
    /// quorum answers the last (`Config::coalesce_appends`), while its clients' entries
    /// arrive every turn; written every turn, they kept the disk busy with syncs no commit
    /// waited for, and the entries of a round often waited for a sync of earlier ones to
    /// return before their own could start. Written with the round, the leader's sync runs
    /// beside its followers' syncs of the same entries. Only entries wait: a new term or
    /// vote, or a message held for the sync, is written at once; and a leader that is the
    /// only voter sends no appends, so it never waits.
    fn leader_write_can_wait(&self) -> bool {
        let Some(durable) = self.durable.as_ref() else {
            return false;
        };
        self.node.role() == Role::Leader
            && self.node.membership().voter_count() > 1
            && !durable.appends_sent
            && !durable.storage.pending_has_hard_state()
            && durable.held.is_empty()
    }

    /// Writes the batch storage gathered, sends the appends already queued (the
    /// followers write while this replica does), and hands the batch to the sync thread;
    /// with nothing to write, what waited is released at once.
    fn write_and_send_to_sync(&mut self, now: Time) {
        let durable = self.durable.as_mut().expect("a durable replica");
        let last = self.node.log().last_index();
        durable.appends_sent = false;
        match durable.storage.write_unsynced() {
            Ok(None) => self.settle(now, last, None),
            Ok(Some(file)) => {
                self.send_queued(now);
                let durable = self.durable.as_mut().expect("a durable replica");
                let spare = std::mem::take(&mut durable.spare);
                let held = std::mem::replace(&mut durable.held, spare);
                durable.in_flight = Some(InFlight { last, held });
                let sent = durable
                    .syncer
                    .as_ref()
                    .is_some_and(|syncer| syncer.files.send(file).is_ok());
                if !sent {
                    self.fail(now, io::Error::other("the sync thread is gone"));
                }
            }
            Err(error) => self.fail(now, error),
        }
    }

    /// Takes the result of the sync in flight, if it returned (or, with `wait`, once it
    /// does): the batch is durable, so what waited for it leaves. What gathered meanwhile
    /// is written by `persist`, with this turn's changes.
    fn collect_sync(&mut self, now: Time, wait: bool) {
        let Some(durable) = self.durable.as_mut() else {
            return;
        };
        let (Some(_), Some(syncer)) = (durable.in_flight.as_ref(), durable.syncer.as_ref()) else {
            return;
        };
        let gone = || {
            (
                Err(io::Error::other("the sync thread is gone")),
                Duration::ZERO,
            )
        };
        let (result, took) = if wait {
            syncer.results.recv().unwrap_or_else(|_| gone())
        } else {
            match syncer.results.try_recv() {
                Ok(returned) => returned,
                Err(mpsc::TryRecvError::Empty) => return,
                Err(mpsc::TryRecvError::Disconnected) => gone(),
            }
        };
        let in_flight = durable.in_flight.take().expect("a sync in flight");
        let synced = durable.storage.batch_synced(result);
        let changed = durable.changed_since_write.take();
        self.note_sync(now, took, false);
        if let Err(error) = synced {
            self.fail(now, error);
            return;
        }
        let mut through = in_flight.last;
        if let Some(changed) = changed {
            through = through.min(changed.prev());
        }
        self.settle(now, through, Some(in_flight.held));
    }

    /// Counts a returned sync, and notes a slow one in the debug log, saying whether the
    /// loop waited for it (`in_turn`: `persist_inline`, the write of a snapshot or a new
    /// segment, or any write without a sync thread), which holds up the turn's replies.
    fn note_sync(&mut self, now: Time, took: Duration, in_turn: bool) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.stats.syncs += 1;
        self.stats.sync_us_max = self.stats.sync_us_max.max(micros);
        if took >= SLOW_SYNC {
            self.stats.slow_syncs += 1;
            let how = if in_turn { ", in the turn" } else { "" };
            debug_log!(self.log, now, "slow sync: {micros} us{how}");
        }
    }

    /// Writes and syncs in this turn (a snapshot, a new segment, or no sync thread).
    fn persist_inline(&mut self, now: Time) {
        let durable = self.durable.as_mut().expect("a durable replica");
        if durable.failed.is_some() {
            return;
        }
        let last = self.node.log().last_index();
        if durable.storage.has_pending() {
            // The appends already queued leave now: the followers write while we do.
            self.send_queued(now);
        }
        let durable = self.durable.as_mut().expect("a durable replica");
        let started = self.clock.now();
        let result = durable.storage.sync();
        let took = Duration::from_micros(self.clock.now().since(started).as_micros());
        self.note_sync(now, took, true);
        match result {
            Ok(()) => self.settle(now, last, None),
            Err(error) => self.fail(now, error),
        }
    }

    /// The log through `through` and everything written before is durable: the core
    /// counts it, and the messages that waited for it (`held`, and this turn's if it is
    /// the batch's own) leave, with the commits and replies it settles.
    fn settle(&mut self, now: Time, through: LogIndex, held: Option<Held>) {
        let durable = self.durable.as_mut().expect("a durable replica");
        let mut held = match held {
            Some(held) => held,
            None => std::mem::take(&mut durable.held),
        };
        self.node.persisted(now, through);
        for (to, message) in &held {
            self.send_to_peer(now, *to, *message);
        }
        self.carry_out_effects(now);
        held.clear();
        if let Some(durable) = self.durable.as_mut() {
            if durable.held.capacity() == 0 {
                durable.held = held;
            } else if durable.spare.capacity() < held.capacity() {
                durable.spare = held;
            }
        }
    }

    fn fail(&mut self, now: Time, error: io::Error) {
        let durable = self.durable.as_mut().expect("a durable replica");
        let dropped = durable.held.len() + durable.in_flight.as_ref().map_or(0, |f| f.held.len());
        self.stats.unpersisted_sends += dropped as u64;
        durable.held.clear();
        durable.in_flight = None;
        debug_log!(self.log, now, "storage failed, exiting: {error}");
        durable.failed = Some(io::Error::new(
            error.kind(),
            format!("storage failed, exiting without acknowledging more: {error}"),
        ));
        self.stop = true;
    }
}
