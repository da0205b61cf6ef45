//! What the machine's CPUs did during a run: kvsim, its replicas, and everything else.
//!
//! kvsim's figures are only kvsim's and the replicas' if nothing else ran: a compiler on
//! the same two cores shows up as kvsim's turns waiting for a CPU and as replica latency.
//! So a run reads the machine's busy time (`/proc/stat`) at its start and its end, and the
//! CPU time of kvsim's own process (its loop, and any stand-in threads) and of its children
//! (the replicas, counted once they are reaped), and says how much went to anything else.
//! The hypervisor's steal time is reported too: time the virtual CPUs did not run at all.
//!
//! Over the load alone (first request to last), a run also says how busy the replicas'
//! CPUs were, and kvsim's when it has one of its own (`LoadCpus`): replicas that share a
//! CPU nearly full drain any stall slowly, so a tail is read against that figure.

use serde::Serialize;

/// CPU time, in seconds, over one run.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct MachineLoad {
    pub cpus: usize,
    /// The seconds the run lasted, times the machine's CPUs: what there was to use.
    pub cpu_s_available: f64,
    /// Every CPU's busy time (user, system, interrupts).
    pub busy_s: f64,
    /// kvsim's process: its loop, its other threads, stand-ins.
    pub kvsim_s: f64,
    /// The replica processes.
    pub replicas_s: f64,
    /// Everything else: `busy - kvsim - replicas` (the kernel's interrupt work on kvsim's
    /// and the replicas' behalf lands here or in theirs, as it happens to interrupt).
    pub others_s: f64,
    /// Time the hypervisor ran something else instead of this machine's CPUs.
    pub steal_s: f64,
}

/// Others' CPU time over this much of a run is worth a warning: the machine was not quiet.
pub const OTHERS_NOTICEABLE_S: f64 = 0.5;

/// A reading of the counters at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reading {
    busy_ticks: u64,
    steal_ticks: u64,
    cpus: usize,
    self_s: f64,
    children_s: f64,
}

impl Reading {
    pub fn now() -> Reading {
        let (busy_ticks, steal_ticks, cpus) = proc_stat().unwrap_or_default();
        Reading {
            busy_ticks,
            steal_ticks,
            cpus,
            self_s: rusage_s(libc::RUSAGE_SELF),
            children_s: rusage_s(libc::RUSAGE_CHILDREN),
        }
    }

    /// What happened from `start` to this reading, `wall_s` apart.
    pub fn since(&self, start: &Reading, wall_s: f64) -> MachineLoad {
        let hz = clock_ticks_per_s() as f64;
        let busy_s = self.busy_ticks.saturating_sub(start.busy_ticks) as f64 / hz;
        let kvsim_s = (self.self_s - start.self_s).max(0.0);
        let replicas_s = (self.children_s - start.children_s).max(0.0);
        MachineLoad {
            cpus: self.cpus,
            cpu_s_available: wall_s * self.cpus as f64,
            busy_s,
            kvsim_s,
            replicas_s,
            others_s: (busy_s - kvsim_s - replicas_s).max(0.0),
            steal_s: self.steal_ticks.saturating_sub(start.steal_ticks) as f64 / hz,
        }
    }
}

/// One CPU's ticks since boot, as `/proc/stat` counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CpuCount {
    busy: u64,
    steal: u64,
    /// Busy, idle, waiting for I/O and stolen: all there was.
    all: u64,
}

/// Every CPU's ticks at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuTicks(Vec<(usize, CpuCount)>);

/// How a set of CPUs spent the time between two readings.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CpusBusy {
    pub cpus: Vec<usize>,
    /// The share of their time busy (user, system, interrupts).
    pub busy: f64,
    /// The share the hypervisor ran something else instead.
    pub steal: f64,
}

/// The CPUs over the load: the replicas' and, when the loop has a CPU of its own, kvsim's.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LoadCpus {
    pub seconds: f64,
    pub replicas: CpusBusy,
    pub kvsim: Option<CpusBusy>,
}

impl CpuTicks {
    pub fn now() -> CpuTicks {
        std::fs::read_to_string("/proc/stat")
            .map(|text| parse_cpu_lines(&text))
            .unwrap_or_default()
    }

    /// How `cpus` spent the time since `start`; `None` if a CPU is not listed in both or
    /// no tick passed.
    pub fn since(&self, start: &CpuTicks, cpus: &[usize]) -> Option<CpusBusy> {
        let count =
            |ticks: &CpuTicks, cpu: usize| ticks.0.iter().find(|(c, _)| *c == cpu).map(|(_, n)| *n);
        let (mut busy, mut steal, mut all) = (0u64, 0u64, 0u64);
        for &cpu in cpus {
            let (now, was) = (count(self, cpu)?, count(start, cpu)?);
            busy += now.busy.saturating_sub(was.busy);
            steal += now.steal.saturating_sub(was.steal);
            all += now.all.saturating_sub(was.all);
        }
        (all > 0).then(|| CpusBusy {
            cpus: cpus.to_vec(),
            busy: busy as f64 / all as f64,
            steal: steal as f64 / all as f64,
        })
    }
}

