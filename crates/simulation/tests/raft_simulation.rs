//! Deterministic simulation of whole clusters of Raft cores (no sockets, virtual time).
//!
//! Each seed builds a cluster of 3, 5 or 7 replicas, a faulty network and a fault plan,
//! runs clients on shared keys through it, and checks:
//! - after every event: election safety, log matching, leader completeness, state machine
//!   safety, acknowledged puts committed, exactly one reply per request (see
//!   `simulation::invariants`);
//! - after the faults heal: a leader is elected and every request is answered within a
//!   bounded virtual time;
//! - at the end: every key's history is linearizable.
//!
//! In 30% of the seeds (another 30%, drawn apart) a replica starts outside the cluster:
//! an operator has the leader add it (as a learner, promoted once caught up) and later
//! remove a member, the leader maybe; every committed membership must differ from the
//! last by at most one voter.
//!
//! In 30% of the seeds an operator also asks for leadership transfers, one to three,
//! amid the faults or after them; each must be answered exactly once, `ok` only when the
//! replica asked knows the target leads.
//!
//! Half the seeds are durable: their replicas persist through the real storage code on a
//! disk model (`storage::MemDisk`), and the plan may kill them (the page cache
//! survives), cut their power (unsynced writes lost or torn in any shape), kill one and
//! cut its power after its restart, flip a bit of a stopped replica's synced bytes (its
//! next start must refuse, and it stays down), or fail a write or a sync (it stops, and
//! starts again later). Each restart goes through `Storage::open`, and the invariants
//! check that it recovered what it had made durable.
//!
//! `RAFT_SIM_SEEDS=N` runs N seeds (default 1000), from `RAFT_SIM_FIRST_SEED` (default 0:
//! a long run splits into ranges, a process per core); `RAFT_SIM_SEED=S` replays one seed
//! and prints its plan, and with `TRACE_SIM=1` every event of it.

use raft::Config;
use raft::MembershipChange;
use raft::NodeId;
use raft::time::{Span, Time};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use simulation::network::NetworkConfig;
use simulation::workload::{Workload, WorkloadConfig};
use simulation::{Cluster, ClusterStats, Crash, CrashAt};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use storage::mem::Failing;

const FAULTS_FROM: Time = Time(1_000_000);
const HEAL_AT: Time = Time(6_000_000);
/// After healing, the cluster must elect a leader and answer everything within this.
const SETTLE_WITHIN: Span = Span::from_millis(12_000);
const TICK: Span = Span::from_millis(1);
/// Seeds whose plan includes leadership transfers, and until when they are asked for.
const TRANSFER_SEEDS_FRACTION: f64 = 0.3;
const TRANSFERS_UNTIL: Time = Time(8_000_000);
/// Seeds that add a replica to the cluster and later remove one.
const MEMBERSHIP_SEEDS_FRACTION: f64 = 0.3;

#[derive(Clone, Debug)]
enum Fault {
    CrashLeader,
    CrashFollower,
    PauseLeader {
        for_ms: u64,
    },
    PauseFollower {
        for_ms: u64,
    },
    /// A random minority cut off from the rest.
    Partition {
        minority: Vec<usize>,
    },
    /// The leader alone on one side.
    IsolateLeader,
    /// One-way cuts: the leader stops hearing one follower.
    Asymmetric,
    /// A partition switched on and off every `period_ms`.
    Flapping {
        period_ms: u64,
    },
    /// Killed (unsynced writes lost, the last one maybe torn) and started again from its
    /// disk `down_ms` later: durable clusters only.
    RestartLeader {
        down_ms: u64,
    },
    RestartFollower {
        down_ms: u64,
    },
    /// Every replica at once.
    RestartAll {
        down_ms: u64,
    },
    /// Killed in its next write (what it wrote stays in the page cache), restarted
    /// `down_ms` later, and `after_ms` after that the power fails.
    KillThenPowerLoss {
        leader: bool,
        down_ms: u64,
        after_ms: u64,
    },
    /// Crashed, and a bit of its synced bytes flips while it is down: it must refuse to
    /// start, and stays down (counted with the crashes, within the minority).
    CorruptWhileDown {
        leader: bool,
    },
    /// Its next write (or sync) fails: it stops, and starts again `down_ms` later.
    DiskFailure {
        leader: bool,
        sync: bool,
        down_ms: u64,
    },
    /// An operator asks the leader (or, with none, any replica) to hand its leadership
    /// to replica `target` (to the next one if that is the one asked).
    TransferLeadership {
        target: usize,
    },
    /// An operator asks the leader to add the spare replica (the last, started outside
    /// the cluster) as a learner; the leader promotes it once it has caught up.
    AddSpare,
    /// An operator asks the leader to remove replica `which` (the leader itself, maybe),
    /// once the spare votes: the cluster keeps as many voters as it started with, so the
    /// crashes the plan allows stay a minority.
    RemoveMember {
        which: usize,
    },
    Heal,
}

