//! The replica's command line:
//!
//! ```text
//! 3700kvstore [--debug-log DIR] [--data-dir DIR [--cluster NAME]] <port> <my id> <peer id> [<peer id> ...]
//! ```
//!
//! Parsed by hand rather than with clap because the contract is tiny and exact: on any error
//! the binary prints one line, [`USAGE`] and the reason, and exits with status 2.

use raft::NodeId;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The one line printed on a bad command line (followed by the reason).
pub const USAGE: &str = "usage: 3700kvstore [--debug-log DIR] [--data-dir DIR [--cluster NAME]] <port> <my id> <peer id> [<peer id> ...]";
/// The exit status for a bad command line.
pub const USAGE_EXIT_STATUS: u8 = 2;
/// The flag naming a debug log directory; flags come before the positional arguments.
pub const DEBUG_LOG_FLAG: &str = "--debug-log";
/// The flag naming the data directory that makes the replica durable.
pub const DATA_DIR_FLAG: &str = "--data-dir";
/// The flag naming the cluster, written into a new data directory and checked against
/// it at every later start: two clusters with the same replica ids are told apart.
pub const CLUSTER_FLAG: &str = "--cluster";

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReplicaArgs {
    /// The simulator's UDP port on 127.0.0.1.
    pub port: u16,
    pub id: NodeId,
    /// Sorted ascending, without `id`, without duplicates, non-empty.
    pub peers: Vec<NodeId>,
    pub debug_log_dir: Option<PathBuf>,
    /// Where the replica keeps its term, vote and log; `None`: in memory only.
    pub data_dir: Option<PathBuf>,
    /// The cluster's name (`--cluster`; empty if not given).
    pub cluster: String,
    /// Experiment knobs; the binary fills them from the environment.
    pub tuning: crate::tuning::Tuning,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ArgsError {
    NotUtf8,
    /// A flag without its value.
    MissingValue(&'static str),
    UnknownOption(String),
    MissingPort,
    BadPort(String),
    MissingId,
    BadId(String),
    /// `FFFF` means broadcast/unknown and cannot name a replica.
    ReservedId(String),
    NoPeers,
    SelfAsPeer(NodeId),
    DuplicatePeer(NodeId),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::NotUtf8 => write!(f, "arguments must be UTF-8"),
            ArgsError::MissingValue(flag) => write!(f, "{flag} needs a directory"),
            ArgsError::UnknownOption(o) => write!(f, "unknown option {o:?}"),
            ArgsError::MissingPort => write!(f, "missing port"),
            ArgsError::BadPort(p) => write!(f, "port {p:?} is not a number in 1..=65535"),
            ArgsError::MissingId => write!(f, "missing my id"),
            ArgsError::BadId(id) => write!(f, "id {id:?} is not exactly 4 hex characters"),
            ArgsError::ReservedId(id) => write!(f, "id {id:?} is reserved (broadcast/unknown)"),
            ArgsError::NoPeers => write!(f, "no peer ids"),
            ArgsError::SelfAsPeer(id) => write!(f, "my id {id} is among the peers"),
            ArgsError::DuplicatePeer(id) => write!(f, "peer {id} given twice"),
        }
    }
}

impl std::error::Error for ArgsError {}

impl ArgsError {
    /// The single stderr line for this error.
    pub fn usage_line(&self) -> String {
        format!("{USAGE} (error: {self})")
    }
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<ReplicaArgs, ArgsError>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.into().into_string().map_err(|_| ArgsError::NotUtf8))
        .collect::<Result<_, _>>()?;
    let mut rest = args.as_slice();
    let mut debug_log_dir = None;
    let mut data_dir = None;
    let mut cluster = None;
    while let Some(first) = rest.first() {
        if !first.starts_with('-') {
            break;
        }
        // `--flag DIR` or `--flag=DIR`.
        let (name, inline) = match first.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (first.as_str(), None),
        };
        let (flag, slot) = match name {
            DEBUG_LOG_FLAG => (DEBUG_LOG_FLAG, &mut debug_log_dir),
            DATA_DIR_FLAG => (DATA_DIR_FLAG, &mut data_dir),
            CLUSTER_FLAG => (CLUSTER_FLAG, &mut cluster),
            _ => return Err(ArgsError::UnknownOption(first.clone())),
        };
        let (value, used) = match inline {
            Some(value) => (Some(value), 1),
            None => (rest.get(1).map(String::as_str), 2),
        };
        match value {
            Some(value) if !value.is_empty() => *slot = Some(value.to_owned()),
            _ => return Err(ArgsError::MissingValue(flag)),
        }
        rest = &rest[used..];
    }
    let (port, rest) = rest.split_first().ok_or(ArgsError::MissingPort)?;
    let port = parse_port(port)?;
    let (id, peer_args) = rest.split_first().ok_or(ArgsError::MissingId)?;
    let id = parse_id(id)?;
    if peer_args.is_empty() {
        return Err(ArgsError::NoPeers);
    }
    let mut peers = Vec::with_capacity(peer_args.len());
    for text in peer_args {
        let peer = parse_id(text)?;
        if peer == id {
            return Err(ArgsError::SelfAsPeer(peer));
        }
        if peers.contains(&peer) {
            return Err(ArgsError::DuplicatePeer(peer));
        }
        peers.push(peer);
    }
    // Fixed iteration order everywhere downstream (traces and seeds replay identically).
    peers.sort_unstable();
    Ok(ReplicaArgs {
        port,
        id,
        peers,
        debug_log_dir: debug_log_dir.map(PathBuf::from),
        data_dir: data_dir.map(PathBuf::from),
        cluster: cluster.unwrap_or_default(),
        tuning: crate::tuning::Tuning::default(),
    })
}

