//! Experiment knobs: environment variables that override one [`Config`] field each, so that
//! a measurement can turn a mechanism off (batching, pipelining, coalescing...) in a
//! replica it cannot pass flags to (the classic simulator launches replicas with exactly
//! `<port> <id> <peers>`; `kvsim --env KEY=VALUE` reaches them). Unset means the tuned
//! default.
//!
//! Every knob is declared once, in [`KNOBS`]: its name, what it does, and the field it
//! sets. Reading the environment is the binary's job; this module is handed a lookup.

use raft::Config;
use raft::time::Span;

/// What a knob's value is, and so how its text is read.
#[derive(Clone, Copy, Debug)]
enum Setter {
    /// A whole number of at least 1.
    Count(fn(&mut Config, u64)),
    /// `0` or `1`.
    Flag(fn(&mut Config, bool)),
}

/// One experiment knob.
#[derive(Debug)]
pub struct Knob {
    /// The environment variable.
    pub name: &'static str,
    /// What it changes, for documentation and error messages.
    pub what: &'static str,
    setter: Setter,
}

/// Every knob there is.
pub const KNOBS: [Knob; 10] = [
    Knob {
        name: "KV_APPEND_ENTRIES_MAX",
        what: "entries per append (`Config::append_entries_max`; 1 turns batching off)",
        setter: Setter::Count(|c, n| {
            c.append_entries_max = usize::try_from(n).unwrap_or(usize::MAX)
        }),
    },
    Knob {
        name: "KV_INFLIGHT_APPENDS_MAX",
        what: "appends in flight per follower (`Config::inflight_appends_max`; 1 is stop-and-wait)",
        setter: Setter::Count(|c, n| {
            c.inflight_appends_max = usize::try_from(n).unwrap_or(usize::MAX)
        }),
    },
    Knob {
        name: "KV_REPLICATE_TO_QUORUM_ONLY",
        what: "send new entries at once to a quorum only (1) or to every follower (0)",
        setter: Setter::Flag(|c, on| c.replicate_to_quorum_only = on),
    },
    Knob {
        name: "KV_COALESCE_APPENDS",
        what: "hold new entries while a quorum answers a recent round (1), or send every batch of input at once (0)",
        setter: Setter::Flag(|c, on| c.coalesce_appends = on),
    },
    Knob {
        name: "KV_MESSAGE_FLOOR",
        what: "keep the classic floor on messages, batching less when short of it (1), or batch freely (0)",
        setter: Setter::Flag(|c, on| c.message_floor = on),
    },
    Knob {
        name: "KV_FLOOR_PUTS_PER_S_MAX",
        what: "puts per second that add to the floor on messages (`Config::floor_puts_per_s_max`)",
        setter: Setter::Count(|c, n| c.floor_puts_per_s_max = n),
    },
    Knob {
        name: "KV_RETRANSMIT_TIMEOUT_MS",
        what: "first retransmission of an append to a follower that only lags (`Config::retransmit_timeout`)",
        setter: Setter::Count(|c, ms| c.retransmit_timeout = Span::from_millis(ms)),
    },
    Knob {
        name: "KV_REPLICATION_STALL_TIMEOUT_US",
        what: "the longest uncommitted entries wait for the chosen followers (`Config::replication_stall_timeout`)",
        setter: Setter::Count(|c, us| c.replication_stall_timeout = Span::from_micros(us)),
    },
    Knob {
        name: "KV_APPLY_BATCH",
        what: "committed entries waiting before they are applied unless a read comes first (`Config::apply_batch`; 1 applies each as it commits)",
        setter: Setter::Count(|c, n| c.apply_batch = usize::try_from(n).unwrap_or(usize::MAX)),
    },
    Knob {
        name: "KV_COMPACTION_LOG_BYTES",
        what: "bytes of committed entries the log holds before the state machine is snapshotted and the log compacted (`Config::compaction_log_bytes`)",
        setter: Setter::Count(|c, n| {
            c.compaction_log_bytes = usize::try_from(n).unwrap_or(usize::MAX)
        }),
    },
];

/// The knobs that were set, each with its value (a flag as 0 or 1), in [`KNOBS`] order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    set: Vec<(usize, u64)>,
}

