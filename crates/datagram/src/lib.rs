//! What the replica and the simulator share of the classic protocol's transport: every
//! replica and client is named by four hexadecimal characters ([`NodeId`]), and every
//! message is one UDP datagram, moved in batches of many per system call
//! ([`udp_batch`]). Nothing here knows JSON or Raft.

pub mod id;
pub mod receive_buffer;
pub mod udp_batch;

pub use id::NodeId;
