//! Replica processes: launch, kill, crash, pause, and never leave one behind.
//!
//! Each replica runs in its own process group (as the classic simulator does), so a kill
//! reaches whatever it started too. Every live group is listed in a process-wide registry
//! that a signal thread (SIGINT, SIGTERM, SIGHUP) and a panic hook use to kill them all
//! before kvsim goes away (the signal thread then removes the runs' data dirs); a normal
//! end kills them through `Drop`.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, Once};
use std::thread;
use std::time::{Duration, Instant};

use raft::NodeId;

static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());
static INSTALL: Once = Once::new();

/// How long a SIGTERMed replica gets before SIGKILL.
const TERM_GRACE_MS: u64 = 1000;

fn register(pgid: i32) {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pgid);
}

fn unregister(pgid: i32) {
    GROUPS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&pgid);
}

fn signal_group(pgid: i32, sig: i32) {
    // SAFETY: plain syscall; a negative pid addresses the process group `pgid`.
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// Kills every registered group (SIGCONT first, so a paused one can die).
pub fn kill_all_registered() {
    let groups: Vec<i32> = match GROUPS.try_lock() {
        Ok(g) => g.iter().copied().collect(),
        // Poisoned or held: take it anyway, this is the last thing we do.
        Err(std::sync::TryLockError::Poisoned(g)) => g.into_inner().iter().copied().collect(),
        Err(std::sync::TryLockError::WouldBlock) => {
            thread::sleep(Duration::from_millis(10));
            GROUPS
                .lock()
                .map(|g| g.iter().copied().collect())
                .unwrap_or_default()
        }
    };
    for pgid in groups {
        signal_group(pgid, libc::SIGTERM);
        signal_group(pgid, libc::SIGCONT);
        signal_group(pgid, libc::SIGKILL);
    }
}

/// Installs the signal thread and the panic hook, once per process.
pub fn install_cleanup() {
    INSTALL.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            kill_all_registered();
            hook(info);
        }));
        let signals =
            signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM, libc::SIGHUP]);
        if let Ok(mut signals) = signals {
            thread::spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    kill_all_registered();
                    crate::replicas::data_dirs::remove_registered();
                    eprintln!("kvsim: interrupted (signal {sig}); replicas killed");
                    std::process::exit(128 + sig);
                }
            });
        }
    });
}

/// Where a replica's stdout and stderr go.
#[derive(Debug, Clone)]
pub enum Output {
    /// Print each line with the time and the replica's ID.
    Print,
    /// Discard.
    Silence,
    /// Write to one file per replica in this directory, named `<prefix>-<id>.log`.
    Files { dir: PathBuf, prefix: String },
}

pub struct ReplicaProc {
    pub id: NodeId,
    child: Child,
    pgid: i32,
    pub paused: bool,
    /// Set once the process is known to have ended.
    pub exit: Option<ExitStatus>,
    /// Set once the group has had its last SIGKILL: its id may be reused by the next
    /// replica started (a restart), which must not get this one's signals.
    group_killed: bool,
}

/// How to start one replica process.
pub struct Launch<'a> {
    pub program: &'a Path,
    pub port: u16,
    pub id: NodeId,
    pub peers: &'a [NodeId],
    pub output: &'a Output,
    /// The run's start, for the times on printed lines.
    pub start: Instant,
    pub env: &'a [(String, String)],
    /// Passed as `--data-dir`: the replica persists there and recovers from it.
    pub data_dir: Option<&'a Path>,
    /// Started again after a kill: its log file goes on rather than starting over.
    pub again: bool,
    /// The CPUs it may run on (`placement`); `None` for any.
    pub cpus: Option<&'a [usize]>,
}

