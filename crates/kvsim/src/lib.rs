//! `kvsim`: a network simulator for replicas of the classic key-value store assignment.
//!
//! It speaks the classic simulator's protocol (that of its "version 2" `run` script, written
//! down in `docs/PROTOCOL.md` in this repository): it launches `<replica> <port> <id> <peer
//! ids...>` once per replica, each in its own process group and with a simulator UDP port of
//! its own, learns each replica's address from its hello, routes JSON datagrams by `dst`,
//! plays the clients, applies drops, partitions and kills, and counts and scores exactly what
//! the classic one does, printing the same summary lines. Beyond it: pausing replicas,
//! duplicated and reordered datagrams, one-way and flapping partitions, many clients, shared
//! keys, a linearizability check of the whole history, latency percentiles, a JSON report and
//! a measure of its own cost.
//!
//! The code is in rooms, one folder each; each room's module doc says what it owns. In the
//! order a run meets them:
//! - `suite`: what the commands do (`kvsim <file>`, `all`, `calibrate`, `repeat`, `floor`),
//!   from finding the scenario files to the exit status; the binary only parses arguments
//!   and draws the progress bar;
//! - `scenario`: what a run is asked to do: the scenario file and its faults and
//!   thresholds, and the timing (kvsim's own, or the classic's loop);
//! - `run`: one scenario, start to end: the simulator's state, the event loop, routing,
//!   faults and restarts as they fire, the outcome;
//! - `network`: the datagrams between replicas and kvsim: reading one, the network's
//!   verdict on it, the batches it leaves in;
//! - `replicas`: what stands behind each replica ID: a replica process or one of kvsim's
//!   stand-ins, the CPUs they run on, a durable run's data dirs;
//! - `clients`: the simulated clients, the request schedule, the history of every attempt;
//! - `measure`: what a run counts beyond the clients: statistics, replica memory, committed
//!   puts per second, kvsim's own turns, the machine's CPU time, the timeline;
//! - `checks`: the classic checks and tiers, and linearizability;
//! - `report`: everything kvsim writes: warnings as they happen, the summary, the tables,
//!   the JSON report, the HTML pages.
//!
//! Randomness: one seed (from the config, `--seed`, or the clock, always printed) feeds
//! separate streams for the schedule, the clients, the faults and the network, so the same
//! seed gives the same request schedule, keys, values, fault choices and drop decisions.

pub mod checks;
pub mod clients;
pub mod measure;
pub mod network;
pub mod replicas;
pub mod report;
pub mod run;
pub mod scenario;
pub mod suite;

pub use run::{Options, Outcome, pick_seed};
pub use scenario::config::{Config, ConfigError};
