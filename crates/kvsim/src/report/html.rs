//! The HTML report: `kvsim <file> --html FILE` writes one page per run, `kvsim all
//! --html-dir DIR` one per scenario and an index. A page is one self-contained file: its
//! style, its script (`page.css`, `page.js` beside this file, included at build time) and
//! the run's data as JSON; it draws itself with SVG when opened and fetches nothing. The
//! script is four files: `page.js` (data, helpers, summary), `timeline.js` (the charts on
//! one time axis, zoom), `violations.js`, `main.js`.
//!
//! - `model`: what a page draws, made at the end of a run (`RunData`);
//! - `sample`: which attempts the scatter draws when there are too many for a browser.
//!
//! The page script writes any error it meets into `#page-errors` and marks the body
//! `data-rendered="yes"` when it is done, so a headless browser can tell a page that
//! drew from one that broke (`tests/html_report.rs`).

pub mod model;
mod sample;
#[cfg(test)]
mod tests;

use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::checks::score::Check;
use crate::report::Row;
use crate::run::Outcome;
use crate::scenario::config::Config;
pub use model::RunData;
pub use sample::{SCATTER_ATTEMPTS_MAX, Sampling};

const PAGE_CSS: &str = include_str!("html/page.css");
/// The page's script: one strict function scope around its four files, so that they share
/// their names without making any global.
const PAGE_JS: &str = concat!(
    "'use strict';\n(function () {\n",
    include_str!("html/page.js"),
    include_str!("html/timeline.js"),
    include_str!("html/violations.js"),
    include_str!("html/main.js"),
    "})();\n"
);
const INDEX_CSS: &str = include_str!("html/index.css");

/// What the page shows above its charts.
#[derive(Serialize)]
struct Summary<'a> {
    scenario: &'a str,
    description: String,
    seed: u64,
    passed: bool,
    checks: &'a [Check],
    tiers: Vec<TierView<'a>>,
    /// Label and value, in order.
    figures: Vec<(&'static str, String)>,
}

#[derive(Serialize)]
struct TierView<'a> {
    label: &'a str,
    tier: u8,
    line: &'a str,
}

#[derive(Serialize)]
struct PageData<'a> {
    summary: &'a Summary<'a>,
    run: &'a RunData,
}

/// The page of one run. `None` when the run kept no page data (`Options::page` unset).
pub fn run_page(o: &Outcome, cfg: &Config) -> Option<String> {
    let run = o.page.as_deref()?;
    Some(page(&summary(o, cfg), run))
}

/// What a page made for another harness (kvnemesis) shows above its charts: no tiers.
pub struct ForeignSummary {
    pub title: String,
    pub description: String,
    pub seed: u64,
    pub passed: bool,
    pub checks: Vec<Check>,
    pub figures: Vec<(&'static str, String)>,
}

/// The page of another harness's run, drawn by this report's script from `run`.
pub fn foreign_page(summary: &ForeignSummary, run: &RunData) -> String {
    let summary = Summary {
        scenario: &summary.title,
        description: summary.description.clone(),
        seed: summary.seed,
        passed: summary.passed,
        checks: &summary.checks,
        tiers: Vec::new(),
        figures: summary.figures.clone(),
    };
    page(&summary, run)
}

fn page(summary: &Summary<'_>, run: &RunData) -> String {
    let data = PageData { summary, run };
    // serde_json cannot fail on these types; a `<` inside a string is the one thing that
    // could end the script element early, and JSON lets it be escaped.
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "{}".into())
        .replace('<', "\\u003c");
    let mut page = String::with_capacity(json.len() + PAGE_JS.len() + PAGE_CSS.len() + 1024);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width\">\n\
         <title>kvsim: {} (seed {})</title>\n<style>\n{PAGE_CSS}</style>\n</head>\n<body>\n\
         <pre id=\"page-errors\" hidden></pre>\n\
         <script>\n{ERROR_SINK}</script>\n\
         <div id=\"app\"><noscript>This page draws itself with JavaScript.</noscript></div>\n\
         <script type=\"application/json\" id=\"kvsim-data\">{json}</script>\n\
         <script>\n{PAGE_JS}</script>\n</body>\n</html>\n",
        escape(summary.scenario),
        summary.seed
    );
    page
}