/// The `cpuN user nice system idle iowait irq softirq steal ...` lines of `/proc/stat`.
fn parse_cpu_lines(text: &str) -> CpuTicks {
    let cpus = text.lines().filter_map(|line| {
        let (number, fields) = line.strip_prefix("cpu")?.split_once(' ')?;
        Some((number.parse().ok()?, parse_counts(fields)))
    });
    CpuTicks(cpus.collect())
}

/// The ticks of a `/proc/stat` CPU line, after its name.
fn parse_counts(fields: &str) -> CpuCount {
    let f: Vec<u64> = fields
        .split_whitespace()
        .map(|w| w.parse().unwrap_or(0))
        .collect();
    let field = |i: usize| f.get(i).copied().unwrap_or(0);
    let busy = field(0) + field(1) + field(2) + field(5) + field(6);
    CpuCount {
        busy,
        steal: field(7),
        all: busy + field(3) + field(4) + field(7),
    }
}

/// The busy and steal ticks summed over the CPUs, and how many CPUs `/proc/stat` lists.
fn proc_stat() -> Option<(u64, u64, usize)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    parse_proc_stat(&text)
}

/// `/proc/stat`'s first line is `cpu user nice system idle iowait irq softirq steal ...`;
/// then one `cpuN` line per CPU.
pub fn parse_proc_stat(text: &str) -> Option<(u64, u64, usize)> {
    let total = parse_counts(text.lines().find_map(|l| l.strip_prefix("cpu "))?);
    let cpus = text
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count();
    Some((total.busy, total.steal, cpus))
}

fn rusage_s(who: libc::c_int) -> f64 {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid starting value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    s(ru.ru_utime) + s(ru.ru_stime)
}

pub fn clock_ticks_per_s() -> u64 {
    // SAFETY: sysconf only reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_busy_and_steal_from_proc_stat() {
        let text = "cpu  100 5 50 1000 7 3 2 11 0 0\ncpu0 50 5 25 500 3 1 1 6 0 0\n\
                    cpu1 50 0 25 500 4 2 1 5 0 0\nintr 12345\n";
        assert_eq!(parse_proc_stat(text), Some((160, 11, 2)));
        assert_eq!(parse_proc_stat("intr 1\n"), None);
    }

    #[test]
    fn a_set_of_cpus_is_as_busy_as_its_ticks_say() {
        let start = parse_cpu_lines(
            "cpu  100 5 50 1000 7 3 2 11 0 0\ncpu0 50 5 25 500 3 1 1 6 0 0\n\
             cpu1 50 0 25 500 4 2 1 5 0 0\nintr 12345\n",
        );
        // CPU 0: 30 busy, 60 idle, 10 iowait; CPU 1: 70 busy, 20 idle, 10 stolen.
        let end = parse_cpu_lines(
            "cpu  0 0 0 0 0 0 0 0 0 0\ncpu0 70 5 35 560 13 1 1 6 0 0\n\
             cpu1 100 0 40 520 4 7 1 15 0 0\n",
        );
        let zero = end.since(&start, &[0]).unwrap();
        assert_eq!((zero.busy, zero.steal), (0.3, 0.0));
        let one = end.since(&start, &[1]).unwrap();
        assert_eq!((one.busy, one.steal), (0.7, 0.1));
        let both = end.since(&start, &[0, 1]).unwrap();
        assert_eq!((both.cpus, both.busy, both.steal), (vec![0, 1], 0.5, 0.05));
        assert_eq!(end.since(&start, &[2]), None, "a CPU not listed");
        assert_eq!(start.since(&start, &[0]), None, "no tick passed");
    }

    #[test]
    fn others_are_what_is_left_of_the_busy_time() {
        let start = Reading {
            busy_ticks: 1_000,
            steal_ticks: 5,
            cpus: 2,
            self_s: 1.0,
            children_s: 2.0,
        };
        let end = Reading {
            busy_ticks: 1_000 + 500 * clock_ticks_per_s() / 100,
            steal_ticks: 5 + clock_ticks_per_s(),
            cpus: 2,
            self_s: 2.5,
            children_s: 4.0,
        };
        let m = end.since(&start, 10.0);
        assert_eq!(m.cpu_s_available, 20.0);
        assert!((m.busy_s - 5.0).abs() < 1e-9);
        assert!((m.others_s - 1.5).abs() < 1e-9, "{m:?}");
        assert!((m.steal_s - 1.0).abs() < 1e-9);
    }
}