fn parse_port(text: &str) -> Result<u16, ArgsError> {
    // `u16::from_str` accepts a leading '+'; a port is plain digits.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ArgsError::BadPort(text.to_owned()));
    }
    match text.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(ArgsError::BadPort(text.to_owned())),
    }
}

fn parse_id(text: &str) -> Result<NodeId, ArgsError> {
    match NodeId::parse(text) {
        Some(NodeId::BROADCAST) => Err(ArgsError::ReservedId(text.to_owned())),
        Some(id) => Ok(id),
        None => Err(ArgsError::BadId(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(line: &str) -> Result<ReplicaArgs, ArgsError> {
        parse(line.split_whitespace())
    }

    #[test]
    fn parses_and_sorts_peers() {
        let args = parse_str("40000 0001 0004 0000 0002 000a").unwrap();
        assert_eq!(args.port, 40000);
        assert_eq!(args.id, NodeId(1));
        assert_eq!(
            args.peers,
            vec![NodeId(0), NodeId(2), NodeId(4), NodeId(0xA)]
        );
        assert_eq!(args.debug_log_dir, None);
    }

    #[test]
    fn debug_log_flag_before_positionals() {
        let args = parse_str("--debug-log /tmp/logs 1 0000 0001").unwrap();
        assert_eq!(args.debug_log_dir, Some(PathBuf::from("/tmp/logs")));
        assert_eq!(args.port, 1);
        let args = parse_str("--debug-log=/tmp/x 65535 0000 0001").unwrap();
        assert_eq!(args.debug_log_dir, Some(PathBuf::from("/tmp/x")));
        assert_eq!(args.port, 65535);
        assert_eq!(
            parse_str("--debug-log"),
            Err(ArgsError::MissingValue(DEBUG_LOG_FLAG))
        );
        let args = parse_str("--data-dir /d --debug-log=/l 1 0000 0001").unwrap();
        assert_eq!(args.data_dir, Some(PathBuf::from("/d")));
        assert_eq!(args.debug_log_dir, Some(PathBuf::from("/l")));
        assert_eq!(
            parse_str("--data-dir= 1 0000 0001"),
            Err(ArgsError::MissingValue(DATA_DIR_FLAG))
        );
        assert_eq!(
            parse_str("--verbose 1 0000 0001"),
            Err(ArgsError::UnknownOption("--verbose".into()))
        );
    }

    #[test]
    fn missing_arguments() {
        assert_eq!(parse_str(""), Err(ArgsError::MissingPort));
        assert_eq!(parse_str("4000"), Err(ArgsError::MissingId));
        assert_eq!(parse_str("4000 0000"), Err(ArgsError::NoPeers));
    }

    #[test]
    fn bad_ports() {
        for port in [
            "abc",
            "-1",
            "+80",
            "0",
            "65536",
            "99999999999",
            "80x",
            "1.5",
        ] {
            let line = format!("{port} 0000 0001");
            let expected = if port.starts_with('-') {
                ArgsError::UnknownOption(port.into())
            } else {
                ArgsError::BadPort(port.into())
            };
            assert_eq!(parse_str(&line), Err(expected), "{line}");
        }
    }

    #[test]
    fn bad_ids() {
        for id in ["001", "00001", "zzzz", "0x01"] {
            assert_eq!(
                parse_str(&format!("4000 {id} 0001")),
                Err(ArgsError::BadId(id.into()))
            );
            assert_eq!(
                parse_str(&format!("4000 0000 {id}")),
                Err(ArgsError::BadId(id.into()))
            );
        }
        assert_eq!(
            parse_str("4000 FFFF 0001"),
            Err(ArgsError::ReservedId("FFFF".into()))
        );
        assert_eq!(
            parse_str("4000 0000 ffff"),
            Err(ArgsError::ReservedId("ffff".into()))
        );
    }

    #[test]
    fn own_id_and_duplicate_peers() {
        assert_eq!(
            parse_str("4000 0001 0000 0001"),
            Err(ArgsError::SelfAsPeer(NodeId(1)))
        );
        assert_eq!(
            parse_str("4000 0001 0002 0000 0002"),
            Err(ArgsError::DuplicatePeer(NodeId(2)))
        );
        // Case does not make a different ID.
        assert_eq!(
            parse_str("4000 000a 000A"),
            Err(ArgsError::SelfAsPeer(NodeId(0xA)))
        );
    }

    #[test]
    fn non_utf8_argument() {
        use std::os::unix::ffi::OsStringExt;
        let bad = OsString::from_vec(vec![b'4', 0xFF]);
        let args = vec![bad, "0000".into(), "0001".into()];
        assert_eq!(parse(args), Err(ArgsError::NotUtf8));
    }

    #[test]
    fn usage_line_is_one_line() {
        let line = ArgsError::NoPeers.usage_line();
        assert!(line.starts_with(USAGE));
        assert!(!line.contains('\n'));
    }
}
