//! Linearizability checking of one register: the history of one key of a key-value store.
//!
//! A history is a set of operations, each with an invocation time and (maybe) a response
//! time. It is linearizable when every operation can be given one instant inside its window
//! so that, in the order of those instants, every get returns the value of the last put
//! before it (or `""`, the initial value, if there is none).
//!
//! The search is the Wing-Gong algorithm with Lowe's memoization (as in Porcupine): walk the
//! time-ordered list of call and return events; at a call, try to linearize that operation
//! now; at a return whose operation was not linearized yet, backtrack. A cache of the states
//! already explored, `(set of linearized operations, current value)`, keeps it from redoing
//! work. The set is hashed incrementally (Zobrist, 128 bits), so a state costs one table probe.
//!
//! Puts whose outcome is unknown (the client got a redirect, a fail or no reply) are
//! *optional*: they may take effect at any instant after their invocation, or never. Two facts
//! keep such histories tractable, applied by [`prepare`] before the search:
//! - an unknown put whose value no get ever returned can be dropped: taking it out of a
//!   linearization leaves every read unchanged, and a history with it is linearizable exactly
//!   when the history without it is (let it take effect "never");
//! - once a retry of the same logical put (same `retry_group`) is acknowledged, an earlier
//!   attempt took effect before that acknowledgement or never (under Raft its entry can no
//!   longer commit), so its window closes there;
//! - an unknown put that takes effect after the last reply of a get that returned its value
//!   explains no read (every get that saw its value was linearized before), and a later
//!   get that saw another value saw it with or without this put; so its window closes at
//!   that reply (it took effect before or never), and if that reply came before the put
//!   was sent, the put is dropped as if unread. Without this, a put retried with no reply
//!   to any attempt kept its later attempts open to the end of the history.
//!
//! And the search itself takes the attempts of a put that share a value and a window as
//! interchangeable (`Twins`).
//!
//! The API has no I/O and no knowledge of any simulator: times are plain `u64` (any unit).

use std::collections::{HashMap, HashSet};
use std::fmt;

/// One operation on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Who invoked it (only used in reports).
    pub client: u32,
    pub kind: OpKind,
    /// When the request was sent.
    pub invoke: u64,
    /// When the reply arrived; `None`: no reply, outcome unknown. Required for an acked put
    /// and for a get (a get without a reply says nothing and is ignored).
    pub response: Option<u64>,
    /// Links the attempts (retries under new MIDs) of one logical put.
    pub retry_group: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpKind {
    /// `acked: false`: the put got a redirect, a fail or no reply, so it may or may not have
    /// taken effect.
    Put { value: String, acked: bool },
    /// A get answered `ok` with `value` (`""`: never written).
    Get { value: String },
}

/// A history that has no linearization.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The smallest offending sub-history found (itself not linearizable), by invocation time.
    pub ops: Vec<Op>,
    /// Where each of `ops` is in the checked slice, so a caller can point at its own records.
    pub indices: Vec<usize>,
    /// Why `ops` cannot be ordered, for a caller that words it in its own units.
    pub reason: Reason,
    /// `reason` in a sentence, with times as given.
    pub explanation: String,
}

/// Why the operations of a violation cannot be ordered, in the simplest pattern they fit.
/// Every field is an index into the checked slice, and names an operation of the violation.
///
/// The patterns hold of the whole history, not only of the violation: shrinking never takes
/// out a put whose value a remaining get returned, so the puts of a value named here are all
/// of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// `get` returned a value that no put wrote.
    NeverWritten { get: usize },
    /// `get` returned a value whose only put began after the get had returned.
    ReadBeforeWrite { get: usize, put: usize },
    /// `get` returned a value already overwritten when it began: `overwrite`, an
    /// acknowledged put of another value, began after `written` (the put of the value
    /// returned; `None`: the initial `""`) had finished, and finished before the get began.
    Overwritten {
        get: usize,
        written: Option<usize>,
        overwrite: usize,
    },
    /// None of the patterns above: no order fits, and the search could not place
    /// `unplaced` (when it knows which).
    NoOrder { unplaced: Option<usize> },
}