/// Installed before the page script, so that its own errors are caught too.
const ERROR_SINK: &str = r#"(function () {
  function show(text) {
    var box = document.getElementById('page-errors');
    box.hidden = false;
    box.textContent += text + '\n';
    document.body.setAttribute('data-errors', 'yes');
  }
  window.addEventListener('error', function (e) { show('error: ' + e.message); });
  window.addEventListener('unhandledrejection', function (e) { show('rejection: ' + e.reason); });
})();
"#;

fn summary<'a>(o: &'a Outcome, cfg: &Config) -> Summary<'a> {
    let s = &o.stats;
    let e = &o.extra;
    let l = &o.linearizability;
    let ms = |s: f64| format!("{:.3} ms", s * 1e3);
    let mut leaders = s.leaders.clone();
    const LEADERS_SHOWN_MAX: usize = 24;
    if leaders.len() > LEADERS_SHOWN_MAX {
        let more = leaders.len() - LEADERS_SHOWN_MAX;
        leaders.truncate(LEADERS_SHOWN_MAX);
        leaders.push(format!("and {more} more"));
    }
    let mut figures = vec![
        (
            "messages between replicas",
            format!("{} ({} dropped)", s.total_msgs, s.total_drops),
        ),
        (
            "requests sent (get/put, retries included)",
            format!("{}/{}", s.total_get, s.total_put),
        ),
        (
            "failures (fails + unanswered)",
            format!(
                "{} (unanswered get/put {}/{})",
                s.failures, s.unanswered_get, s.unanswered_put
            ),
        ),
        ("redirects (and fails)", s.redirects.to_string()),
        ("duplicates", s.duplicates.to_string()),
        ("incorrect", s.incorrect.to_string()),
        (
            "reply latency p50/p99/max",
            format!(
                "{} / {} / {}",
                ms(e.reply_latency_s.p50),
                ms(e.reply_latency_s.p99),
                ms(e.reply_latency_s.max)
            ),
        ),
        ("replicas killed/died", format!("{}/{}", s.killed, s.died)),
        ("leaders (as kvsim saw them)", leaders.join(" ")),
        (
            "linearizability",
            format!(
                "{} keys, {} operations, {} violating, {} inconclusive",
                l.keys,
                l.ops_checked,
                l.violations.len(),
                l.inconclusive_keys.len()
            ),
        ),
    ];
    if !e.restarts.is_empty() {
        figures.insert(
            figures.len() - 2,
            ("replicas restarted", e.restarts.len().to_string()),
        );
    }
    Summary {
        scenario: &o.scenario,
        description: crate::scenario::classic_suite::describe(cfg),
        seed: o.seed,
        passed: o.passed,
        checks: &o.checks,
        tiers: o
            .tiers
            .iter()
            .map(|t| TierView {
                label: t.label,
                tier: t.tier,
                line: &t.line,
            })
            .collect(),
        figures,
    }
}

