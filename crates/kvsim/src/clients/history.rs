//! The run's history: one record per attempt (one MID), kept by the clients as requests go
//! out and replies come in, and read after the run by the linearizability check
//! (`checks::linearizability`), the commit rate (`throughput`), and the CSV file written here, one line per
//! attempt: for latency over time, per-client views and anything else the summary does not
//! show.
//!
//! CSV columns: `client` (index), `op` (`get` or `put`), `key` and `value` (ids, the same for
//! the same string within a run), `invoke_us` and `response_us` (µs since kvsim started;
//! the response is empty when none came), `ok` (1 for `ok`, 0 for anything else or no
//! answer), and `request` (attempts that retry one request share it).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// One attempt (one MID) in the history.
#[derive(Debug, Clone)]
pub struct HistOp {
    pub client: u32,
    pub key: u32,
    pub get: bool,
    /// For a put, the value written; for an answered get, the value returned.
    pub value: u32,
    pub invoke_us: u64,
    pub response_us: Option<u64>,
    /// Got `ok`.
    pub acked: bool,
    /// The logical request this attempt belongs to (retries share it).
    pub group: u64,
}

pub const HEADER: &str = "client,op,key,value,invoke_us,response_us,ok,request";

pub fn write_csv(path: &Path, history: &[HistOp]) -> io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    write(&mut out, history)?;
    out.flush()
}

fn write(out: &mut impl Write, history: &[HistOp]) -> io::Result<()> {
    writeln!(out, "{HEADER}")?;
    for op in history {
        write!(
            out,
            "{},{},{},{},{},",
            op.client,
            if op.get { "get" } else { "put" },
            op.key,
            op.value,
            op.invoke_us
        )?;
        if let Some(at) = op.response_us {
            write!(out, "{at}")?;
        }
        writeln!(out, ",{},{}", u8::from(op.acked), op.group)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_attempt_and_an_empty_response_when_none_came() {
        let op = |get, response_us, acked, group| HistOp {
            client: 3,
            key: 7,
            get,
            value: 9,
            invoke_us: 1_000,
            response_us,
            acked,
            group,
        };
        let history = [op(false, Some(1_250), true, 0), op(true, None, false, 1)];
        let mut out = Vec::new();
        write(&mut out, &history).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("{HEADER}\n3,put,7,9,1000,1250,1,0\n3,get,7,9,1000,,0,1\n")
        );
    }
}
