//! Datagram -> compact JSON. Writes straight into the caller's buffer: no allocation once
//! it has grown to the largest datagram sent.

use super::{Body, Datagram, raft_type_name};
use raft::NodeId;
use raft::{
    AppendEntries, AppendEntriesResponse, AsEntryRef, CommandRef, InstallSnapshot,
    InstallSnapshotResponse, Message, RequestVote, RequestVoteResponse,
};

/// Clears `out`, writes the datagram. No heap allocation when `out` has capacity.
pub fn encode(out: &mut Vec<u8>, datagram: &Datagram<'_>) {
    let (src, dst, leader) = (datagram.src, datagram.dst, datagram.leader);
    let mid = match datagram.body {
        Body::Raft(ref message) => return encode_raft(out, src, dst, leader, message),
        Body::Hello => None,
        Body::Get { mid, .. }
        | Body::Put { mid, .. }
        | Body::Ok { mid, .. }
        | Body::Fail { mid }
        | Body::Redirect { mid } => Some(mid),
    };
    header(out, src, dst, leader, datagram.body.type_name());
    if let Some(mid) = mid {
        out.extend_from_slice(br#","MID":"#);
        string(out, mid);
    }
    match datagram.body {
        Body::Get { key, .. } => {
            out.extend_from_slice(br#","key":"#);
            string(out, key);
        }
        Body::Put { key, value, .. } => {
            out.extend_from_slice(br#","key":"#);
            string(out, key);
            out.extend_from_slice(br#","value":"#);
            string(out, value);
        }
        Body::Ok {
            value: Some(value), ..
        } => {
            out.extend_from_slice(br#","value":"#);
            string(out, value);
        }
        _ => {}
    }
    out.push(b'}');
}

/// Same for a Raft message whose entries are anything that iterates over entries: a
/// `LogSlice` of the leader's log (read in place, nothing copied), decoded `&[EntryRef]`,
/// owned `&[Entry]`.
pub fn encode_raft<E>(
    out: &mut Vec<u8>,
    src: NodeId,
    dst: NodeId,
    leader: NodeId,
    message: &Message<E>,
) where
    E: IntoIterator + Copy,
    E::Item: AsEntryRef,
{
    header(out, src, dst, leader, raft_type_name(message));
    match message {
        Message::RequestVote(m) => request_vote(out, m),
        Message::RequestVoteResponse(m) => request_vote_response(out, m),
        Message::AppendEntries(m) => append_entries(out, m),
        Message::AppendEntriesResponse(m) => append_entries_response(out, m),
        Message::InstallSnapshot(m) => install_snapshot(out, m),
        Message::InstallSnapshotResponse(m) => install_snapshot_response(out, m),
        Message::TimeoutNow(m) => number(out, br#","term":"#, m.term.0),
    }
    out.push(b'}');
}

fn request_vote(out: &mut Vec<u8>, m: &RequestVote) {
    number(out, br#","term":"#, m.term.0);
    number(out, br#","lli":"#, m.last_log_index.0);
    number(out, br#","llt":"#, m.last_log_term.0);
    boolean(out, br#","pre":"#, m.pre_vote);
    number(out, br#","ts":"#, m.round_started_us);
    if m.transfer {
        boolean(out, br#","xfer":"#, true);
    }
}

fn request_vote_response(out: &mut Vec<u8>, m: &RequestVoteResponse) {
    number(out, br#","term":"#, m.term.0);
    boolean(out, br#","granted":"#, m.vote_granted);
    boolean(out, br#","pre":"#, m.pre_vote);
    number(out, br#","ts":"#, m.round_started_us);
}

/// Keep in step with `APPEND_HEADER_TEMPLATE` in `mod.rs`.
fn append_entries<E>(out: &mut Vec<u8>, m: &AppendEntries<E>)
where
    E: IntoIterator + Copy,
    E::Item: AsEntryRef,
{
    number(out, br#","term":"#, m.term.0);
    number(out, br#","pli":"#, m.prev_log_index.0);
    number(out, br#","plt":"#, m.prev_log_term.0);
    number(out, br#","commit":"#, m.leader_commit.0);
    number(out, br#","ts":"#, m.sent_at_us);
    if !m.ack_requested {
        out.extend_from_slice(br#","ack":false"#);
    }
    out.extend_from_slice(br#","entries":["#);
    for (i, entry) in m.entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let entry = entry.as_entry_ref();
        out.push(b'[');
        out.extend_from_slice(itoa::Buffer::new().format(entry.term.0).as_bytes());
        match entry.command {
            CommandRef::Put { key, value } => {
                out.push(b',');
                string(out, key);
                out.push(b',');
                string(out, value);
            }
            CommandRef::Membership(text) => {
                out.push(b',');
                string(out, text);
            }
            CommandRef::Noop => {}
        }
        out.push(b']');
    }
    out.push(b']');
}

fn append_entries_response(out: &mut Vec<u8>, m: &AppendEntriesResponse) {
    number(out, br#","term":"#, m.term.0);
    boolean(out, br#","ok":"#, m.success);
    number(out, br#","match":"#, m.match_index.0);
    number(out, br#","ci":"#, m.conflict_index.0);
    number(out, br#","ts":"#, m.sent_at_us);
    if let Some(term) = m.conflict_term {
        number(out, br#","ct":"#, term.0);
    }
}

/// Keep in step with `SNAPSHOT_HEADER_TEMPLATE` in `mod.rs`. A pair is written as
/// `["key","value"]`: a put entry without its term (a snapshot's pairs have none); the
/// membership a snapshot may begin with as `["members"]`.
fn install_snapshot<E>(out: &mut Vec<u8>, m: &InstallSnapshot<E>)
where
    E: IntoIterator + Copy,
    E::Item: AsEntryRef,
{
    number(out, br#","term":"#, m.term.0);
    number(out, br#","lli":"#, m.last_index.0);
    number(out, br#","llt":"#, m.last_term.0);
    number(out, br#","off":"#, m.offset);
    number(out, br#","ts":"#, m.sent_at_us);
    boolean(out, br#","done":"#, m.done);
    out.extend_from_slice(br#","pairs":["#);
    let mut first = true;
    for pair in m.pairs {
        // Only puts and a membership are pairs (the core sends nothing else, `validate`
        // refuses anything else), so a no-op has nothing to write.
        let strings: &[&str] = match pair.as_entry_ref().command {
            CommandRef::Put { key, value } => &[key, value],
            CommandRef::Membership(text) => &[text],
            CommandRef::Noop => continue,
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'[');
        for (i, s) in strings.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, s);
        }
        out.push(b']');
    }
    out.push(b']');
}

fn install_snapshot_response(out: &mut Vec<u8>, m: &InstallSnapshotResponse) {
    number(out, br#","term":"#, m.term.0);
    number(out, br#","lli":"#, m.last_index.0);
    number(out, br#","got":"#, m.received);
    boolean(out, br#","ok":"#, m.installed);
    number(out, br#","ts":"#, m.sent_at_us);
}

/// Clears `out` and writes `{"src":..,"dst":..,"leader":..,"type":".."`.
fn header(out: &mut Vec<u8>, src: NodeId, dst: NodeId, leader: NodeId, type_name: &str) {
    out.clear();
    out.extend_from_slice(br#"{"src":""#);
    out.extend_from_slice(&src.to_hex());
    out.extend_from_slice(br#"","dst":""#);
    out.extend_from_slice(&dst.to_hex());
    out.extend_from_slice(br#"","leader":""#);
    out.extend_from_slice(&leader.to_hex());
    out.extend_from_slice(br#"","type":""#);
    // Type names are plain ASCII letters: nothing to escape.
    out.extend_from_slice(type_name.as_bytes());
    out.push(b'"');
}

fn number(out: &mut Vec<u8>, key: &[u8], n: u64) {
    out.extend_from_slice(key);
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn boolean(out: &mut Vec<u8>, key: &[u8], b: bool) {
    out.extend_from_slice(key);
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// What a byte becomes inside a JSON string: 0 = itself, `u` = `\u00XX`, anything else =
/// a backslash and that letter. RFC 8259 §7 requires escaping `"`, `\` and U+0000..U+001F;
/// every other byte, multi-byte UTF-8 included, goes through unchanged.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b'u';
        b += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Whether any byte of `bytes` needs escaping. Keys and values almost never do, so this is
/// the common path: it checks 16 bytes at a time without an early exit inside a chunk,
/// which the compiler turns into SIMD compares.
fn any_needs_escape(bytes: &[u8]) -> bool {
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |any, &b| any | needs_escape(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| needs_escape(b))
}

/// Writes `s` as a quoted JSON string.
fn string(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    if any_needs_escape(bytes) {
        escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

#[cold]
fn escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape = ESCAPE[usize::from(b)];
        if escape == 0 {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        if escape == b'u' {
            let hex = [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xF)]];
            out.extend_from_slice(b"\\u00");
            out.extend_from_slice(&hex);
        } else {
            out.extend_from_slice(&[b'\\', escape]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// The exact number of bytes [`string`] writes for `s`, quotes included.
pub(super) fn quoted_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    if !any_needs_escape(bytes) {
        return 2 + bytes.len();
    }
    let extra: usize = bytes
        .iter()
        .map(|&b| match ESCAPE[usize::from(b)] {
            0 => 0,
            b'u' => 5,
            _ => 1,
        })
        .sum();
    2 + bytes.len() + extra
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{EntryRef, LogIndex, Term};

    fn quoted(s: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escapes_what_json_requires_and_nothing_else() {
        assert_eq!(quoted("plain"), r#""plain""#);
        assert_eq!(quoted("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(quoted("\n\r\t\u{8}\u{c}"), r#""\n\r\t\b\f""#);
        assert_eq!(quoted("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(quoted("é☃😀"), "\"é☃😀\"");
    }

    #[test]
    fn the_fast_check_agrees_with_the_table() {
        for b in 0..=255u8 {
            assert_eq!(needs_escape(b), ESCAPE[usize::from(b)] != 0, "{b:#x}");
        }
        // Escapes in each position of a chunk and of the remainder.
        for len in 0..40 {
            for at in 0..len {
                let mut bytes = vec![b'a'; len];
                bytes[at] = b'"';
                assert!(any_needs_escape(&bytes), "len {len} at {at}");
            }
            assert!(!any_needs_escape(&vec![b'a'; len]));
        }
    }

    #[test]
    fn quoted_len_matches_what_is_written() {
        for s in [
            "",
            "x",
            "\"",
            "\\",
            "\u{0}",
            "\n",
            "é☃😀",
            "a\u{1}b\"c\\d\te",
        ] {
            assert_eq!(quoted_len(s), quoted(s).len(), "{s:?}");
        }
    }

    #[test]
    fn writes_the_client_protocol_exactly() {
        let mut out = Vec::new();
        encode(
            &mut out,
            &Datagram {
                src: NodeId(1),
                dst: NodeId::BROADCAST,
                leader: NodeId::UNKNOWN,
                body: Body::Hello,
            },
        );
        assert_eq!(
            out,
            br#"{"src":"0001","dst":"FFFF","leader":"FFFF","type":"hello"}"#
        );
        encode(
            &mut out,
            &Datagram {
                src: NodeId(2),
                dst: NodeId(0x1c),
                leader: NodeId(2),
                body: Body::Ok {
                    mid: "M1",
                    value: Some(""),
                },
            },
        );
        assert_eq!(
            out,
            br#"{"src":"0002","dst":"001C","leader":"0002","type":"ok","MID":"M1","value":""}"#
        );
    }

    #[test]
    fn empty_max_width_append_is_exactly_the_header_bound() {
        let mut out = Vec::new();
        let entries: &[EntryRef<'_>] = &[];
        let message = Message::AppendEntries(AppendEntries {
            term: Term(u64::MAX),
            prev_log_index: LogIndex(u64::MAX),
            prev_log_term: Term(u64::MAX),
            leader_commit: LogIndex(u64::MAX),
            sent_at_us: u64::MAX,
            ack_requested: false,
            entries,
        });
        encode_raft(&mut out, NodeId(0), NodeId(1), NodeId(0), &message);
        assert_eq!(out.len(), super::super::APPEND_HEADER_BYTES_MAX);
    }

    #[test]
    fn empty_max_width_snapshot_chunk_is_exactly_the_header_bound() {
        let mut out = Vec::new();
        let pairs: &[EntryRef<'_>] = &[];
        let message = Message::InstallSnapshot(InstallSnapshot {
            term: Term(u64::MAX),
            last_index: LogIndex(u64::MAX),
            last_term: Term(u64::MAX),
            offset: u64::MAX,
            done: false,
            sent_at_us: u64::MAX,
            pairs,
        });
        encode_raft(&mut out, NodeId(0), NodeId(1), NodeId(0), &message);
        assert_eq!(out.len(), super::super::SNAPSHOT_HEADER_BYTES_MAX);
    }
}
