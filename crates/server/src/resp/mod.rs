//! RESP2, the Redis protocol: requests parsed in place from a connection's input
//! ([`parse`]), replies appended to its output ([`reply`]).
//!
//! Why our own parser rather than a crate: a server needs only the request side (arrays
//! of bulk strings, and inline commands), parsed incrementally over a read buffer that
//! the connection owns, with every announced length refused beyond a limit before its
//! bytes are waited for. The published RESP crates parse every frame type into owned
//! frames and leave bounds to the caller; the request grammar is a few dozen lines, and
//! total (see the tests and the fuzz target).

pub mod parse;
pub mod reply;

pub use parse::{Limits, ProtocolError, parse_command};
