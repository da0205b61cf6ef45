//! Round trips: any datagram we can encode decodes back to itself, the append size bounds
//! are true upper bounds, and a warm decoder/encoder does not allocate.

use proptest::prelude::*;
use raft::NodeId;
use raft::{
    AppendEntries, AppendEntriesResponse, AsEntryRef, Command, Entry, EntryRef, EntrySpan,
    InstallSnapshot, InstallSnapshotResponse, Log, LogIndex, Message, RequestVote,
    RequestVoteResponse, Term, TimeoutNow,
};
use replica::codec::{
    APPEND_HEADER_BYTES_MAX, Body, DATAGRAM_BYTES_MAX, Datagram, DecodeError, Decoder,
    SNAPSHOT_HEADER_BYTES_MAX, encode, encode_raft, entry_wire_bytes,
};

// ---------------------------------------------------------------------------------------
// Owned datagrams, so proptest can generate and shrink them; `view` borrows them back.

#[derive(Clone, Debug)]
enum OwnedBody {
    Hello,
    Get(String, String),
    Put(String, String, String),
    Ok(String, Option<String>),
    Fail(String),
    Redirect(String),
    RequestVote(RequestVote),
    RequestVoteResponse(RequestVoteResponse),
    AppendEntries(AppendEntries<()>, Vec<Entry>),
    AppendEntriesResponse(AppendEntriesResponse),
    /// Pairs are puts of term 0, as a snapshot's are.
    InstallSnapshot(InstallSnapshot<()>, Vec<Entry>),
    InstallSnapshotResponse(InstallSnapshotResponse),
    TimeoutNow(TimeoutNow),
}

#[derive(Clone, Debug)]
struct Owned {
    src: NodeId,
    dst: NodeId,
    leader: NodeId,
    body: OwnedBody,
}

impl Owned {
    /// The borrowed datagram; `scratch` holds the entries as `EntryRef`s.
    fn view<'a>(&'a self, scratch: &'a mut Vec<EntryRef<'a>>) -> Datagram<'a> {
        let body = match &self.body {
            OwnedBody::Hello => Body::Hello,
            OwnedBody::Get(mid, key) => Body::Get { mid, key },
            OwnedBody::Put(mid, key, value) => Body::Put { mid, key, value },
            OwnedBody::Ok(mid, value) => Body::Ok {
                mid,
                value: value.as_deref(),
            },
            OwnedBody::Fail(mid) => Body::Fail { mid },
            OwnedBody::Redirect(mid) => Body::Redirect { mid },
            OwnedBody::RequestVote(m) => Body::Raft(Message::RequestVote(*m)),
            OwnedBody::TimeoutNow(m) => Body::Raft(Message::TimeoutNow(*m)),
            OwnedBody::RequestVoteResponse(m) => Body::Raft(Message::RequestVoteResponse(*m)),
            OwnedBody::AppendEntriesResponse(m) => Body::Raft(Message::AppendEntriesResponse(*m)),
            OwnedBody::AppendEntries(m, entries) => {
                scratch.extend(entries.iter().map(AsEntryRef::as_entry_ref));
                Body::Raft(Message::AppendEntries(m.with_entries(scratch.as_slice())))
            }
            OwnedBody::InstallSnapshot(m, pairs) => {
                scratch.extend(pairs.iter().map(AsEntryRef::as_entry_ref));
                Body::Raft(Message::InstallSnapshot(m.with_pairs(scratch.as_slice())))
            }
            OwnedBody::InstallSnapshotResponse(m) => {
                Body::Raft(Message::InstallSnapshotResponse(*m))
            }
        };
        Datagram {
            src: self.src,
            dst: self.dst,
            leader: self.leader,
            body,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Strategies.

/// Characters that stress the escaper and the unescaper, mixed with any char at all.
fn text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1f}', '\u{7f}', 'é', '☃',
        '😀', '\u{2028}', 'u', '{', '}', '[', ']', ',', ':',
    ]);
    let ch = prop_oneof![any::<char>(), special, prop::char::range('a', 'z')];
    prop::collection::vec(ch, 0..24).prop_map(|chars| chars.into_iter().collect())
}

fn node_id() -> impl Strategy<Value = NodeId> {
    prop_oneof![
        any::<u16>().prop_map(NodeId),
        Just(NodeId::BROADCAST),
        (0u16..32).prop_map(NodeId),
    ]
}

