//! One in-memory network of Raft cores, for every driver that runs the core without I/O:
//! the golden scripts, the deterministic simulation, the fuzz target, the commit benchmark
//! and the allocation test (as raft-rs keeps one `harness` for its tests and benches).
//!
//! - [`Cores`]: the replicas, each a `Node`, its armed [`Timers`] and, when durable, its
//!   storage (on a `MemDisk`, or a real directory for a benchmark). A driver hands a core
//!   one batch of input at a time ([`Cores::input`]), then has its effects carried out
//!   through an [`Outbox`] of its own, which decides when and whether messages arrive:
//!   that choice is all that tells the drivers apart.
//! - [`message`]: a message as it leaves a core, its entries copied out of the sender's
//!   log, and handed to another.
//! - [`InOrder`]: the simplest network on top: every message delivered in send order at
//!   once, no timer after the first election; what the commit benchmark and the
//!   allocation test measure.
//! - [`open_mem_disk`]: a replica's disk in memory, opened as the event loop opens its
//!   data directory, so that every restart anywhere goes through `Storage::open` and
//!   `Recovered::restore`.

mod cores;
mod disk;
mod in_order;
pub mod message;
mod timers;

pub use cores::{Core, Cores, Outbox, peers_of};
pub use disk::open_mem_disk;
pub use in_order::{InOrder, Meter, Unmetered};
pub use message::OwnedMessage;
pub use timers::Timers;
