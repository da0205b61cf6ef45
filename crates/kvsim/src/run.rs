//! One scenario, start to end: how to run it, the simulator's state, and setting it up.
//!
//! [`run`] binds a simulator socket per replica, starts the replicas, runs the event loop
//! until the scenario's time is up, and turns what was counted into an [`Outcome`]. The
//! state is one struct, `Sim`, owned by the loop; its work is split by concept, one file
//! each:
//! - `event_loop`: the turns of the loop (read the sockets, fire what is due, send, sleep);
//! - `timers`: the timed actions (faults, resumes, delayed deliveries), earliest first;
//! - `routing`: each datagram a replica sends, checked and taken to the replicas or the
//!   client it names; the leader as the datagrams tell it;
//! - `faults`: kills, pauses and partitions as the scenario's events fire, the network's
//!   drops, duplicates and delays on replica-to-replica traffic, replicas that die on their
//!   own;
//! - `restarts`: replicas killed and started again on their data dirs, and their return;
//! - `launch`: how each replica is started, the first time and again;
//! - `outcome`: what a run produced, and the figures and checks made at its end.

mod event_loop;
mod faults;
mod launch;
mod outcome;
mod restarts;
mod routing;
mod timers;

use mio::net::UdpSocket;
use mio::{Interest, Poll, Token};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

use crate::clients::history;
use crate::clients::schedule::RequestSchedule;
use crate::clients::{Clients, KeyMode};
use crate::measure::cpu_stalls::StallProbe;
use crate::measure::loop_turns::TurnMeter;
use crate::measure::machine_load;
use crate::measure::memory::Memory;
use crate::measure::stats::{Extra, Stats};
use crate::measure::timeline::Timeline;
use crate::network::outbox::Outbox;
use crate::network::verdicts::Network;
use crate::replicas::data_dirs::DataDirs;
use crate::replicas::placement::{self, Placement};
use crate::replicas::processes::{Output, Replica};
use crate::replicas::stand_in::StandIn;
use crate::report::warnings::Warnings;
use crate::scenario::config::Config;
use crate::scenario::timing::{ClassicPace, Timing};
use datagram::receive_buffer::{RECEIVE_BUFFER_BYTES, ask_for_receive_buffer};
use launch::Launcher;
use raft::NodeId;
use timers::Timers;

pub use outcome::Outcome;

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
    /// Run this stand-in in place of `replica`.
    pub stand_in: Option<StandIn>,
    /// Keep what the HTML report needs (`Outcome::page`).
    pub page: bool,
    /// Which CPUs the loop and the replicas run on.
    pub placement: Placement,
    /// Leave a durable run's data dirs in place (and say where) instead of removing them.
    pub keep_data: bool,
    /// Run the scenario durable even if its file does not say so (`--durable`).
    pub durable: bool,
    /// Overrides the scenario's timing (`--timing`).
    pub timing: Option<Timing>,
    /// What routing costs in classic timing.
    pub classic_pace: ClassicPace,
    /// Watch each CPU for stalls of the machine itself (`cpu_stalls`).
    pub stall_probe: bool,
}

/// The seed to use: `--seed`, else the config's, else one from the clock.
pub fn pick_seed(cfg: &Config, opts: &Options) -> u64 {
    opts.seed.or(cfg.seed).unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        t.as_nanos() as u64 ^ u64::from(std::process::id())
    })
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

struct Sim<'a> {
    cfg: &'a Config,
    n: usize,
    /// When due requests and faults fire, and what routing costs (`timing`).
    timing: Timing,
    pace: ClassicPace,
    start: Instant,
    poll: Poll,
    sockets: Vec<UdpSocket>,
    /// Sockets of killed replicas: no longer read.
    socket_closed: Vec<bool>,
    remote: Vec<Option<SocketAddr>>,
    replicas: Vec<Replica>,
    /// Starts replicas again; holds the data dirs, so it is dropped after `replicas`.
    launcher: Launcher,
    killed: Vec<bool>,
    /// Killed by a restart event and not back yet (its new process has not said hello):
    /// down, like a killed replica, but neither killed nor died in the counts.
    restarting: Vec<bool>,
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
    timers: Timers,
    faults_rng: SmallRng,
    warnings: Warnings,
    /// Datagrams routed this turn, sent at its end.
    outbox: Outbox,
    memory: Memory,
    /// Set when the first client request is sent: memory grows from there.
    requests_started: bool,
    /// Scheduled start to creation, per request, in seconds.
    request_lateness_s: Vec<f64>,
    /// What the HTML report draws on a time axis.
    timeline: Timeline,
    /// When the batch of datagrams being routed was received (read once per batch: the
    /// timeline counts in 100 ms buckets and needs no clock read per datagram).
    batch_us: u64,
    /// Each turn of the loop measured.
    turns: TurnMeter,
    /// Watching the CPUs for stalls, with `--stall-probe`.
    stall_probe: Option<StallProbe>,
    /// The machine's counters when the run began (`machine_load`).
    machine_start: machine_load::Reading,
    /// Where the loop and the replicas run: whose CPUs `note_load_cpus` reads.
    placement: Placement,
    /// When the first request was sent, and every CPU's ticks then: the load's start.
    load_start: Option<(u64, machine_load::CpuTicks)>,
    /// Per simulator socket, the datagrams the kernel dropped for want of room, as last
    /// read (kept once a socket is closed).
    socket_drops: Vec<u64>,
}

