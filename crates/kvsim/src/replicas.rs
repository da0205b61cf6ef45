//! The replicas: what answers at each replica ID, and what it runs on.
//!
//! - `processes`: replica processes (start, kill, crash, pause, and never leave one
//!   behind), and `Replica`, a process or a stand-in, which is all the run sees;
//! - `stand_in`: replicas kvsim runs itself, in threads, as measuring sticks;
//! - `placement`: kvsim's loop and the replicas on CPUs of their own, or shared;
//! - `data_dirs`: a durable run's data dir per replica, removed when the run is over.
//!
//! kvsim judges any program that speaks the protocol and knows nothing of a replica's
//! insides; what it does know about a replica as a process (or a thread standing in for
//! one) lives here.

pub mod data_dirs;
pub mod placement;
pub mod processes;
pub mod stand_in;
