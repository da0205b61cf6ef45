//! When the simulator fires what falls due (client requests, faults), and what its routing
//! costs: kvsim's own exact timing, or the classic simulator's loop.
//!
//! The classic loop is a Python `select` over the replicas' sockets with a timeout of
//! [`RECV_WAIT_MS`]. Each time `select` returns it reads one datagram from every socket
//! that is ready and routes it, then fires every event whose time has passed. While the
//! replicas are silent it sleeps the whole wait, so the requests that fall due meanwhile
//! leave together when it wakes: a burst. Every datagram a replica sends wakes it, and
//! keeps the requests on time while traffic flows. Routing is Python's speed: a datagram
//! takes [`CLASSIC_ROUTE_COST_US`] to read, check and pass on, a request
//! [`CLASSIC_REQUEST_COST_US`] to make and send, one after another. And the classic shares
//! every CPU with the replicas, so a run in classic timing does too
//! (`run::placement_for`): a leader waiting for a CPU while the loop sends a burst then
//! sees the burst whole, as under the classic.
//!
//! Exact timing, kvsim's own, fires each request when it falls due (to the millisecond of
//! its poll) and routes at kvsim's speed. The run then measures the replica, not the
//! simulator's sleep, and loads far past what the classic loop could relay are possible.
//! Which a run uses: `--timing`, else the scenario's `"timing"`, else exact.

use std::time::{Duration, Instant};

/// The classic loop's `select` timeout: how long it sleeps when no replica sends anything.
pub const RECV_WAIT_MS: u64 = 100;

/// What routing one datagram costs the classic loop: `select`, `recvfrom`, `json.loads`,
/// the field checks, a drop draw and a `sendto`. Measured with CPython 3.11 on the
/// project's VM (`benches/classic_route_cost.py`: 10 to 12 µs).
pub const CLASSIC_ROUTE_COST_US: u64 = 11;

/// What making and sending one client request costs the classic loop: a random MID, key
/// and value, `json.dumps` and a `sendto` (the same script: 33 to 34 µs).
pub const CLASSIC_REQUEST_COST_US: u64 = 33;

/// How a run times what falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timing {
    /// Every request and fault when it falls due; routing at kvsim's speed.
    #[default]
    Exact,
    /// As the classic loop: only when a datagram wakes it or after [`RECV_WAIT_MS`] of
    /// silence, routing one datagram per ready socket per wake at Python's speed, on CPUs
    /// shared with the replicas.
    Classic,
}

impl Timing {
    pub fn parse(text: &str) -> Result<Timing, String> {
        match text {
            "exact" => Ok(Timing::Exact),
            "classic" => Ok(Timing::Classic),
            _ => Err(format!("must be \"classic\" or \"exact\", not {text:?}")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Timing::Exact => "exact",
            Timing::Classic => "classic",
        }
    }

    /// The timing in words, for the summary.
    pub fn describe(self, pace: &ClassicPace) -> String {
        match self {
            Timing::Exact => "exact (each request and fault when it falls due)".into(),
            Timing::Classic => format!(
                "classic (requests and faults fire when a datagram wakes the loop or after {RECV_WAIT_MS} ms of silence; routing a datagram holds the loop {} µs, making a request {} µs)",
                pace.route.as_micros(),
                pace.request.as_micros()
            ),
        }
    }

    /// Which timing a run uses: the command line's, else the scenario's, else exact.
    pub fn resolve(option: Option<Timing>, scenario: Option<Timing>) -> Timing {
        option.or(scenario).unwrap_or_default()
    }
}

/// The classic loop's pace: each datagram routed and each request made holds the loop for
/// its cost before what it sends leaves. The loop is busy, not asleep, as Python's is: a
/// datagram that arrives meanwhile waits for it.
#[derive(Debug, Clone, Copy)]
pub struct ClassicPace {
    pub route: Duration,
    pub request: Duration,
}

impl ClassicPace {
    pub fn measured() -> ClassicPace {
        ClassicPace {
            route: Duration::from_micros(CLASSIC_ROUTE_COST_US),
            request: Duration::from_micros(CLASSIC_REQUEST_COST_US),
        }
    }

    /// Holds the calling thread until `cost` has passed since `began`.
    pub fn hold(began: Instant, cost: Duration) {
        while began.elapsed() < cost {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_wins_over_the_scenario_and_exact_is_the_default() {
        assert_eq!(Timing::resolve(None, None), Timing::Exact);
        assert_eq!(
            Timing::resolve(None, Some(Timing::Classic)),
            Timing::Classic
        );
        assert_eq!(
            Timing::resolve(Some(Timing::Exact), Some(Timing::Classic)),
            Timing::Exact
        );
        assert_eq!(Timing::parse("classic"), Ok(Timing::Classic));
        assert_eq!(Timing::parse("exact"), Ok(Timing::Exact));
        assert!(Timing::parse("Classic").is_err());
    }
}
