//! `kvsim`: run one scenario (`kvsim configs/classic/simple-1.json`), every scenario in a
//! directory (`kvsim all`), one against kvsim's stand-ins (`kvsim calibrate FILE`), or one
//! several times (`kvsim repeat N FILE`). See `kvsim` for what it does: this binary only turns its
//! arguments into options, calls `kvsim::suite`, and draws the progress bar of `all`.

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use kvsim::Options;
use kvsim::checks::linearizability;
use kvsim::replicas::placement::Placement;
use kvsim::replicas::processes::Output;
use kvsim::replicas::stand_in::StandIn;
use kvsim::scenario::timing::{ClassicPace, Timing};
use kvsim::suite::{self, Progress, Reports};

#[derive(Parser, Debug)]
#[command(
    name = "kvsim",
    version,
    about = "Network simulator and checker for the replicated key-value store"
)]
struct Args {
    /// A scenario file; `all` for every scenario under --config-dir; `calibrate FILE` for
    /// the scenario with the `instant` and `majority-ack` stand-ins and then the replica,
    /// side by side with their ratios; `repeat N FILE` for the scenario N times, with each
    /// run's p99 and how many were under --under-ms; `floor [DIR]` for every scenario
    /// under DIR (configs/floor) in both timings (or --timing's), each run's messages
    /// against the classic floor.
    #[arg(num_args = 1..=3, required = true, value_name = "FILE | all | calibrate FILE | repeat N FILE | floor [DIR]")]
    test: Vec<String>,
    /// The replica program (default: 3700kvstore next to this executable).
    #[arg(short, long)]
    replica: Option<PathBuf>,
    /// Send the replicas' stdout and stderr to /dev/null.
    #[arg(short, long)]
    silence: bool,
    /// Where `all` looks for scenarios (subfolders included).
    #[arg(
        short,
        long = "config-dir",
        alias = "config_directory",
        default_value = "configs"
    )]
    config_dir: PathBuf,
    /// Write every statistic, check and tier as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep each replica's output in its own file in this directory.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds to wait between scenarios in `all` (the classic waits 10), at most a day.
    #[arg(long, default_value_t = 0.0, value_parser = parse_pause)]
    pause: f64,
    /// Write every request attempt as CSV to this file (one scenario only): client, op,
    /// key, value, invoke and response times, ok, request.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Extra environment for the replicas, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Write the run as one self-contained HTML page to this file (one scenario only).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// With `all`: write a page per scenario and an index.html to this directory.
    #[arg(long, value_name = "DIR")]
    html_dir: Option<PathBuf>,
    /// Run kvsim's own stand-in replicas instead of a replica program (measuring sticks,
    /// not stores): `instant` answers at once and replicates nothing, `majority-ack` waits
    /// for a majority to acknowledge each put, `stale-reads` serves stale gets on purpose.
    #[arg(long, value_name = "NAME", value_parser = StandIn::parse)]
    stand_in: Option<StandIn>,
    /// Run kvsim's loop and the replicas on every CPU together, as the classic simulator
    /// does (by default the loop has a CPU of its own and the replicas the others).
    #[arg(long)]
    shared_cpus: bool,
    /// The CPU for kvsim's loop (default: the first it may use); the replicas get the rest.
    #[arg(long, value_name = "CPU")]
    sim_cpu: Option<usize>,
    /// With `repeat`: the p99 (ms) a run is counted under.
    #[arg(long, default_value_t = 5.0, value_name = "MS")]
    under_ms: f64,
    /// Keep the data dirs of durable scenarios (one per replica, under the system's
    /// temporary directory) instead of removing them, and print where they are.
    #[arg(long)]
    keep_data: bool,
    /// Run every scenario durable, as if its file said `"durable": true`: each replica
    /// gets a data dir (to compare a scenario's cost with and without storage).
    #[arg(long)]
    durable: bool,
    /// When requests and faults fire, over the scenario's `"timing"`: `exact` (kvsim's
    /// default: each when it falls due) or `classic` (as the classic simulator's loop:
    /// only when a datagram wakes it or after 100 ms of silence, routing at Python's pace).
    #[arg(long, value_name = "classic|exact", value_parser = Timing::parse)]
    timing: Option<Timing>,
    /// In classic timing, what routing a datagram and making a request cost the loop, in
    /// microseconds (default: what the classic's Python takes, 11,33).
    #[arg(long, value_name = "ROUTE_US,REQUEST_US", value_parser = parse_pace)]
    classic_pace: Option<ClassicPace>,
    /// Watch each CPU with a thread of the highest real-time priority that wakes every
    /// millisecond, and report the moments it woke 1 ms late or more (the machine itself
    /// stalled: on a virtual machine, the host) and the replies in flight during one.
    /// Costs each CPU a wake-up a millisecond, so off by default.
    #[arg(long)]
    stall_probe: bool,
    /// With `floor`: the multiple of its floor each run must send at least.
    #[arg(long, default_value_t = 1.2, value_parser = parse_margin)]
    margin: f64,
}

