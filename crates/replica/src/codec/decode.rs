//! JSON -> [`Datagram`], by walking a simd-json tape.
//!
//! Why a tape walk: stage 1 and 2 of simd-json already produce a flat, validated tape
//! whose strings point into the (unescaped in place) datagram, so one pass over it finds
//! every field. A `BorrowedValue` would build a hash map per object, and serde adds a
//! visitor per field; `benches/codec.rs` measures the alternatives.

use std::mem;

use simd_json::{Buffers, ErrorType, Node, StaticNode, Tape};

use super::{Body, DATAGRAM_BYTES_MAX, Datagram, DecodeError, wire};
use raft::NodeId;
use raft::{
    AppendEntries, AppendEntriesResponse, CommandRef, EntryRef, InstallSnapshot,
    InstallSnapshotResponse, LogIndex, Message, RequestVote, RequestVoteResponse, Term, TimeoutNow,
};

/// Decodes datagrams, reusing its parse buffers, tape and entry scratch across calls so
/// that a decode allocates nothing once they have grown to the largest datagram seen.
pub struct Decoder {
    buffers: Buffers,
    /// Always empty between calls: `decode` takes it, fills it, and hands it back reset.
    tape: Tape<'static>,
    /// The entries of the last decoded append. Holds references into the last datagram
    /// (with their lifetime erased) until the next `decode` clears it; never read here
    /// outside `decode`, which clears it first.
    entries: Vec<EntryRef<'static>>,
}

// The lifetime erasure in `Decoder::decode` relies on stale entries never being dropped
// one by one: clearing or dropping the scratch must not touch them.
const _: () = assert!(!mem::needs_drop::<EntryRef<'static>>());

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Decoder {
            // Sized for the largest datagram so even the first big append does not grow
            // the input copy or the string buffer (about 200 KB in all).
            buffers: Buffers::new(DATAGRAM_BYTES_MAX),
            tape: Tape(Vec::with_capacity(64)),
            entries: Vec::with_capacity(16),
        }
    }

    /// Decodes in place (simd-json mutates the buffer); every string borrowed from
    /// `datagram`; entries borrowed from a scratch vec inside self.
    pub fn decode<'a>(&'a mut self, datagram: &'a mut [u8]) -> Result<Datagram<'a>, DecodeError> {
        if datagram.len() > DATAGRAM_BYTES_MAX {
            return Err(DecodeError::TooLarge {
                bytes: datagram.len(),
            });
        }
        self.entries.clear();
        // SAFETY: `EntryRef<'static>` and `EntryRef<'a>` are the same type but for the
        // lifetime, so the layout is the same, and the vector is empty, so it holds no
        // value that outlives its data. Through the returned borrow it only ever holds
        // entries borrowed from `datagram`, which lives for 'a, and `self` stays mutably
        // borrowed for 'a, so nothing reads them as 'static. After 'a the stale entries
        // are never read: the next call clears them first (no drop glue to run) and
        // `Decoder` exposes them nowhere else.
        let entries: &'a mut Vec<EntryRef<'a>> =
            unsafe { &mut *(&raw mut self.entries).cast::<Vec<EntryRef<'a>>>() };
        let mut tape: Tape<'a> = mem::replace(&mut self.tape, Tape(Vec::new()));
        let result = match simd_json::fill_tape(datagram, &mut self.buffers, &mut tape) {
            Ok(()) => read_datagram(&tape.0, entries),
            Err(e) if matches!(e.error(), ErrorType::InvalidUtf8) => Err(DecodeError::NotUtf8),
            Err(_) => Err(DecodeError::NotJson),
        };
        // Everything borrowed from the tape has been copied out; keep its allocation.
        self.tape = tape.reset();
        result
    }
}

/// The fields we know, in the order of [`FIELD_NAMES`].
#[derive(Clone, Copy)]
enum Field {
    Src,
    Dst,
    Leader,
    Type,
    Mid,
    Key,
    Value,
    Term,
    LastLogIndex,
    LastLogTerm,
    PreVote,
    Granted,
    PrevLogIndex,
    PrevLogTerm,
    Commit,
    SentAt,
    Entries,
    Success,
    Match,
    ConflictIndex,
    ConflictTerm,
    AckRequested,
    Offset,
    Done,
    Pairs,
    Received,
    Transfer,
}

