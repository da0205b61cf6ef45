use super::*;

fn put(client: u32, v: &str, invoke: u64, response: u64) -> Op {
    Op {
        client,
        kind: OpKind::Put {
            value: v.into(),
            acked: true,
        },
        invoke,
        response: Some(response),
        retry_group: None,
    }
}
fn lost_put(client: u32, v: &str, invoke: u64, group: Option<u64>) -> Op {
    Op {
        client,
        kind: OpKind::Put {
            value: v.into(),
            acked: false,
        },
        invoke,
        response: None,
        retry_group: group,
    }
}
fn get(client: u32, v: &str, invoke: u64, response: u64) -> Op {
    Op {
        client,
        kind: OpKind::Get { value: v.into() },
        invoke,
        response: Some(response),
        retry_group: None,
    }
}

#[test]
fn empty_and_sequential_histories_are_linearizable() {
    assert!(check_key(&[]).is_ok());
    let h = [
        get(0, "", 0, 1),
        put(0, "a", 2, 3),
        get(1, "a", 4, 5),
        put(1, "b", 6, 7),
        get(0, "b", 8, 9),
    ];
    assert!(check_key(&h).is_ok());
}

#[test]
fn concurrent_put_may_be_seen_either_way() {
    // The put overlaps both gets: old then new is fine.
    let h = [
        put(0, "a", 0, 1),
        put(1, "b", 2, 10),
        get(2, "a", 3, 4),
        get(3, "b", 5, 6),
    ];
    assert!(check_key(&h).is_ok());
}

#[test]
fn stale_read_is_a_violation() {
    let h = [put(0, "a", 0, 1), put(1, "b", 2, 3), get(2, "a", 4, 5)];
    let v = check_key(&h).unwrap_err();
    assert_eq!(v.ops.len(), 3, "{v:?}");
}

#[test]
fn a_stale_read_is_explained_as_overwritten() {
    let h = [
        get(3, "", 0, 1),
        put(0, "a", 0, 1),
        put(1, "b", 2, 3),
        get(2, "a", 4, 5),
    ];
    let v = check_key(&h).unwrap_err();
    assert_eq!(
        v.indices,
        [1, 2, 3],
        "the unrelated first read is shrunk away"
    );
    assert_eq!(
        v.reason,
        Reason::Overwritten {
            get: 3,
            written: Some(1),
            overwrite: 2
        }
    );
    assert_eq!(
        v.explanation,
        r#"client 2's get began at 4 and returned "a" (put by client 0, done at 1), but client 1's put of "b" had replaced it at 3"#
    );
    for (op, &i) in v.ops.iter().zip(&v.indices) {
        assert_eq!(op, &h[i]);
    }
}

#[test]
fn a_read_of_the_initial_value_after_a_put_is_explained() {
    let h = [put(0, "a", 0, 1), get(1, "", 2, 3)];
    let v = check_key(&h).unwrap_err();
    assert_eq!(
        v.reason,
        Reason::Overwritten {
            get: 1,
            written: None,
            overwrite: 0
        }
    );
    assert!(
        v.explanation.contains("the initial \"\""),
        "{}",
        v.explanation
    );
}

#[test]
fn a_read_from_the_future_is_explained() {
    let h = [get(1, "a", 0, 1), put(0, "a", 5, 6)];
    let v = check_key(&h).unwrap_err();
    assert_eq!(v.reason, Reason::ReadBeforeWrite { get: 0, put: 1 });
}

#[test]
fn a_read_that_only_an_order_search_refutes_has_no_pattern() {
    // Both puts overlap every read; only the order of the reads refutes it.
    let h = [
        put(0, "a", 0, 100),
        put(1, "b", 0, 100),
        get(2, "a", 10, 20),
        get(2, "b", 30, 40),
        get(3, "a", 50, 60),
    ];
    let v = check_key(&h).unwrap_err();
    assert!(
        matches!(v.reason, Reason::NoOrder { unplaced: Some(_) }),
        "{:?}",
        v.reason
    );
    assert!(
        v.explanation.starts_with("no order of these"),
        "{}",
        v.explanation
    );
}

