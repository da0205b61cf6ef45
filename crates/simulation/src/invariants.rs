//! The safety properties of Raft (Figure 3 of the paper), checked after every event.
//!
//! Cheap enough to run after every step: each replica's log is mirrored as
//! `(term, prefix hash)` per index, updated only where the log changed (logs only change
//! at the tail), so two logs compare in O(1) at any index.
//!
//! A compacted log holds only what follows its snapshot. The mirror keeps what it saw of
//! the compacted prefix (committed, so it never changes), and a replica whose snapshot
//! goes past what it was seen committing (a snapshot installed, or recovered from disk)
//! gets the prefix from the committed log: its snapshot index must be committed already,
//! with the same term.
//!
//! A durable replica restarted from its disk must hold what its last completed sync made
//! durable (§5.1's stable storage): a term no lower, the same vote in that term, and its
//! log through the index the sync covered, unless a leader has since replaced that part
//! of it. Each log's terms never decrease along it, nor exceed the replica's term.

use crate::{ClientOp, ReplyRecord};
use raft::NodeId;
use raft::{CommandRef, EntryRef, EntrySpan, LogIndex, Node, ReplyKind, Role, Term};
use std::collections::BTreeMap;

/// What a durable replica's completed sync made durable: its term and vote, and its log
/// through `through`, whose entry there has the term `term_at_through`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Persisted {
    pub term: Term,
    pub voted_for: Option<NodeId>,
    pub through: LogIndex,
    pub term_at_through: Term,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Mirrored {
    term: Term,
    entry_hash: u64,
    prefix_hash: u64,
    /// A membership entry's voters, a bit per replica id (the simulation's are small).
    voters: Option<u64>,
}

pub struct Invariants {
    /// Per replica: its log as last seen.
    mirrors: Vec<Vec<Mirrored>>,
    /// Per replica: the commit index last seen (commit indexes never go down).
    commit_seen: Vec<LogIndex>,
    /// The log prefix known committed, as agreed by every replica that committed it.
    committed: Vec<Mirrored>,
    /// For each committed entry, the term of the replica that first committed it: an
    /// entry first commits at its leader, so this is the committing term. Non-decreasing
    /// along the log (committing an entry commits all before it).
    committed_in_term: Vec<Term>,
    leaders_by_term: BTreeMap<Term, usize>,
    /// Per replica: the term it leads, if it does.
    leading: Vec<Option<Term>>,
    /// Puts acknowledged to clients, by log position.
    acked_puts: Vec<(LogIndex, Term)>,
    /// Per (voter, term): the candidate it granted its vote to, as sent.
    votes: BTreeMap<(usize, Term), NodeId>,
    /// Per replica: snapshots it had installed from a leader, as last seen.
    installs_seen: Vec<u64>,
    /// Per replica: restarted from its disk since its mirror was last refreshed.
    from_disk: Vec<bool>,
    /// Per durable replica: what its syncs made durable, its log part lowered to what
    /// its log still shares with it when a leader replaces a suffix.
    persisted: Vec<Option<Persisted>>,
    /// The voters of the last membership committed (the configured one at first): each
    /// membership committed after it must differ by at most one voter, or two majorities
    /// of successive memberships could be disjoint.
    committed_voters: Option<u64>,
}

fn mix(a: u64, b: u64) -> u64 {
    // SplitMix64 finaliser over the pair: a cheap, well-spread hash.
    let mut z = a ^ b.rotate_left(29) ^ 0x9E37_79B9_7F4A_7C15;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    bytes
        .chunks(8)
        .fold(mix(seed, bytes.len() as u64), |h, chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            mix(h, u64::from_le_bytes(word))
        })
}

/// A membership's voters as a bit per id (ids under 64, as the simulation's are).
fn voter_bits(text: &str) -> Result<u64, String> {
    let membership = raft::Membership::parse(text)
        .map_err(|e| format!("a membership entry that does not parse ({e}): {text}"))?;
    Ok(membership
        .voters()
        .filter(|id| id.0 < 64)
        .fold(0, |bits, id| bits | 1 << id.0))
}