/// The outcome of a bounded search.
#[derive(Clone, Debug)]
pub enum Verdict {
    Linearizable,
    Violation(Violation),
    /// The search explored `states_max` states without an answer.
    Unknown {
        states: u64,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = match self.response {
            Some(t) => t.to_string(),
            None => "?".to_string(),
        };
        match &self.kind {
            OpKind::Put { value, acked } => write!(
                f,
                "client {} put {:?} [{}, {}]{}",
                self.client,
                value,
                self.invoke,
                end,
                if *acked { "" } else { " (outcome unknown)" }
            ),
            OpKind::Get { value } => write!(
                f,
                "client {} get -> {:?} [{}, {}]",
                self.client, value, self.invoke, end
            ),
        }
    }
}

/// Checks one key's history (initial value `""`) with no limit on the search.
pub fn check_key(ops: &[Op]) -> Result<(), Violation> {
    match check_key_bounded(ops, u64::MAX) {
        Verdict::Linearizable | Verdict::Unknown { .. } => Ok(()),
        Verdict::Violation(v) => Err(v),
    }
}

/// Checks one key's history, giving up after `states_max` explored states.
pub fn check_key_bounded(ops: &[Op], states_max: u64) -> Verdict {
    let prepared = prepare(ops);
    let all: Vec<usize> = (0..prepared.ops.len()).collect();
    match search(&prepared, &all, states_max) {
        Search::Linearizable => Verdict::Linearizable,
        Search::Unknown(states) => Verdict::Unknown { states },
        Search::Stuck(_) => {
            let (mut kept, stuck) = shrink(&prepared, all, states_max);
            kept.sort_by_key(|&i| (prepared.ops[i].invoke, prepared.ops[i].orig));
            let reason = reason(&prepared, &kept, stuck);
            let indices: Vec<usize> = kept.iter().map(|&i| prepared.ops[i].orig).collect();
            let explanation = explain(ops, &reason, indices.len());
            Verdict::Violation(Violation {
                ops: indices.iter().map(|&i| ops[i].clone()).collect(),
                indices,
                reason,
                explanation,
            })
        }
    }
}

/// The simplest pattern that the violating subset `kept` (indices into `p.ops`) fits, with
/// indices into the caller's slice.
fn reason(p: &Prepared, kept: &[usize], stuck: Option<usize>) -> Reason {
    let orig = |i: usize| p.ops[i].orig;
    let puts_of = |value: u32| {
        kept.iter()
            .copied()
            .filter(move |&i| p.ops[i].is_put && p.ops[i].value == value)
    };
    for &g in kept.iter().filter(|&&i| !p.ops[i].is_put) {
        let get = &p.ops[g];
        if get.value != 0 && puts_of(get.value).next().is_none() {
            return Reason::NeverWritten { get: orig(g) };
        }
        if get.value != 0 && puts_of(get.value).all(|w| p.ops[w].invoke > get.deadline) {
            let put = puts_of(get.value).min_by_key(|&w| p.ops[w].invoke);
            if let Some(put) = put {
                return Reason::ReadBeforeWrite {
                    get: orig(g),
                    put: orig(put),
                };
            }
        }
        // The put of the value read that could have taken effect last (`None`: only the
        // initial value; an optional put with an open window could take effect any time).
        let written = puts_of(get.value).max_by_key(|&w| p.ops[w].deadline);
        let overwrite = kept
            .iter()
            .copied()
            .filter(|&w| {
                let o = &p.ops[w];
                o.is_put
                    && !o.optional
                    && o.value != get.value
                    && o.deadline < get.invoke
                    && written.is_none_or(|w| o.invoke > p.ops[w].deadline)
            })
            .min_by_key(|&w| p.ops[w].deadline);
        // (A get of a value other than `""` has a put of it here: see `NeverWritten`.)
        if let Some(w) = overwrite {
            return Reason::Overwritten {
                get: orig(g),
                written: written.map(orig),
                overwrite: orig(w),
            };
        }
    }
    Reason::NoOrder {
        unplaced: stuck.map(orig),
    }
}

