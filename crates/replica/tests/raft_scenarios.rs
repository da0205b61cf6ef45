//! Scripted scenarios for one core: messages and timers are fed by hand and every effect
//! is inspected. Each pins one rule that random simulation reaches only rarely.

use datagram::NodeId;
use replica::raft::{
    AppendEntries, AppendEntriesResponse, ClientRequest, CommandRef, Config, Effect, EntryRef,
    LogIndex, Message, Node, Operation, OutgoingMessage, ReplyKind, RequestVote,
    RequestVoteResponse, Role, Term, Timer,
};
use replica::time::{Span, Time};

const ME: NodeId = NodeId(0);
const PEERS: [NodeId; 4] = [NodeId(1), NodeId(2), NodeId(3), NodeId(4)];
const CLIENT: NodeId = NodeId(0x15);

struct Script {
    node: Node,
    now: Time,
    effects: Vec<Effect>,
}

impl Script {
    fn new() -> Script {
        Script::with_config(Config::new(ME, PEERS.to_vec(), 7))
    }

    fn with_config(config: Config) -> Script {
        let mut script = Script {
            node: Node::new(config, Time::ZERO),
            now: Time::ZERO,
            effects: Vec::new(),
        };
        script.take();
        script
    }

    fn take(&mut self) -> Vec<Effect> {
        self.node.flush(self.now);
        let mut out = Vec::new();
        self.node.take_effects(&mut out);
        self.effects.extend(out.iter().cloned());
        out
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now + Span::from_millis(ms);
    }

    fn deliver(&mut self, from: NodeId, message: Message<&[EntryRef<'_>]>) -> Vec<Effect> {
        self.node.handle_message(self.now, from, message);
        self.take()
    }

    fn request(&mut self, mid: &str, operation: Operation<'_>) -> Vec<Effect> {
        self.node.handle_client_request(
            self.now,
            ClientRequest {
                client: CLIENT,
                mid,
                operation,
            },
        );
        self.take()
    }

    fn fire_election_timer(&mut self) -> Vec<Effect> {
        self.node.handle_timer(self.now, Timer::Election);
        self.take()
    }

    /// Follows `leader` in `term`, taking `entries` after `prev`.
    fn append_from(
        &mut self,
        leader: NodeId,
        term: u64,
        prev: (u64, u64),
        entries: &[EntryRef<'_>],
        commit: u64,
    ) -> Vec<Effect> {
        self.deliver(
            leader,
            Message::AppendEntries(AppendEntries {
                term: Term(term),
                prev_log_index: LogIndex(prev.0),
                prev_log_term: Term(prev.1),
                leader_commit: LogIndex(commit),
                sent_at_us: 1,
                ack_requested: true,
                entries,
            }),
        )
    }

    /// Wins an election: times out, collects pre-votes and votes from two peers.
    fn win_election(&mut self) {
        self.advance(10_000);
        let sent = self.fire_election_timer();
        let pre_term = requested_term(&sent, true).expect("a pre-vote goes out");
        for peer in &PEERS[..2] {
            self.deliver(
                *peer,
                Message::RequestVoteResponse(RequestVoteResponse {
                    term: pre_term,
                    vote_granted: true,
                    pre_vote: true,
                }),
            );
        }
        assert_eq!(self.node.role(), Role::Candidate);
        for peer in &PEERS[..2] {
            self.deliver(
                *peer,
                Message::RequestVoteResponse(RequestVoteResponse {
                    term: self.node.term(),
                    vote_granted: true,
                    pre_vote: false,
                }),
            );
        }
        assert_eq!(self.node.role(), Role::Leader);
    }

    /// A leader of a fresh term whose followers all acknowledged its no-op.
    fn leader_with_followers_caught_up() -> Script {
        let mut s = Script::new();
        s.win_election();
        let sent_at = s.now;
        for peer in PEERS {
            s.ack(peer, 1, sent_at);
        }
        s
    }

    fn put(&mut self, mid: &str) -> Vec<Effect> {
        self.request(
            mid,
            Operation::Put {
                key: "k",
                value: "v",
            },
        )
    }

    /// Lets the stall timeout pass and fires every peer timer.
    fn fire_peer_timers_after_stall(&mut self) -> Vec<Effect> {
        self.advance(self.node.config().replication_stall_timeout.as_millis());
        for i in 0..PEERS.len() {
            self.node.handle_timer(self.now, Timer::Peer(i));
        }
        self.take()
    }

    fn ack(&mut self, from: NodeId, match_index: u64, sent_at: Time) -> Vec<Effect> {
        let term = self.node.term();
        self.deliver(
            from,
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term,
                success: true,
                match_index: LogIndex(match_index),
                conflict_index: LogIndex(0),
                conflict_term: None,
                sent_at_us: sent_at.as_micros(),
            }),
        )
    }
}

