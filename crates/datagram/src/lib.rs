//! What the replica and the simulator share of the classic protocol's transport: every
//! message is one UDP datagram, moved in batches of many per system call
//! ([`udp_batch`]), through a socket whose receive buffer is as large as the system
//! allows ([`receive_buffer`]). Nothing here knows JSON or Raft; the ids that name
//! replicas and clients are the core's (`raft::NodeId`).

pub mod receive_buffer;
pub mod udp_batch;
