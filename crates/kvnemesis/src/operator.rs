//! The operator: membership changes made as a person at a terminal makes them,
//! `CLUSTER DELNODE` and `CLUSTER ADDNODE` sent to whichever node leads, and sent again
//! while the answer says to (no leader yet, `-MOVED`, a change or transfer in progress,
//! voters not heard from lately, no answer in time).

use crate::cluster::Cluster;
use crate::resp::{Connection, Failure, Reply};
use std::time::{Duration, Instant};

/// How long one change may take to be answered `+OK`, retries included.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one attempt waits for its answer (a change is answered once it commits).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a removed node has to stop on its own before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Removes node `i` from the cluster; once answered, the node should stop by itself.
/// Says whether it did, for the history.
pub fn remove(cluster: &mut Cluster, i: usize) -> Result<String, String> {
    let id = cluster.nodes[i].id.to_string();
    change(cluster, &["DELNODE", &id], "not a member")?;
    Ok(if cluster.retire(i, STOP_TIMEOUT) {
        "stopped on its own".into()
    } else {
        format!("still running {} s later, killed", STOP_TIMEOUT.as_secs())
    })
}

/// Adds node `i`, running with `--join`, to the cluster.
pub fn add(cluster: &mut Cluster, i: usize) -> Result<(), String> {
    let node = &cluster.nodes[i];
    let (id, peer, client) = (
        node.id.to_string(),
        node.peer().to_string(),
        node.client().to_string(),
    );
    change(
        cluster,
        &["ADDNODE", &id, &peer, &client],
        "already a member",
    )?;
    cluster.nodes[i].member = true;
    // An operator waits for the learner to be promoted before the next change: until
    // then the cluster has one voter fewer than it seems.
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    while Instant::now() < deadline {
        if is_voter(cluster, &id) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "node {id}: added, but not a voter within {} s",
        CHANGE_TIMEOUT.as_secs()
    ))
}

/// Whether the leader's `CLUSTER MEMBERS` lists node `id` as a voter.
fn is_voter(cluster: &Cluster, id: &str) -> bool {
    let Some(leader) = cluster.leader() else {
        return false;
    };
    let Ok(mut connection) = Connection::connect(cluster.nodes[leader].client(), REPLY_TIMEOUT)
    else {
        return false;
    };
    let reply = connection.command(&[b"CLUSTER", b"MEMBERS"], Instant::now() + REPLY_TIMEOUT);
    let Ok(Reply::Bulk(Some(text))) = reply else {
        return false;
    };
    String::from_utf8_lossy(&text).lines().any(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.first() == Some(&id) && words.get(2) == Some(&"voter")
    })
}

/// Sends `CLUSTER args` to the leader until answered `+OK`. After an attempt whose
/// outcome is unknown, `done_already` (the refusal of a change already made) counts as
/// done.
fn change(cluster: &Cluster, args: &[&str], done_already: &str) -> Result<(), String> {
    let mut command: Vec<&[u8]> = vec![b"CLUSTER"];
    command.extend(args.iter().map(|a| a.as_bytes()));
    let what = format!("CLUSTER {}", args.join(" "));
    let deadline = Instant::now() + CHANGE_TIMEOUT;
    let mut maybe_done = false;
    let mut last = String::from("no leader");
    while Instant::now() < deadline {
        if let Some(leader) = cluster.leader() {
            let address = cluster.nodes[leader].client();
            let attempt = Connection::connect(address, REPLY_TIMEOUT)
                .and_then(|mut c| c.command(&command, Instant::now() + REPLY_TIMEOUT));
            match attempt {
                Ok(Reply::Simple(_)) => return Ok(()),
                Ok(Reply::Error(e)) if maybe_done && e.contains(done_already) => return Ok(()),
                Ok(Reply::Error(e)) if e.starts_with("TIMEOUT") => {
                    maybe_done = true;
                    last = e;
                }
                Ok(Reply::Error(e)) if retryable(&e) => last = e,
                Ok(Reply::Error(e)) => return Err(format!("{what}: refused: {e}")),
                Ok(other) => return Err(format!("{what}: unexpected answer {other:?}")),
                Err(Failure::Unknown(e)) => {
                    maybe_done = true;
                    last = e;
                }
                Err(Failure::NotSent(e)) => last = e,
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "{what}: not done within {} s (last: {last})",
        CHANGE_TIMEOUT.as_secs()
    ))
}

/// Refusals that pass: a leader just deposed or elected, a change or transfer not yet
/// committed, voters that have not answered since a fault healed.
fn retryable(error: &str) -> bool {
    error.starts_with("MOVED")
        || error.starts_with("CLUSTERDOWN")
        || error.contains("try again")
        || error.contains("heard from lately")
        || error.contains("not the leader")
}

#[cfg(test)]
mod tests {
    use super::retryable;

    #[test]
    fn passing_refusals_are_retried_and_others_are_not() {
        assert!(retryable("MOVED 0 127.0.0.12:7000"));
        assert!(retryable(
            "ERR membership change refused: a membership change is in progress (or this leader's first entry is not committed yet); try again"
        ));
        assert!(retryable(
            "ERR membership change refused: the new membership would have no quorum of voters heard from lately; nothing was changed"
        ));
        assert!(!retryable(
            "ERR membership change refused: already a member"
        ));
        assert!(!retryable(
            "ERR unknown node 9: not a member of the cluster"
        ));
    }
}
