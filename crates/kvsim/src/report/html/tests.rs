use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::model::{RunData, violation_view};
use super::sample;
use super::*;
use crate::checks::linearizability::{LinReport, LinViolation};
use crate::clients::{Clients, KeyMode};
use crate::measure::stats::{Extra, Stats};
use crate::measure::timeline::{FaultKind, Timeline};
use crate::network::wire::parse;
use crate::report::warnings::Warnings;
use raft::NodeId;

const LIVING: [usize; 3] = [0, 1, 2];

/// Answers the request just made (in `c.out`) with `kind`, `latency_us` after `at_us`.
fn answer(c: &mut Clients, stats: &mut Stats, kind: &str, at_us: u64, latency_us: u64) {
    let sent: serde_json::Value = serde_json::from_slice(&c.out).unwrap();
    let client = c.index_of(NodeId::parse(sent["src"].as_str().unwrap()).unwrap());
    let value = if sent["type"] == "get" {
        r#", "value": """#
    } else {
        ""
    };
    let reply = format!(
        r#"{{"src": "0000", "dst": "{}", "leader": "0000", "type": "{kind}", "MID": "{}"{value}}}"#,
        sent["src"].as_str().unwrap(),
        sent["MID"].as_str().unwrap()
    );
    let h = parse(reply.as_bytes()).unwrap();
    c.on_reply(
        client.unwrap(),
        &h,
        reply.as_bytes(),
        at_us + latency_us,
        &LIVING,
        stats,
        &mut Warnings::quiet(),
    );
}

/// `n` requests 1 ms apart on shared keys: every `redirect_every`-th is redirected once
/// and then answered, every `silent_every`-th gets nothing, the rest `ok` after 100 µs
/// (every 50th after 10 ms).
fn history(n: usize, redirect_every: usize, silent_every: usize) -> Clients {
    let mut c = Clients::new(3, 4, n, KeyMode::Shared(4), SmallRng::seed_from_u64(7));
    let mut stats = Stats::default();
    for k in 0..n {
        let at = 1_000_000 + k as u64 * 1_000;
        c.create(k % 4, k % 2 == 0, at, &LIVING, &mut stats);
        if k % silent_every == silent_every - 1 {
            continue;
        }
        if k % redirect_every == redirect_every - 1 {
            answer(&mut c, &mut stats, "redirect", at, 50);
        }
        let latency = if k % 50 == 49 { 10_000 } else { 100 };
        answer(&mut c, &mut stats, "ok", at + 50, latency);
    }
    c
}

#[test]
fn every_attempt_is_drawn_under_the_budget_with_its_reply() {
    let c = history(20, 5, 7);
    let (a, sampling) = sample::attempts(&c, 1_000);
    assert_eq!(a.t.len(), c.history.len());
    assert_eq!(sampling.attempts_shown, sampling.attempts_total);
    assert!(sampling.method.is_empty());
    // Request 4 was redirected, then answered: two attempts of one request.
    let of_4: Vec<usize> = (0..a.req.len()).filter(|&i| a.req[i] == 4).collect();
    assert_eq!(of_4.len(), 2);
    assert_eq!((a.reply[of_4[0]], a.reply[of_4[1]]), (1, 0));
    assert_eq!(a.lat[of_4[0]], 50);
    // Request 6 got nothing.
    let of_6 = a.req.iter().position(|&r| r == 6).unwrap();
    assert_eq!((a.reply[of_6], a.lat[of_6]), (3, -1));
    assert!(a.mid.iter().all(|m| m.len() == 16));
    assert!(a.key.iter().all(|k| k.chars().count() == 8));
}

#[test]
fn a_big_run_keeps_its_troubled_and_slowest_requests_and_samples_the_rest() {
    let c = history(6_000, 100, 250);
    let budget = 1_000;
    let (a, sampling) = sample::attempts(&c, budget);
    assert_eq!(sampling.attempts_total, c.history.len());
    assert!(
        (budget / 2..=budget + 10).contains(&a.t.len()),
        "{}",
        a.t.len()
    );
    // Every redirected or unanswered request is drawn, with all its attempts.
    for (k, expected) in [(99u64, 2), (249, 1), (199, 2), (5_899, 2)] {
        let drawn = a.req.iter().filter(|&&r| r == k).count();
        assert_eq!(drawn, expected, "request {k}");
    }
    // The slow ones (10 ms) are drawn: 1% of the answered requests are, slowest first.
    let slow: Vec<u64> = (0..a.t.len())
        .filter(|&i| a.lat[i] >= 10_000)
        .map(|i| a.req[i])
        .collect();
    assert!(slow.len() >= 50, "{slow:?}");
    assert!(
        slow.contains(&49),
        "a slow request answered at once: {slow:?}"
    );
    assert!(sampling.method.contains("one in"), "{}", sampling.method);
    // The rest is spread over the whole run, not its start.
    let last = *a.t.iter().max().unwrap();
    assert!(last > 1_000_000 + 5_900 * 1_000, "{last}");
}

