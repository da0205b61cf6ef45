//! Everything kvsim writes, apart from the replicas' own output.
//!
//! - `warnings`: the classic simulator's warnings as they happen, capped;
//! - `summary`: one run's summary: the classic lines, in the classic order, then
//!   `figures`, our own; then the checks and the tiers;
//! - `table`: the classic line of each scenario of `kvsim all`, and the table after them;
//! - `headline`: a run in one line, and the tables of `calibrate` and `repeat`;
//! - `floor_table`: the lines of `kvsim floor`, a run's messages against the floor;
//! - `json`: the JSON report of one or several runs;
//! - `html`: the HTML pages, one per run and an index.
//!
//! What is printed is decided here, from an `Outcome`; what runs and when is the suite's
//! (`suite`). The classic lines keep the classic's wording and order, as tools read them.

mod figures;
pub mod floor_table;
pub mod headline;
pub mod html;
pub mod json;
pub mod summary;
pub mod table;
pub mod warnings;

pub use json::write_json;
pub use summary::summary;
pub use table::{Row, table};