/// `reason` in a sentence, for a history of `count` operations in `ops`.
fn explain(ops: &[Op], reason: &Reason, count: usize) -> String {
    let value = |i: usize| match &ops[i].kind {
        OpKind::Put { value, .. } | OpKind::Get { value } => value.clone(),
    };
    let end = |i: usize| ops[i].response.map_or("?".to_string(), |t| t.to_string());
    match *reason {
        Reason::NeverWritten { get } => format!(
            "client {}'s get returned {:?}, which no put wrote",
            ops[get].client,
            value(get)
        ),
        Reason::ReadBeforeWrite { get, put } => format!(
            "client {}'s get returned {:?} at {}, before client {}'s put of it began at {}",
            ops[get].client,
            value(get),
            end(get),
            ops[put].client,
            ops[put].invoke
        ),
        Reason::Overwritten {
            get,
            written,
            overwrite,
        } => {
            let old = match written {
                Some(w) => format!(
                    "{:?} (put by client {}, done at {})",
                    value(get),
                    ops[w].client,
                    end(w)
                ),
                None => "the initial \"\"".to_string(),
            };
            format!(
                "client {}'s get began at {} and returned {old}, but client {}'s put of {:?} had replaced it at {}",
                ops[get].client,
                ops[get].invoke,
                ops[overwrite].client,
                value(overwrite),
                end(overwrite)
            )
        }
        Reason::NoOrder { unplaced } => match unplaced {
            Some(i) => format!(
                "no order of these {count} operations fits their windows; the search could not place: {}",
                ops[i]
            ),
            None => format!("no order of these {count} operations fits their windows"),
        },
    }
}

/// An operation ready for the search: value interned, window explicit.
#[derive(Clone, Debug)]
pub struct PreparedOp {
    /// Index into the caller's slice.
    pub orig: usize,
    pub is_put: bool,
    /// Interned value (0 is `""`).
    pub value: u32,
    pub invoke: u64,
    /// The latest instant it can take effect (`u64::MAX`: open).
    pub deadline: u64,
    /// May never take effect (a put of unknown outcome).
    pub optional: bool,
}

/// A history after the reductions described in the module docs.
#[derive(Clone, Debug, Default)]
pub struct Prepared {
    pub ops: Vec<PreparedOp>,
    /// How many unknown puts were dropped because nobody read their value after they were
    /// sent.
    pub dropped_unread: usize,
    /// How many unknown puts had their window closed by a later acked retry.
    pub closed_by_retry: usize,
    /// How many unknown puts had their window closed by the last read of their value.
    pub closed_by_last_read: usize,
}