fn requested_term(effects: &[Effect], pre_vote: bool) -> Option<Term> {
    effects.iter().find_map(|e| match e {
        Effect::Send {
            message: Message::RequestVote(m),
            ..
        } if m.pre_vote == pre_vote => Some(m.term),
        _ => None,
    })
}

fn replies(effects: &[Effect]) -> Vec<(String, ReplyKind)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Reply(r) => Some((r.mid.as_str().to_owned(), r.kind.clone())),
            _ => None,
        })
        .collect()
}

fn sends(effects: &[Effect]) -> Vec<(NodeId, OutgoingMessage)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, message } => Some((*to, *message)),
            _ => None,
        })
        .collect()
}

/// What `replies` returns for a lone `ok` to get `mid` carrying `value`.
fn read_ok(mid: &str, value: &str) -> Vec<(String, ReplyKind)> {
    vec![(
        mid.to_owned(),
        ReplyKind::Ok {
            value: Some(value.into()),
        },
    )]
}

/// The followers sent an append that carries entries.
fn sent_entries_to(effects: &[Effect]) -> Vec<NodeId> {
    sends(effects)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::AppendEntries(a) if a.entries.count > 0))
        .map(|(to, _)| to)
        .collect()
}

const PUT_A: EntryRef<'static> = EntryRef {
    term: Term(1),
    command: CommandRef::Put {
        key: "a",
        value: "1",
    },
};

#[test]
fn an_old_term_entry_is_not_committed_by_counting_replicas() {
    // §5.4.2 / Figure 8: a leader of term 2 finds an uncommitted entry of term 1 in its
    // log. A majority storing it does not commit it; a majority storing the leader's own
    // no-op does, and the old entry with it.
    let mut s = Script::new();
    s.append_from(NodeId(1), 1, (0, 0), &[PUT_A], 0);
    assert_eq!(s.node.log().last_index(), LogIndex(1));
    s.win_election();
    let term = s.node.term();
    assert_eq!(s.node.log().term_at(LogIndex(2)), Some(term), "the no-op");
    let sent_at = s.now;
    s.ack(PEERS[0], 1, sent_at);
    s.ack(PEERS[1], 1, sent_at);
    assert_eq!(
        s.node.commit_index(),
        LogIndex(0),
        "index 1 (term 1) is on a majority, but only current-term entries count"
    );
    s.ack(PEERS[0], 2, sent_at);
    s.ack(PEERS[1], 2, sent_at);
    assert_eq!(s.node.commit_index(), LogIndex(2));
    let effects = s.request("g1", Operation::Get { key: "a" });
    assert_eq!(
        replies(&effects),
        read_ok("g1", "1"),
        "the old entry commits with the no-op"
    );
}

#[test]
fn a_read_sees_every_committed_put_though_applying_waits_for_a_batch() {
    // Committed puts wait to be applied until `apply_batch` of them do; a get in between
    // (here from the lease) must still see them all.
    let mut config = Config::new(ME, PEERS.to_vec(), 1);
    config.apply_batch = 64;
    let mut s = Script::with_config(config);
    s.win_election();
    for (i, value) in ["1", "2", "3"].into_iter().enumerate() {
        s.request(&format!("p{i}"), Operation::Put { key: "k", value });
    }
    let sent_at = s.now;
    let last = s.node.log().last_index();
    s.ack(PEERS[0], last.0, sent_at);
    s.ack(PEERS[1], last.0, sent_at);
    assert_eq!(s.node.commit_index(), last);
    assert!(s.node.last_applied() < last, "applying waits for a batch");
    let effects = s.request("g1", Operation::Get { key: "k" });
    assert_eq!(replies(&effects), read_ok("g1", "3"));
    assert_eq!(s.node.last_applied(), last);
}

