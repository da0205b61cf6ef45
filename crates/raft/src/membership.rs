//! Who is in the cluster: the voters, whose majority commits and elects, and the
//! learners, which are sent the log but count for nothing (thesis §4.2.1), each with an
//! address the core carries without reading (the driver's: where its peer and client
//! ports are).
//!
//! A membership travels in the log as an entry's text (`CommandRef::Membership`) and takes
//! effect on every replica when appended, not when committed (thesis §4.1); changes go one
//! server at a time (`membership_change`), which is what lets any two successive
//! memberships share a voter in every pair of their majorities.
//!
//! A removed id is retired: never a member again. A replica's vote and log are what make
//! two successive majorities share a voter that remembers; a node back under a removed id
//! on an empty disk would replay the old memberships that name it a voter and vote in
//! them with none of what its earlier self promised (kvnemesis lost acknowledged writes
//! that way before this rule). A node that comes back takes a new id, as in etcd.
//!
//! Text form: items separated by `;`, each `ID ROLE [ADDRESS]` with ID in decimal, ROLE
//! `v` (voter), `l` (learner) or `r` (retired, no address), and ADDRESS anything without
//! `;`: `1 v a;2 v b;3 l c;4 r`.

use crate::NodeId;
use std::fmt;

/// Members at most: the leader picks replication targets as a bit per peer.
pub const MEMBERS_MAX: usize = 64;
/// Bytes of a membership's text at most, so that its entry fits any datagram.
pub const MEMBERSHIP_TEXT_MAX: usize = 4096;

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    pub id: NodeId,
    pub voter: bool,
    /// Opaque to the core: what the driver needs to reach the member.
    pub address: Box<str>,
}

/// Invariant: members sorted by id, ids distinct, at least one voter, at most
/// `MEMBERS_MAX` members; retired ids sorted, distinct, none a member's.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Membership {
    members: Vec<Member>,
    retired: Vec<NodeId>,
}

/// Why a membership's text was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct BadMembership(pub &'static str);

impl fmt::Display for BadMembership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Membership {
    /// Every replica of `voters` a voter, none with an address.
    pub fn of_voters(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        let mut members: Vec<Member> = voters
            .into_iter()
            .map(|id| Member {
                id,
                voter: true,
                address: "".into(),
            })
            .collect();
        members.sort_by_key(|m| m.id);
        members.dedup_by_key(|m| m.id);
        assert!(!members.is_empty(), "a cluster has a voter");
        Membership {
            members,
            retired: Vec::new(),
        }
    }

    pub fn from_members(
        mut members: Vec<Member>,
        mut retired: Vec<NodeId>,
    ) -> Result<Membership, BadMembership> {
        members.sort_by_key(|m| m.id);
        retired.sort();
        if members.windows(2).any(|w| w[0].id == w[1].id)
            || retired.windows(2).any(|w| w[0] == w[1])
            || members.iter().any(|m| retired.binary_search(&m.id).is_ok())
        {
            return Err(BadMembership("an id is listed twice"));
        }
        if !members.iter().any(|m| m.voter) {
            return Err(BadMembership("no voter"));
        }
        if members.len() > MEMBERS_MAX {
            return Err(BadMembership("too many members"));
        }
        if members
            .iter()
            .any(|m| m.address.contains(';') || m.id.is_broadcast())
        {
            return Err(BadMembership("an address holds ';', or an id is FFFF"));
        }
        let membership = Membership { members, retired };
        if membership.to_text().len() > MEMBERSHIP_TEXT_MAX {
            return Err(BadMembership("too long"));
        }
        Ok(membership)
    }

