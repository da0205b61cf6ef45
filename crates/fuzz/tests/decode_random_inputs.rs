//! Seeded random inputs for the `decode` fuzz target, so that `cargo test` throws at it
//! what a fuzzer would without one: random bytes, random JSON tokens and documents,
//! truncations and mutations of valid datagrams. None may panic, every truncation is an
//! error, and whatever decodes passes the target's round trip (`fuzz::decode`, the one
//! place that checks it). The invalid datagrams the protocol names are checked apart, in
//! the replica's `tests/codec_invalid_datagrams.rs`.
//!
//! Reproduce a failure with the seed printed in its message (they are fixed constants).
//!
//! One file on purpose, past the size of the others: the generators of valid datagrams
//! and the properties that mutate them are one thing, each property drawing on the same
//! generators.

use raft::NodeId;
use raft::{
    AppendEntries, AppendEntriesResponse, Command, Entry, InstallSnapshot, InstallSnapshotResponse,
    LogIndex, Message, RequestVote, RequestVoteResponse, Term, TimeoutNow,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replica::codec::{Body, Datagram, Decoder, encode, encode_raft};

/// Valid encoded datagrams of every kind, with strings that need escaping.
fn corpus() -> Vec<Vec<u8>> {
    let ids = (NodeId(0x15), NodeId(2), NodeId::UNKNOWN);
    let client = |body: Body<'_>| {
        let mut out = Vec::new();
        encode(
            &mut out,
            &Datagram {
                src: ids.0,
                dst: ids.1,
                leader: ids.2,
                body,
            },
        );
        out
    };
    let raft = |message: &Message<&[Entry]>| {
        let mut out = Vec::new();
        encode_raft(&mut out, NodeId(0), NodeId(1), NodeId(0), message);
        out
    };
    let log: Vec<Entry> = (0..16u64)
        .map(|i| Entry {
            term: Term(i * 1_000_003),
            command: if i % 4 == 3 {
                Command::Noop
            } else {
                Command::Put {
                    key: format!("key\"{i}\\\n☃").into(),
                    value: format!("{:032x}\u{1}", i).into(),
                }
            },
        })
        .collect();
    let append = |n: usize| {
        Message::AppendEntries(AppendEntries {
            term: Term(9),
            prev_log_index: LogIndex(41),
            prev_log_term: Term(8),
            leader_commit: LogIndex(u64::MAX),
            sent_at_us: 1_700_000_000_000_000,
            ack_requested: true,
            entries: &log[..n],
        })
    };
    // A snapshot's pairs: the log's puts, as term-0 entries.
    let pairs: Vec<Entry> = log
        .iter()
        .filter(|e| matches!(e.command, Command::Put { .. }))
        .map(|e| Entry {
            term: Term(0),
            command: e.command.clone(),
        })
        .collect();
    let chunk = |n: usize| {
        Message::InstallSnapshot(InstallSnapshot {
            term: Term(9),
            last_index: LogIndex(40),
            last_term: Term(8),
            offset: 3,
            done: n.is_multiple_of(2),
            sent_at_us: 1_700_000_000_000_000,
            pairs: &pairs[..n],
        })
    };
    vec![
        raft(&chunk(0)),
        raft(&chunk(1)),
        raft(&chunk(pairs.len())),
        raft(&Message::InstallSnapshotResponse(InstallSnapshotResponse {
            term: Term(9),
            last_index: LogIndex(40),
            received: 12,
            installed: false,
            sent_at_us: u64::MAX,
        })),
        client(Body::Hello),
        client(Body::Get {
            mid: "4GAZQ1M2X9T7B3C5",
            key: "0123456789abcdef0123456789abcdef",
        }),
        client(Body::Put {
            mid: "M\"1",
            key: "k\\ey",
            value: "v\u{0}\t😀",
        }),
        client(Body::Ok {
            mid: "m",
            value: Some(""),
        }),
        client(Body::Ok {
            mid: "m",
            value: None,
        }),
        client(Body::Fail { mid: "m" }),
        client(Body::Redirect { mid: "é" }),
        raft(&Message::RequestVote(RequestVote {
            term: Term(3),
            last_log_index: LogIndex(17),
            last_log_term: Term(2),
            pre_vote: true,
            round_started_us: 1_234_567,
            transfer: false,
        })),
        raft(&Message::RequestVote(RequestVote {
            term: Term(4),
            last_log_index: LogIndex(17),
            last_log_term: Term(3),
            pre_vote: false,
            round_started_us: 1_234_568,
            transfer: true,
        })),
        raft(&Message::TimeoutNow(TimeoutNow { term: Term(3) })),
        raft(&Message::RequestVoteResponse(RequestVoteResponse {
            term: Term(3),
            vote_granted: false,
            pre_vote: true,
            round_started_us: 1_234_567,
        })),
        raft(&append(0)),
        raft(&append(1)),
        raft(&append(4)),
        raft(&append(16)),
        raft(&Message::AppendEntriesResponse(AppendEntriesResponse {
            term: Term(3),
            success: false,
            match_index: LogIndex(0),
            conflict_index: LogIndex(12),
            conflict_term: Some(Term(2)),
            sent_at_us: 5,
        })),
        raft(&Message::AppendEntriesResponse(AppendEntriesResponse {
            term: Term(3),
            success: true,
            match_index: LogIndex(40),
            conflict_index: LogIndex(0),
            conflict_term: None,
            sent_at_us: 5,
        })),
    ]
}