struct Plan {
    /// Members at the start; with `spare`, one more replica runs outside the cluster.
    replicas: usize,
    spare: bool,
    /// Replicas persist their term, vote and log, and may be restarted.
    durable: bool,
    network: NetworkConfig,
    faults: Vec<(Time, Fault)>,
    workload: WorkloadConfig,
}

fn plan(seed: u64) -> Plan {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5EED_5EED);
    // Half the seeds durable, independently of the apply batch (seed % 3).
    let durable = (seed / 3) % 2 == 1;
    let replicas = [3, 5, 5, 7][rng.random_range(0..4)];
    let drop_rate = [0.0, 0.0, 0.05, 0.15, 0.3][rng.random_range(0..5)];
    let duplicate_rate = [0.0, 0.0, 0.05, 0.2][rng.random_range(0..4)];
    let reorder = rng.random_bool(0.3);
    let network = NetworkConfig {
        delay_min: Span::from_micros(100),
        delay_max: if reorder {
            Span::from_millis(8)
        } else {
            Span::from_micros(400)
        },
        drop_rate,
        duplicate_rate,
    };
    let mut faults = Vec::new();
    let minority_max = (replicas - 1) / 2;
    let mut crashes = 0;
    let count = rng.random_range(0..4);
    for _ in 0..count {
        let at = FAULTS_FROM
            + Span(rng.random_range(0..HEAL_AT.since(FAULTS_FROM).as_micros() - 500_000));
        let kinds = if durable { 14 } else { 8 };
        let fault = match rng.random_range(0..kinds) {
            0 if crashes < minority_max => {
                crashes += 1;
                Fault::CrashLeader
            }
            1 if crashes < minority_max => {
                crashes += 1;
                Fault::CrashFollower
            }
            2 => Fault::PauseLeader {
                for_ms: rng.random_range(200..3000),
            },
            3 => Fault::PauseFollower {
                for_ms: rng.random_range(200..3000),
            },
            4 => {
                let size = rng.random_range(1..=minority_max);
                let mut minority = Vec::new();
                while minority.len() < size {
                    let r = rng.random_range(0..replicas);
                    if !minority.contains(&r) {
                        minority.push(r);
                    }
                }
                Fault::Partition { minority }
            }
            5 => Fault::IsolateLeader,
            6 => Fault::Asymmetric,
            8 => Fault::RestartLeader {
                down_ms: rng.random_range(0..1500),
            },
            9 => Fault::RestartFollower {
                down_ms: rng.random_range(0..1500),
            },
            10 => Fault::RestartAll {
                down_ms: rng.random_range(0..1500),
            },
            11 => Fault::KillThenPowerLoss {
                leader: rng.random_bool(0.5),
                down_ms: rng.random_range(0..1500),
                after_ms: rng.random_range(0..1500),
            },
            12 if crashes < minority_max => {
                crashes += 1;
                Fault::CorruptWhileDown {
                    leader: rng.random_bool(0.5),
                }
            }
            13 => Fault::DiskFailure {
                leader: rng.random_bool(0.5),
                sync: rng.random_bool(0.5),
                down_ms: rng.random_range(0..1500),
            },
            // 7, and a crash past the minority's share.
            _ => Fault::Flapping {
                period_ms: rng.random_range(100..600),
            },
        };
        faults.push((at, fault));
        if rng.random_bool(0.4) {
            let heal = at + Span::from_millis(rng.random_range(300..2000));
            faults.push((heal.min(HEAL_AT), Fault::Heal));
        }
    }
    faults.push((HEAL_AT, Fault::Heal));
    // A share of the seeds has an operator move leadership, amid the faults or after
    // them, from a generator of its own so the rest of each seed's plan stays as it was.
    let mut operator = SmallRng::seed_from_u64(seed ^ 0x0DE5_7A11);
    if operator.random_bool(TRANSFER_SEEDS_FRACTION) {
        for _ in 0..operator.random_range(1..=3) {
            let at = FAULTS_FROM
                + Span(operator.random_range(0..TRANSFERS_UNTIL.since(FAULTS_FROM).as_micros()));
            let target = operator.random_range(0..replicas);
            faults.push((at, Fault::TransferLeadership { target }));
        }
    }
    // A share of the seeds changes the membership: the spare is added (asked three times,
    // in case the first asks meet an election or another change), and later a member is
    // removed.
    let mut members = SmallRng::seed_from_u64(seed ^ 0x3E3B_E125);
    let spare = members.random_bool(MEMBERSHIP_SEEDS_FRACTION);
    if spare {
        let add_at =
            FAULTS_FROM + Span(members.random_range(0..HEAL_AT.since(FAULTS_FROM).as_micros()));
        for k in 0..3 {
            faults.push((add_at + Span::from_millis(400 * k), Fault::AddSpare));
        }
        let remove_at = add_at
            + Span(members.random_range(
                1_500_000..TRANSFERS_UNTIL.since(FAULTS_FROM).as_micros() + 1_500_000,
            ));
        let which = members.random_range(0..replicas);
        faults.push((remove_at, Fault::RemoveMember { which }));
    }
    faults.sort_by_key(|(at, _)| *at);
    let workload = WorkloadConfig {
        clients: 4,
        keys: 3,
        operations: rng.random_range(40..120),
        start: Time::from_millis(1_500),
        end: Time::from_millis(8_000),
        get_fraction: 0.5,
        attempts_max: 200,
        value_padding_max: large_values(seed),
    };
    Plan {
        replicas,
        spare,
        durable,
        network,
        faults,
        workload,
    }
}

