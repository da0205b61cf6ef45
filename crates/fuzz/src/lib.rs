//! Coverage-guided fuzz targets for the replica, run by AFL++ on the stable toolchain
//! (`src/bin/`, built with `cargo afl`), and replayed from `corpus/` by `cargo test`.
//!
//! - [`decode`]: any bytes as a datagram. Decoding never panics, and whatever decodes
//!   encodes to something that decodes to the same datagram.
//! - [`node`]: one `Node` fed an arbitrary sequence of peer messages, client requests,
//!   timer fires and clock advances, from peers that follow no rule at all. No input
//!   panics it, and after every one its own invariants hold: its term never decreases,
//!   its commit index never decreases and never passes its log, nothing committed ever
//!   changes, it votes at most once per term, and it applies only what is committed.
//! - [`resp`]: any bytes as what a Redis client sent on a connection, parsed command by
//!   command as the client port does. The parser never panics, each command it returns
//!   lies within the bytes given, every shorter prefix of a command asks for more bytes
//!   (never an error: a command split across reads is parsed the same; past 512 bytes,
//!   a sample of prefixes), and a command's
//!   arguments, encoded again as a RESP array, parse back to the same arguments.
//!
//! The node's input is read from the bytes with `arbitrary`: every byte string is some
//! script, so the fuzzer's mutations always reach the core rather than a parser of ours.

mod script;

use replica::codec::{DATAGRAM_BYTES_MAX, Decoder, encode};
use std::cell::RefCell;

pub use script::{Checker, Reached, node};

thread_local! {
    /// One decoder per thread: a fresh one allocates its buffers for the largest datagram.
    static DECODERS: RefCell<(Decoder, Decoder)> = RefCell::new((Decoder::new(), Decoder::new()));
}

/// Decodes `data` as a datagram; if it decodes, encodes it and checks that the encoding
/// decodes to the same datagram. Returns whether `data` decoded.
pub fn decode(data: &[u8]) -> bool {
    DECODERS.with(|decoders| {
        let (first, second) = &mut *decoders.borrow_mut();
        let mut bytes = data.to_vec();
        let Ok(datagram) = first.decode(&mut bytes) else {
            return false;
        };
        let mut encoded = Vec::new();
        encode(&mut encoded, &datagram);
        if encoded.len() > DATAGRAM_BYTES_MAX {
            // Escaping can lengthen strings past what one datagram carries: our own
            // encoder is never asked to send such a datagram (the core caps appends).
            return true;
        }
        let mut copy = encoded.clone();
        match second.decode(&mut copy) {
            Ok(again) => assert_eq!(
                again,
                datagram,
                "re-decoded differently: {}",
                String::from_utf8_lossy(&encoded)
            ),
            Err(error) => panic!(
                "our encoding does not decode ({error}): {}",
                String::from_utf8_lossy(&encoded)
            ),
        }
        true
    })
}

/// Parses `data` as a connection's input, command after command, checking the parser's
/// contract (see the module doc).
pub fn resp(data: &[u8]) {
    use server::port::REQUEST_LIMITS;
    use server::resp::parse_command;
    let mut args = Vec::new();
    let mut again = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = match parse_command(rest, &REQUEST_LIMITS, &mut args) {
            Ok(Some(n)) => n,
            Ok(None) | Err(_) => return,
        };
        assert!(n > 0 && n <= rest.len(), "{n} bytes of {}", rest.len());
        let words: Vec<&[u8]> = args
            .iter()
            .map(|r| {
                assert!(r.start <= r.end && r.end <= n, "{r:?} past {n}");
                &rest[r.clone()]
            })
            .collect();
        for cut in prefix_cuts(n) {
            assert_eq!(
                parse_command(&rest[..cut], &REQUEST_LIMITS, &mut again),
                Ok(None),
                "a prefix of {cut} bytes of a {n}-byte command"
            );
        }
        let mut encoded = Vec::new();
        server::resp::reply::array(&mut encoded, words.len());
        for word in &words {
            server::resp::reply::bulk(&mut encoded, Some(word));
        }
        assert_eq!(
            parse_command(&encoded, &REQUEST_LIMITS, &mut again),
            Ok(Some(encoded.len()))
        );
        let reparsed: Vec<&[u8]> = again.iter().map(|r| &encoded[r.clone()]).collect();
        assert_eq!(reparsed, words);
        rest = &rest[n..];
    }
}

/// The prefix lengths of an `n`-byte command whose parse is checked: all of them up to
/// 512 bytes; beyond, the first 256 (where the headers are), the last 16 (the line
/// ending) and 16 spread between. Each parse of a prefix scans it, so checking every cut
/// of a 64 KiB inline line took AFL++ ten milliseconds an input.
fn prefix_cuts(n: usize) -> impl Iterator<Item = usize> {
    const ALL_UP_TO: usize = 512;
    const HEAD: usize = 256;
    const TAIL: usize = 16;
    const SPREAD: usize = 16;
    let (head, middle, tail) = if n <= ALL_UP_TO {
        (0..n, 0..0, n..n)
    } else {
        (0..HEAD, 0..SPREAD, n - TAIL..n)
    };
    let step = (n.saturating_sub(HEAD + TAIL) / SPREAD).max(1);
    head.chain(middle.map(move |i| HEAD + i * step)).chain(tail)
}
