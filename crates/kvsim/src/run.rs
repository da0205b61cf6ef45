//! One scenario, start to end: the event loop.
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

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::checker::{self, LinReport};
use super::clients::{Clients, KeyMode};
use super::config::{Config, EventKind};
use super::history;
use super::memory::{self, Memory};
use super::network::{Fate, Network};
use super::outbox::{Outbox, Sent};
use super::procs::{Output, ReplicaProc};
use super::schedule::{RequestSchedule, ScheduledRequest};
use super::score::{self, Check, Tier};
use super::stats::{Extra, Percentiles, Stats};
use super::throughput;
use super::warn::Warnings;
use super::wire::{self, WireError};
use datagram::NodeId;
use datagram::udp_batch::RecvBatch;

/// Datagrams read by one `recvmmsg` (each slot holds the largest datagram, 65,535 bytes,
/// as the classic reads). At 50,000 puts/s a replica sends a few dozen datagrams between
/// two turns; a bigger batch only costs memory.
const RECV_BATCH_DATAGRAMS: usize = 64;
/// The loop wakes at least this often (to notice replicas that exit, and to sample their
/// memory).
const POLL_MS_MAX: u64 = 100;
/// Kernel receive buffer we ask for on each simulator socket.
const SOCKET_RCVBUF_BYTES: i32 = 4 << 20;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub replica: PathBuf,
    pub output: Output,
    /// Print the classic warnings as they happen.
    pub warnings: bool,
    /// Extra environment for the replicas.
    pub env: Vec<(String, String)>,
    /// Overrides the config's seed.
    pub seed: Option<u64>,
    pub lin_states_max: u64,
    /// Write every request attempt here as CSV (`history::write_csv`).
    pub history_csv: Option<PathBuf>,
}

/// Everything a run produced.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub scenario: String,
    pub seed: u64,
    pub passed: bool,
    pub stats: Stats,
    pub checks: Vec<Check>,
    /// Scored even when a check failed (the classic then skips them; so does our summary).
    pub tiers: Vec<Tier>,
    pub extra: Extra,
    pub linearizability: LinReport,
}

/// Independent random streams, all derived from the one seed, so that (for instance) the
/// drop pattern does not shift when a client makes one more retry.
struct Streams {
    schedule: SmallRng,
    clients: SmallRng,
    faults: SmallRng,
    network: SmallRng,
}

impl Streams {
    fn new(seed: u64) -> Streams {
        let derive = |k: u64| SmallRng::seed_from_u64(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        Streams {
            schedule: derive(1),
            clients: derive(2),
            faults: derive(3),
            network: derive(4),
        }
    }
}

enum Action {
    Fault(EventKind),
    Resume(usize),
    Deliver { dst: usize, bytes: Vec<u8> },
}

struct Timed {
    at_us: u64,
    seq: u64,
    action: Action,
}

impl PartialEq for Timed {
    fn eq(&self, o: &Self) -> bool {
        (self.at_us, self.seq) == (o.at_us, o.seq)
    }
}
impl Eq for Timed {}
impl PartialOrd for Timed {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timed {
    // Reversed: BinaryHeap is a max-heap and we want the earliest first; ties in insertion
    // order (as the classic's insort).
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at_us, o.seq).cmp(&(self.at_us, self.seq))
    }
}

struct Sim<'a> {
    cfg: &'a Config,
    n: usize,
    start: Instant,
    poll: Poll,
    sockets: Vec<UdpSocket>,
    /// Sockets of killed replicas: no longer read.
    socket_closed: Vec<bool>,
    remote: Vec<Option<SocketAddr>>,
    procs: Vec<ReplicaProc>,
    killed: Vec<bool>,
    living: Vec<bool>,
    living_list: Vec<usize>,
    /// The simulator's idea of the leader (a replica index).
    leader: Option<usize>,
    leaderless_since_us: Option<u64>,
    network: Network,
    clients: Clients,
    stats: Stats,
    extra: Extra,
    /// Client requests, drawn as they come due.
    requests: RequestSchedule,
    /// Everything else that is due at a time: faults, resumes, delayed deliveries. At
    /// the same time a request goes first, as it did when requests were timers too
    /// (they were scheduled before anything else).
    timers: BinaryHeap<Timed>,
    seq: u64,
    faults_rng: SmallRng,
    warn: Warnings,
    /// Datagrams routed this turn, sent at its end.
    outbox: Outbox,
    memory: Memory,
    /// Set when the first client request is sent: memory grows from there.
    requests_started: bool,
    /// Scheduled start to creation, per request, in seconds.
    request_lateness_s: Vec<f64>,
}

