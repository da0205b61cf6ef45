//! The clock: the one source of time in the replica, read by the loop and handed to the
//! core as `now`.
//!
//! # Why the loop reads it for every datagram
//!
//! A leader answers a get from its lease while its clock reads less than
//! `s + E - M`, where `s` is when it sent an append a majority acknowledged (its own
//! clock), `E` is `election_timeout_min` and `M` is `lease_margin`. A follower that took
//! that append stamps `c`, its clock when it did, and refuses every vote and pre-vote
//! while its clock reads less than `c + E`; no other leader can be elected before a
//! majority of them stops refusing. With clocks whose rates differ from real time by at
//! most a fraction `ρ`, the reads stay linearizable when
//!
//! ```text
//! (E - M) / (1 - ρ)  +  D_leader  +  D_follower  <  E / (1 + ρ)
//! ```
//!
//! where `D_follower` is how much earlier than its receipt a follower's stamp can be, and
//! `D_leader` how much later than its clock reading a leader can read its state and
//! answer. To first order: `M > D_leader + D_follower + 2ρE`.
//!
//! If the time were read once per turn, both `D`s would be the length of a turn: a turn
//! that drains a thousand datagrams, or is descheduled on a busy machine, could stamp an
//! append with a time from before it was even sent, or answer from a lease that ran out
//! while the turn ran. So the loop reads the clock after each receive call and before
//! each datagram it hands to the core (and before each timer it fires). Then a stamp is
//! never earlier than its receipt (`D_follower = 0`: the datagram was in the kernel before
//! the clock was read), and `D_leader` is the handling of one datagram, microseconds,
//! unless the process is descheduled inside that window. With the defaults (`E` = 800 ms,
//! `M` = 100 ms) the margin covers a 1,000 ppm clock-rate error (1.6 ms) and some 98 ms
//! of such descheduling; no user-space program can bound the latter, which is what the
//! margin is for. `event_loop::tests` checks that a long turn cannot stretch the lease.

use raft::time::Time;
use std::time::Instant;

/// Where the loop reads the time. Readings never decrease.
pub trait Clock {
    fn now(&self) -> Time;
}

/// Microseconds since the loop started, from the operating system's monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    start: Instant,
}

impl MonotonicClock {
    pub fn start() -> MonotonicClock {
        MonotonicClock {
            start: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Time {
        Time(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }
}
