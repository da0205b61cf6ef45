//! The history, in Jepsen's format: one event per line of JSON, each operation an
//! `invoke` then `ok`, `fail` (known not to have happened) or `info` (may or may not have
//! happened), and the nemesis's faults as `info` events of process `"nemesis"`.
//!
//! ```json
//! {"index":7,"time":1250000,"type":"invoke","process":2,"f":"write","key":"k1-0","value":"2-5"}
//! {"index":9,"time":1254000,"type":"ok","process":2,"f":"write","key":"k1-0","value":"2-5","node":1}
//! {"index":12,"time":2000000,"type":"info","process":"nemesis","f":"start-partition","value":"leader isolated: n1 | n2 n3"}
//! ```
//!
//! `time` is in nanoseconds since the run began, as Jepsen's. `value` is the value
//! written, or the value read (`null`: no such key); a delete is a write of `null`.
//! Beyond Jepsen's fields: `node` (the node that answered) and `error`.
//!
//! Events get their index and time under one lock, so the index order is the real-time
//! order: an invocation is recorded before its request is sent, a completion after its
//! reply is read.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Type {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// A client's process number, or the nemesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    Nemesis(NemesisTag),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NemesisTag {
    Nemesis,
}

pub const NEMESIS: Process = Process::Nemesis(NemesisTag::Nemesis);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub index: u64,
    pub time: u64,
    #[serde(rename = "type")]
    pub kind: Type,
    pub process: Process,
    /// `read`, `write`, `delete`; for the nemesis `start-<fault>` and `stop-<fault>`.
    pub f: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a caller records; the recorder adds index and time.
#[derive(Clone, Debug)]
pub struct Draft {
    pub kind: Type,
    pub process: Process,
    pub f: String,
    pub key: Option<String>,
    pub value: Option<String>,
    pub node: Option<u16>,
    pub error: Option<String>,
}

pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    events: Vec<Event>,
    out: BufWriter<File>,
    write_error: Option<String>,
}

impl Recorder {
    pub fn create(path: &Path, start: Instant) -> Result<Recorder, String> {
        let file = File::create(path)
            .map_err(|e| format!("cannot create history file {}: {e}", path.display()))?;
        Ok(Recorder {
            start,
            inner: Mutex::new(Inner {
                events: Vec::new(),
                out: BufWriter::new(file),
                write_error: None,
            }),
        })
    }

    pub fn record(&self, draft: Draft) -> Event {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let event = Event {
            index: inner.events.len() as u64,
            time: self.start.elapsed().as_nanos() as u64,
            kind: draft.kind,
            process: draft.process,
            f: draft.f,
            key: draft.key,
            value: draft.value,
            node: draft.node,
            error: draft.error,
        };
        let line = serde_json::to_string(&event).expect("an event serializes");
        if let Err(e) = writeln!(inner.out, "{line}")
            && inner.write_error.is_none()
        {
            inner.write_error = Some(e.to_string());
        }
        inner.events.push(event.clone());
        event
    }

    /// The index the next event will get.
    pub fn next_index(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .len() as u64
    }

    /// Nanoseconds since the run began, on the history's clock.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Flushes the file and hands back every event.
    pub fn finish(self) -> Result<Vec<Event>, String> {
        let mut inner = self.inner.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = inner.write_error.take() {
            return Err(format!("cannot write the history: {e}"));
        }
        inner
            .out
            .flush()
            .map_err(|e| format!("cannot write the history: {e}"))?;
        Ok(inner.events)
    }
}

/// Reads a history written by [`Recorder`].
pub fn read(path: &Path) -> Result<Vec<Event>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read history {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_in_jepsens_shape() {
        let line = r#"{"index":3,"time":10,"type":"info","process":"nemesis","f":"start-kill","value":"n2"}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        assert_eq!(event.process, NEMESIS);
        assert_eq!(serde_json::to_string(&event).unwrap(), line);
        let line = r#"{"index":4,"time":11,"type":"ok","process":7,"f":"read","key":"k0-0","value":null,"node":1}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        assert_eq!(event.process, Process::Client(7));
        assert_eq!(event.kind, Type::Ok);
        assert_eq!(serde_json::to_string(&event).unwrap(), line);
    }
}
