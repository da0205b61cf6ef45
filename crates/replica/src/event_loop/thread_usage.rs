//! What the loop's thread used in a turn (CPU time, page faults, context switches), read
//! only while the debug log is on: a slow turn is told apart as one that worked (CPU), one
//! that touched fresh memory (faults), one that blocked in a system call (waits: voluntary
//! switches), or one the scheduler held up (preemptions: involuntary switches).

/// Counters of the calling thread, as `getrusage(RUSAGE_THREAD)` gives them.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadUsage {
    cpu_us: u64,
    minor_faults: u64,
    voluntary_switches: u64,
    involuntary_switches: u64,
}

impl ThreadUsage {
    /// The calling thread's counters now (zeros if the kernel will not say).
    pub fn now() -> ThreadUsage {
        // SAFETY: getrusage fills the struct we pass; zeroed is a valid starting value.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } != 0 {
            return ThreadUsage::default();
        }
        let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
        ThreadUsage {
            cpu_us: us(ru.ru_utime) + us(ru.ru_stime),
            minor_faults: ru.ru_minflt as u64,
            voluntary_switches: ru.ru_nvcsw as u64,
            involuntary_switches: ru.ru_nivcsw as u64,
        }
    }

    /// What the thread used from `earlier` to `self`, for the debug log.
    pub fn describe_since(&self, earlier: &ThreadUsage) -> String {
        format!(
            "CPU {} us, {} page faults, {} waits, {} preemptions",
            self.cpu_us.saturating_sub(earlier.cpu_us),
            self.minor_faults.saturating_sub(earlier.minor_faults),
            self.voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            self.involuntary_switches
                .saturating_sub(earlier.involuntary_switches)
        )
    }
}