/// The fuzz target's round trip (`fuzz::decode`) on `input`, with `context` (the seed and
/// case) named if it fails. Returns whether `input` decoded.
fn check(input: &[u8], context: &str) -> bool {
    std::panic::catch_unwind(|| fuzz::decode(input)).unwrap_or_else(|_| {
        panic!(
            "{context}: input {:?} does not re-encode stably",
            String::from_utf8_lossy(input)
        )
    })
}

#[test]
fn every_corpus_entry_decodes() {
    for input in corpus() {
        assert!(
            check(&input, "corpus"),
            "{}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn random_bytes_never_panic() {
    const SEED: u64 = 0x5EED_0001;
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut input = Vec::new();
    for case in 0..20_000 {
        input.clear();
        let len = rng.random_range(0..256);
        input.extend((0..len).map(|_| rng.random::<u8>()));
        check(&input, &format!("seed {SEED:#x} case {case}"));
    }
}

/// Random sequences of JSON tokens: far more of them get past the syntax check than
/// random bytes do, so they reach the field walk.
#[test]
fn random_json_tokens_never_panic() {
    const SEED: u64 = 0x5EED_0002;
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        "\"",
        " ",
        "0",
        "1",
        "-1",
        "1.5",
        "1e3",
        "18446744073709551615",
        "18446744073709551616",
        "true",
        "false",
        "null",
        "\"src\"",
        "\"dst\"",
        "\"leader\"",
        "\"type\"",
        "\"0001\"",
        "\"FFFF\"",
        "\"ae\"",
        "\"ok\"",
        "\"get\"",
        "\"entries\"",
        "\"MID\"",
        "\"key\"",
        "\"value\"",
        "\"term\"",
        "\\",
        "\\u00",
        "\"\\ud800\"",
        "é",
        "\u{0}",
    ];
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut input = Vec::new();
    let mut decoded = 0;
    for case in 0..20_000 {
        input.clear();
        input.extend_from_slice(b"{\"src\":\"0001\",\"dst\":\"0002\",\"leader\":\"FFFF\",");
        for _ in 0..rng.random_range(0..40) {
            input.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())].as_bytes());
        }
        if rng.random_bool(0.5) {
            input.push(b'}');
        }
        decoded += usize::from(check(&input, &format!("seed {SEED:#x} case {case}")));
    }
    println!("{decoded} of 20000 token sequences decoded");
}

