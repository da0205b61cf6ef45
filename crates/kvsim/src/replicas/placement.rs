//! Where kvsim's loop and the replicas run: on CPUs of their own, or all together.
//!
//! kvsim's loop relays every datagram of the run, so while it waits for a CPU every reply
//! waits with it. Sharing the CPUs, a replica woken by kvsim's `sendmmsg` preempts kvsim on
//! its own CPU (the scheduler favours the task it just woke), and kvsim waits out the
//! replica's slice, and often another's: on the 2-core VM this project is measured on,
//! kvsim's thread waited about a second for a CPU over a 17-second run at 100,000
//! puts/s, with 60,000 involuntary switches, and its longest turns (4 ms) were such waits
//! in the middle of a `sendmmsg`. With the loop on a CPU of its own and the replicas on the
//! others it waited 20 to 100 ms, with 300 to 600 switches. Those that were left were
//! other tasks of the machine waking on the loop's CPU (on that VM, its agent's threads,
//! in bursts of 3 to 7 ms): so the loop also runs at real-time priority (`SCHED_FIFO` 1),
//! above every ordinary task and below the kernel's own real-time threads. Then it waited
//! 2 to 8 ms over a run, its longest turn was under 1 ms, and it was switched out 1 to 4
//! times (`docs/PERFORMANCE.md` has the runs).
//!
//! So by default ([`Placement::Split`]) the loop's thread is pinned to one CPU at real-time
//! priority, and every replica process (and stand-in thread) to the rest, at ordinary
//! priority; `--shared-cpus` puts everything back on every CPU at ordinary priority, as the
//! classic simulator runs. Pinning uses `sched_setaffinity`, which needs no privilege for
//! one's own threads and children; real-time priority needs `CAP_SYS_NICE` (or an
//! `RLIMIT_RTPRIO`), and without it the loop runs at ordinary priority and says so. The
//! priority is set with `SCHED_RESET_ON_FORK`, so that nothing the loop starts (replicas,
//! stand-in threads) inherits it, and dropped when the loop ends: the checks that follow
//! are work like any other.

use std::io;

/// Where the loop and the replicas run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Every thread and process on every CPU kvsim may use.
    Shared,
    /// The loop on `sim`, the replicas on `replicas`.
    Split { sim: usize, replicas: Vec<usize> },
}

impl Placement {
    /// The default on this machine: split, with the loop on `sim_cpu` (default: the first
    /// CPU kvsim may use), unless there is only one CPU or `shared` asks otherwise.
    pub fn plan(shared: bool, sim_cpu: Option<usize>) -> Result<Placement, String> {
        Placement::plan_on(&allowed_cpus(), shared, sim_cpu)
    }

    /// [`Placement::plan`] on a given set of CPUs.
    pub fn plan_on(
        allowed: &[usize],
        shared: bool,
        sim_cpu: Option<usize>,
    ) -> Result<Placement, String> {
        if let Some(cpu) = sim_cpu
            && !allowed.contains(&cpu)
        {
            return Err(format!(
                "--sim-cpu {cpu}: kvsim may run on CPUs {}",
                list(allowed)
            ));
        }
        if shared {
            if sim_cpu.is_some() {
                return Err("--sim-cpu and --shared-cpus contradict each other".into());
            }
            return Ok(Placement::Shared);
        }
        let Some(sim) = sim_cpu.or_else(|| allowed.first().copied()) else {
            return Ok(Placement::Shared);
        };
        let replicas: Vec<usize> = allowed.iter().copied().filter(|&c| c != sim).collect();
        if replicas.is_empty() {
            return Ok(Placement::Shared);
        }
        Ok(Placement::Split { sim, replicas })
    }

    /// The CPUs replicas are pinned to (`None`: not pinned).
    pub fn replica_cpus(&self) -> Option<&[usize]> {
        match self {
            Placement::Shared => None,
            Placement::Split { replicas, .. } => Some(replicas),
        }
    }

