//! The virtual network between replicas: partitions, drops, duplication and reordering.
//!
//! Decisions only; no sockets. Client traffic never comes through here (it is never dropped
//! and ignores partitions). With no duplication or reordering configured, the random draws
//! are exactly the classic ones: one per destination, only when the partition lets it pass.

use rand::Rng;
use rand::rngs::SmallRng;

use crate::scenario::config::OneWay;

/// What happens to one copy of a replica-to-replica datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Drop,
    /// Deliver now, or `delay_us` later; `twice`: a second copy follows.
    Deliver {
        delay_us: u64,
        twice: bool,
    },
}

pub struct Network {
    replicas: usize,
    /// The majority side of a partition (`None`: no partition).
    majority: Option<Vec<bool>>,
    /// A one-way cut around this replica.
    one_way: Option<(usize, OneWay)>,
    drops: f64,
    duplicate: f64,
    reorder: f64,
    reorder_delay_us_max: u64,
    rng: SmallRng,
}

impl Network {
    pub fn new(
        replicas: usize,
        drops: f64,
        duplicate: f64,
        reorder: f64,
        reorder_delay_ms_max: f64,
        rng: SmallRng,
    ) -> Network {
        Network {
            replicas,
            majority: None,
            one_way: None,
            drops,
            duplicate,
            reorder,
            reorder_delay_us_max: (reorder_delay_ms_max * 1000.0) as u64,
            rng,
        }
    }

    /// Splits into `majority` (a set of replica indices) and the rest.
    pub fn partition(&mut self, majority: &[usize]) {
        let mut side = vec![false; self.replicas];
        for &r in majority {
            side[r] = true;
        }
        self.majority = Some(side);
    }

    pub fn one_way(&mut self, leader: usize, direction: OneWay) {
        self.one_way = Some((leader, direction));
    }

    /// Heals every partition.
    pub fn heal(&mut self) {
        self.majority = None;
        self.one_way = None;
    }

    pub fn majority(&self) -> Option<&[bool]> {
        self.majority.as_deref()
    }

    /// Is `src` on the majority side (or is there no partition)? A source that is no
    /// replica counts as outside, as in the classic set arithmetic.
    pub fn in_majority(&self, src: Option<usize>) -> bool {
        match &self.majority {
            None => true,
            Some(side) => src.is_some_and(|s| side[s]),
        }
    }

    /// May a datagram from `src` reach `dst`?
    pub fn connected(&self, src: Option<usize>, dst: usize) -> bool {
        if let Some(side) = &self.majority {
            let a = src.is_some_and(|s| side[s]);
            if a != side[dst] {
                return false;
            }
        }
        match self.one_way {
            Some((l, OneWay::FromLeader)) => src != Some(l),
            Some((l, OneWay::ToLeader)) => dst != l,
            None => true,
        }
    }

    /// The fate of one copy from `src` to `dst`.
    pub fn fate(&mut self, src: Option<usize>, dst: usize) -> Fate {
        if !self.connected(src, dst) || self.rng.random::<f64>() < self.drops {
            return Fate::Drop;
        }
        let twice = self.duplicate > 0.0 && self.rng.random::<f64>() < self.duplicate;
        let delay_us = if self.reorder > 0.0 && self.rng.random::<f64>() < self.reorder {
            self.rng.random_range(0..=self.reorder_delay_us_max)
        } else {
            0
        };
        Fate::Deliver { delay_us, twice }
    }

    /// A uniformly random delay for a duplicate copy.
    pub fn duplicate_delay_us(&mut self) -> u64 {
        if self.reorder_delay_us_max == 0 {
            0
        } else {
            self.rng.random_range(0..=self.reorder_delay_us_max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn partitions_cut_across_sides_only() {
        let mut n = Network::new(5, 0.0, 0.0, 0.0, 0.0, SmallRng::seed_from_u64(1));
        n.partition(&[0, 1, 2]);
        assert!(n.connected(Some(0), 2));
        assert!(n.connected(Some(3), 4));
        assert!(!n.connected(Some(0), 3));
        assert!(!n.connected(Some(4), 1));
        assert!(
            !n.connected(None, 1),
            "a non-replica source is outside the majority"
        );
        assert!(n.connected(None, 4));
        n.heal();
        n.one_way(2, OneWay::FromLeader);
        assert!(!n.connected(Some(2), 0));
        assert!(n.connected(Some(0), 2));
        n.one_way(2, OneWay::ToLeader);
        assert!(n.connected(Some(2), 0));
        assert!(!n.connected(Some(0), 2));
    }

    #[test]
    fn drop_rate_is_respected_and_seeded() {
        let run = |seed| {
            let mut n = Network::new(3, 0.3, 0.0, 0.0, 0.0, SmallRng::seed_from_u64(seed));
            (0..10_000)
                .map(|_| n.fate(Some(0), 1) == Fate::Drop)
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        let dropped = a.iter().filter(|d| **d).count();
        assert!((2700..3300).contains(&dropped), "{dropped}");
    }
}