fn entry_hash(entry: EntryRef<'_>) -> u64 {
    match entry.command {
        CommandRef::Noop => mix(entry.term.0, 1),
        CommandRef::Put { key, value } => hash_bytes(
            hash_bytes(mix(entry.term.0, 2), key.as_bytes()),
            value.as_bytes(),
        ),
        CommandRef::Membership(text) => hash_bytes(mix(entry.term.0, 3), text.as_bytes()),
    }
}

impl Invariants {
    /// A membership committed at `index`: its voters differ from the last committed
    /// membership's by at most one (so any majority of the one and any of the other share
    /// a voter).
    fn check_membership_step(
        &mut self,
        nodes: &[&Node],
        index: u64,
        next: u64,
    ) -> Result<(), String> {
        let previous = self.committed_voters.get_or_insert_with(|| {
            let founder = nodes
                .iter()
                .find(|n| !n.config().joining)
                .expect("a cluster has a founding member");
            founder
                .config()
                .peers
                .iter()
                .chain([&founder.id()])
                .fold(0, |bits, id| bits | 1 << id.0)
        });
        let differ = (*previous ^ next).count_ones();
        if differ > 1 {
            return Err(format!(
                "membership change safety: the membership committed at {index} has voters {next:#b}, {differ} away from the last committed {:#b}",
                *previous
            ));
        }
        *previous = next;
        Ok(())
    }

    pub fn new(n: usize) -> Invariants {
        Invariants {
            mirrors: vec![Vec::new(); n],
            commit_seen: vec![LogIndex(0); n],
            committed: Vec::new(),
            committed_in_term: Vec::new(),
            leaders_by_term: BTreeMap::new(),
            leading: vec![None; n],
            acked_puts: Vec::new(),
            votes: BTreeMap::new(),
            installs_seen: vec![0; n],
            from_disk: vec![false; n],
            persisted: vec![None; n],
            committed_voters: None,
        }
    }

    /// Checks every property that an event at replica `stepped` could have broken.
    pub fn check_after_step(&mut self, nodes: &[&Node], stepped: usize) -> Result<(), String> {
        self.refresh_mirror(nodes[stepped], stepped)?;
        let node = nodes[stepped];

        // Election safety: at most one leader per term.
        if node.role() == Role::Leader {
            let first = *self.leaders_by_term.entry(node.term()).or_insert(stepped);
            if first != stepped {
                return Err(format!(
                    "election safety: {} and {} both lead term {}",
                    nodes[first].id(),
                    node.id(),
                    node.term().0
                ));
            }
        }

        // Log matching: if two logs hold an entry with the same index and term, the logs
        // are identical up to it. Only the stepped replica's log changed.
        for (other, _) in nodes.iter().enumerate() {
            if other != stepped {
                self.check_log_matching(nodes, stepped, other)?;
            }
        }

        // State machine safety: what a replica has committed (hence applied) agrees with
        // what every other replica committed at the same index.
        let commit = node.commit_index();
        let seen = self.commit_seen[stepped];
        if commit < seen {
            return Err(format!(
                "{}: commit index went down from {} to {}",
                node.id(),
                seen.0,
                commit.0
            ));
        }
        let applied = node.last_applied();
        if applied > commit || commit.0 - applied.0 >= node.config().apply_batch as u64 {
            return Err(format!(
                "{}: applied {} but committed {} (applies in batches of {})",
                node.id(),
                applied.0,
                commit.0,
                node.config().apply_batch
            ));
        }
        for index in seen.0 + 1..=commit.0 {
            let mine = self.mirrors[stepped][(index - 1) as usize];
            match self.committed.get((index - 1) as usize) {
                Some(agreed) if agreed.prefix_hash != mine.prefix_hash => {
                    return Err(format!(
                        "state machine safety: {} committed a different entry at {} (term {} vs {})",
                        node.id(),
                        index,
                        mine.term.0,
                        agreed.term.0
                    ));
                }
                Some(_) => {}
                None => {
                    self.committed.push(mine);
                    self.committed_in_term.push(node.term());
                    if let Some(voters) = mine.voters {
                        self.check_membership_step(nodes, index, voters)?;
                    }
                }
            }
        }
        self.commit_seen[stepped] = commit;

        // Leader completeness: a new leader holds every entry committed in an earlier term.
        // (Not every entry committed so far: a candidate frozen with the votes of an old
        // term can still win that term after later terms committed more.)
        let leading = (node.role() == Role::Leader).then(|| node.term());
        if leading.is_some()
            && self.leading[stepped] != leading
            && !self.holds_entries_committed_before(stepped, node.term())
        {
            return Err(format!(
                "leader completeness: new leader {} of term {} lacks committed entries (log {}, committed {})",
                node.id(),
                node.term().0,
                self.mirrors[stepped].len(),
                self.committed.len()
            ));
        }
        self.leading[stepped] = leading;

        // Acknowledged puts survive: each is in the committed prefix, which every leader
        // holds (checked above).
        for &(index, term) in &self.acked_puts {
            match self.committed.get((index.0 - 1) as usize) {
                Some(m) if m.term == term => {}
                _ => {
                    return Err(format!(
                        "acknowledged put at {}@{} is not in the committed log",
                        index.0, term.0
                    ));
                }
            }
        }
        Ok(())
    }

