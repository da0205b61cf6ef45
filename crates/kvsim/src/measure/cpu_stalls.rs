//! Stalls of the machine itself: moments when a CPU ran nothing of ours, whatever its
//! priority (`--stall-probe`).
//!
//! On a virtual machine the host may leave a virtual CPU unscheduled, or wake a halted one
//! late, for milliseconds, and every thread on that CPU, replica or kvsim, simply does not
//! run; the guest need not see it as steal time (the 2-core VM this project is measured on
//! shows none even then). The probe is a thread per CPU, pinned there at the highest
//! real-time priority, that sleeps 1 ms at a time and notes each wake-up that came
//! [`STALL_US`] or more late: within the guest only interrupts and the kernel's own
//! non-preemptible work could have held it up. The replies in flight during a stall are
//! set apart, as for kvsim's slow turns (`loop_turns`), so that a run's tail can be read
//! without what the machine did to it.
//!
//! Each wake-up costs its CPU a few microseconds, a thousand times a second, so the probe
//! runs only when asked for.

use super::loop_turns::{Attribution, attribute};
use crate::clients::history::HistOp;
use crate::replicas::placement::{pin_this_thread, raise_this_thread_to};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long each probe thread sleeps.
const PERIOD: Duration = Duration::from_millis(1);
/// A wake-up this much later than asked for is a stall.
pub const STALL_US: u64 = 1_000;
/// The probe's `SCHED_FIFO` priority: the highest, so that nothing of the guest's but
/// interrupts and the kernel's non-preemptible work comes before it.
const PROBE_RT_PRIORITY: i32 = 99;
/// Stalls kept per CPU (a run of minutes on a troubled machine stays bounded).
const STALLS_KEPT_MAX: usize = 100_000;

/// The probe's threads while a run goes.
pub struct StallProbe {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Probed>>,
}

/// What one CPU's thread saw.
struct Probed {
    real_time: bool,
    /// `(due, woke)`, µs from the run's start.
    stalls: Vec<(u64, u64)>,
}

/// The stalls of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CpuStalls {
    pub cpus: usize,
    /// Whether every probe thread ran at real-time priority. Without it a "stall" may be
    /// no more than the guest's own scheduler running something else first.
    pub real_time: bool,
    /// Stalls on any CPU, their longest, and their total (each CPU's counted).
    pub stalls: u64,
    pub longest_us: u64,
    pub total_us: u64,
    /// The replies in flight during a stall (the CPUs' stalls merged), and the latency
    /// of the rest.
    pub attribution: Attribution,
}

impl StallProbe {
    /// Starts a thread on each of `cpus` (those kvsim and its replicas may use), timing
    /// from `origin` (the run's start).
    pub fn start(origin: Instant, cpus: &[usize]) -> std::io::Result<StallProbe> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for &cpu in cpus {
            let stop = stop.clone();
            let thread = std::thread::Builder::new()
                .name(format!("stall-probe-{cpu}"))
                .spawn(move || probe(cpu, origin, &stop))?;
            threads.push(thread);
        }
        Ok(StallProbe { stop, threads })
    }

    /// Stops the threads and counts the stalls, and the replies of `history` that were
    /// in flight during one.
    pub fn finish(mut self, history: &[HistOp]) -> CpuStalls {
        self.stop.store(true, Ordering::Relaxed);
        let threads = std::mem::take(&mut self.threads);
        let cpus = threads.len();
        let mut real_time = !threads.is_empty();
        let mut spans = Vec::new();
        for thread in threads {
            match thread.join() {
                Ok(probed) => {
                    real_time &= probed.real_time;
                    spans.extend(probed.stalls);
                }
                Err(_) => real_time = false,
            }
        }
        let lengths = spans.iter().map(|&(due, woke)| woke - due);
        let stalls = spans.len() as u64;
        let longest_us = lengths.clone().max().unwrap_or(0);
        let total_us = lengths.sum();
        CpuStalls {
            cpus,
            real_time,
            stalls,
            longest_us,
            total_us,
            attribution: attribute(&merged(spans), history),
        }
    }
}

impl Drop for StallProbe {
    /// A run that ends early stops its probe too (its threads end within a period).
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The body of one CPU's thread: pinned to `cpu`, at real-time priority if allowed.
fn probe(cpu: usize, origin: Instant, stop: &AtomicBool) -> Probed {
    let pinned = pin_this_thread(&[cpu]).is_ok();
    let real_time = pinned && raise_this_thread_to(PROBE_RT_PRIORITY).is_ok();
    let micros = |t: Instant| u64::try_from(t.duration_since(origin).as_micros()).unwrap_or(0);
    let mut stalls = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let asleep = Instant::now();
        std::thread::sleep(PERIOD);
        let woke = Instant::now();
        let due = asleep + PERIOD;
        if woke.duration_since(due) >= Duration::from_micros(STALL_US)
            && stalls.len() < STALLS_KEPT_MAX
        {
            stalls.push((micros(due), micros(woke)));
        }
    }
    Probed { real_time, stalls }
}

/// `spans` sorted and overlapping ones joined (what `attribute` takes).
fn merged(mut spans: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    spans.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(spans.len());
    for (from, to) in spans {
        match out.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replicas::placement::allowed_cpus;

    #[test]
    fn overlapping_stalls_of_two_cpus_are_one_span() {
        let spans = vec![(50, 60), (10, 20), (15, 30), (30, 31), (40, 45)];
        assert_eq!(merged(spans), vec![(10, 31), (40, 45), (50, 60)]);
    }

    /// With real-time priority allowed, a thread that keeps a CPU (the first allowed) busy at the probe's own
    /// priority (FIFO: it runs until it blocks) stalls the probe there, and the probe
    /// says so; without it, the probe says it was not at real-time priority.
    #[test]
    fn a_cpu_held_by_an_equal_real_time_thread_is_seen_stalled() {
        let cpus = allowed_cpus();
        let probe = StallProbe::start(Instant::now(), &cpus).expect("probe threads");
        // Let every probe thread settle at its priority first.
        std::thread::sleep(Duration::from_millis(50));
        let held_cpu = cpus[0];
        let held = std::thread::spawn(move || {
            if pin_this_thread(&[held_cpu]).is_err()
                || raise_this_thread_to(PROBE_RT_PRIORITY).is_err()
            {
                return None;
            }
            let from = Instant::now();
            while from.elapsed() < Duration::from_millis(20) {
                std::hint::spin_loop();
            }
            Some(())
        })
        .join()
        .expect("the busy thread");
        std::thread::sleep(Duration::from_millis(20));
        let stalls = probe.finish(&[]);
        assert_eq!(stalls.cpus, cpus.len());
        match held {
            Some(()) => {
                assert!(
                    stalls.real_time,
                    "real-time for one thread but not the probe's"
                );
                assert!(
                    stalls.longest_us >= 10_000,
                    "CPU {held_cpu} held for 20 ms, longest stall seen {} us",
                    stalls.longest_us
                );
            }
            None => assert!(!stalls.real_time),
        }
    }
}