    /// Said once at the start of a run.
    pub fn describe(&self) -> String {
        match self {
            Placement::Shared => "kvsim and the replicas share every CPU".into(),
            Placement::Split { sim, replicas } => format!(
                "kvsim's loop on CPU {sim}, the replicas on CPU {}",
                list(replicas)
            ),
        }
    }
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn cpu_set(cpus: &[usize]) -> libc::cpu_set_t {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET only writes within it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    set
}

/// Pins the calling thread to `cpus`. Async-signal-safe (one system call), so a child may
/// call it between `fork` and `exec`.
pub fn pin_this_thread(cpus: &[usize]) -> io::Result<()> {
    let set = cpu_set(cpus);
    // SAFETY: pid 0 is the calling thread; `set` is a valid cpu_set_t of the size given.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The real-time priority of kvsim's loop: the lowest, which is above every ordinary task.
pub const LOOP_RT_PRIORITY: i32 = 1;

/// Puts the calling thread at real-time priority ([`LOOP_RT_PRIORITY`], `SCHED_FIFO`),
/// reset for anything it starts. Fails without `CAP_SYS_NICE` or an `RLIMIT_RTPRIO`.
pub fn raise_this_thread() -> io::Result<()> {
    raise_this_thread_to(LOOP_RT_PRIORITY)
}

/// As [`raise_this_thread`], at `SCHED_FIFO` priority `priority` (1 to 99).
pub fn raise_this_thread_to(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 is the calling thread; `param` is valid for the call.
    let r = unsafe {
        libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &param)
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts the calling thread back at ordinary priority.
pub fn lower_this_thread() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as above. Lowering one's own priority is always allowed.
    unsafe {
        libc::sched_setscheduler(0, libc::SCHED_OTHER, &param);
    }
}

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid for sched_getaffinity to fill.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_puts_the_loop_on_one_cpu_and_the_replicas_on_the_rest() {
        assert_eq!(
            Placement::plan_on(&[0, 1], false, None),
            Ok(Placement::Split {
                sim: 0,
                replicas: vec![1]
            })
        );
        assert_eq!(
            Placement::plan_on(&[0, 1, 2, 3], false, Some(2)),
            Ok(Placement::Split {
                sim: 2,
                replicas: vec![0, 1, 3]
            })
        );
        assert_eq!(
            Placement::plan_on(&[3], false, None),
            Ok(Placement::Shared),
            "one CPU: nothing to split"
        );
        assert_eq!(
            Placement::plan_on(&[0, 1], true, None),
            Ok(Placement::Shared)
        );
        assert!(Placement::plan_on(&[0, 1], false, Some(5)).is_err());
        assert!(Placement::plan_on(&[0, 1], true, Some(1)).is_err());
    }

    #[test]
    fn a_raised_thread_starts_ordinary_threads_and_comes_back_down() {
        std::thread::spawn(|| {
            let policy = || unsafe { libc::sched_getscheduler(0) };
            if raise_this_thread().is_err() {
                // No privilege here: nothing to check but that it stayed ordinary.
                assert_eq!(policy(), libc::SCHED_OTHER);
                return;
            }
            assert_eq!(policy() & !libc::SCHED_RESET_ON_FORK, libc::SCHED_FIFO);
            let child = std::thread::spawn(move || unsafe { libc::sched_getscheduler(0) });
            assert_eq!(child.join().unwrap(), libc::SCHED_OTHER, "not inherited");
            lower_this_thread();
            assert_eq!(policy(), libc::SCHED_OTHER);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_pinned_runs_where_it_was_pinned() {
        let allowed = allowed_cpus();
        assert!(!allowed.is_empty());
        let last = *allowed.last().unwrap();
        std::thread::spawn(move || {
            pin_this_thread(&[last]).unwrap();
            assert_eq!(allowed_cpus(), vec![last]);
        })
        .join()
        .unwrap();
    }
}
