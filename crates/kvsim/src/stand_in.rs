//! Stand-ins: replicas that kvsim runs itself, in threads, in place of the replica program
//! (`kvsim --stand-in NAME`). Each is a measuring stick, not a store: a known behaviour to
//! hold kvsim's checks and reports against. `stale-reads` answers gets from an old copy of
//! the store, so its histories are not linearizable and the report has a violation to draw.
//!
//! A stand-in speaks the protocol over real UDP like any replica (hello first, then JSON
//! datagrams to its simulator port), so everything kvsim does to a replica applies:
//! partitions and drops in the network, and kills and pauses through [`Running`], which
//! stops the thread or has it stop reading, as SIGKILL and SIGSTOP would.
//!
//! A new stand-in is a variant of [`StandIn`] and a [`Behaviour`] in a file of its own.

mod stale_reads;

use serde_json::Value;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use datagram::NodeId;

/// The stand-ins kvsim can run instead of the replica program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandIn {
    /// Answers gets from a copy of the store taken once a second.
    StaleReads,
}

impl StandIn {
    pub const ALL: [StandIn; 1] = [StandIn::StaleReads];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
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

    fn behaviour(self, id: NodeId, peers: &[NodeId]) -> Box<dyn Behaviour> {
        match self {
            StandIn::StaleReads => Box::new(stale_reads::StaleReads::new(id, peers)),
        }
    }
}

/// What a stand-in does; the thread around it ([`Running`]) does the I/O.
trait Behaviour: Send {
    /// A datagram from the simulator, parsed.
    fn on_message(&mut self, now: Instant, msg: &Value, out: &mut Vec<Value>);
    /// Called every [`TICK`] or so, for whatever is due.
    fn on_tick(&mut self, now: Instant, out: &mut Vec<Value>);
}

/// How often a stand-in's thread looks at its clock and its controls when nothing arrives.
const TICK: Duration = Duration::from_millis(5);

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
    /// Binds its socket, says hello to the simulator port `port`, and starts its thread.
    pub fn spawn(
        kind: StandIn,
        port: u16,
        id: NodeId,
        peers: &[NodeId],
    ) -> std::io::Result<Running> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(("127.0.0.1", port))?;
        socket.set_read_timeout(Some(TICK))?;
        let hello = serde_json::json!({
            "src": id.to_string(), "dst": "FFFF", "leader": "FFFF", "type": "hello"
        });
        socket.send(hello.to_string().as_bytes())?;
        let control = Arc::new(Control::default());
        let behaviour = kind.behaviour(id, peers);
        let thread = thread::Builder::new()
            .name(format!("stand-in {id}"))
            .spawn({
                let control = Arc::clone(&control);
                move || serve(socket, behaviour, &control)
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

fn serve(socket: UdpSocket, mut behaviour: Box<dyn Behaviour>, control: &Control) {
    let mut buf = vec![0u8; 65_535];
    let mut out = Vec::new();
    let mut next_tick = Instant::now();
    while !control.killed.load(Ordering::Relaxed) {
        if control.paused.load(Ordering::Relaxed) {
            thread::sleep(TICK);
            continue;
        }
        // A receive error is a timeout or an ICMP error on loopback: nothing to do.
        if let Ok(n) = socket.recv(&mut buf)
            && let Ok(msg) = serde_json::from_slice::<Value>(&buf[..n])
        {
            behaviour.on_message(Instant::now(), &msg, &mut out);
        }
        let now = Instant::now();
        if now >= next_tick {
            behaviour.on_tick(now, &mut out);
            next_tick = now + TICK;
        }
        for msg in out.drain(..) {
            // A lost datagram is what UDP allows.
            let _ = socket.send(msg.to_string().as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_an_unknown_one_lists_the_others() {
        for s in StandIn::ALL {
            assert_eq!(StandIn::parse(s.name()), Ok(s));
            assert!(s.notice().contains("a measuring stick, not a store"));
        }
        let err = StandIn::parse("stale").unwrap_err();
        assert!(err.contains("stale-reads"), "{err}");
    }
}