impl Tuning {
    /// Reads every knob through `lookup` (the environment, in the binary); a set but
    /// malformed one is an error naming it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Tuning, String> {
        let mut set = Vec::new();
        for (i, knob) in KNOBS.iter().enumerate() {
            let Some(text) = lookup(knob.name) else {
                continue;
            };
            let value = match knob.setter {
                Setter::Count(_) => match text.parse::<u64>() {
                    Ok(n) if n >= 1 => n,
                    _ => {
                        return Err(format!(
                            "{} must be a whole number of at least 1, not {text:?}",
                            knob.name
                        ));
                    }
                },
                Setter::Flag(_) => match text.as_str() {
                    "1" => 1,
                    "0" => 0,
                    _ => return Err(format!("{} must be 0 or 1, not {text:?}", knob.name)),
                },
            };
            set.push((i, value));
        }
        Ok(Tuning { set })
    }

    /// The names and values of the knobs that were set, for the start-up log line.
    pub fn set_knobs(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.set.iter().map(|&(i, value)| (KNOBS[i].name, value))
    }

    pub fn apply(&self, config: &mut Config) {
        for &(i, value) in &self.set {
            match KNOBS[i].setter {
                Setter::Count(set) => set(config, value),
                Setter::Flag(set) => set(config, value == 1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::NodeId;

    fn from(pairs: &[(&str, &str)]) -> Result<Tuning, String> {
        Tuning::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    fn config() -> Config {
        Config::new(NodeId(0), vec![NodeId(1)], 1)
    }

    #[test]
    fn unset_changes_nothing_and_set_knobs_apply() {
        assert_eq!(from(&[]), Ok(Tuning::default()));
        let tuning = from(&[
            ("KV_APPEND_ENTRIES_MAX", "1"),
            ("KV_INFLIGHT_APPENDS_MAX", "2"),
            ("KV_REPLICATE_TO_QUORUM_ONLY", "0"),
            ("KV_COALESCE_APPENDS", "0"),
            ("KV_MESSAGE_FLOOR", "0"),
            ("KV_FLOOR_PUTS_PER_S_MAX", "50"),
            ("KV_RETRANSMIT_TIMEOUT_MS", "150"),
            ("KV_REPLICATION_STALL_TIMEOUT_US", "700"),
            ("KV_APPLY_BATCH", "1"),
            ("KV_COMPACTION_LOG_BYTES", "4096"),
        ])
        .unwrap();
        let mut config = config();
        tuning.apply(&mut config);
        assert_eq!(
            (
                config.append_entries_max,
                config.inflight_appends_max,
                config.replicate_to_quorum_only,
                config.coalesce_appends,
                config.message_floor,
                config.floor_puts_per_s_max,
                config.retransmit_timeout,
                config.replication_stall_timeout,
                config.apply_batch,
                config.compaction_log_bytes
            ),
            (
                1,
                2,
                false,
                false,
                false,
                50,
                Span::from_millis(150),
                Span(700),
                1,
                4096
            )
        );
        assert_eq!(tuning.set_knobs().count(), KNOBS.len());
    }

    #[test]
    fn each_knob_changes_the_config() {
        // A knob whose setter wrote the wrong field, or none, would leave the config as
        // the default: set each alone to a value no default has and compare.
        let default = format!("{:?}", config());
        for knob in &KNOBS {
            let value = match knob.setter {
                Setter::Count(_) => "3",
                Setter::Flag(_) => "0",
            };
            let mut changed = config();
            from(&[(knob.name, value)]).unwrap().apply(&mut changed);
            assert_ne!(
                format!("{changed:?}"),
                default,
                "{} changed nothing",
                knob.name
            );
        }
    }

    #[test]
    fn malformed_knobs_are_errors_that_name_them() {
        for (name, value) in [
            ("KV_APPEND_ENTRIES_MAX", "0"),
            ("KV_APPEND_ENTRIES_MAX", "many"),
            ("KV_INFLIGHT_APPENDS_MAX", "-1"),
            ("KV_REPLICATE_TO_QUORUM_ONLY", "yes"),
            ("KV_COALESCE_APPENDS", "2"),
            ("KV_APPLY_BATCH", "0"),
        ] {
            let error = from(&[(name, value)]).unwrap_err();
            assert!(error.contains(name), "{error}");
        }
    }
}