/// Numbers near both ends, where digit counts and parsing change.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..1000,
        (u64::MAX - 1000)..=u64::MAX,
        Just(i64::MAX as u64),
        Just(i64::MAX as u64 + 1),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let command = prop_oneof![
        Just(Command::Noop),
        (text(), text()).prop_map(|(key, value)| Command::Put {
            key: key.into(),
            value: value.into()
        }),
        text().prop_map(|text| Command::Membership(text.into())),
    ];
    (number(), command).prop_map(|(term, command)| Entry {
        term: Term(term),
        command,
    })
}

fn pair() -> impl Strategy<Value = Entry> {
    (text(), text(), any::<u8>()).prop_map(|(key, value, kind)| Entry {
        term: Term(0),
        // A membership among the pairs now and then (the codec does not care where).
        command: if kind < 16 {
            Command::Membership(key.into())
        } else {
            Command::Put {
                key: key.into(),
                value: value.into(),
            }
        },
    })
}

fn snapshot_body() -> impl Strategy<Value = OwnedBody> {
    prop_oneof![
        (
            (
                number(),
                number(),
                number(),
                number(),
                any::<bool>(),
                number()
            ),
            prop::collection::vec(pair(), 0..200)
        )
            .prop_map(|((t, lli, llt, off, done, ts), pairs)| {
                OwnedBody::InstallSnapshot(
                    InstallSnapshot {
                        term: Term(t),
                        last_index: LogIndex(lli),
                        last_term: Term(llt),
                        offset: off,
                        done,
                        sent_at_us: ts,
                        pairs: (),
                    },
                    pairs,
                )
            }),
        (number(), number(), number(), any::<bool>(), number()).prop_map(
            |(t, lli, got, installed, ts)| {
                OwnedBody::InstallSnapshotResponse(InstallSnapshotResponse {
                    term: Term(t),
                    last_index: LogIndex(lli),
                    received: got,
                    installed,
                    sent_at_us: ts,
                })
            }
        ),
    ]
}

fn body() -> impl Strategy<Value = OwnedBody> {
    prop_oneof![
        Just(OwnedBody::Hello),
        (text(), text()).prop_map(|(m, k)| OwnedBody::Get(m, k)),
        (text(), text(), text()).prop_map(|(m, k, v)| OwnedBody::Put(m, k, v)),
        (text(), prop::option::of(text())).prop_map(|(m, v)| OwnedBody::Ok(m, v)),
        text().prop_map(OwnedBody::Fail),
        text().prop_map(OwnedBody::Redirect),
        (
            number(),
            number(),
            number(),
            any::<bool>(),
            number(),
            any::<bool>()
        )
            .prop_map(|(t, lli, llt, pre, round, transfer)| {
                OwnedBody::RequestVote(RequestVote {
                    term: Term(t),
                    last_log_index: LogIndex(lli),
                    last_log_term: Term(llt),
                    pre_vote: pre,
                    round_started_us: round,
                    transfer,
                })
            }),
        number().prop_map(|t| OwnedBody::TimeoutNow(TimeoutNow { term: Term(t) })),
        (number(), any::<bool>(), any::<bool>(), number()).prop_map(|(t, granted, pre, round)| {
            OwnedBody::RequestVoteResponse(RequestVoteResponse {
                term: Term(t),
                vote_granted: granted,
                pre_vote: pre,
                round_started_us: round,
            })
        }),
        (
            (
                number(),
                number(),
                number(),
                number(),
                number(),
                any::<bool>()
            ),
            prop::collection::vec(entry(), 0..200)
        )
            .prop_map(|((t, pli, plt, commit, ts, ack), entries)| {
                OwnedBody::AppendEntries(
                    AppendEntries {
                        term: Term(t),
                        prev_log_index: LogIndex(pli),
                        prev_log_term: Term(plt),
                        leader_commit: LogIndex(commit),
                        sent_at_us: ts,
                        ack_requested: ack,
                        entries: (),
                    },
                    entries,
                )
            }),
        (
            number(),
            any::<bool>(),
            number(),
            number(),
            prop::option::of(number()),
            number()
        )
            .prop_map(|(t, ok, m, ci, ct, ts)| {
                OwnedBody::AppendEntriesResponse(AppendEntriesResponse {
                    term: Term(t),
                    success: ok,
                    match_index: LogIndex(m),
                    conflict_index: LogIndex(ci),
                    conflict_term: ct.map(Term),
                    sent_at_us: ts,
                })
            }),
    ]
}

