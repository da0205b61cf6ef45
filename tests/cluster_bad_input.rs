//! Cluster mode refuses bad input and keeps serving everyone else: no password, a wrong
//! one, malformed RESP, a bulk string over the limit (refused from its header alone), an
//! unknown command, SET options, one connection too many, an idle connection, a client
//! that never reads its replies (backpressure bounds the node's memory), and Raft
//! datagrams from an address outside the cluster file. A well-behaved client is served
//! between each.

mod cluster_support;

use cluster_support::{TestCluster, eventually};
use redis::Commands;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

const PASSWORD: &str = "s3cret";
const CLIENTS_MAX: usize = 6;
const IDLE_S: u64 = 2;

fn raw(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// Sends `request` and reads one reply line.
fn ask(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).unwrap();
    read_line(stream)
}

fn read_line(stream: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => line.push(byte[0]),
            Err(error) => panic!("no reply: {error} (after {line:?})"),
        }
    }
    String::from_utf8_lossy(&line).trim_end().to_owned()
}

/// The node closed the connection: a read finds its end.
fn closed(stream: &mut TcpStream) -> bool {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => rest.is_empty(),
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    }
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap();
    kb * 1024
}

#[test]
fn bad_input_is_refused_and_the_node_keeps_serving_others() {
    let cluster = TestCluster::start(
        "bad-input",
        3,
        &format!(
            "requirepass = \"{PASSWORD}\"\n[limits]\nclients_max = {CLIENTS_MAX}\nclient_idle_timeout_s = {IDLE_S}\n"
        ),
    );
    let leader = cluster.leader(Duration::from_secs(15));
    let address = cluster.nodes[leader].client;
    // A well-behaved client, connecting afresh each time (one left open would itself be
    // closed as idle during the idle test).
    let served = |round: &str| {
        let mut good = cluster.connect(leader);
        let () = good.set("good", round).unwrap();
        let read: String = good.get("good").unwrap();
        assert_eq!(read, round);
    };
    served("start");

    // No password, a wrong one, the right one; an unknown command and SET's options are
    // refused without closing the connection.
    let mut c = raw(address);
    assert!(ask(&mut c, b"GET k\r\n").starts_with("-NOAUTH"));
    assert!(ask(&mut c, b"AUTH wrong\r\n").starts_with("-WRONGPASS"));
    assert_eq!(
        ask(&mut c, format!("AUTH {PASSWORD}\r\n").as_bytes()),
        "+OK"
    );
    assert!(ask(&mut c, b"FLUSHALL\r\n").starts_with("-ERR unknown command 'FLUSHALL'"));
    assert!(ask(&mut c, b"SET k v EX 10\r\n").starts_with("-ERR SET options"));
    assert_eq!(ask(&mut c, b"*1\r\n$4\r\nPING\r\n"), "+PONG");
    // QUIT after pipelined writes: their replies come first, then the close.
    assert_eq!(ask(&mut c, b"SET q1 1\r\nSET q2 2\r\nQUIT\r\n"), "+OK");
    assert_eq!(read_line(&mut c), "+OK");
    assert_eq!(read_line(&mut c), "+OK");
    assert!(closed(&mut c));
    served("after refusals");

    // Malformed RESP, a bulk string over the limit announced but never sent, and an
    // inline command whose value is over the same limit: a protocol error, then the
    // connection is closed.
    let inline_over_limit = [&b"SET k "[..], &[b'v'; 5_000], b"\r\n"].concat();
    for bad in [
        &b"*1\r\n$x\r\n"[..],
        b"*2\r\n$3\r\nGET\r\n$100000000\r\n",
        b"*99999\r\n",
        b"*1\r\n:5\r\n",
        &inline_over_limit,
    ] {
        let mut c = raw(address);
        let reply = ask(&mut c, bad);
        assert!(reply.starts_with("-ERR Protocol error"), "{bad:?}: {reply}");
        assert!(closed(&mut c), "{bad:?}: still open");
    }
    served("after protocol errors");

    // One connection past the limit is told so and closed.
    let mut good = cluster.connect(leader);
    let info: String = redis::cmd("INFO").arg("clients").query(&mut good).unwrap();
    let connected: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut held: Vec<TcpStream> = (connected..CLIENTS_MAX).map(|_| raw(address)).collect();
    for c in &mut held {
        assert_eq!(ask(c, format!("AUTH {PASSWORD}\r\n").as_bytes()), "+OK");
    }
    let mut extra = raw(address);
    assert_eq!(read_line(&mut extra), "-ERR max number of clients reached");
    assert!(closed(&mut extra));
    drop(held);
    drop(good);
    // The node sees the closes on its next turns.
    eventually("room for a client again", Duration::from_secs(5), || {
        let client = redis::Client::open(cluster.url(leader)).ok()?;
        let mut con = client.get_connection().ok()?;
        redis::cmd("PING").query::<String>(&mut con).ok()
    });
    served("after too many connections");

    // A connection that says nothing is closed once idle past the limit.
    let mut idle = raw(address);
    let reply = read_line(&mut idle);
    assert!(reply.starts_with("-ERR idle for 2 s"), "{reply}");
    assert!(closed(&mut idle));
    served("after an idle connection");

    // A client that pipelines reads of a 4 KiB value and never reads the replies: the
    // node stops reading it once a mebibyte of replies waits, so its memory stays far
    // below the 80 MB these replies would take, and it goes on serving others.
    let value = "v".repeat(4096);
    let () = cluster.connect(leader).set("big", &value).unwrap();
    let gets = 20_000;
    let mut hog = raw(address);
    hog.write_all(format!("AUTH {PASSWORD}\r\n").as_bytes())
        .unwrap();
    let mut writer = hog.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let request = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n".repeat(gets);
        writer.write_all(&request).is_ok()
    });
    std::thread::sleep(Duration::from_secs(1));
    served("while a client does not read");
    let rss = rss_bytes(cluster.pid(leader));
    assert!(rss < 60 << 20, "the leader holds {rss} bytes");
    // Reading everything back: no reply was lost to the pause.
    let mut replies = 0;
    let mut buffer = vec![0u8; 1 << 16];
    let expected = 5 + gets * (4096 + 2 + "$4096\r\n".len());
    let mut total = 0;
    while total < expected {
        let n = hog.read(&mut buffer).unwrap();
        assert!(n > 0, "closed after {total} of {expected} bytes");
        total += n;
        replies += buffer[..n].iter().filter(|&&b| b == b'$').count();
    }
    assert!(sender.join().unwrap());
    assert_eq!(total, expected);
    assert!(replies >= gets);
    served("after the backpressured client");

    // Raft traffic from an address outside the cluster file: a vote request with a
    // higher term, which from a peer would unseat the leader, is dropped.
    let term_before = cluster.raft_field(leader, "raft_current_term").unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    let peer = (leader + 1) % 3;
    let forged = format!(
        r#"{{"src":"{:04X}","dst":"{:04X}","leader":"FFFF","type":"rv","term":1000,"lli":99,"llt":99,"pre":false,"ts":0}}"#,
        cluster.nodes[peer].id, cluster.nodes[leader].id
    );
    for _ in 0..10 {
        stranger
            .send_to(forged.as_bytes(), cluster.nodes[leader].peer)
            .unwrap();
        stranger
            .send_to(b"\xff\x00garbage", cluster.nodes[leader].peer)
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    served("after forged datagrams");
    assert_eq!(
        cluster.raft_field(leader, "raft_current_term").unwrap(),
        term_before
    );
    assert_eq!(
        cluster.raft_field(leader, "raft_role").as_deref(),
        Some("leader")
    );

    let mut good = cluster.connect(leader);
    let stats: String = redis::cmd("INFO").arg("stats").query(&mut good).unwrap();
    let stat = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim_start_matches(':').trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {stats}"))
    };
    assert!(stat("total_error_replies_protocol") >= 4);
    assert!(stat("rejected_connections") >= 1);
    assert!(stat("idle_connections_closed") >= 1);
    eventually("INFO again", Duration::from_secs(1), || {
        good.get::<_, String>("good").ok()
    });
}
