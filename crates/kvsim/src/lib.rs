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
//! Layout, one concept per file (a folder holds the parts of the module of its name):
//! - `suite`: what `kvsim <file>` and `kvsim all` do, from finding the scenario files to the
//!   exit status (the binary only parses arguments and draws the progress bar);
//! - `config`: a scenario file's top level and its validation; `config/events`: the faults
//!   it schedules; `config/thresholds`: the checks' thresholds and the performance tiers;
//! - `run`: one scenario, start to end: the simulator's state and its setup; in `run/`:
//!   - `event_loop`: the turns that tie the rest together (the only reader of the clock);
//!   - `timers`: faults, resumes and delayed deliveries, in time order;
//!   - `routing`: each datagram checked and taken to replicas or a client; the leader;
//!   - `faults`: kills, pauses, partitions, and the network's verdicts as they apply;
//!   - `restarts`: replicas killed and started again on their data dirs (durable runs);
//!   - `launch`: how each replica is started, the first time and after a restart;
//!   - `outcome`: what a run produced, and the figures and checks made at its end;
//! - `schedule`: when requests are due;
//! - `network`: partitions, drops, duplication, delay (decisions only);
//! - `outbox`: datagrams to replicas, queued during a turn and sent in batches;
//! - `wire`: reading the few fields we need from a datagram;
//! - `placement`: kvsim's loop and the replicas on CPUs of their own (or shared);
//! - `procs`: replica processes, and never leaving one behind; `Replica`, a process or a
//!   stand-in;
//! - `data_dirs`: a durable run's data dir per replica, removed when the run is over;
//! - `clients`: the simulated clients' state and rules; `clients/requests`: each request and
//!   attempt made; `clients/replies`: each reply checked, and the attempts that got none;
//! - `ids`: MIDs and put values that carry their own index, so replies need no hash table;
//! - `history`: every attempt as recorded, and as CSV;
//! - `machine`: the CPU time of kvsim, its replicas and everything else over a run;
//! - `memory`, `throughput`: replica memory from `/proc`, committed puts per second;
//! - `stats`, `score`, `checker`: what is counted, the checks and tiers, linearizability;
//! - `turns`: kvsim's own turns measured (CPU against wall time, faults, phases), and the
//!   replies that waited through a slow one;
//! - `report`: the summary lines, the `all` table, the JSON report;
//! - `timeline`: what the HTML report draws on a time axis, recorded during the run;
//!   `html`: the report's pages (`html/model`, `html/sample`, and the page's script and
//!   style in `html/*.js` and `html/page.css`);
//! - `stand_in`: replicas kvsim runs itself, in threads, as measuring sticks
//!   (`stand_in/stale_reads`);
//! - `warn`: the classic simulator's warnings, capped.
//!
//! Randomness: one seed (from the config, `--seed`, or the clock, always printed) feeds
//! separate streams for the schedule, the clients, the faults and the network, so the same
//! seed gives the same request schedule, keys, values, fault choices and drop decisions.

pub mod checker;
pub mod clients;
pub mod config;
pub mod data_dirs;
pub mod history;
pub mod html;
pub mod ids;
pub mod machine;
pub mod memory;
pub mod network;
pub mod outbox;
pub mod placement;
pub mod procs;
pub mod report;
pub mod run;
pub mod schedule;
pub mod score;
pub mod stand_in;
pub mod stats;
pub mod suite;
pub mod throughput;
pub mod timeline;
pub mod timing;
pub mod turns;
pub mod warn;
pub mod wire;

pub use config::{Config, ConfigError};
pub use run::{Options, Outcome, pick_seed};