fn datagram() -> impl Strategy<Value = Owned> {
    let body = prop_oneof![10 => body().boxed(), 2 => snapshot_body().boxed()];
    (node_id(), node_id(), node_id(), body).prop_map(|(src, dst, leader, body)| Owned {
        src,
        dst,
        leader,
        body,
    })
}

// ---------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn encode_then_decode_gives_the_same_datagram(owned in datagram()) {
        let mut scratch = Vec::new();
        let original = owned.view(&mut scratch);
        let mut out = Vec::new();
        encode(&mut out, &original);
        prop_assert!(std::str::from_utf8(&out).is_ok());
        // The same bytes must also be valid JSON to a second, independent parser.
        prop_assert!(serde_json::from_slice::<serde_json::Value>(&out).is_ok());

        let mut decoder = Decoder::new();
        let mut bytes = out.clone();
        if out.len() > DATAGRAM_BYTES_MAX {
            prop_assert_eq!(
                decoder.decode(&mut bytes),
                Err(DecodeError::TooLarge { bytes: out.len() })
            );
        } else {
            prop_assert_eq!(decoder.decode(&mut bytes), Ok(original));
        }
    }

    #[test]
    fn appends_encode_the_same_from_the_log_and_from_decoded_entries(owned in datagram()) {
        let OwnedBody::AppendEntries(m, entries) = &owned.body else {
            return Ok(());
        };
        let refs: Vec<EntryRef<'_>> = entries.iter().map(AsEntryRef::as_entry_ref).collect();
        // The leader's log, read in place (`merge` takes any terms, sorted or not).
        let mut log = Log::new();
        log.merge(LogIndex(0), &refs, LogIndex(0));
        let (mut from_log, mut from_refs, mut from_owned) = (Vec::new(), Vec::new(), Vec::new());
        let log_message = Message::AppendEntries(m.with_entries(log.entries()));
        let ref_message = Message::AppendEntries(m.with_entries(refs.as_slice()));
        let owned_message = Message::AppendEntries(m.with_entries(entries.as_slice()));
        encode_raft(&mut from_log, owned.src, owned.dst, owned.leader, &log_message);
        encode_raft(&mut from_refs, owned.src, owned.dst, owned.leader, &ref_message);
        encode_raft(&mut from_owned, owned.src, owned.dst, owned.leader, &owned_message);
        prop_assert_eq!(&from_log, &from_refs);
        prop_assert_eq!(&from_log, &from_owned);
    }

    #[test]
    fn append_size_bounds_are_upper_bounds(owned in datagram()) {
        let OwnedBody::AppendEntries(m, entries) = &owned.body else {
            return Ok(());
        };
        let mut out = Vec::new();
        let message = Message::AppendEntries(m.with_entries(entries.as_slice()));
        encode_raft(&mut out, owned.src, owned.dst, owned.leader, &message);
        let bound = APPEND_HEADER_BYTES_MAX
            + entries.iter().map(|e| entry_wire_bytes(e.as_entry_ref())).sum::<usize>();
        prop_assert!(out.len() <= bound, "{} > {}", out.len(), bound);
        if bound <= DATAGRAM_BYTES_MAX {
            prop_assert!(out.len() <= DATAGRAM_BYTES_MAX);
        }
    }

    /// A leader fills snapshot chunks by the same per-entry bound as appends.
    #[test]
    fn snapshot_chunk_size_bounds_are_upper_bounds(owned in datagram()) {
        let OwnedBody::InstallSnapshot(m, pairs) = &owned.body else {
            return Ok(());
        };
        let mut out = Vec::new();
        let message = Message::InstallSnapshot(m.with_pairs(pairs.as_slice()));
        encode_raft(&mut out, owned.src, owned.dst, owned.leader, &message);
        let bound = SNAPSHOT_HEADER_BYTES_MAX
            + pairs.iter().map(|e| entry_wire_bytes(e.as_entry_ref())).sum::<usize>();
        prop_assert!(out.len() <= bound, "{} > {}", out.len(), bound);
    }
}