/// Text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Checks now, before any run, that `path` can be written (its folder is made, as for
/// `--history`).
pub fn check_file(path: &Path) -> Result<(), String> {
    let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
    let created = folder.map_or(Ok(()), std::fs::create_dir_all);
    created
        .and_then(|()| std::fs::File::create(path).map(drop))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Makes `dir` and checks that files can be written in it, by writing its index (which
/// says the suite is running until the first scenario is done).
pub fn check_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot make {}: {e}", dir.display()))?;
    write_file(&dir.join("index.html"), &index_page(&[], &[], true))
}

pub fn write_file(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The file name for a scenario's page in an `--html-dir`, unique among `taken`.
pub fn page_name(scenario: &str, taken: &[String]) -> String {
    let safe: String = scenario
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("{safe}.html");
    let mut k = 2;
    while taken.contains(&name) {
        name = format!("{safe}-{k}.html");
        k += 1;
    }
    name
}

/// The index of a suite: one line per scenario with its result and tiers, linking to its
/// page (`pages[i]`, the file name, when it has one). `running`: more are to come.
pub fn index_page(rows: &[Row], pages: &[Option<String>], running: bool) -> String {
    let mut out = String::new();
    let passed = rows
        .iter()
        .filter(|r| r.outcome.as_ref().is_ok_and(|o| o.passed))
        .count();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>kvsim: {passed} of {} passed</title>\n<style>\n{INDEX_CSS}</style>\n</head>\n<body>\n\
         <h1>kvsim: {passed} of {} scenarios passed{}</h1>\n\
         <p>Tiers per metric: <span class=\"tier t0\">bonus</span> <span class=\"tier t1\">full</span> \
         <span class=\"tier t2\">partial</span> <span class=\"tier t3\">none</span>; \
         a run that fails a check is not scored.</p>\n\
         <table id=\"scenarios\">\n<thead><tr><th>scenario</th><th>result</th>\
         <th>messages</th><th>failures</th><th>duplicates</th><th>median latency</th>\
         <th>msgs</th><th>fails</th><th>dups</th><th>median ms</th><th>p99 ms</th><th>failed checks</th></tr></thead>\n<tbody>\n",
        rows.len(),
        rows.len(),
        if running { " so far (running)" } else { "" }
    );
    for (k, row) in rows.iter().enumerate() {
        let name = escape(&row.scenario);
        let link = match pages.get(k).and_then(Option::as_ref) {
            Some(file) => format!("<a href=\"{}\">{name}</a>", escape(file)),
            None => name,
        };
        match &row.outcome {
            Ok(o) => {
                let result = if o.passed { "PASS" } else { "FAIL" };
                let _ = write!(
                    out,
                    "<tr class=\"{}\"><td>{link}</td><td class=\"result\">{result}</td>",
                    result.to_lowercase()
                );
                for t in &o.tiers {
                    if o.passed {
                        let word = ["bonus", "full", "partial", "none"][usize::from(t.tier.min(3))];
                        let _ = write!(
                            out,
                            "<td class=\"tier t{}\" title=\"{}\">{word}</td>",
                            t.tier.min(3),
                            escape(&t.line)
                        );
                    } else {
                        out.push_str("<td class=\"tier\">-</td>");
                    }
                }
                let failed = o.failed_checks();
                let _ = writeln!(
                    out,
                    "<td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>",
                    o.stats.total_msgs,
                    o.stats.failures,
                    o.stats.duplicates,
                    o.stats.median_latency * 1e3,
                    o.extra.reply_latency_s.p99 * 1e3,
                    escape(&failed.join(", "))
                );
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "<tr class=\"error\"><td>{link}</td><td class=\"result\">ERROR</td><td colspan=\"10\">{}</td></tr>",
                    escape(e)
                );
            }
        }
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}

/// Where `--html-dir` puts what.
pub struct HtmlDir {
    pub dir: PathBuf,
    pages: Vec<Option<String>>,
}

impl HtmlDir {
    pub fn new(dir: &Path) -> Result<HtmlDir, String> {
        check_dir(dir)?;
        Ok(HtmlDir {
            dir: dir.to_path_buf(),
            pages: Vec::new(),
        })
    }

    /// Writes the page of the run just done (if it ran) and returns its file name.
    pub fn add(&mut self, o: Option<&Outcome>, cfg: &Config) -> Result<(), String> {
        let page = o.and_then(|o| run_page(o, cfg));
        let name = match page {
            Some(page) => {
                let taken: Vec<String> = self.pages.iter().flatten().cloned().collect();
                let name = page_name(&cfg.name, &taken);
                write_file(&self.dir.join(&name), &page)?;
                Some(name)
            }
            None => None,
        };
        self.pages.push(name);
        Ok(())
    }

    /// Writes the index of the rows so far.
    pub fn index(&self, rows: &[Row], running: bool) -> Result<(), String> {
        write_file(
            &self.dir.join("index.html"),
            &index_page(rows, &self.pages, running),
        )
    }
}