#[test]
fn a_put_is_answered_only_once_committed() {
    let mut s = Script::leader_with_followers_caught_up();
    let effects = s.put("m1");
    assert!(replies(&effects).is_empty(), "not before commit");
    let appends = sent_entries_to(&effects).len();
    assert_eq!(
        appends, 2,
        "a new entry goes at once to a commit's worth of followers"
    );
    let sent_at = s.now;
    s.ack(PEERS[0], 2, sent_at);
    assert!(replies(&s.effects[s.effects.len() - 1..]).is_empty());
    let effects = s.ack(PEERS[1], 2, sent_at);
    assert_eq!(
        replies(&effects),
        vec![("m1".to_owned(), ReplyKind::Ok { value: None })]
    );
    // Committed: the followers left out get the entry with their next heartbeat, not now.
    let effects = s.fire_peer_timers_after_stall();
    let carrying = sent_entries_to(&effects).len();
    assert_eq!(carrying, 0, "no stall once committed");
}

#[test]
fn entries_stalled_past_the_timeout_go_to_every_follower() {
    let mut s = Script::leader_with_followers_caught_up();
    let effects = s.put("m1");
    let first: Vec<NodeId> = sent_entries_to(&effects);
    assert_eq!(first.len(), 2);
    // Their answers are lost: after the stall timeout the others get the entry too.
    let effects = s.fire_peer_timers_after_stall();
    let mut second: Vec<NodeId> = sent_entries_to(&effects);
    second.sort();
    let mut others: Vec<NodeId> = PEERS
        .iter()
        .copied()
        .filter(|p| !first.contains(p))
        .collect();
    others.sort();
    assert_eq!(second, others);
}

#[test]
fn a_leader_that_steps_down_redirects_what_it_owes() {
    let mut s = Script::new();
    s.win_election();
    s.request(
        "p1",
        Operation::Put {
            key: "k",
            value: "v",
        },
    );
    s.request("g1", Operation::Get { key: "k" });
    // A newer leader appears: term 9.
    let effects = s.append_from(NodeId(3), 9, (0, 0), &[], 0);
    assert_eq!(s.node.role(), Role::Follower);
    assert_eq!(s.node.leader(), NodeId(3));
    let mut answered = replies(&effects);
    answered.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        answered,
        vec![
            ("g1".to_owned(), ReplyKind::Redirect),
            ("p1".to_owned(), ReplyKind::Redirect)
        ]
    );
    assert_eq!(s.node.requests_owed(), 0);
}

#[test]
fn requests_are_held_while_no_leader_is_known_then_redirected() {
    let mut s = Script::new();
    let effects = s.request("g1", Operation::Get { key: "k" });
    assert!(replies(&effects).is_empty(), "held, not bounced");
    assert_eq!(s.node.requests_owed(), 1);
    let effects = s.append_from(NodeId(2), 1, (0, 0), &[], 0);
    assert_eq!(
        replies(&effects),
        vec![("g1".to_owned(), ReplyKind::Redirect)]
    );
    // Once a leader is known, a new request is redirected at once.
    let effects = s.request("g2", Operation::Get { key: "k" });
    assert_eq!(
        replies(&effects),
        vec![("g2".to_owned(), ReplyKind::Redirect)]
    );
}

#[test]
fn a_held_request_fails_after_its_timeout() {
    let mut s = Script::new();
    s.request("g1", Operation::Get { key: "k" });
    s.advance(s.node.config().held_request_timeout.as_millis());
    s.node.handle_timer(s.now, Timer::HeldRequests);
    let effects = s.take();
    assert_eq!(replies(&effects), vec![("g1".to_owned(), ReplyKind::Fail)]);
}

#[test]
fn a_get_waits_for_a_read_round_once_the_lease_has_expired() {
    let mut s = Script::new();
    s.win_election();
    let sent_at = s.now;
    s.ack(PEERS[0], 1, sent_at);
    s.ack(PEERS[1], 1, sent_at);
    let effects = s.request("g1", Operation::Get { key: "k" });
    assert_eq!(
        replies(&effects),
        read_ok("g1", ""),
        "inside the lease the leader answers alone"
    );
    // No answers for longer than the lease: a get must not be served from local state.
    s.advance(s.node.config().election_timeout_min.as_millis());
    let effects = s.request("g2", Operation::Get { key: "k" });
    assert!(
        replies(&effects).is_empty(),
        "a possibly stale leader waits"
    );
    let round: Vec<_> = sends(&effects)
        .into_iter()
        .filter(|(_, m)| matches!(m, Message::AppendEntries(a) if a.ack_requested))
        .collect();
    assert_eq!(round.len(), PEERS.len(), "a read round asks every follower");
    let round_at = s.now;
    s.ack(PEERS[2], 1, round_at);
    assert!(
        replies(&s.take()).is_empty(),
        "one follower is not a majority"
    );
    let effects = s.ack(PEERS[3], 1, round_at);
    assert_eq!(replies(&effects), read_ok("g2", ""));
}