    /// Replica `i` came back from its disk as `node`: it must hold what it had made
    /// durable (its term, its vote, its log). Its commit index starts over (it is
    /// volatile state, §5.1) and it leads nothing.
    pub fn restarted(&mut self, i: usize, node: &Node) -> Result<(), String> {
        self.commit_seen[i] = LogIndex(0);
        self.leading[i] = None;
        self.installs_seen[i] = 0;
        self.from_disk[i] = true;
        let (term, vote) = (node.term(), node.voted_for());
        if let Some(&candidate) = self.votes.get(&(i, term))
            && vote != Some(candidate)
        {
            return Err(format!(
                "it forgot its vote for {candidate} in term {} (it recovered {vote:?})",
                term.0
            ));
        }
        let Some(p) = self.persisted[i] else {
            return Ok(());
        };
        if term < p.term {
            return Err(format!(
                "it recovered term {}, though term {} had been made durable",
                term.0, p.term.0
            ));
        }
        if term == p.term && p.voted_for.is_some() && vote != p.voted_for {
            return Err(format!(
                "it recovered the vote {vote:?} in term {}, though {:?} had been made durable",
                term.0, p.voted_for
            ));
        }
        if p.through.0 == 0 {
            return Ok(());
        }
        let log = node.log();
        let found = if p.through < log.snapshot_index() {
            // In the snapshot it recovered, which stands for the committed prefix.
            self.committed
                .get((p.through.0 - 1) as usize)
                .map(|c| c.term)
        } else {
            log.term_at(p.through)
        };
        if found != Some(p.term_at_through) {
            return Err(format!(
                "its log through {} (term {} there) had been made durable; it recovered {} (through {}, term {:?} there)",
                p.through.0,
                p.term_at_through.0,
                if found.is_none() { "less" } else { "another" },
                log.last_index().0,
                found.map(|t| t.0)
            ));
        }
        Ok(())
    }

    /// A sync of replica `i` completed, making `p` durable. Its log part counts only if
    /// the log still holds it, as last seen (a leader may have replaced it since the write
    /// was issued, by entries or by a snapshot; what replaced it is durable once a later
    /// sync says so). Nothing changes a log between the step that last refreshed its
    /// mirror and the completion of a sync.
    pub fn persisted(&mut self, i: usize, p: Persisted) {
        let through = p.through.0 as usize;
        let holds = through == 0
            || self.mirrors[i]
                .get(through - 1)
                .is_some_and(|m| m.term == p.term_at_through);
        let before = self.persisted[i];
        self.persisted[i] = Some(match before {
            Some(before) if !holds => Persisted {
                through: before.through,
                term_at_through: before.term_at_through,
                ..p
            },
            None if !holds => Persisted {
                through: LogIndex(0),
                term_at_through: Term(0),
                ..p
            },
            _ => p,
        });
    }

