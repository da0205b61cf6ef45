//! The wire codec: one JSON object per UDP datagram <-> [`Datagram`]. No sockets and no
//! Raft rules: the codec knows nothing of what a message means, the core nothing of JSON.
//!
//! # Wire format
//!
//! Every datagram carries `src`, `dst`, `leader` (four hex characters each, `FFFF` for
//! broadcast / unknown) and `type`. Client traffic is fixed by the protocol (`docs/PROTOCOL.md`):
//!
//! ```text
//! {"src":"0001","dst":"FFFF","leader":"FFFF","type":"hello"}
//! {"src":"0015","dst":"0002","leader":"FFFF","type":"get","MID":"..","key":".."}
//! {"src":"0015","dst":"0002","leader":"FFFF","type":"put","MID":"..","key":"..","value":".."}
//! {..,"type":"ok","MID":".."}            put reply; a get reply adds "value"
//! {..,"type":"fail","MID":".."}          {..,"type":"redirect","MID":".."}
//! ```
//!
//! Replica-to-replica messages are ours to choose; short names keep appends small:
//!
//! ```text
//! {..,"type":"rv","term":N,"lli":N,"llt":N,"pre":B,"ts":N}  lli/llt: last log index/term
//! {..,"type":"rvr","term":N,"granted":B,"pre":B,"ts":N}
//! {..,"type":"ae","term":N,"pli":N,"plt":N,"commit":N,"ts":N,"entries":[[T,"k","v"],[T]]}
//! {..,"type":"aer","term":N,"ok":B,"match":N,"ci":N,"ts":N}  plus "ct":N when known
//! {..,"type":"is","term":N,"lli":N,"llt":N,"off":N,"ts":N,"done":B,"pairs":[["k","v"]]}
//! {..,"type":"isr","term":N,"lli":N,"got":N,"ok":B,"ts":N}
//! ```
//!
//! An entry is `[term,"key","value"]` for a put and `[term]` for a no-op; `ts` is the
//! sender's time echoed back: an append's or a snapshot chunk's `sent_at_us`, a vote
//! request's `round_started_us`. `is` is a chunk of InstallSnapshot: the snapshot of
//! index `lli` and term `llt`, its pairs from position `off` (from 0), `done` on the last
//! chunk; `isr` answers with the pairs held (`got`) or, with `ok`, that it is installed.
//!
//! # Decoding
//!
//! [`Decoder`] parses with simd-json into a reused tape and walks it once: fields in any
//! order, unknown fields ignored, duplicates of known fields rejected, numbers must be
//! integers in `0..=u64::MAX`. Anything else is a [`DecodeError`], never a panic. Strings
//! are borrowed from the datagram (simd-json unescapes in place), so a decode allocates
//! nothing once the decoder's buffers have grown to the largest datagram seen.
//!
//! # Encoding
//!
//! [`encode()`] and [`encode_raft`] write compact JSON into a caller's `Vec<u8>` (cleared
//! first), escaping strings so that any UTF-8 decodes back unchanged. Appends are
//! encoded straight from the leader's log (a `LogSlice`, through [`AsEntryRef`]). To fill a datagram
//! without encoding twice, a leader sums [`APPEND_HEADER_BYTES_MAX`] and
//! [`entry_wire_bytes`] per entry and stops before [`DATAGRAM_BYTES_MAX`]: both are upper
//! bounds, so the result always fits.

mod decode;
mod encode;
mod error;

pub use decode::Decoder;
pub use encode::{encode, encode_raft};
pub use error::DecodeError;

use raft::NodeId;
use raft::{CommandRef, EntryRef, IncomingMessage, Message};

/// The largest UDP payload over IPv4, and the simulator's limit on what a replica sends.
pub const DATAGRAM_BYTES_MAX: usize = 65_507;

/// Decimal digits of `u64::MAX`.
const U64_DIGITS_MAX: usize = 20;

/// An append with every id present, every number at `u64::MAX` width and no entries.
/// `encode::append_entries` writes exactly these pieces (a unit test holds them equal).
const APPEND_HEADER_TEMPLATE: &str = concat!(
    r#"{"src":"XXXX","dst":"XXXX","leader":"XXXX","type":"ae""#,
    r#","term":"#,
    r#","pli":"#,
    r#","plt":"#,
    r#","commit":"#,
    r#","ts":"#,
    r#","ack":false"#,
    r#","entries":[]}"#,
);

/// Upper bound on the bytes of an encoded AppendEntries excluding its entries (header
/// fields, ids, max-width numbers, brackets). Exact for an empty append whose numbers are
/// all `u64::MAX`.
pub const APPEND_HEADER_BYTES_MAX: usize = APPEND_HEADER_TEMPLATE.len() + 5 * U64_DIGITS_MAX;

