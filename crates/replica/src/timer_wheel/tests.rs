use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn ms(n: u64) -> Time {
    Time::from_millis(n)
}

fn drain(wheel: &mut TimerWheel<u32>, now: Time) -> Vec<u32> {
    let mut fired = Vec::new();
    wheel.advance(now, &mut fired);
    fired
}

#[test]
fn fires_in_deadline_order_with_ties_in_insertion_order() {
    let mut wheel = TimerWheel::new();
    wheel.insert(ms(30), 3);
    wheel.insert(ms(10), 1);
    wheel.insert(ms(20), 20);
    wheel.insert(ms(20), 21);
    wheel.insert(ms(20), 22);
    wheel.insert(Time(10_500), 15); // same tick as 10 ms, later
    assert_eq!(wheel.next_deadline(), Some(ms(10)));
    assert_eq!(drain(&mut wheel, ms(100)), vec![1, 15, 20, 21, 22, 3]);
    assert!(wheel.is_empty());
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn never_fires_early_even_within_a_tick() {
    let mut wheel = TimerWheel::new();
    wheel.insert(Time(5_700), 1);
    assert_eq!(drain(&mut wheel, Time(5_000)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, Time(5_699)), Vec::<u32>::new());
    assert_eq!(wheel.next_deadline(), Some(Time(5_700)));
    assert_eq!(drain(&mut wheel, Time(5_700)), vec![1]);
}

#[test]
fn cancel_and_stale_handles() {
    let mut wheel = TimerWheel::new();
    let a = wheel.insert(ms(10), 1);
    let b = wheel.insert(ms(20), 2);
    assert_eq!(wheel.cancel(a), Some(1));
    assert_eq!(wheel.cancel(a), None, "cancelling twice does nothing");
    // The freed node is reused; the old handle must not reach the new timer.
    let c = wheel.insert(ms(15), 3);
    assert_eq!(wheel.cancel(a), None);
    assert_eq!(wheel.next_deadline(), Some(ms(15)));
    assert_eq!(drain(&mut wheel, ms(15)), vec![3]);
    assert_eq!(wheel.cancel(c), None, "a fired timer cannot be cancelled");
    assert_eq!(wheel.len(), 1);
    assert_eq!(wheel.cancel(b), Some(2));
    assert!(wheel.is_empty());
    assert_eq!(drain(&mut wheel, ms(1000)), Vec::<u32>::new());
}

#[test]
fn cancel_while_due_but_not_yet_popped() {
    let mut wheel = TimerWheel::new();
    wheel.insert(ms(1), 1);
    let b = wheel.insert(ms(2), 2);
    wheel.insert(ms(3), 3);
    assert_eq!(wheel.pop_expired(ms(5)), Some(1));
    // Reacting to the first, the caller cancels the second and arms a new one.
    assert_eq!(wheel.cancel(b), Some(2));
    wheel.insert(ms(4), 4);
    wheel.insert(ms(0), 0); // in the past: due at once, before 3 and 4
    assert_eq!(wheel.pop_expired(ms(5)), Some(0));
    assert_eq!(wheel.pop_expired(ms(5)), Some(3));
    assert_eq!(wheel.pop_expired(ms(5)), Some(4));
    assert_eq!(wheel.pop_expired(ms(5)), None);
}

#[test]
fn re_arming_replaces_the_deadline() {
    let mut wheel = TimerWheel::new();
    let mut handle = wheel.insert(ms(100), 7);
    for step in 1..=10 {
        wheel.cancel(handle);
        handle = wheel.insert(ms(100 + step * 50), 7);
    }
    assert_eq!(wheel.len(), 1);
    assert_eq!(wheel.next_deadline(), Some(ms(600)));
    assert_eq!(drain(&mut wheel, ms(599)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, ms(600)), vec![7]);
}

#[test]
fn far_future_deadlines_wait_their_rotation() {
    let mut wheel = TimerWheel::with_geometry(Span::from_millis(1), 8);
    wheel.insert(ms(3), 1);
    wheel.insert(ms(3 + 8), 2); // same slot, one rotation later
    wheel.insert(ms(3 + 80), 3); // ten rotations later
    wheel.insert(ms(1_000_000), 4);
    assert_eq!(drain(&mut wheel, ms(3)), vec![1]);
    assert_eq!(wheel.next_deadline(), Some(ms(11)));
    assert_eq!(drain(&mut wheel, ms(10)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, ms(11)), vec![2]);
    assert_eq!(wheel.next_deadline(), Some(ms(83)));
    for t in 12..83 {
        assert_eq!(drain(&mut wheel, ms(t)), Vec::<u32>::new(), "at {t} ms");
    }
    assert_eq!(drain(&mut wheel, ms(83)), vec![3]);
    assert_eq!(wheel.next_deadline(), Some(ms(1_000_000)));
    assert_eq!(drain(&mut wheel, ms(999_999)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, ms(1_000_000)), vec![4]);
}

#[test]
fn long_stall_fires_everything_due_in_order() {
    let mut wheel = TimerWheel::new();
    let hours = 3 * 3_600_000;
    for i in 0..100u32 {
        // Spread over several rotations, inserted out of order.
        wheel.insert(ms(u64::from((i * 37) % 100) * 13), i);
    }
    let late = wheel.insert(ms(hours + 1), 1000);
    let fired = drain(&mut wheel, ms(hours));
    assert_eq!(fired.len(), 100);
    let deadlines: Vec<u64> = fired
        .iter()
        .map(|&i| u64::from((i * 37) % 100) * 13)
        .collect();
    assert!(deadlines.windows(2).all(|w| w[0] <= w[1]), "{deadlines:?}");
    assert_eq!(wheel.next_deadline(), Some(ms(hours + 1)));
    assert_eq!(wheel.cancel(late), Some(1000));
}

#[test]
fn deadline_in_the_past_fires_at_next_advance() {
    let mut wheel = TimerWheel::new();
    assert_eq!(drain(&mut wheel, ms(500)), Vec::<u32>::new());
    wheel.insert(ms(100), 1);
    wheel.insert(ms(500), 2);
    assert_eq!(wheel.next_deadline(), Some(ms(100)));
    assert_eq!(drain(&mut wheel, ms(500)), vec![1, 2]);
}

#[test]
fn time_going_backwards_fires_nothing_early() {
    let mut wheel = TimerWheel::new();
    drain(&mut wheel, ms(50));
    wheel.insert(ms(60), 1);
    assert_eq!(drain(&mut wheel, ms(10)), Vec::<u32>::new());
    assert_eq!(drain(&mut wheel, ms(60)), vec![1]);
}

#[derive(Clone, Debug)]
enum Op {
    Insert { at_us: u64 },
    Cancel { pick: usize },
    Advance { by_us: u64 },
    NextDeadline,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..40_000).prop_map(|at_us| Op::Insert { at_us }),
        2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        3 => prop_oneof![0u64..3_000, 0u64..100_000].prop_map(|by_us| Op::Advance { by_us }),
        1 => Just(Op::NextDeadline),
    ]
}