    /// Replica `voter` sent a vote for `candidate` in `term`. One vote per term (§5.2),
    /// across restarts too: the vote must be on disk before the grant leaves.
    pub fn record_vote(
        &mut self,
        voter: usize,
        term: Term,
        candidate: NodeId,
    ) -> Result<(), String> {
        let first = *self.votes.entry((voter, term)).or_insert(candidate);
        if first != candidate {
            return Err(format!(
                "replica {voter} voted twice in term {}: for {first} and for {candidate}",
                term.0
            ));
        }
        Ok(())
    }

    /// Records a client reply to `op`. An `ok` to a put must be backed by a committed
    /// entry of the answering leader's term carrying that key and value.
    pub fn record_reply(
        &mut self,
        node: &Node,
        record: &ReplyRecord,
        op: &ClientOp,
    ) -> Result<(), String> {
        let ReplyKind::Ok { value } = &record.reply.kind else {
            return Ok(());
        };
        match op {
            ClientOp::Get { .. } => {
                if value.is_none() {
                    return Err(format!("{}: ok to a get without a value", node.id()));
                }
                Ok(())
            }
            ClientOp::Put {
                key,
                value: put_value,
            } => {
                if value.is_some() {
                    return Err(format!("{}: ok to a put with a value", node.id()));
                }
                let log = node.log();
                let mut index = node.commit_index();
                let wanted = |term: Term| {
                    entry_hash(EntryRef {
                        term,
                        command: CommandRef::Put {
                            key,
                            value: put_value,
                        },
                    })
                };
                while index.0 > 0 {
                    // An entry compacted since it committed is known by its hash, as this
                    // replica's mirror last saw it (before the step that answers).
                    let (term, hash) = match log.get(index) {
                        Some(entry) => (entry.term, entry_hash(entry)),
                        None => match self.mirrors[record.from].get((index.0 - 1) as usize) {
                            Some(m) => (m.term, m.entry_hash),
                            None => break,
                        },
                    };
                    if term != node.term() {
                        break;
                    }
                    if hash == wanted(term) {
                        self.acked_puts.push((index, term));
                        return Ok(());
                    }
                    index = index.prev();
                }
                Err(format!(
                    "{}: put {key}={put_value} acknowledged (MID {}) with no committed entry for it in term {}",
                    node.id(),
                    record.reply.mid,
                    node.term().0
                ))
            }
        }
    }

    fn holds_entries_committed_before(&self, i: usize, term: Term) -> bool {
        let len = self.committed_in_term.partition_point(|&t| t < term);
        if len == 0 {
            return true;
        }
        let mirror = &self.mirrors[i];
        mirror.len() >= len && mirror[len - 1].prefix_hash == self.committed[len - 1].prefix_hash
    }

    fn check_log_matching(&self, nodes: &[&Node], a: usize, b: usize) -> Result<(), String> {
        let (ma, mb) = (&self.mirrors[a], &self.mirrors[b]);
        let mut k = ma.len().min(mb.len());
        // The highest index where the terms agree; above it the property says nothing.
        while k > 0 && ma[k - 1].term != mb[k - 1].term {
            k -= 1;
        }
        if k > 0 && ma[k - 1].prefix_hash != mb[k - 1].prefix_hash {
            return Err(format!(
                "log matching: {} and {} agree on the term at index {} but not on the entries up to it",
                nodes[a].id(),
                nodes[b].id(),
                k
            ));
        }
        Ok(())
    }