const FIELD_COUNT: usize = Field::Transfer as usize + 1;

/// Wire names, indexed by [`Field`]; used for error values.
const FIELD_NAMES: [&str; FIELD_COUNT] = [
    "src", "dst", "leader", "type", "MID", "key", "value", "term", "lli", "llt", "pre", "granted",
    "pli", "plt", "commit", "ts", "entries", "ok", "match", "ci", "ct", "ack", "off", "done",
    "pairs", "got", "xfer",
];

fn field(name: &str) -> Option<Field> {
    Some(match name {
        "src" => Field::Src,
        "dst" => Field::Dst,
        "leader" => Field::Leader,
        "type" => Field::Type,
        "MID" => Field::Mid,
        "key" => Field::Key,
        "value" => Field::Value,
        "term" => Field::Term,
        "lli" => Field::LastLogIndex,
        "llt" => Field::LastLogTerm,
        "pre" => Field::PreVote,
        "granted" => Field::Granted,
        "pli" => Field::PrevLogIndex,
        "plt" => Field::PrevLogTerm,
        "commit" => Field::Commit,
        "ts" => Field::SentAt,
        "entries" => Field::Entries,
        "xfer" => Field::Transfer,
        "ok" => Field::Success,
        "match" => Field::Match,
        "ci" => Field::ConflictIndex,
        "ct" => Field::ConflictTerm,
        "ack" => Field::AckRequested,
        "off" => Field::Offset,
        "done" => Field::Done,
        "pairs" => Field::Pairs,
        "got" => Field::Received,
        _ => return None,
    })
}

/// Where each known field's value sits on the tape; 0 (the root object) means absent.
struct Fields<'t, 'a> {
    tape: &'t [Node<'a>],
    at: [u32; FIELD_COUNT],
}

impl<'a> Fields<'_, 'a> {
    fn get(&self, field: Field) -> Option<Node<'a>> {
        match self.at[field as usize] {
            0 => None,
            i => self.tape.get(i as usize).copied(),
        }
    }

    fn required(&self, field: Field) -> Result<Node<'a>, DecodeError> {
        self.get(field)
            .ok_or(DecodeError::MissingField(FIELD_NAMES[field as usize]))
    }

    fn str(&self, field: Field) -> Result<&'a str, DecodeError> {
        match self.required(field)? {
            Node::String(s) => Ok(s),
            _ => Err(DecodeError::BadField(FIELD_NAMES[field as usize])),
        }
    }

    fn optional_str(&self, field: Field) -> Result<Option<&'a str>, DecodeError> {
        match self.get(field) {
            None => Ok(None),
            Some(Node::String(s)) => Ok(Some(s)),
            Some(_) => Err(DecodeError::BadField(FIELD_NAMES[field as usize])),
        }
    }

    fn id(&self, field: Field) -> Result<NodeId, DecodeError> {
        match self.required(field)? {
            Node::String(s) => {
                NodeId::parse(s).ok_or(DecodeError::BadId(FIELD_NAMES[field as usize]))
            }
            _ => Err(DecodeError::BadId(FIELD_NAMES[field as usize])),
        }
    }

    fn u64(&self, field: Field) -> Result<u64, DecodeError> {
        u64_of(self.required(field)?).ok_or(DecodeError::BadField(FIELD_NAMES[field as usize]))
    }

    fn optional_u64(&self, field: Field) -> Result<Option<u64>, DecodeError> {
        match self.get(field) {
            None => Ok(None),
            Some(node) => u64_of(node)
                .map(Some)
                .ok_or(DecodeError::BadField(FIELD_NAMES[field as usize])),
        }
    }

    fn bool(&self, field: Field) -> Result<bool, DecodeError> {
        match self.required(field)? {
            Node::Static(StaticNode::Bool(b)) => Ok(b),
            _ => Err(DecodeError::BadField(FIELD_NAMES[field as usize])),
        }
    }

    /// Where on the tape the array in `field` starts, and its length.
    fn array(&self, field: Field) -> Result<(usize, usize), DecodeError> {
        match self.required(field)? {
            Node::Array { len, .. } => Ok((self.at[field as usize] as usize, len)),
            _ => Err(DecodeError::BadField(FIELD_NAMES[field as usize])),
        }
    }

    fn term(&self, field: Field) -> Result<Term, DecodeError> {
        self.u64(field).map(Term)
    }

    fn index(&self, field: Field) -> Result<LogIndex, DecodeError> {
        self.u64(field).map(LogIndex)
    }
}

