//! The nemesis's schedule, made from the seed before the run: when each fault starts,
//! which kind it is, how long it holds, and the seed of its own choices (which nodes,
//! which halves, what loss). The same seed gives the same schedule, whatever the cluster
//! does; only "the leader" is resolved when the fault starts.

use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    KillOne,
    KillLeader,
    KillMinority,
    KillMajority,
    KillAll,
    PauseOne,
    PauseLeader,
    PartitionLeader,
    PartitionHalves,
    PartitionRing,
    PartitionOneWay,
    Loss,
    MemberReplace,
    MemberReplaceLeader,
    MemberGrowShrink,
}

/// Every fault but `member-grow-shrink`, which needs spares: `all` adds it when there are.
pub const ALL_FAULTS: [Fault; 14] = [
    Fault::KillOne,
    Fault::KillLeader,
    Fault::KillMinority,
    Fault::KillMajority,
    Fault::KillAll,
    Fault::PauseOne,
    Fault::PauseLeader,
    Fault::PartitionLeader,
    Fault::PartitionHalves,
    Fault::PartitionRing,
    Fault::PartitionOneWay,
    Fault::Loss,
    Fault::MemberReplace,
    Fault::MemberReplaceLeader,
];

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillOne => "kill-one",
            Fault::KillLeader => "kill-leader",
            Fault::KillMinority => "kill-minority",
            Fault::KillMajority => "kill-majority",
            Fault::KillAll => "kill-all",
            Fault::PauseOne => "pause-one",
            Fault::PauseLeader => "pause-leader",
            Fault::PartitionLeader => "partition-leader",
            Fault::PartitionHalves => "partition-halves",
            Fault::PartitionRing => "partition-ring",
            Fault::PartitionOneWay => "partition-one-way",
            Fault::Loss => "loss",
            Fault::MemberReplace => "member-replace",
            Fault::MemberReplaceLeader => "member-replace-leader",
            Fault::MemberGrowShrink => "member-grow-shrink",
        }
    }

    /// The faults a `--faults` word names: a fault's name, or a family (`kill`, `pause`,
    /// `partition`, `loss`, `member`, `all`). `member-grow-shrink` only `with_spares`.
    pub fn parse_list(text: &str, with_spares: bool) -> Result<Vec<Fault>, String> {
        let candidates: Vec<Fault> = ALL_FAULTS
            .iter()
            .copied()
            .chain(with_spares.then_some(Fault::MemberGrowShrink))
            .collect();
        let mut faults = Vec::new();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == Fault::MemberGrowShrink.name() && !with_spares {
                return Err(format!(
                    "{word} adds the spares and removes as many members: give --spares K"
                ));
            }
            let matched: Vec<Fault> = candidates
                .iter()
                .copied()
                .filter(|f| {
                    word == "all" || f.name() == word || f.name().starts_with(&format!("{word}-"))
                })
                .collect();
            if matched.is_empty() {
                return Err(format!(
                    "unknown fault {word:?}: give kill, pause, partition, loss, member, all, or one of {}, {}",
                    ALL_FAULTS.map(Fault::name).join(", "),
                    Fault::MemberGrowShrink.name()
                ));
            }
            faults.extend(matched);
        }
        faults.sort();
        faults.dedup();
        if faults.is_empty() {
            return Err("--faults names no fault".into());
        }
        Ok(faults)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// Since the clients started.
    pub at: Duration,
    pub fault: Fault,
    pub hold: Duration,
    /// Seeds the fault's own choices.
    pub choice_seed: u64,
}

/// Quiet time before the first fault and between faults, in milliseconds.
const QUIET_MS: std::ops::RangeInclusive<u64> = 2_000..=4_000;
/// How long a fault holds, in milliseconds.
const HOLD_MS: std::ops::RangeInclusive<u64> = 2_000..=6_000;
/// Quiet time kept at the end of the run, so that every heal is followed by operations.
const TAIL_QUIET: Duration = Duration::from_secs(4);

/// The schedule for a run of `total`.
pub fn plan(seed: u64, total: Duration, faults: &[Fault]) -> Vec<Step> {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut steps = Vec::new();
    let mut at = Duration::from_millis(rng.random_range(QUIET_MS));
    loop {
        let fault = *faults.choose(&mut rng).expect("at least one fault");
        let hold = Duration::from_millis(rng.random_range(HOLD_MS));
        let choice_seed = rng.random();
        if at + hold + TAIL_QUIET > total {
            return steps;
        }
        steps.push(Step {
            at,
            fault,
            hold,
            choice_seed,
        });
        at += hold + Duration::from_millis(rng.random_range(QUIET_MS));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_within_the_run() {
        let total = Duration::from_secs(60);
        let a = plan(7, total, &ALL_FAULTS);
        assert_eq!(a, plan(7, total, &ALL_FAULTS));
        assert_ne!(a, plan(8, total, &ALL_FAULTS));
        assert!(a.len() >= 5, "{a:?}");
        for w in a.windows(2) {
            assert!(w[0].at + w[0].hold < w[1].at);
        }
        let last = a.last().unwrap();
        assert!(last.at + last.hold + TAIL_QUIET <= total);
    }

    #[test]
    fn fault_lists_name_faults_or_families() {
        assert_eq!(
            Fault::parse_list("pause,loss", false).unwrap(),
            vec![Fault::PauseOne, Fault::PauseLeader, Fault::Loss]
        );
        assert_eq!(
            Fault::parse_list("all", false).unwrap(),
            ALL_FAULTS.to_vec()
        );
        assert_eq!(
            Fault::parse_list("kill-all", false).unwrap(),
            vec![Fault::KillAll]
        );
        assert!(Fault::parse_list("flood", false).is_err());
        assert_eq!(
            Fault::parse_list("member", false).unwrap(),
            vec![Fault::MemberReplace, Fault::MemberReplaceLeader]
        );
        assert!(Fault::parse_list("member-grow-shrink", false).is_err());
        assert_eq!(
            Fault::parse_list("member", true).unwrap(),
            vec![
                Fault::MemberReplace,
                Fault::MemberReplaceLeader,
                Fault::MemberGrowShrink
            ]
        );
    }
}
