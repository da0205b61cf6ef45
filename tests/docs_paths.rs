//! The docs name only paths that exist: README.md and every `docs/*.md` are read, and each
//! repository path they name must be there, from the repository's root. A file moved or
//! deleted without its docs fails here, naming the doc and the path.
//!
//! What counts as a repository path:
//! - in an inline code span, any word that starts with a top-level folder of the
//!   repository (`crates/`, `src/`, `tests/`, `benches/`, `examples/`, `configs/`, `docs/`,
//!   `scripts/`, `.ci/`), or is a root file's name (a capitalised name with an extension, as
//!   `Cargo.toml` or `README.md`; in `docs/`, one beside the doc counts too; a name all in
//!   capitals is a placeholder, as `FILE` is, unless it is Markdown). A span may be a whole
//!   command line: each word is taken alone, an option's value after `=` too, and a
//!   trailing `:line`, `::item` or punctuation is not part of the path;
//! - the target of a Markdown link or image that is not a web address.
//!
//! Fenced code blocks are not read: they hold command output and layouts whose paths are
//! relative to a crate. A path with a pattern in it (`*.txt`, `<file>`) must have its
//! folder, and for `*` at least one file that matches.

use std::path::{Path, PathBuf};

/// The repository's top-level folders whose paths the docs name. `examples/` is gone (its
/// last example was deleted in `107aaf6`), so a path into it names something that is not.
const FOLDERS: [&str; 9] = [
    "crates/",
    "src/",
    "tests/",
    "benches/",
    "examples/",
    "configs/",
    "docs/",
    "scripts/",
    ".ci/",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, then `docs/*.md` in name order.
fn docs() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    docs.insert(0, root().join("README.md"));
    docs
}

/// The text outside fenced code blocks, as paragraphs (code spans do not cross one).
fn paragraphs(markdown: &str) -> Vec<String> {
    let mut paragraphs = Vec::new();
    let mut current = String::new();
    let mut fence: Option<&str> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        if let Some(open) = fence {
            if trimmed.starts_with(open) {
                fence = None;
            }
            continue;
        }
        if let Some(open) = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f)) {
            fence = Some(open);
        } else if trimmed.is_empty() {
            paragraphs.push(std::mem::take(&mut current));
            continue;
        } else {
            current.push_str(line);
            current.push('\n');
            continue;
        }
        paragraphs.push(std::mem::take(&mut current));
    }
    paragraphs.push(current);
    paragraphs.retain(|paragraph| !paragraph.is_empty());
    paragraphs
}

/// The contents of the inline code spans of a paragraph: a run of backticks opens one, and
/// the next run of as many closes it; an opening run with no closer is plain text.
fn code_spans(paragraph: &str) -> Vec<String> {
    let text: Vec<char> = paragraph.chars().collect();
    let run_at = |start: usize| text[start..].iter().take_while(|&&c| c == '`').count();
    let mut spans = Vec::new();
    let mut at = 0;
    while at < text.len() {
        if text[at] != '`' {
            at += 1;
            continue;
        }
        let opening = run_at(at);
        let content_start = at + opening;
        let mut search = content_start;
        let mut closed = None;
        while search < text.len() {
            if text[search] == '`' {
                let run = run_at(search);
                if run == opening {
                    closed = Some(search);
                    break;
                }
                search += run;
            } else {
                search += 1;
            }
        }
        match closed {
            Some(end) => {
                let content: String = text[content_start..end].iter().collect();
                spans.push(content.replace('\n', " "));
                at = end + opening;
            }
            None => at = content_start,
        }
    }
    spans
}

/// The targets of the links and images of a paragraph that are neither web addresses nor
/// anchors in the same page, without their `#fragment`.
fn link_targets(paragraph: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = paragraph;
    while let Some(open) = rest.find("](") {
        rest = &rest[open + 2..];
        let Some(close) = rest.find(')') else { break };
        let target = rest[..close].trim();
        let target = target.split('#').next().unwrap_or_default();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            targets.push(target.to_string());
        }
        rest = &rest[close..];
    }
    targets
}

/// The words of a code span that name repository paths, cleaned of what follows a path in
/// prose or on a command line.
fn paths_in_span(span: &str) -> Vec<String> {
    span.split_whitespace()
        .map(|word| word.rsplit('=').next().unwrap_or(word))
        .map(|word| word.trim_start_matches(['(', '[', '"', '\'']))
        .map(strip_suffixes)
        .filter(|word| FOLDERS.iter().any(|folder| word.starts_with(folder)) || is_root_file(word))
        .map(str::to_string)
        .collect()
}

/// `path:32`, `path:32-40`, `path::item`, and trailing punctuation are not the path.
fn strip_suffixes(word: &str) -> &str {
    let word = word.split("::").next().unwrap_or(word);
    let word = match word.split_once(':') {
        Some((path, after)) if after.chars().all(|c| c.is_ascii_digit() || c == '-') => path,
        _ => word,
    };
    word.trim_end_matches(['.', ',', ';', ':', ')', ']', '"', '\''])
}

