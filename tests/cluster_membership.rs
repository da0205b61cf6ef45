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
    std::thread::sleep(Duration::from_millis(300));

    // Refusals: an unknown node, a member added twice, a bad address.
    let error = on_leader(&cluster, &["DELNODE".into(), "9".into()]).unwrap_err();
    assert!(error.to_string().contains("not a member"), "{error}");
    let error = on_leader(
        &cluster,
        &[
            "ADDNODE".into(),
            "1".into(),
            "127.0.0.1:1".into(),
            "127.0.0.1:2".into(),
        ],
    )
    .unwrap_err();
    assert!(error.to_string().contains("already a member"), "{error}");
    let error = on_leader(
        &cluster,
        &[
            "ADDNODE".into(),
            "4".into(),
            "nowhere".into(),
            "127.0.0.1:2".into(),
        ],
    )
    .unwrap_err();
    assert!(error.to_string().contains("host:port"), "{error}");

    // Grow to five.
    let four = cluster.start_joining(4);
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

    let (acked, errors) = writer.stop();
    eprintln!(
        "{} writes acknowledged, {} errors {:?}",
        acked.len(),
        errors.len(),
        errors.iter().take(3).collect::<Vec<_>>()
    );
    assert!(acked.len() > 100, "only {} writes got through", acked.len());
    let mut reader = cluster.connect(leader);
    for (key, value) in &acked {
        let read: Option<u64> = reader.get(key).unwrap();
        assert_eq!(read, Some(*value), "{key}");
    }
}

/// An operator replaces a failed member under the same id, twice: `DELNODE`, a fresh
/// data dir, `serve --join`, `ADDNODE`. The second time the node catches up through its
/// own earlier addition and removal in the log, and must not take that removal for one
/// now.
#[test]
fn a_removed_member_comes_back_under_its_id_on_an_empty_data_dir() {
    let mut cluster = TestCluster::start("rejoin", 3, "");
    let leader = cluster.leader(WITHIN);
    let writer = Writer::start(&cluster, "r");
    std::thread::sleep(Duration::from_millis(500));

    let i = (leader + 1) % 3;
    let id = cluster.nodes[i].id;
    for round in 1..=2 {
        remove(&cluster, id);
        eventually(&format!("removed node {id} stops"), WITHIN, || {
            let child = cluster.nodes[i].child.as_mut()?;
            child.try_wait().ok()?.map(|_| ())
        });
        cluster.nodes[i].child = None;
        std::thread::sleep(Duration::from_millis(300));

        std::fs::remove_dir_all(&cluster.nodes[i].data_dir).unwrap();
        cluster.nodes[i].joins = true;
        cluster.start_node(i);
        add(&cluster, i);
        // Long enough to catch up through the old removal and follow the writes.
        std::thread::sleep(Duration::from_secs(1));
        let running = cluster.nodes[i]
            .child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none());
        assert!(
            running,
            "node {id} stopped after it was added again (round {round})"
        );
        let leader = cluster.leader(WITHIN);
        assert_eq!(members(&cluster, leader).unwrap().len(), 3);
        let commit =
            |n: usize| -> Option<u64> { cluster.raft_field(n, "raft_commit_index")?.parse().ok() };
        let target = commit(leader).unwrap();
        eventually(
            &format!("node {id} commits what the leader had"),
            WITHIN,
            || (commit(i)? >= target).then_some(()),
        );
        // Enough entries between this addition and the next removal that the next
        // incarnation's catching up, a few thousand entries a round trip, stops between.
        eventually("writes after the addition", WITHIN, || {
            (commit(leader)? >= target + 8_000).then_some(())
        });
    }

    let (acked, _) = writer.stop();
    assert!(acked.len() > 100, "only {} writes got through", acked.len());
    let leader = cluster.leader(WITHIN);
    let mut reader = cluster.connect(leader);
    for (key, value) in &acked {
        let read: Option<u64> = reader.get(key).unwrap();
        assert_eq!(read, Some(*value), "{key}");
    }
}
