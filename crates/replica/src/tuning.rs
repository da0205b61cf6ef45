//! Experiment knobs for the replica, read from the environment (the classic simulator
//! passes exactly `<port> <id> <peers>`, so flags cannot reach a replica it launches;
//! `kvsim --env KEY=VALUE` can). Unset means the tuned default.
//!
//! - `KV_APPEND_ENTRIES_MAX=N`: entries per append (1 turns batching off);
//! - `KV_INFLIGHT_APPENDS_MAX=N`: appends in flight per follower (1 is stop-and-wait);
//! - `KV_REPLICATE_TO_QUORUM_ONLY=0|1`: send new entries at once to a quorum only, or to all;
//! - `KV_COALESCE_APPENDS=0|1`: hold new entries while a quorum answers a recent round, or
//!   send every batch of input at once;
//! - `KV_RETRANSMIT_TIMEOUT_MS=N`: first retransmission timeout of an unanswered append to
//!   a follower that only lags (`Config::retransmit_timeout`; the one while a commit or a
//!   probe waits is not changed);
//! - `KV_REPLICATION_STALL_TIMEOUT_US=N`: the longest that uncommitted entries wait for the
//!   chosen followers before more are brought in (`Config::replication_stall_timeout`);
//! - `KV_APPLY_BATCH=N`: committed entries waiting before they are applied unless a read
//!   comes first (`Config::apply_batch`; 1 applies each as it commits).

use crate::raft::Config;
use crate::time::Span;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tuning {
    pub append_entries_max: Option<usize>,
    pub inflight_appends_max: Option<usize>,
    pub replicate_to_quorum_only: Option<bool>,
    pub coalesce_appends: Option<bool>,
    pub retransmit_timeout_ms: Option<usize>,
    pub replication_stall_timeout_us: Option<usize>,
    pub apply_batch: Option<usize>,
}

impl Tuning {
    /// Reads the knobs; a set but malformed one is an error naming it.
    pub fn from_env() -> Result<Tuning, String> {
        Tuning::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Tuning, String> {
        let count = |name: &str| -> Result<Option<usize>, String> {
            match lookup(name) {
                None => Ok(None),
                Some(text) => match text.parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(Some(n)),
                    _ => Err(format!(
                        "{name} must be a whole number of at least 1, not {text:?}"
                    )),
                },
            }
        };
        let flag = |name: &str| -> Result<Option<bool>, String> {
            match lookup(name).as_deref() {
                None => Ok(None),
                Some("1") => Ok(Some(true)),
                Some("0") => Ok(Some(false)),
                Some(other) => Err(format!("{name} must be 0 or 1, not {other:?}")),
            }
        };
        Ok(Tuning {
            append_entries_max: count("KV_APPEND_ENTRIES_MAX")?,
            inflight_appends_max: count("KV_INFLIGHT_APPENDS_MAX")?,
            replicate_to_quorum_only: flag("KV_REPLICATE_TO_QUORUM_ONLY")?,
            coalesce_appends: flag("KV_COALESCE_APPENDS")?,
            retransmit_timeout_ms: count("KV_RETRANSMIT_TIMEOUT_MS")?,
            replication_stall_timeout_us: count("KV_REPLICATION_STALL_TIMEOUT_US")?,
            apply_batch: count("KV_APPLY_BATCH")?,
        })
    }

    pub fn apply(&self, config: &mut Config) {
        if let Some(n) = self.append_entries_max {
            config.append_entries_max = n;
        }
        if let Some(n) = self.inflight_appends_max {
            config.inflight_appends_max = n;
        }
        if let Some(on) = self.replicate_to_quorum_only {
            config.replicate_to_quorum_only = on;
        }
        if let Some(on) = self.coalesce_appends {
            config.coalesce_appends = on;
        }
        if let Some(ms) = self.retransmit_timeout_ms {
            config.retransmit_timeout = Span::from_millis(ms as u64);
        }
        if let Some(us) = self.replication_stall_timeout_us {
            config.replication_stall_timeout = Span::from_micros(us as u64);
        }
        if let Some(n) = self.apply_batch {
            config.apply_batch = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Tuning, String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Tuning::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn unset_changes_nothing_and_set_knobs_apply() {
        assert_eq!(from(&[]), Ok(Tuning::default()));
        let tuning = from(&[
            ("KV_APPEND_ENTRIES_MAX", "1"),
            ("KV_INFLIGHT_APPENDS_MAX", "2"),
            ("KV_REPLICATE_TO_QUORUM_ONLY", "0"),
            ("KV_COALESCE_APPENDS", "0"),
            ("KV_APPLY_BATCH", "1"),
        ])
        .unwrap();
        let mut config = Config::new(datagram::NodeId(0), vec![datagram::NodeId(1)], 1);
        tuning.apply(&mut config);
        assert_eq!(
            (
                config.append_entries_max,
                config.inflight_appends_max,
                config.replicate_to_quorum_only,
                config.coalesce_appends,
                config.apply_batch
            ),
            (1, 2, false, false, 1)
        );
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