#[test]
fn pre_vote_changes_no_term_and_a_follower_of_a_live_leader_refuses() {
    let mut s = Script::new();
    s.append_from(NodeId(1), 3, (0, 0), &[], 0);
    let request = |pre_vote| {
        Message::RequestVote(RequestVote {
            term: Term(4),
            last_log_index: LogIndex(5),
            last_log_term: Term(3),
            pre_vote,
        })
    };
    let effects = s.deliver(NodeId(2), request(true));
    assert_eq!(s.node.term(), Term(3), "a pre-vote changes nothing");
    let granted = sends(&effects)
        .iter()
        .any(|(_, m)| matches!(m, Message::RequestVoteResponse(r) if r.vote_granted));
    assert!(!granted, "the leader was heard from moments ago");
    let effects = s.deliver(NodeId(2), request(false));
    assert_eq!(
        s.node.term(),
        Term(3),
        "a real vote inside the lease is ignored too"
    );
    assert!(sends(&effects).is_empty());
    // After an election timeout of silence, the same candidate gets the vote.
    s.advance(s.node.config().election_timeout_max.as_millis());
    let effects = s.deliver(NodeId(2), request(true));
    let granted = sends(&effects)
        .iter()
        .any(|(_, m)| matches!(m, Message::RequestVoteResponse(r) if r.vote_granted && r.pre_vote));
    assert!(granted);
}

#[test]
fn a_silent_follower_is_retried_with_backoff() {
    let mut s = Script::new();
    s.win_election();
    let sent_at = s.now;
    for peer in &PEERS[..3] {
        s.ack(*peer, 1, sent_at);
    }
    // PEERS[3] never answers. Its timer is fired every 10 ms for two seconds.
    let silent = PEERS[3];
    let mut sent_to_silent = 0;
    for _ in 0..200 {
        s.advance(10);
        s.node.handle_timer(s.now, Timer::Peer(3));
        sent_to_silent += sends(&s.take())
            .iter()
            .filter(|(to, _)| *to == silent)
            .count();
    }
    // Retransmissions back off 40 ms doubling to 640 ms (about 5 in 2 s); once they are
    // rarer than the 300 ms heartbeat, the heartbeats go on (a live follower behind a lossy
    // link needs them): about 11 in all. A fixed 40 ms timeout would have sent about 50.
    assert!(
        (6..=12).contains(&sent_to_silent),
        "{sent_to_silent} sends to a silent follower in 2 s"
    );
}

#[test]
fn one_lost_answer_brings_in_one_more_follower() {
    let mut s = Script::leader_with_followers_caught_up();
    let effects = s.put("m1");
    let first: Vec<NodeId> = sent_entries_to(&effects);
    assert_eq!(first.len(), 2);
    // One of the two answers, the other's answer is lost: a quorum needs one more.
    s.ack(first[0], 2, s.now);
    let effects = s.fire_peer_timers_after_stall();
    let extra: Vec<NodeId> = sent_entries_to(&effects);
    assert_eq!(extra.len(), 1, "{extra:?}");
    assert!(!first.contains(&extra[0]));
    // Its answer commits the put.
    let effects = s.ack(extra[0], 2, s.now);
    assert_eq!(
        replies(&effects),
        vec![("m1".to_owned(), ReplyKind::Ok { value: None })]
    );
}

#[test]
fn vote_requests_to_silent_peers_back_off() {
    // A pre-candidate cut off from every peer: each round of vote requests costs a
    // message per peer, so the rounds must thin out (50, 100, 200, 400 ms), not repeat
    // every 50 ms until the election timeout (the classic scenarios count every one).
    let mut s = Script::new();
    s.advance(10_000);
    let mut round_times = Vec::new();
    let mut effects = s.fire_election_timer();
    for _ in 0..5 {
        let asked = sends(&effects)
            .iter()
            .filter(|(_, m)| matches!(m, Message::RequestVote(_)))
            .count();
        assert_eq!(asked, PEERS.len(), "every silent peer is asked each round");
        round_times.push(s.now);
        let next = effects
            .iter()
            .rev()
            .find_map(|e| match e {
                Effect::SetTimer {
                    timer: Timer::Election,
                    at,
                } => Some(*at),
                _ => None,
            })
            .expect("the retry is timed");
        s.now = next;
        effects = s.fire_election_timer();
    }
    let gaps_ms: Vec<u64> = round_times
        .windows(2)
        .map(|w| w[1].since(w[0]).as_millis())
        .collect();
    // The election timeout (at least 800 ms) has not passed by 750 ms, so these are
    // retries of one candidacy.
    assert_eq!(gaps_ms, vec![50, 100, 200, 400]);
}

