//! The replica binary on real loopback sockets: command-line errors, the hello, a tiny
//! simulator routing three replicas plus a client, garbage and hostile peer input, and
//! SIGTERM.
//!
//! Everything is bounded in time; replicas still running when a test ends are killed (by
//! their own pid) when their guard drops.

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_3700kvstore");
const USAGE: &str = "usage: 3700kvstore [--debug-log DIR] [--data-dir DIR [--cluster NAME]] <port> <my id> <peer id> [<peer id> ...]";
// Generous: a durable replica syncs its directory before its hello, and on a busy CI
// disk a sync can take seconds. Only a failing test waits this long.
const HELLO_TIMEOUT: Duration = Duration::from_secs(20);
const EXIT_TIMEOUT: Duration = Duration::from_secs(2);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A replica process, killed on drop if still running.
struct Replica {
    id: String,
    child: Child,
}

impl Replica {
    fn spawn(port: u16, id: &str, peers: &[&str], log_dir: Option<&Path>) -> Replica {
        Replica::spawn_with(port, id, peers, log_dir, &[])
    }

    /// `flags` go before the positional arguments.
    fn spawn_with(
        port: u16,
        id: &str,
        peers: &[&str],
        log_dir: Option<&Path>,
        flags: &[&std::ffi::OsStr],
    ) -> Replica {
        let mut command = Command::new(BIN);
        command
            .args(flags)
            .arg(port.to_string())
            .arg(id)
            .args(peers)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env_remove("KV_DEBUG_LOG_DIR");
        if let Some(dir) = log_dir {
            command.env("KV_DEBUG_LOG_DIR", dir);
        }
        Replica {
            id: id.to_owned(),
            child: command.spawn().expect("spawn 3700kvstore"),
        }
    }

    fn is_alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: kill(2) on our own child's pid, which we have not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid}");
    }

    /// Signals and waits for a clean, prompt exit.
    fn stop_with(mut self, signal: i32) -> Duration {
        let sent = Instant::now();
        self.signal(signal);
        let status = wait_timeout(&mut self.child, EXIT_TIMEOUT)
            .unwrap_or_else(|| panic!("{} did not exit within {EXIT_TIMEOUT:?}", self.id));
        assert_eq!(status.code(), Some(0), "{} exited with {status}", self.id);
        sent.elapsed()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn simulator_socket() -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("read timeout");
    socket
}

fn port_of(socket: &UdpSocket) -> u16 {
    socket.local_addr().expect("local addr").port()
}

fn is_id(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Parses a datagram a replica sent and checks what the simulator checks of every one:
/// a JSON object with `src`, `dst`, `leader` (4-hex IDs) and a string `type`.
fn parse_checked(bytes: &[u8]) -> Value {
    let value: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "replica sent non-JSON ({e}): {:?}",
            String::from_utf8_lossy(bytes)
        )
    });
    assert!(value.is_object(), "not an object: {value}");
    for field in ["src", "dst", "leader"] {
        assert!(is_id(&value[field]), "bad {field:?} in {value}");
    }
    assert!(value["type"].as_str().is_some(), "bad type in {value}");
    value
}