/// A JSON number that is an integer in `0..=u64::MAX`. simd-json gives non-negative
/// integers as `U64` (and `-0` as `I64(0)`); floats and negatives are refused.
fn u64_of(node: Node<'_>) -> Option<u64> {
    match node {
        Node::Static(StaticNode::U64(n)) => Some(n),
        Node::Static(StaticNode::I64(n)) => u64::try_from(n).ok(),
        _ => None,
    }
}

/// How many tape nodes the value at the front of `node` spans.
fn width(node: Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        Node::String(_) | Node::Static(_) => 1,
    }
}

/// simd-json validated the tape's shape; this is only reached if that is violated.
fn malformed_tape() -> DecodeError {
    DecodeError::NotJson
}

fn read_datagram<'a>(
    tape: &[Node<'a>],
    entries: &'a mut Vec<EntryRef<'a>>,
) -> Result<Datagram<'a>, DecodeError> {
    let Some(&Node::Object { len, .. }) = tape.first() else {
        return Err(DecodeError::NotObject);
    };
    let mut fields = Fields {
        tape,
        at: [0; FIELD_COUNT],
    };
    let mut pos = 1;
    for _ in 0..len {
        let Some(&Node::String(name)) = tape.get(pos) else {
            return Err(malformed_tape());
        };
        let value = pos + 1;
        let node = *tape.get(value).ok_or_else(malformed_tape)?;
        if let Some(field) = field(name) {
            let slot = &mut fields.at[field as usize];
            if *slot != 0 {
                return Err(DecodeError::DuplicateField(FIELD_NAMES[field as usize]));
            }
            // A datagram is at most 65,507 bytes, so tape positions fit in u32.
            *slot = u32::try_from(value).map_err(|_| malformed_tape())?;
        }
        pos = value + width(node);
    }

    let src = fields.id(Field::Src)?;
    let dst = fields.id(Field::Dst)?;
    let leader = fields.id(Field::Leader)?;
    let body = match fields.str(Field::Type)? {
        wire::HELLO => Body::Hello,
        wire::GET => Body::Get {
            mid: fields.str(Field::Mid)?,
            key: fields.str(Field::Key)?,
        },
        wire::PUT => Body::Put {
            mid: fields.str(Field::Mid)?,
            key: fields.str(Field::Key)?,
            value: fields.str(Field::Value)?,
        },
        wire::OK => Body::Ok {
            mid: fields.str(Field::Mid)?,
            value: fields.optional_str(Field::Value)?,
        },
        wire::FAIL => Body::Fail {
            mid: fields.str(Field::Mid)?,
        },
        wire::REDIRECT => Body::Redirect {
            mid: fields.str(Field::Mid)?,
        },
        wire::RV => Body::Raft(Message::RequestVote(RequestVote {
            term: fields.term(Field::Term)?,
            last_log_index: fields.index(Field::LastLogIndex)?,
            last_log_term: fields.term(Field::LastLogTerm)?,
            pre_vote: fields.bool(Field::PreVote)?,
            round_started_us: fields.u64(Field::SentAt)?,
            // Sent only when true, so that classic vote requests stay as they were.
            transfer: match fields.get(Field::Transfer) {
                None => false,
                Some(_) => fields.bool(Field::Transfer)?,
            },
        })),
        wire::TN => Body::Raft(Message::TimeoutNow(TimeoutNow {
            term: fields.term(Field::Term)?,
        })),
        wire::RVR => Body::Raft(Message::RequestVoteResponse(RequestVoteResponse {
            term: fields.term(Field::Term)?,
            vote_granted: fields.bool(Field::Granted)?,
            pre_vote: fields.bool(Field::PreVote)?,
            round_started_us: fields.u64(Field::SentAt)?,
        })),
        wire::AE => {
            let term = fields.term(Field::Term)?;
            let prev_log_index = fields.index(Field::PrevLogIndex)?;
            let prev_log_term = fields.term(Field::PrevLogTerm)?;
            let leader_commit = fields.index(Field::Commit)?;
            let sent_at_us = fields.u64(Field::SentAt)?;
            // Absent means "answer": only the leader's explicit `false` spares the answer.
            let ack_requested = match fields.get(Field::AckRequested) {
                None => true,
                Some(_) => fields.bool(Field::AckRequested)?,
            };
            let (at, len) = fields.array(Field::Entries)?;
            read_entries(tape, at, len, entries)?;
            Body::Raft(Message::AppendEntries(AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                leader_commit,
                sent_at_us,
                ack_requested,
                entries: entries.as_slice(),
            }))
        }
        wire::AER => Body::Raft(Message::AppendEntriesResponse(AppendEntriesResponse {
            term: fields.term(Field::Term)?,
            success: fields.bool(Field::Success)?,
            match_index: fields.index(Field::Match)?,
            conflict_index: fields.index(Field::ConflictIndex)?,
            conflict_term: fields.optional_u64(Field::ConflictTerm)?.map(Term),
            sent_at_us: fields.u64(Field::SentAt)?,
        })),
        wire::IS => {
            let term = fields.term(Field::Term)?;
            let last_index = fields.index(Field::LastLogIndex)?;
            let last_term = fields.term(Field::LastLogTerm)?;
            let offset = fields.u64(Field::Offset)?;
            let sent_at_us = fields.u64(Field::SentAt)?;
            let done = fields.bool(Field::Done)?;
            let (at, len) = fields.array(Field::Pairs)?;
            read_pairs(tape, at, len, entries)?;
            Body::Raft(Message::InstallSnapshot(InstallSnapshot {
                term,
                last_index,
                last_term,
                offset,
                done,
                sent_at_us,
                pairs: entries.as_slice(),
            }))
        }
        wire::ISR => Body::Raft(Message::InstallSnapshotResponse(InstallSnapshotResponse {
            term: fields.term(Field::Term)?,
            last_index: fields.index(Field::LastLogIndex)?,
            received: fields.u64(Field::Received)?,
            installed: fields.bool(Field::Success)?,
            sent_at_us: fields.u64(Field::SentAt)?,
        })),
        _ => return Err(DecodeError::UnknownType),
    };
    Ok(Datagram {
        src,
        dst,
        leader,
        body,
    })
}