/// `Cargo.toml`, `README.md`: a capitalised file name with an extension and no folder.
/// `CLUSTER.toml` is a placeholder for a name the reader chooses, as `FILE` is.
fn is_root_file(word: &str) -> bool {
    let Some((stem, extension)) = word.split_once('.') else {
        return false;
    };
    let placeholder = !stem.chars().any(|c| c.is_ascii_lowercase()) && extension != "md";
    !word.contains('/')
        && !placeholder
        && stem.starts_with(|c: char| c.is_ascii_uppercase())
        && stem
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !extension.is_empty()
        && extension.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Does `path` (relative to `base`) exist? A pattern's folder must, and a `*` must match.
fn exists(base: &Path, path: &str) -> bool {
    let mut at = base.to_path_buf();
    let components: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (index, component) in components.iter().enumerate() {
        if component.contains(['<', '{', '[']) || component.contains("...") {
            return at.is_dir();
        }
        if component.contains('*') {
            let last = index + 1 == components.len();
            return at.is_dir() && (!last || matches_any(&at, component));
        }
        at.push(component);
    }
    at.exists()
}

/// Does some entry of `dir` match `pattern`, in which `*` stands for any run of characters?
fn matches_any(dir: &Path, pattern: &str) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries
        .filter_map(Result::ok)
        .any(|entry| glob_match(pattern, &entry.file_name().to_string_lossy()))
}

fn glob_match(pattern: &str, name: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    for (index, piece) in pieces.iter().enumerate() {
        if index + 1 == pieces.len() {
            return rest.ends_with(piece);
        }
        match rest.find(piece) {
            Some(found) => rest = &rest[found + piece.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Every path `doc` names that is not there, as `doc: path (how it was named)`.
fn missing_in(doc: &Path, markdown: &str) -> Vec<String> {
    let name = doc
        .strip_prefix(root())
        .unwrap_or(doc)
        .display()
        .to_string();
    let beside = doc.parent().unwrap_or(root());
    let mut missing = Vec::new();
    for paragraph in paragraphs(markdown) {
        for span in code_spans(&paragraph) {
            for path in paths_in_span(&span) {
                let found = exists(root(), &path) || (is_root_file(&path) && exists(beside, &path));
                if !found {
                    missing.push(format!("{name}: `{path}` (in `{span}`)"));
                }
            }
        }
        for target in link_targets(&paragraph) {
            if !exists(beside, &target) {
                missing.push(format!("{name}: link to {target}"));
            }
        }
    }
    missing
}

#[test]
fn every_path_the_docs_name_exists() {
    let mut missing = Vec::new();
    for doc in docs() {
        let markdown = std::fs::read_to_string(&doc).expect("a readable doc");
        missing.extend(missing_in(&doc, &markdown));
    }
    assert!(
        missing.is_empty(),
        "paths named in the docs that do not exist:\n{}",
        missing.join("\n")
    );
}

#[test]
fn a_missing_path_is_found_in_prose_in_commands_and_in_links() {
    let doc = root().join("docs/EXAMPLE.md");
    let markdown = "See `crates/no-such-crate/src/lib.rs:12` and\n\
        `cargo test && target/release/kvsim configs/classic/simple-1.json --json=docs/no-such.md`;\n\
        `Cargo.toml`, `Nosuch.toml`, `NOSUCH.md`, `--config CLUSTER.toml`,\n\
        `configs/extra/*.json`, `configs/extra/*.yaml`,\n\
        `crates/kvsim/src/<file>.rs`, `kvsim::run`, `page.css` and [a link](NOSUCH.md#x).\n\
        \n\
        ```\n\
        crates/also-missing/ is in a fence, not read\n\
        ```\n";
    let missing = missing_in(&doc, markdown);
    let paths: Vec<&str> = missing
        .iter()
        .map(|line| line.split(": ").nth(1).unwrap_or_default())
        .collect();
    assert_eq!(
        paths,
        [
            "`crates/no-such-crate/src/lib.rs` (in `crates/no-such-crate/src/lib.rs:12`)",
            "`docs/no-such.md` (in `cargo test && target/release/kvsim configs/classic/simple-1.json --json=docs/no-such.md`)",
            "`Nosuch.toml` (in `Nosuch.toml`)",
            "`NOSUCH.md` (in `NOSUCH.md`)",
            "`configs/extra/*.yaml` (in `configs/extra/*.yaml`)",
            "link to NOSUCH.md",
        ],
        "{missing:#?}"
    );
    assert!(missing[0].starts_with("docs/EXAMPLE.md: "), "{missing:?}");
}

#[test]
fn a_span_may_cross_a_line_and_an_unclosed_backtick_is_text() {
    assert_eq!(
        code_spans("a `crates/replica/tests/\nmessage_floor.rs` b ``x`y`` c ` d"),
        ["crates/replica/tests/ message_floor.rs", "x`y"]
    );
}
