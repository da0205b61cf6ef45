//! The scenario: what a run is asked to do, read and checked before any replica starts.
//!
//! - `config`: a scenario file, in the classic simulator's format plus optional fields of
//!   our own; `config/events` the faults it schedules, `config/thresholds` the checks'
//!   thresholds and the performance tiers;
//! - `classic_suite`: the 17 classic scenarios, their order and their descriptions;
//! - `timing`: when the run fires what falls due, in kvsim's own exact timing or as the
//!   classic's loop does, and what the classic's routing costs.
//!
//! Nothing here touches a socket, a process or the clock: a bad file stops kvsim before
//! it starts anything, and the error names the field.

pub mod classic_suite;
pub mod config;
pub mod timing;
