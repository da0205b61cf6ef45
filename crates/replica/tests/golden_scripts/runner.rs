//! The file format and its checking: the datadriven layout (etcd-io/raft, cockroachdb's
//! `datadriven`), read and rewritten by a runner of our own.
//!
//! ```text
//! # Comment lines and blank lines between cases are kept as they are.
//! put 1 a=1
//! ----
//! 1->2 AppendEntries term=1 prev=1@1 commit=1 ack entries=[2@1 put a=1]
//! ```
//!
//! A case is one command line, a `----` line, and the expected output up to the next blank
//! line (or the end of the file), so output never holds a blank line; empty output is a
//! `----` line followed by a blank line.
//!
//! Why not the `datadriven` crate: its directive grammar takes only `[A-Za-z0-9_.-]` words
//! (no `3@2`, no `|`), it rewrites when `REWRITE` is set, read inside the library (so
//! honouring `UPDATE_GOLDEN` would mean `std::env::set_var` while other test threads run),
//! and on a mismatch it prints both outputs whole rather than where they differ.

use std::fmt::Write as _;
use std::path::Path;

/// What `UPDATE_GOLDEN=1` does to a file whose output differs: writes the new output.
const UPDATE_VAR: &str = "UPDATE_GOLDEN";

enum Item {
    /// A comment or blank line outside a case, kept as it is.
    Text(String),
    Case {
        /// One-based line number of the command.
        line: usize,
        command: String,
        expected: Vec<String>,
    },
}

fn parse(path: &Path, text: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        if line.trim().is_empty() || line.starts_with('#') {
            items.push(Item::Text(line.to_owned()));
            continue;
        }
        match lines.next() {
            Some((_, "----")) => {}
            _ => panic!(
                "{}:{}: a command is followed by a `----` line",
                path.display(),
                i + 2
            ),
        }
        let mut expected = Vec::new();
        while let Some((_, out)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
            expected.push(out.to_owned());
        }
        items.push(Item::Case {
            line: i + 1,
            command: line.to_owned(),
            expected,
        });
    }
    items
}

fn render(items: &[Item], outputs: &[Vec<String>]) -> String {
    let mut text = String::new();
    let mut outputs = outputs.iter();
    for item in items {
        match item {
            Item::Text(line) => {
                text.push_str(line);
                text.push('\n');
            }
            Item::Case { command, .. } => {
                text.push_str(command);
                text.push_str("\n----\n");
                for line in outputs.next().expect("one output per case") {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
    }
    text
}

/// Runs every case of the script at `path` through `exec`, in order. Without
/// `UPDATE_GOLDEN`, panics at the first case whose output differs, with a diff; with it,
/// runs them all and writes their outputs into the file.
pub fn run(path: &Path, mut exec: impl FnMut(&str) -> Result<Vec<String>, String>) {
    // Named from the crate's root in messages, as `tests/golden_scripts/x.txt:12`.
    let shown = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(path);
    let update = std::env::var(UPDATE_VAR).is_ok_and(|v| !v.is_empty() && v != "0");
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let items = parse(shown, &text);
    let mut outputs = Vec::new();
    for item in &items {
        let Item::Case {
            line,
            command,
            expected,
        } = item
        else {
            continue;
        };
        let output = exec(command)
            .unwrap_or_else(|e| panic!("{}:{line}: `{command}`: {e}", shown.display()));
        if let Some(blank) = output.iter().find(|l| l.trim().is_empty()) {
            panic!(
                "{}:{line}: `{command}` printed a blank line ({blank:?}), which would end its output",
                shown.display()
            );
        }
        if !update && output != *expected {
            panic!(
                "{}:{line}: `{command}` printed other than expected \
                 (`{UPDATE_VAR}=1 cargo test -p replica --test golden_scripts` accepts it)\n{}",
                shown.display(),
                diff(expected, &output, line + 2)
            );
        }
        outputs.push(output);
    }
    let rewritten = render(&items, &outputs);
    if update && rewritten != text {
        std::fs::write(path, rewritten)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("rewrote {}", path.display());
    }
}

/// A line diff of `expected` (whose first line is line `first_line` of the file) against
/// `actual`: `-` lines are expected only, `+` lines printed only, by a longest common
/// subsequence (outputs are short enough for the quadratic table).
fn diff(expected: &[String], actual: &[String], first_line: usize) -> String {
    let (n, m) = (expected.len(), actual.len());
    // common[i][j]: the longest common subsequence of expected[i..] and actual[j..].
    let mut common = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            common[i][j] = if expected[i] == actual[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            let _ = writeln!(out, "  {:>5}  {}", first_line + i, expected[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || common[i + 1][j] >= common[i][j + 1]) {
            let _ = writeln!(out, "- {:>5}  {}", first_line + i, expected[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {:>5}  {}", "", actual[j]);
            j += 1;
        }
    }
    out
}