#[test]
fn read_of_never_written_value_is_a_violation() {
    let h = [put(0, "a", 0, 1), get(1, "zzz", 2, 3)];
    let v = check_key(&h).unwrap_err();
    assert_eq!(v.reason, Reason::NeverWritten { get: 1 });
    assert_eq!(v.indices, [1]);
    assert!(
        v.ops
            .iter()
            .any(|o| matches!(&o.kind, OpKind::Get { value } if value == "zzz"))
    );
}

#[test]
fn reads_going_back_in_time_are_a_violation() {
    // Both puts concurrent with the reads, but two later reads disagree in order.
    let h = [
        put(0, "a", 0, 100),
        put(1, "b", 0, 100),
        get(2, "a", 10, 20),
        get(2, "b", 30, 40),
        get(3, "a", 50, 60),
    ];
    assert!(check_key(&h).is_err());
}

#[test]
fn shrinking_drops_irrelevant_operations() {
    let mut h = vec![];
    for i in 0..50u64 {
        h.push(put(9, &format!("x{i}"), i * 10, i * 10 + 1));
        h.push(get(8, &format!("x{i}"), i * 10 + 2, i * 10 + 3));
    }
    // A stale read at the end.
    h.push(get(7, "x3", 1000, 1001));
    let v = check_key(&h).unwrap_err();
    assert!(v.ops.len() <= 4, "{:#?}", v.ops);
    assert!(v.explanation.contains("x3"), "{}", v.explanation);
}

#[test]
fn unknown_put_may_take_effect_late() {
    // A redirected put, seen long after its attempt.
    let h = [
        lost_put(0, "a", 0, None),
        get(1, "", 5, 6),
        get(1, "a", 50, 51),
        get(2, "a", 60, 61),
    ];
    assert!(check_key(&h).is_ok());
}

#[test]
fn unknown_put_may_never_take_effect() {
    let h = [
        put(0, "a", 0, 1),
        lost_put(1, "b", 2, None),
        get(2, "a", 100, 101),
    ];
    assert!(check_key(&h).is_ok());
}

#[test]
fn unread_unknown_puts_are_dropped_before_the_search() {
    let mut h = vec![put(0, "a", 0, 1)];
    for i in 0..500 {
        h.push(lost_put(1, &format!("v{i}"), 2 + i, None));
    }
    h.push(get(2, "a", 1000, 1001));
    let p = prepare(&h);
    assert_eq!(p.dropped_unread, 500);
    assert_eq!(p.ops.len(), 2);
    assert!(matches!(
        check_key_bounded(&h, 10_000),
        Verdict::Linearizable
    ));
}

#[test]
fn acked_retry_closes_the_earlier_attempt() {
    // Attempt 1 of "b" is redirected; the retry is acked at 20; then "c" is written and
    // read. A read of "b" after that would need attempt 1 to take effect after its retry
    // was acknowledged, which the retry rule forbids.
    let h = [
        put(0, "a", 0, 1),
        lost_put(1, "b", 2, Some(7)),
        Op {
            client: 1,
            kind: OpKind::Put {
                value: "b".into(),
                acked: true,
            },
            invoke: 10,
            response: Some(20),
            retry_group: Some(7),
        },
        put(2, "c", 30, 31),
        get(3, "b", 40, 41),
    ];
    let p = prepare(&h);
    assert_eq!(p.closed_by_retry, 1);
    assert!(check_key(&h).is_err());
    // Without the group, attempt 1 could land after "c": linearizable.
    let mut open = h.clone();
    open[1].retry_group = None;
    assert!(check_key(&open).is_ok());
}

#[test]
fn get_without_reply_is_ignored() {
    let h = [
        put(0, "a", 0, 1),
        Op {
            client: 1,
            kind: OpKind::Get {
                value: "zzz".into(),
            },
            invoke: 2,
            response: None,
            retry_group: None,
        },
    ];
    assert!(check_key(&h).is_ok());
}

#[test]
fn long_concurrent_history_is_fast() {
    // 3000 operations, four clients overlapping pairwise: must finish quickly.
    let mut h = vec![];
    let mut t = 0u64;
    for i in 0..750 {
        let v = format!("v{i}");
        h.push(put(0, &v, t, t + 15));
        h.push(get(1, &v, t + 14, t + 20));
        h.push(lost_put(2, &format!("lost{i}"), t + 1, None));
        h.push(get(3, &v, t + 16, t + 30));
        t += 31;
    }
    assert!(matches!(
        check_key_bounded(&h, 1_000_000),
        Verdict::Linearizable
    ));
}

