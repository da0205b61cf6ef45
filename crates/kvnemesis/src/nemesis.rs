//! The nemesis: carries out the schedule on the running cluster. Each fault is resolved
//! (which nodes; the leader is asked for when the fault starts), applied, written into
//! the history as `start-<fault>`, held, healed, and written as `stop-<fault>`.
//!
//! - kill: SIGKILL, and the same node started again on its data dir at the heal;
//! - pause: SIGSTOP, SIGCONT at the heal;
//! - partitions and loss: nftables rules on peer datagrams (`nft`), flushed at the heal.
//!   A partition cuts both ways except `one-way`; `ring` gives each node a majority of
//!   its own (it hears only the next nodes around a shuffled ring, as Jepsen's
//!   majorities ring), so no two nodes see the same majority;
//! - member replacement: the node is removed (`CLUSTER DELNODE` on the leader) and stops;
//!   at the heal a new node (the next id, an empty data dir, `--join`) is added in its
//!   place (`CLUSTER ADDNODE`), as an operator replaces a failed machine ([`operator`]);
//! - grow and shrink: every spare is added, and at the heal as many members (the leader
//!   maybe) are removed, and as many new spares started.

use crate::cluster::{Cluster, PEER_PORT};
use crate::history::{Draft, NEMESIS, Recorder, Type};
use crate::nft;
use crate::operator;
use crate::schedule::{Fault, Step};
use rand::rngs::SmallRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use std::sync::Mutex;
use std::time::Instant;

/// Packet loss, in percent, drawn for a `loss` fault.
const LOSS_PERCENT: std::ops::RangeInclusive<u8> = 10..=40;

/// One fault as it happened, on the history's clock (ns).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Span {
    pub fault: String,
    pub description: String,
    pub start: u64,
    pub stop: u64,
}

enum Action {
    Kill(Vec<usize>),
    Pause(Vec<usize>),
    /// One-way links (from, to) whose peer datagrams are dropped.
    Drop(Vec<(usize, usize)>),
    Loss(u8),
    Replace(usize),
    /// The spares to add; at the heal, as many members are removed, in the order of a
    /// shuffle seeded by the value.
    GrowShrink(Vec<usize>, u64),
}

/// Carries out `steps`, `at` counted from `started`. Returns what it found of nodes that
/// died without being killed.
pub fn run(
    steps: &[Step],
    cluster: &Mutex<Cluster>,
    recorder: &Recorder,
    started: Instant,
) -> Result<Vec<String>, String> {
    let mut crashes = Vec::new();
    for step in steps {
        std::thread::sleep((started + step.at).saturating_duration_since(Instant::now()));
        let mut guard = cluster.lock().unwrap_or_else(|e| e.into_inner());
        let (action, mut description) = resolve(step, &guard);
        if let Some(outcome) = apply(&mut guard, &action)? {
            description = format!("{description}: {outcome}");
        }
        drop(guard);
        record(recorder, "start", step.fault, &description);
        std::thread::sleep(step.hold);
        let mut guard = cluster.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(outcome) = heal(&mut guard, &action)? {
            description = format!("{description}; {outcome}");
        }
        for (id, status) in guard.crashed() {
            crashes.push(format!(
                "node {id} died on its own ({status}) by the end of {}; its log ends:\n{}",
                step.fault.name(),
                guard.log_tail(id as usize - 1, 20)
            ));
        }
        guard.revive_all()?;
        drop(guard);
        record(recorder, "stop", step.fault, &description);
    }
    Ok(crashes)
}

fn record(recorder: &Recorder, phase: &str, fault: Fault, description: &str) {
    recorder.record(Draft {
        kind: Type::Info,
        process: NEMESIS,
        f: format!("{phase}-{}", fault.name()),
        key: None,
        value: Some(description.to_owned()),
        node: None,
        error: None,
    });
}

