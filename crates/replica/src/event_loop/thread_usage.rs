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

#[cfg(test)]
mod tests {
    use super::ThreadUsage;

    #[test]
    fn a_turn_is_described_by_what_each_counter_gained() {
        let at_wake = ThreadUsage {
            cpu_us: 1_000,
            minor_faults: 50,
            voluntary_switches: 7,
            involuntary_switches: 3,
        };
        let at_end = ThreadUsage {
            cpu_us: 3_500,
            minor_faults: 170,
            voluntary_switches: 9,
            involuntary_switches: 8,
        };
        assert_eq!(
            at_end.describe_since(&at_wake),
            "CPU 2500 us, 120 page faults, 2 waits, 5 preemptions"
        );
    }

    #[test]
    fn touching_fresh_pages_counts_as_page_faults() {
        const BYTES: usize = 64 << 12;
        let before = ThreadUsage::now();
        // SAFETY: a private anonymous mapping of our own, written inside its bounds and
        // unmapped once; fresh from the kernel, so its pages fault on first touch.
        unsafe {
            let at = libc::mmap(
                std::ptr::null_mut(),
                BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(at, libc::MAP_FAILED);
            for page in (0..BYTES).step_by(4096) {
                std::ptr::write_volatile(at.cast::<u8>().add(page), 1);
            }
            libc::munmap(at, BYTES);
        }
        let after = ThreadUsage::now();
        assert!(after.minor_faults > before.minor_faults);
    }
}
