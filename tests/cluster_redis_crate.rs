//! Cluster mode driven by a client no one here wrote: the `redis` crate, against three
//! `kvstore serve` processes on loopback. Reads, writes, pipelines, `-MOVED` followed by
//! its cluster client, the leader killed with SIGKILL and a new one found, and every
//! node killed and restarted on its data dir with every acknowledged write still there.

mod cluster_support;

use cluster_support::{TestCluster, eventually};
use redis::{Commands, ErrorKind};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const ELECTION_WITHIN: Duration = Duration::from_secs(15);

#[test]
fn the_redis_crate_reads_writes_and_keeps_what_was_acknowledged_across_kills() {
    let mut cluster = TestCluster::start("redis-crate", 3, "");
    let leader = cluster.leader(ELECTION_WITHIN);
    let follower = (leader + 1) % 3;
    // What the cluster acknowledged: every one must survive everything below.
    let mut acked: BTreeMap<String, Vec<u8>> = BTreeMap::new();

    // A cluster connection seeded with a follower only: it learns the leader from
    // CLUSTER SLOTS or from a -MOVED, and follows it.
    let client = cluster.cluster_client(&[follower]);
    let mut con = eventually("a cluster connection", ELECTION_WITHIN, || {
        client.get_connection().ok()
    });
    for i in 0..50 {
        let (key, value) = (format!("key:{i}"), format!("value-{i}"));
        let () = con.set(&key, &value).unwrap();
        acked.insert(key, value.into_bytes());
    }
    for (key, value) in &acked {
        let read: Vec<u8> = con.get(key).unwrap();
        assert_eq!(&read, value, "{key}");
    }
    let missing: Option<String> = con.get("never-written").unwrap();
    assert_eq!(missing, None);

    // DEL and EXISTS count as Redis does; an empty value is not a missing one; any bytes
    // round-trip.
    let () = con.set("doomed", "x").unwrap();
    let deleted: i64 = con.del("doomed").unwrap();
    assert_eq!(deleted, 1);
    let deleted: i64 = con.del("doomed").unwrap();
    assert_eq!(deleted, 0);
    let gone: Option<String> = con.get("doomed").unwrap();
    assert_eq!(gone, None);
    let () = con.set("empty", "").unwrap();
    let empty: Option<String> = con.get("empty").unwrap();
    assert_eq!(empty.as_deref(), Some(""));
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    let () = con.set("binary", &binary).unwrap();
    let read: Vec<u8> = con.get("binary").unwrap();
    assert_eq!(read, binary);
    acked.insert("empty".into(), Vec::new());
    acked.insert("binary".into(), binary);

    // A plain connection to the leader: a pipeline of writes then reads, one round trip.
    let mut direct = cluster.connect(leader);
    let mut pipe = redis::pipe();
    for i in 0..200 {
        pipe.set(format!("{{p}}{i}"), i).ignore();
    }
    for i in 0..200 {
        pipe.get(format!("{{p}}{i}"));
    }
    let read: Vec<i64> = pipe.query(&mut direct).unwrap();
    assert_eq!(read, (0..200).collect::<Vec<i64>>());
    for i in 0..200 {
        acked.insert(format!("{{p}}{i}"), i.to_string().into_bytes());
    }
    let values: Vec<Option<String>> = direct.mget(&["key:1", "nothing", "key:2"]).unwrap();
    assert_eq!(
        values,
        vec![Some("value-1".into()), None, Some("value-2".into())]
    );
    let exists: i64 = direct.exists(&["key:1", "nothing", "key:2"]).unwrap();
    assert_eq!(exists, 2);
    let size: i64 = redis::cmd("DBSIZE").query(&mut direct).unwrap();
    assert_eq!(size, acked.len() as i64);

    // A plain connection to a follower is told where the leader is.
    let mut to_follower = cluster.connect(follower);
    let error = to_follower.get::<_, String>("key:1").unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Moved, "{error}");
    let (address, _slot) = error.redirect_node().expect("a redirect");
    assert_eq!(address, cluster.nodes[leader].client.to_string());

    // The leader dies with SIGKILL; the cluster client finds the new one. Writes that
    // fail while it does are not acknowledged, and not counted.
    let old_leader = leader;
    cluster.kill(old_leader);
    let survivor = (old_leader + 1) % 3;
    let killed_at = Instant::now();
    let mut written_after = 0;
    let mut errors = 0;
    while written_after < 20 {
        assert!(
            killed_at.elapsed() < ELECTION_WITHIN * 2,
            "only {written_after} writes after the leader died ({errors} errors)"
        );
        let key = format!("after:{written_after}");
        let result = cluster
            .cluster_client(&[survivor])
            .get_connection()
            .and_then(|mut c| c.set::<_, _, ()>(&key, written_after));
        match result {
            Ok(()) => {
                acked.insert(key, written_after.to_string().into_bytes());
                written_after += 1;
            }
            Err(_) => {
                errors += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    let new_leader = cluster.leader(ELECTION_WITHIN);
    assert_ne!(new_leader, old_leader);

    // The old leader comes back on its data dir and catches up.
    cluster.start_node(old_leader);
    let target: u64 = cluster
        .raft_field(new_leader, "raft_commit_index")
        .unwrap()
        .parse()
        .unwrap();
    eventually("the restarted node catches up", ELECTION_WITHIN, || {
        let index: u64 = cluster
            .raft_field(old_leader, "raft_commit_index")?
            .parse()
            .ok()?;
        (index >= target).then_some(())
    });

    // Every node killed at once, and started again on its data dir: everything
    // acknowledged is there.
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.start_node(i);
    }
    cluster.leader(ELECTION_WITHIN);
    let client = cluster.cluster_client(&[0, 1, 2]);
    let mut con = eventually("a connection after the restart", ELECTION_WITHIN, || {
        client.get_connection().ok()
    });
    for (key, value) in &acked {
        let read: Vec<u8> = eventually(&format!("read {key}"), ELECTION_WITHIN, || {
            con.get(key).ok()
        });
        assert_eq!(&read, value, "{key} after every node restarted");
    }
}
