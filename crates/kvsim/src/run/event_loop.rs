//! The event loop: one turn after another until the scenario's time is up.
//!
//! Single-threaded: one mio poll over one UDP socket per replica (as the classic simulator,
//! each replica gets its own simulator port), woken by datagrams or by the next timed
//! action (a scheduled request, a fault, a delayed datagram). Only this loop reads the clock.
//!
//! A turn: drain every readable socket (`recvmmsg`, a batch at a time), routing each
//! datagram into the outbox; fire the timed actions that are due; send what the outbox
//! holds (`sendmmsg`, one batch per replica socket); wait in `poll` for the next datagram
//! or the next timed action. A datagram therefore leaves at the end of the turn that
//! routed it, microseconds later than with one `sendto` each, and in the same order.
//!
//! `poll` waits in whole milliseconds (epoll; mio rounds a shorter wait up to 1 ms), so
//! when no datagram arrives a scheduled request can start up to a millisecond late; the
//! turn that wakes fires every request that is due. Under load datagrams wake the loop
//! far more often than that. `request_lateness_s` in the figures measures it.
//!
//! In classic timing (`crate::scenario::timing`) a turn is the classic loop's: `poll` waits
//! `RECV_WAIT_MS` whatever is due, one datagram is read from each socket that is ready
//! (a socket read from is looked at again next turn without waiting, as `select` would
//! report it while it holds more), each datagram and request holds the loop for what
//! Python takes to handle it and leaves at once, and what is due fires, all of it, only in
//! a turn where the wait ran out or a datagram was read.

use mio::Events;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::Sim;
use super::timers::Action;
use crate::clients::schedule::ScheduledRequest;
use crate::measure::loop_turns::Counters;
use crate::measure::machine_load;
use crate::measure::memory;
use crate::replicas::placement::{self, Placement};
use crate::scenario::timing::{ClassicPace, RECV_WAIT_MS, Timing};
use datagram::udp_batch::RecvBatch;
use raft::NodeId;

/// Datagrams read by one `recvmmsg` (each slot holds the largest datagram, 65,535 bytes,
/// as the classic reads). At 50,000 puts/s a replica sends a few dozen datagrams between
/// two turns; a bigger batch only costs memory.
const RECV_BATCH_DATAGRAMS: usize = 64;
/// Requests started and timed actions fired in one turn, at most. When kvsim falls behind
/// (a hiccup, or more load than it can relay), the backlog is worked off this many at a
/// time between drains of the sockets, so that replies keep being read and no single turn
/// grows with the backlog: at 150,000 puts/s one turn that started every request due ran
/// for 2.7 s. 64 requests take about half a millisecond to send.
const ACTIONS_PER_TURN_MAX: usize = 64;
/// `recvmmsg` calls on one socket in one turn, at most (256 datagrams); the rest wait for
/// the next turn, which comes at once.
const RECV_CALLS_PER_TURN_MAX: usize = 4;
/// The loop wakes at least this often (to notice replicas that exit, and to sample their
/// memory).
const POLL_MS_MAX: u64 = 100;

/// What one drain of a socket did.
struct Drained {
    datagrams: usize,
    /// It stopped at its cap, or (one datagram a turn) may hold more.
    more: bool,
}

/// Keeps in `max` the longest `took` seen, with when it began.
fn record_max(max: &mut (u64, u64), took: u64, began_us: u64) {
    if took > max.0 {
        *max = (took, began_us);
    }
}