    fn refresh_mirror(&mut self, node: &Node, i: usize) -> Result<(), String> {
        let log = node.log();
        let entries = log.entries();
        let after = log.snapshot_index().0 as usize;
        let mirror = &mut self.mirrors[i];
        let installed = node.snapshots_installed();
        let replaced = std::mem::replace(&mut self.installs_seen[i], installed) != installed
            || std::mem::take(&mut self.from_disk[i]);
        // The mirror's prefix through the snapshot differs from the committed one when
        // uncommitted entries it saw there were replaced, committed and compacted all in
        // one step.
        let stale = |mirror: &Vec<Mirrored>| {
            after > 0
                && self.committed.get(after - 1).is_some_and(|c| {
                    mirror
                        .get(after - 1)
                        .is_some_and(|m| m.prefix_hash != c.prefix_hash)
                })
        };
        let rebuilt = mirror.len() < after || (replaced && after > 0) || stale(mirror);
        if rebuilt {
            // A snapshot installed from a leader or recovered from disk, or entries
            // compacted in the step that brought them, stand for the committed prefix,
            // which may differ from what the mirror saw there (uncommitted entries that
            // the snapshot replaced).
            let Some(at) = self.committed.get(after - 1) else {
                return Err(format!(
                    "{}: snapshot of {} past the committed log ({})",
                    node.id(),
                    after,
                    self.committed.len()
                ));
            };
            if at.term != log.snapshot_term() {
                return Err(format!(
                    "{}: snapshot of {} in term {}, committed in term {}",
                    node.id(),
                    after,
                    log.snapshot_term().0,
                    at.term.0
                ));
            }
            mirror.clear();
            mirror.extend_from_slice(&self.committed[..after]);
        }
        // Logs change only at the tail: find the last position still equal. The
        // compacted prefix is committed and never changes.
        let mut keep = mirror.len().min(after + entries.len());
        while keep > after {
            let m = mirror[keep - 1];
            let Some(e) = entries.get(keep - 1 - after) else {
                break;
            };
            if m.term == e.term && m.entry_hash == entry_hash(e) {
                break;
            }
            keep -= 1;
        }
        mirror.truncate(keep);
        let tail = log.span(EntrySpan {
            first: LogIndex(keep as u64 + 1),
            count: u32::MAX,
        });
        for e in tail {
            let prev = mirror.last().map_or(0, |m| m.prefix_hash);
            if let Some(before) = mirror.last()
                && e.term < before.term
            {
                return Err(format!(
                    "{}: its log goes back from term {} to term {} at index {}",
                    node.id(),
                    before.term.0,
                    e.term.0,
                    mirror.len() + 1
                ));
            }
            let h = entry_hash(e);
            let voters = match e.command {
                CommandRef::Membership(text) => Some(voter_bits(text)?),
                _ => None,
            };
            mirror.push(Mirrored {
                term: e.term,
                entry_hash: h,
                prefix_hash: mix(prev, h),
                voters,
            });
        }
        if log.last_term() > node.term() {
            return Err(format!(
                "{}: its log ends in term {}, past its own term {}",
                node.id(),
                log.last_term().0,
                node.term().0
            ));
        }
        // What its syncs made durable and its log no longer holds (a leader replaced it,
        // or a snapshot was installed over it) is no longer promised. A promise held
        // before this refresh (`persisted` checks it against the mirror), so the logs
        // differ only past `keep`, or anywhere in a prefix rebuilt from the committed one.
        if let Some(p) = self.persisted[i].as_mut() {
            let through = p.through.0 as usize;
            let holds = through == 0
                || mirror
                    .get(through - 1)
                    .is_some_and(|m| m.term == p.term_at_through);
            if !holds {
                let common = if rebuilt { 0 } else { keep.min(through) };
                p.through = LogIndex(common as u64);
                p.term_at_through = common.checked_sub(1).map_or(Term(0), |k| mirror[k].term);
            }
        }
        Ok(())
    }
}