/// Interns values, drops uninformative operations, closes retry windows.
pub fn prepare<'a>(ops: &'a [Op]) -> Prepared {
    let mut values: HashMap<&str, u32> = HashMap::new();
    values.insert("", 0);
    let intern = |s: &'a str, values: &mut HashMap<&'a str, u32>| -> u32 {
        let next = values.len() as u32;
        *values.entry(s).or_insert(next)
    };
    // Earliest acknowledgement of each retry group.
    let mut group_ack: HashMap<u64, u64> = HashMap::new();
    for op in ops {
        if let (OpKind::Put { acked: true, .. }, Some(t), Some(g)) =
            (&op.kind, op.response, op.retry_group)
        {
            let e = group_ack.entry(g).or_insert(t);
            *e = (*e).min(t);
        }
    }
    // The last reply of a get of each value.
    let mut last_read: HashMap<&str, u64> = HashMap::new();
    for op in ops {
        if let (OpKind::Get { value }, Some(t)) = (&op.kind, op.response) {
            let last = last_read.entry(value.as_str()).or_insert(t);
            *last = (*last).max(t);
        }
    }
    let mut out = Prepared::default();
    for (orig, op) in ops.iter().enumerate() {
        match &op.kind {
            OpKind::Get { value } => {
                let Some(resp) = op.response else { continue };
                let value = intern(value, &mut values);
                out.ops.push(PreparedOp {
                    orig,
                    is_put: false,
                    value,
                    invoke: op.invoke,
                    deadline: resp.max(op.invoke),
                    optional: false,
                });
            }
            OpKind::Put { value, acked } => {
                let known = *acked && op.response.is_some();
                let last_read = last_read.get(value.as_str()).copied();
                if !known && last_read.is_none_or(|t| t < op.invoke) {
                    out.dropped_unread += 1;
                    continue;
                }
                let deadline = if known {
                    op.response.unwrap_or(u64::MAX).max(op.invoke)
                } else {
                    let by_retry = match op.retry_group.and_then(|g| group_ack.get(&g)) {
                        Some(&t) if t >= op.invoke => {
                            out.closed_by_retry += 1;
                            t
                        }
                        _ => u64::MAX,
                    };
                    let last_read = last_read.expect("an unread unknown put is dropped");
                    if last_read < by_retry {
                        out.closed_by_last_read += 1;
                    }
                    by_retry.min(last_read)
                };
                let value = intern(value, &mut values);
                out.ops.push(PreparedOp {
                    orig,
                    is_put: true,
                    value,
                    invoke: op.invoke,
                    deadline,
                    optional: !known,
                });
            }
        }
    }
    out
}

/// Twins: puts of unknown outcome with the same value and the same deadline (the attempts
/// of one logical put, retried many times while no leader answered, and closed by the
/// same acknowledged retry). Which of them took effect changes nothing but the set the
/// search remembers, so a history with 34 such attempts had 2^34 sets to rule out (a
/// seeded simulation's check of one grew to 15 GB before the kernel killed it). Any
/// linearization that uses some of them can use the earliest sent instead: give the k-th
/// earliest instant among those used to the k-th earliest sent (at least k were sent by
/// then, since each used one was sent before its instant), and the rest take effect never.
/// So the search linearizes a twin only once every earlier-sent twin of its group is: the
/// linearized ones are always the first of their group, one set per count.
///
/// A twin's deadline is its group's: there, the search decides a pending twin never took
/// effect, and it always picks the last-sent one pending, so that the ones decided never
/// are the last of the group. The set of twins decided then tells how many of each kind
/// there are while some are pending, so the states the search remembers stay exact.
struct Twins {
    /// Per op (index into `Prepared::ops`), its group and its rank in it by time sent:
    /// looked up at every step of the search, so a slot per op rather than a map.
    member: Vec<Option<(usize, u32)>>,
    /// Per group, its ops by rank.
    groups: Vec<Vec<usize>>,
}

impl Twins {
    fn of(p: &Prepared, subset: &[usize]) -> Twins {
        let mut by_key: HashMap<(u32, u64), Vec<usize>> = HashMap::new();
        for &i in subset {
            let op = &p.ops[i];
            if op.is_put && op.optional {
                by_key.entry((op.value, op.deadline)).or_default().push(i);
            }
        }
        let mut member = vec![None; p.ops.len()];
        let mut groups = Vec::new();
        for mut ops in by_key.into_values().filter(|ops| ops.len() > 1) {
            ops.sort_by_key(|&i| (p.ops[i].invoke, i));
            for (rank, &i) in ops.iter().enumerate() {
                member[i] = Some((groups.len(), rank as u32));
            }
            groups.push(ops);
        }
        Twins { member, groups }
    }

    fn of_op(&self, op: usize) -> Option<(usize, u32)> {
        self.member[op]
    }
}

enum Search {
    Linearizable,
    /// No linearization; the operation whose return blocked the deepest attempt.
    Stuck(Option<usize>),
    Unknown(u64),
}

const NONE: usize = usize::MAX;

