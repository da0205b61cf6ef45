//! `CLUSTER TRANSFER`: an operator moves leadership while a `redis` crate cluster client
//! keeps writing, on three `kvstore serve` processes. The transfer is answered `+OK` once
//! the target leads; writes held meanwhile are redirected to it and the client follows;
//! every acknowledged write is readable after; a follower redirects the command, an
//! unknown node is refused, and the leader naming itself is a no-op.

mod cluster_support;

use cluster_support::{TestCluster, Writer, eventually};
use redis::ErrorKind;
use std::time::Duration;

const ELECTION_WITHIN: Duration = Duration::from_secs(15);

fn transfer(con: &mut redis::Connection, id: u16) -> redis::RedisResult<String> {
    redis::cmd("CLUSTER").arg("TRANSFER").arg(id).query(con)
}

#[test]
fn leadership_moves_on_request_while_a_client_keeps_writing() {
    let cluster = TestCluster::start("transfer", 3, "");
    let first = cluster.leader(ELECTION_WITHIN);
    let target = (first + 1) % 3;
    let other = (first + 2) % 3;

    let writer = Writer::start(&cluster, "w");
    std::thread::sleep(Duration::from_millis(300));

    let mut leader_con = cluster.connect(first);
    let started = std::time::Instant::now();
    assert_eq!(
        transfer(&mut leader_con, cluster.nodes[target].id).unwrap(),
        "OK"
    );
    let took = started.elapsed();
    assert_eq!(
        cluster.raft_field(target, "raft_role").as_deref(),
        Some("leader"),
        "the target leads once the transfer is answered"
    );
    let target_id = cluster.nodes[target].id.to_string();
    eventually("the old leader follows the target", ELECTION_WITHIN, || {
        (cluster.raft_field(first, "raft_leader_id")? == target_id).then_some(())
    });

    // A follower redirects the command to the leader, as it does a write.
    let mut follower_con = cluster.connect(other);
    let error = transfer(&mut follower_con, cluster.nodes[first].id).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Moved, "{error}");
    // Not a node of the cluster, by either of its names.
    let mut new_leader_con = cluster.connect(target);
    let error = transfer(&mut new_leader_con, 9).unwrap_err();
    assert!(error.to_string().contains("unknown node"), "{error}");
    let error: redis::RedisError = redis::cmd("CLUSTER")
        .arg("TRANSFER")
        .arg("not-a-node")
        .query::<String>(&mut new_leader_con)
        .unwrap_err();
    assert!(error.to_string().contains("unknown node"), "{error}");
    // The leader itself: nothing to do.
    assert_eq!(
        transfer(&mut new_leader_con, cluster.nodes[target].id).unwrap(),
        "OK"
    );

    // And back, by the 40-digit id CLUSTER NODES shows.
    let hex = format!("{:040x}", cluster.nodes[first].id);
    let back: String = redis::cmd("CLUSTER")
        .arg("TRANSFER")
        .arg(&hex)
        .query(&mut new_leader_con)
        .unwrap();
    assert_eq!(back, "OK");
    assert_eq!(
        cluster.raft_field(first, "raft_role").as_deref(),
        Some("leader")
    );
    std::thread::sleep(Duration::from_millis(300));
    // More than 100 in all, however slow the machine is.
    writer.wait_until_acknowledged(100);

    eprintln!("transfer answered in {took:?}");
    // Every acknowledged write is there, read through the leader.
    writer.stop_and_read_back(&cluster, first);
}