fn resolve(step: &Step, cluster: &Cluster) -> (Action, String) {
    let mut rng = SmallRng::seed_from_u64(step.choice_seed);
    let all = cluster.members();
    let n = all.len();
    let mut shuffled = all.clone();
    shuffled.shuffle(&mut rng);
    let random = *all.choose(&mut rng).expect("a node");
    let needs_leader = matches!(
        step.fault,
        Fault::KillLeader
            | Fault::PauseLeader
            | Fault::PartitionLeader
            | Fault::MemberReplaceLeader
    );
    let leader = if needs_leader {
        cluster.leader().unwrap_or(random)
    } else {
        random
    };
    let majority = n / 2 + 1;
    let name = |i: &usize| format!("n{}", i + 1);
    let names = |set: &[usize]| set.iter().map(name).collect::<Vec<_>>().join(" ");
    let cut = |a: &[usize], b: &[usize]| {
        let mut links = Vec::new();
        for &x in a {
            for &y in b {
                links.push((x, y));
                links.push((y, x));
            }
        }
        links
    };
    match step.fault {
        Fault::KillOne | Fault::KillLeader => (Action::Kill(vec![leader]), name(&leader)),
        Fault::KillMinority => {
            let set = shuffled[..n - majority].to_vec();
            (Action::Kill(set.clone()), names(&set))
        }
        Fault::KillMajority => {
            let set = shuffled[..majority].to_vec();
            (Action::Kill(set.clone()), names(&set))
        }
        Fault::KillAll => (Action::Kill(all.clone()), names(&all)),
        Fault::PauseOne | Fault::PauseLeader => (Action::Pause(vec![leader]), name(&leader)),
        Fault::PartitionLeader => {
            let rest: Vec<usize> = all.iter().copied().filter(|&i| i != leader).collect();
            let text = format!("{} | {}", name(&leader), names(&rest));
            (Action::Drop(cut(&[leader], &rest)), text)
        }
        Fault::PartitionHalves => {
            let (a, b) = shuffled.split_at(n / 2);
            (
                Action::Drop(cut(a, b)),
                format!("{} | {}", names(a), names(b)),
            )
        }
        Fault::PartitionOneWay => {
            let (a, b) = shuffled.split_at(n / 2);
            let links: Vec<(usize, usize)> = a
                .iter()
                .flat_map(|&x| b.iter().map(move |&y| (x, y)))
                .collect();
            (
                Action::Drop(links),
                format!("{} -/-> {}", names(a), names(b)),
            )
        }
        Fault::PartitionRing => {
            // Node ring[i] hears ring[i], ring[i+1], ..., ring[i+majority-1] only.
            let mut links = Vec::new();
            let mut views = Vec::new();
            for i in 0..n {
                let view: Vec<usize> = (0..majority).map(|k| shuffled[(i + k) % n]).collect();
                for &other in &all {
                    if !view.contains(&other) {
                        links.push((other, shuffled[i]));
                    }
                }
                views.push(format!(
                    "{} hears {}",
                    name(&shuffled[i]),
                    names(&view[1..])
                ));
            }
            (Action::Drop(links), views.join(", "))
        }
        Fault::MemberReplace | Fault::MemberReplaceLeader => {
            (Action::Replace(leader), name(&leader))
        }
        Fault::MemberGrowShrink => {
            let spares: Vec<usize> = (0..cluster.nodes.len())
                .filter(|&i| !cluster.nodes[i].member && !cluster.nodes[i].removed)
                .collect();
            let text = format!("adding {}", names(&spares));
            (Action::GrowShrink(spares, rng.random()), text)
        }
        Fault::Loss => {
            let percent = rng.random_range(LOSS_PERCENT);
            (
                Action::Loss(percent),
                format!("{percent}% of peer datagrams"),
            )
        }
    }
}

/// Carries out `action`; what came of it, when that is worth a word in the history.
fn apply(cluster: &mut Cluster, action: &Action) -> Result<Option<String>, String> {
    match action {
        Action::Replace(i) => {
            return operator::remove(cluster, *i).map(|stop| Some(format!("removed, {stop}")));
        }
        Action::GrowShrink(spares, _) => {
            for &i in spares {
                operator::add(cluster, i)?;
            }
        }
        Action::Kill(set) => set.iter().for_each(|&i| cluster.kill(i)),
        Action::Pause(set) => set.iter().for_each(|&i| cluster.signal_pause(i, true)),
        Action::Drop(links) => {
            let addresses: Vec<_> = links
                .iter()
                .map(|&(a, b)| (cluster.nodes[a].address, cluster.nodes[b].address))
                .collect();
            nft::drop_links(&addresses, PEER_PORT)?;
        }
        Action::Loss(percent) => nft::lose(*percent, PEER_PORT)?,
    }
    Ok(None)
}

/// Heals `action`; what came of it, when that is worth a word in the history.
fn heal(cluster: &mut Cluster, action: &Action) -> Result<Option<String>, String> {
    match action {
        Action::Kill(set) => {
            for &i in set {
                cluster.start_node(i)?;
            }
        }
        Action::Pause(set) => set.iter().for_each(|&i| cluster.signal_pause(i, false)),
        Action::Drop(_) | Action::Loss(_) => nft::heal()?,
        Action::Replace(_) => {
            let new = cluster.add_spare()?;
            operator::add(cluster, new)?;
            return Ok(Some(format!("n{} added in its place", new + 1)));
        }
        Action::GrowShrink(spares, seed) => {
            let leader = cluster.leader();
            let mut members = cluster.members();
            members.shuffle(&mut SmallRng::seed_from_u64(*seed));
            let mut removed = Vec::new();
            for &i in members.iter().take(spares.len()) {
                let was_leader = leader == Some(i);
                let outcome = operator::remove(cluster, i)?;
                cluster.add_spare()?;
                let role = if was_leader { "the leader, " } else { "" };
                removed.push(format!("n{} ({role}{outcome})", i + 1));
            }
            return Ok(Some(format!("removed {}", removed.join(", "))));
        }
    }
    Ok(None)
}
