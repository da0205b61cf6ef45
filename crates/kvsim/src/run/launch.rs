//! Starting replicas: everything needed to start replica `r`, kept for the whole run so
//! that a restart starts it exactly as the first time (same port, same peers, same data
//! dir, same environment), its output going on where it left off.

use std::io;
use std::path::PathBuf;
use std::time::Instant;

use crate::replicas::data_dirs::DataDirs;
use crate::replicas::processes::{Launch, Output, Replica, ReplicaProc};
use crate::replicas::stand_in::{self, StandIn};
use raft::NodeId;

pub(super) struct Launcher {
    program: PathBuf,
    /// With the scenario's name as the prefix of log files.
    output: Output,
    env: Vec<(String, String)>,
    start: Instant,
    /// The simulator's port for each replica.
    ports: Vec<u16>,
    stand_in: Option<StandIn>,
    /// The CPUs replicas run on (`placement`); `None` for any.
    cpus: Option<Vec<usize>>,
    /// How many keys the run may write, for a stand-in's store.
    keys_hint: usize,
    /// `Some` for a durable scenario. Dropped with the launcher, after the replicas.
    data_dirs: Option<DataDirs>,
}

impl Launcher {
    pub(super) fn new(
        opts: &super::Options,
        scenario: &str,
        ports: Vec<u16>,
        start: Instant,
        keys_hint: usize,
        data_dirs: Option<DataDirs>,
    ) -> Launcher {
        let output = match &opts.output {
            Output::Files { dir, .. } => Output::Files {
                dir: dir.clone(),
                prefix: scenario.to_string(),
            },
            o => o.clone(),
        };
        Launcher {
            program: opts.replica.clone(),
            output,
            env: opts.env.clone(),
            start,
            ports,
            stand_in: opts.stand_in,
            cpus: opts.placement.replica_cpus().map(<[usize]>::to_vec),
            keys_hint,
            data_dirs,
        }
    }

    /// Starts replica `r`; `again` after a restart.
    pub(super) fn spawn(&self, r: usize, again: bool) -> io::Result<Replica> {
        let n = self.ports.len();
        let id = NodeId(r as u16);
        let peers: Vec<NodeId> = (0..n)
            .filter(|&p| p != r)
            .map(|p| NodeId(p as u16))
            .collect();
        let port = self.ports[r];
        if let Some(kind) = self.stand_in {
            return stand_in::Running::spawn(
                kind,
                port,
                id,
                &peers,
                self.cpus.as_deref(),
                self.keys_hint,
            )
            .map(Replica::StandIn)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start stand-in {}: {e}", kind.name()),
                )
            });
        }
        let launch = Launch {
            program: &self.program,
            port,
            id,
            peers: &peers,
            output: &self.output,
            start: self.start,
            env: &self.env,
            data_dir: self.data_dirs.as_ref().map(|d| d.of(r)),
            again,
            cpus: self.cpus.as_deref(),
        };
        ReplicaProc::spawn(&launch)
            .map(Replica::Process)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot run {}: {e}", self.program.display()),
                )
            })
    }
}
