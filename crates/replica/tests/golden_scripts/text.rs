//! How the scripts write things: arguments in, messages, entries and times out. One line
//! per message, in the names of the Raft paper, so a golden file reads as a trace.

use raft::NodeId;
use raft::time::Time;
use raft::{
    AppendEntries, AppendEntriesResponse, AsEntryRef, Command, CommandRef, Entry, EntryRef,
    InstallSnapshot, InstallSnapshotResponse, LogIndex, Message, RequestVote, RequestVoteResponse,
    Term, TimeoutNow,
};
use std::str::FromStr;

/// A command line split into its words: bare words in order (`positional`) and
/// `name=value` words (`named`). Every word must be taken, so a misspelt argument is an
/// error rather than silently ignored.
pub struct Args {
    pub command: String,
    positional: Vec<String>,
    named: Vec<(String, String)>,
}

impl Args {
    pub fn parse(line: &str) -> Result<Args, String> {
        let mut words = line.split_whitespace();
        let command = words.next().ok_or("empty command")?.to_owned();
        let mut positional = Vec::new();
        let mut named = Vec::new();
        for word in words {
            match word.split_once('=') {
                Some((name, value)) => named.push((name.to_owned(), value.to_owned())),
                None => positional.push(word.to_owned()),
            }
        }
        Ok(Args {
            command,
            positional,
            named,
        })
    }

    /// The next bare word, if any.
    pub fn next_positional(&mut self) -> Option<String> {
        (!self.positional.is_empty()).then(|| self.positional.remove(0))
    }

    pub fn positional<T: FromStr>(&mut self, what: &str) -> Result<T, String> {
        let word = self.next_positional().ok_or(format!("missing {what}"))?;
        word.parse()
            .map_err(|_| format!("cannot read {what} from {word:?}"))
    }

    /// Takes the bare word `flag` wherever it stands; whether it was there.
    pub fn flag(&mut self, flag: &str) -> bool {
        let found = self.positional.iter().position(|w| w == flag);
        found.map(|i| self.positional.remove(i)).is_some()
    }

    pub fn take_raw(&mut self, name: &str) -> Option<String> {
        let i = self.named.iter().position(|(n, _)| n == name)?;
        Some(self.named.remove(i).1)
    }

    pub fn take<T: FromStr>(&mut self, name: &str) -> Result<Option<T>, String> {
        self.take_raw(name)
            .map(|v| v.parse().map_err(|_| format!("cannot read {name}={v}")))
            .transpose()
    }

    pub fn require<T: FromStr>(&mut self, name: &str) -> Result<T, String> {
        self.take(name)?.ok_or(format!("missing {name}=..."))
    }

    /// The `name=value` words not taken yet, in order (the puts of `put 1 a=1 b=2`).
    pub fn take_all_named(&mut self) -> Vec<(String, String)> {
        std::mem::take(&mut self.named)
    }

    pub fn finish(self) -> Result<(), String> {
        let mut unused: Vec<String> = self.positional;
        unused.extend(self.named.into_iter().map(|(n, v)| format!("{n}={v}")));
        if unused.is_empty() {
            Ok(())
        } else {
            Err(format!("unknown arguments: {}", unused.join(" ")))
        }
    }
}

/// Milliseconds, with up to three decimals: `1200ms`, `1234.567ms`.
pub fn ms(us: u64) -> String {
    let (whole, frac) = (us / 1000, us % 1000);
    if frac == 0 {
        format!("{whole}ms")
    } else {
        let frac = format!("{frac:03}");
        format!("{whole}.{}ms", frac.trim_end_matches('0'))
    }
}

/// Reads milliseconds with up to three decimals into microseconds.
pub fn parse_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("cannot read milliseconds from {text:?}");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}").parse().map_err(|_| bad())?
    };
    Ok(whole * 1000 + frac)
}

pub fn time(t: Time) -> String {
    ms(t.as_micros())
}

/// A replica's ID as the scripts name it: its number, or `none` for no leader.
pub fn id(n: NodeId) -> String {
    if n == NodeId::UNKNOWN {
        "none".to_owned()
    } else {
        n.0.to_string()
    }
}

/// `index@term`, the paper's way of naming an entry's position.
pub fn at(index: LogIndex, term: Term) -> String {
    format!("{}@{}", index.0, term.0)
}

