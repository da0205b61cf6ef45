//! The HTML report in a real browser: the page of a short run of the real replica, and the
//! page of the `stale-reads` stand-in (whose histories are not linearizable), each opened
//! in headless Chromium (Debian's `chromium`; `.ci/run` installs it). The DOM the page
//! built is dumped and searched for what it must draw, the browser's console must stay
//! silent (the page logs nothing, so any line there is an error), and screenshots are
//! left in `target/tmp/html-report/` for a person to look at.
//!
//! Without Chromium these tests fail: they cannot be checked any other way.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one Chromium run may take before it is killed and the test fails.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("html-report");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "Chromium not found at {}: these tests need a real browser. Install Debian's \
         (apt-get install -y chromium; .ci/run does) or set CHROMIUM to one.",
        path.display()
    );
    path
}

/// What the browser made of a page.
struct Rendered {
    dom: String,
    /// Lines the page wrote to the console (uncaught errors included).
    console: Vec<String>,
}

/// Opens `page` (with `fragment` after `#`) in headless Chromium, 1400 px wide, and dumps
/// its DOM, or takes a screenshot into `screenshot` (`height` px tall).
fn open(page: &Path, fragment: &str, screenshot: Option<(&Path, u32)>) -> Rendered {
    let profile = tempdir("chromium-profile");
    let url = format!(
        "file://{}#{fragment}",
        page.canonicalize().unwrap().display()
    );
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    match screenshot {
        Some((png, height)) => {
            cmd.arg(format!("--window-size=1400,{height}"))
                .arg(format!("--screenshot={}", png.display()));
        }
        None => {
            cmd.arg("--window-size=1400,2000").arg("--dump-dom");
        }
    }
    let mut child = cmd
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Read both pipes while waiting, so a large DOM cannot fill one and stall the browser.
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (dom, log) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over {BROWSER_TIMEOUT:?} on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (dom, log) = (dom.join().unwrap(), log.join().unwrap());
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        status.success(),
        "chromium failed on {url}: {status}\n{log}"
    );
    Rendered {
        dom,
        console: log
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect(),
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "kvsim-{tag}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn count(dom: &str, needle: &str) -> usize {
    dom.matches(needle).count()
}

/// The page drew itself without an error.
fn assert_drawn(r: &Rendered, what: &str) {
    assert!(
        r.console.is_empty(),
        "{what}: console output {:#?}",
        r.console
    );
    assert!(
        r.dom.contains("data-rendered=\"yes\""),
        "{what}: the page did not finish drawing"
    );
    assert!(
        !r.dom.contains("data-errors=\"yes\""),
        "{what}: the page caught an error"
    );
    assert!(r.dom.contains("<pre id=\"page-errors\" hidden=\"\"></pre>"));
}

fn screenshot(page: &Path, name: &str, height: u32) {
    let png = out_dir().join(name);
    let _ = std::fs::remove_file(&png);
    let r = open(page, "", Some((&png, height)));
    assert!(r.console.is_empty(), "{:#?}", r.console);
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "{} is {size} bytes", png.display());
    println!("screenshot: {}", png.display());
}

fn kvsim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kvsim"))
        .arg("--replica")
        .arg(env!("CARGO_BIN_EXE_3700kvstore"))
        .arg("--silence")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn a_real_run_has_lanes_fault_spans_a_scatter_and_its_charts() {
    chromium();
    let page = out_dir().join("run.html");
    let out = kvsim(&[
        "tests/scenarios/report-demo.json",
        "--html",
        page.to_str().unwrap(),
    ]);
    // Whether the replica passes is kvsim_scenarios' business; here, that it ran.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = open(&page, "", None);
    assert_drawn(&r, "run");
    let dom = &r.dom;
    assert_eq!(count(dom, "class=\"lane\""), 5, "a lane per replica");
    for (needle, at_least) in [
        ("class=\"span partition majority\"", 3),
        ("class=\"span partition minority\"", 2),
        ("class=\"span pause\"", 1),
        ("class=\"span kill\"", 1),
        ("class=\"lead\"", 2),
        ("class=\"votes\"", 1),
        ("class=\"follow\"", 4),
        ("class=\"points\"", 1),
        ("class=\"p50\"", 1),
        ("data-series=\"put\"", 1),
        ("data-series=\"ae\"", 1),
        ("id=\"lane-legend\"", 1),
        ("id=\"scatter-legend\"", 1),
        ("id=\"throughput\"", 1),
        ("id=\"messages\"", 1),
        ("id=\"checks\"", 1),
    ] {
        assert!(
            count(dom, needle) >= at_least,
            "{needle} fewer than {at_least}"
        );
    }
    assert_eq!(count(dom, "<span class=\"tier "), 4, "four metrics");
    let points: usize = dom
        .split("id=\"scatter\"")
        .nth(1)
        .and_then(|s| s.split("data-points=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .and_then(|n| n.parse().ok())
        .expect("the scatter says how many points it drew");
    assert!(points >= 400, "{points} points");
    assert!(dom.contains("No violation"));

    // A view opened from its address: zoomed to 3-5 s, with request 0 selected.
    let r = open(&page, "t=3-5&req=0", None);
    assert_drawn(&r, "zoomed");
    assert!(r.dom.contains("Showing 3.000 s to 5.000 s"));
    assert!(r.dom.contains("<table class=\"mono\" id=\"attempts\">"));
    assert!(count(&r.dom, "<tr class=\"attempt\">") >= 1);
    assert!(r.dom.contains("class=\"selected-ring\""));

    screenshot(&page, "run.png", 1900);
}

#[test]
fn the_stale_reads_stand_in_fails_and_its_page_draws_the_violation() {
    chromium();
    let page = out_dir().join("stale.html");
    let out = kvsim(&[
        "tests/scenarios/stale-reads.json",
        "--stand-in",
        "stale-reads",
        "--html",
        page.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a check fails\n{stdout}");
    assert!(
        stdout.contains("a measuring stick, not a store"),
        "{stdout}"
    );
    assert!(stdout.contains("not linearizable"), "{stdout}");
    let r = open(&page, "", None);
    assert_drawn(&r, "stale");
    let dom = &r.dom;
    assert!(dom.contains("id=\"stand-in\""), "the page says what ran");
    assert!(dom.contains("<span class=\"badge fail\">FAIL</span>"));
    assert!(dom.contains("id=\"violation-0\""));
    assert!(
        count(dom, " minimal\"") >= 2,
        "the offending operations are marked"
    );
    assert!(count(dom, "class=\"op ") > count(dom, " minimal\""));
    let sentence = dom
        .split("<p class=\"sentence\">")
        .nth(1)
        .and_then(|s| s.split("</p>").next())
        .expect("a sentence says why");
    assert!(sentence.contains("stale"), "{sentence}");
    screenshot(&page, "stale.png", 2300);
}
