//! The classic simulator's warnings (`*** Simulator Error - ...`), with a cap so a replica
//! that floods garbage cannot flood the terminal.

use std::io::Write;

/// Warnings printed before the rest are only counted.
const PRINTED_MAX: u64 = 200;
/// Longest excerpt of a raw datagram shown in a warning.
const RAW_SHOWN_BYTES_MAX: usize = 300;

pub struct Warnings {
    print: bool,
    pub count: u64,
}

impl Warnings {
    pub fn new(print: bool) -> Warnings {
        Warnings { print, count: 0 }
    }

    pub fn quiet() -> Warnings {
        Warnings::new(false)
    }

    pub fn say(&mut self, text: &str) {
        self.count += 1;
        if self.print {
            if self.count <= PRINTED_MAX {
                // A closed stdout (say, piped into `head`) must not stop the run.
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "\x1b[93m*** Simulator Error - {text}\x1b[0m"
                );
            } else if self.count == PRINTED_MAX + 1 {
                let _ = writeln!(
                    std::io::stdout().lock(),
                    "\x1b[93m*** Simulator Error - (further warnings counted, not shown)\x1b[0m"
                );
            }
        }
    }

    /// A warning quoting the datagram that caused it.
    pub fn raw(&mut self, what: &str, raw: &[u8]) {
        if self.print && self.count < PRINTED_MAX {
            let shown = &raw[..raw.len().min(RAW_SHOWN_BYTES_MAX)];
            let more = if raw.len() > shown.len() { "..." } else { "" };
            self.say(&format!("{what}: {}{more}", String::from_utf8_lossy(shown)));
        } else {
            self.say(what);
        }
    }
}