#[derive(Clone, Copy)]
struct Entry {
    /// Index into `Prepared::ops`.
    op: usize,
    is_call: bool,
    /// For a call, its return entry; for a return, its call entry.
    partner: usize,
    prev: usize,
    next: usize,
}

/// 64-bit mixer (splitmix64) for deterministic Zobrist keys.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn zobrist(i: usize) -> u128 {
    let a = mix(i as u64 * 2 + 1);
    let b = mix(a ^ 0xD1B5_4A32_D192_ED03);
    (u128::from(a) << 64) | u128::from(b)
}

/// Runs the search over the subset `subset` of `p.ops`.
fn search(p: &Prepared, subset: &[usize], states_max: u64) -> Search {
    // Events: (time, is_return, op). Calls sort before returns at equal times, so touching
    // windows count as overlapping (the lenient reading).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(subset.len() * 2);
    for &i in subset {
        let op = &p.ops[i];
        events.push((op.invoke, false, i));
        events.push((op.deadline, true, i));
    }
    events.sort_unstable();
    // Entry 0 is the head sentinel.
    let mut entries: Vec<Entry> = Vec::with_capacity(events.len() + 1);
    entries.push(Entry {
        op: NONE,
        is_call: false,
        partner: NONE,
        prev: NONE,
        next: NONE,
    });
    let mut call_at: HashMap<usize, usize> = HashMap::with_capacity(subset.len());
    for (k, &(_, is_return, op)) in events.iter().enumerate() {
        let idx = k + 1;
        entries.push(Entry {
            op,
            is_call: !is_return,
            partner: NONE,
            prev: idx - 1,
            next: NONE,
        });
        entries[idx - 1].next = idx;
        if is_return {
            let c = call_at[&op];
            entries[c].partner = idx;
            entries[idx].partner = c;
        } else {
            call_at.insert(op, idx);
        }
    }
    let keys: HashMap<usize, u128> = subset.iter().map(|&i| (i, zobrist(i))).collect();
    let twins = Twins::of(p, subset);
    // Per group of twins, how many of its members are linearized (always the first ones)
    // and how many decided never (always the last ones).
    let mut twins_linearized: Vec<u32> = vec![0; twins.groups.len()];
    let mut twins_never: Vec<u32> = vec![0; twins.groups.len()];

    let lift = |entries: &mut Vec<Entry>, call: usize| {
        let ret = entries[call].partner;
        for e in [call, ret] {
            let (prev, next) = (entries[e].prev, entries[e].next);
            entries[prev].next = next;
            if next != NONE {
                entries[next].prev = prev;
            }
        }
    };
    let unlift = |entries: &mut Vec<Entry>, call: usize| {
        let ret = entries[call].partner;
        for e in [ret, call] {
            let (prev, next) = (entries[e].prev, entries[e].next);
            entries[prev].next = e;
            if next != NONE {
                entries[next].prev = e;
            }
        }
    };

    let mut cache: HashSet<(u128, u32)> = HashSet::new();
    // Each step: the call lifted, the value before it, and the group of twins whose count
    // it raised, with whether the twin was linearized (or decided never).
    type TwinCounted = Option<(usize, bool)>;
    let mut stack: Vec<(usize, u32, TwinCounted)> = Vec::new();
    let mut bits: u128 = 0;
    let mut state: u32 = 0;
    let mut entry = entries[0].next;
    let mut states: u64 = 0;
    let mut deepest = 0usize;
    let mut stuck_op: Option<usize> = None;
    while entries[0].next != NONE {
        if entry == NONE {
            // Only reachable if a call has no return, which construction rules out.
            return Search::Stuck(stuck_op);
        }
        let e = entries[entry];
        let op = &p.ops[e.op];
        let (call, next_state) = if e.is_call {
            if op.is_put {
                let in_turn = twins
                    .of_op(e.op)
                    .is_none_or(|(group, rank)| twins_linearized[group] == rank);
                (in_turn.then_some(entry), op.value)
            } else if op.value == state {
                (Some(entry), state)
            } else {
                (None, state)
            }
        } else if op.optional {
            // Its deadline passed without it taking effect: it never did (or, for a twin,
            // the last-sent pending one of its group never did).
            let never = match twins.of_op(e.op) {
                Some((group, _)) => {
                    let last = twins.groups[group].len() - 1 - twins_never[group] as usize;
                    call_at[&twins.groups[group][last]]
                }
                None => e.partner,
            };
            (Some(never), state)
        } else {
            (None, state)
        };
        if let Some(call) = call {
            let new_bits = bits ^ keys[&entries[call].op];
            if cache.insert((new_bits, next_state)) {
                states += 1;
                if states > states_max {
                    return Search::Unknown(states);
                }
                let counted = twins
                    .of_op(entries[call].op)
                    .map(|(group, _)| (group, e.is_call));
                match counted {
                    Some((group, true)) => twins_linearized[group] += 1,
                    Some((group, false)) => twins_never[group] += 1,
                    None => {}
                }
                stack.push((call, state, counted));
                bits = new_bits;
                state = next_state;
                lift(&mut entries, call);
                entry = entries[0].next;
                continue;
            }
            if e.is_call {
                entry = e.next;
                continue;
            }
        } else if e.is_call {
            entry = e.next;
            continue;
        }
        // A return of an operation not linearized yet: backtrack.
        if stack.len() >= deepest {
            deepest = stack.len();
            stuck_op = Some(e.op);
        }
        let Some((call, old_state, counted)) = stack.pop() else {
            return Search::Stuck(stuck_op);
        };
        match counted {
            Some((group, true)) => twins_linearized[group] -= 1,
            Some((group, false)) => twins_never[group] -= 1,
            None => {}
        }
        unlift(&mut entries, call);
        bits ^= keys[&entries[call].op];
        state = old_state;
        entry = entries[call].next;
    }
    Search::Linearizable
}