/// Reads the `len` entries of the array at tape position `at` into `entries`: each is
/// `[term]` (a no-op), `[term,"key","value"]` (a put) or `[term,"members"]` (a
/// membership).
fn read_entries<'a>(
    tape: &[Node<'a>],
    at: usize,
    len: usize,
    entries: &mut Vec<EntryRef<'a>>,
) -> Result<(), DecodeError> {
    entries.reserve(len);
    let mut pos = at + 1;
    for index in 0..len {
        let bad = DecodeError::BadEntry { index };
        let Some(&Node::Array { len: parts, .. }) = tape.get(pos) else {
            return Err(bad);
        };
        let term = tape.get(pos + 1).and_then(|&n| u64_of(n)).ok_or(bad)?;
        let command = match parts {
            1 => CommandRef::Noop,
            2 => match tape.get(pos + 2) {
                Some(&Node::String(text)) => CommandRef::Membership(text),
                _ => return Err(bad),
            },
            3 => match (tape.get(pos + 2), tape.get(pos + 3)) {
                (Some(&Node::String(key)), Some(&Node::String(value))) => {
                    CommandRef::Put { key, value }
                }
                _ => return Err(bad),
            },
            _ => return Err(bad),
        };
        entries.push(EntryRef {
            term: Term(term),
            command,
        });
        // Every part was checked to be a scalar, so the entry spans 1 + parts nodes.
        pos += 1 + parts;
    }
    Ok(())
}