fn leader_or_any(cluster: &mut Cluster) -> usize {
    let n = cluster.len();
    (0..n)
        .find(|&i| !cluster.is_crashed(i) && cluster.node(i).role() == raft::Role::Leader)
        .unwrap_or_else(|| cluster.rng().random_range(0..n))
}

/// The leader (or any replica) if `leader`, else a live follower; `None` if it is down.
fn pick_live(cluster: &mut Cluster, leader: bool) -> Option<usize> {
    let l = leader_or_any(cluster);
    if leader {
        return (!cluster.is_crashed(l)).then_some(l);
    }
    (0..cluster.len()).find(|&i| i != l && !cluster.is_crashed(i))
}

fn apply(
    cluster: &mut Cluster,
    t: Time,
    fault: &Fault,
    flapping: &mut Option<(u64, Vec<usize>)>,
    compacting: bool,
    large_values: bool,
) {
    let n = cluster.len();
    // A crash now, in the next write, or where snapshots are written in the next
    // snapshot's write (between the syncs of its files), or where values are large in the
    // next write of several pages.
    let mut when = vec![CrashAt::Now, CrashAt::InNextWrite];
    if compacting {
        when.push(CrashAt::InNextSnapshotWrite);
    }
    if large_values {
        when.push(CrashAt::InNextLargeWrite);
    }
    let crash_at = |k: u64| when[(k % when.len() as u64) as usize];
    // A large write is waited for to be torn: the power fails in it.
    let restart = |cluster: &mut Cluster, i: usize, down: Span, at: CrashAt| {
        let how = (at == CrashAt::InNextLargeWrite).then_some(Crash::PowerLoss);
        cluster.crash_and_restart_as(i, down, at, how);
    };
    match fault {
        Fault::CrashLeader => {
            let l = leader_or_any(cluster);
            cluster.crash(l);
        }
        Fault::CrashFollower => {
            let l = leader_or_any(cluster);
            if let Some(f) = (0..n).find(|&i| i != l && !cluster.is_crashed(i)) {
                cluster.crash(f);
            }
        }
        Fault::PauseLeader { .. } => {
            let l = leader_or_any(cluster);
            cluster.pause(l);
        }
        Fault::PauseFollower { .. } => {
            let l = leader_or_any(cluster);
            if let Some(f) = (0..n).find(|&i| i != l && !cluster.is_crashed(i)) {
                cluster.pause(f);
            }
        }
        Fault::Partition { minority } => cluster.links.isolate(minority),
        Fault::IsolateLeader => {
            let l = leader_or_any(cluster);
            cluster.links.isolate(&[l]);
        }
        Fault::Asymmetric => {
            let l = leader_or_any(cluster);
            let f = (l + 1) % n;
            cluster.links.cut_one_way(f, l);
        }
        Fault::Flapping { period_ms } => {
            let l = leader_or_any(cluster);
            *flapping = Some((*period_ms, vec![l]));
        }
        Fault::RestartLeader { down_ms } => {
            let l = leader_or_any(cluster);
            if !cluster.is_crashed(l) {
                restart(
                    cluster,
                    l,
                    Span::from_millis(*down_ms),
                    crash_at(t.as_millis()),
                );
            }
        }
        Fault::RestartFollower { down_ms } => {
            let l = leader_or_any(cluster);
            if let Some(f) = (0..n).find(|&i| i != l && !cluster.is_crashed(i)) {
                restart(
                    cluster,
                    f,
                    Span::from_millis(*down_ms),
                    crash_at(t.as_millis()),
                );
            }
        }
        Fault::RestartAll { down_ms } => {
            for i in 0..n {
                if !cluster.is_crashed(i) {
                    restart(
                        cluster,
                        i,
                        Span::from_millis(*down_ms),
                        crash_at(t.as_millis() + i as u64),
                    );
                }
            }
        }
        Fault::KillThenPowerLoss {
            leader,
            down_ms,
            after_ms,
        } => {
            if let Some(i) = pick_live(cluster, *leader) {
                cluster.kill_then_lose_power(
                    i,
                    Span::from_millis(*down_ms),
                    Span::from_millis(*after_ms),
                    Span::from_millis(*down_ms),
                );
            }
        }
        Fault::CorruptWhileDown { leader } => {
            if let Some(i) = pick_live(cluster, *leader) {
                cluster.crash_and_damage(i, Span::from_millis(100));
            }
        }
        Fault::DiskFailure {
            leader,
            sync,
            down_ms,
        } => {
            if let Some(i) = pick_live(cluster, *leader) {
                let what = if *sync { Failing::Sync } else { Failing::Write };
                cluster.fail_next_write(i, what, Span::from_millis(*down_ms));
            }
        }
        Fault::TransferLeadership { target } => {
            let l = leader_or_any(cluster);
            let target = if *target == l { (l + 1) % n } else { *target };
            let target = cluster.id(target);
            cluster.transfer_leadership(l, target);
        }
        Fault::AddSpare => {
            let l = leader_or_any(cluster);
            let id = cluster.id(n - 1);
            cluster.change_membership(
                l,
                MembershipChange::AddLearner {
                    id,
                    address: "".into(),
                },
            );
        }
        Fault::RemoveMember { which } => {
            let l = leader_or_any(cluster);
            let spare = cluster.id(n - 1);
            if cluster.node(l).membership().is_voter(spare) {
                let id = cluster.id(*which);
                cluster.change_membership(l, MembershipChange::Remove { id });
            }
        }
        Fault::Heal => {
            if t >= HEAL_AT {
                // The end of all faults: the network stops losing and duplicating too.
                cluster.network.drop_rate = 0.0;
                cluster.network.duplicate_rate = 0.0;
            }
            cluster.links.heal();
            *flapping = None;
            for i in 0..n {
                cluster.resume(i);
            }
        }
    }
}