/// `4@2 put a=1` or `5@2 noop`.
pub fn entry(index: LogIndex, e: EntryRef<'_>) -> String {
    match e.command {
        CommandRef::Noop => format!("{} noop", at(index, e.term)),
        CommandRef::Put { key, value } => format!("{} put {key}={value}", at(index, e.term)),
        CommandRef::Membership(text) => format!("{} members [{text}]", at(index, e.term)),
    }
}

fn entries(first: LogIndex, list: &[Entry]) -> String {
    let items: Vec<String> = list
        .iter()
        .enumerate()
        .map(|(k, e)| entry(LogIndex(first.0 + k as u64), e.as_entry_ref()))
        .collect();
    items.join(", ")
}

/// One message, as `from->to Name fields`.
pub fn message(from: NodeId, to: NodeId, m: &Message<Vec<Entry>>) -> String {
    let body = match m {
        Message::RequestVote(v) => format!(
            "RequestVote{}{} term={} last={} round={}",
            if v.pre_vote { " pre" } else { "" },
            if v.transfer { " transfer" } else { "" },
            v.term.0,
            at(v.last_log_index, v.last_log_term),
            ms(v.round_started_us)
        ),
        Message::RequestVoteResponse(r) => format!(
            "RequestVoteResponse{} term={} {} round={}",
            if r.pre_vote { " pre" } else { "" },
            r.term.0,
            if r.vote_granted { "granted" } else { "refused" },
            ms(r.round_started_us)
        ),
        Message::AppendEntries(a) => {
            let mut s = format!(
                "AppendEntries term={} prev={} commit={}",
                a.term.0,
                at(a.prev_log_index, a.prev_log_term),
                a.leader_commit.0
            );
            if a.ack_requested {
                s.push_str(" ack");
            }
            if !a.entries.is_empty() {
                s.push_str(&format!(
                    " entries=[{}]",
                    entries(a.prev_log_index.next(), &a.entries)
                ));
            }
            s
        }
        Message::AppendEntriesResponse(r) => {
            let mut s = format!(
                "AppendEntriesResponse term={} {} match={}",
                r.term.0,
                if r.success { "ok" } else { "reject" },
                r.match_index.0
            );
            if !r.success {
                s.push_str(&format!(" conflict={}", r.conflict_index.0));
                if let Some(term) = r.conflict_term {
                    s.push_str(&format!(" conflict-term={}", term.0));
                }
            }
            s.push_str(&format!(" sent={}", ms(r.sent_at_us)));
            s
        }
        Message::InstallSnapshot(m) => {
            let pairs: Vec<String> = m
                .pairs
                .iter()
                .map(|p| match p.as_entry_ref().command {
                    CommandRef::Put { key, value } => format!("{key}={value}"),
                    CommandRef::Noop => "noop".to_owned(),
                    CommandRef::Membership(text) => format!("members [{text}]"),
                })
                .collect();
            format!(
                "InstallSnapshot term={} last={} offset={} pairs=[{}]{}",
                m.term.0,
                at(m.last_index, m.last_term),
                m.offset,
                pairs.join(", "),
                if m.done { " done" } else { "" }
            )
        }
        Message::InstallSnapshotResponse(r) => format!(
            "InstallSnapshotResponse term={} last={} {} sent={}",
            r.term.0,
            r.last_index.0,
            if r.installed {
                "installed".to_owned()
            } else {
                format!("got={}", r.received)
            },
            ms(r.sent_at_us)
        ),
        Message::TimeoutNow(t) => format!("TimeoutNow term={}", t.term.0),
    };
    format!("{}->{} {body}", id(from), id(to))
}

/// `index@term`, as the scripts write it.
fn parse_at(text: &str) -> Result<(LogIndex, Term), String> {
    let (index, term) = text
        .split_once('@')
        .ok_or(format!("expected index@term, got {text:?}"))?;
    let bad = || format!("cannot read index@term from {text:?}");
    Ok((
        LogIndex(index.parse().map_err(|_| bad())?),
        Term(term.parse().map_err(|_| bad())?),
    ))
}

/// `2:noop,2:a=1`: entries as `term:noop` or `term:key=value`, comma-separated.
fn parse_entries(text: &str) -> Result<Vec<Entry>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|item| {
            let bad = || format!("expected term:noop or term:key=value, got {item:?}");
            let (term, command) = item.split_once(':').ok_or_else(bad)?;
            let term = Term(term.parse().map_err(|_| bad())?);
            let command = match command.split_once('=') {
                None if command == "noop" => Command::Noop,
                Some((key, value)) => Command::Put {
                    key: key.into(),
                    value: value.into(),
                },
                None => return Err(bad()),
            };
            Ok(Entry { term, command })
        })
        .collect()
}

