//! The JSON report (`--json FILE`): every statistic, check and tier of one or several runs,
//! as `Outcome` serializes them; a run that could not run is its scenario and the error.

use std::path::Path;

use super::table::Row;

/// The JSON report of one or several runs.
pub fn json(rows: &[Row]) -> serde_json::Value {
    let runs: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| match &r.outcome {
            Ok(o) => serde_json::to_value(o).unwrap_or(serde_json::Value::Null),
            Err(e) => serde_json::json!({ "scenario": r.scenario, "error": e }),
        })
        .collect();
    serde_json::json!({ "runs": runs })
}

/// Writes the JSON report of `rows` to `path`.
pub fn write_json(path: &Path, rows: &[Row]) -> Result<(), String> {
    let text = serde_json::to_string_pretty(&json(rows)).map_err(|e| e.to_string())?;
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
