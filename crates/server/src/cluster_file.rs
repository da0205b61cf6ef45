//! The cluster file: which nodes make the cluster and where each listens. Every node of
//! a cluster reads the same file.
//!
//! ```toml
//! # requirepass = "secret"      # optional: clients must AUTH with it
//! # [limits]                    # optional, each with its default
//! # clients_max = 1024
//! # client_idle_timeout_s = 300
//!
//! [[node]]
//! id = 1
//! peer = "127.0.0.1:7101"       # UDP: Raft traffic, from the other nodes only
//! client = "127.0.0.1:7001"     # TCP: Redis clients (RESP2)
//! ```
//!
//! Everything is checked when the file is read, and a problem is one line naming it.

use raft::NodeId;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

/// Nodes in one cluster, at most (Raft's messages grow with it; five or seven is usual).
pub const CLUSTER_NODES_MAX: usize = 15;
/// Nodes in one cluster, at least: the core advances its commit index on its followers'
/// answers, so a node alone never commits.
pub const CLUSTER_NODES_MIN: usize = 2;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterFile {
    /// Sorted by id, ids distinct.
    pub nodes: Vec<NodeAddresses>,
    pub requirepass: Option<String>,
    pub limits: ClientLimits,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAddresses {
    pub id: NodeId,
    pub peer: SocketAddr,
    pub client: SocketAddr,
}

/// What the client port allows, per node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientLimits {
    /// Connections open at once; one more is told so and closed.
    pub clients_max: usize,
    /// A connection that sends nothing for this long is told so and closed (0: never).
    pub client_idle_timeout_s: u64,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            clients_max: 1024,
            client_idle_timeout_s: 300,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    node: Vec<RawNode>,
    requirepass: Option<String>,
    #[serde(default)]
    limits: ClientLimits,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    id: u16,
    peer: String,
    client: String,
}

/// What is wrong with a cluster file, in one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterFileError(pub String);

impl fmt::Display for ClusterFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterFileError {}

impl ClusterFile {
    pub fn read(path: &Path) -> Result<ClusterFile, ClusterFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            ClusterFileError(format!(
                "cannot read cluster file {}: {error}",
                path.display()
            ))
        })?;
        ClusterFile::parse(&text).map_err(|ClusterFileError(why)| {
            ClusterFileError(format!("cluster file {}: {why}", path.display()))
        })
    }

    pub fn parse(text: &str) -> Result<ClusterFile, ClusterFileError> {
        let raw: RawFile = toml::from_str(text)
            // TOML's own message spans lines (it quotes the input): keep its first.
            .map_err(|error| {
                let message = error.message().lines().next().unwrap_or("").to_owned();
                let at = error
                    .span()
                    .map(|span| format!(" (at byte {})", span.start))
                    .unwrap_or_default();
                ClusterFileError(format!("{message}{at}"))
            })?;
        if !(CLUSTER_NODES_MIN..=CLUSTER_NODES_MAX).contains(&raw.node.len()) {
            return Err(ClusterFileError(format!(
                "a cluster has {CLUSTER_NODES_MIN} to {CLUSTER_NODES_MAX} [[node]] tables, not {}",
                raw.node.len()
            )));
        }
        let mut nodes = Vec::with_capacity(raw.node.len());
        for node in raw.node {
            let id = NodeId(node.id);
            if id.is_broadcast() {
                return Err(ClusterFileError(format!("node id {} is reserved", node.id)));
            }
            let address = |field: &str, text: &str| {
                text.parse::<SocketAddr>().map_err(|_| {
                    ClusterFileError(format!(
                        "node {}: {field} = {text:?} is not an IP address and port",
                        node.id
                    ))
                })
            };
            nodes.push(NodeAddresses {
                id,
                peer: address("peer", &node.peer)?,
                client: address("client", &node.client)?,
            });
        }
        nodes.sort_by_key(|n| n.id);
        if let Some(w) = nodes.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(ClusterFileError(format!(
                "node id {} appears twice",
                w[0].id.0
            )));
        }
        let mut seen = BTreeSet::new();
        for n in &nodes {
            for address in [n.peer, n.client] {
                if !seen.insert(address) {
                    return Err(ClusterFileError(format!(
                        "address {address} is given twice"
                    )));
                }
            }
        }
        if raw.limits.clients_max == 0 {
            return Err(ClusterFileError(
                "limits.clients_max must be at least 1".into(),
            ));
        }
        if raw.requirepass.as_deref() == Some("") {
            return Err(ClusterFileError(
                "requirepass is empty: leave it out for no password".into(),
            ));
        }
        Ok(ClusterFile {
            nodes,
            requirepass: raw.requirepass,
            limits: raw.limits,
        })
    }

    pub fn node(&self, id: NodeId) -> Option<&NodeAddresses> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The file for `nodes` nodes on 127.0.0.1: client ports from `base_port`, peer ports
    /// from `base_port + 100`, ids from 1.
    pub fn local(nodes: u16, base_port: u16) -> String {
        let mut text = String::from("# Written by `kvstore cluster`.\n");
        for i in 0..nodes {
            text.push_str(&format!(
                "\n[[node]]\nid = {}\npeer = \"127.0.0.1:{}\"\nclient = \"127.0.0.1:{}\"\n",
                i + 1,
                base_port + 100 + i,
                base_port + i
            ));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_local_writes() {
        let file = ClusterFile::parse(&ClusterFile::local(3, 7001)).unwrap();
        assert_eq!(file.nodes.len(), 3);
        assert_eq!(file.nodes[2].id, NodeId(3));
        assert_eq!(file.nodes[2].client, "127.0.0.1:7003".parse().unwrap());
        assert_eq!(file.nodes[0].peer, "127.0.0.1:7101".parse().unwrap());
        assert_eq!(file.limits, ClientLimits::default());
        assert_eq!(file.requirepass, None);
    }

    #[test]
    fn says_what_is_wrong_in_one_line() {
        let node = |id: u32, peer: &str, client: &str| {
            format!("[[node]]\nid = {id}\npeer = \"{peer}\"\nclient = \"{client}\"\n")
        };
        let cases = [
            (String::new(), "missing field `node`"),
            (node(1, "127.0.0.1:1", "127.0.0.1:2"), "2 to 15"),
            (
                node(1, "127.0.0.1:1", "nowhere") + &node(2, "127.0.0.1:3", "127.0.0.1:4"),
                "is not an IP address",
            ),
            (
                node(1, "127.0.0.1:1", "127.0.0.1:2") + &node(1, "127.0.0.1:3", "127.0.0.1:4"),
                "appears twice",
            ),
            (
                node(1, "127.0.0.1:1", "127.0.0.1:2") + &node(2, "127.0.0.1:1", "127.0.0.1:4"),
                "given twice",
            ),
            (
                node(65535, "127.0.0.1:1", "127.0.0.1:2") + &node(2, "127.0.0.1:3", "127.0.0.1:4"),
                "reserved",
            ),
            (node(70000, "127.0.0.1:1", "127.0.0.1:2"), "invalid value"),
            (
                "color = 1\n".to_owned() + &node(1, "127.0.0.1:1", "127.0.0.1:2"),
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let error = ClusterFile::parse(&text).unwrap_err().0;
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