/// What the positional arguments ask for.
enum Command {
    One(PathBuf),
    All,
    Calibrate(PathBuf),
    Repeat(u32, PathBuf),
    Floor(PathBuf),
}

/// Where `floor` finds its sweep unless told.
const FLOOR_DIR_DEFAULT: &str = "configs/floor";

fn command(test: &[String]) -> Result<Command, String> {
    match test {
        [all] if all == "all" => Ok(Command::All),
        [floor] if floor == "floor" => Ok(Command::Floor(FLOOR_DIR_DEFAULT.into())),
        [file] if file != "calibrate" && file != "repeat" => Ok(Command::One(file.into())),
        [c, file] if c == "calibrate" => Ok(Command::Calibrate(file.into())),
        [f, dir] if f == "floor" => Ok(Command::Floor(dir.into())),
        [r, n, file] if r == "repeat" => match n.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Command::Repeat(n, file.into())),
            _ => Err(format!(
                "repeat wants a number of runs of at least 1, not {n:?}"
            )),
        },
        _ => Err(format!(
            "expected FILE, all, calibrate FILE, repeat N FILE or floor [DIR], not {:?}",
            test.join(" ")
        )),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let command = match command(&args.test) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kvsim: {e}");
            return ExitCode::from(2);
        }
    };
    let placement = match Placement::plan(args.shared_cpus, args.sim_cpu) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kvsim: {e}");
            return ExitCode::from(2);
        }
    };
    let replica = match &args.replica {
        Some(r) => r.clone(),
        None => default_replica(),
    };
    let needs_replica = args.stand_in.is_none() || matches!(command, Command::Calibrate(_));
    if needs_replica && !replica.exists() {
        eprintln!(
            "kvsim: replica program not found: {} (build it, or pass --replica)",
            replica.display()
        );
        return ExitCode::from(2);
    }
    let mut env = Vec::new();
    for kv in &args.env {
        match kv.split_once('=') {
            Some((k, v)) => env.push((k.to_string(), v.to_string())),
            None => {
                eprintln!("kvsim: --env wants KEY=VALUE, got {kv:?}");
                return ExitCode::from(2);
            }
        }
    }
    let output = match (&args.log_dir, args.silence) {
        (Some(dir), _) => Output::Files {
            dir: dir.clone(),
            prefix: String::new(),
        },
        (None, true) => Output::Silence,
        (None, false) => Output::Print,
    };
    let opts = Options {
        replica,
        output,
        warnings: matches!(command, Command::One(_)),
        env,
        seed: args.seed,
        lin_states_max: linearizability::LIN_STATES_MAX_PER_KEY,
        history_csv: args.history.clone(),
        stand_in: args.stand_in,
        page: false,
        placement,
        keep_data: args.keep_data,
        durable: args.durable,
        timing: args.timing,
        classic_pace: args.classic_pace.unwrap_or_else(ClassicPace::measured),
        stall_probe: args.stall_probe,
    };
    let reports = Reports {
        json: args.json.as_deref(),
        html: args.html.as_deref(),
        html_dir: args.html_dir.as_deref(),
    };
    let verdict = match &command {
        Command::All => suite::all(
            &args.config_dir,
            args.pause,
            &opts,
            reports,
            &mut Bar(ProgressBar::hidden()),
        ),
        Command::One(file) => suite::one(file, &opts, reports),
        Command::Calibrate(file) => suite::calibrate(file, &opts, reports),
        Command::Repeat(n, file) => suite::repeat(file, *n, args.under_ms, &opts, reports),
        Command::Floor(dir) => {
            let timings = match args.timing {
                Some(t) => vec![t],
                None => vec![Timing::Exact, Timing::Classic],
            };
            suite::floor(
                dir,
                &timings,
                args.margin,
                &opts,
                reports,
                &mut Bar(ProgressBar::hidden()),
            )
        }
    };
    match verdict {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kvsim: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn default_replica() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("3700kvstore")))
        .unwrap_or_else(|| PathBuf::from("./3700kvstore"))
}

