//! The classic floor on messages as a bound, for one leader whose followers answer every
//! append: however puts arrive, one by one or in bursts of one batch of input, the
//! messages between the leader and its followers cover `cluster size` per put, which is
//! the classic floor of any `maximum_appends_batched_fraction`. Past
//! `Config::floor_puts_per_s_max` the floor lets batching run free. `golden_scripts/
//! message_floor.txt` shows the appends themselves.

use raft::NodeId;
use raft::time::{Span, Time};
use raft::{
    AppendEntriesResponse, ClientRequest, Config, Effect, Message, Node, Operation,
    RequestVoteResponse, Role, Timer,
};

/// A leader of `n` replicas, its followers played by hand, and the messages counted.
struct Leader {
    node: Node,
    now: Time,
    peers: Vec<NodeId>,
    /// Sent to followers and received from them, since the election began.
    messages: u64,
    puts: u64,
    /// Answers the followers owe, delivered by `answer_everything`.
    answers: Vec<(NodeId, AppendEntriesResponse)>,
}

impl Leader {
    fn elect(n: u16, config: impl FnOnce(&mut Config)) -> Leader {
        let peers: Vec<NodeId> = (1..n).map(NodeId).collect();
        let mut c = Config::new(NodeId(0), peers.clone(), 3);
        config(&mut c);
        let mut l = Leader {
            node: Node::new(c, Time::ZERO),
            now: Time::ZERO,
            peers,
            messages: 0,
            puts: 0,
            answers: Vec::new(),
        };
        l.now = l.now + Span::from_millis(10_000);
        l.node.handle_timer(l.now, Timer::Election);
        l.take();
        let voters: Vec<NodeId> = l.peers[..usize::from(n / 2)].to_vec();
        for pre_vote in [true, false] {
            let term = if pre_vote {
                raft::Term(l.node.term().0 + 1)
            } else {
                l.node.term()
            };
            for &peer in &voters {
                let vote = Message::RequestVoteResponse(RequestVoteResponse {
                    term,
                    vote_granted: true,
                    pre_vote,
                    round_started_us: l.node.round_started_at().as_micros(),
                });
                l.node
                    .handle_message(l.now, peer, vote)
                    .expect("a valid vote");
                l.take();
            }
        }
        assert_eq!(l.node.role(), Role::Leader);
        l.answer_everything();
        l
    }

    /// Flushes, and notes every message the leader sent (votes asked for before it leads
    /// are not counted) and the answer its follower will give.
    fn take(&mut self) {
        self.node.flush(self.now);
        let mut effects = Vec::new();
        self.node.take_effects(&mut effects);
        for effect in effects {
            let Effect::Send { to, message } = effect else {
                continue;
            };
            if let Message::AppendEntries(a) = message
                && a.ack_requested
            {
                self.answers.push((
                    to,
                    AppendEntriesResponse {
                        term: a.term,
                        success: true,
                        match_index: raft::LogIndex(
                            a.prev_log_index.0 + u64::from(a.entries.count),
                        ),
                        conflict_index: raft::LogIndex(0),
                        conflict_term: None,
                        sent_at_us: a.sent_at_us,
                    },
                ));
            }
            self.messages += u64::from(self.node.role() == Role::Leader);
        }
    }

    /// Delivers every answer owed, and those to what the answers cause, one at a time.
    fn answer_everything(&mut self) {
        while !self.answers.is_empty() {
            let (from, answer) = self.answers.remove(0);
            self.now = self.now + Span::from_micros(20);
            self.node
                .handle_message(self.now, from, Message::AppendEntriesResponse(answer))
                .expect("a valid answer");
            self.messages += 1;
            self.take();
        }
    }

