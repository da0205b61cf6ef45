//! The verdict on a run: the classic simulator's correctness checks and performance tiers
//! (`score`, with the classic wording), and linearizability of the whole history, key by
//! key (`linearizability`, on the `lincheck` crate), which the classic does not check.

pub mod linearizability;
pub mod score;
