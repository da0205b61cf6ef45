//! The `tests` object: the thresholds the correctness checks use (the fractions of gets and
//! puts that may go unanswered, of gets that may fail to be generated, and of appends that
//! may be batched, which sets the floor on messages between replicas) and the three
//! performance tiers of each benchmark.

use serde_json::Value;

use super::{
    APPENDS_BATCHED_FRAC_DEFAULT, ConfigError, MAX_GET_FAIL_FRAC_DEFAULT,
    MAX_GET_GEN_FAIL_FRAC_DEFAULT, MAX_PUT_FAIL_FRAC_DEFAULT, err, ranged,
};

/// Three thresholds `[bonus, full, partial]`; a value scores a tier when `value < threshold`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tiers {
    pub values: [f64; 3],
    /// The thresholds as written in the file, for the summary lines.
    pub text: [String; 3],
}

#[derive(Debug, Clone, PartialEq)]
pub struct Benchmarks {
    pub total_msgs: Tiers,
    pub failures: Tiers,
    pub duplicates: Tiers,
    pub median_latency: Tiers,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tests {
    pub max_get_fail_frac: f64,
    pub max_put_fail_frac: f64,
    pub max_get_gen_fail_frac: f64,
    pub appends_batched_frac: f64,
    pub benchmarks: Benchmarks,
}

fn parse_tiers(field: &str, value: &Value) -> Result<Tiers, ConfigError> {
    let Value::Array(items) = value else {
        return Err(err(
            field,
            "must be a list of three thresholds [bonus, full, partial]",
        ));
    };
    if items.len() != 3 {
        return Err(err(
            field,
            format!(
                "incorrect number of performance tiers: {} (want 3)",
                items.len()
            ),
        ));
    }
    let mut values = [0.0; 3];
    let mut text: [String; 3] = Default::default();
    for (k, item) in items.iter().enumerate() {
        let Value::Number(n) = item else {
            return Err(err(field, format!("tier {k} is not a number: {item}")));
        };
        values[k] = n
            .as_f64()
            .ok_or_else(|| err(field, "not a usable number"))?;
        text[k] = n.to_string();
    }
    Ok(Tiers { values, text })
}

pub(super) fn parse_tests(value: Option<&Value>) -> Result<Tests, ConfigError> {
    let Some(Value::Object(tests)) = value else {
        return Err(err(
            "tests",
            "no data specified about testing or performance benchmarking",
        ));
    };
    const KNOWN: &[&str] = &[
        "benchmarks",
        "maximum_get_fail_fraction",
        "maximum_put_fail_fraction",
        "maximum_get_generation_fail_fraction",
        "maximum_appends_batched_fraction",
    ];
    if let Some(k) = tests.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(err(format!("tests.{k}"), "unknown field"));
    }
    let frac = |f: &str, d: f64| {
        ranged(tests, f, 0.0, 1.0, d).map_err(|e| err(format!("tests.{f}"), e.message))
    };
    let max_get_fail_frac = frac("maximum_get_fail_fraction", MAX_GET_FAIL_FRAC_DEFAULT)?;
    let max_put_fail_frac = frac("maximum_put_fail_fraction", MAX_PUT_FAIL_FRAC_DEFAULT)?;
    let max_get_gen_fail_frac = frac(
        "maximum_get_generation_fail_fraction",
        MAX_GET_GEN_FAIL_FRAC_DEFAULT,
    )?;
    let appends_batched_frac = frac(
        "maximum_appends_batched_fraction",
        APPENDS_BATCHED_FRAC_DEFAULT,
    )?;
    let Some(Value::Object(b)) = tests.get("benchmarks") else {
        return Err(err(
            "tests.benchmarks",
            "no performance benchmarks specified",
        ));
    };
    const METRICS: [&str; 4] = ["total_msgs", "failures", "duplicates", "median_latency"];
    if let Some(k) = b.keys().find(|k| !METRICS.contains(&k.as_str())) {
        return Err(err(format!("tests.benchmarks.{k}"), "unknown test type"));
    }
    let tiers = |m: &str| -> Result<Tiers, ConfigError> {
        let field = format!("tests.benchmarks.{m}");
        match b.get(m) {
            Some(v) => parse_tiers(&field, v),
            None => Err(err(field, "missing")),
        }
    };
    Ok(Tests {
        max_get_fail_frac,
        max_put_fail_frac,
        max_get_gen_fail_frac,
        appends_batched_frac,
        benchmarks: Benchmarks {
            total_msgs: tiers("total_msgs")?,
            failures: tiers("failures")?,
            duplicates: tiers("duplicates")?,
            median_latency: tiers("median_latency")?,
        },
    })
}