/// Half the seeds compact their logs every few entries (independently of durability,
/// `(seed / 3) % 2`, and of the apply batch, `seed % 3`), so that followers that fall
/// behind (crashed, paused, cut off) are caught up by InstallSnapshot; half of those cap
/// appends and snapshot chunks so low that each chunk holds one pair (a snapshot of the
/// three keys is then three chunks, any of which may be lost). Independently again
/// (`(seed / 24) % 2`), half of them copy one key per batch of input, so that a
/// compaction spans several batches, with puts, elections and snapshots arriving in
/// between. `(log bytes, chunk bytes, keys per flush)`.
fn compaction(seed: u64) -> Option<(usize, usize, usize)> {
    let default = Config::new(NodeId(0), Vec::new(), 0);
    let keys = if (seed / 24) % 2 == 1 {
        1
    } else {
        default.compaction_keys_per_flush
    };
    match (seed / 6) % 4 {
        1 => Some((200, default.append_bytes_max, keys)),
        3 => Some((200, 1, keys)),
        _ => None,
    }
}

/// Half the seeds (`(seed / 48) % 2`, independently of the rest) put values of up to
/// 4,000 bytes (the replica takes up to 4 KiB), so that a turn's write spans several pages of the disk and a power loss
/// can tear it with holes and out of order; the other half put a dozen bytes.
fn large_values(seed: u64) -> usize {
    if (seed / 48) % 2 == 1 { 4_000 } else { 0 }
}

