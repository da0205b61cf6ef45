//! `kvsim`: a network simulator for replicas of the classic key-value store assignment.
//!
//! It speaks the classic simulator's protocol (`/work/shared/PROTOCOL.md`, the "version 2"
//! `run` script): it launches `<replica> <port> <id> <peer ids...>` once per replica, each in
//! its own process group and with a simulator UDP port of its own, learns each replica's
//! address from its hello, routes JSON datagrams by `dst`, plays the clients, applies drops,
//! partitions and kills, and counts and scores exactly what the classic one does, printing
//! the same summary lines. Beyond it: pausing replicas, duplicated and reordered datagrams,
//! one-way and flapping partitions, many clients, shared keys, a linearizability check of
//! the whole history, latency percentiles, a JSON report and a measure of its own cost.
//!
//! Layout, one concept per file:
//! - `config`: scenario files and their validation;
//! - `wire`: reading the few fields we need from a datagram;
//! - `network`: partitions, drops, duplication, delay (decisions only);
//! - `clients`: request generation, retries, reply checks, the history;
//! - `ids`: MIDs and put values that carry their own index, so replies need no hash table;
//! - `procs`: replica processes, and never leaving one behind;
//! - `run`: one scenario, start to end, in a folder of one concept each: `event_loop` (the
//!   turns that tie the rest together), `timers` (faults, resumes and delayed deliveries in
//!   time order), `routing` (datagrams to replicas and clients), `faults` (kills, pauses,
//!   partitions and the network's verdicts as they apply), `outcome` (what a run produced
//!   and the checks at its end); `schedule`: when requests are due;
//! - `outbox`: datagrams to replicas, queued during a turn and sent in batches;
//! - `memory`, `throughput`: replica memory from `/proc`, committed puts per second;
//! - `stats`, `score`, `checker`: what is counted, the checks and tiers, linearizability;
//! - `report`: summary lines, the `all` table, JSON; `history`: every attempt as CSV.
//!
//! Randomness: one seed (from the config, `--seed`, or the clock, always printed) feeds
//! separate streams for the schedule, the clients, the faults and the network, so the same
//! seed gives the same request schedule, keys, values, fault choices and drop decisions.

pub mod checker;
pub mod clients;
pub mod config;
pub mod history;
pub mod ids;
pub mod memory;
pub mod network;
pub mod outbox;
pub mod procs;
pub mod report;
pub mod run;
pub mod schedule;
pub mod score;
pub mod stats;
pub mod suite;
pub mod throughput;
pub mod warn;
pub mod wire;

pub use config::{Config, ConfigError};
pub use run::{Options, Outcome, pick_seed};