/// Shrinks a violating subset while keeping it a witness: taking out a get, or a put whose
/// value no remaining get returns, cannot turn a linearizable history into a violating one, so
/// whatever still fails after such removals proves the original fails too.
fn shrink(p: &Prepared, mut kept: Vec<usize>, states_max: u64) -> (Vec<usize>, Option<usize>) {
    const SEARCHES_MAX: usize = 400;
    let budget = states_max.min(200_000);
    let mut searches = 0usize;
    let fails = |set: &[usize], searches: &mut usize| -> Option<Option<usize>> {
        *searches += 1;
        match search(p, set, budget) {
            Search::Stuck(s) => Some(s),
            _ => None,
        }
    };
    let removable = |set: &[usize], i: usize| -> bool {
        let op = &p.ops[i];
        !op.is_put
            || !set
                .iter()
                .any(|&j| !p.ops[j].is_put && p.ops[j].value == op.value)
    };
    let mut stuck = None;
    let mut chunk = kept.len().div_ceil(2).max(1);
    loop {
        let mut progress = false;
        let mut start = 0;
        while start < kept.len() && searches < SEARCHES_MAX {
            let end = (start + chunk).min(kept.len());
            let candidate: Vec<usize> = kept
                .iter()
                .enumerate()
                .filter(|&(k, &i)| !(k >= start && k < end && removable(&kept, i)))
                .map(|(_, &i)| i)
                .collect();
            if candidate.len() < kept.len()
                && let Some(s) = fails(&candidate, &mut searches)
            {
                kept = candidate;
                stuck = s;
                progress = true;
                continue;
            }
            start = end;
        }
        if searches >= SEARCHES_MAX || (chunk == 1 && !progress) {
            break;
        }
        if !progress {
            chunk = chunk.div_ceil(2);
        }
    }
    if stuck.is_none()
        && let Search::Stuck(s) = search(p, &kept, budget)
    {
        stuck = s;
    }
    (kept, stuck)
}

#[cfg(test)]
mod tests;
