//! Membership change on real processes: a 3-node cluster grows to 5 (`kvstore serve
//! --join`, then `CLUSTER ADDNODE` on the leader) and shrinks back to 3 (`CLUSTER
//! DELNODE`, the leader itself among the removed), while the `redis` crate's cluster
//! client writes without pause. Every acknowledged write is read back at the end; a node
//! added this way restarts on its data dir as a member; refusals are clear errors.

mod cluster_support;

use cluster_support::{TestCluster, Writer, eventually};
use redis::Commands;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(20);

/// `CLUSTER MEMBERS` of node `i`: (id, voter) per member.
fn members(cluster: &TestCluster, i: usize) -> Option<Vec<(u16, bool)>> {
    let mut con = redis::Client::open(cluster.url(i))
        .ok()?
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    let text: String = redis::cmd("CLUSTER").arg("MEMBERS").query(&mut con).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with("membership_index"))
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let id = words.next()?.parse().ok()?;
                let voter = words.nth(1)? == "voter";
                Some((id, voter))
            })
            .collect(),
    )
}

fn on_leader(cluster: &TestCluster, args: &[String]) -> redis::RedisResult<String> {
    let leader = cluster.leader(WITHIN);
    let mut con = cluster.connect(leader);
    con.set_read_timeout(Some(Duration::from_secs(5)))?;
    eprintln!(
        "on node {}: CLUSTER {}",
        cluster.nodes[leader].id,
        args.join(" ")
    );
    let mut cmd = redis::cmd("CLUSTER");
    for a in args {
        cmd.arg(a);
    }
    cmd.query(&mut con)
}

/// The leader's refusal of `CLUSTER args`, once it is not one an operator retries ("try
/// again": a change or the new leader's first entry not yet committed; a redirect or
/// `-CLUSTERDOWN` while leadership moves). A success fails the test.
fn refused(cluster: &TestCluster, args: &[String]) -> redis::RedisError {
    eventually(
        &format!("CLUSTER {} refused", args.join(" ")),
        WITHIN,
        || match on_leader(cluster, args) {
            Ok(reply) => panic!("CLUSTER {} was accepted: {reply}", args.join(" ")),
            Err(e)
                if e.is_io_error()
                    || e.redirect_node().is_some()
                    || e.kind() == redis::ErrorKind::ClusterDown
                    || e.to_string().contains("try again") =>
            {
                None
            }
            Err(e) => Some(e),
        },
    )
}

fn add(cluster: &TestCluster, i: usize) {
    let n = &cluster.nodes[i];
    let args = [
        "ADDNODE".to_owned(),
        n.id.to_string(),
        n.peer.to_string(),
        n.client.to_string(),
    ];
    eventually(&format!("node {} added", n.id), WITHIN, || {
        on_leader(cluster, &args).ok()
    });
    let id = n.id;
    eventually(&format!("node {id} a voter"), WITHIN, || {
        let leader = cluster.leader(WITHIN);
        members(cluster, leader)?
            .contains(&(id, true))
            .then_some(())
    });
}

fn remove(cluster: &TestCluster, id: u16) {
    let args = ["DELNODE".to_owned(), id.to_string()];
    eventually(&format!("node {id} removed"), WITHIN, || {
        on_leader(cluster, &args).ok()
    });
}

