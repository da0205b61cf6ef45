//! The `events` list: the faults a scenario injects and when, read and checked here
//! (`part_flap` is expanded into plain partitions and heals). Restarts are refused unless
//! the scenario is durable: a replica restarted without its disk would forget what it
//! acknowledged, and the run would fail for the scenario's fault, not the replica's.

use serde_json::{Map, Value};

use super::{ConfigError, err, number};

/// Which way a one-way partition cuts the leader off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OneWay {
    /// The leader's messages are lost; it still hears the others.
    FromLeader,
    /// The leader hears nobody; its messages still arrive.
    ToLeader,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    KillLeader,
    KillNonLeader,
    PartEasy,
    PartHard,
    PartEnd,
    /// SIGSTOP the leader, SIGCONT it `duration_s` later.
    PauseLeader {
        duration_s: f64,
    },
    /// SIGSTOP a random living non-leader, SIGCONT it `duration_s` later.
    PauseNonLeader {
        duration_s: f64,
    },
    /// Cut the leader off in one direction only (until `part_end`).
    PartOneWay(OneWay),
    /// SIGKILL replicas and start them again on their data dirs `duration_s` later.
    Restart {
        who: Restarted,
        duration_s: f64,
    },
}

/// Which replicas a restart event takes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restarted {
    Leader,
    /// A random living non-leader.
    NonLeader,
    /// Every living replica.
    All,
}

impl Restarted {
    /// The event's `type` in a scenario file.
    pub fn name(self) -> &'static str {
        match self {
            Restarted::Leader => "restart_leader",
            Restarted::NonLeader => "restart_non_leader",
            Restarted::All => "restart_all",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds after the end of `start_wait`.
    pub time_s: f64,
    pub kind: EventKind,
}

pub(super) fn parse_events(
    value: Option<&Value>,
    lifetime_s: f64,
    durable: bool,
) -> Result<Vec<Event>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Array(items) = value else {
        return Err(err("events", "must be a list of {type, time} objects"));
    };
    let mut events = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = |f: &str| format!("events[{i}].{f}");
        let Value::Object(obj) = item else {
            return Err(err(format!("events[{i}]"), "must be an object"));
        };
        let kind = match obj.get("type") {
            Some(Value::String(s)) => s.as_str(),
            _ => return Err(err(field("type"), "missing or not a string")),
        };
        let time_s = match number(obj, "time").map_err(|e| err(field("time"), e.message))? {
            Some(t) => t,
            None => return Err(err(field("time"), "missing")),
        };
        if time_s < 0.0 || time_s > lifetime_s {
            return Err(err(
                field("time"),
                format!("event time must be between 0 and {lifetime_s}"),
            ));
        }
        let duration = |obj: &Map<String, Value>| -> Result<f64, ConfigError> {
            match number(obj, "duration").map_err(|e| err(field("duration"), e.message))? {
                Some(d) if d > 0.0 && d <= lifetime_s => Ok(d),
                Some(_) => Err(err(
                    field("duration"),
                    format!("must be above 0 and at most {lifetime_s}"),
                )),
                None => Err(err(
                    field("duration"),
                    "missing (seconds the replica stays paused or down)",
                )),
            }
        };
        let allowed: &[&str] = match kind {
            "pause_leader" | "pause_non_leader" | "restart_leader" | "restart_non_leader"
            | "restart_all" => &["type", "time", "duration"],
            "part_oneway" => &["type", "time", "direction"],
            "part_flap" => &["type", "time", "period", "until"],
            _ => &["type", "time"],
        };
        if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(err(field(extra), "unknown field for this event type"));
        }
        let kind = match kind {
            "kill_leader" => EventKind::KillLeader,
            "kill_non_leader" => EventKind::KillNonLeader,
            "part_easy" => EventKind::PartEasy,
            "part_hard" => EventKind::PartHard,
            "part_end" => EventKind::PartEnd,
            "pause_leader" => EventKind::PauseLeader {
                duration_s: duration(obj)?,
            },
            "pause_non_leader" => EventKind::PauseNonLeader {
                duration_s: duration(obj)?,
            },
            "restart_leader" | "restart_non_leader" | "restart_all" => {
                let who = match kind {
                    "restart_leader" => Restarted::Leader,
                    "restart_non_leader" => Restarted::NonLeader,
                    _ => Restarted::All,
                };
                if !durable {
                    return Err(err(
                        field("type"),
                        format!(
                            "{kind} needs \"durable\": true (a replica restarted without its data dir would forget what it acknowledged)"
                        ),
                    ));
                }
                EventKind::Restart {
                    who,
                    duration_s: duration(obj)?,
                }
            }
            "part_oneway" => match obj.get("direction").and_then(Value::as_str) {
                Some("from_leader") => EventKind::PartOneWay(OneWay::FromLeader),
                Some("to_leader") => EventKind::PartOneWay(OneWay::ToLeader),
                _ => {
                    return Err(err(
                        field("direction"),
                        "must be \"from_leader\" or \"to_leader\"",
                    ));
                }
            },
            "part_flap" => {
                // A hard partition with a new random majority every `period` seconds, healed
                // in between, until `until`; expanded here into plain events.
                let period =
                    match number(obj, "period").map_err(|e| err(field("period"), e.message))? {
                        Some(p) if p >= 0.05 => p,
                        _ => return Err(err(field("period"), "missing or below 0.05 seconds")),
                    };
                let until =
                    match number(obj, "until").map_err(|e| err(field("until"), e.message))? {
                        Some(u) if u > time_s && u <= lifetime_s => u,
                        _ => {
                            return Err(err(
                                field("until"),
                                format!("missing, or not between `time` and {lifetime_s}"),
                            ));
                        }
                    };
                let mut t = time_s;
                let mut cut = true;
                while t < until {
                    let kind = if cut {
                        EventKind::PartHard
                    } else {
                        EventKind::PartEnd
                    };
                    events.push(Event { time_s: t, kind });
                    cut = !cut;
                    t += period;
                }
                events.push(Event {
                    time_s: until,
                    kind: EventKind::PartEnd,
                });
                continue;
            }
            other => return Err(err(field("type"), format!("unknown event type: {other}"))),
        };
        events.push(Event { time_s, kind });
    }
    Ok(events)
}