/// Runs one scenario.
pub fn run(cfg: &Config, opts: &Options, seed: u64) -> io::Result<Outcome> {
    super::procs::install_cleanup();
    let n = cfg.replicas;
    let streams = Streams::new(seed);
    let poll = Poll::new()?;
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
        std_sock.set_nonblocking(true)?;
        set_rcvbuf(&std_sock);
        let mut sock = UdpSocket::from_std(std_sock);
        poll.registry()
            .register(&mut sock, Token(i), Interest::READABLE)?;
        sockets.push(sock);
    }
    let mode = match cfg.shared_keys {
        Some(k) => KeyMode::Shared(k),
        None => KeyMode::PerClient,
    };
    let clients = Clients::new(
        n,
        cfg.clients,
        cfg.requests as usize,
        mode,
        streams.clients.clone(),
    );
    let network = Network::new(
        n,
        cfg.drops,
        cfg.duplicate,
        cfg.reorder,
        cfg.reorder_delay_ms_max,
        streams.network.clone(),
    );
    let start = Instant::now();
    let ids: Vec<NodeId> = (0..n).map(|i| NodeId(i as u16)).collect();
    let mut procs = Vec::with_capacity(n);
    for (i, &id) in ids.iter().enumerate() {
        let port = sockets[i].local_addr()?.port();
        let peers: Vec<NodeId> = ids.iter().copied().filter(|&p| p != id).collect();
        let output = match &opts.output {
            Output::Files { dir, .. } => Output::Files {
                dir: dir.clone(),
                prefix: cfg.name.clone(),
            },
            o => o.clone(),
        };
        let proc = ReplicaProc::spawn(&opts.replica, port, id, &peers, &output, start, &opts.env)
            .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot run {}: {e}", opts.replica.display()),
            )
        })?;
        procs.push(proc);
    }
    let mut sim = Sim {
        cfg,
        n,
        start,
        poll,
        socket_closed: vec![false; n],
        sockets,
        remote: vec![None; n],
        procs,
        killed: vec![false; n],
        living: vec![true; n],
        living_list: (0..n).collect(),
        leader: None,
        leaderless_since_us: Some(0),
        network,
        clients,
        stats: Stats {
            latencies_s: Vec::with_capacity(cfg.requests as usize),
            ..Stats::default()
        },
        extra: Extra::default(),
        requests: RequestSchedule::new(
            streams.schedule.clone(),
            cfg.requests,
            cfg.clients,
            cfg.start_wait_s,
            cfg.lifetime_s,
            cfg.mix,
        ),
        timers: BinaryHeap::new(),
        seq: 0,
        faults_rng: streams.faults.clone(),
        warn: Warnings::new(opts.warnings),
        outbox: Outbox::new(n),
        memory: Memory::new(ids.iter().map(NodeId::to_string)),
        requests_started: false,
        request_lateness_s: Vec::with_capacity(cfg.requests as usize),
    };
    sim.populate();
    let cpu_before = thread_cpu_ns();
    sim.event_loop()?;
    sim.extra.loop_cpu_ns = thread_cpu_ns().saturating_sub(cpu_before);
    if let Some(path) = &opts.history_csv {
        history::write_csv(path, &sim.clients.history).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
    }
    Ok(sim.finish(seed, opts.lin_states_max))
}

/// CPU time (user and system) this thread has used so far.
fn thread_cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid starting value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
        return 0;
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime) + us(ru.ru_stime)) * 1000
}

