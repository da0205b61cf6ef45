//! Scenario files: the classic simulator's format, plus optional fields of our own.
//!
//! A classic config (only classic fields) means exactly the classic behaviour. Validation
//! follows the classic loader's ranges; every error names the offending field.
//!
//! This file reads the top level of a file and holds the field helpers and their error; the
//! `events` list and the `tests` object each have their own module, as each has its own
//! fields, rules and types.

mod events;
mod thresholds;

use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

use crate::scenario::timing::Timing;
use events::parse_events;
use thresholds::parse_tests;

pub use events::{Event, EventKind, OneWay, Restarted};
pub use thresholds::{Benchmarks, Tests, Tiers};

/// Classic defaults.
pub const MIX_DEFAULT: f64 = 0.8;
pub const START_WAIT_S_DEFAULT: f64 = 5.0;
pub const END_WAIT_S_DEFAULT: f64 = 2.0;
pub const MAX_PACKETS_DEFAULT: u64 = 20_000;
pub const MAX_PACKETS_MAX: u64 = 100_000_000;
pub const MAX_GET_FAIL_FRAC_DEFAULT: f64 = 0.5;
pub const MAX_PUT_FAIL_FRAC_DEFAULT: f64 = 0.5;
pub const MAX_GET_GEN_FAIL_FRAC_DEFAULT: f64 = 0.1;
pub const APPENDS_BATCHED_FRAC_DEFAULT: f64 = 0.5;
pub const CLIENTS_DEFAULT: usize = 8;
pub const CLIENTS_MAX: usize = 1000;

/// A config that could not be used: which field, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        message: message.into(),
    }
}

/// A parsed, validated scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// File stem, e.g. `simple-1`.
    pub name: String,
    pub description: Option<String>,
    pub lifetime_s: f64,
    pub replicas: usize,
    pub requests: u64,
    pub mix: f64,
    pub drops: f64,
    /// `None`: the file gave none; the run picks one and prints it.
    pub seed: Option<u64>,
    pub start_wait_s: f64,
    pub end_wait_s: f64,
    pub max_packets: u64,
    pub events: Vec<Event>,
    pub tests: Tests,
    // Beyond the classic format (all optional).
    pub clients: usize,
    /// `Some(k)`: every client reads and writes a pool of `k` shared keys.
    pub shared_keys: Option<usize>,
    /// Probability a replica-to-replica datagram is delivered twice.
    pub duplicate: f64,
    /// Probability a replica-to-replica datagram is held back a random delay.
    pub reorder: f64,
    pub reorder_delay_ms_max: f64,
    /// Each replica gets a data dir of its own for the run (`--data-dir`), so that it can be
    /// restarted.
    pub durable: bool,
    /// How the run times requests and faults (`None`: the file does not say; `--timing`
    /// or exact decides).
    pub timing: Option<Timing>,
}

impl Config {
    /// Total wall time of the run.
    pub fn total_s(&self) -> f64 {
        self.start_wait_s + self.lifetime_s + self.end_wait_s
    }