/// A random JSON value, nested up to `depth`.
fn random_value(rng: &mut SmallRng, depth: u32) -> String {
    const SCALARS: &[&str] = &[
        "0",
        "7",
        "-1",
        "-0",
        "1.5",
        "1e3",
        "18446744073709551615",
        "9223372036854775808",
        "true",
        "false",
        "null",
        "\"\"",
        "\"0001\"",
        "\"ffff\"",
        "\"x\\\"\\\\\\n\\u0000\"",
        "\"\\ud83d\\ude00\"",
        "\"é\"",
    ];
    match rng.random_range(0..if depth == 0 { 1 } else { 4 }) {
        0 | 1 => SCALARS[rng.random_range(0..SCALARS.len())].to_string(),
        2 => {
            let items: Vec<String> = (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect();
            format!("[{}]", items.join(","))
        }
        _ => {
            let items: Vec<String> = (0..rng.random_range(0..3))
                .map(|i| format!("\"f{i}\":{}", random_value(rng, depth - 1)))
                .collect();
            format!("{{{}}}", items.join(","))
        }
    }
}

/// A plausible value for a known field, so that many documents get through the walk.
fn plausible_value(rng: &mut SmallRng, key: &str) -> String {
    const TYPES: &[&str] = &[
        "hello", "get", "put", "ok", "fail", "redirect", "rv", "rvr", "ae", "aer", "is", "isr",
        "nope",
    ];
    match key {
        "src" | "dst" | "leader" => format!("\"{:04x}\"", rng.random::<u16>()),
        "type" => format!("\"{}\"", TYPES[rng.random_range(0..TYPES.len())]),
        "MID" | "key" | "value" => "\"a\\\"b\\\\c\\u0001☃\"".to_string(),
        "pre" | "granted" | "ok" | "done" => rng.random_bool(0.5).to_string(),
        "pairs" => {
            let items: Vec<String> = (0..rng.random_range(0..4))
                .map(|_| match rng.random_range(0..3) {
                    0 => "[\"k\",\"v\"]".to_string(),
                    1 => format!("[{},\"k\",\"v\"]", rng.random::<u32>()),
                    _ => random_value(rng, 2),
                })
                .collect();
            format!("[{}]", items.join(","))
        }
        "entries" => {
            let items: Vec<String> = (0..rng.random_range(0..4))
                .map(|_| match rng.random_range(0..3) {
                    0 => format!("[{}]", rng.random::<u64>()),
                    1 => format!("[{},\"k\",\"v\"]", rng.random::<u32>()),
                    _ => random_value(rng, 2),
                })
                .collect();
            format!("[{}]", items.join(","))
        }
        _ => rng.random::<u64>().to_string(),
    }
}

/// Random objects over the known field names: far more of them than random bytes get
/// past the syntax check, so they reach the field walk and the entry reader.
#[test]
fn random_documents_never_panic() {
    const SEED: u64 = 0x5EED_0004;
    const KEYS: &[&str] = &[
        "src", "dst", "leader", "type", "MID", "key", "value", "term", "lli", "llt", "pre",
        "granted", "pli", "plt", "commit", "ts", "entries", "ok", "match", "ci", "ct", "off",
        "done", "pairs", "got", "other",
    ];
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut decoded = 0;
    for case in 0..20_000 {
        let mut fields = Vec::new();
        for key in ["src", "dst", "leader", "type"] {
            if rng.random_bool(0.97) {
                fields.push(format!("\"{key}\":{}", plausible_value(&mut rng, key)));
            }
        }
        for key in &KEYS[4..] {
            if rng.random_bool(0.85) {
                let value = if rng.random_bool(0.9) {
                    plausible_value(&mut rng, key)
                } else {
                    random_value(&mut rng, 3)
                };
                fields.push(format!("\"{key}\":{value}"));
            }
        }
        if rng.random_bool(0.05) {
            // A duplicate known field is always an error; make sure that path is hit.
            let key = KEYS[rng.random_range(0..KEYS.len())];
            fields.push(format!("\"{key}\":{}", plausible_value(&mut rng, key)));
        }
        // Shuffle: field order must not matter.
        for i in (1..fields.len()).rev() {
            fields.swap(i, rng.random_range(0..=i));
        }
        let text = format!("{{{}}}", fields.join(","));
        decoded += usize::from(check(
            text.as_bytes(),
            &format!("seed {SEED:#x} case {case}"),
        ));
    }
    println!("{decoded} of 20000 random documents decoded");
    // A generator that never produces a valid datagram would test only the error paths.
    assert!(decoded > 1_000, "only {decoded} documents decoded");
}

#[test]
fn every_truncation_is_an_error() {
    let mut decoder = Decoder::new();
    let mut cases = 0;
    for input in corpus() {
        for len in 0..input.len() {
            let mut prefix = input[..len].to_vec();
            assert!(
                decoder.decode(&mut prefix).is_err(),
                "prefix {:?} decoded",
                String::from_utf8_lossy(&input[..len])
            );
            cases += 1;
        }
    }
    assert!(cases > 2_000, "only {cases} truncations");
}

#[test]
fn mutations_never_panic_and_reencode_stably() {
    const SEED: u64 = 0x5EED_0003;
    const INTERESTING: &[u8] = b"{}[]\",:\\ 0123456789-+.eEtfnu\x00\x1f\x7f\x80\xc3\xff";
    let mut rng = SmallRng::seed_from_u64(SEED);
    let corpus = corpus();
    let mut decoded = 0;
    for case in 0..40_000 {
        let mut input = corpus[case % corpus.len()].clone();
        for _ in 0..rng.random_range(1..=4) {
            let at = rng.random_range(0..input.len().max(1));
            let byte = if rng.random_bool(0.5) {
                INTERESTING[rng.random_range(0..INTERESTING.len())]
            } else {
                rng.random()
            };
            match rng.random_range(0..4) {
                0 if !input.is_empty() => input[at] = byte,
                1 if !input.is_empty() => {
                    input.remove(at);
                }
                2 => input.insert(at.min(input.len()), byte),
                _ if !input.is_empty() => input[at] ^= 1 << rng.random_range(0..8),
                _ => input.push(byte),
            }
        }
        decoded += usize::from(check(&input, &format!("seed {SEED:#x} case {case}")));
    }
    println!("{decoded} of 40000 mutations decoded");
}