#[test]
fn a_violation_is_drawn_with_its_offending_operations_and_their_nearest_neighbours() {
    let c = history(200, 1_000, 1_000);
    let history: Vec<usize> = (0..c.history.len()).collect();
    let minimal = vec![100, 101, 120];
    let v = LinViolation {
        key: "K".into(),
        explanation: "why".into(),
        ops: Vec::new(),
        history: history.clone(),
        minimal: minimal.clone(),
    };
    let view = violation_view(&v, &c);
    assert_eq!(view.key_ops, 200);
    assert_eq!(view.ops.len(), model::VIOLATION_OPS_MAX);
    assert_eq!(view.ops.iter().filter(|o| o.minimal).count(), 3);
    // Those between the offending ones come first, then the nearest outside.
    let invokes: Vec<u64> = view.ops.iter().map(|o| o.invoke_us).collect();
    assert!(invokes.windows(2).all(|w| w[0] <= w[1]), "by invocation");
    let first = c.history[100].invoke_us;
    let last = c.history[120].invoke_us;
    for k in 100..=120 {
        assert!(invokes.contains(&c.history[k].invoke_us), "op {k}");
    }
    // And the other 19, the nearest on either side.
    assert!(invokes[0] >= first - 10 * 1_000 && invokes[0] < first);
    assert!(*invokes.last().unwrap() <= last + 10 * 1_000);
}

fn config() -> Config {
    Config::parse(
        "odd</script><b>",
        r#"{"lifetime": 5, "replicas": 3, "requests": 20, "start_wait": 1, "end_wait": 1,
            "description": "a </script> in a description",
            "tests": {"benchmarks": {"total_msgs": [1, 2, 3], "failures": [1, 2, 3],
            "duplicates": [1, 2, 3], "median_latency": [1, 2, 3]}}}"#,
    )
    .unwrap()
}

fn outcome(cfg: &Config, page: Option<Box<RunData>>) -> Outcome {
    Outcome {
        scenario: cfg.name.clone(),
        seed: 3,
        passed: true,
        stats: Stats::default(),
        checks: crate::checks::score::classic_checks(&Stats::default(), cfg, 1),
        tiers: crate::checks::score::performance(&Stats::default(), cfg),
        extra: Extra::default(),
        linearizability: LinReport::default(),
        page,
    }
}

#[test]
fn a_page_is_one_file_whose_data_cannot_close_its_script() {
    let cfg = config();
    let c = history(30, 4, 9);
    let mut timeline = Timeline::new(3, 7_000_000);
    timeline.message(1_500_000, Some(0), "ae", 2);
    timeline.message(1_600_000, Some(1), "rv", 2);
    timeline.claim(1_000_000, 0, NodeId(0));
    timeline.start(2_000_000, FaultKind::Kill { replica: 2 });
    timeline.down(3_000_000, 1);
    timeline.back(4_000_000, 1);
    let data = RunData::new(&cfg, &timeline, &c, &LinReport::default(), 7_000_000, None);
    assert_eq!(data.types.len(), 2);
    assert_eq!(data.votes[1][16], 2);
    assert_eq!(data.claims, [[1_000_000, 0, 0]]);
    assert_eq!(data.faults[0].kind, "kill");
    let restart = &data.faults[1];
    assert_eq!(
        (
            restart.kind,
            restart.replica,
            restart.from_us,
            restart.to_us
        ),
        ("restart", Some(1), 3_000_000, Some(4_000_000))
    );
    assert_eq!(
        data.ok_gets.iter().sum::<u32>() + data.ok_puts.iter().sum::<u32>(),
        c.history.iter().filter(|h| h.acked).count() as u32
    );
    let page = run_page(&outcome(&cfg, Some(Box::new(data))), &cfg).unwrap();
    // One script element for the data, one for the error sink, one for the page.
    assert_eq!(page.matches("<script").count(), 3);
    assert_eq!(
        page.matches("</script>").count(),
        3,
        "the data's </script> is escaped"
    );
    assert!(page.contains("<title>kvsim: odd&lt;/script&gt;&lt;b&gt; (seed 3)</title>"));
    for fetch in ["src=\"http", "href=\"http", "url(http", "@import", "fetch("] {
        assert!(!page.contains(fetch), "{fetch}");
    }
    // A run without page data has no page.
    assert!(run_page(&outcome(&cfg, None), &cfg).is_none());
}

#[test]
fn the_index_links_each_page_and_says_pass_fail_and_tiers() {
    let cfg = config();
    let rows = [
        Row {
            scenario: "simple-1".into(),
            outcome: Ok(outcome(&cfg, None)),
        },
        Row {
            scenario: "broken".into(),
            outcome: Err("cannot run it".into()),
        },
    ];
    let pages = [Some("simple-1.html".to_string()), None];
    let index = index_page(&rows, &pages, false);
    assert!(index.contains("<a href=\"simple-1.html\">simple-1</a>"));
    assert!(index.contains("<tr class=\"pass\">"));
    assert!(index.contains("ERROR</td><td colspan=\"10\">cannot run it"));
    assert!(index.contains("1 of 2 scenarios passed"));
    assert_eq!(
        index.matches("class=\"tier t").count(),
        4 + 4,
        "legend and one row"
    );
    assert!(index_page(&rows[..1], &pages[..1], true).contains("(running)"));
}

#[test]
fn page_names_are_safe_and_unique() {
    assert_eq!(page_name("crash-1", &[]), "crash-1.html");
    assert_eq!(page_name("a b/c", &[]), "a_b_c.html");
    let taken = ["x.html".to_string(), "x-2.html".to_string()];
    assert_eq!(page_name("x", &taken), "x-3.html");
}

#[test]
fn an_unwritable_path_is_refused_in_one_line() {
    let dir = std::env::temp_dir().join(format!("kvsim-html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let err = check_file(&file.join("page.html")).unwrap_err();
    assert!(
        err.starts_with("cannot write") && !err.contains('\n'),
        "{err}"
    );
    let err = check_dir(&file.join("pages")).unwrap_err();
    assert!(err.starts_with("cannot make"), "{err}");
    check_dir(&dir.join("pages")).unwrap();
    assert!(dir.join("pages").join("index.html").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