fn set_rcvbuf(sock: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = SOCKET_RCVBUF_BYTES;
    // SAFETY: setsockopt with a pointer to a live c_int and its size. Failure is harmless
    // (the default buffer stays).
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Keeps in `max` the longest `took` seen, with when it began.
fn record_max(max: &mut (u64, u64), took: u64, began_us: u64) {
    if took > max.0 {
        *max = (took, began_us);
    }
}

impl Sim<'_> {
    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn schedule(&mut self, at_us: u64, action: Action) {
        self.seq += 1;
        self.timers.push(Timed {
            at_us,
            seq: self.seq,
            action,
        });
    }

    /// Counts the requests the schedule will make (the classic counts them all up front)
    /// and schedules the config's events.
    fn populate(&mut self) {
        for r in self.requests.clone() {
            if r.get {
                self.stats.generated_get += 1;
            } else {
                self.stats.generated_put += 1;
            }
        }
        let t0 = self.cfg.start_wait_s * 1e6;
        for e in &self.cfg.events {
            self.schedule((t0 + e.time_s * 1e6) as u64, Action::Fault(e.kind.clone()));
        }
    }

    /// Starts every request and carries out every timed action due by `now`, in time
    /// order.
    fn fire_due(&mut self, now: u64) {
        loop {
            let request = self.requests.next_due_us().filter(|&t| t <= now);
            let timer = self.timers.peek().map(|t| t.at_us).filter(|&t| t <= now);
            match (request, timer) {
                (Some(r), t) if t.is_none_or(|t| r <= t) => {
                    if let Some(r) = self.requests.next_request() {
                        self.start_request(r);
                    }
                }
                (_, Some(_)) => {
                    if let Some(t) = self.timers.pop() {
                        self.fire(t.action);
                    }
                }
                _ => return,
            }
        }
    }

    fn event_loop(&mut self) -> io::Result<()> {
        let end_us = (self.cfg.total_s() * 1e6) as u64;
        let mut events = Events::with_capacity(64);
        let mut batch = RecvBatch::new(RECV_BATCH_DATAGRAMS);
        let mut next_exit_check_us = 0;
        let mut turn_began_us = self.now_us();
        loop {
            let now = self.now_us();
            if now >= end_us || self.living_list.is_empty() {
                break;
            }
            if self.stats.total_msgs >= self.cfg.max_packets {
                self.extra.packet_storm = true;
                self.warn.say(&format!(
                    "Replicas sent too many packets (>{}), possible packet storm",
                    self.cfg.max_packets
                ));
                break;
            }
            self.fire_due(now);
            if now >= next_exit_check_us {
                self.check_exits();
                self.sample_memory(false);
                next_exit_check_us = now + POLL_MS_MAX * 1000;
            }
            // The end of the turn: what the drain and the timers routed leaves now, before
            // we sleep.
            self.flush_all();
            let next = self
                .timers
                .peek()
                .map_or(end_us, |t| t.at_us)
                .min(self.requests.next_due_us().unwrap_or(end_us))
                .min(end_us)
                .min(next_exit_check_us);
            let poll_began_us = self.now_us();
            let wait_us = next.saturating_sub(poll_began_us);
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
            match polled {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for ev in events.iter() {
                let i = ev.token().0;
                self.drain(i, &mut batch);
            }
        }
        // Whatever the last turn routed still leaves, as it did with one send each.
        self.flush_all();
        Ok(())
    }

    /// Reads every datagram waiting on replica `i`'s socket and routes each.
    fn drain(&mut self, i: usize, batch: &mut RecvBatch) {
        if self.socket_closed[i] {
            return;
        }
        let fd = self.sockets[i].as_raw_fd();
        loop {
            let t_recv = Instant::now();
            let received = batch.recv(fd);
            let t0 = Instant::now();
            self.extra.recv_calls += 1;
            self.extra.recv_ns_total += (t0 - t_recv).as_nanos() as u64;
            match received {
                Ok(count) => {
                    // Routing may send a full batch early: that time is sending, not logic.
                    let send_ns_before = self.extra.send_ns_total;
                    for k in 0..count {
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
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    // ICMP errors on loopback and the like: not fatal.
                    self.warn.say(&format!(
                        "receive from replica {} failed: {e}",
                        NodeId(i as u16)
                    ));
                    break;
                }
            }
        }
    }

    /// Validates and routes one datagram that arrived on replica `from`'s socket.
    fn route(&mut self, from: usize, raw: &[u8], addr: Option<SocketAddr>) {
        let h = match wire::parse(raw) {
            Ok(h) => h,
            Err(WireError::NotJson) => return self.incorrect("Unable to decode JSON message", raw),
            Err(WireError::NotObject) => return self.incorrect("Message is not a dictionary", raw),
        };
        if h.src.is_missing() || h.dst.is_missing() || h.leader.is_missing() || h.kind.is_missing()
        {
            return self.incorrect("Message is missing a required field", raw);
        }
        if h.leader.id().is_none() {
            return self.incorrect("Incorrect leader format", raw);
        }
        if h.dst.id().is_none() {
            return self.incorrect("Incorrect destination format", raw);
        }
        if h.src.id().is_none() {
            return self.incorrect("Incorrect source format", raw);
        }
        if h.kind.as_str() == Some("hello") {
            // The port this replica speaks from: where its traffic goes from now on. (The
            // kernel always gives the address of a datagram on a UDP socket.)
            if addr.is_some() {
                self.remote[from] = addr;
            }
            return;
        }
        let src = self.replica_index(h.src.canonical_id());
        if self.network.in_majority(src) {
            if let Some(l) = h.leader.as_str() {
                self.stats.add_leader(l);
            }
            let leader = self.replica_index(h.leader.canonical_id());
            self.set_leader(leader);
        }
        let dst = h.dst.canonical_id();
        if let Some(d) = self.replica_index(dst) {
            self.stats.total_msgs += 1;
            self.count_by_type(&h, 1);
            self.deliver_replica_traffic(src, d, raw);
        } else if dst == Some(NodeId::BROADCAST) {
            self.stats.total_msgs += self.n as u64 - 1;
            self.count_by_type(&h, self.n as u64 - 1);
            for d in 0..self.n {
                if Some(d) != src {
                    self.deliver_replica_traffic(src, d, raw);
                }
            }
        } else if let Some(c) = dst.and_then(|id| self.clients.index_of(id)) {
            let now = self.now_us();
            let retry = self.clients.on_reply(
                c,
                &h,
                raw,
                now,
                &self.living_list,
                &mut self.stats,
                &mut self.warn,
            );
            if let Some(d) = retry {
                let out = std::mem::take(&mut self.clients.out);
                self.send(d, &out);
                self.clients.out = out;
            }
        } else {
            self.incorrect("Unknown destination", raw);
        }
    }

    fn count_by_type(&mut self, h: &wire::Header<'_>, copies: u64) {
        let kind = h.kind.as_str().unwrap_or("(not a string)");
        match self.extra.msgs_by_type.get_mut(kind) {
            Some(count) => *count += copies,
            None => {
                self.extra.msgs_by_type.insert(kind.to_string(), copies);
            }
        }
    }

    fn incorrect(&mut self, what: &str, raw: &[u8]) {
        self.warn.raw(what, raw);
        self.stats.incorrect += 1;
    }

    fn replica_index(&self, id: Option<NodeId>) -> Option<usize> {
        id.map(|id| usize::from(id.0)).filter(|&i| i < self.n)
    }

    fn set_leader(&mut self, leader: Option<usize>) {
        if leader == self.leader {
            return;
        }
        let now = self.now_us();
        match (self.leader, leader) {
            (Some(_), None) => self.leaderless_since_us = Some(now),
            (None, Some(_)) => {
                if let Some(since) = self.leaderless_since_us.take() {
                    if self.extra.first_leader_s.is_none() {
                        self.extra.first_leader_s = Some(now as f64 / 1e6);
                    } else {
                        self.extra.leaderless_s_max =
                            self.extra.leaderless_s_max.max((now - since) as f64 / 1e6);
                    }
                }
            }
            _ => {}
        }
        self.leader = leader;
    }

    /// Replica-to-replica traffic: subject to partitions, drops, duplication and delay.
    fn deliver_replica_traffic(&mut self, src: Option<usize>, dst: usize, raw: &[u8]) {
        match self.network.fate(src, dst) {
            Fate::Drop => self.stats.total_drops += 1,
            Fate::Deliver { delay_us, twice } => {
                if delay_us == 0 {
                    self.send(dst, raw);
                } else {
                    self.extra.delayed_datagrams += 1;
                    let at = self.now_us() + delay_us;
                    self.schedule(
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
                    self.schedule(
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

    /// Queues a datagram for replica `dst`; it leaves at the end of the turn (or sooner if
    /// `dst`'s queue fills). Something sent to a replica before its hello (or after it
    /// ended) marks it dead, as in the classic simulator.
    fn send(&mut self, dst: usize, bytes: &[u8]) {
        let addr = match (self.procs[dst].exit, self.remote[dst]) {
            (None, Some(addr)) => addr,
            (_, remote) => {
                if self.living[dst] {
                    if remote.is_none() {
                        self.extra
                            .delivered_before_hello
                            .push(NodeId(dst as u16).to_string());
                        self.warn.say(&format!(
                            "Replica {} got a message before its hello: marked dead",
                            NodeId(dst as u16)
                        ));
                    }
                    self.mark_not_living(dst);
                }
                return;
            }
        };
        if self.outbox.is_full(dst) {
            self.flush(dst);
        }
        self.outbox.queue(dst, addr, bytes);
    }

    /// Sends what is queued for replica `dst`, counting losses as the classic does.
    fn flush(&mut self, dst: usize) {
        let sent: Sent = self.outbox.flush(dst, self.sockets[dst].as_raw_fd());
        if sent.datagrams == 0 {
            return;
        }
        self.extra.sends += sent.datagrams as u64;
        self.extra.send_calls += sent.calls as u64;
        self.extra.send_ns_total += sent.ns;
        for _ in 0..sent.blocked {
            self.warn.say(&format!(
                "the socket to replica {} is blocked",
                NodeId(dst as u16)
            ));
            self.stats.blocked += 1;
        }
        if sent.failed > 0 {
            let e = self.outbox.last_error.take();
            for _ in 0..sent.failed {
                self.warn.say(&format!(
                    "Unable to send to replica {}: {}",
                    NodeId(dst as u16),
                    e.as_ref().map_or(String::new(), ToString::to_string)
                ));
            }
        }
    }

    fn flush_all(&mut self) {
        for dst in 0..self.n {
            if self.outbox.queued(dst) > 0 {
                self.flush(dst);
            }
        }
    }

    /// Samples every running replica's memory; `baseline` when the first request goes.
    fn sample_memory(&mut self, baseline: bool) {
        for r in 0..self.n {
            if self.killed[r] || self.procs[r].exit.is_some() {
                continue;
            }
            if let Some(status) = memory::read_status(self.procs[r].pid()) {
                self.memory.record(r, status, baseline);
            }
        }
    }

    fn mark_not_living(&mut self, r: usize) {
        self.living[r] = false;
        self.living_list.retain(|&x| x != r);
    }

    fn check_exits(&mut self) {
        for r in 0..self.n {
            if self.killed[r] || self.procs[r].exit.is_some() {
                continue;
            }
            if let Some(status) = self.procs[r].poll_exit() {
                let id = NodeId(r as u16);
                self.warn
                    .say(&format!("Replica {id} exited on its own ({status})"));
                self.extra.exited_on_own.push(format!("{id}: {status}"));
                if self.living[r] {
                    self.mark_not_living(r);
                }
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
        }
        self.request_lateness_s
            .push(now.saturating_sub(r.at_us) as f64 / 1e6);
        if let Some(d) =
            self.clients
                .create(r.client, r.get, now, &self.living_list, &mut self.stats)
        {
            let out = std::mem::take(&mut self.clients.out);
            self.send(d, &out);
            self.clients.out = out;
        }
    }

    /// Carries out a timed action that is due.
    fn fire(&mut self, action: Action) {
        match action {
            Action::Deliver { dst, bytes } => self.send(dst, &bytes),
            Action::Resume(r) => self.procs[r].resume(),
            Action::Fault(kind) => self.fault(kind),
        }
    }

    fn kill(&mut self, r: usize) {
        if self.living[r] {
            self.stats.killed += 1;
            self.killed[r] = true;
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
            self.procs[r].kill();
        }
    }

    fn random_non_leader(&mut self) -> Option<usize> {
        let candidates: Vec<usize> = self
            .living_list
            .iter()
            .copied()
            .filter(|&r| Some(r) != self.leader)
            .collect();
        (!candidates.is_empty())
            .then(|| candidates[self.faults_rng.random_range(0..candidates.len())])
    }

    fn fault(&mut self, kind: EventKind) {
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
                    self.warn.say(&format!(
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
            }
            EventKind::PartEnd => self.network.heal(),
            EventKind::PauseLeader { duration_s } => match self.leader {
                Some(l) if self.living[l] => self.pause(l, duration_s),
                _ => self
                    .warn
                    .say("pause_leader: no known living leader; nothing paused"),
            },
            EventKind::PauseNonLeader { duration_s } => match self.random_non_leader() {
                Some(r) => self.pause(r, duration_s),
                None => self
                    .warn
                    .say("pause_non_leader: no living non-leader; nothing paused"),
            },
            EventKind::PartOneWay(direction) => match self.leader {
                Some(l) => self.network.one_way(l, direction),
                None => self.warn.say("part_oneway: no known leader; no partition"),
            },
        }
    }

    fn pause(&mut self, r: usize, duration_s: f64) {
        self.procs[r].pause();
        let at = self.now_us() + (duration_s * 1e6) as u64;
        self.schedule(at, Action::Resume(r));
    }

    fn finish(mut self, seed: u64, lin_states_max: u64) -> Outcome {
        let end_us = self.now_us();
        for r in 0..self.n {
            self.procs[r].kill();
        }
        if self.leader.is_none()
            && self.extra.first_leader_s.is_some()
            && let Some(since) = self.leaderless_since_us
        {
            let gap_s = end_us.saturating_sub(since) as f64 / 1e6;
            self.extra.leaderless_s_max = self.extra.leaderless_s_max.max(gap_s);
        }
        self.stats.died = (self.n - self.living_list.len()) as u64 - self.stats.killed;
        self.extra.unanswered = self.clients.finalize(&mut self.stats);
        self.stats.finalize();
        let cfg = self.cfg;
        let e = &mut self.extra;
        e.reply_latency_s = Percentiles::of_sorted(&self.stats.latencies_s);
        self.clients.op_latencies_s.sort_by(f64::total_cmp);
        e.op_latency_s = Percentiles::of_sorted(&self.clients.op_latencies_s);
        e.get_oks = self.clients.get_oks;
        e.put_oks = self.clients.put_oks;
        e.mids_with_two_replies = self.clients.mids_with_two_replies;
        e.incorrect_from_unacked_put = self.clients.incorrect_from_unacked_put;
        e.throughput_ops_per_s = (e.get_oks + e.put_oks) as f64 / cfg.lifetime_s;
        e.msgs_per_committed_put = if e.put_oks > 0 {
            self.stats.total_msgs as f64 / e.put_oks as f64
        } else {
            0.0
        };
        e.committed =
            throughput::committed_puts(&self.clients.history, (cfg.lifetime_s * 1e6) as u64);
        self.request_lateness_s.sort_by(f64::total_cmp);
        e.request_lateness_s = Percentiles::of_sorted(&self.request_lateness_s);
        self.memory.finalize(e.put_oks);
        e.memory = self.memory;
        let us_per = |ns: u64, count: u64| {
            if count > 0 {
                ns as f64 / count as f64 / 1000.0
            } else {
                0.0
            }
        };
        let routed = e.routed_datagrams;
        e.sim_cost_us_per_datagram =
            us_per(e.recv_ns_total + e.logic_ns_total + e.send_ns_total, routed);
        e.sim_cost_recv_us_per_datagram = us_per(e.recv_ns_total, routed);
        e.sim_cost_logic_us_per_datagram = us_per(e.logic_ns_total, routed);
        e.sim_cost_send_us_per_datagram = us_per(e.send_ns_total, routed);
        e.cpu_us_per_datagram = us_per(e.loop_cpu_ns, routed);
        e.recv_us_per_call = us_per(e.recv_ns_total, e.recv_calls);
        e.send_us_per_call = us_per(e.send_ns_total, e.send_calls);
        e.send_us_per_sent_datagram = us_per(e.send_ns_total, e.sends);
        e.wall_s = end_us as f64 / 1e6;

        let lin = checker::check_history(&self.clients, lin_states_max);
        let mut checks = score::classic_checks(&self.stats, cfg, self.clients.put_oks);
        let what = if lin.violations.len() == 1 {
            "key is"
        } else {
            "keys are"
        };
        checks.push(Check {
            name: "linearizable",
            passed: lin.violations.is_empty(),
            message: format!(
                "Error: the history of {} {what} not linearizable",
                lin.violations.len()
            ),
        });
        let passed = checks.iter().all(|c| c.passed);
        let tiers = score::performance(&self.stats, cfg);
        Outcome {
            scenario: cfg.name.clone(),
            seed,
            passed,
            stats: self.stats,
            checks,
            tiers,
            extra: self.extra,
            linearizability: lin,
        }
    }
}
