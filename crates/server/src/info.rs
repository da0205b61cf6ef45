//! What a node says about itself: `INFO`, `CLUSTER ...`, `CONFIG GET`, in the forms Redis
//! clients and tools parse. Raft's state is named as RedisRaft names it (`raft_role`,
//! `raft_leader_id`, ...).

use crate::command::Context;
use crate::hash_slot::{HASH_SLOTS, hash_slot};
use crate::members::members;
use crate::port::connection::Connection;
use crate::resp::reply;
use raft::NodeId;
use raft::time::Time;
use raft::{Node, Role};
use std::fmt::Write;

/// The Redis version whose RESP2 commands the subset here follows; clients read it to
/// decide what to send.
pub const REDIS_VERSION: &str = "7.0.0";

/// Counted by the port, reported by `INFO`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    pub connected_clients: usize,
    pub clients_max: usize,
    pub connections_received: u64,
    pub connections_rejected: u64,
    pub commands_processed: u64,
    pub protocol_errors: u64,
    pub idle_closed: u64,
}

/// A node's 40-character id in the Redis Cluster protocol: its Raft id, zero-padded.
pub fn cluster_node_id(id: NodeId) -> String {
    format!("{:040x}", id.0)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Candidate => "candidate",
        _ => "follower",
    }
}

/// `INFO [section ...]`: `server`, `clients`, `stats`, `raft` (all by default).
pub fn info(sections: &[&[u8]], node: &Node, cx: &Context<'_>, now: Time) -> String {
    let wanted = |name: &str| {
        sections.is_empty()
            || sections.iter().any(|s| {
                s.eq_ignore_ascii_case(name.as_bytes())
                    || s.eq_ignore_ascii_case(b"all")
                    || s.eq_ignore_ascii_case(b"everything")
                    || s.eq_ignore_ascii_case(b"default")
            })
    };
    let mut text = String::new();
    let c = cx.info;
    if wanted("server") {
        let port = cx.cluster.node(cx.me).map_or(0, |n| n.client.port());
        let _ = write!(
            text,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\nkvstore_version:{}\r\nredis_mode:cluster\r\nprocess_id:{}\r\ntcp_port:{port}\r\nuptime_in_seconds:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            now.since(cx.started_at).as_millis() / 1000,
        );
    }
    if wanted("clients") {
        let _ = write!(
            text,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n\r\n",
            c.connected_clients, c.clients_max
        );
    }
    if wanted("stats") {
        let _ = write!(
            text,
            "# Stats\r\ntotal_connections_received:{}\r\nrejected_connections:{}\r\ntotal_commands_processed:{}\r\ntotal_error_replies_protocol:{}\r\nidle_connections_closed:{}\r\n\r\n",
            c.connections_received,
            c.connections_rejected,
            c.commands_processed,
            c.protocol_errors,
            c.idle_closed
        );
    }
    if wanted("raft") {
        let leader = node.leader();
        let leader_id = if leader == NodeId::UNKNOWN {
            "-1".to_owned()
        } else {
            leader.0.to_string()
        };
        let _ = write!(
            text,
            "# Raft\r\nraft_node_id:{}\r\nraft_role:{}\r\nraft_leader_id:{leader_id}\r\nraft_current_term:{}\r\nraft_commit_index:{}\r\nraft_applied_index:{}\r\nraft_snapshot_index:{}\r\nraft_log_last_index:{}\r\nraft_num_nodes:{}\r\nraft_durable:{}\r\n\r\n",
            cx.me.0,
            role_name(node.role()),
            node.term().0,
            node.commit_index().0,
            node.last_applied().0,
            node.log().snapshot_index().0,
            node.log().last_index().0,
            node.membership().members().len(),
            if cx.durable { "yes" } else { "no" },
        );
    }
    text
}

/// `CLUSTER MEMBERS`: one line per member, `id role voter|learner peer client match`,
/// with how far the leader knows each follower's log to match its own (`-` on a node that
/// does not lead), then the membership's log index.
fn members_table(node: &Node, cx: &Context<'_>) -> String {
    let progress = node.follower_progress();
    let mut text = String::new();
    for n in members(cx.cluster, node) {
        let role = if n.id == node.leader() {
            "leader"
        } else {
            "follower"
        };
        let matched = if n.id == cx.me && node.role() == Role::Leader {
            node.log().last_index().0.to_string()
        } else {
            progress
                .iter()
                .find(|(id, _, _)| *id == n.id)
                .map_or("-".to_owned(), |(_, _, m)| m.0.to_string())
        };
        let _ = writeln!(
            text,
            "{} {role} {} {} {} {matched}",
            n.id.0,
            if n.voter { "voter" } else { "learner" },
            n.peer,
            n.client,
        );
    }
    let _ = writeln!(text, "membership_index {}", node.membership_index().0);
    text
}