/// Runs one seed: a summary and the cluster's counters, or the first broken property.
fn run_seed(seed: u64, verbose: bool) -> Result<(String, ClusterStats), String> {
    let plan = plan(seed);
    if verbose {
        eprintln!(
            "seed {seed}: {} replicas{}{}, {:?}, faults {:?}",
            plan.replicas,
            if plan.durable { ", durable" } else { "" },
            match compaction(seed) {
                Some((log, chunk, keys)) => format!(
                    ", compacting past {log} B, {keys} keys per flush, in chunks of {chunk} B"
                ),
                None => String::new(),
            },
            plan.network,
            plan.faults
        );
    }
    // Applying at once, in small batches that end anywhere around elections, and in the
    // default large ones (where most entries are applied only when a get reads).
    let apply_batch = [1, 3, Config::new(NodeId(0), Vec::new(), 0).apply_batch][seed as usize % 3];
    let compaction = compaction(seed);
    let spare = plan.spare.then_some(NodeId(plan.replicas as u16));
    let total = plan.replicas + usize::from(plan.spare);
    let mut cluster = Cluster::new(total, seed, |c| {
        if let Some(spare) = spare {
            c.joining = c.id == spare;
            c.joining_peers = vec![spare];
        }
        c.apply_batch = apply_batch;
        c.durable = plan.durable;
        if let Some((log_bytes, chunk_bytes, keys)) = compaction {
            c.compaction_log_bytes = log_bytes;
            c.append_bytes_max = chunk_bytes;
            c.compaction_keys_per_flush = keys;
        }
    });
    cluster.trace = verbose && std::env::var_os("TRACE_SIM").is_some();
    cluster.network = plan.network.clone();
    let mut workload = Workload::new(plan.workload.clone(), seed.wrapping_mul(31), 0x100);
    let mut faults = plan.faults.iter().peekable();
    let mut flapping: Option<(u64, Vec<usize>)> = None;
    let mut pauses: Vec<(Time, usize)> = Vec::new();
    let deadline = HEAL_AT.max(plan.workload.end) + SETTLE_WITHIN;
    let mut t = Time::ZERO;
    loop {
        while let Some((at, fault)) = faults.peek() {
            if *at > t {
                break;
            }
            let paused_before: Vec<bool> =
                (0..cluster.len()).map(|i| cluster.is_paused(i)).collect();
            apply(
                &mut cluster,
                t,
                fault,
                &mut flapping,
                compaction.is_some(),
                large_values(seed) > 0,
            );
            if let Fault::PauseLeader { for_ms } | Fault::PauseFollower { for_ms } = fault {
                for (i, was) in paused_before.iter().enumerate() {
                    if !was && cluster.is_paused(i) {
                        pauses.push((t + Span::from_millis(*for_ms), i));
                    }
                }
            }
            if verbose {
                eprintln!("{t:?}: {fault:?}");
            }
            faults.next();
        }
        pauses.retain(|&(until, i)| {
            if until <= t {
                cluster.resume(i);
                false
            } else {
                true
            }
        });
        if let Some((period_ms, side)) = &flapping {
            let phase = t.as_millis() / period_ms;
            cluster.links.heal();
            if phase.is_multiple_of(2) {
                cluster.links.isolate(side);
            }
        }
        cluster.run_until(t).map_err(|e| format!("at {t:?}: {e}"))?;
        workload
            .drive(&mut cluster)
            .map_err(|e| format!("at {t:?}: {e}"))?;
        let settled = t > HEAL_AT && workload.is_done() && cluster.stable_leader().is_some();
        if settled && cluster.requests_unanswered() == 0 && cluster.transfers_unanswered() == 0 {
            break;
        }
        if t >= deadline {
            return Err(format!(
                "liveness: {} operations unfinished, {} requests ({:?}) and {} operator requests unanswered, leader {:?} at {t:?} ({:?})",
                workload.unfinished(),
                cluster.requests_unanswered(),
                cluster.describe_unanswered(),
                cluster.transfers_unanswered(),
                cluster.stable_leader(),
                (0..cluster.len())
                    .map(|i| format!("{:?}", cluster.node(i)))
                    .collect::<Vec<_>>()
            ));
        }
        t = t + TICK;
    }
    replicas_agree(&cluster, plan.workload.keys)?;
    simulation::history::check_linearizable(&workload.history)?;
    let disk: Vec<String> = cluster
        .stats
        .disk_faults()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    let summary = format!(
        "{} ops, {} msgs ({} snapshot chunks), {} redirects, {} fails, {} of {} transfers done, {} membership changes committed ({} asked, {} refused), settled at {:?}; disk: {}",
        workload.stats.completed,
        cluster.stats.messages_sent,
        cluster.stats.snapshot_chunks_sent,
        workload.stats.redirects,
        workload.stats.fails,
        cluster.stats.transfers_done,
        cluster.stats.transfers,
        cluster.stats.membership_done,
        cluster.stats.membership_asked,
        cluster.stats.membership_refused,
        t,
        if disk.is_empty() {
            "-".to_owned()
        } else {
            disk.join(", ")
        }
    );
    Ok((summary, cluster.stats.clone()))
}