/// Reads the `len` pairs of the array at tape position `at` into `entries`, as puts of
/// term 0: each is `["key","value"]`, or `["members"]` for a membership.
fn read_pairs<'a>(
    tape: &[Node<'a>],
    at: usize,
    len: usize,
    entries: &mut Vec<EntryRef<'a>>,
) -> Result<(), DecodeError> {
    entries.reserve(len);
    let mut pos = at + 1;
    for index in 0..len {
        let bad = DecodeError::BadEntry { index };
        if let (Some(&Node::Array { len: 1, .. }), Some(&Node::String(text))) =
            (tape.get(pos), tape.get(pos + 1))
        {
            entries.push(EntryRef {
                term: Term(0),
                command: CommandRef::Membership(text),
            });
            pos += 2;
            continue;
        }
        let (
            Some(&Node::Array { len: 2, .. }),
            Some(&Node::String(key)),
            Some(&Node::String(value)),
        ) = (tape.get(pos), tape.get(pos + 1), tape.get(pos + 2))
        else {
            return Err(bad);
        };
        entries.push(EntryRef {
            term: Term(0),
            command: CommandRef::Put { key, value },
        });
        pos += 3;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &str) -> Result<String, DecodeError> {
        let mut decoder = Decoder::new();
        let mut bytes = text.as_bytes().to_vec();
        decoder.decode(&mut bytes).map(|d| format!("{d:?}"))
    }

    #[test]
    fn every_field_name_maps_to_its_field() {
        for (i, name) in FIELD_NAMES.iter().enumerate() {
            assert_eq!(field(name).map(|f| f as usize), Some(i), "{name}");
        }
        assert!(field("Mid").is_none());
    }

    #[test]
    fn reads_fields_in_any_order_and_skips_unknown_ones() {
        let text = r#"{"key":"k","x":{"a":[1,{"b":[]}]},"MID":"m","type":"get",
            "leader":"ffff","y":[[1,"a","b"]],"dst":"0002","src":"001c"}"#;
        let mut decoder = Decoder::new();
        let mut bytes = text.as_bytes().to_vec();
        let d = decoder.decode(&mut bytes).unwrap();
        assert_eq!(
            d,
            Datagram {
                src: NodeId(0x1c),
                dst: NodeId(2),
                leader: NodeId::UNKNOWN,
                body: Body::Get { mid: "m", key: "k" },
            }
        );
    }

    #[test]
    fn ack_is_optional_true_by_default_and_must_be_a_bool() {
        let ack_of = |extra: &str| {
            let text = format!(
                r#"{{"src":"0000","dst":"0001","leader":"0000","type":"ae","term":3,"pli":0,"plt":0,"commit":0,"ts":1{extra},"entries":[]}}"#
            );
            let mut decoder = Decoder::new();
            let mut bytes = text.into_bytes();
            match decoder.decode(&mut bytes) {
                Ok(Datagram {
                    body: Body::Raft(Message::AppendEntries(ae)),
                    ..
                }) => Ok(ae.ack_requested),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            }
        };
        assert_eq!(ack_of(""), Ok(true));
        assert_eq!(ack_of(r#","ack":false"#), Ok(false));
        assert_eq!(ack_of(r#","ack":true"#), Ok(true));
        assert_eq!(ack_of(r#","ack":0"#), Err(DecodeError::BadField("ack")));
    }

    #[test]
    fn reads_entries_and_unescapes_strings() {
        let text = r#"{"src":"0000","dst":"0001","leader":"0000","type":"ae","term":3,
            "pli":4,"plt":2,"commit":1,"ts":99,"entries":[[2],[3,"k\"\n","\u00e9"]]}"#;
        let mut decoder = Decoder::new();
        let mut bytes = text.as_bytes().to_vec();
        let d = decoder.decode(&mut bytes).unwrap();
        let Body::Raft(Message::AppendEntries(ae)) = d.body else {
            panic!("{d:?}")
        };
        assert_eq!(ae.sent_at_us, 99);
        assert_eq!(
            ae.entries,
            &[
                EntryRef {
                    term: Term(2),
                    command: CommandRef::Noop
                },
                EntryRef {
                    term: Term(3),
                    command: CommandRef::Put {
                        key: "k\"\n",
                        value: "é"
                    }
                }
            ]
        );
    }

    #[test]
    fn refuses_bad_numbers_and_entries() {
        let head = r#"{"src":"0000","dst":"0001","leader":"0000","type":"ae","#;
        let cases = [
            (r#""term":-1"#, DecodeError::BadField("term")),
            (r#""term":1.0"#, DecodeError::BadField("term")),
            (r#""term":1e2"#, DecodeError::BadField("term")),
            (r#""term":"1""#, DecodeError::BadField("term")),
            (r#""term":18446744073709551616"#, DecodeError::NotJson),
        ];
        for (term, want) in cases {
            let text = format!(r#"{head}{term},"pli":0,"plt":0,"commit":0,"ts":0,"entries":[]}}"#);
            assert_eq!(decode(&text), Err(want), "{text}");
        }
        let entries = [
            (r#"[[1],[]]"#, DecodeError::BadEntry { index: 1 }),
            // `[1,"k"]` is a membership entry now; one whose text is not a string is not.
            (r#"[[1,2]]"#, DecodeError::BadEntry { index: 0 }),
            (r#"[[1,"k",2]]"#, DecodeError::BadEntry { index: 0 }),
            (r#"[[1,"k","v","w"]]"#, DecodeError::BadEntry { index: 0 }),
            (r#"[[[1]]]"#, DecodeError::BadEntry { index: 0 }),
            (r#"[[-1]]"#, DecodeError::BadEntry { index: 0 }),
            (r#"[1]"#, DecodeError::BadEntry { index: 0 }),
            (r#"{}"#, DecodeError::BadField("entries")),
        ];
        for (list, want) in entries {
            let text =
                format!(r#"{head}"term":1,"pli":0,"plt":0,"commit":0,"ts":0,"entries":{list}}}"#);
            assert_eq!(decode(&text), Err(want), "{text}");
        }
    }

    #[test]
    fn reads_what_python_json_dumps_writes() {
        // The classic simulator writes `json.dumps` output: spaces after separators and
        // non-ASCII as \u escapes, astral characters as surrogate pairs.
        let text = r#"{"src": "0015", "dst": "0002", "leader": "FFFF", "type": "put",
            "MID": "4GAZ", "key": "caf\u00e9", "value": "\ud83d\ude00"}"#;
        let mut decoder = Decoder::new();
        let mut bytes = text.as_bytes().to_vec();
        assert_eq!(
            decoder.decode(&mut bytes).map(|d| d.body),
            Ok(Body::Put {
                mid: "4GAZ",
                key: "café",
                value: "😀"
            })
        );
    }

    #[test]
    fn refuses_lone_surrogates() {
        for escape in [r"\ud800", r"\ude00", r"\ud800x", r"\ud800\u0041"] {
            let text = format!(
                r#"{{"src":"0015","dst":"0002","leader":"FFFF","type":"fail","MID":"{escape}"}}"#
            );
            assert_eq!(decode(&text), Err(DecodeError::NotJson), "{text}");
        }
    }

    #[test]
    fn refuses_duplicates_and_trailing_data() {
        assert_eq!(
            decode(r#"{"src":"0000","src":"0000","dst":"0001","leader":"0000","type":"hello"}"#),
            Err(DecodeError::DuplicateField("src"))
        );
        assert_eq!(
            decode(r#"{"src":"0000","dst":"0001","leader":"0000","type":"hello"} x"#),
            Err(DecodeError::NotJson)
        );
        assert!(
            decode(" {\"src\":\"0000\",\"dst\":\"0001\",\"leader\":\"0000\",\"type\":\"hello\"}\n")
                .is_ok()
        );
    }
}
