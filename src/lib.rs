//! A Raft-replicated key-value store for the classic replica-under-a-simulator setting, and
//! `kvsim`, the simulator that drives and checks it.

pub mod id;
pub mod inline_str;
pub mod raft;
pub mod time;
pub mod linearizability;
pub mod sim;