/// `CONFIG GET name ...`: the few settings that mean something here; others are absent,
/// as Redis answers for an unknown name.
pub fn config_get(names: &[&[u8]], durable: bool) -> Vec<(&'static str, String)> {
    let known: [(&str, String); 4] = [
        ("databases", "1".to_owned()),
        ("appendonly", if durable { "yes" } else { "no" }.to_owned()),
        ("save", String::new()),
        ("cluster-enabled", "yes".to_owned()),
    ];
    known
        .into_iter()
        .filter(|(name, _)| {
            names
                .iter()
                .any(|n| n == b"*" || n.eq_ignore_ascii_case(name.as_bytes()))
        })
        .collect()
}

/// `CLUSTER NODES | SLOTS | MYID | INFO | KEYSLOT key`: one shard, every slot at
/// the leader this node knows (none while it knows none).
pub fn cluster(conn: &mut Connection, rest: &[&[u8]], node: &Node, cx: &Context<'_>) {
    let sub = |word: &str| {
        rest.first()
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    let leader = node.leader();
    let known = leader != NodeId::UNKNOWN;
    let last_slot = i64::from(HASH_SLOTS - 1);
    if sub("MYID") && rest.len() == 1 {
        let id = cluster_node_id(cx.me);
        conn.answer(|out| reply::bulk(out, Some(id.as_bytes())));
    } else if sub("KEYSLOT") && rest.len() == 2 {
        let slot = hash_slot(rest[1]);
        conn.answer(|out| reply::integer(out, i64::from(slot)));
    } else if sub("INFO") && rest.len() == 1 {
        let term = node.term().0;
        let (state, slots) = if known {
            ("ok", HASH_SLOTS)
        } else {
            ("fail", 0)
        };
        let text = format!(
            "cluster_enabled:1\r\ncluster_state:{state}\r\ncluster_slots_assigned:{slots}\r\ncluster_slots_ok:{slots}\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{}\r\ncluster_size:{}\r\ncluster_current_epoch:{term}\r\ncluster_my_epoch:{term}\r\n",
            node.membership().members().len(),
            u8::from(known),
        );
        conn.answer(|out| reply::bulk(out, Some(text.as_bytes())));
    } else if sub("NODES") && rest.len() == 1 {
        let mut text = String::new();
        for n in members(cx.cluster, node) {
            let myself = if n.id == cx.me { "myself," } else { "" };
            // A learner is a replica that will not take over (Redis's `nofailover`).
            let learner = if n.voter { "" } else { ",nofailover" };
            let (flags, master) = if n.id == leader {
                ("master", "-".to_owned())
            } else if known {
                ("slave", cluster_node_id(leader))
            } else {
                ("master", "-".to_owned())
            };
            let slots = if n.id == leader {
                format!(" 0-{last_slot}")
            } else {
                String::new()
            };
            let _ = writeln!(
                text,
                "{} {}@{} {myself}{flags}{learner} {master} 0 0 {} connected{slots}",
                cluster_node_id(n.id),
                n.client,
                n.peer.port(),
                node.term().0,
            );
        }
        conn.answer(|out| reply::bulk(out, Some(text.as_bytes())));
    } else if sub("SLOTS") && rest.len() == 1 {
        let known_members = members(cx.cluster, node);
        let Some(leader_node) = known_members.iter().find(|n| n.id == leader && known) else {
            conn.answer(|out| reply::array(out, 0));
            return;
        };
        let followers: Vec<_> = known_members.iter().filter(|n| n.id != leader).collect();
        conn.answer(|out| {
            reply::array(out, 1);
            reply::array(out, 3 + followers.len());
            reply::integer(out, 0);
            reply::integer(out, last_slot);
            for n in std::iter::once(leader_node).chain(followers.iter().copied()) {
                reply::array(out, 3);
                reply::bulk(out, Some(n.client.ip().to_string().as_bytes()));
                reply::integer(out, i64::from(n.client.port()));
                reply::bulk(out, Some(cluster_node_id(n.id).as_bytes()));
            }
        });
    } else if sub("MEMBERS") && rest.len() == 1 {
        conn.answer(|out| reply::bulk(out, Some(members_table(node, cx).as_bytes())));
    } else {
        conn.error("ERR unknown CLUSTER subcommand or wrong number of arguments (supported: NODES, SLOTS, MYID, INFO, KEYSLOT, MEMBERS, TRANSFER, ADDNODE, DELNODE)");
    }
}