/// Where a run's loop and replicas go: as asked, except that classic timing shares every
/// CPU, as the classic simulator does (a replica that waits for a CPU while the loop sends
/// a burst sees the burst whole, which changes how it batches).
pub fn placement_for(cfg: &Config, opts: &Options) -> Placement {
    match Timing::resolve(opts.timing, cfg.timing) {
        Timing::Classic => Placement::Shared,
        Timing::Exact => opts.placement.clone(),
    }
}

/// Puts the calling thread back on the CPUs it had, however the run ends: a run that
/// shares the CPUs must not inherit the pinning of a split run before it.
struct RestoreAffinity(Vec<usize>);

impl Drop for RestoreAffinity {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = placement::pin_this_thread(&self.0);
        }
    }
}

/// Runs one scenario.
pub fn run(cfg: &Config, opts: &Options, seed: u64) -> io::Result<Outcome> {
    crate::replicas::processes::install_cleanup();
    let opts = &Options {
        placement: placement_for(cfg, opts),
        ..opts.clone()
    };
    // The CPUs kvsim may use, before its loop is pinned to one of them.
    let restore = RestoreAffinity(placement::allowed_cpus());
    let mut raised = false;
    if let Placement::Split { sim, .. } = &opts.placement {
        placement::pin_this_thread(&[*sim])?;
        raised = placement::raise_this_thread().is_ok();
    }
    let machine_start = machine_load::Reading::now();
    let n = cfg.replicas;
    let streams = Streams::new(seed);
    let poll = Poll::new()?;
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let std_sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
        std_sock.set_nonblocking(true)?;
        ask_for_receive_buffer(&std_sock, RECEIVE_BUFFER_BYTES);
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
    let stall_probe = match opts.stall_probe {
        true => Some(StallProbe::start(start, &restore.0)?),
        false => None,
    };
    let ids: Vec<NodeId> = (0..n).map(|i| NodeId(i as u16)).collect();
    let data_dirs = match cfg.durable || opts.durable {
        true => Some(DataDirs::create(&cfg.name, &ids, opts.keep_data)?),
        false => None,
    };
    let ports = sockets
        .iter()
        .map(|s| s.local_addr().map(|a| a.port()))
        .collect::<io::Result<Vec<u16>>>()?;
    // A run writes at most one key per put it sends.
    let keys_hint = usize::try_from(cfg.requests).unwrap_or(usize::MAX);
    let launcher = Launcher::new(opts, &cfg.name, ports, start, keys_hint, data_dirs);
    let mut replicas = Vec::with_capacity(n);
    for r in 0..n {
        replicas.push(launcher.spawn(r, false)?);
    }
    let mut sim = Sim {
        cfg,
        n,
        timing: Timing::resolve(opts.timing, cfg.timing),
        pace: opts.classic_pace,
        start,
        poll,
        socket_closed: vec![false; n],
        sockets,
        remote: vec![None; n],
        replicas,
        launcher,
        killed: vec![false; n],
        restarting: vec![false; n],
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
        timers: Timers::default(),
        faults_rng: streams.faults.clone(),
        warnings: Warnings::new(opts.warnings),
        outbox: Outbox::new(n),
        memory: Memory::new(ids.iter().map(NodeId::to_string)),
        requests_started: false,
        request_lateness_s: Vec::with_capacity(cfg.requests as usize),
        timeline: Timeline::new(n, (cfg.total_s() * 1e6) as u64),
        batch_us: 0,
        turns: TurnMeter::new(),
        stall_probe,
        socket_drops: vec![0; n],
        machine_start,
        placement: opts.placement.clone(),
        load_start: None,
    };
    sim.populate();
    sim.extra.timing = sim.timing.describe(&sim.pace);
    sim.extra.loop_rt_priority = raised;
    sim.extra.placement = match (&opts.placement, raised) {
        (Placement::Shared, _) => opts.placement.describe(),
        (_, true) => format!(
            "{}; the loop at real-time priority",
            opts.placement.describe()
        ),
        (_, false) => format!(
            "{}; the loop at ordinary priority (real-time priority was refused: other tasks on its CPU may preempt it)",
            opts.placement.describe()
        ),
    };
    let cpu_before = thread_cpu_ns();
    let looped = sim.event_loop();
    if raised {
        placement::lower_this_thread();
    }
    looped?;
    sim.extra.loop_cpu_ns = thread_cpu_ns().saturating_sub(cpu_before);
    if let Some(path) = &opts.history_csv {
        history::write_csv(path, &sim.clients.history).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })?;
    }
    Ok(sim.finish(seed, opts))
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

/// What `SO_MEMINFO` says of a socket.
struct MemInfo {
    /// Bytes of datagrams waiting to be read (with the kernel's overhead per datagram).
    queued_bytes: u64,
    /// Datagrams dropped because the buffer was full.
    drops: u64,
}

fn socket_meminfo(fd: std::os::fd::RawFd) -> Option<MemInfo> {
    // `SO_MEMINFO` (Linux 4.14); not exported by the libc crate for every target. The
    // kernel fills up to `SK_MEMINFO_VARS` (9) counters.
    const SO_MEMINFO: libc::c_int = 55;
    let mut info = [0u32; 9];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info` and updates `len`.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let drops = libc::SK_MEMINFO_DROPS as usize;
    (r == 0 && len as usize > drops * 4).then(|| MemInfo {
        queued_bytes: u64::from(info[libc::SK_MEMINFO_RMEM_ALLOC as usize]),
        drops: u64::from(info[drops]),
    })
}
