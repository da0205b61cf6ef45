//! `kvsim`: run one scenario (`kvsim configs/classic/simple-1.json`) or every scenario in a
//! directory (`kvsim all`). See `kvsim` for what it does.

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use kvsim::procs::Output;
use kvsim::report::{self, Row};
use kvsim::{Config, Options, checker};

#[derive(Parser, Debug)]
#[command(
    name = "kvsim",
    version,
    about = "Network simulator and checker for the replicated key-value store"
)]
struct Args {
    /// A scenario file, or `all` for every scenario under --config-dir.
    test: String,
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
    /// Seconds to wait between scenarios in `all` (the classic waits 10).
    #[arg(long, default_value_t = 0.0)]
    pause: f64,
    /// Write every request attempt as CSV to this file (one scenario only): client, op,
    /// key, value, invoke and response times, ok, request.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Extra environment for the replicas, KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let replica = match &args.replica {
        Some(r) => r.clone(),
        None => default_replica(),
    };
    if !replica.exists() {
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
        warnings: args.test != "all",
        env,
        seed: args.seed,
        lin_states_max: checker::LIN_STATES_MAX_PER_KEY,
        history_csv: args.history.clone(),
    };
    if args.test == "all" {
        if opts.history_csv.is_some() {
            eprintln!("kvsim: --history takes one scenario, not `all`");
            return ExitCode::from(2);
        }
        return run_all(&args, &opts);
    }
    if let Some(path) = &opts.history_csv {
        // Found out now, not after the run it would record.
        if let Err(e) = std::fs::File::create(path) {
            eprintln!("kvsim: cannot write {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    run_one(&args, &opts)
}

fn default_replica() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("3700kvstore")))
        .unwrap_or_else(|| PathBuf::from("./3700kvstore"))
}

fn load(path: &Path) -> Result<Config, String> {
    Config::load(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn write_json(args: &Args, rows: &[Row]) -> Result<(), String> {
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report::json(rows)).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

fn run_one(args: &Args, opts: &Options) -> ExitCode {
    let cfg = match load(Path::new(&args.test)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kvsim: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = kvsim::pick_seed(&cfg, opts);
    println!("kvsim: scenario {} with seed {seed}", cfg.name);
    let outcome = match kvsim::run::run(&cfg, opts, seed) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kvsim: {e}");
            return ExitCode::from(3);
        }
    };
    print!("{}", report::summary(&outcome, &cfg));
    let passed = outcome.passed;
    let rows = [Row {
        scenario: cfg.name.clone(),
        outcome: Ok(outcome),
    }];
    if let Err(e) = write_json(args, &rows) {
        eprintln!("kvsim: {e}");
        return ExitCode::from(3);
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_all(args: &Args, opts: &Options) -> ExitCode {
    let paths = match kvsim::find_configs(&args.config_dir) {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            eprintln!(
                "kvsim: no *.json scenarios under {}",
                args.config_dir.display()
            );
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("kvsim: cannot read {}: {e}", args.config_dir.display());
            return ExitCode::from(2);
        }
    };
    // Load them all first: a bad file stops us before any replica starts.
    let mut configs = Vec::new();
    for p in &paths {
        match load(p) {
            Ok(c) => configs.push(c),
            Err(e) => {
                eprintln!("kvsim: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let total_s: f64 = configs.iter().map(Config::total_s).sum();
    let bar = ProgressBar::new(configs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    // indicatif draws nothing when stderr is no terminal; then lines go to stdout plainly.
    let say = |bar: &ProgressBar, line: String| {
        if bar.is_hidden() {
            println!("{line}")
        } else {
            bar.println(line)
        }
    };
    say(
        &bar,
        format!(
            "kvsim: {} scenarios, about {:.0} s of simulated time",
            configs.len(),
            total_s
        ),
    );
    let mut rows = Vec::new();
    for (k, cfg) in configs.iter().enumerate() {
        let seed = kvsim::pick_seed(cfg, opts);
        bar.set_message(format!(
            "{} ({:.0} s, seed {seed})",
            cfg.name,
            cfg.total_s()
        ));
        let outcome = bar
            .suspend(|| kvsim::run::run(cfg, opts, seed))
            .map_err(|e| e.to_string());
        let line = match &outcome {
            Ok(o) if o.passed => {
                let tiers: Vec<String> = o.tiers.iter().map(|t| t.tier.to_string()).collect();
                format!(
                    "\t{:<60}\t[PASS]\tPerformance Tiers: {}",
                    describe(cfg),
                    tiers.join(" ")
                )
            }
            Ok(o) => {
                let failed: Vec<&str> = o
                    .checks
                    .iter()
                    .filter(|c| !c.passed)
                    .map(|c| c.message.as_str())
                    .collect();
                format!(
                    "\t{:<60}\t[FAIL]\n\t\t{}",
                    describe(cfg),
                    failed.join("\n\t\t")
                )
            }
            Err(e) => format!("\t{:<60}\t[ERROR] {e}", describe(cfg)),
        };
        say(&bar, format!("{}: {line}", cfg.name));
        rows.push(Row {
            scenario: cfg.name.clone(),
            outcome,
        });
        bar.inc(1);
        if args.pause > 0.0 && k + 1 < configs.len() {
            std::thread::sleep(Duration::from_secs_f64(args.pause));
        }
    }
    bar.finish_and_clear();
    print!("{}", report::table(&rows));
    if let Err(e) = write_json(args, &rows) {
        eprintln!("kvsim: {e}");
        return ExitCode::from(3);
    }
    if rows
        .iter()
        .all(|r| r.outcome.as_ref().is_ok_and(|o| o.passed))
    {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The classic `all` descriptions, or the file's own.
fn describe(cfg: &Config) -> String {
    if let Some(d) = &cfg.description {
        return d.clone();
    }
    let classic = match cfg.name.as_str() {
        "simple-1" => "No drops, no failures, 80% read",
        "simple-2" => "No drops, no failures, 20% read",
        "unreliable-1" => "5% drops, no failures, 20% read",
        "unreliable-2" => "10% drops, no failures, 20% read",
        "unreliable-3" => "15% drops, no failures, 20% read",
        "crash-1" => "No drops, 1 replica failure, 20% read",
        "crash-2" => "No drops, 2 replica failures, 20% read",
        "crash-3" => "No drops, 1 leader failure, 20% read",
        "crash-4" => "No drops, 2 leader failures, 20% read",
        "partition-1" => "No drops, 1 easy partition, 20% read",
        "partition-2" => "No drops, 2 easy partitions, 20% read",
        "partition-3" => "No drops, 1 hard partition, 20% read",
        "partition-4" => "No drops, 2 hard partitions, 20% read",
        "advanced-1" => "10% drops, 2 hard partitions and 1 leader failures, 20% read",
        "advanced-2" => "15% drops, 2 leader failures, 20% read",
        "advanced-3" => "30% drops, 1 leader failure, 20% read",
        "advanced-4" => "10% drops, 3 hard partions and 1 leader kill, 20% read",
        _ => "",
    };
    if classic.is_empty() {
        cfg.name.clone()
    } else {
        classic.to_string()
    }
}
