//! The virtual network between cores: delay, jitter (hence reordering), drops,
//! duplication and partitions, all drawn from the cluster's seeded generator.

use raft::time::Span;
use rand::Rng;
use rand::rngs::SmallRng;

/// How the network treats replica-to-replica messages.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    pub delay_min: Span,
    pub delay_max: Span,
    /// Probability that a message is lost.
    pub drop_rate: f64,
    /// Probability that a delivered message is delivered a second time (later).
    pub duplicate_rate: f64,
}

impl NetworkConfig {
    /// A perfect loopback: 100-300 µs, nothing lost.
    pub fn reliable() -> NetworkConfig {
        NetworkConfig {
            delay_min: Span::from_micros(100),
            delay_max: Span::from_micros(300),
            drop_rate: 0.0,
            duplicate_rate: 0.0,
        }
    }
}

/// Which directed links are cut. `blocked[from][to]`; cut links lose every message.
#[derive(Clone, Debug)]
pub struct Links {
    blocked: Vec<Vec<bool>>,
}

impl Links {
    pub fn new(n: usize) -> Links {
        Links {
            blocked: vec![vec![false; n]; n],
        }
    }

    pub fn heal(&mut self) {
        for row in &mut self.blocked {
            row.fill(false);
        }
    }

    /// Cuts every link between `side` and the rest, both ways.
    pub fn isolate(&mut self, side: &[usize]) {
        let n = self.blocked.len();
        for a in 0..n {
            for b in 0..n {
                if side.contains(&a) != side.contains(&b) {
                    self.blocked[a][b] = true;
                }
            }
        }
    }

    /// Cuts only `from -> to`: `to` stops hearing `from`, but not the reverse.
    pub fn cut_one_way(&mut self, from: usize, to: usize) {
        self.blocked[from][to] = true;
    }

    pub fn is_blocked(&self, from: usize, to: usize) -> bool {
        self.blocked[from][to]
    }
}

/// What happens to one message: the delays (from now) of each copy delivered.
pub fn fate(config: &NetworkConfig, rng: &mut SmallRng, out: &mut Vec<Span>) {
    out.clear();
    if rng.random_bool(config.drop_rate.clamp(0.0, 1.0)) {
        return;
    }
    out.push(delay(config, rng));
    if rng.random_bool(config.duplicate_rate.clamp(0.0, 1.0)) {
        out.push(delay(config, rng) + delay(config, rng));
    }
}

fn delay(config: &NetworkConfig, rng: &mut SmallRng) -> Span {
    let min = config.delay_min.as_micros();
    let max = config.delay_max.as_micros().max(min + 1);
    Span(rng.random_range(min..max))
}