fn receive(socket: &UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    loop {
        match socket.recv_from(buf) {
            Ok(got) => return Some(got),
            // A signal landed during the wait (seen on CI): wait again.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return None;
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
}

#[test]
fn bad_command_lines_exit_2_with_one_usage_line() {
    let cases: &[&[&str]] = &[
        &[],
        &["4000"],
        &["4000", "0000"],
        &["port", "0000", "0001"],
        &["70000", "0000", "0001"],
        &["0", "0000", "0001"],
        &["4000", "000", "0001"],
        &["4000", "0000", "00001"],
        &["4000", "FFFF", "0001"],
        &["4000", "0000", "ffff"],
        &["4000", "0000", "0001", "0000"],
        &["4000", "0000", "0001", "0001"],
        &["4000", "0000", "zzzz"],
        &["--debug-log"],
        &["--nope", "4000", "0000", "0001"],
    ];
    for args in cases {
        let mut child = Command::new(BIN)
            .args(*args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let status = wait_timeout(&mut child, EXIT_TIMEOUT).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("{args:?}: still running")
        });
        let output = child.wait_with_output().expect("output");
        assert_eq!(status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).expect("utf-8 stderr");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
        assert!(stderr.starts_with(USAGE), "{args:?}: {stderr:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn says_hello_first_and_exits_cleanly_on_sigterm() {
    let socket = simulator_socket();
    let replica = Replica::spawn(port_of(&socket), "0003", &["0001", "0002"], None);
    let mut buf = vec![0u8; 65_535];
    let deadline = Instant::now() + HELLO_TIMEOUT;
    let (bytes, from) = loop {
        if let Some(got) = receive(&socket, &mut buf) {
            break got;
        }
        assert!(
            Instant::now() < deadline,
            "no hello within {HELLO_TIMEOUT:?}"
        );
    };
    assert_eq!(from.ip(), std::net::Ipv4Addr::LOCALHOST);
    let hello = parse_checked(&buf[..bytes]);
    let object = hello.as_object().expect("object");
    assert_eq!(object["src"], "0003");
    assert_eq!(object["dst"], "FFFF");
    assert_eq!(object["leader"], "FFFF");
    assert_eq!(object["type"], "hello");
    assert_eq!(object.len(), 4, "exactly the four fields: {hello}");
    let took = replica.stop_with(libc::SIGTERM);
    assert!(took < EXIT_TIMEOUT);
}

#[test]
fn exits_cleanly_on_sigint_and_writes_its_debug_log() {
    let dir = temp_dir("sigint");
    let socket = simulator_socket();
    let replica = Replica::spawn(port_of(&socket), "0001", &["0000"], Some(&dir));
    let mut buf = vec![0u8; 65_535];
    let deadline = Instant::now() + HELLO_TIMEOUT;
    while receive(&socket, &mut buf).is_none() {
        assert!(Instant::now() < deadline, "no hello");
    }
    replica.stop_with(libc::SIGINT);
    let log = std::fs::read_to_string(dir.join("0001.log")).expect("debug log written");
    assert!(log.lines().any(|l| l.contains("start:")), "{log}");
    assert!(log.lines().any(|l| l.contains("exit:")), "{log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_durable_replica_counts_its_syncs_in_its_debug_log() {
    let dirs = temp_dir("sync-counts");
    let logs = dirs.join("logs");
    let socket = simulator_socket();
    let port = port_of(&socket);
    let ids = ["0000", "0001", "0002"];
    let mut procs = spawn_durable(port, &ids, &dirs, Some(&logs));
    let mut sim = Simulator::await_hellos(socket, &mut procs);
    for i in 0..10 {
        sim.request(&format!("key-{i}"), Some("v"));
    }
    for replica in procs {
        replica.stop_with(libc::SIGTERM);
    }
    for id in ids {
        let log = std::fs::read_to_string(logs.join(format!("{id}.log"))).expect("debug log");
        let exit = log
            .lines()
            .find(|l| l.contains("exit:"))
            .expect("an exit line");
        let field = |name: &str| -> u64 {
            let at = exit.find(&format!("{name}: ")).expect(name) + name.len() + 2;
            let digits: String = exit[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().expect("a count")
        };
        // Every replica persisted a term or a vote, and its share of the ten puts.
        assert!(field("syncs") > 0, "{id}: {exit}");
        assert!(field("sync_us_max") > 0, "{id}: {exit}");
        assert!(field("slow_syncs") <= field("syncs"), "{id}: {exit}");
    }
    let _ = std::fs::remove_dir_all(&dirs);
}

#[test]
fn a_durable_replica_syncs_on_a_thread_at_real_time_priority_when_it_may() {
    let dirs = temp_dir("sync-priority");
    let socket = simulator_socket();
    let port = port_of(&socket);
    let ids = ["0000", "0001", "0002"];
    let mut procs = spawn_durable(port, &ids, &dirs, None);
    let _sim = Simulator::await_hellos(socket, &mut procs);
    // What this test's own process may do, its replicas may: real-time priority needs
    // CAP_SYS_NICE or an RLIMIT_RTPRIO, both inherited.
    let may = std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 1 };
        // SAFETY: pid 0 is this short-lived thread; `param` is valid for the call.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
    })
    .join()
    .expect("the probe thread");
    let wanted = if may {
        libc::SCHED_FIFO
    } else {
        libc::SCHED_OTHER
    };
    let policy = |tid: i32| {
        // SAFETY: a plain query of another thread's policy; an error is -1.
        unsafe { libc::sched_getscheduler(tid) }
    };
    for replica in &procs {
        let pid = replica.child.id();
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        let sync_thread = loop {
            let found = std::fs::read_dir(format!("/proc/{pid}/task"))
                .expect("the replica's threads")
                .filter_map(|task| task.ok()?.file_name().into_string().ok())
                .filter_map(|tid| tid.parse::<i32>().ok())
                .find(|tid| {
                    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
                        .is_ok_and(|comm| comm.trim() == "wal-sync")
                });
            match found {
                Some(tid) => break tid,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                None => panic!("{}: no wal-sync thread", replica.id),
            }
        };
        assert_eq!(
            policy(sync_thread),
            wanted,
            "{}: the sync thread's policy (may use real-time: {may})",
            replica.id
        );
        // The loop itself stays at ordinary priority.
        assert_eq!(
            policy(pid as i32),
            libc::SCHED_OTHER,
            "{}: the loop",
            replica.id
        );
    }
    for replica in procs {
        replica.stop_with(libc::SIGTERM);
    }
    let _ = std::fs::remove_dir_all(&dirs);
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kv-replica-udp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Datagrams a replica must survive and drop.
fn garbage(dst: &str) -> Vec<Vec<u8>> {
    let mut huge =
        br#"{"src":"0013","dst":"DST","leader":"FFFF","type":"get","MID":"m","key":""#.to_vec();
    // Unterminated: a huge valid get would be a request and deserve a reply.
    huge.resize(65_000, b'k');
    let text = [
        "",
        "not json at all",
        "[]",
        "{}",
        "42",
        "\"just a string\"",
        r#"{"src":"0013","dst":"DST","leader":"FFFF","type":"get","MID":"abc"#,
        r#"{"src":19,"dst":"DST","leader":"FFFF","type":"get","MID":"m","key":"k"}"#,
        r#"{"src":"0013","dst":"DST","leader":"FFFF","type":"put","MID":7,"key":"k","value":"v"}"#,
        r#"{"src":"XYZ","dst":"DST","leader":"FFFF","type":"get","MID":"m","key":"k"}"#,
        r#"{"src":"0013","dst":"DST","leader":"12345","type":"get","MID":"m","key":"k"}"#,
        r#"{"src":"0013","dst":"DST","leader":"FFFF","type":"frobnicate"}"#,
        r#"{"src":"0013","dst":"DST","leader":"FFFF"}"#,
        r#"{"src":"0013","dst":"DST","leader":"FFFF","type":"ae","term":-1}"#,
        r#"{"src":"0013","dst":"DST","leader":"FFFF","type":"ae","term":99,"pli":0,"plt":0,"commit":5,"ts":0,"entries":[]}"#,
        r#"{"src":"0001","dst":"DST","leader":"FFFF","type":"ae","term":1,"pli":0,"plt":0,"commit":0,"ts":0,"entries":[["x"]]}"#,
        r#"{"src":"0013","dst":"DST","leader":"FFFF","type":"hello"}"#,
        r#"{"src":"0013","dst":"DST","leader":"FFFF","type":"ok","MID":"m"}"#,
        r#"{"src":"0013","dst":"0AAA","leader":"FFFF","type":"get","MID":"m","key":"k"}"#,
    ];
    // From a peer, but no correct peer sends these: terms and indexes at 2^64 - 1,
    // entries whose terms go down, and a message claiming the receiver's own id.
    let hostile = [
        r#"{"src":"PEER","dst":"DST","leader":"FFFF","type":"rv","term":18446744073709551615,"lli":0,"llt":0,"pre":false,"ts":0}"#,
        r#"{"src":"PEER","dst":"DST","leader":"FFFF","type":"rv","term":18446744073709551615,"lli":0,"llt":0,"pre":true,"ts":0}"#,
        r#"{"src":"PEER","dst":"DST","leader":"PEER","type":"ae","term":18446744073709551615,"pli":0,"plt":0,"commit":0,"ts":0,"entries":[]}"#,
        r#"{"src":"PEER","dst":"DST","leader":"PEER","type":"ae","term":1,"pli":18446744073709551615,"plt":1,"commit":18446744073709551615,"ts":0,"entries":[[1]]}"#,
        r#"{"src":"PEER","dst":"DST","leader":"PEER","type":"ae","term":2,"pli":0,"plt":0,"commit":0,"ts":0,"entries":[[2],[1]]}"#,
        r#"{"src":"PEER","dst":"DST","leader":"FFFF","type":"aer","term":18446744073709551615,"ok":false,"match":0,"ci":18446744073709551615,"ts":0}"#,
        r#"{"src":"DST","dst":"DST","leader":"FFFF","type":"rv","term":1,"lli":0,"llt":0,"pre":true,"ts":0}"#,
    ];
    let peer = if dst == "0002" { "0000" } else { "0002" };
    let mut all: Vec<Vec<u8>> = text
        .iter()
        .chain(&hostile)
        .map(|t| t.replace("DST", dst).replace("PEER", peer).into_bytes())
        .collect();
    all.push(vec![0xFF, 0xFE, b'{', 0x80]);
    all.push(
        String::from_utf8(huge)
            .unwrap()
            .replace("DST", dst)
            .into_bytes(),
    );
    all.push(vec![b'['; 65_507]);
    all
}

/// Waits for the hellos of `procs` on `socket`: each replica's id and address. If some
/// never come, fails naming each missing replica, whether it still runs, and what it
/// printed if it exited.
fn await_hellos(
    socket: &UdpSocket,
    buf: &mut [u8],
    procs: &mut [Replica],
) -> BTreeMap<String, SocketAddr> {
    try_await_hellos(socket, buf, procs.len()).unwrap_or_else(|got| {
        let missing: Vec<String> = procs
            .iter_mut()
            .filter(|r| !got.contains_key(&r.id))
            .map(|r| match r.child.try_wait().expect("try_wait") {
                None => format!("{}: running", r.id),
                Some(status) => {
                    let mut stderr = String::new();
                    if let Some(mut pipe) = r.child.stderr.take() {
                        let _ = pipe.read_to_string(&mut stderr);
                    }
                    format!("{}: exited with {status}: {stderr}", r.id)
                }
            })
            .collect();
        panic!("no hello within {HELLO_TIMEOUT:?} from {missing:?} (got {got:?})")
    })
}

/// The hellos of `n` replicas, or those that came before `HELLO_TIMEOUT` passed.
fn try_await_hellos(
    socket: &UdpSocket,
    buf: &mut [u8],
    n: usize,
) -> Result<BTreeMap<String, SocketAddr>, BTreeMap<String, SocketAddr>> {
    let mut replicas = BTreeMap::new();
    let deadline = Instant::now() + HELLO_TIMEOUT;
    while replicas.len() < n {
        if Instant::now() >= deadline {
            return Err(replicas);
        }
        let Some((bytes, from)) = receive(socket, buf) else {
            continue;
        };
        let value = parse_checked(&buf[..bytes]);
        let src = value["src"].as_str().unwrap().to_owned();
        if replicas.contains_key(&src) {
            // Past its start-up delay a replica may ask its peers for votes before the
            // slowest of them has said hello (a durable one syncs its directory first,
            // slowly on a busy disk): dropped, as a network may.
            assert_ne!(value["type"], "hello", "two hellos from {src}");
            continue;
        }
        assert_eq!(
            value["type"], "hello",
            "first datagram of {src} is not a hello"
        );
        replicas.insert(src, from);
    }
    Ok(replicas)
}

/// Routes replica-to-replica traffic like the simulator, and plays one client.
struct Simulator {
    socket: UdpSocket,
    replicas: BTreeMap<String, SocketAddr>,
    buf: Vec<u8>,
    next_mid: u64,
}

impl Simulator {
    const CLIENT: &'static str = "0013";

    /// Waits on `socket` for the hellos of `procs`.
    fn await_hellos(socket: UdpSocket, procs: &mut [Replica]) -> Simulator {
        let mut buf = vec![0u8; 65_535];
        let replicas = await_hellos(&socket, &mut buf, procs);
        Simulator {
            socket,
            replicas,
            buf,
            next_mid: 0,
        }
    }

    /// Receives one datagram (or times out briefly); routes it if it is replica traffic,
    /// returns it if it is for the client.
    fn step(&mut self) -> Option<Value> {
        let (bytes, _from) = receive(&self.socket, &mut self.buf)?;
        let value = parse_checked(&self.buf[..bytes]);
        let src = value["src"].as_str().unwrap().to_owned();
        let dst = value["dst"].as_str().unwrap().to_owned();
        assert!(self.replicas.contains_key(&src), "unknown sender {value}");
        if dst == Self::CLIENT {
            return Some(value);
        }
        if dst == "FFFF" {
            for (id, addr) in &self.replicas {
                if *id != src {
                    self.socket.send_to(&self.buf[..bytes], addr).expect("send");
                }
            }
        } else {
            let addr = self
                .replicas
                .get(&dst)
                .unwrap_or_else(|| panic!("datagram for an unknown dst: {value}"));
            self.socket.send_to(&self.buf[..bytes], addr).expect("send");
        }
        None
    }

    /// Sends a request and follows redirects (new MID each time) until `ok`.
    fn request(&mut self, key: &str, value: Option<&str>) -> Value {
        self.request_within(key, value, CLIENT_TIMEOUT)
            .unwrap_or_else(|| panic!("no ok within {CLIENT_TIMEOUT:?}"))
    }

    /// Sends a request and follows redirects (new MID each time) until `ok`, or `None`
    /// if no `ok` comes within `timeout`.
    fn request_within(
        &mut self,
        key: &str,
        value: Option<&str>,
        timeout: Duration,
    ) -> Option<Value> {
        let first = self.replicas.keys().next().unwrap().clone();
        self.request_at(&first, key, value, timeout)
    }

    /// `request_within`, sent to `first` first.
    fn request_at(
        &mut self,
        first: &str,
        key: &str,
        value: Option<&str>,
        timeout: Duration,
    ) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        let mut target = first.to_owned();
        loop {
            self.next_mid += 1;
            let mid = format!("MID{:013}", self.next_mid);
            let mut request = serde_json::json!({
                "src": Self::CLIENT, "dst": target, "leader": "FFFF",
                "type": if value.is_some() { "put" } else { "get" },
                "MID": mid, "key": key,
            });
            if let Some(value) = value {
                request["value"] = value.into();
            }
            let bytes = serde_json::to_vec(&request).unwrap();
            self.socket
                .send_to(&bytes, self.replicas[&target])
                .expect("send");
            let reply = loop {
                if Instant::now() >= deadline {
                    return None;
                }
                if let Some(reply) = self.step() {
                    break reply;
                }
            };
            if reply["MID"] != mid.as_str() {
                // A late answer to an attempt given up on: wait for ours.
                continue;
            }
            match reply["type"].as_str().unwrap() {
                "ok" => return Some(reply),
                "redirect" | "fail" => {
                    let leader = reply["leader"].as_str().unwrap();
                    if self.replicas.contains_key(leader) {
                        target = leader.to_owned();
                    } else {
                        // No leader known: try the next replica after a short pause.
                        let ids: Vec<&String> = self.replicas.keys().collect();
                        let at = ids.iter().position(|id| **id == target).unwrap();
                        target = ids[(at + 1) % ids.len()].clone();
                        let pause = Instant::now() + Duration::from_millis(100);
                        while Instant::now() < pause {
                            // Late answers to earlier attempts may still arrive.
                            let _ = self.step();
                        }
                    }
                }
                other => panic!("unexpected reply type {other}: {reply}"),
            }
        }
    }
}

#[test]
fn three_replicas_survive_garbage_and_serve_a_put_and_a_get() {
    let dir = temp_dir("cluster");
    let socket = simulator_socket();
    let port = port_of(&socket);
    let ids = ["0000", "0001", "0002"];
    let mut procs: Vec<Replica> = ids
        .iter()
        .map(|id| {
            let peers: Vec<&str> = ids.iter().copied().filter(|p| p != id).collect();
            Replica::spawn(port, id, &peers, Some(&dir))
        })
        .collect();

    // Hellos first: nothing may be delivered to a replica before its hello arrived.
    let mut buf = vec![0u8; 65_535];
    let replicas = await_hellos(&socket, &mut buf, &mut procs);

    for (id, addr) in &replicas {
        for datagram in garbage(id) {
            socket.send_to(&datagram, addr).expect("send garbage");
        }
    }
    let mut sim = Simulator {
        socket,
        replicas,
        buf,
        next_mid: 0,
    };
    // Let them chew on it while routing their traffic.
    let settle = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settle {
        assert!(
            sim.step().is_none(),
            "a reply to garbage reached the client"
        );
    }
    for replica in &mut procs {
        assert!(replica.is_alive(), "{} died on garbage", replica.id);
    }

    let value = "0123456789abcdef0123456789abcdef";
    let put = sim.request("key-one", Some(value));
    assert!(put.get("value").is_none() || put["value"] == value, "{put}");
    let get = sim.request("key-one", None);
    assert_eq!(get["value"], value, "{get}");
    let missing = sim.request("never-written", None);
    assert_eq!(missing["value"], "", "{missing}");

    for replica in &mut procs {
        assert!(replica.is_alive(), "{} died", replica.id);
    }
    let mut stderr_lines = Vec::new();
    for mut replica in procs {
        let stderr = replica.child.stderr.take().unwrap();
        replica.stop_with(libc::SIGTERM);
        stderr_lines.extend(BufReader::new(stderr).lines().map_while(Result::ok));
    }
    // Bad datagrams may be reported on stderr, but rate-limited: a handful of lines.
    assert!(stderr_lines.len() <= 3 * 3, "{stderr_lines:#?}");
    for id in ids {
        let log = std::fs::read_to_string(dir.join(format!("{id}.log"))).expect("debug log");
        assert!(log.contains("dropped a bad datagram"), "{id}: {log}");
        assert!(log.contains("is past the limit"), "{id}: {log}");
        assert!(log.contains("entry terms out of order"), "{id}: {log}");
        assert!(
            log.contains("claims to come from this replica"),
            "{id}: {log}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts one durable replica per id, each with its own directory under `dirs` (and its
/// debug log in `log_dir`, if given).
fn spawn_durable(port: u16, ids: &[&str], dirs: &Path, log_dir: Option<&Path>) -> Vec<Replica> {
    ids.iter()
        .map(|id| {
            let peers: Vec<&str> = ids.iter().copied().filter(|p| p != id).collect();
            let dir = dirs.join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let flags = [std::ffi::OsStr::new("--data-dir"), dir.as_os_str()];
            Replica::spawn_with(port, id, &peers, log_dir, &flags)
        })
        .collect()
}

#[test]
fn a_durable_cluster_killed_at_once_keeps_every_acknowledged_put() {
    let dirs = temp_dir("durable");
    let socket = simulator_socket();
    let port = port_of(&socket);
    let ids = ["0000", "0001", "0002"];
    let mut buf = vec![0u8; 65_535];
    let mut procs = spawn_durable(port, &ids, &dirs, None);
    let replicas = await_hellos(&socket, &mut buf, &mut procs);
    let mut sim = Simulator {
        socket,
        replicas,
        buf,
        next_mid: 0,
    };
    let values: Vec<String> = (0..20).map(|i| format!("value-{i:02}")).collect();
    for (i, value) in values.iter().enumerate() {
        sim.request(&format!("key-{i:02}"), Some(value));
    }
    // SIGKILL, all at once: nothing flushed on the way out, no clean exit.
    for mut replica in procs {
        replica.signal(libc::SIGKILL);
        let _ = replica.child.wait();
    }
    // What the dead replicas sent before the kill (a follower's late acknowledgement) is
    // still queued here: drop it, or it is taken for the new processes' first datagram.
    while receive(&sim.socket, &mut sim.buf).is_some() {}

    let mut procs = spawn_durable(port, &ids, &dirs, None);
    sim.replicas = await_hellos(&sim.socket, &mut sim.buf, &mut procs);
    for (i, value) in values.iter().enumerate() {
        let got = sim.request(&format!("key-{i:02}"), None);
        assert_eq!(
            got["value"],
            value.as_str(),
            "key-{i:02} after the restart: {got}"
        );
    }
    sim.request("after", Some("the restart"));
    assert_eq!(sim.request("after", None)["value"], "the restart");
    for replica in procs {
        replica.stop_with(libc::SIGTERM);
    }
    let _ = std::fs::remove_dir_all(&dirs);
}

#[test]
fn a_data_directory_it_cannot_use_is_one_line_and_a_failure() {
    let dirs = temp_dir("bad-data-dir");
    std::fs::create_dir_all(dirs.join("of-0002")).unwrap();
    // Claim a directory for replica 0002, then offer it to 0001.
    let socket = simulator_socket();
    let port = port_of(&socket);
    let of_0002 = dirs.join("of-0002");
    let flags = [std::ffi::OsStr::new("--data-dir"), of_0002.as_os_str()];
    let mut owner = Replica::spawn_with(port, "0002", &["0001"], None, &flags);
    let mut buf = vec![0u8; 65_535];
    await_hellos(&socket, &mut buf, std::slice::from_mut(&mut owner));
    owner.stop_with(libc::SIGTERM);
    let missing = dirs.join("missing");
    for (dir, says) in [
        (&missing, "No such file"),
        (&of_0002, "belongs to replica 0002"),
    ] {
        let output = Command::new(BIN)
            .arg("--data-dir")
            .arg(dir)
            .args([&port.to_string(), "0001", "0002"])
            .stdin(Stdio::null())
            .output()
            .expect("run 3700kvstore");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_ne!(output.status.code(), Some(0), "{dir:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{dir:?}: {stderr}");
        assert!(stderr.contains(says), "{dir:?}: {stderr}");
        // Refused before its hello: it never joined.
        assert!(receive(&socket, &mut buf).is_none(), "{dir:?} said hello");
    }
    let _ = std::fs::remove_dir_all(&dirs);
}

/// Lowers the file size limit of a running process (`prlimit`): its writes past `bytes`
/// fail with `EFBIG`, as on a full disk.
fn limit_file_size(pid: u32, bytes: u64) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: prlimit(2) on a child of ours, with a valid limit and no old-limit pointer.
    let rc = unsafe {
        libc::prlimit(
            i32::try_from(pid).expect("pid fits"),
            libc::RLIMIT_FSIZE,
            &limit,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn a_leader_whose_disk_fails_exits_and_the_others_go_on() {
    let dirs = temp_dir("leader-disk");
    let socket = simulator_socket();
    let port = port_of(&socket);
    let ids = ["0000", "0001", "0002"];
    let mut procs = spawn_durable(port, &ids, &dirs, None);
    let mut sim = Simulator::await_hellos(socket, &mut procs);
    let first = sim.request("before", Some("1"));
    let leader = first["src"].as_str().unwrap().to_owned();
    let at = procs.iter().position(|r| r.id == leader).unwrap();
    // The write-ahead log's newest segment (`wal.` and 16 hex digits) is the one written,
    // up to its last byte that is not zero (it may be preallocated). The limit applies to
    // where a write goes, not to how long the file is.
    let wal = std::fs::read_dir(dirs.join(&leader))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.strip_prefix("wal.")
                .is_some_and(|hex| hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        })
        .max()
        .expect("a segment");
    let bytes = std::fs::read(&wal).unwrap();
    let written = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    limit_file_size(procs[at].child.id(), written as u64 + 64);
    // Its next write fails: it must exit, not keep its followers from electing another.
    let mut leader_proc = procs.remove(at);
    let value = "v".repeat(200);
    let _ = sim.request_at(&leader, "doomed", Some(&value), Duration::from_secs(2));
    let status = wait_timeout(&mut leader_proc.child, EXIT_TIMEOUT)
        .unwrap_or_else(|| panic!("leader {leader} stayed up after its disk failed"));
    assert_ne!(status.code(), Some(0));
    let mut stderr = String::new();
    leader_proc
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    // One line for the failure; the limit may also have stopped the next segment's
    // preallocation first, which the replica notes and survives.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("storage failed, exiting"))
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        lines.iter().all(|l| l.contains("storage failed, exiting")
            || l.contains("segments that are not preallocated")),
        "{stderr}"
    );
    let survivor = procs[0].id.clone();
    let after = sim.request_at(&survivor, "after", Some("2"), CLIENT_TIMEOUT);
    assert!(after.is_some(), "no put acknowledged by the two left");
    let read = sim
        .request_at(&survivor, "before", None, CLIENT_TIMEOUT)
        .unwrap();
    assert_eq!(read["value"], "1");
    for replica in procs {
        replica.stop_with(libc::SIGTERM);
    }
    let _ = std::fs::remove_dir_all(&dirs);
}

#[test]
fn durable_replicas_that_cannot_write_exit_and_nothing_more_is_acknowledged() {
    let dirs = temp_dir("full-disk");
    let socket = simulator_socket();
    let port = port_of(&socket);
    let ids = ["0000", "0001", "0002"];
    // Two of three may write 2 KiB of log each (RLIMIT_FSIZE, as a full disk would):
    // after that no majority can persist a put, so none may be acknowledged.
    let mut procs: Vec<Replica> = ids
        .iter()
        .map(|id| {
            let peers: Vec<&str> = ids.iter().copied().filter(|p| p != id).collect();
            let dir = dirs.join(id);
            std::fs::create_dir_all(&dir).unwrap();
            let mut command = Command::new(BIN);
            command
                .arg("--data-dir")
                .arg(&dir)
                .arg(port.to_string())
                .arg(id)
                .args(&peers)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .env_remove("KV_DEBUG_LOG_DIR");
            if *id != "0000" {
                use std::os::unix::process::CommandExt;
                // SAFETY: setrlimit is async-signal-safe and touches only the child.
                unsafe {
                    command.pre_exec(|| {
                        let limit = libc::rlimit {
                            rlim_cur: 2048,
                            rlim_max: 2048,
                        };
                        if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            Replica {
                id: (*id).to_owned(),
                child: command.spawn().expect("spawn 3700kvstore"),
            }
        })
        .collect();
    let mut sim = Simulator::await_hellos(socket, &mut procs);
    let value = "v".repeat(200);
    let mut acknowledged = 0;
    for i in 0..100 {
        let timeout = if i == 0 {
            CLIENT_TIMEOUT
        } else {
            Duration::from_secs(3)
        };
        match sim.request_within(&format!("key-{i:03}"), Some(&value), timeout) {
            Some(_) => acknowledged += 1,
            None => break,
        }
    }
    assert!(
        (1..100).contains(&acknowledged),
        "{acknowledged} puts acknowledged: the logs should take a few, then fill"
    );
    for i in 0..3 {
        assert!(
            sim.request_within(&format!("after-{i}"), Some(&value), Duration::from_secs(2))
                .is_none(),
            "a put was acknowledged after two of three replicas could no longer persist"
        );
    }
    let mut stderr_lines = Vec::new();
    for mut replica in procs {
        let stderr = replica.child.stderr.take().unwrap();
        if replica.id == "0000" {
            replica.stop_with(libc::SIGTERM);
        } else {
            let status = wait_timeout(&mut replica.child, EXIT_TIMEOUT)
                .unwrap_or_else(|| panic!("{} stayed up after its disk failed", replica.id));
            assert_ne!(status.code(), Some(0), "{}", replica.id);
        }
        stderr_lines.extend(BufReader::new(stderr).lines().map_while(Result::ok));
    }
    let failed = stderr_lines
        .iter()
        .filter(|l| l.contains("storage failed, exiting"))
        .count();
    assert_eq!(failed, 2, "{stderr_lines:#?}");
    let _ = std::fs::remove_dir_all(&dirs);
}
