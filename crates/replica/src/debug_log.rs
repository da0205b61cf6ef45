//! A per-replica debug log: one file per replica, `<dir>/<id>.log`, each line prefixed with
//! the time since the replica started (milliseconds with microseconds).
//!
//! It costs nothing when off: the [`debug_log!`](crate::debug_log!) macro checks one bool
//! before any formatting happens. When on, lines go through a buffer that is flushed when
//! the loop is idle (at most every [`FLUSH_INTERVAL_MS`]), when it fills, and at exit.
//!
//! It is turned on by `--debug-log <dir>` on the command line, or by the environment
//! variable [`DEBUG_LOG_DIR_ENV`], which the binary reads (the classic simulator launches
//! replicas with exactly `<port> <id> <peers...>`, so the environment is the only way in
//! there).

use raft::NodeId;
use raft::time::Time;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The environment variable naming the directory for debug logs.
pub const DEBUG_LOG_DIR_ENV: &str = "KV_DEBUG_LOG_DIR";
/// How long buffered lines may wait for an idle loop to flush them.
pub const FLUSH_INTERVAL_MS: u64 = 50;
/// The write buffer.
const BUFFER_BYTES: usize = 64 * 1024;

/// Writes `now`-stamped lines to a replica's debug log, if enabled.
///
/// ```
/// use raft::time::Time;
/// use replica::{debug_log, debug_log::DebugLog};
/// let mut log = DebugLog::disabled();
/// debug_log!(log, Time(1_500), "became {} in term {}", "leader", 3);
/// ```
#[macro_export]
macro_rules! debug_log {
    ($log:expr, $now:expr, $($arg:tt)+) => {
        if $log.is_enabled() {
            $log.write_line($now, ::std::format_args!($($arg)+));
        }
    };
}

/// One replica's debug log, or nothing when disabled.
#[derive(Debug)]
pub struct DebugLog {
    /// `Some` exactly when enabled.
    out: Option<BufWriter<File>>,
    path: Option<PathBuf>,
    last_flush: Time,
}

impl DebugLog {
    /// A log that writes nothing.
    pub fn disabled() -> DebugLog {
        DebugLog {
            out: None,
            path: None,
            last_flush: Time::ZERO,
        }
    }

    /// Opens (truncating) `<dir>/<id>.log`, creating `dir` if needed.
    pub fn open(dir: &Path, id: NodeId) -> io::Result<DebugLog> {
        fs::create_dir_all(dir)?;
        let path = dir.join(format!("{id}.log"));
        let file = File::create(&path)?;
        Ok(DebugLog {
            out: Some(BufWriter::with_capacity(BUFFER_BYTES, file)),
            path: Some(path),
            last_flush: Time::ZERO,
        })
    }

    #[inline]
    pub fn is_enabled(&self) -> bool {
        self.out.is_some()
    }

    /// The file written to, if enabled.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Writes one line stamped with `now`. Use [`debug_log!`](crate::debug_log!), which
    /// skips the formatting when the log is off.
    pub fn write_line(&mut self, now: Time, args: fmt::Arguments<'_>) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        let us = now.as_micros();
        let result = writeln!(out, "{:>9}.{:03} {}", us / 1000, us % 1000, args);
        if let Err(error) = result {
            self.give_up(&error);
        }
    }

    /// Whether lines are waiting in the buffer.
    pub fn has_buffered(&self) -> bool {
        self.out
            .as_ref()
            .is_some_and(|out| !out.buffer().is_empty())
    }

    /// Flushes if anything has waited [`FLUSH_INTERVAL_MS`] or more. Call when idle.
    pub fn flush_if_due(&mut self, now: Time) {
        let Some(out) = self.out.as_ref() else {
            return;
        };
        if out.buffer().is_empty() || now.since(self.last_flush).as_millis() < FLUSH_INTERVAL_MS {
            return;
        }
        self.last_flush = now;
        self.flush();
    }

    /// Writes out everything buffered.
    pub fn flush(&mut self) {
        if let Some(out) = self.out.as_mut()
            && let Err(error) = out.flush()
        {
            self.give_up(&error);
        }
    }

    /// A debug log must never take the replica down: on a write error, say so once and
    /// turn the log off.
    fn give_up(&mut self, error: &io::Error) {
        eprintln!("debug log {:?} disabled: {error}", self.path);
        if let Some(out) = self.out.take() {
            // Drop the buffer: flushing would likely fail the same way.
            let _ = out.into_parts();
        }
    }
}

impl Drop for DebugLog {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kv-debug-log-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn disabled_log_never_formats() {
        struct Panics;
        impl fmt::Display for Panics {
            fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
                panic!("formatted while disabled");
            }
        }
        let mut log = DebugLog::disabled();
        debug_log!(log, Time(1), "{}", Panics);
        log.flush();
        log.flush_if_due(Time(10_000_000));
    }

    #[test]
    fn writes_stamped_lines_to_id_log() {
        let dir = temp_dir("lines");
        let mut log = DebugLog::open(&dir, NodeId(0x001C)).unwrap();
        assert_eq!(log.path(), Some(dir.join("001C.log").as_path()));
        debug_log!(log, Time(1_234_567), "term {} role {}", 3, "leader");
        debug_log!(log, Time(42), "early");
        // Nothing waited long enough at 10 ms.
        log.flush_if_due(Time(10_000));
        log.flush_if_due(Time(100_000));
        let text = fs::read_to_string(dir.join("001C.log")).unwrap();
        assert_eq!(
            text,
            "     1234.567 term 3 role leader\n        0.042 early\n"
        );
        drop(log);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn flushes_on_drop() {
        let dir = temp_dir("drop");
        let mut log = DebugLog::open(&dir, NodeId(1)).unwrap();
        debug_log!(log, Time(0), "bye");
        drop(log);
        let text = fs::read_to_string(dir.join("0001.log")).unwrap();
        assert_eq!(text, "        0.000 bye\n");
        let _ = fs::remove_dir_all(&dir);
    }
}
