//! Network faults with nftables, inside the run's namespace: one table `inet kvnemesis`
//! with one chain on the output hook (on loopback every packet passes it once), whose
//! rules drop peer (Raft, UDP) datagrams. Client connections (TCP) are never touched: as
//! in Jepsen, the clients stand outside the partitions and see every node.
//!
//! No `netem` on this kernel, so no delay or duplication: delay would need a relay of
//! our own in the path, and duplicated or late UDP datagrams are already covered by the
//! in-process simulation and kvsim. Loss is `numgen random mod 100 < P`.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

const TABLE: &str = "inet kvnemesis";
const CHAIN: &str = "faults";

/// The `nft` program: Debian puts it in /usr/sbin, which a user's PATH may lack.
fn program() -> &'static str {
    const SBIN: &str = "/usr/sbin/nft";
    if std::path::Path::new(SBIN).is_file() {
        SBIN
    } else {
        "nft"
    }
}

/// Whether `nft` can be run at all: its absence is told before anything starts.
pub fn check_available() -> Result<(), String> {
    match Command::new(program()).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "nft --version failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(_) => Err(
            "nft not found: kvnemesis makes its partitions with nftables (Debian: apt-get install nftables)"
                .into(),
        ),
    }
}

/// Creates the table and its empty chain.
pub fn install() -> Result<(), String> {
    run(&format!(
        "add table {TABLE}\nadd chain {TABLE} {CHAIN} {{ type filter hook output priority 0; policy accept; }}\n"
    ))
}

/// Drops peer datagrams from each `from` to its `to` (one way; give both for a cut).
pub fn drop_links(links: &[(Ipv4Addr, Ipv4Addr)], peer_port: u16) -> Result<(), String> {
    let mut script = String::new();
    for (from, to) in links {
        script.push_str(&format!(
            "add rule {TABLE} {CHAIN} ip saddr {from} ip daddr {to} udp dport {peer_port} drop\n"
        ));
    }
    run(&script)
}

/// Drops `percent` of all peer datagrams, at random.
pub fn lose(percent: u8, peer_port: u16) -> Result<(), String> {
    run(&format!(
        "add rule {TABLE} {CHAIN} udp dport {peer_port} numgen random mod 100 < {percent} drop\n"
    ))
}

/// Takes every rule out.
pub fn heal() -> Result<(), String> {
    run(&format!("flush chain {TABLE} {CHAIN}\n"))
}

fn run(script: &str) -> Result<(), String> {
    let mut child = Command::new(program())
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(|e| format!("cannot write to nft: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("nft did not finish: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "nft refused {:?}: {}",
            script.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}