    pub fn parse(text: &str) -> Result<Membership, BadMembership> {
        if text.len() > MEMBERSHIP_TEXT_MAX {
            return Err(BadMembership("too long"));
        }
        let mut members = Vec::new();
        let mut retired = Vec::new();
        for item in text.split(';') {
            let mut fields = item.splitn(3, ' ');
            let id = fields
                .next()
                .and_then(|f| f.parse::<u16>().ok())
                .ok_or(BadMembership("a member's id is not a number"))?;
            let voter = match fields.next() {
                Some("v") => true,
                Some("l") => false,
                Some("r") if fields.next().is_none() => {
                    retired.push(NodeId(id));
                    continue;
                }
                _ => return Err(BadMembership("a member's role is not v, l or r")),
            };
            let address = fields.next().unwrap_or("").into();
            members.push(Member {
                id: NodeId(id),
                voter,
                address,
            });
            if members.len() > MEMBERS_MAX {
                return Err(BadMembership("too many members"));
            }
        }
        Membership::from_members(members, retired)
    }

    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (i, m) in self.members.iter().enumerate() {
            if i > 0 {
                text.push(';');
            }
            text.push_str(&m.id.0.to_string());
            text.push_str(if m.voter { " v" } else { " l" });
            if !m.address.is_empty() {
                text.push(' ');
                text.push_str(&m.address);
            }
        }
        for id in &self.retired {
            text.push(';');
            text.push_str(&id.0.to_string());
            text.push_str(" r");
        }
        text
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members
            .binary_search_by_key(&id, |m| m.id)
            .ok()
            .map(|i| &self.members[i])
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.member(id).is_some()
    }

    /// Whether `id` was removed: it may never be a member again.
    pub fn is_retired(&self, id: NodeId) -> bool {
        self.retired.binary_search(&id).is_ok()
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.member(id).is_some_and(|m| m.voter)
    }

    pub fn voters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.members.iter().filter(|m| m.voter).map(|m| m.id)
    }

    pub fn voter_count(&self) -> usize {
        self.members.iter().filter(|m| m.voter).count()
    }

    /// Votes (or acknowledgements) from voters that make a majority.
    pub fn quorum(&self) -> usize {
        self.voter_count() / 2 + 1
    }

    /// Every member but `me`, in id order: whom a leader `me` replicates to.
    pub fn peers_of(&self, me: NodeId) -> Vec<NodeId> {
        self.members
            .iter()
            .map(|m| m.id)
            .filter(|&id| id != me)
            .collect()
    }

    /// This membership with `member` added (or, if present, replaced).
    pub fn with(&self, member: Member) -> Result<Membership, BadMembership> {
        let mut members: Vec<Member> = self
            .members
            .iter()
            .filter(|m| m.id != member.id)
            .cloned()
            .collect();
        members.push(member);
        Membership::from_members(members, self.retired.clone())
    }

    /// This membership without `id`, retired from now on.
    pub fn without(&self, id: NodeId) -> Result<Membership, BadMembership> {
        let members = self
            .members
            .iter()
            .filter(|m| m.id != id)
            .cloned()
            .collect();
        let mut retired = self.retired.clone();
        retired.push(id);
        Membership::from_members(members, retired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_bad_text_is_refused() {
        let m = Membership::parse("3 l 10.0.0.3:1 10.0.0.3:2;1 v a;2 v").unwrap();
        assert_eq!(m.to_text(), "1 v a;2 v;3 l 10.0.0.3:1 10.0.0.3:2");
        assert_eq!(Membership::parse(&m.to_text()).unwrap(), m);
        assert_eq!(m.quorum(), 2);
        assert_eq!(m.peers_of(NodeId(1)), vec![NodeId(2), NodeId(3)]);
        assert!(m.is_voter(NodeId(2)) && !m.is_voter(NodeId(3)) && !m.contains(NodeId(4)));
        let r = Membership::parse("5 r;1 v a;4 r").unwrap();
        assert_eq!(r.to_text(), "1 v a;4 r;5 r");
        assert!(r.is_retired(NodeId(4)) && !r.contains(NodeId(4)) && !r.is_retired(NodeId(1)));
        for bad in [
            "",
            "1",
            "1 x",
            "x v",
            "1 v;1 l",
            "1 l",
            "65535 v",
            "1 v;;2 v",
            "1 v;1 r",
            "1 v;2 r x",
            "1 v;2 r;2 r",
        ] {
            assert!(Membership::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quorums_of_successive_single_changes_overlap() {
        // Any majority of {1,2,3} and any of {1,2,3,4} share a voter: 2 + 3 > 4.
        let three = Membership::of_voters([1, 2, 3].map(NodeId));
        let four = three
            .with(Member {
                id: NodeId(4),
                voter: true,
                address: "".into(),
            })
            .unwrap();
        assert_eq!((three.quorum(), four.quorum()), (2, 3));
        assert!(three.quorum() + four.quorum() > four.voter_count());
        let back = four.without(NodeId(4)).unwrap();
        assert_eq!(back.voters().collect::<Vec<_>>(), [1, 2, 3].map(NodeId));
        assert!(back.is_retired(NodeId(4)));
    }
}