/// A hand-made message: `vote term=5 last=3@2 [pre] [transfer] [round=MS]`,
/// `timeout-now term=5`, `vote-response term=5
/// granted|refused [pre] [round=MS]`, `append term=5 prev=3@2 commit=3 [ack] [sent=MS]
/// [entries=5:noop,5:a=1]`, `append-response term=5 ok|reject match=4 [conflict=I]
/// [conflict-term=T] [sent=MS]`, `snapshot term=5 last=9@2 offset=0 [done]
/// [pairs=a=1,b=2] [sent=MS]`, `snapshot-response term=5 last=9 got=2|installed
/// [sent=MS]`. `sent` defaults to `now`, `round` to `round` (the
/// receiver's round, so that a vote-response answers it unless told otherwise).
pub fn parse_message(
    kind: &str,
    args: &mut Args,
    now: Time,
    round: Time,
) -> Result<Message<Vec<Entry>>, String> {
    let term = Term(args.require("term")?);
    let sent_at_us = match args.take_raw("sent") {
        Some(t) => parse_ms(&t)?,
        None => now.as_micros(),
    };
    let round_started_us = match args.take_raw("round") {
        Some(t) => parse_ms(&t)?,
        None => round.as_micros(),
    };
    let message = match kind {
        "vote" => {
            let (last_log_index, last_log_term) = parse_at(&args.require::<String>("last")?)?;
            Message::RequestVote(RequestVote {
                term,
                last_log_index,
                last_log_term,
                pre_vote: args.flag("pre"),
                round_started_us,
                transfer: args.flag("transfer"),
            })
        }
        "timeout-now" => Message::TimeoutNow(TimeoutNow { term }),
        "vote-response" => {
            let vote_granted = args.flag("granted");
            if vote_granted == args.flag("refused") {
                return Err("a vote-response is `granted` or `refused`".to_owned());
            }
            Message::RequestVoteResponse(RequestVoteResponse {
                term,
                vote_granted,
                pre_vote: args.flag("pre"),
                round_started_us,
            })
        }
        "append" => {
            let (prev_log_index, prev_log_term) = parse_at(&args.require::<String>("prev")?)?;
            let entries = parse_entries(&args.take_raw("entries").unwrap_or_default())?;
            Message::AppendEntries(AppendEntries {
                term,
                prev_log_index,
                prev_log_term,
                leader_commit: LogIndex(args.require("commit")?),
                sent_at_us,
                ack_requested: args.flag("ack"),
                entries,
            })
        }
        "append-response" => {
            let success = args.flag("ok");
            if !success && !args.flag("reject") {
                return Err("an append-response is `ok` or `reject`".to_owned());
            }
            Message::AppendEntriesResponse(AppendEntriesResponse {
                term,
                success,
                match_index: LogIndex(args.require("match")?),
                conflict_index: LogIndex(args.take("conflict")?.unwrap_or(0)),
                conflict_term: args.take("conflict-term")?.map(Term),
                sent_at_us,
            })
        }
        "snapshot" => {
            let (last_index, last_term) = parse_at(&args.require::<String>("last")?)?;
            let pairs = args.take_raw("pairs").unwrap_or_default();
            let pairs = pairs
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (key, value) = p
                        .split_once('=')
                        .ok_or(format!("expected key=value, got {p:?}"))?;
                    Ok(Entry {
                        term: Term(0),
                        command: Command::Put {
                            key: key.into(),
                            value: value.into(),
                        },
                    })
                })
                .collect::<Result<Vec<Entry>, String>>()?;
            Message::InstallSnapshot(InstallSnapshot {
                term,
                last_index,
                last_term,
                offset: args.require("offset")?,
                done: args.flag("done"),
                sent_at_us,
                pairs,
            })
        }
        "snapshot-response" => {
            let installed = args.flag("installed");
            Message::InstallSnapshotResponse(InstallSnapshotResponse {
                term,
                last_index: LogIndex(args.require("last")?),
                received: args.take("got")?.unwrap_or(0),
                installed,
                sent_at_us,
            })
        }
        other => {
            return Err(format!(
                "no message kind {other:?} (vote, vote-response, timeout-now, append, append-response, snapshot, snapshot-response)"
            ));
        }
    };
    Ok(message)
}