    /// True when the file uses only classic fields and events.
    pub fn is_classic(&self) -> bool {
        self.clients == CLIENTS_DEFAULT
            && self.shared_keys.is_none()
            && self.duplicate == 0.0
            && self.reorder == 0.0
            && !self.durable
            && self.timing.is_none()
            && self.events.iter().all(|e| {
                matches!(
                    e.kind,
                    EventKind::KillLeader
                        | EventKind::KillNonLeader
                        | EventKind::PartEasy
                        | EventKind::PartHard
                        | EventKind::PartEnd
                )
            })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("<file>", format!("cannot read {}: {e}", path.display())))?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        Config::parse(&name, &text)
    }

    /// Reads and validates a scenario. Fields are checked in a fixed order (the classic
    /// loader's first), so a file with several errors always reports the same one.
    pub fn parse(name: &str, text: &str) -> Result<Config, ConfigError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| err("<file>", format!("not valid JSON: {e}")))?;
        let Value::Object(fields) = value else {
            return Err(err("<file>", "the top level must be a JSON object"));
        };
        check_field_names(&fields)?;
        let size = Size::parse(&fields)?;
        let seed = seed(&fields)?;
        let mix = ranged(&fields, "mix", 0.0, 1.0, MIX_DEFAULT)?;
        let start_wait_s = ranged(
            &fields,
            "start_wait",
            0.0,
            size.lifetime_s,
            START_WAIT_S_DEFAULT,
        )?;
        let end_wait_s = ranged(
            &fields,
            "end_wait",
            0.0,
            size.lifetime_s,
            END_WAIT_S_DEFAULT,
        )?;
        let drops = ranged(&fields, "drops", 0.0, 1.0, 0.0)?;
        let max_packets = ranged(
            &fields,
            "max_packets",
            size.requests,
            MAX_PACKETS_MAX as f64,
            MAX_PACKETS_DEFAULT as f64,
        )? as u64;
        let durable = durable(&fields)?;
        let timing = timing(&fields)?;
        let events = parse_events(fields.get("events"), size.lifetime_s, durable)?;
        let tests = parse_tests(fields.get("tests"))?;
        let description = description(&fields)?;
        let clients = ranged(
            &fields,
            "clients",
            1.0,
            CLIENTS_MAX as f64,
            CLIENTS_DEFAULT as f64,
        )?
        .trunc() as usize;
        let shared_keys = shared_keys(&fields)?;
        let duplicate = ranged(&fields, "duplicate", 0.0, 1.0, 0.0)?;
        let reorder = ranged(&fields, "reorder", 0.0, 1.0, 0.0)?;
        let reorder_delay_ms_max = ranged(&fields, "reorder_delay_ms", 0.0, 10_000.0, 5.0)?;
        Ok(Config {
            name: name.to_string(),
            description,
            lifetime_s: size.lifetime_s,
            replicas: size.replicas as usize,
            requests: size.requests as u64,
            mix,
            drops,
            seed,
            start_wait_s,
            end_wait_s,
            max_packets,
            events,
            tests,
            clients,
            shared_keys,
            duplicate,
            reorder,
            reorder_delay_ms_max,
            durable,
            timing,
        })
    }
}

/// Every field a scenario may have: the classic's, then ours.
const FIELDS_KNOWN: &[&str] = &[
    "lifetime",
    "replicas",
    "requests",
    "mix",
    "drops",
    "seed",
    "start_wait",
    "end_wait",
    "max_packets",
    "events",
    "tests",
    // The classic suite puts this one at the top level, where the classic loader
    // ignores it; so do we.
    "maximum_get_generation_fail_fraction",
    "description",
    "clients",
    "shared_keys",
    "duplicate",
    "reorder",
    "reorder_delay_ms",
    "durable",
    "timing",
];

const FIELDS_REQUIRED: [&str; 4] = ["lifetime", "replicas", "requests", "tests"];

/// A misspelt field would otherwise be a default silently taken.
fn check_field_names(fields: &Map<String, Value>) -> Result<(), ConfigError> {
    if let Some(unknown) = fields
        .keys()
        .find(|field| !FIELDS_KNOWN.contains(&field.as_str()))
    {
        return Err(err(unknown, "unknown field"));
    }
    match FIELDS_REQUIRED
        .iter()
        .find(|field| !fields.contains_key(**field))
    {
        Some(missing) => Err(err(*missing, "required field is missing")),
        None => Ok(()),
    }
}

/// How long a run lasts and how much it holds: the fields every other range depends on.
/// Whole numbers, as the classic loader truncates them with `int()`; kept as `f64` until
/// the ranges that depend on them are checked.
struct Size {
    lifetime_s: f64,
    replicas: f64,
    requests: f64,
}

impl Size {
    fn parse(fields: &Map<String, Value>) -> Result<Size, ConfigError> {
        let lifetime_s = number(fields, "lifetime")?.unwrap_or(0.0).trunc();
        if lifetime_s < 5.0 {
            return Err(err(
                "lifetime",
                "simulation lifetime must be at least 5 seconds",
            ));
        }
        let replicas = number(fields, "replicas")?.unwrap_or(0.0).trunc();
        if !(3.0..=21.0).contains(&replicas) {
            return Err(err(
                "replicas",
                "number of replicas must be at least 3 and at most 21",
            ));
        }
        let requests = number(fields, "requests")?.unwrap_or(0.0).trunc();
        if requests < 0.0 {
            return Err(err("requests", "number of requests cannot be negative"));
        }
        Ok(Size {
            lifetime_s,
            replicas,
            requests,
        })
    }
}

