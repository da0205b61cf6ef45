//! The replica of `3700kvstore` around the Raft core (crate `raft`) and its storage (crate
//! `storage`): a Raft-replicated, linearizable key-value store that talks JSON over UDP.
//!
//! - [`codec`]: JSON datagrams to the core's typed messages and back, without copying;
//! - [`event_loop`]: the single-threaded mio loop, the only code that reads a clock or
//!   touches a socket; [`timer_wheel`] keeps its deadlines;
//! - [`args`], [`tuning`], [`debug_log`]: the command line, experiment knobs and the
//!   per-replica debug log.

pub mod args;
pub mod codec;
pub mod debug_log;
pub mod event_loop;
pub mod timer_wheel;
pub mod tuning;