    /// `k` puts in one batch of input.
    fn burst(&mut self, k: usize) {
        for _ in 0..k {
            self.puts += 1;
            let key = format!("k{}", self.puts);
            let mid = format!("m{}", self.puts);
            self.node.handle_client_request(
                self.now,
                ClientRequest {
                    client: NodeId(0x100),
                    mid: &mid,
                    operation: Operation::Put {
                        key: &key,
                        value: "v",
                    },
                },
            );
        }
        self.take();
    }
}

#[test]
fn bursts_of_any_size_cost_at_least_cluster_size_messages_per_put() {
    for n in [3u16, 5, 7] {
        for k in [1usize, 2, 3, 5, 8, 13, 30, 64] {
            let mut l = Leader::elect(n, |_| {});
            // A burst every 100 ms, as the classic loop wakes after silence: up to 640
            // puts a second, under `floor_puts_per_s_max`.
            for _ in 0..20 {
                l.now = l.now + Span::from_millis(100);
                l.burst(k);
                l.answer_everything();
            }
            assert_eq!(l.node.commit_index().0, l.puts + 1, "n={n} k={k}");
            let floor = u64::from(n) * l.puts;
            assert!(
                l.messages >= floor,
                "n={n}, bursts of {k}: {} messages for {} puts, under {floor}",
                l.messages,
                l.puts
            );
            // Batching less is not textbook Raft: never every put to every follower.
            let textbook = 2 * u64::from(n - 1) * l.puts;
            eprintln!("n={n} k={k}: {} messages for {} puts", l.messages, l.puts);
            assert!(
                l.messages < textbook,
                "n={n}, bursts of {k}: {} messages for {} puts, textbook {textbook}",
                l.messages,
                l.puts
            );
        }
    }
}

#[test]
fn puts_arriving_while_a_round_is_out_do_not_wait_when_short_of_the_floor() {
    let mut l = Leader::elect(5, |_| {});
    // The election's no-op round is credit: spend it with puts answered one by one.
    for _ in 0..12 {
        l.burst(1);
        l.answer_everything();
    }
    // Two puts, the second while the first's round is out: it leaves at once.
    l.burst(1);
    let first = l.answers.len();
    l.burst(1);
    assert!(
        l.answers.len() > first,
        "the second put waited for the first round"
    );
    l.answer_everything();
}

#[test]
fn a_burst_past_the_rate_the_floor_binds_leaves_whole() {
    // 200 puts at once, past the floor's burst of 128: a load the classic loop cannot
    // relay. What the first 128 owed is forgiven, so the leader does not pay it in
    // one-entry appends (each follower's window holds 8) while the rest wait.
    let mut l = Leader::elect(5, |_| {});
    l.burst(200);
    let last = l.node.log().last_index();
    let mut reached: Vec<NodeId> = l
        .answers
        .iter()
        .filter(|(_, a)| a.match_index == last)
        .map(|&(to, _)| to)
        .collect();
    reached.sort();
    reached.dedup();
    assert!(
        reached.len() >= 2,
        "the first flush took the last entry ({last:?}) to {reached:?} only: a commit needs two followers"
    );
    l.answer_everything();
    assert_eq!(l.node.commit_index(), last);
}

#[test]
fn past_the_rate_the_floor_binds_batching_runs_free() {
    // Ten puts every 100 µs, 100,000 a second, each burst one round to a quorum (what the
    // network's round trip allows): the floor asks for 1,000 of them a second, and the
    // rounds pay for those many times over.
    let run = |floor: bool| {
        let mut l = Leader::elect(5, |c| c.message_floor = floor);
        for _ in 0..2000 {
            l.now = l.now + Span::from_micros(100);
            l.burst(10);
            l.answer_everything();
        }
        (l.messages, l.puts)
    };
    let (with, puts) = run(true);
    let (without, _) = run(false);
    assert!(with < puts, "{with} messages for {puts} puts");
    // What the floor costs: the first burst it allows (128 puts) before the rounds have
    // paid for anything, and no more.
    assert!(
        with <= without + 5 * 128,
        "{with} messages with the floor, {without} without"
    );
}
