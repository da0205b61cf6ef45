//! Measurement: what a run counts beyond the classic checks, to tell a replica author
//! where the time and the memory went, and whether kvsim or the machine was to blame.
//!
//! - `stats`: the classic statistics, and our own figures (`Extra`);
//! - `memory`: each replica's resident memory, sampled from `/proc` while the run goes;
//! - `throughput`: committed puts per second, from the history;
//! - `loop_turns`: kvsim's own turns measured (CPU against wall time, faults, phases),
//!   and the replies that waited through a slow one;
//! - `machine_load`: the CPU time of kvsim, its replicas and everything else over a run;
//! - `cpu_stalls`: moments a CPU ran nothing of ours at any priority (the host's doing,
//!   on a virtual machine), with `--stall-probe`;
//! - `timeline`: what the HTML report draws on a time axis, recorded as the run goes.
//!
//! Everything here sits beside the run's hot path: counters bumped as datagrams pass,
//! read and turned into figures at the end.

pub mod cpu_stalls;
pub mod loop_turns;
pub mod machine_load;
pub mod memory;
pub mod stats;
pub mod throughput;
pub mod timeline;
