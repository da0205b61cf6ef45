//! Who leads, for the stand-ins: the lowest ID heard from lately. Every stand-in says it is
//! alive every 200 ms (`hb`, to all), and a replica unheard for 600 ms is taken for dead; on
//! either side of a partition the lowest ID leads, so a partition also splits the store.

use std::time::{Duration, Instant};

use super::Outgoing;
use raft::NodeId;

pub(super) const HEARTBEAT: Duration = Duration::from_millis(200);
pub(super) const PRESUMED_DEAD_AFTER: Duration = Duration::from_millis(600);
/// As a real replica waits for its peers' hellos before it speaks to them.
const FIRST_HEARTBEAT_AFTER: Duration = Duration::from_millis(300);

pub(super) struct Peers {
    pub(super) id: NodeId,
    /// Every other replica, with when it was last heard from.
    last_heard: Vec<(NodeId, Instant)>,
    next_heartbeat: Instant,
}

impl Peers {
    pub(super) fn new(id: NodeId, peers: &[NodeId]) -> Peers {
        let now = Instant::now();
        // Peers count as heard at the start, so nobody claims to lead before it has heard
        // whether a lower ID is alive.
        let mut last_heard: Vec<(NodeId, Instant)> = peers.iter().map(|&p| (p, now)).collect();
        last_heard.sort_by_key(|(p, _)| p.0);
        Peers {
            id,
            last_heard,
            next_heartbeat: now + FIRST_HEARTBEAT_AFTER,
        }
    }

    /// A datagram came from `src` (any string: only peers count).
    pub(super) fn heard(&mut self, now: Instant, src: Option<&str>) {
        let Some(src) = src.and_then(NodeId::parse) else {
            return;
        };
        if let Some((_, at)) = self.last_heard.iter_mut().find(|(p, _)| *p == src) {
            *at = now;
        }
    }

    /// The peers heard from lately, lowest ID first.
    pub(super) fn alive(&self, now: Instant) -> impl Iterator<Item = NodeId> + '_ {
        self.last_heard
            .iter()
            .filter(move |&&(_, at)| now.duration_since(at) < PRESUMED_DEAD_AFTER)
            .map(|&(p, _)| p)
    }

    /// The lowest ID among this replica and the peers heard from lately.
    pub(super) fn leader(&self, now: Instant) -> NodeId {
        self.alive(now)
            .chain([self.id])
            .min_by_key(|p| p.0)
            .unwrap_or(self.id)
    }

    /// Sends the heartbeat when it is due.
    pub(super) fn tick(&mut self, now: Instant, out: &mut Outgoing) {
        if now >= self.next_heartbeat {
            out.peer_message(self.id, NodeId::BROADCAST, self.leader(now), "hb", "");
            self.next_heartbeat = now + HEARTBEAT;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_id_alive_leads() {
        let t0 = Instant::now();
        let mut p = Peers::new(NodeId(2), &[NodeId(1), NodeId(0)]);
        assert_eq!(p.leader(t0), NodeId(0));
        // 0000 and 0001 fall silent: 0002 leads.
        let later = t0 + PRESUMED_DEAD_AFTER + Duration::from_millis(1);
        assert_eq!(p.leader(later), NodeId(2));
        // 0001 speaks again: it leads; a stranger changes nothing.
        p.heard(later, Some("0001"));
        p.heard(later, Some("0009"));
        assert_eq!(p.leader(later), NodeId(1));
        assert_eq!(p.alive(later).collect::<Vec<_>>(), [NodeId(1)]);
    }
}