/// A number is the seed itself (a negative one as its bits); a string is hashed, so a
/// scenario can name its seed.
fn seed(fields: &Map<String, Value>) -> Result<Option<u64>, ConfigError> {
    match fields.get("seed") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some(match n.as_u64() {
            Some(seed) => seed,
            None => n
                .as_i64()
                .map(|negative| negative as u64)
                .unwrap_or_else(|| hash_str(&n.to_string())),
        })),
        Some(Value::String(text)) => Ok(Some(hash_str(text))),
        Some(_) => Err(err("seed", "must be an integer or a string")),
    }
}

fn durable(fields: &Map<String, Value>) -> Result<bool, ConfigError> {
    match fields.get("durable") {
        None => Ok(false),
        Some(Value::Bool(durable)) => Ok(*durable),
        Some(other) => Err(err(
            "durable",
            format!("must be true or false, found {other}"),
        )),
    }
}

fn timing(fields: &Map<String, Value>) -> Result<Option<Timing>, ConfigError> {
    match fields.get("timing") {
        None => Ok(None),
        Some(Value::String(name)) => Ok(Some(Timing::parse(name).map_err(|e| err("timing", e))?)),
        Some(other) => Err(err(
            "timing",
            format!("must be \"classic\" or \"exact\", found {other}"),
        )),
    }
}

fn description(fields: &Map<String, Value>) -> Result<Option<String>, ConfigError> {
    match fields.get("description") {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(_) => Err(err("description", "must be a string")),
    }
}

fn shared_keys(fields: &Map<String, Value>) -> Result<Option<usize>, ConfigError> {
    match number(fields, "shared_keys")? {
        None => Ok(None),
        Some(keys) if (1.0..=1_000_000.0).contains(&keys) && keys.fract() == 0.0 => {
            Ok(Some(keys as usize))
        }
        Some(_) => Err(err(
            "shared_keys",
            "must be a whole number from 1 to 1000000",
        )),
    }
}

fn hash_str(s: &str) -> u64 {
    // FNV-1a: stable across runs and platforms, unlike the std hasher.
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    })
}

fn number(conf: &Map<String, Value>, field: &str) -> Result<Option<f64>, ConfigError> {
    match conf.get(field) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(Some)
            .ok_or_else(|| err(field, "not a usable number")),
        Some(other) => Err(err(field, format!("must be a number, found {other}"))),
    }
}

fn ranged(
    conf: &Map<String, Value>,
    field: &str,
    low: f64,
    high: f64,
    default: f64,
) -> Result<f64, ConfigError> {
    match number(conf, field)? {
        None => Ok(default),
        Some(v) if v >= low && v <= high => Ok(v),
        Some(v) => Err(err(
            field,
            format!("{v} is out of range: must be between {low} and {high}"),
        )),
    }
}

