//! The replica: `3700kvstore [--debug-log DIR] <port> <my id> <peer id> [<peer id> ...]`.
//! Parses its arguments, reads the environment (the only place that does), and hands over
//! to the event loop.

use replica::args::{self, USAGE_EXIT_STATUS};
use replica::debug_log::DEBUG_LOG_DIR_ENV;
use replica::tuning::Tuning;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() -> ExitCode {
    let mut args = match args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{}", error.usage_line());
            return ExitCode::from(USAGE_EXIT_STATUS);
        }
    };
    args.tuning = match Tuning::from_lookup(|name| std::env::var(name).ok()) {
        Ok(tuning) => tuning,
        Err(error) => {
            eprintln!("3700kvstore: {error}");
            return ExitCode::from(USAGE_EXIT_STATUS);
        }
    };
    // The flag wins over the environment.
    if args.debug_log_dir.is_none() {
        args.debug_log_dir = std::env::var_os(DEBUG_LOG_DIR_ENV)
            .filter(|dir| !dir.is_empty())
            .map(PathBuf::from);
    }
    // Replicas must draw different election timeouts: mix the id (distinct within a run),
    // the pid and the wall clock (distinct across runs).
    let clock_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seed = mix(u64::from(args.id.0) ^ (u64::from(std::process::id()) << 16) ^ clock_ns);
    match replica::event_loop::run(&args, seed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: {error}", args.id);
            ExitCode::FAILURE
        }
    }
}

/// SplitMix64's finalizer: nearby inputs give unrelated seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
