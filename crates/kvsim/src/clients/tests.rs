use super::*;
use crate::clients::indexed_ids;
use crate::measure::stats::Stats;
use crate::network::wire::parse;
use crate::report::warnings::Warnings;
use rand::SeedableRng;

fn reply(
    c: &Clients,
    client: usize,
    kind: &str,
    mid: &str,
    leader: &str,
    value: Option<&str>,
) -> String {
    let v = value
        .map(|v| format!(r#", "value": "{v}""#))
        .unwrap_or_default();
    format!(
        r#"{{"src": "0000", "dst": "{}", "leader": "{leader}", "type": "{kind}", "MID": "{mid}"{v}}}"#,
        c.clients[client].id
    )
}

/// Two clients of three replicas; client 0 has sent one put.
fn one_put_sent() -> (Clients, Stats) {
    let mut c = Clients::new(3, 2, 4, KeyMode::PerClient, SmallRng::seed_from_u64(5));
    let mut s = Stats::default();
    c.create(0, false, 0, &[0, 1, 2], &mut s);
    (c, s)
}

fn last_mid(c: &Clients) -> String {
    let v: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
    v["MID"].as_str().unwrap().to_string()
}

#[test]
fn classic_client_flow() {
    let mut c = Clients::new(5, 8, 16, KeyMode::PerClient, SmallRng::seed_from_u64(3));
    let mut s = Stats::default();
    let mut w = Warnings::quiet();
    let living = [0, 1, 2, 3, 4];
    assert_eq!(c.index_of(NodeId(0x15)), Some(0));
    assert_eq!(c.index_of(NodeId(0x1D)), None);
    // A get with no key yet becomes a put, counted as a generation failure.
    let dst = c.create(0, true, 0, &living, &mut s).unwrap();
    assert!(dst < 5);
    assert_eq!((s.failed_to_generate_get, s.total_put), (1, 1));
    let m: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
    assert_eq!(m["type"], "put");
    assert_eq!(m["src"], "0015");
    assert_eq!(m["leader"], "FFFF");
    assert_eq!(m["key"].as_str().unwrap().len(), 32);
    assert_eq!(m["MID"].as_str().unwrap().len(), 16);
    // Redirect to 0003: retried at once to 0003 with a new MID.
    let mid = last_mid(&c);
    let r = reply(&c, 0, "redirect", &mid, "0003", None);
    let dst = c.on_reply(
        0,
        &parse(r.as_bytes()).unwrap(),
        r.as_bytes(),
        100,
        &living,
        &mut s,
        &mut w,
    );
    assert_eq!(dst, Some(3));
    assert_eq!((s.redirects, s.total_put), (1, 2));
    assert_ne!(last_mid(&c), mid);
    // A second reply to the redirected MID is incorrect.
    let dst = c.on_reply(
        0,
        &parse(r.as_bytes()).unwrap(),
        r.as_bytes(),
        100,
        &living,
        &mut s,
        &mut w,
    );
    assert_eq!((dst, s.incorrect, c.mids_with_two_replies), (None, 1, 1));
    // ok: stored; a second ok is a duplicate.
    let mid2 = last_mid(&c);
    let r = reply(&c, 0, "ok", &mid2, "0003", None);
    assert_eq!(
        c.on_reply(
            0,
            &parse(r.as_bytes()).unwrap(),
            r.as_bytes(),
            300,
            &living,
            &mut s,
            &mut w
        ),
        None
    );
    assert_eq!(c.stored_items(), 1);
    c.on_reply(
        0,
        &parse(r.as_bytes()).unwrap(),
        r.as_bytes(),
        400,
        &living,
        &mut s,
        &mut w,
    );
    assert_eq!(s.duplicates, 1);
    assert_eq!(s.latencies_s.len(), 2);
    // Now a get is possible; a wrong value is incorrect.
    let dst = c.create(0, true, 500, &living, &mut s);
    assert_eq!(dst, Some(3), "goes to the known leader");
    let r = reply(&c, 0, "ok", &last_mid(&c), "0003", Some("nope"));
    c.on_reply(
        0,
        &parse(r.as_bytes()).unwrap(),
        r.as_bytes(),
        600,
        &living,
        &mut s,
        &mut w,
    );
    assert_eq!(s.incorrect, 2);
    // The leader is dead: a random living one instead.
    let dst = c.create(0, true, 700, &[0, 1], &mut s).unwrap();
    assert!(dst < 2);
    c.finalize(&mut s);
    assert_eq!((s.unanswered_get, s.unanswered_put), (1, 0));
    // History: the redirected attempt and its acked retry share a group.
    assert_eq!(c.history[0].group, c.history[1].group);
    assert!(!c.history[0].acked && c.history[1].acked);
}

#[test]
fn garbage_replies_are_counted_not_fatal() {
    let mut c = Clients::new(3, 8, 16, KeyMode::Shared(4), SmallRng::seed_from_u64(1));
    let mut s = Stats::default();
    let mut w = Warnings::quiet();
    for raw in [
        r#"{"src": "0000", "dst": "0013", "leader": "0000", "type": "ok"}"#,
        r#"{"src": "0000", "dst": "0013", "leader": "0000", "type": "what", "MID": "x"}"#,
        r#"{"src": "0000", "dst": "0013", "leader": "0000", "type": "ok", "MID": ["x"]}"#,
        r#"{"src": "0000", "dst": "0013", "leader": "0000", "type": 7, "MID": "ABCDEFGHIJKLMNOP"}"#,
    ] {
        assert_eq!(
            c.on_reply(
                0,
                &parse(raw.as_bytes()).unwrap(),
                raw.as_bytes(),
                1,
                &[0],
                &mut s,
                &mut w
            ),
            None
        );
    }
    assert_eq!(s.incorrect, 4);
}

/// Delivers a reply of `kind` for `mid` to `client`; the returned retry destination.
fn deliver(
    c: &mut Clients,
    s: &mut Stats,
    client: usize,
    kind: &str,
    mid: &str,
    value: Option<&str>,
) -> Option<usize> {
    let r = reply(c, client, kind, mid, "0000", value);
    let h = parse(r.as_bytes()).unwrap();
    c.on_reply(
        client,
        &h,
        r.as_bytes(),
        1_000,
        &[0, 1, 2],
        s,
        &mut Warnings::quiet(),
    )
}

/// An `ok` to the last request made.
fn answer_last(c: &mut Clients, s: &mut Stats, client: usize, value: Option<&str>) {
    let mid = last_mid(c);
    deliver(c, s, client, "ok", &mid, value);
}

/// Client 0 with one acknowledged put; returns the put's value.
fn one_acked_put(c: &mut Clients, s: &mut Stats) -> String {
    c.create(0, false, 0, &[0, 1, 2], s);
    let m: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
    answer_last(c, s, 0, None);
    assert_eq!(c.stored_items(), 1);
    m["value"].as_str().unwrap().to_string()
}

#[test]
fn a_mid_naming_a_real_attempt_with_another_random_part_is_unexpected() {
    let (mut c, mut s) = one_put_sent();
    let mid = last_mid(&c);
    let forged = format!(
        "{}{}",
        if mid.starts_with('A') { "B" } else { "A" },
        &mid[1..]
    );
    assert_eq!(
        indexed_ids::mid_attempt(forged.as_bytes().try_into().unwrap()),
        Some(0)
    );
    assert_eq!(deliver(&mut c, &mut s, 0, "ok", &forged, None), None);
    assert_eq!((s.incorrect, c.put_oks, c.mids_with_two_replies), (1, 0, 0));
    // The real attempt is untouched and still accepted.
    deliver(&mut c, &mut s, 0, "ok", &mid, None);
    assert_eq!((s.incorrect, c.put_oks), (1, 1));
}

#[test]
fn a_mid_with_a_bad_index_is_unexpected_not_fatal() {
    let (mut c, mut s) = one_put_sent();
    let random = &last_mid(&c)[..8];
    let bad = [
        format!("{random}AAAAAAAB"), // attempt 1: never made
        format!("{random}99999999"), // the largest index a MID can hold
        format!("{random}AAAAAAAa"),
        format!("{random}AAAA-AAA"),
        format!("{random}ÄÄÄÄ"), // 16 bytes, not ASCII
        format!("{random}AAAAAAA"),
        format!("{random}AAAAAAAAA"),
        String::new(),
    ];
    for mid in &bad {
        assert_eq!(deliver(&mut c, &mut s, 0, "ok", mid, None), None, "{mid}");
    }
    assert_eq!((s.incorrect, c.put_oks), (bad.len() as u64, 0));
    c.finalize(&mut s);
    assert_eq!(s.unanswered_put, 1);
}

#[test]
fn a_second_ok_for_a_completed_mid_is_a_duplicate_whoever_gets_it() {
    let (mut c, mut s) = one_put_sent();
    let mid = last_mid(&c);
    deliver(&mut c, &mut s, 0, "ok", &mid, None);
    deliver(&mut c, &mut s, 0, "ok", &mid, None);
    deliver(&mut c, &mut s, 1, "redirect", &mid, None);
    assert_eq!(
        (
            s.duplicates,
            c.mids_with_two_replies,
            s.incorrect,
            c.put_oks
        ),
        (2, 2, 0, 1)
    );
    assert_eq!(s.total_put, 1, "a duplicate is never retried");
}

#[test]
fn a_reply_to_another_clients_outstanding_mid_is_unexpected() {
    let (mut c, mut s) = one_put_sent();
    let mid = last_mid(&c);
    deliver(&mut c, &mut s, 1, "ok", &mid, None);
    assert_eq!((s.incorrect, c.mids_with_two_replies, c.put_oks), (1, 0, 0));
    // Still outstanding for its own client.
    deliver(&mut c, &mut s, 0, "ok", &mid, None);
    assert_eq!((s.incorrect, c.put_oks), (1, 1));
}

#[test]
fn a_value_like_ours_but_not_ours_is_foreign_and_incorrect() {
    let mut c = Clients::new(3, 2, 4, KeyMode::PerClient, SmallRng::seed_from_u64(5));
    let mut s = Stats::default();
    let ours = one_acked_put(&mut c, &mut s);
    let last = if ours.ends_with('0') { "1" } else { "0" };
    let like = format!("{}{last}", &ours[..31]);
    assert_eq!(indexed_ids::value_id(&like), indexed_ids::value_id(&ours));
    let values = c.values.len();
    c.create(0, true, 0, &[0, 1, 2], &mut s);
    answer_last(&mut c, &mut s, 0, Some(&like));
    assert_eq!(s.incorrect, 1);
    let id = c.history.last().unwrap().value as usize;
    assert_eq!(
        (id, c.values.len(), &c.values[id]),
        (values, values + 1, &like)
    );
    // The same foreign value keeps its id; our own value is still ours, and correct.
    c.create(0, true, 0, &[0, 1, 2], &mut s);
    answer_last(&mut c, &mut s, 0, Some(&like));
    assert_eq!(c.history.last().unwrap().value as usize, id);
    c.create(0, true, 0, &[0, 1, 2], &mut s);
    answer_last(&mut c, &mut s, 0, Some(&ours));
    assert_eq!((s.incorrect, c.get_oks, c.values.len()), (2, 3, values + 1));
    assert_eq!(c.values[c.history.last().unwrap().value as usize], ours);
}

#[test]
fn shared_keys_map_each_returned_value_to_one_id() {
    let mut c = Clients::new(3, 2, 8, KeyMode::Shared(1), SmallRng::seed_from_u64(5));
    let mut s = Stats::default();
    c.create(0, false, 0, &[0, 1, 2], &mut s);
    let m: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
    let put = c.history.last().unwrap().value;
    assert_eq!(c.values[put as usize], m["value"].as_str().unwrap());
    for (value, id) in [("", 0), (m["value"].as_str().unwrap(), put), ("odd", 2)] {
        c.create(1, true, 0, &[0, 1, 2], &mut s);
        answer_last(&mut c, &mut s, 1, Some(value));
        assert_eq!(c.history.last().unwrap().value, id, "{value:?}");
    }
    assert_eq!(
        (s.incorrect, c.get_oks),
        (0, 3),
        "shared keys leave it to the checker"
    );
}

#[test]
fn finalize_lists_what_is_outstanding_oldest_first() {
    let mut c = Clients::new(3, 2, 8, KeyMode::PerClient, SmallRng::seed_from_u64(5));
    let mut s = Stats::default();
    c.create(1, false, 20, &[2], &mut s);
    let first = last_mid(&c);
    c.create(0, false, 30, &[], &mut s);
    let answered = last_mid(&c);
    c.create(0, false, 10, &[1], &mut s);
    let oldest = last_mid(&c);
    deliver(&mut c, &mut s, 0, "ok", &answered, None);
    let u = c.finalize(&mut s);
    let got: Vec<_> = u
        .iter()
        .map(|u| (u.mid.as_str(), u.sent_to.as_str()))
        .collect();
    assert_eq!(got, [(oldest.as_str(), "0001"), (first.as_str(), "0002")]);
    assert_eq!((s.unanswered_put, u[1].client.as_str()), (2, "0014"));
}