proptest! {
    /// The wheel behaves like a BTreeMap keyed by (deadline, insertion order).
    #[test]
    fn matches_a_btree_model(
        slots in 1usize..16,
        tick_us in 1u64..3_000,
        ops in proptest::collection::vec(op(), 1..200),
    ) {
        let mut wheel = TimerWheel::with_geometry(Span::from_micros(tick_us), slots);
        let mut model: BTreeMap<(Time, u32), ()> = BTreeMap::new();
        let mut handles: Vec<(TimerHandle, Time, u32)> = Vec::new();
        let mut now = Time::ZERO;
        let mut next_id = 0u32;
        for op in ops {
            match op {
                Op::Insert { at_us } => {
                    // Deadlines relative to now, some in the past.
                    let at = Time((now.as_micros() + at_us).saturating_sub(5_000));
                    let handle = wheel.insert(at, next_id);
                    model.insert((at, next_id), ());
                    handles.push((handle, at, next_id));
                    next_id += 1;
                }
                Op::Cancel { pick } => {
                    if handles.is_empty() { continue; }
                    let (handle, at, id) = handles[pick % handles.len()];
                    let expected = model.remove(&(at, id)).map(|_| id);
                    prop_assert_eq!(wheel.cancel(handle), expected);
                }
                Op::Advance { by_us } => {
                    now = now + Span::from_micros(by_us);
                    let fired = drain(&mut wheel, now);
                    let mut expected = Vec::new();
                    while let Some((&(at, id), _)) = model.first_key_value() {
                        if at > now { break; }
                        model.pop_first();
                        expected.push(id);
                    }
                    prop_assert_eq!(fired, expected);
                }
                Op::NextDeadline => {
                    let expected = model.keys().next().map(|&(at, _)| at);
                    prop_assert_eq!(wheel.next_deadline(), expected);
                }
            }
            prop_assert_eq!(wheel.len(), model.len());
        }
    }
}
