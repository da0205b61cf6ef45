//! The replica: `3700kvstore [--debug-log DIR] <port> <my id> <peer id> [<peer id> ...]`.
//! Parses its arguments, reads the environment (the only place that does), and hands over
//! to the event loop.

use replica::args::{self, USAGE_EXIT_STATUS};
use replica::debug_log::DEBUG_LOG_DIR_ENV;
use replica::tuning::Tuning;
use std::path::PathBuf;
use std::process::ExitCode;

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
    // Replicas must draw different election timeouts.
    let seed = replica::event_loop::fresh_seed(args.id);
    match replica::event_loop::run(&args, seed) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{}: {error}", args.id);
            ExitCode::FAILURE
        }
    }
}
