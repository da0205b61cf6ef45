//! Deterministic fuzzing of the decoder: random bytes, truncations and mutations of valid
//! datagrams never panic, truncations are always errors, and whatever decodes re-encodes
//! to the same datagram. Then the invalid datagrams the protocol names, one by one.
//!
//! Reproduce a failure with the seed printed in its message (they are fixed constants).
//!
//! One file on purpose, past the size of the others: the generators of valid datagrams
//! and the properties that mutate them are one thing, each property drawing on the same
//! generators.

use raft::NodeId;
use raft::{
    AppendEntries, AppendEntriesResponse, Command, Entry, InstallSnapshot, InstallSnapshotResponse,
    LogIndex, Message, RequestVote, RequestVoteResponse, Term,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replica::codec::{
    Body, DATAGRAM_BYTES_MAX, Datagram, DecodeError, Decoder, encode, encode_raft,
};

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
        })),
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

/// Decodes `input`; if it decodes, re-encoding and decoding again must give the same
/// datagram. Returns whether it decoded.
fn check(decoder: &mut Decoder, input: &[u8], context: &str) -> bool {
    let mut bytes = input.to_vec();
    let Ok(first) = decoder.decode(&mut bytes) else {
        return false;
    };
    let mut again = Vec::new();
    encode(&mut again, &first);
    let mut second_decoder = Decoder::new();
    let second = second_decoder.decode(&mut again);
    assert_eq!(
        second,
        Ok(first),
        "{context}: input {:?} does not re-encode stably",
        String::from_utf8_lossy(input)
    );
    true
}

