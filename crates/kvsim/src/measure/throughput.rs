//! Committed puts per second, from the history of client attempts.
//!
//! Two figures, because they answer different questions:
//! - **steady**: the median, over the whole seconds of the request window, of the puts
//!   acknowledged `ok` in that second. A replica that keeps up shows the offered rate; one
//!   that falls behind shows what it sustains, without the start (first leader, warm-up)
//!   or the tail (draining a backlog after the last request) pulling it either way.
//! - **span**: puts acknowledged `ok` divided by the time from the first request sent to
//!   the last `ok` received. Includes the drain of any backlog, so it is lower than the
//!   offered rate whenever replies fall behind.

use serde::Serialize;

use crate::clients::history::HistOp;

/// Length of one bucket of the steady rate.
const BUCKET_US: u64 = 1_000_000;

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CommitRate {
    /// Median of per-second counts of put `ok`s over the request window's whole seconds.
    pub steady_puts_per_s: f64,
    /// Put `ok`s / (last put `ok` - first request sent).
    pub span_puts_per_s: f64,
    /// Seconds from the first request sent to the last put `ok`.
    pub span_s: f64,
}

/// `history` is every attempt; `window_us` is the request window (`lifetime`), counted
/// from the first request sent.
pub fn committed_puts(history: &[HistOp], window_us: u64) -> CommitRate {
    let Some(first_us) = history.iter().map(|h| h.invoke_us).min() else {
        return CommitRate::default();
    };
    let oks: Vec<u64> = history
        .iter()
        .filter(|h| !h.get && h.acked)
        .filter_map(|h| h.response_us)
        .collect();
    let Some(&last_us) = oks.iter().max() else {
        return CommitRate::default();
    };
    let span_us = last_us.saturating_sub(first_us);
    let span_puts_per_s = if span_us > 0 {
        oks.len() as f64 * 1e6 / span_us as f64
    } else {
        0.0
    };
    let buckets = (window_us / BUCKET_US) as usize;
    let steady_puts_per_s = if buckets == 0 {
        // A window shorter than a bucket: the span is all there is.
        span_puts_per_s
    } else {
        let mut counts = vec![0u64; buckets];
        for &t in &oks {
            let b = (t.saturating_sub(first_us) / BUCKET_US) as usize;
            if b < buckets {
                counts[b] += 1;
            }
        }
        counts.sort_unstable();
        // Upper middle, as the classic median.
        counts[buckets / 2] as f64 * 1e6 / BUCKET_US as f64
    };
    CommitRate {
        steady_puts_per_s,
        span_puts_per_s,
        span_s: span_us as f64 / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(get: bool, invoke_us: u64, response_us: Option<u64>, acked: bool) -> HistOp {
        HistOp {
            client: 0,
            key: 0,
            get,
            value: 0,
            invoke_us,
            response_us,
            acked,
            group: 0,
        }
    }

    #[test]
    fn steady_is_the_median_second_and_span_counts_the_backlog() {
        let start = 5_000_000;
        let mut h = Vec::new();
        // 3 s window. Second 0: 10 oks; second 1: 30; second 2: 20; then a 1 s backlog
        // drain with 40 more oks after the window.
        let mut add = |second: u64, n: u64| {
            for k in 0..n {
                let t = start + second * 1_000_000 + k * 1_000;
                h.push(op(false, t, Some(t + 500), true));
            }
        };
        add(0, 10);
        add(1, 30);
        add(2, 20);
        add(3, 40);
        // Not counted: gets, puts that failed or got no reply.
        h.push(op(true, start + 10, Some(start + 20), true));
        h.push(op(false, start + 10, Some(start + 20), false));
        h.push(op(false, start + 10, None, false));
        let r = committed_puts(&h, 3_000_000);
        assert_eq!(r.steady_puts_per_s, 20.0);
        let last = start + 3_000_000 + 39 * 1_000 + 500;
        let span_s = (last - start) as f64 / 1e6;
        assert!((r.span_s - span_s).abs() < 1e-9);
        assert!((r.span_puts_per_s - 100.0 / span_s).abs() < 1e-9);
    }

    #[test]
    fn empty_histories_and_short_windows() {
        assert_eq!(committed_puts(&[], 1_000_000), CommitRate::default());
        let only_gets = [op(true, 1, Some(2), true)];
        assert_eq!(committed_puts(&only_gets, 1_000_000), CommitRate::default());
        let h = [
            op(false, 0, Some(250_000), true),
            op(false, 0, Some(500_000), true),
        ];
        let r = committed_puts(&h, 500_000);
        assert_eq!(r.steady_puts_per_s, 4.0);
        assert_eq!(r.span_puts_per_s, 4.0);
    }
}