/// The progress bar of `all`: drawing only; what it says comes from `kvsim::suite`. Hidden
/// until the suite starts (nothing is drawn when it stops before any scenario runs).
/// indicatif draws nothing when stderr is no terminal; then lines go to stdout plainly.
struct Bar(ProgressBar);

impl Progress for Bar {
    fn start(&mut self, scenarios: usize) {
        self.0 = ProgressBar::new(scenarios as u64);
        self.0.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        self.0.enable_steady_tick(Duration::from_millis(200));
    }

    fn println(&mut self, line: &str) {
        if self.0.is_hidden() {
            println!("{line}")
        } else {
            self.0.println(line)
        }
    }

    fn running(&mut self, status: &str) {
        self.0.set_message(status.to_string());
    }

    fn suspend<R>(&mut self, run: impl FnOnce() -> R) -> R {
        self.0.suspend(run)
    }

    fn finished_one(&mut self) {
        self.0.inc(1);
    }

    fn finish(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A pause is a finite number of seconds, 0 to a day: `inf` or `nan` would pass a plain
/// `f64` parser and then fail where the pause is slept.
fn parse_pause(text: &str) -> Result<f64, String> {
    const PAUSE_S_MAX: f64 = 86_400.0;
    match text.parse::<f64>() {
        Ok(s) if (0.0..=PAUSE_S_MAX).contains(&s) => Ok(s),
        _ => Err(format!("seconds from 0 to {PAUSE_S_MAX}, not {text:?}")),
    }
}

/// `ROUTE_US,REQUEST_US`: whole microseconds, each at most a second.
fn parse_pace(text: &str) -> Result<ClassicPace, String> {
    const PACE_US_MAX: u64 = 1_000_000;
    let us = |t: &str| match t.trim().parse::<u64>() {
        Ok(v) if v <= PACE_US_MAX => Ok(Duration::from_micros(v)),
        _ => Err(format!("microseconds from 0 to {PACE_US_MAX}, not {t:?}")),
    };
    match text.split_once(',') {
        Some((route, request)) => Ok(ClassicPace {
            route: us(route)?,
            request: us(request)?,
        }),
        None => Err(format!("ROUTE_US,REQUEST_US, not {text:?}")),
    }
}

/// A margin is a finite multiple of the floor, 0 to 100.
fn parse_margin(text: &str) -> Result<f64, String> {
    const MARGIN_MAX: f64 = 100.0;
    match text.parse::<f64>() {
        Ok(m) if (0.0..=MARGIN_MAX).contains(&m) => Ok(m),
        _ => Err(format!("a multiple from 0 to {MARGIN_MAX}, not {text:?}")),
    }
}