#[test]
fn every_corpus_entry_decodes() {
    let mut decoder = Decoder::new();
    for input in corpus() {
        assert!(
            check(&mut decoder, &input, "corpus"),
            "{}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn random_bytes_never_panic() {
    const SEED: u64 = 0x5EED_0001;
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut decoder = Decoder::new();
    let mut input = Vec::new();
    for case in 0..20_000 {
        input.clear();
        let len = rng.random_range(0..256);
        input.extend((0..len).map(|_| rng.random::<u8>()));
        check(&mut decoder, &input, &format!("seed {SEED:#x} case {case}"));
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
    let mut decoder = Decoder::new();
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
        decoded += usize::from(check(
            &mut decoder,
            &input,
            &format!("seed {SEED:#x} case {case}"),
        ));
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
    let mut decoder = Decoder::new();
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
            &mut decoder,
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
    let mut decoder = Decoder::new();
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
        decoded += usize::from(check(
            &mut decoder,
            &input,
            &format!("seed {SEED:#x} case {case}"),
        ));
    }
    println!("{decoded} of 40000 mutations decoded");
}

// ---------------------------------------------------------------------------------------
// The invalid datagrams the protocol names.

fn decode(text: &str) -> Result<(), DecodeError> {
    let mut decoder = Decoder::new();
    let mut bytes = text.as_bytes().to_vec();
    decoder.decode(&mut bytes).map(|_| ())
}

/// A datagram as ordered fields, each value as JSON text.
fn render(fields: &[(&str, &str)]) -> String {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
    format!("{{{}}}", body.join(","))
}

const HEADER: [(&str, &str); 3] = [
    ("src", "\"0015\""),
    ("dst", "\"0002\""),
    ("leader", "\"FFFF\""),
];

/// Every type with the fields it requires (after the header), and its optional fields.
/// Field name and value as JSON text.
type Fields = Vec<(&'static str, &'static str)>;

fn types() -> Vec<(&'static str, Fields, Fields)> {
    vec![
        ("hello", vec![], vec![]),
        ("get", vec![("MID", "\"m\""), ("key", "\"k\"")], vec![]),
        (
            "put",
            vec![("MID", "\"m\""), ("key", "\"k\""), ("value", "\"v\"")],
            vec![],
        ),
        ("ok", vec![("MID", "\"m\"")], vec![("value", "\"v\"")]),
        ("fail", vec![("MID", "\"m\"")], vec![]),
        ("redirect", vec![("MID", "\"m\"")], vec![]),
        (
            "rv",
            vec![
                ("term", "1"),
                ("lli", "2"),
                ("llt", "1"),
                ("pre", "false"),
                ("ts", "5"),
            ],
            vec![],
        ),
        (
            "rvr",
            vec![
                ("term", "1"),
                ("granted", "true"),
                ("pre", "false"),
                ("ts", "5"),
            ],
            vec![],
        ),
        (
            "ae",
            vec![
                ("term", "1"),
                ("pli", "2"),
                ("plt", "1"),
                ("commit", "0"),
                ("ts", "5"),
                ("entries", "[[1,\"k\",\"v\"],[1]]"),
            ],
            vec![],
        ),
        (
            "aer",
            vec![
                ("term", "1"),
                ("ok", "true"),
                ("match", "3"),
                ("ci", "0"),
                ("ts", "5"),
            ],
            vec![("ct", "1")],
        ),
        (
            "is",
            vec![
                ("term", "2"),
                ("lli", "9"),
                ("llt", "1"),
                ("off", "0"),
                ("ts", "5"),
                ("done", "true"),
                ("pairs", "[[\"k\",\"v\"],[\"\",\"\"]]"),
            ],
            vec![],
        ),
        (
            "isr",
            vec![
                ("term", "2"),
                ("lli", "9"),
                ("got", "2"),
                ("ok", "false"),
                ("ts", "5"),
            ],
            vec![],
        ),
    ]
}

fn full(ty: &str, required: &[(&'static str, &'static str)]) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = HEADER
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    fields.push(("type".into(), format!("\"{ty}\"")));
    fields.extend(required.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    fields
}

fn render_owned(fields: &[(String, String)]) -> String {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    render(&pairs)
}

#[test]
fn the_templates_are_valid_with_and_without_optional_fields() {
    for (ty, required, optional) in types() {
        let mut fields = full(ty, &required);
        assert_eq!(decode(&render_owned(&fields)), Ok(()), "{ty}");
        fields.extend(optional.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        fields.push(("unknown".into(), "{\"a\":[1,{}]}".into()));
        fields.reverse();
        assert_eq!(decode(&render_owned(&fields)), Ok(()), "{ty} reversed");
    }
}

#[test]
fn missing_any_required_field_is_an_error() {
    for (ty, required, _) in types() {
        let fields = full(ty, &required);
        for skip in 0..fields.len() {
            let mut some = fields.clone();
            let (name, _) = some.remove(skip);
            let text = render_owned(&some);
            let got = decode(&text).expect_err(&text);
            assert!(
                matches!(got, DecodeError::MissingField(n) if n == name),
                "{text}: {got:?}"
            );
        }
    }
}

#[test]
fn a_field_of_the_wrong_json_type_is_an_error() {
    let wrong_for_string = ["1", "true", "null", "[]", "{}"];
    let wrong_for_number = ["\"1\"", "true", "null", "[]", "{}", "-1", "1.5", "1e2"];
    let wrong_for_bool = ["1", "\"true\"", "null", "[]", "0"];
    let wrong_for_entries = ["1", "\"[]\"", "null", "{}"];
    for (ty, required, optional) in types() {
        let fields = full(ty, &required);
        for (i, (name, value)) in fields.iter().enumerate().skip(4) {
            let wrongs: &[&str] = match value.as_bytes()[0] {
                b'"' => &wrong_for_string,
                b't' | b'f' => &wrong_for_bool,
                b'[' => &wrong_for_entries,
                _ => &wrong_for_number,
            };
            for wrong in wrongs {
                let mut bad = fields.clone();
                bad[i].1 = wrong.to_string();
                let text = render_owned(&bad);
                let got = decode(&text).expect_err(&text);
                assert!(
                    matches!(got, DecodeError::BadField(n) if n == name),
                    "{text}: {got:?}"
                );
            }
        }
        for (name, _) in optional {
            let mut bad = fields.clone();
            bad.push((name.to_string(), "[]".into()));
            let text = render_owned(&bad);
            assert_eq!(decode(&text), Err(DecodeError::BadField(name)), "{text}");
        }
    }
}

#[test]
fn a_bad_id_is_an_error() {
    let bad_ids = [
        "\"001\"",
        "\"00001\"",
        "\"00g1\"",
        "\"\"",
        "\" 001\"",
        "\"0x01\"",
        "\"-001\"",
        "\"００１\"",
        "1",
        "null",
        "[\"0001\"]",
    ];
    for id_field in ["src", "dst", "leader"] {
        for bad in bad_ids {
            let fields: Vec<(String, String)> = full("hello", &[])
                .into_iter()
                .map(|(k, v)| {
                    if k == id_field {
                        (k, bad.to_string())
                    } else {
                        (k, v)
                    }
                })
                .collect();
            let text = render_owned(&fields);
            assert_eq!(decode(&text), Err(DecodeError::BadId(id_field)), "{text}");
        }
    }
    // Either case is accepted.
    let text = render(&[
        ("src", "\"abcd\""),
        ("dst", "\"ABCD\""),
        ("leader", "\"aBcD\""),
        ("type", "\"hello\""),
    ]);
    assert_eq!(decode(&text), Ok(()));
}

#[test]
fn an_unknown_type_is_an_error() {
    for ty in ["\"\"", "\"GET\"", "\"append\"", "\"hello \"", "\"okay\""] {
        let mut fields: Vec<(String, String)> = full("hello", &[]);
        fields[3].1 = ty.to_string();
        fields.push(("MID".into(), "\"m\"".into()));
        let text = render_owned(&fields);
        assert_eq!(decode(&text), Err(DecodeError::UnknownType), "{text}");
    }
    let mut fields = full("hello", &[]);
    fields[3].1 = "5".into();
    assert_eq!(
        decode(&render_owned(&fields)),
        Err(DecodeError::BadField("type"))
    );
}

#[test]
fn non_objects_and_non_json_are_errors() {
    for text in ["[]", "[{}]", "1", "\"x\"", "null", "true", "{}x"] {
        let got = decode(text);
        assert!(
            matches!(got, Err(DecodeError::NotObject | DecodeError::NotJson)),
            "{text}: {got:?}"
        );
    }
    assert_eq!(decode("[]"), Err(DecodeError::NotObject));
    for text in [
        "",
        " ",
        "{",
        "{\"src\"}",
        "{'src':'0001'}",
        "{\"a\":01}",
        "{\"a\":1,}",
    ] {
        assert_eq!(decode(text), Err(DecodeError::NotJson), "{text:?}");
    }
    let mut not_utf8 =
        br#"{"src":"0001","dst":"0002","leader":"FFFF","type":"fail","MID":"x"}"#.to_vec();
    not_utf8[64] = 0xFF;
    assert_eq!(
        Decoder::new().decode(&mut not_utf8),
        Err(DecodeError::NotUtf8)
    );
}

#[test]
fn size_limit_is_exact() {
    let head = r#"{"src":"0001","dst":"0002","leader":"FFFF","type":"fail","MID":""#;
    let fill = DATAGRAM_BYTES_MAX - head.len() - 2;
    let at_limit = format!("{head}{}\"}}", "x".repeat(fill));
    assert_eq!(at_limit.len(), DATAGRAM_BYTES_MAX);
    assert_eq!(decode(&at_limit), Ok(()));
    let over = format!("{at_limit} ");
    assert_eq!(
        decode(&over),
        Err(DecodeError::TooLarge {
            bytes: DATAGRAM_BYTES_MAX + 1
        })
    );
    assert!(matches!(
        decode(&" ".repeat(1 << 20)),
        Err(DecodeError::TooLarge { .. })
    ));
}