#[cfg(test)]
impl Config {
    /// The smallest valid scenario (3 replicas, 1 request in 5 s), for tests of what is
    /// made from a config.
    pub(crate) fn minimal_for_tests(name: &str) -> Config {
        Config::parse(
            name,
            r#"{"lifetime": 5, "replicas": 3, "requests": 1, "tests": {"benchmarks": {
                "total_msgs": [1, 2, 3], "failures": [1, 2, 3], "duplicates": [1, 2, 3],
                "median_latency": [1, 2, 3]}}}"#,
        )
        .expect("the minimal scenario is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{
        "lifetime": 30, "replicas": 5, "requests": 300, "mix": 0.2, "drops": 0.1, "end_wait": 5,
        "events": [{"type": "part_hard", "time": 5}, {"type": "part_end", "time": 8},
                   {"type": "kill_leader", "time": 25}],
        "tests": {"benchmarks": {"total_msgs": [1000, 4000, 5000], "failures": [1, 10, 100],
                  "duplicates": [0, 6, 10], "median_latency": [0.0002, 0.005, 0.1]}},
        "maximum_get_generation_fail_fraction": 0.2
    }"#;

    fn with(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<Config, ConfigError> {
        let Value::Object(mut m) = serde_json::from_str(GOOD).unwrap() else {
            unreachable!()
        };
        edit(&mut m);
        Config::parse("t", &Value::Object(m).to_string())
    }

    #[test]
    fn classic_config_gets_classic_defaults() {
        let c = Config::parse("advanced-4", GOOD).unwrap();
        assert_eq!(c.replicas, 5);
        assert_eq!(c.start_wait_s, 5.0);
        assert_eq!(c.end_wait_s, 5.0);
        assert_eq!(c.max_packets, 20_000);
        assert_eq!(
            c.tests.max_get_gen_fail_frac, 0.1,
            "the top-level field is ignored, as classic"
        );
        assert_eq!(c.tests.benchmarks.median_latency.text[0], "0.0002");
        assert_eq!(c.total_s(), 40.0);
        assert!(c.is_classic());
    }

    #[test]
    fn errors_name_the_field() {
        type Edit = Box<dyn FnOnce(&mut Map<String, Value>)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|m| {
                    m.remove("lifetime");
                }),
                "lifetime",
            ),
            (
                Box::new(|m| {
                    m.insert("timing".into(), "python".into());
                }),
                "timing",
            ),
            (
                Box::new(|m| {
                    m.insert("timing".into(), 100.into());
                }),
                "timing",
            ),
            (
                Box::new(|m| {
                    m.insert("lifetime".into(), 4.into());
                }),
                "lifetime",
            ),
            (
                Box::new(|m| {
                    m.insert("replicas".into(), 22.into());
                }),
                "replicas",
            ),
            (
                Box::new(|m| {
                    m.insert("mix".into(), 1.5.into());
                }),
                "mix",
            ),
            (
                Box::new(|m| {
                    m.insert("drops".into(), "lots".into());
                }),
                "drops",
            ),
            (
                Box::new(|m| {
                    m.insert("colour".into(), 1.into());
                }),
                "colour",
            ),
            (
                Box::new(|m| {
                    m["events"][0]["type"] = "explode".into();
                }),
                "events[0].type",
            ),
            (
                Box::new(|m| {
                    m["events"][1]["time"] = 31.into();
                }),
                "events[1].time",
            ),
            (
                Box::new(|m| {
                    m["tests"]["benchmarks"]["failures"] = serde_json::json!([1, 2]);
                }),
                "tests.benchmarks.failures",
            ),
            (
                Box::new(|m| {
                    m["tests"]["benchmarks"]["speed"] = serde_json::json!([1, 2, 3]);
                }),
                "tests.benchmarks.speed",
            ),
            (
                Box::new(|m| {
                    m["tests"]["benchmarks"]
                        .as_object_mut()
                        .unwrap()
                        .remove("duplicates");
                }),
                "tests.benchmarks.duplicates",
            ),
            (
                Box::new(|m| {
                    m["tests"]["maximum_put_fail_fraction"] = 2.into();
                }),
                "tests.maximum_put_fail_fraction",
            ),
            (
                Box::new(|m| {
                    m.insert("max_packets".into(), 10.into());
                }),
                "max_packets",
            ),
        ];
        for (edit, field) in cases {
            let e = with(edit).unwrap_err();
            assert_eq!(e.field, field, "{e}");
        }
        assert_eq!(Config::parse("t", "[1]").unwrap_err().field, "<file>");
        assert_eq!(Config::parse("t", "{").unwrap_err().field, "<file>");
    }

    #[test]
    fn extra_fields_and_events() {
        let c = with(|m| {
            m.insert("clients".into(), 32.into());
            m.insert("shared_keys".into(), 4.into());
            m.insert("duplicate".into(), 0.05.into());
            m["events"] = serde_json::json!([
                {"type": "pause_leader", "time": 3, "duration": 2},
                {"type": "part_oneway", "time": 10, "direction": "from_leader"},
                {"type": "part_flap", "time": 12, "period": 1, "until": 15}
            ]);
        })
        .unwrap();
        assert!(!c.is_classic());
        assert_eq!(c.timing, None);
        assert_eq!(c.clients, 32);
        assert_eq!(c.shared_keys, Some(4));
        assert_eq!(c.events[0].kind, EventKind::PauseLeader { duration_s: 2.0 });
        assert_eq!(c.events[1].kind, EventKind::PartOneWay(OneWay::FromLeader));
        // 12 cut, 13 heal, 14 cut, 15 heal.
        let flap: Vec<_> = c.events[2..]
            .iter()
            .map(|e| (e.time_s, e.kind.clone()))
            .collect();
        assert_eq!(
            flap,
            vec![
                (12.0, EventKind::PartHard),
                (13.0, EventKind::PartEnd),
                (14.0, EventKind::PartHard),
                (15.0, EventKind::PartEnd)
            ]
        );
        let e = with(|m| m["events"] = serde_json::json!([{"type": "pause_leader", "time": 3}]))
            .unwrap_err();
        assert_eq!(e.field, "events[0].duration");
        for (text, timing) in [("classic", Timing::Classic), ("exact", Timing::Exact)] {
            let c = with(|m| {
                m.insert("timing".into(), text.into());
            })
            .unwrap();
            assert_eq!(c.timing, Some(timing));
            assert!(!c.is_classic(), "a field of kvsim's own");
        }
    }

    #[test]
    fn durable_scenarios_and_restarts() {
        assert!(!Config::parse("t", GOOD).unwrap().durable);
        let c = with(|m| {
            m.insert("durable".into(), true.into());
            m["events"] = serde_json::json!([
                {"type": "restart_leader", "time": 3, "duration": 1.5},
                {"type": "restart_non_leader", "time": 10, "duration": 2},
                {"type": "restart_all", "time": 20, "duration": 0.5}
            ]);
        })
        .unwrap();
        assert!(c.durable);
        assert!(!c.is_classic());
        let kinds: Vec<_> = c.events.iter().map(|e| e.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                EventKind::Restart {
                    who: Restarted::Leader,
                    duration_s: 1.5
                },
                EventKind::Restart {
                    who: Restarted::NonLeader,
                    duration_s: 2.0
                },
                EventKind::Restart {
                    who: Restarted::All,
                    duration_s: 0.5
                },
            ]
        );
        // Durable alone is no classic config either: the replicas get another command line.
        assert!(
            !with(|m| {
                m.insert("durable".into(), true.into());
            })
            .unwrap()
            .is_classic()
        );
    }

    #[test]
    fn restart_errors_name_the_field() {
        let restart = |event: Value, durable: Option<Value>| {
            with(|m| {
                if let Some(d) = durable {
                    m.insert("durable".into(), d);
                }
                m["events"] = serde_json::json!([{"type": "part_end", "time": 1}, event]);
            })
            .unwrap_err()
        };
        use serde_json::json;
        let cases = [
            // Without a disk, a restart would lose acknowledged puts.
            (
                json!({"type": "restart_leader", "time": 3, "duration": 1}),
                None,
                "events[1].type",
            ),
            (
                json!({"type": "restart_all", "time": 3, "duration": 1}),
                Some(false.into()),
                "events[1].type",
            ),
            (
                json!({"type": "restart_non_leader", "time": 3}),
                Some(true.into()),
                "events[1].duration",
            ),
            (
                json!({"type": "restart_leader", "time": 3, "duration": -1}),
                Some(true.into()),
                "events[1].duration",
            ),
            (
                json!({"type": "restart_leader", "time": 3, "duration": 0}),
                Some(true.into()),
                "events[1].duration",
            ),
            (
                json!({"type": "restart_all", "time": 3, "duration": "1"}),
                Some(true.into()),
                "events[1].duration",
            ),
            (
                json!({"type": "restart_all", "time": 31, "duration": 1}),
                Some(true.into()),
                "events[1].time",
            ),
            (
                json!({"type": "restart_all", "time": 3, "duration": 1, "who": 2}),
                Some(true.into()),
                "events[1].who",
            ),
            (
                json!({"type": "part_end", "time": 3}),
                Some("yes".into()),
                "durable",
            ),
        ];
        for (event, durable, field) in cases {
            let e = restart(event.clone(), durable);
            assert_eq!(e.field, field, "{event}: {e}");
            assert!(!e.to_string().contains('\n'), "{e}");
        }
        let e = restart(
            serde_json::json!({"type": "restart_leader", "time": 3, "duration": 1}),
            None,
        );
        assert!(e.message.contains("\"durable\": true"), "{e}");
    }
}
