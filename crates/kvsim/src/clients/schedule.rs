//! The classic request schedule: `requests` evenly spaced over `lifetime` after
//! `start_wait`, each a get with probability `mix`, from a random client.
//!
//! Drawn as the run reaches each request rather than all up front into the timer heap:
//! at 500,000 requests that heap held tens of megabytes, and every pop walked it with
//! cache misses. The draws are the same, in the same order,
//! from the schedule's own random stream, so a seed gives the same schedule either way.

use rand::Rng;
use rand::rngs::SmallRng;

/// One scheduled request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScheduledRequest {
    pub at_us: u64,
    pub client: usize,
    pub get: bool,
}

#[derive(Clone)]
pub struct RequestSchedule {
    rng: SmallRng,
    mix: f64,
    clients: usize,
    /// Requests not yet drawn.
    remaining: u64,
    /// When the next one is due, µs since the start, accumulated as the classic does.
    next_at_us: f64,
    delta_us: f64,
}

impl RequestSchedule {
    pub fn new(
        rng: SmallRng,
        requests: u64,
        clients: usize,
        start_wait_s: f64,
        lifetime_s: f64,
        mix: f64,
    ) -> RequestSchedule {
        let delta_us = if requests > 0 {
            lifetime_s * 1e6 / requests as f64
        } else {
            0.0
        };
        RequestSchedule {
            rng,
            mix,
            clients,
            remaining: requests,
            next_at_us: start_wait_s * 1e6,
            delta_us,
        }
    }

    /// When the next request is due, if any is left.
    pub fn next_due_us(&self) -> Option<u64> {
        (self.remaining > 0 && self.clients > 0).then_some(self.next_at_us as u64)
    }

    /// How many requests are due by `now_us` and not yet drawn: kvsim's backlog when it
    /// falls behind.
    pub fn due_by(&self, now_us: u64) -> u64 {
        match self.next_due_us() {
            Some(next) if next <= now_us => {
                let behind = if self.delta_us > 0.0 {
                    ((now_us - next) as f64 / self.delta_us) as u64 + 1
                } else {
                    self.remaining
                };
                behind.min(self.remaining)
            }
            _ => 0,
        }
    }

    /// The next request, whether due or not.
    pub fn next_request(&mut self) -> Option<ScheduledRequest> {
        let at_us = self.next_due_us()?;
        let get = self.rng.random::<f64>() < self.mix;
        let client = self.rng.random_range(0..self.clients);
        self.remaining -= 1;
        self.next_at_us += self.delta_us;
        Some(ScheduledRequest { at_us, client, get })
    }
}

impl Iterator for RequestSchedule {
    type Item = ScheduledRequest;

    fn next(&mut self) -> Option<ScheduledRequest> {
        self.next_request()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn schedule(seed: u64) -> RequestSchedule {
        RequestSchedule::new(SmallRng::seed_from_u64(seed), 1_000, 8, 2.0, 10.0, 0.3)
    }

    #[test]
    fn requests_are_evenly_spaced_after_the_start_wait() {
        let all: Vec<ScheduledRequest> = schedule(1).collect();
        assert_eq!(all.len(), 1_000);
        assert_eq!(all[0].at_us, 2_000_000);
        assert_eq!(all[1].at_us, 2_010_000);
        assert_eq!(all[999].at_us, 11_990_000);
        assert!(all.iter().all(|r| r.client < 8));
        let gets = all.iter().filter(|r| r.get).count();
        assert!((200..400).contains(&gets), "{gets} gets at mix 0.3");
    }

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        let a: Vec<ScheduledRequest> = schedule(7).collect();
        assert_eq!(a, schedule(7).collect::<Vec<_>>());
        assert_ne!(a, schedule(8).collect::<Vec<_>>());
    }

    #[test]
    fn the_backlog_counts_the_requests_due_and_not_drawn() {
        let mut s = schedule(1);
        assert_eq!(s.due_by(1_999_999), 0);
        assert_eq!(s.due_by(2_000_000), 1);
        assert_eq!(s.due_by(2_035_000), 4);
        s.next_request();
        assert_eq!(s.due_by(2_035_000), 3);
        assert_eq!(s.due_by(u64::MAX / 2), 999, "never more than are left");
    }

    #[test]
    fn nothing_is_due_without_requests_or_clients() {
        let mut none = RequestSchedule::new(SmallRng::seed_from_u64(1), 0, 8, 1.0, 5.0, 0.5);
        assert_eq!(none.next_due_us(), None);
        assert_eq!(none.next_request(), None);
        let no_clients = RequestSchedule::new(SmallRng::seed_from_u64(1), 10, 0, 1.0, 5.0, 0.5);
        assert_eq!(no_clients.next_due_us(), None);
    }
}
