//! The classic suite: its 17 scenarios in the classic order, with the descriptions the
//! classic `all` prints. `kvsim all` runs them first, in this order, and describes them so.

use super::config::Config;

/// The classic suite in the classic order, with the descriptions the classic `all` prints.
const CLASSIC: [(&str, &str); 17] = [
    ("simple-1", "No drops, no failures, 80% read"),
    ("simple-2", "No drops, no failures, 20% read"),
    ("unreliable-1", "5% drops, no failures, 20% read"),
    ("unreliable-2", "10% drops, no failures, 20% read"),
    ("unreliable-3", "15% drops, no failures, 20% read"),
    ("crash-1", "No drops, 1 replica failure, 20% read"),
    ("crash-2", "No drops, 2 replica failures, 20% read"),
    ("crash-3", "No drops, 1 leader failure, 20% read"),
    ("crash-4", "No drops, 2 leader failures, 20% read"),
    ("partition-1", "No drops, 1 easy partition, 20% read"),
    ("partition-2", "No drops, 2 easy partitions, 20% read"),
    ("partition-3", "No drops, 1 hard partition, 20% read"),
    ("partition-4", "No drops, 2 hard partitions, 20% read"),
    (
        "advanced-1",
        "10% drops, 2 hard partitions and 1 leader failures, 20% read",
    ),
    ("advanced-2", "15% drops, 2 leader failures, 20% read"),
    ("advanced-3", "30% drops, 1 leader failure, 20% read"),
    (
        "advanced-4",
        "10% drops, 3 hard partions and 1 leader kill, 20% read",
    ),
];

/// Where a scenario of this name comes in the classic order; after them all if it is not
/// one of them.
pub fn position(name: &str) -> usize {
    CLASSIC
        .iter()
        .position(|&(classic, _)| classic == name)
        .unwrap_or(CLASSIC.len())
}

/// The classic `all` descriptions, or the file's own.
pub fn describe(cfg: &Config) -> String {
    if let Some(d) = &cfg.description {
        return d.clone();
    }
    match CLASSIC.iter().find(|&&(name, _)| name == cfg.name) {
        Some(&(_, classic)) => classic.to_string(),
        None => cfg.name.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(name: &str, description: Option<&str>) -> Config {
        let mut c = Config::minimal_for_tests(name);
        c.description = description.map(str::to_string);
        c
    }

    #[test]
    fn descriptions_are_the_files_then_the_classics_then_the_name() {
        assert_eq!(
            describe(&config("crash-3", None)),
            "No drops, 1 leader failure, 20% read"
        );
        assert_eq!(describe(&config("crash-3", Some("mine"))), "mine");
        assert_eq!(describe(&config("chaos", None)), "chaos");
    }
}
