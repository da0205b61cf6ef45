//! Stand-ins: replicas that kvsim runs itself, in threads, in place of the replica program
//! (`kvsim --stand-in NAME`). Each is a measuring stick, not a store: a known behaviour to
//! hold kvsim's checks and reports against.
//!
//! - `instant` answers every request at once from a map of its own and replicates nothing:
//!   the most any replica could get through kvsim, the relay's ceiling;
//! - `majority-ack` forwards puts to a majority and answers once it acknowledges, the
//!   cheapest protocol that waits for a majority (no log, no terms, no elections);
//! - `stale-reads` answers gets from an old copy of the store, so its histories are not
//!   linearizable and the report has a violation to draw.
//!
//! A stand-in speaks the protocol over real UDP like any replica (hello first, then JSON
//! datagrams to its simulator port), so kvsim routes, counts and times its datagrams like a
//! replica's, and everything kvsim does to a replica applies: partitions and drops in the
//! network, and kills and pauses through [`Running`], which stops the thread or has it stop
//! reading, as SIGKILL and SIGSTOP would. Its thread receives and sends in batches
//! (`recvmmsg`, `sendmmsg`) and reads only the fields it needs (`wire`), so that at high
//! load the stand-in costs little next to kvsim, and runs on the replicas' CPUs
//! (`placement`).
//!
//! A new stand-in is a variant of [`StandIn`] and a [`Behaviour`] in a file of its own.

mod instant;
mod majority_ack;
mod peers;
mod stale_reads;

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::network::wire::{self, Header};
use crate::scenario::config::Config;
use datagram::receive_buffer::{RECEIVE_BUFFER_BYTES, ask_for_receive_buffer};
use datagram::udp_batch::{RecvBatch, SendBatch};
use raft::NodeId;

/// The stand-ins kvsim can run instead of the replica program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIn {
    /// Answers every request at once from its own map; replicates nothing.
    Instant,
    /// Forwards puts to a majority and answers once it acknowledges.
    MajorityAck,
    /// Answers gets from a copy of the store taken once a second.
    StaleReads,
}

/// A check a stand-in is not held to, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Skipped {
    /// The check's name (`score::Check::name`; `total_msgs` is the traffic floor).
    pub check: &'static str,
    pub why: &'static str,
}

impl StandIn {
    pub const ALL: [StandIn; 3] = [StandIn::Instant, StandIn::MajorityAck, StandIn::StaleReads];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            StandIn::Instant => "instant",
            StandIn::MajorityAck => "majority-ack",
            StandIn::StaleReads => "stale-reads",
        }
    }

    pub fn parse(name: &str) -> Result<StandIn, String> {
        StandIn::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = StandIn::ALL.iter().map(|s| s.name()).collect();
                format!("no stand-in {name:?} (there is: {})", names.join(", "))
            })
    }

    /// What it is, said plainly wherever its results are shown.
    pub fn notice(self) -> String {
        let what = match self {
            StandIn::Instant => {
                "the lowest living ID answers every request at once from a map of its own and \
                 replicates nothing, so it measures kvsim's relay alone (the most any replica \
                 could get through it)"
            }
            StandIn::MajorityAck => {
                "the lowest living ID forwards puts to a majority in rounds, one in flight at a \
                 time, and answers each put once a majority acknowledged its round: the cheapest \
                 protocol that waits for a majority, with no log, no terms and no recovery"
            }
            StandIn::StaleReads => {
                "it serves gets from a copy of its store taken once a second, so reads go stale \
                 on purpose and the linearizability check is expected to fail"
            }
        };
        format!(
            "these replicas are kvsim's stand-in `{}`, a measuring stick, not a store: {what}",
            self.name()
        )
    }

    /// The checks this stand-in is not held to in scenario `cfg`: those it would fail by
    /// design, not by a fault of kvsim's.
    pub fn skipped_checks(self, cfg: &Config) -> Vec<Skipped> {
        let mut skipped = Vec::new();
        if self == StandIn::Instant {
            skipped.push(Skipped {
                check: "total_msgs",
                why: "it replicates nothing, so it sends none of the replica-to-replica traffic \
                      the floor asks for",
            });
        }
        let faults =
            !cfg.events.is_empty() || cfg.drops > 0.0 || cfg.duplicate > 0.0 || cfg.reorder > 0.0;
        if faults && self != StandIn::StaleReads {
            for check in ["incorrect", "get_answered", "put_answered", "linearizable"] {
                skipped.push(Skipped {
                    check,
                    why: "this scenario has faults, and a stand-in does not recover from them: \
                          a new leader starts with an empty store, and puts a lost message \
                          or a dead leader held go unanswered",
                });
            }
        }
        skipped
    }

    /// `keys_hint`: how many keys the run may write, for the store's capacity (see
    /// [`STORE_KEYS_RESERVED_MAX`]).
    fn behaviour(self, id: NodeId, peers: &[NodeId], keys_hint: usize) -> Box<dyn Behaviour> {
        let keys = keys_hint.min(STORE_KEYS_RESERVED_MAX);
        match self {
            StandIn::Instant => Box::new(instant::Instant::new(id, peers, keys)),
            StandIn::MajorityAck => Box::new(majority_ack::MajorityAck::new(id, peers, keys)),
            StandIn::StaleReads => Box::new(stale_reads::StaleReads::new(id, peers)),
        }
    }
}