#[test]
fn an_append_presumed_lost_rides_on_the_next_message() {
    // PEERS[0] never answers the append of m1 (lost on the way or its answer lost); m1
    // commits through others. The next append to PEERS[0] must carry m1 again: sent after
    // it, it would be rejected (a round trip lost); resent on its own, it would cost a
    // message of its own.
    let mut s = Script::leader_with_followers_caught_up();
    let effects = s.put("m1");
    assert_eq!(sent_entries_to(&effects), vec![PEERS[0], PEERS[1]]);
    s.ack(PEERS[1], 2, s.now);
    let effects = s.fire_peer_timers_after_stall();
    assert_eq!(sent_entries_to(&effects), vec![PEERS[2]]);
    let effects = s.ack(PEERS[2], 2, s.now);
    assert_eq!(replies(&effects).len(), 1, "m1 committed");

    // Past the presumed-lost wait, still short of any retransmission timeout: nothing
    // goes to PEERS[0] on its own.
    s.advance(10);
    s.node.handle_timer(s.now, Timer::Peer(0));
    assert!(
        sends(&s.take()).is_empty(),
        "no retransmission for a lagging follower"
    );

    // m2 goes to the two followers sent to least recently: PEERS[3], then PEERS[0].
    let effects = s.put("m2");
    let to_first: Vec<_> = sends(&effects)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::AppendEntries(a) if to == PEERS[0] => Some(a),
            _ => None,
        })
        .collect();
    assert_eq!(to_first.len(), 1, "{effects:?}");
    let append = to_first[0];
    assert_eq!(
        append.prev_log_index,
        LogIndex(1),
        "from its last known match"
    );
    assert_eq!(
        (append.entries.first, append.entries.count),
        (LogIndex(2), 2),
        "m1 again, and m2"
    );
}

#[test]
fn entries_arriving_while_a_round_is_answered_wait_for_its_first_answer() {
    let mut s = Script::leader_with_followers_caught_up();
    let first = sent_entries_to(&s.put("m1"));
    assert_eq!(first.len(), 2);
    // Two more puts while both appends of m1 are out: no append of their own.
    s.advance(0);
    let effects = s.put("m2");
    assert!(sent_entries_to(&effects).is_empty(), "{effects:?}");
    let effects = s.put("m3");
    assert!(sent_entries_to(&effects).is_empty(), "{effects:?}");
    // The first answer opens the next round: m2 and m3 go out together.
    let effects = s.ack(first[0], 2, s.now);
    let round: Vec<_> = sends(&effects)
        .into_iter()
        .filter_map(|(to, m)| match m {
            Message::AppendEntries(a) if a.entries.count > 0 => Some((to, a.entries)),
            _ => None,
        })
        .collect();
    assert_eq!(round.len(), 2, "{round:?}");
    for (_, entries) in &round {
        assert_eq!(
            (entries.first, entries.count),
            (LogIndex(3), 2),
            "m2 and m3"
        );
    }
    // The second answer commits m1 alone; the round's answers commit m2 and m3.
    let effects = s.ack(first[1], 2, s.now);
    assert_eq!(replies(&effects).len(), 1, "m1");
    for (to, _) in &round {
        s.ack(*to, 4, s.now);
    }
    assert_eq!(s.node.commit_index(), LogIndex(4));
}

#[test]
fn a_round_older_than_the_stall_timeout_holds_nothing_back() {
    let mut s = Script::leader_with_followers_caught_up();
    assert_eq!(sent_entries_to(&s.put("m1")).len(), 2);
    // Both answers are late: past the stall timeout a new put goes out at once.
    s.advance(s.node.config().replication_stall_timeout.as_millis());
    let effects = s.put("m2");
    assert_eq!(sent_entries_to(&effects).len(), 2, "{effects:?}");
}

#[test]
fn without_coalescing_every_put_goes_out_at_once() {
    let mut config = Config::new(ME, PEERS.to_vec(), 7);
    config.coalesce_appends = false;
    let mut s = Script::with_config(config);
    s.win_election();
    let sent_at = s.now;
    for peer in PEERS {
        s.ack(peer, 1, sent_at);
    }
    assert_eq!(sent_entries_to(&s.put("m1")).len(), 2);
    assert_eq!(sent_entries_to(&s.put("m2")).len(), 2);
}