impl ReplicaProc {
    /// Launches `program [--data-dir DIR --cluster kvsim-PORT] <port> <id> <peer ids...>`
    /// in its own process group, pinned to `cpus` if given (`placement`). The cluster's
    /// name is the run's port: the same across the run's restarts, and another run's
    /// directory is refused.
    pub fn spawn(launch: &Launch<'_>) -> std::io::Result<ReplicaProc> {
        let &Launch {
            program,
            port,
            id,
            peers,
            output,
            start,
            env,
            data_dir,
            again,
            cpus,
        } = launch;
        let mut cmd = Command::new(program);
        if let Some(dir) = data_dir {
            cmd.arg("--data-dir")
                .arg(dir)
                .arg("--cluster")
                .arg(format!("kvsim-{port}"));
        }
        cmd.arg(port.to_string()).arg(id.to_string());
        for p in peers {
            cmd.arg(p.to_string());
        }
        cmd.stdin(Stdio::null()).process_group(0);
        if let Some(cpus) = cpus {
            let cpus = cpus.to_vec();
            // SAFETY: the closure runs in the child between fork and exec, and only makes
            // one system call (sched_setaffinity) on memory allocated before the fork.
            unsafe {
                cmd.pre_exec(move || crate::replicas::placement::pin_this_thread(&cpus));
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        match output {
            Output::Print => {
                cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            }
            Output::Silence => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
            Output::Files { dir, prefix } => {
                std::fs::create_dir_all(dir)?;
                let path = dir.join(format!("{prefix}-{id}.log"));
                let file = if again {
                    File::options().append(true).create(true).open(path)?
                } else {
                    File::create(path)?
                };
                cmd.stdout(file.try_clone()?).stderr(file);
            }
        }
        let mut child = cmd.spawn()?;
        let pgid = child.id() as i32;
        register(pgid);
        if let Output::Print = output {
            if let Some(out) = child.stdout.take() {
                echo(out, id, start);
            }
            if let Some(err) = child.stderr.take() {
                echo(err, id, start);
            }
        }
        Ok(ReplicaProc {
            id,
            child,
            pgid,
            paused: false,
            exit: None,
            group_killed: false,
        })
    }

    /// The process id of the replica itself (its group's leader).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Has it ended on its own? Checks once, without blocking.
    pub fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none()
            && let Ok(Some(status)) = self.child.try_wait()
        {
            self.exit = Some(status);
            unregister(self.pgid);
        }
        self.exit
    }

    pub fn pause(&mut self) {
        if self.exit.is_none() && !self.paused {
            signal_group(self.pgid, libc::SIGSTOP);
            self.paused = true;
        }
    }

    pub fn resume(&mut self) {
        if self.paused {
            signal_group(self.pgid, libc::SIGCONT);
            self.paused = false;
        }
    }

    /// SIGTERM to the group (SIGCONT too, in case it is paused), then SIGKILL after a grace
    /// period; waits for the process.
    pub fn kill(&mut self) {
        if self.group_killed {
            return;
        }
        if self.exit.is_none() {
            signal_group(self.pgid, libc::SIGTERM);
            signal_group(self.pgid, libc::SIGCONT);
            self.paused = false;
            let deadline = Instant::now() + Duration::from_millis(TERM_GRACE_MS);
            loop {
                if let Ok(Some(status)) = self.child.try_wait() {
                    self.exit = Some(status);
                    break;
                }
                if Instant::now() >= deadline {
                    signal_group(self.pgid, libc::SIGKILL);
                    self.exit = self.child.wait().ok();
                    break;
                }
                thread::sleep(Duration::from_millis(2));
            }
        }
        // Whatever the replica started is in its group too.
        signal_group(self.pgid, libc::SIGKILL);
        self.group_killed = true;
        unregister(self.pgid);
    }

    /// SIGKILL to the group at once, as a crash would: no grace, nothing flushed or
    /// synced that the replica had not already; waits for the process.
    pub fn crash(&mut self) {
        if self.group_killed {
            return;
        }
        signal_group(self.pgid, libc::SIGKILL);
        if self.exit.is_none() {
            self.exit = self.child.wait().ok();
        }
        self.paused = false;
        self.group_killed = true;
        unregister(self.pgid);
    }
}

impl Drop for ReplicaProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Copies a replica's output to our stdout, line by line, with time and ID, from a thread
/// of its own so the routing loop never waits on a pipe.
fn echo(stream: impl Read + Send + 'static, id: NodeId, start: Instant) {
    thread::spawn(move || {
        let reader = BufReader::new(stream);
        for line in reader.split(b'\n') {
            let Ok(line) = line else { break };
            let text = String::from_utf8_lossy(&line);
            let line = format!(
                "[{:.4}  Replica {}]: {}\n",
                start.elapsed().as_secs_f64(),
                id,
                text.trim_end()
            );
            if std::io::stdout().lock().write_all(line.as_bytes()).is_err() {
                break;
            }
        }
    });
}

/// A replica as a run drives it: a process of the replica program, or a stand-in that kvsim
/// runs in a thread of its own (`stand_in`).
pub enum Replica {
    Process(ReplicaProc),
    StandIn(crate::replicas::stand_in::Running),
}

impl Replica {
    /// Has it ended (killed, or exited on its own)?
    pub fn ended(&self) -> bool {
        match self {
            Replica::Process(p) => p.exit.is_some(),
            Replica::StandIn(s) => s.ended(),
        }
    }

    /// The process to read memory figures from; a stand-in has none of its own.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Replica::Process(p) => Some(p.pid()),
            Replica::StandIn(_) => None,
        }
    }

    /// Has it ended on its own? Checks once, without blocking; says how. A stand-in only
    /// ends when killed.
    pub fn poll_exit(&mut self) -> Option<String> {
        match self {
            Replica::Process(p) => p.poll_exit().map(|status| status.to_string()),
            Replica::StandIn(_) => None,
        }
    }

    pub fn pause(&mut self) {
        match self {
            Replica::Process(p) => p.pause(),
            Replica::StandIn(s) => s.pause(),
        }
    }

    pub fn resume(&mut self) {
        match self {
            Replica::Process(p) => p.resume(),
            Replica::StandIn(s) => s.resume(),
        }
    }

    pub fn kill(&mut self) {
        match self {
            Replica::Process(p) => p.kill(),
            Replica::StandIn(s) => s.kill(),
        }
    }

    /// Kills at once, with no grace (a stand-in has none to give).
    pub fn crash(&mut self) {
        match self {
            Replica::Process(p) => p.crash(),
            Replica::StandIn(s) => s.kill(),
        }
    }
}