/// Keys a stand-in's store makes room for at start, at most. A map that doubles while the
/// run goes moves every key it holds in one go: at 500,000 keys that held the stand-in
/// for about 35 ms, which showed as kvsim's p99.9 at 100,000 puts/s. Reserved up front,
/// the table costs address space, and pages only as keys arrive.
const STORE_KEYS_RESERVED_MAX: usize = 4 << 20;

/// What a stand-in does; the thread around it ([`Running`]) does the I/O.
trait Behaviour: Send {
    /// A datagram from the simulator (`raw`), with the fields kvsim reads already read.
    fn on_message(&mut self, now: Instant, msg: &Header<'_>, raw: &[u8], out: &mut Outgoing);
    /// After each batch of datagrams: a chance to send what the batch called for together.
    fn after_batch(&mut self, _now: Instant, _out: &mut Outgoing) {}
    /// Called every [`TICK`] or so, for whatever is due.
    fn on_tick(&mut self, now: Instant, out: &mut Outgoing);
}

/// Datagrams a behaviour sends, written into reused buffers.
#[derive(Default)]
pub(crate) struct Outgoing {
    bufs: Vec<Vec<u8>>,
    len: usize,
}

impl Outgoing {
    /// The buffer for the next datagram, empty.
    pub(crate) fn next(&mut self) -> &mut Vec<u8> {
        if self.len == self.bufs.len() {
            self.bufs.push(Vec::with_capacity(256));
        }
        let buf = &mut self.bufs[self.len];
        buf.clear();
        self.len += 1;
        buf
    }

    pub(crate) fn datagrams(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs[..self.len].iter().map(Vec::as_slice)
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// A reply to a client (`value` for a get's `ok`).
    pub(crate) fn reply(
        &mut self,
        me: NodeId,
        leader: NodeId,
        to: &str,
        kind: &str,
        mid: &str,
        value: Option<&str>,
    ) {
        let buf = self.next();
        let _ = write!(
            buf,
            r#"{{"src": "{me}", "dst": "{}", "leader": "{leader}", "type": "{kind}", "MID": "{}""#,
            Escaped(to),
            Escaped(mid)
        );
        if let Some(v) = value {
            let _ = write!(buf, r#", "value": "{}""#, Escaped(v));
        }
        buf.push(b'}');
    }

    /// A message to the other replicas (`dst` a replica or `FFFF`) of type `kind`, with
    /// `rest` (already JSON, starting with a comma) after the four fields.
    pub(crate) fn peer_message(
        &mut self,
        me: NodeId,
        dst: NodeId,
        leader: NodeId,
        kind: &str,
        rest: &str,
    ) {
        let buf = self.next();
        let _ = write!(
            buf,
            r#"{{"src": "{me}", "dst": "{dst}", "leader": "{leader}", "type": "{kind}"{rest}}}"#
        );
    }
}

/// A string written as the inside of a JSON string.
pub(crate) struct Escaped<'a>(pub &'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            return f.write_str(s);
        }
        for c in s.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        Ok(())
    }
}

/// How often a stand-in's thread looks at its clock and its controls when nothing arrives.
const TICK: Duration = Duration::from_millis(5);
/// Datagrams per `recvmmsg`, and queued before a `sendmmsg`.
const BATCH_DATAGRAMS: usize = 64;

/// What kvsim tells a running stand-in.
#[derive(Default)]
struct Control {
    killed: AtomicBool,
    paused: AtomicBool,
}

/// A stand-in replica running in a thread of kvsim.
pub struct Running {
    pub id: NodeId,
    control: Arc<Control>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    /// Binds its socket, says hello to the simulator port `port`, and starts its thread,
    /// pinned to `cpus` if given.
    pub fn spawn(
        kind: StandIn,
        port: u16,
        id: NodeId,
        peers: &[NodeId],
        cpus: Option<&[usize]>,
        keys_hint: usize,
    ) -> std::io::Result<Running> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_nonblocking(true)?;
        ask_for_receive_buffer(&socket, RECEIVE_BUFFER_BYTES);
        let sim: SocketAddr = ([127, 0, 0, 1], port).into();
        let hello =
            format!(r#"{{"src": "{id}", "dst": "FFFF", "leader": "FFFF", "type": "hello"}}"#);
        socket.send_to(hello.as_bytes(), sim)?;
        let control = Arc::new(Control::default());
        let behaviour = kind.behaviour(id, peers, keys_hint);
        let cpus = cpus.map(<[usize]>::to_vec);
        let thread = thread::Builder::new()
            .name(format!("stand-in {id}"))
            .spawn({
                let control = Arc::clone(&control);
                move || {
                    if let Some(cpus) = cpus {
                        // Not fatal: unpinned, it only competes with kvsim's loop.
                        let _ = crate::replicas::placement::pin_this_thread(&cpus);
                    }
                    serve(socket, sim, behaviour, &control)
                }
            })?;
        Ok(Running {
            id,
            control,
            thread: Some(thread),
        })
    }

