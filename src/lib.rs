//! A Raft-replicated key-value store for the classic replica-under-a-simulator setting, and
//! `kvsim`, the simulator that drives and checks it.

pub mod cluster;
pub mod codec;
pub mod debug_log;
pub mod event_loop;
pub mod id;
pub mod inline_str;
pub mod kv;
pub mod linearizability;
pub mod prefetch;
pub mod raft;
pub mod replica_args;
pub mod sim;
pub mod time;
pub mod timer_wheel;
pub mod tuning;
pub mod udp_batch;