#[test]
fn a_cluster_grows_to_five_and_shrinks_to_three_under_writes() {
    let mut cluster = TestCluster::start("membership", 3, "");
    cluster.leader(WITHIN);

    let writer = Writer::start(&cluster, "m");
    // The check at the end asks for more than 100: had before the changes begin,
    // however slow the machine (the writer's client knows only the founders).
    writer.wait_until_acknowledged(100);

    // Refusals: an unknown node, a member added twice, a bad address.
    let error = refused(&cluster, &["DELNODE".into(), "9".into()]);
    assert!(error.to_string().contains("not a member"), "{error}");
    let error = refused(
        &cluster,
        &[
            "ADDNODE".into(),
            "1".into(),
            "127.0.0.1:1".into(),
            "127.0.0.1:2".into(),
        ],
    );
    assert!(error.to_string().contains("already a member"), "{error}");
    let error = refused(
        &cluster,
        &[
            "ADDNODE".into(),
            "4".into(),
            "nowhere".into(),
            "127.0.0.1:2".into(),
        ],
    );
    assert!(error.to_string().contains("host:port"), "{error}");

    // Grow to five. A node not added yet sends its clients elsewhere.
    let four = cluster.start_joining(4);
    let refused = eventually("node 4 answers", WITHIN, || {
        let mut con = redis::Client::open(cluster.url(four))
            .ok()?
            .get_connection_with_timeout(Duration::from_secs(1))
            .ok()?;
        Some(con.get::<_, Option<String>>("m:0").unwrap_err())
    });
    assert!(
        refused.to_string().contains("not a member of the cluster"),
        "{refused}"
    );
    add(&cluster, four);
    let five = cluster.start_joining(5);
    add(&cluster, five);
    let leader = cluster.leader(WITHIN);
    let all: Vec<(u16, bool)> = (1..=5).map(|id| (id, true)).collect();
    assert_eq!(members(&cluster, leader).unwrap(), all);

    // A node added by --join restarts on its data dir as a member.
    cluster.kill(four);
    cluster.start_node(four);
    eventually("the restarted joined node follows", WITHIN, || {
        (cluster.raft_field(four, "raft_role")? == "follower"
            && cluster.raft_field(four, "raft_leader_id")? != "-1")
            .then_some(())
    });

    // Shrink to three: the leader first, then another founder.
    let leader = cluster.leader(WITHIN);
    let first = cluster.nodes[leader].id;
    remove(&cluster, first);
    let next = cluster.leader(WITHIN);
    assert_ne!(cluster.nodes[next].id, first, "a removed leader steps down");
    let second = (1..=3)
        .find(|&id| id != first && id != cluster.nodes[next].id)
        .unwrap();
    remove(&cluster, second);
    let leader = cluster.leader(WITHIN);
    let left: Vec<u16> = members(&cluster, leader)
        .unwrap()
        .into_iter()
        .map(|(id, voter)| {
            assert!(voter);
            id
        })
        .collect();
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(
        !left.contains(&first) && !left.contains(&second),
        "{left:?}"
    );
    std::thread::sleep(Duration::from_millis(300));

    writer.stop_and_read_back(&cluster, leader);
}

/// An operator replaces a member: `DELNODE`, then a new node on an empty data dir under
/// a new id. The old id is refused for good (a node back under it with an empty disk
/// could vote in the old memberships that name it); the new node is a node behind on the
/// cluster file: the leader that adds it, the third node in a row added this way, is in
/// no cluster file, and it must still be heard.
#[test]
fn a_removed_id_is_refused_and_a_new_node_takes_its_place() {
    let mut cluster = TestCluster::start("replace", 3, "");
    cluster.leader(WITHIN);
    let writer = Writer::start(&cluster, "r");
    // The check at the end asks for more than 100: had before the changes begin,
    // however slow the machine (the writer's client knows only the founders).
    writer.wait_until_acknowledged(100);

    // Replace every founder, one at a time, by nodes 4, 5, 6: at the end every member,
    // the leader too, was added with --join.
    for (founder, new_id) in [(1u16, 4u16), (2, 5), (3, 6)] {
        let i = founder as usize - 1;
        remove(&cluster, founder);
        eventually(&format!("removed node {founder} stops"), WITHIN, || {
            let child = cluster.nodes[i].child.as_mut()?;
            child.try_wait().ok()?.map(|_| ())
        });
        cluster.nodes[i].child = None;
        let n = &cluster.nodes[i];
        let again = [
            "ADDNODE".to_owned(),
            founder.to_string(),
            n.peer.to_string(),
            n.client.to_string(),
        ];
        let error = refused(&cluster, &again);
        assert!(error.to_string().contains("never taken again"), "{error}");
        let new = cluster.start_joining(new_id);
        add(&cluster, new);
    }
    // A node that joined restarts on its data dir and is heard by the others, which
    // know it only from the membership.
    let leader = cluster.leader(WITHIN);
    let follower = (3..6).find(|&i| i != leader).unwrap();
    cluster.kill(follower);
    cluster.start_node(follower);
    let commit =
        |n: usize| -> Option<u64> { cluster.raft_field(n, "raft_commit_index")?.parse().ok() };
    let target = commit(leader).unwrap();
    eventually(
        "the restarted node commits what the leader had",
        WITHIN,
        || (commit(follower)? >= target).then_some(()),
    );

    let leader = cluster.leader(WITHIN);
    writer.stop_and_read_back(&cluster, leader);
}