/// State machine safety (Figure 3), once the run settled: every replica that has applied
/// exactly as far as the leader has committed holds the same value for every key. One
/// behind may still hold a fuzzy snapshot's newer values; one at the commit index has
/// applied past the point any snapshot was copied at. The clients' reads see only what
/// they asked of whom they asked; this compares every replica's whole state, so a
/// replica that is wrong but never read (or read only after a put hid it) is caught too.
fn replicas_agree(cluster: &Cluster, keys: usize) -> Result<(), String> {
    let Some(leader) = cluster.stable_leader() else {
        return Ok(());
    };
    let commit = cluster.node(leader).commit_index();
    let caught_up: Vec<usize> = (0..cluster.len())
        .filter(|&i| !cluster.is_crashed(i) && cluster.node(i).last_applied() == commit)
        .collect();
    let Some((&first, rest)) = caught_up.split_first() else {
        return Ok(());
    };
    for key in (0..keys).map(|k| format!("key-{k}")) {
        let value = |i: usize| {
            let node = cluster.node(i);
            node.kv().get(node.log(), &key).to_owned()
        };
        let expected = value(first);
        if let Some(&other) = rest.iter().find(|&&i| value(i) != expected) {
            return Err(format!(
                "state machine safety: at applied index {}, {key} is {expected:?} on {} and {:?} on {}",
                commit.0,
                cluster.id(first),
                value(other),
                cluster.id(other)
            ));
        }
    }
    Ok(())
}

/// A seed still running after this long is named as it runs: a seed takes milliseconds,
/// and one that never ends (a livelock, a search that explodes) would otherwise hold a
/// long run up with no word of which seed it is.
const SLOW_SEED: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts a thread that names each seed still running after `SLOW_SEED`, once; the run
/// stores the seed it is on in the returned cell.
fn watch_for_slow_seeds(first: u64) -> Arc<AtomicU64> {
    let current = Arc::new(AtomicU64::new(first));
    let watched = Arc::clone(&current);
    std::thread::spawn(move || {
        let (mut seed, mut since, mut named) = (u64::MAX, std::time::Instant::now(), false);
        loop {
            std::thread::sleep(SLOW_SEED / 6);
            let now = watched.load(Ordering::Relaxed);
            if now != seed {
                (seed, since, named) = (now, std::time::Instant::now(), false);
            } else if !named && since.elapsed() >= SLOW_SEED {
                named = true;
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "seed {seed} still running after {} s\n  replay: RAFT_SIM_SEED={seed} cargo test --release --test raft_simulation -- --nocapture",
                    since.elapsed().as_secs()
                );
            }
        }
    });
    current
}

