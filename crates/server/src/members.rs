//! The cluster's nodes as a node knows them now: the members of the membership in effect
//! in its log, with the addresses their membership entry gave (`PEER CLIENT`, for a node
//! added by `CLUSTER ADDNODE`) or, for the founding nodes, the cluster file's.

use crate::cluster_file::ClusterFile;
use raft::{Node, NodeId};
use std::net::SocketAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Known {
    pub id: NodeId,
    pub peer: SocketAddr,
    pub client: SocketAddr,
    /// A learner (catching up, not counted in any quorum) if not.
    pub voter: bool,
}

/// Every member of `node`'s membership whose addresses are known, in id order.
pub fn members(cluster: &ClusterFile, node: &Node) -> Vec<Known> {
    node.membership()
        .members()
        .iter()
        .filter_map(|m| {
            let (peer, client) =
                addresses(&m.address).or_else(|| cluster.node(m.id).map(|n| (n.peer, n.client)))?;
            Some(Known {
                id: m.id,
                peer,
                client,
                voter: m.voter,
            })
        })
        .collect()
}

/// Where node `id` takes clients, if it is a member (or in the cluster file).
pub fn client_address(cluster: &ClusterFile, node: &Node, id: NodeId) -> Option<SocketAddr> {
    node.membership()
        .member(id)
        .and_then(|m| addresses(&m.address))
        .map(|(_, client)| client)
        .or_else(|| cluster.node(id).map(|n| n.client))
}

/// A member's address text for its membership entry.
pub fn address_text(peer: SocketAddr, client: SocketAddr) -> String {
    format!("{peer} {client}")
}

/// The `PEER CLIENT` addresses of a membership entry's member.
fn addresses(text: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut words = text.split_whitespace();
    let peer = words.next()?.parse().ok()?;
    let client = words.next()?.parse().ok()?;
    Some((peer, client))
}
