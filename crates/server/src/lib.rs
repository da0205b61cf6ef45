//! Cluster mode: the replica as a store on real addresses, spoken to by Redis clients.
//!
//! - [`cluster_file`]: which nodes make the cluster, where each listens (TOML);
//! - [`resp`]: the Redis protocol (RESP2): requests parsed in place, replies encoded;
//! - [`port`]: the client port, polled in the replica's own loop beside its Raft traffic
//!   (`replica::event_loop::client_port`), with every buffer bounded;
//! - [`command`]: what each command does: answered here, served by the leader through
//!   the core, redirected (`-MOVED`), or held while no leader is known;
//! - [`value`]: Redis byte strings in the core's strings, and `DEL` as a tombstone;
//! - [`hash_slot`], [`info`]: what cluster clients and tools expect to read;
//! - [`members`]: the nodes as the membership in the log has them (added ones too);
//! - [`serve`]: one node, from its cluster file; [`supervisor`]: a local cluster of
//!   child processes (`kvstore cluster`).

pub mod cluster_file;
pub mod command;
pub mod hash_slot;
pub mod info;
pub mod members;
pub mod port;
pub mod resp;
pub mod serve;
pub mod supervisor;
pub mod value;
