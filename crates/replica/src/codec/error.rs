//! Why a datagram was rejected. Bad input is a value, never a panic (a panic is for bugs):
//! the event loop counts and drops it.

use std::fmt;

/// A datagram the decoder refused. Field names are the wire names (`"MID"`, `"lli"`, ...).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// Longer than [`DATAGRAM_BYTES_MAX`](super::DATAGRAM_BYTES_MAX).
    TooLarge { bytes: usize },
    /// Not valid UTF-8.
    NotUtf8,
    /// Not one well-formed JSON document (syntax error, truncation, trailing data, nesting
    /// too deep).
    NotJson,
    /// Valid JSON, but the top level is not an object.
    NotObject,
    /// A field the datagram's `type` needs is absent.
    MissingField(&'static str),
    /// A field we know appears twice; rejected rather than guessing which one the sender
    /// meant.
    DuplicateField(&'static str),
    /// A field has the wrong JSON type, or a number that is not an integer in `0..=u64::MAX`.
    BadField(&'static str),
    /// `src`, `dst` or `leader` is not exactly four hexadecimal characters.
    BadId(&'static str),
    /// `type` names no message we know.
    UnknownType,
    /// Entry number `index` (from 0) of an append is neither `[term]` nor
    /// `[term,"key","value"]`.
    BadEntry { index: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge { bytes } => write!(
                f,
                "datagram of {bytes} bytes exceeds {} bytes",
                super::DATAGRAM_BYTES_MAX
            ),
            DecodeError::NotUtf8 => f.write_str("datagram is not UTF-8"),
            DecodeError::NotJson => f.write_str("datagram is not one JSON document"),
            DecodeError::NotObject => f.write_str("datagram is not a JSON object"),
            DecodeError::MissingField(name) => write!(f, "missing field {name:?}"),
            DecodeError::DuplicateField(name) => write!(f, "duplicate field {name:?}"),
            DecodeError::BadField(name) => write!(f, "field {name:?} has the wrong type"),
            DecodeError::BadId(name) => {
                write!(f, "field {name:?} is not four hexadecimal characters")
            }
            DecodeError::UnknownType => f.write_str("unknown message type"),
            DecodeError::BadEntry { index } => write!(f, "append entry {index} is malformed"),
        }
    }
}

impl std::error::Error for DecodeError {}