/// `run_seed`, with a panic in the code under test reported as that seed's failure (where
/// and why, in one line), so that the run goes on and lists every failing seed.
fn run_seed_catching(seed: u64) -> Result<(String, ClusterStats), String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or_else(String::new, |l| format!("{}:{}", l.file(), l.line()));
        eprintln!("  panic at {at}");
    }));
    let result = std::panic::catch_unwind(|| run_seed(seed, false));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        Err(format!("panicked: {message}"))
    })
}

#[test]
fn raft_simulation() {
    if let Ok(seed) = std::env::var("RAFT_SIM_SEED") {
        let seed: u64 = seed.parse().expect("RAFT_SIM_SEED is a number");
        match run_seed(seed, true) {
            Ok((summary, _)) => eprintln!("seed {seed}: {summary}"),
            Err(e) => panic!("seed {seed} failed: {e}"),
        }
        return;
    }
    let seeds: u64 = std::env::var("RAFT_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let first: u64 = std::env::var("RAFT_SIM_FIRST_SEED")
        .map(|s| s.parse().expect("RAFT_SIM_FIRST_SEED is a number"))
        .unwrap_or(0);
    let current = watch_for_slow_seeds(first);
    let mut failures = Vec::new();
    let mut durable = 0;
    // Per class of disk fault: how many happened, and in how many seeds.
    let mut disk_faults = ClusterStats::default()
        .disk_faults()
        .map(|(name, _)| (name, 0, 0));
    let (mut compacting, mut installing, mut chunks) = (0, 0, 0);
    let (mut transferring, mut transfers, mut transfers_done) = (0, 0, 0);
    let (mut changing, mut changes_done, mut added, mut removed) = (0, 0, 0, 0);
    for seed in first..first + seeds {
        current.store(seed, Ordering::Relaxed);
        match run_seed_catching(seed) {
            Ok((_, stats)) => {
                durable += u64::from(stats.syncs > 0);
                for (total, (_, n)) in disk_faults.iter_mut().zip(stats.disk_faults()) {
                    total.1 += n;
                    total.2 += u64::from(n > 0);
                }
                compacting += u64::from(compaction(seed).is_some());
                installing += u64::from(stats.snapshot_chunks_sent > 0);
                chunks += stats.snapshot_chunks_sent;
                transferring += u64::from(stats.transfers > 0);
                transfers += stats.transfers;
                transfers_done += stats.transfers_done;
                changing += u64::from(stats.membership_asked > 0);
                changes_done += stats.membership_done;
                added += u64::from(stats.membership_done >= 1);
                removed += u64::from(stats.membership_done >= 2);
            }
            Err(e) => {
                eprintln!(
                    "seed {seed} FAILED: {e}\n  replay: RAFT_SIM_SEED={seed} cargo test --test raft_simulation -- --nocapture"
                );
                failures.push(seed);
            }
        }
    }
    // Straight to the file descriptor: the test harness captures print!, and this line is
    // meant to be seen in every run, a failing one too (its counts are those of the seeds
    // that passed).
    let disk: Vec<String> = disk_faults
        .iter()
        .map(|(name, n, in_seeds)| format!("{n} {name} ({in_seeds} seeds)"))
        .collect();
    let _ = writeln!(
        std::io::stderr().lock(),
        "raft_simulation: {} of {seeds} seeds from {first} passed ({durable} durable; {compacting} compacting, {installing} of them sending {chunks} snapshot chunks; {transferring} moving leadership, {transfers_done} of {transfers} transfers done; {changing} changing membership, {changes_done} changes committed, {added} adding a replica, {removed} adding and removing); disk faults: {}",
        seeds - failures.len() as u64,
        disk.join(", ")
    );
    assert!(
        failures.is_empty(),
        "{} of {seeds} seeds failed: {failures:?}",
        failures.len()
    );
}
