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
//!   (never an error: a command split across reads is parsed the same; the prefixes
//!   that end at its framing, and a sample of the rest), and a command's
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
        for cut in prefix_cuts(&rest[..n]) {
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

/// The prefix lengths of a command whose parse is checked: every one that ends next to
/// a byte of the protocol's framing (`*`, `$`, `\r`, `\n` in an array; only the line
/// end in an inline command, which is read whole before its words are split), the
/// first 32 and the last 16, and 16 spread between; at most `FRAMING_CUTS_MAX` of the
/// framing ones. Each parse of a prefix scans it, so checking every cut of long commands
/// held AFL++ to a few hundred inputs a second, and the cuts where a parser could answer
/// an error instead of asking for more are at the framing.
fn prefix_cuts(command: &[u8]) -> impl Iterator<Item = usize> + '_ {
    const HEAD: usize = 32;
    const TAIL: usize = 16;
    const SPREAD: usize = 16;
    const FRAMING_CUTS_MAX: usize = 256;
    let n = command.len();
    let array = command.first() == Some(&b'*');
    let framing = move |b: u8| match b {
        b'\r' | b'\n' => true,
        b'*' | b'$' => array,
        _ => false,
    };
    let step = (n / SPREAD).max(1);
    let mut framing_cuts = 0;
    (0..n).filter(move |&cut| {
        let near_framing = framing(command[cut]) || (cut > 0 && framing(command[cut - 1]));
        let keep_framing = near_framing && framing_cuts < FRAMING_CUTS_MAX;
        framing_cuts += usize::from(keep_framing);
        cut < HEAD || cut + TAIL >= n || cut % step == 0 || keep_framing
    })
}
