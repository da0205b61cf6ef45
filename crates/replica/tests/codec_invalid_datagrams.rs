//! The invalid datagrams the protocol names, one by one: each is a decode error, never a
//! panic or a datagram. (Random and mutated inputs are the `decode` fuzz target's, in
//! `crates/fuzz/tests/decode_random_inputs.rs`.)

use replica::codec::{DATAGRAM_BYTES_MAX, DecodeError, Decoder};

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
