//! Runs of one core that assert a numeric bound rather than a trace. Traces live in the
//! golden scripts (`tests/golden_scripts/`); a bound belongs here,
//! where retuning the timeouts keeps it checked instead of rewriting it.

use raft::NodeId;
use raft::time::{Span, Time};
use raft::{
    AppendEntriesResponse, Config, Effect, EntryRef, LogIndex, Message, Node, RequestVoteResponse,
    Role, Term, Timer,
};

const ME: NodeId = NodeId(0);
const PEERS: [NodeId; 4] = [NodeId(1), NodeId(2), NodeId(3), NodeId(4)];

struct Script {
    node: Node,
    now: Time,
}

impl Script {
    fn new() -> Script {
        let mut script = Script {
            node: Node::new(Config::new(ME, PEERS.to_vec(), 7), Time::ZERO),
            now: Time::ZERO,
        };
        script.take();
        script
    }

    fn take(&mut self) -> Vec<Effect> {
        self.node.flush(self.now);
        let mut out = Vec::new();
        self.node.take_effects(&mut out);
        out
    }

    fn advance(&mut self, ms: u64) {
        self.now = self.now + Span::from_millis(ms);
    }

    fn deliver(&mut self, from: NodeId, message: Message<&[EntryRef<'_>]>) -> Vec<Effect> {
        self.node
            .handle_message(self.now, from, message)
            .expect("a valid message");
        self.take()
    }

    /// Wins an election: times out, collects pre-votes and votes from two peers.
    fn win_election(&mut self) {
        self.advance(10_000);
        self.node.handle_timer(self.now, Timer::Election);
        self.take();
        for pre_vote in [true, false] {
            let term = if pre_vote {
                Term(self.node.term().0 + 1)
            } else {
                self.node.term()
            };
            for peer in &PEERS[..2] {
                self.deliver(
                    *peer,
                    Message::RequestVoteResponse(RequestVoteResponse {
                        term,
                        vote_granted: true,
                        pre_vote,
                        round_started_us: self.node.round_started_at().as_micros(),
                    }),
                );
            }
        }
        assert_eq!(self.node.role(), Role::Leader);
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
        sent_to_silent += s
            .take()
            .iter()
            .filter(|e| matches!(e, Effect::Send { to, .. } if *to == silent))
            .count();
    }
    // Retransmissions back off 40 ms doubling to 640 ms (about 5 in 2 s); once they are
    // rarer than the 300 ms heartbeat, the heartbeats go on (a live follower behind a lossy
    // link needs them): about 11 in all. A fixed 40 ms timeout would have sent about 50.
    // `golden_scripts/silent_follower_backoff.txt` shows the schedule itself.
    assert!(
        (6..=12).contains(&sent_to_silent),
        "{sent_to_silent} sends to a silent follower in 2 s"
    );
}