/// A snapshot chunk with every id present, every number at `u64::MAX` width and no pairs.
/// `encode::install_snapshot` writes exactly these pieces (a unit test holds them equal).
const SNAPSHOT_HEADER_TEMPLATE: &str = concat!(
    r#"{"src":"XXXX","dst":"XXXX","leader":"XXXX","type":"is""#,
    r#","term":"#,
    r#","lli":"#,
    r#","llt":"#,
    r#","off":"#,
    r#","ts":"#,
    r#","done":false"#,
    r#","pairs":[]}"#,
);

/// Upper bound on the bytes of an encoded snapshot chunk excluding its pairs. Each pair
/// adds at most [`entry_wire_bytes`] of a put (it writes no term), so a leader fills
/// chunks as it fills appends.
pub const SNAPSHOT_HEADER_BYTES_MAX: usize = SNAPSHOT_HEADER_TEMPLATE.len() + 5 * U64_DIGITS_MAX;

/// Upper bound on the bytes this entry adds to an encoded append (separator, brackets,
/// term digits, JSON escaping of key/value included). Exact except for the separator,
/// which the first entry does not need. Scans key and value once.
pub fn entry_wire_bytes(entry: EntryRef<'_>) -> usize {
    // `,[` + term + `]`
    let mut bytes = 3 + decimal_digits(entry.term.0);
    match entry.command {
        // `,"key","value"`
        CommandRef::Put { key, value } => {
            bytes += 2 + encode::quoted_len(key) + encode::quoted_len(value);
        }
        // `,"members"`
        CommandRef::Membership(text) => bytes += 1 + encode::quoted_len(text),
        CommandRef::Noop => {}
    }
    bytes
}

fn decimal_digits(n: u64) -> usize {
    // ilog10 of a u64 is at most 19, so the cast is lossless.
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// One datagram, any direction. Strings (and a decoded append's entries) are borrowed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Datagram<'a> {
    pub src: NodeId,
    pub dst: NodeId,
    /// The sender's best knowledge of the leader, [`NodeId::UNKNOWN`] if none.
    pub leader: NodeId,
    pub body: Body<'a>,
}

/// What a datagram says, by its `type`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Body<'a> {
    /// A replica's first datagram, so the simulator learns its port.
    Hello,
    Get {
        mid: &'a str,
        key: &'a str,
    },
    Put {
        mid: &'a str,
        key: &'a str,
        value: &'a str,
    },
    /// `value` is present for get replies (`""` for a never-written key), absent for put
    /// replies.
    Ok {
        mid: &'a str,
        value: Option<&'a str>,
    },
    Fail {
        mid: &'a str,
    },
    Redirect {
        mid: &'a str,
    },
    Raft(IncomingMessage<'a>),
}

impl Body<'_> {
    /// The wire `type` of this body.
    pub fn type_name(&self) -> &'static str {
        match self {
            Body::Hello => wire::HELLO,
            Body::Get { .. } => wire::GET,
            Body::Put { .. } => wire::PUT,
            Body::Ok { .. } => wire::OK,
            Body::Fail { .. } => wire::FAIL,
            Body::Redirect { .. } => wire::REDIRECT,
            Body::Raft(message) => raft_type_name(message),
        }
    }
}

fn raft_type_name<E>(message: &Message<E>) -> &'static str {
    match message {
        Message::RequestVote(_) => wire::RV,
        Message::RequestVoteResponse(_) => wire::RVR,
        Message::AppendEntries(_) => wire::AE,
        Message::AppendEntriesResponse(_) => wire::AER,
        Message::InstallSnapshot(_) => wire::IS,
        Message::InstallSnapshotResponse(_) => wire::ISR,
        Message::TimeoutNow(_) => wire::TN,
    }
}

/// Names on the wire, shared by the encoder and the decoder so they cannot disagree.
mod wire {
    // Values of "type".
    pub const HELLO: &str = "hello";
    pub const GET: &str = "get";
    pub const PUT: &str = "put";
    pub const OK: &str = "ok";
    pub const FAIL: &str = "fail";
    pub const REDIRECT: &str = "redirect";
    pub const RV: &str = "rv";
    pub const RVR: &str = "rvr";
    pub const AE: &str = "ae";
    pub const AER: &str = "aer";
    pub const IS: &str = "is";
    pub const ISR: &str = "isr";
    pub const TN: &str = "timeout_now";
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::Term;

    #[test]
    fn decimal_digits_at_the_edges() {
        assert_eq!(decimal_digits(0), 1);
        assert_eq!(decimal_digits(9), 1);
        assert_eq!(decimal_digits(10), 2);
        assert_eq!(decimal_digits(u64::MAX), U64_DIGITS_MAX);
    }

    #[test]
    fn entry_bound_counts_escapes() {
        let noop = EntryRef {
            term: Term(7),
            command: CommandRef::Noop,
        };
        // ,[7]
        assert_eq!(entry_wire_bytes(noop), 4);
        let put = EntryRef {
            term: Term(12),
            command: CommandRef::Put {
                key: "a\"b",
                value: "\u{1}",
            },
        };
        // ,[12,"a\"b","\u0001"]
        assert_eq!(entry_wire_bytes(put), r#",[12,"a\"b","\u0001"]"#.len());
    }
}