    /// Stops reading (as SIGSTOP would): what arrives meanwhile waits in its socket.
    pub fn pause(&mut self) {
        self.control.paused.store(true, Ordering::Relaxed);
    }

    pub fn resume(&mut self) {
        self.control.paused.store(false, Ordering::Relaxed);
    }

    /// Stops the thread and waits for it (a tick at most).
    pub fn kill(&mut self) {
        self.control.killed.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn ended(&self) -> bool {
        self.thread.is_none()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `fd` is readable or `timeout` passes.
fn wait_readable(fd: i32, timeout: Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
    // SAFETY: one valid pollfd for the duration of the call. An error (EINTR) only means
    // the loop comes round sooner.
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

fn serve(socket: UdpSocket, sim: SocketAddr, mut behaviour: Box<dyn Behaviour>, control: &Control) {
    let fd = socket.as_raw_fd();
    let mut inbox = RecvBatch::new(BATCH_DATAGRAMS);
    let mut sends = SendBatch::new(BATCH_DATAGRAMS).segmenting();
    let mut out = Outgoing::default();
    let mut next_tick = Instant::now();
    while !control.killed.load(Ordering::Relaxed) {
        if control.paused.load(Ordering::Relaxed) {
            thread::sleep(TICK);
            continue;
        }
        wait_readable(fd, next_tick.saturating_duration_since(Instant::now()));
        // A receive error is nothing waiting, or an ICMP error on loopback: nothing to do.
        while let Ok(n) = inbox.recv(fd) {
            let now = Instant::now();
            for i in 0..n {
                let raw: &[u8] = inbox.datagram_mut(i).0;
                if let Ok(h) = wire::parse(raw) {
                    behaviour.on_message(now, &h, raw, &mut out);
                }
            }
            behaviour.after_batch(now, &mut out);
            send(&mut out, &mut sends, fd, sim);
            if n < inbox.capacity() {
                break;
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            behaviour.on_tick(now, &mut out);
            next_tick = now + TICK;
        }
        send(&mut out, &mut sends, fd, sim);
    }
}

/// Sends what `out` holds, in batches. A datagram the kernel refuses is lost, as UDP allows.
fn send(out: &mut Outgoing, sends: &mut SendBatch, fd: i32, sim: SocketAddr) {
    for datagram in out.datagrams() {
        if sends.is_full() {
            sends.flush(fd);
        }
        sends.next_buffer().extend_from_slice(datagram);
        sends.queue(sim);
    }
    if !sends.is_empty() {
        sends.flush(fd);
    }
    out.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `out`'s datagrams parsed as JSON, then cleared.
    pub(super) fn sent(out: &mut Outgoing) -> Vec<serde_json::Value> {
        let v = out
            .datagrams()
            .map(|d| serde_json::from_slice(d).expect("a stand-in sends JSON"))
            .collect();
        out.clear();
        v
    }

    /// Feeds `json` to `b` as a datagram.
    pub(super) fn feed(b: &mut dyn Behaviour, now: Instant, json: &str, out: &mut Outgoing) {
        let h = wire::parse(json.as_bytes()).expect("test input is JSON");
        b.on_message(now, &h, json.as_bytes(), out);
    }

    #[test]
    fn names_round_trip_and_an_unknown_one_lists_the_others() {
        for s in StandIn::ALL {
            assert_eq!(StandIn::parse(s.name()), Ok(s));
            assert!(s.notice().contains("a measuring stick, not a store"));
        }
        let err = StandIn::parse("stale").unwrap_err();
        assert!(err.contains("stale-reads"), "{err}");
    }

    #[test]
    fn replies_escape_what_json_needs_escaped() {
        let mut out = Outgoing::default();
        out.reply(NodeId(0), NodeId(0), "0015", "ok", "M\"1", Some("a\\b\n"));
        let v = sent(&mut out);
        assert_eq!(v[0]["MID"], "M\"1");
        assert_eq!(v[0]["value"], "a\\b\n");
        assert_eq!(v[0]["leader"], "0000");
    }

    #[test]
    fn the_instant_stand_in_skips_the_traffic_floor_and_all_skip_more_under_faults() {
        let quiet = Config::parse(
            "x",
            r#"{"lifetime": 5, "replicas": 5, "requests": 1, "tests": {"benchmarks": {
                "total_msgs": [1, 2, 3], "failures": [1, 2, 3], "duplicates": [1, 2, 3],
                "median_latency": [1, 2, 3]}}}"#,
        )
        .unwrap();
        let names = |s: StandIn, c: &Config| -> Vec<&str> {
            s.skipped_checks(c).iter().map(|k| k.check).collect()
        };
        assert_eq!(names(StandIn::Instant, &quiet), ["total_msgs"]);
        assert!(names(StandIn::MajorityAck, &quiet).is_empty());
        let mut lossy = quiet.clone();
        lossy.drops = 0.1;
        assert!(names(StandIn::MajorityAck, &lossy).contains(&"linearizable"));
        assert!(names(StandIn::StaleReads, &lossy).is_empty());
    }
}
