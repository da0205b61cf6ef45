//! Replica memory: resident set size sampled from `/proc/<pid>/status` while a run goes.
//!
//! The project's memory target is per stored put, so we want two figures per replica: its
//! peak resident set size, and how much it grew from the moment the first client request
//! was sent (everything before is start-up: code, buffers, an empty log). The kernel keeps
//! the peak for us (`VmHWM`, the high-water mark of `VmRSS`), so sampling every 100 ms
//! cannot miss a short peak; only the last 100 ms of a replica's life can go unseen.
//!
//! Only the direct child is measured: a replica started through a wrapper script is
//! measured as the wrapper.

use serde::Serialize;

/// The two lines of `/proc/<pid>/status` we read, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub rss_bytes: u64,
    pub hwm_bytes: u64,
}

/// Reads `VmRSS` and `VmHWM` from the text of a `/proc/<pid>/status` file. `None` when
/// either is missing or malformed (a kernel thread, or a process already reaped).
pub fn parse_status(text: &str) -> Option<Status> {
    let mut rss = None;
    let mut hwm = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            rss = parse_kib(rest);
        } else if let Some(rest) = line.strip_prefix("VmHWM:") {
            hwm = parse_kib(rest);
        }
    }
    Some(Status {
        rss_bytes: rss?,
        hwm_bytes: hwm?,
    })
}

/// `"\t   12345 kB"` in bytes. The kernel writes these in KiB and calls them `kB`.
fn parse_kib(rest: &str) -> Option<u64> {
    let mut words = rest.split_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    (words.next()? == "kB" && words.next().is_none()).then(|| kib * 1024)
}

pub fn read_status(pid: u32) -> Option<Status> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(&text)
}

/// One replica's memory over a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplicaMemory {
    pub id: String,
    /// `VmRSS` when the first client request was sent.
    pub baseline_rss_bytes: Option<u64>,
    /// The largest `VmHWM` seen (0 if never read).
    pub peak_rss_bytes: u64,
    /// `(peak - baseline) / committed puts`: what a stored put costs this replica.
    pub rss_growth_bytes_per_committed_put: Option<f64>,
    pub samples: u64,
}

/// Memory figures of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    pub replicas: Vec<ReplicaMemory>,
    /// The largest peak of any replica.
    pub peak_rss_bytes_max: u64,
    /// The largest growth per committed put of any replica (usually the leader's).
    pub rss_growth_bytes_per_committed_put_max: Option<f64>,
}

impl Memory {
    pub fn new(ids: impl IntoIterator<Item = String>) -> Memory {
        Memory {
            replicas: ids
                .into_iter()
                .map(|id| ReplicaMemory {
                    id,
                    ..ReplicaMemory::default()
                })
                .collect(),
            ..Memory::default()
        }
    }

    /// Records a sample of replica `r`; the first one after `baseline` is true also sets
    /// its baseline.
    pub fn record(&mut self, r: usize, status: Status, baseline: bool) {
        let m = &mut self.replicas[r];
        m.samples += 1;
        m.peak_rss_bytes = m.peak_rss_bytes.max(status.hwm_bytes).max(status.rss_bytes);
        if baseline && m.baseline_rss_bytes.is_none() {
            m.baseline_rss_bytes = Some(status.rss_bytes);
        }
    }

    /// Fills in the derived figures once the run is over.
    pub fn finalize(&mut self, committed_puts: u64) {
        for m in &mut self.replicas {
            m.rss_growth_bytes_per_committed_put = match m.baseline_rss_bytes {
                Some(base) if committed_puts > 0 => {
                    Some(m.peak_rss_bytes.saturating_sub(base) as f64 / committed_puts as f64)
                }
                _ => None,
            };
        }
        self.peak_rss_bytes_max = self
            .replicas
            .iter()
            .map(|m| m.peak_rss_bytes)
            .max()
            .unwrap_or(0);
        self.rss_growth_bytes_per_committed_put_max = self
            .replicas
            .iter()
            .filter_map(|m| m.rss_growth_bytes_per_committed_put)
            .max_by(f64::total_cmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The head of a real `/proc/self/status` (Linux 6.x), with the fields around ours.
    const STATUS: &str = "Name:\t3700kvstore\nUmask:\t0022\nState:\tS (sleeping)\n\
        VmPeak:\t   22840 kB\nVmSize:\t   22836 kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\n\
        VmHWM:\t   12800 kB\nVmRSS:\t    9216 kB\nRssAnon:\t    5120 kB\n\
        RssFile:\t    4096 kB\nThreads:\t1\n";

    #[test]
    fn reads_rss_and_high_water_mark_in_bytes() {
        assert_eq!(
            parse_status(STATUS),
            Some(Status {
                rss_bytes: 9216 * 1024,
                hwm_bytes: 12800 * 1024,
            })
        );
    }

    #[test]
    fn similar_names_and_bad_lines_are_not_taken() {
        // RssAnon and VmPeak must not be read as VmRSS or VmHWM.
        let without = STATUS.replace("VmRSS:\t    9216 kB\n", "");
        assert_eq!(parse_status(&without), None);
        let without = STATUS.replace("VmHWM:\t   12800 kB\n", "");
        assert_eq!(parse_status(&without), None);
        for bad in ["VmRSS:\t 9216\n", "VmRSS:\t 9216 MB\n", "VmRSS:\t x kB\n"] {
            let text = STATUS.replace("VmRSS:\t    9216 kB\n", bad);
            assert_eq!(parse_status(&text), None, "{bad:?}");
        }
        assert_eq!(parse_status(""), None);
    }

    #[test]
    fn reads_our_own_process() {
        let s = read_status(std::process::id()).expect("/proc/self/status");
        assert!(s.rss_bytes > 0 && s.hwm_bytes >= s.rss_bytes, "{s:?}");
    }

    #[test]
    fn growth_is_peak_minus_baseline_per_put() {
        let mut m = Memory::new(["0000".to_string(), "0001".to_string()]);
        let st = |rss, hwm| Status {
            rss_bytes: rss,
            hwm_bytes: hwm,
        };
        // Before the first request: start-up, not part of the baseline.
        m.record(0, st(900, 1_000), false);
        m.record(0, st(1_000, 1_000), true);
        m.record(0, st(1_500, 1_800), true);
        m.record(0, st(1_400, 1_800), true);
        m.record(1, st(2_000, 2_000), true);
        m.finalize(100);
        assert_eq!(m.replicas[0].baseline_rss_bytes, Some(1_000));
        assert_eq!(m.replicas[0].peak_rss_bytes, 1_800);
        assert_eq!(m.replicas[0].rss_growth_bytes_per_committed_put, Some(8.0));
        assert_eq!(m.replicas[1].rss_growth_bytes_per_committed_put, Some(0.0));
        assert_eq!(m.peak_rss_bytes_max, 2_000);
        assert_eq!(m.rss_growth_bytes_per_committed_put_max, Some(8.0));

        let mut none = Memory::new(["0000".to_string()]);
        none.record(0, st(1_000, 1_000), true);
        none.finalize(0);
        assert_eq!(none.rss_growth_bytes_per_committed_put_max, None);
    }
}
