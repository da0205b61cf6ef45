//! A finished history, analysed: its operations counted, its faults as spans, the checks
//! and the availability figures. The same for a run just made and for a history file
//! read back (`kvnemesis --check FILE`).

use crate::availability::{self, Availability, Share};
use crate::checks::{self, Findings};
use crate::history::{Event, NEMESIS, Type};
use crate::nemesis::Span;
use crate::operations::{self, Kind, Operation};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    /// The workload's operations (the final reads apart).
    pub operations: Share,
    pub reads: usize,
    pub writes: usize,
    pub deletes: usize,
    pub faults: Vec<Span>,
    pub findings: Findings,
    pub availability: Availability,
    /// Milliseconds from the first final read's invocation to the first that succeeded:
    /// how long the healed cluster took to answer.
    pub final_read_after_ms: Option<f64>,
}

pub fn analyse(events: &[Event]) -> Result<Analysis, String> {
    let ops = operations::pair(events)?;
    let faults = spans(events)?;
    let findings = checks::check(&ops);
    let (finals, workload): (Vec<Operation>, Vec<Operation>) =
        ops.into_iter().partition(Operation::is_final_read);
    let availability = availability::measure(&workload, &faults);
    let first_final = finals.iter().map(|o| o.invoke).min();
    let first_final_ok = finals
        .iter()
        .filter(|o| o.outcome == Type::Ok)
        .filter_map(|o| o.complete)
        .min();
    let count = |kind: Kind| workload.iter().filter(|o| o.kind == kind).count();
    Ok(Analysis {
        operations: availability
            .during_faults
            .merged(availability.without_faults),
        reads: count(Kind::Read),
        writes: count(Kind::Write),
        deletes: count(Kind::Delete),
        faults,
        findings,
        availability,
        final_read_after_ms: first_final
            .zip(first_final_ok)
            .map(|(from, to)| to.saturating_sub(from) as f64 / 1e6),
    })
}

/// The nemesis's `start-<fault>` and `stop-<fault>` events paired into spans.
fn spans(events: &[Event]) -> Result<Vec<Span>, String> {
    let mut spans = Vec::new();
    let mut open: Option<&Event> = None;
    for event in events.iter().filter(|e| e.process == NEMESIS) {
        let description = event.value.clone().unwrap_or_default();
        if let Some(fault) = event.f.strip_prefix("start-") {
            if let Some(start) = open {
                return Err(format!(
                    "event {}: {fault} starts while the fault of event {} holds",
                    event.index, start.index
                ));
            }
            open = Some(event);
        } else if let Some(fault) = event.f.strip_prefix("stop-") {
            let Some(start) = open.take() else {
                return Err(format!(
                    "event {}: {fault} stops but never started",
                    event.index
                ));
            };
            spans.push(Span {
                fault: fault.to_owned(),
                description,
                start: start.time,
                stop: event.time,
            });
        }
    }
    Ok(spans)
}