impl Sim<'_> {
    pub(super) fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Counts the requests the schedule will make (the classic counts them all up front)
    /// and schedules the config's events.
    pub(super) fn populate(&mut self) {
        for r in self.requests.clone() {
            if r.get {
                self.stats.generated_get += 1;
            } else {
                self.stats.generated_put += 1;
            }
        }
        let t0 = self.cfg.start_wait_s * 1e6;
        for e in &self.cfg.events {
            self.timers
                .schedule((t0 + e.time_s * 1e6) as u64, Action::Fault(e.kind.clone()));
        }
    }

    /// Starts the requests and carries out the timed actions due by `now`, in time order,
    /// at most `actions_max` of them; true if some due ones are left.
    fn fire_due(&mut self, now: u64, actions_max: usize) -> bool {
        let backlog = self.requests.due_by(now);
        self.extra.requests_due_max = self.extra.requests_due_max.max(backlog);
        for _ in 0..actions_max {
            let request = self.requests.next_due_us().filter(|&t| t <= now);
            let timer = self.timers.next_due_us().filter(|&t| t <= now);
            match (request, timer) {
                (Some(r), t) if t.is_none_or(|t| r <= t) => {
                    if let Some(r) = self.requests.next_request() {
                        self.start_request(r);
                    }
                }
                (_, Some(_)) => {
                    if let Some(action) = self.timers.pop() {
                        self.fire(action);
                    }
                }
                _ => return false,
            }
        }
        let due = |t: Option<u64>| t.is_some_and(|t| t <= now);
        due(self.requests.next_due_us()) || due(self.timers.next_due_us())
    }

    pub(super) fn event_loop(&mut self) -> io::Result<()> {
        let classic = self.timing == Timing::Classic;
        let end_us = (self.cfg.total_s() * 1e6) as u64;
        let mut events = Events::with_capacity(64);
        // The classic reads one datagram per ready socket per turn, and fires every due
        // event at once.
        let (mut batch, recv_calls_max, actions_max) = match classic {
            false => (
                RecvBatch::new(RECV_BATCH_DATAGRAMS),
                RECV_CALLS_PER_TURN_MAX,
                ACTIONS_PER_TURN_MAX,
            ),
            true => (RecvBatch::new(1), 1, usize::MAX),
        };
        // Whether this turn's wait ran out or brought a datagram: the classic loop fires
        // what is due only then (exact timing, every turn).
        let mut woke = true;
        let mut next_exit_check_us = 0;
        let mut turn_began_us = self.now_us();
        self.turns.begin(turn_began_us, self.counters());
        // Sockets whose last drain stopped at its cap: read again next turn (the poll is
        // edge-triggered and would not report them again).
        let mut undrained = vec![false; self.n];
        loop {
            let now = self.now_us();
            // With every replica down, a restart to come still keeps the run going.
            if now >= end_us || (self.living_list.is_empty() && !self.restarting.contains(&true)) {
                break;
            }
            if self.stats.total_msgs >= self.cfg.max_packets {
                self.extra.packet_storm = true;
                self.warnings.say(&format!(
                    "Replicas sent too many packets (>{}), possible packet storm",
                    self.cfg.max_packets
                ));
                break;
            }
            let fire_began = Instant::now();
            let behind = woke && self.fire_due(now, actions_max);
            self.extra.fire_ns_total += fire_began.elapsed().as_nanos() as u64;
            if now >= next_exit_check_us {
                self.check_exits();
                self.sample_memory(false);
                self.sample_sockets();
                next_exit_check_us = now + POLL_MS_MAX * 1000;
            }
            // The end of the turn: what the drain and the timers routed leaves now, before
            // we sleep.
            self.flush_all();
            let next = self
                .timers
                .next_due_us()
                .unwrap_or(end_us)
                .min(self.requests.next_due_us().unwrap_or(end_us))
                .min(end_us)
                .min(next_exit_check_us);
            let poll_began_us = self.now_us();
            self.turns.end(poll_began_us, self.counters());
            let wait_us = if behind || undrained.contains(&true) {
                0
            } else if classic {
                (RECV_WAIT_MS * 1000).min(end_us.saturating_sub(poll_began_us))
            } else {
                next.saturating_sub(poll_began_us)
            };
            let polled = self
                .poll
                .poll(&mut events, Some(Duration::from_micros(wait_us)));
            let poll_ended_us = self.now_us();
            record_max(
                &mut self.extra.loop_turn_max_us,
                poll_began_us - turn_began_us,
                turn_began_us,
            );
            record_max(
                &mut self.extra.poll_oversleep_max_us,
                (poll_ended_us - poll_began_us).saturating_sub(wait_us),
                poll_began_us,
            );
            turn_began_us = poll_ended_us;
            self.turns.begin(poll_ended_us, self.counters());
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    // Python's `select` waits again after a signal: no wake.
                    woke = !classic;
                    continue;
                }
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                undrained[ev.token().0] = true;
            }
            let mut read = 0;
            for (i, more) in undrained.iter_mut().enumerate() {
                if *more {
                    let drained = self.drain(i, &mut batch, recv_calls_max);
                    read += drained.datagrams;
                    *more = drained.more;
                }
            }
            woke = !classic || read > 0 || (wait_us > 0 && events.is_empty());
        }
        // Whatever the last turn routed still leaves, as it did with one send each.
        self.flush_all();
        Ok(())
    }

    /// The running counters a turn is measured by.
    fn counters(&self) -> Counters {
        let e = &self.extra;
        Counters {
            recv_ns: e.recv_ns_total,
            route_ns: e.logic_ns_total,
            send_ns: e.send_ns_total,
            fire_ns: e.fire_ns_total,
            routed: e.routed_datagrams,
            sent: e.sends,
            requests_started: self.request_lateness_s.len() as u64,
        }
    }

    /// Reads the datagrams waiting on replica `i`'s socket and routes each, up to
    /// `calls_max` batches: how many it read, and whether it stopped with more waiting.
    fn drain(&mut self, i: usize, batch: &mut RecvBatch, calls_max: usize) -> Drained {
        let mut drained = Drained {
            datagrams: 0,
            more: false,
        };
        if self.socket_closed[i] {
            return drained;
        }
        let fd = self.sockets[i].as_raw_fd();
        for _ in 0..calls_max {
            let t_recv = Instant::now();
            let received = batch.recv(fd);
            let t0 = Instant::now();
            self.extra.recv_calls += 1;
            self.extra.recv_ns_total += (t0 - t_recv).as_nanos() as u64;
            self.batch_us = t0.saturating_duration_since(self.start).as_micros() as u64;
            match received {
                Ok(count) => {
                    drained.datagrams += count;
                    // Routing may send a full batch early: that time is sending, not logic.
                    let send_ns_before = self.extra.send_ns_total;
                    for k in 0..count {
                        if self.timing == Timing::Classic {
                            ClassicPace::hold(t_recv, self.pace.route);
                        }
                        let (raw, addr) = batch.datagram_mut(k);
                        self.route(i, raw, addr);
                    }
                    let route_ns = t0.elapsed().as_nanos() as u64;
                    self.extra.routed_datagrams += count as u64;
                    self.extra.logic_ns_total +=
                        route_ns.saturating_sub(self.extra.send_ns_total - send_ns_before);
                    if count < batch.capacity() {
                        // The socket was empty when the kernel looked; the edge-triggered
                        // poll reports anything newer. Asking again would cost a system
                        // call per drain, on the path of every datagram.
                        return drained;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return drained,
                Err(e) => {
                    // ICMP errors on loopback and the like: not fatal.
                    self.warnings.say(&format!(
                        "receive from replica {} failed: {e}",
                        NodeId(i as u16)
                    ));
                    return drained;
                }
            }
        }
        drained.more = true;
        drained
    }

    /// Samples what waits in kvsim's own receive buffers, and what they dropped.
    pub(super) fn sample_sockets(&mut self) {
        let mut drops = 0;
        for (i, sock) in self.sockets.iter().enumerate() {
            if let Some(m) = super::socket_meminfo(sock.as_raw_fd()) {
                self.extra.sim_socket_queued_bytes_max =
                    self.extra.sim_socket_queued_bytes_max.max(m.queued_bytes);
                self.socket_drops[i] = m.drops;
            }
            drops += self.socket_drops[i];
        }
        self.extra.sim_socket_drops = drops;
    }

    /// Samples every running replica's memory; `baseline` when the first request goes.
    fn sample_memory(&mut self, baseline: bool) {
        for r in 0..self.n {
            if self.killed[r] || self.replicas[r].ended() {
                continue;
            }
            if let Some(status) = self.replicas[r].pid().and_then(memory::read_status) {
                self.memory.record(r, status, baseline);
            }
        }
    }

    /// Creates scheduled request `r` and sends it.
    fn start_request(&mut self, r: ScheduledRequest) {
        let now = self.now_us();
        if !self.requests_started {
            // Memory grows from here: the baseline of "growth per committed put".
            self.requests_started = true;
            self.sample_memory(true);
            self.load_start = Some((now, machine_load::CpuTicks::now()));
        }
        self.request_lateness_s
            .push(now.saturating_sub(r.at_us) as f64 / 1e6);
        let began = Instant::now();
        if let Some(d) =
            self.clients
                .create(r.client, r.get, now, &self.living_list, &mut self.stats)
        {
            self.send_request(d, began);
        }
        if self.requests.next_due_us().is_none() {
            self.note_load_cpus();
        }
    }

    /// How busy the CPUs were from the first request to now (the last, or the run's end
    /// if it stopped before sending them all).
    pub(super) fn note_load_cpus(&mut self) {
        let Some((start_us, start)) = self.load_start.take() else {
            return;
        };
        let now = machine_load::CpuTicks::now();
        let (replicas, kvsim) = match &self.placement {
            Placement::Split { sim, replicas } => {
                (now.since(&start, replicas), now.since(&start, &[*sim]))
            }
            Placement::Shared => (now.since(&start, &placement::allowed_cpus()), None),
        };
        if let Some(replicas) = replicas {
            self.extra.load_cpus = Some(machine_load::LoadCpus {
                seconds: self.now_us().saturating_sub(start_us) as f64 / 1e6,
                replicas,
                kvsim,
            });
        }
    }

    /// Sends the request the clients just made (`clients.out`) to replica `d`; in classic
    /// timing, once Python would have made it (`began`: when the making began).
    pub(super) fn send_request(&mut self, d: usize, began: Instant) {
        if self.timing == Timing::Classic {
            ClassicPace::hold(began, self.pace.request);
        }
        let out = std::mem::take(&mut self.clients.out);
        self.send(d, &out);
        self.clients.out = out;
    }

    /// Carries out a timed action that is due.
    fn fire(&mut self, action: Action) {
        match action {
            Action::Deliver { dst, bytes } => self.send(dst, &bytes),
            Action::Resume(r) => {
                self.replicas[r].resume();
                let now = self.now_us();
                self.timeline.resume(now, r);
            }
            Action::StartAgain(r) => self.start_again(r),
            Action::Fault(kind) => self.fault(kind),
        }
    }
}
