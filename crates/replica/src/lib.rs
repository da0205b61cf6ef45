//! The replica of `3700kvstore`: a Raft-replicated, linearizable key-value store that talks
//! JSON over UDP.
//!
//! - [`raft`]: the pure core (inputs and the time in, effects out; read its module doc
//!   first);
//! - [`kv`]: the state machine the core applies committed puts to;
//! - [`codec`]: JSON datagrams to typed messages and back, without copying;
//! - [`storage`]: a durable replica's term, vote and log on disk (`--data-dir`);
//! - [`event_loop`]: the single-threaded mio loop, the only code that reads a clock or
//!   touches a socket; [`timer_wheel`] keeps its deadlines;
//! - [`args`], [`tuning`], [`debug_log`]: the command line, experiment knobs and the
//!   per-replica debug log.

pub mod args;
pub mod codec;
pub mod debug_log;
pub mod event_loop;
pub mod inline_str;
pub mod kv;
pub mod prefetch;
pub mod raft;
pub mod storage;
pub mod time;
pub mod timer_wheel;
pub mod tuning;