#[test]
fn an_unknown_put_closes_at_the_last_read_of_its_value() {
    // Thirty puts, each sent twice with no reply to either attempt and its value read
    // once; then a read of a value never written. Open to the end, the spare attempt of
    // each put doubles the states the search must rule out before it can call the last
    // read a violation (2^30); closed at its value's last read, each is decided at once.
    let mut h = Vec::new();
    for i in 0..30u64 {
        let value = format!("v{i}");
        h.push(lost_put(1, &value, 10 * i, Some(i)));
        h.push(lost_put(1, &value, 10 * i + 1, Some(i)));
        h.push(get(2, &value, 10 * i + 2, 10 * i + 3));
    }
    h.push(get(2, "never", 1000, 1001));
    let p = prepare(&h);
    assert_eq!(p.closed_by_last_read, 60);
    assert!(matches!(
        check_key_bounded(&h, 1_000_000),
        Verdict::Violation(_)
    ));
    // Still linearizable without the impossible read.
    h.pop();
    assert!(matches!(
        check_key_bounded(&h, 1_000_000),
        Verdict::Linearizable
    ));
}

#[test]
fn an_unknown_put_whose_value_was_read_only_before_it_was_sent_is_dropped() {
    // "b" is read at 3-4 from the acked put; the lost put of "b" sent at 50 explains no
    // read, and may take effect never.
    let h = [
        put(0, "b", 0, 1),
        get(2, "b", 3, 4),
        put(0, "c", 10, 11),
        lost_put(1, "b", 50, None),
        get(2, "c", 60, 61),
    ];
    let p = prepare(&h);
    assert_eq!(p.dropped_unread, 1);
    assert!(check_key(&h).is_ok());
    // A read of "b" after it was sent does need it.
    let mut h = h.to_vec();
    h.push(get(2, "b", 70, 71));
    assert_eq!(prepare(&h).dropped_unread, 0);
    assert!(check_key(&h).is_ok());
}

#[test]
fn the_attempts_of_a_put_with_one_window_are_interchangeable() {
    // As a seeded simulation had it: a client retries one put 34 times while no leader
    // answers, another retries its put 6 times, then both retries are acknowledged.
    // Each attempt may have taken effect or not, but which of them did changes nothing.
    // With an impossible read at the end the search must rule out every choice: 2^40
    // sets of attempts, or 35 x 7 counts of them.
    let mut h = vec![put(0, "a", 0, 1)];
    for i in 0..34 {
        h.push(lost_put(1, "b", 10 + i, Some(1)));
    }
    for i in 0..6 {
        h.push(lost_put(2, "c", 50 + i, Some(2)));
    }
    h.push(get(3, "a", 60, 61));
    let acked = |client: u32, value: &str, invoke: u64, group: u64| Op {
        retry_group: Some(group),
        ..put(client, value, invoke, invoke + 1)
    };
    h.push(acked(1, "b", 100, 1));
    h.push(get(3, "b", 102, 103));
    h.push(acked(2, "c", 110, 2));
    h.push(get(3, "c", 120, 121));
    assert_eq!(prepare(&h).closed_by_retry, 40);
    assert!(matches!(
        check_key_bounded(&h, 1_000_000),
        Verdict::Linearizable
    ));
    h.push(get(3, "never", 130, 131));
    assert!(matches!(
        check_key_bounded(&h, 1_000_000),
        Verdict::Violation(_)
    ));
}

#[test]
fn twins_may_both_take_effect_when_the_reads_need_it() {
    // "b" read, then "c" written and read, then "b" read again: the two attempts of "b"
    // (one window, no reply to either) must both have taken effect, one on each side of
    // "c". The search takes twins in order, but must still use the second.
    let h = [
        put(0, "a", 0, 1),
        lost_put(1, "b", 2, Some(9)),
        lost_put(1, "b", 3, Some(9)),
        get(2, "b", 5, 6),
        put(0, "c", 10, 11),
        get(2, "c", 12, 13),
        get(2, "b", 20, 21),
        put(0, "d", 30, 31),
        get(2, "d", 40, 41),
    ];
    assert!(check_key(&h).is_ok());
    // Without the second attempt it is not linearizable.
    let mut one = h.to_vec();
    one.remove(2);
    assert!(check_key(&one).is_err());
}
