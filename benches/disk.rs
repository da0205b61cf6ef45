//! What the disk under the data directories costs, to read the durable figures against:
//! a 4 KiB write followed by `fdatasync`, the shape of a durable replica's turn, on a
//! file in the system's temporary directory (the one `kvsim --durable` uses), both as an
//! append (the file grows, so each sync also writes its size and block map) and into a
//! file preallocated with zeros (as the write-ahead log's segments are). Prints the p50,
//! p90 and p99 of 2,000 such syncs after criterion's estimate of the mean; then the same
//! with 3 and 5 threads syncing files of their own at once, as the replicas of a durable
//! kvsim run share one disk, with the syncs a second they made together, and how many
//! syncs took 1 ms or more and how many of those came when the disk stalled for several
//! writers at once:
//!
//!     cargo bench --bench disk

use criterion::{Criterion, criterion_group, criterion_main};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const APPEND_BYTES: usize = 4096;
const SAMPLES: usize = 2_000;
/// An appended file is cut back to empty past this, so it never grows without bound; a
/// preallocated one is this long, and written over from its start again.
const FILE_BYTES_MAX: u64 = 16 << 20;

/// How the file written to is laid out.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Appended,
    Preallocated,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Appended => "disk/append_4k_fdatasync",
            Layout::Preallocated => "disk/preallocated_4k_fdatasync",
        }
    }
}

/// Threads syncing at once in the shared-disk runs.
const SHARED_BY: [usize; 2] = [3, 5];

fn temp_file(n: usize, layout: Layout) -> (PathBuf, File) {
    let path = std::env::temp_dir().join(format!("kvstore-bench-disk-{}-{n}", std::process::id()));
    let file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .expect("a temporary file");
    if let Layout::Preallocated = layout {
        let zeros = vec![0; 1 << 20];
        for at in (0..FILE_BYTES_MAX).step_by(zeros.len()) {
            file.write_all_at(&zeros, at).expect("zeros");
        }
        file.sync_all().expect("fsync");
    }
    (path, file)
}

fn write_and_sync(file: &mut File, layout: Layout, block: &[u8], written: &mut u64) {
    if *written + block.len() as u64 > FILE_BYTES_MAX {
        if let Layout::Appended = layout {
            file.set_len(0).expect("truncate");
        }
        *written = 0;
    }
    file.write_all_at(block, *written).expect("write");
    file.sync_data().expect("fdatasync");
    *written += block.len() as u64;
}

/// When each of `SAMPLES` writes and syncs began, and how long it took.
fn timed_syncs(
    file: &mut File,
    layout: Layout,
    block: &[u8],
    written: &mut u64,
) -> Vec<(Instant, Duration)> {
    (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            write_and_sync(file, layout, block, written);
            (start, start.elapsed())
        })
        .collect()
}

/// A sync at least this long counts as slow in the shared-disk runs.
const SLOW_SYNC: Duration = Duration::from_millis(1);
/// The shared-disk runs count slow syncs in windows of this length...
const STALL_WINDOW: Duration = Duration::from_millis(20);
/// ...in which at least this many writers had one: the disk stalled for them all, and no
/// quorum of replicas sharing it would have been faster.
const STALLED_WRITERS: usize = 3;

/// How many of `writers`' syncs were slow, and how many of those fell in a window in which
/// at least `STALLED_WRITERS` writers had a slow one.
fn stalls(start: Instant, writers: &[Vec<(Instant, Duration)>]) -> (usize, usize) {
    let mut windows: std::collections::BTreeMap<u128, (u64, usize)> = Default::default();
    for (w, samples) in writers.iter().enumerate() {
        for (began, _) in samples.iter().filter(|(_, took)| *took >= SLOW_SYNC) {
            let window = began.duration_since(start).as_micros() / STALL_WINDOW.as_micros();
            let (mask, count) = windows.entry(window).or_default();
            *mask |= 1 << w;
            *count += 1;
        }
    }
    let slow = windows.values().map(|&(_, count)| count).sum();
    let together = windows
        .values()
        .filter(|(mask, _)| mask.count_ones() as usize >= STALLED_WRITERS)
        .map(|&(_, count)| count)
        .sum();
    (slow, together)
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    format!(
        "p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms ({} samples)",
        at(0.5),
        at(0.9),
        at(0.99),
        samples.len()
    )
}

fn bench(c: &mut Criterion) {
    let block = vec![0xA5u8; APPEND_BYTES];
    for layout in [Layout::Appended, Layout::Preallocated] {
        let (path, mut file) = temp_file(0, layout);
        let mut written = 0;
        c.bench_function(layout.name(), |b| {
            b.iter(|| write_and_sync(&mut file, layout, &block, &mut written));
        });
        let samples = timed_syncs(&mut file, layout, &block, &mut written);
        let took = samples.into_iter().map(|(_, took)| took).collect();
        println!("{}: {}", layout.name(), percentiles(took));
        let _ = std::fs::remove_file(path);
    }
    for layout in [Layout::Appended, Layout::Preallocated] {
        for threads in SHARED_BY {
            shared_disk(threads, layout, &block);
        }
    }
}

/// `threads` writers, each writing and syncing its own file `SAMPLES` times at once.
fn shared_disk(threads: usize, layout: Layout, block: &[u8]) {
    let start = Instant::now();
    let writers: Vec<Vec<(Instant, Duration)>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (1..=threads)
            .map(|n| {
                scope.spawn(move || {
                    let (path, mut file) = temp_file(n, layout);
                    let samples = timed_syncs(&mut file, layout, block, &mut 0);
                    let _ = std::fs::remove_file(path);
                    samples
                })
            })
            .collect();
        writers
            .into_iter()
            .map(|w| w.join().expect("a writer"))
            .collect()
    });
    let elapsed = start.elapsed();
    let (slow, together) = stalls(start, &writers);
    let samples: Vec<Duration> = writers.iter().flatten().map(|&(_, took)| took).collect();
    let per_second = samples.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{}, {threads} at once: {}; {per_second:.0} syncs/s in all; \
         {slow} of {} ms or more, {together} of them in {} ms windows in which \
         {STALLED_WRITERS} writers or more had one",
        layout.name(),
        percentiles(samples),
        SLOW_SYNC.as_millis(),
        STALL_WINDOW.as_millis()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