/// A leader filling a datagram by the bounds, with escape-heavy and max-width entries,
/// ends up with an append that fits, decodes, and wastes little of the room.
#[test]
fn an_append_filled_to_the_bound_fits_and_decodes() {
    let pieces = [
        "\u{0}\u{1}\"\\",
        "😀é",
        "0123456789abcdef0123456789abcdef",
        "",
    ];
    let mut entries = Vec::new();
    let mut bound = APPEND_HEADER_BYTES_MAX;
    for i in 0usize.. {
        let entry = if i % 5 == 4 {
            Entry {
                term: Term(u64::MAX),
                command: Command::Noop,
            }
        } else {
            Entry {
                term: Term(u64::MAX - i as u64),
                command: Command::Put {
                    key: pieces[i % pieces.len()].repeat(1 + i % 7).into(),
                    value: pieces[(i + 1) % pieces.len()].repeat(1 + i % 3).into(),
                },
            }
        };
        let bytes = entry_wire_bytes(entry.as_entry_ref());
        if bound + bytes > DATAGRAM_BYTES_MAX {
            break;
        }
        bound += bytes;
        entries.push(entry);
    }
    let message = Message::AppendEntries(AppendEntries {
        term: Term(u64::MAX),
        prev_log_index: LogIndex(u64::MAX),
        prev_log_term: Term(u64::MAX),
        leader_commit: LogIndex(u64::MAX),
        sent_at_us: u64::MAX,
        ack_requested: false,
        entries: entries.as_slice(),
    });
    let mut out = Vec::new();
    encode_raft(&mut out, NodeId(0), NodeId::BROADCAST, NodeId(0), &message);
    assert!(out.len() <= DATAGRAM_BYTES_MAX, "{}", out.len());
    // Max-width header: the bound overestimates only the first entry's separator.
    assert_eq!(bound - out.len(), 1);
    let mut decoder = Decoder::new();
    let decoded = decoder.decode(&mut out).expect("a full append decodes");
    let Body::Raft(Message::AppendEntries(ae)) = decoded.body else {
        panic!("not an append: {decoded:?}");
    };
    assert_eq!(ae.entries.len(), entries.len());
    assert!(
        ae.entries
            .iter()
            .zip(&entries)
            .all(|(got, want)| *got == want.as_entry_ref())
    );
}

// ---------------------------------------------------------------------------------------
// No allocation once warm: counted per thread, so parallel tests do not interfere.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations;

fn sample_entries(count: usize) -> Vec<Entry> {
    (0..count)
        .map(|i| Entry {
            term: Term(7),
            command: Command::Put {
                key: format!("{i:032}").into(),
                value: format!("{:032x}", i * 7919).into(),
            },
        })
        .collect()
}

#[test]
fn a_warm_decoder_and_encoder_do_not_allocate() {
    // Appends are encoded from the leader's log, read in place, as the replica does.
    let mut log = Log::new();
    for entry in sample_entries(128) {
        log.append(entry.as_entry_ref());
    }
    let put = Datagram {
        src: NodeId(0x15),
        dst: NodeId(2),
        leader: NodeId::UNKNOWN,
        body: Body::Put {
            mid: "4GAZQ1M2X9T7B3C5",
            key: "0123456789abcdef0123456789abcdef",
            value: "fedcba9876543210fedcba9876543210",
        },
    };
    let mut out = Vec::with_capacity(DATAGRAM_BYTES_MAX);
    let mut input = Vec::with_capacity(DATAGRAM_BYTES_MAX);
    let mut decoder = Decoder::new();
    let round = |out: &mut Vec<u8>, input: &mut Vec<u8>, decoder: &mut Decoder| {
        encode(out, &put);
        input.clear();
        input.extend_from_slice(out);
        assert!(decoder.decode(input).is_ok());
        for n in [1, 16, 128] {
            let message = Message::AppendEntries(AppendEntries {
                term: Term(7),
                prev_log_index: LogIndex(1000),
                prev_log_term: Term(7),
                leader_commit: LogIndex(990),
                sent_at_us: 123_456_789,
                ack_requested: true,
                entries: log.span(EntrySpan {
                    first: LogIndex(1),
                    count: n,
                }),
            });
            encode_raft(out, NodeId(0), NodeId(1), NodeId(0), &message);
            input.clear();
            input.extend_from_slice(out);
            assert!(decoder.decode(input).is_ok());
        }
    };
    // The counter sees this thread's allocations at all.
    let probe = allocations();
    drop(std::hint::black_box(Vec::<u8>::with_capacity(1)));
    assert!(allocations() > probe);
    // Warm up: buffers grow to the largest datagram here.
    round(&mut out, &mut input, &mut decoder);
    let before = allocations();
    for _ in 0..10 {
        round(&mut out, &mut input, &mut decoder);
    }
    assert_eq!(allocations() - before, 0, "allocations on the warm path");
}
