//! Requests in RESP2: an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), what
//! every client library and `redis-cli` send, or an inline command (`PING\r\n`), what a
//! person types into `telnet`.
//!
//! The parser is total and incremental: given the bytes read so far it returns a whole
//! command, "not yet", or a protocol error, and never panics or reads past what it was
//! given. Every length is checked against [`Limits`] when its header arrives, before the
//! bytes it announces are waited for, so a client cannot make a connection buffer more
//! than one command of bounded size. Arguments are returned as ranges into the caller's
//! buffer: nothing is copied and, once `args` has grown, nothing is allocated.

use std::ops::Range;

/// What one request may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Arguments in one command, the name included.
    pub args_max: usize,
    /// Bytes in one bulk string (an argument).
    pub bulk_bytes_max: usize,
    /// Bytes in one inline command, its line ending included.
    pub inline_bytes_max: usize,
}

/// A request that breaks the protocol or a limit: the connection cannot be read further
/// (its next byte's meaning is unknown), so it is answered `-ERR Protocol error: ...` and
/// closed, as Redis does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

/// The longest header line: `*` or `$`, a length, `\r\n`.
const HEADER_BYTES_MAX: usize = 24;

/// Parses one command from the front of `input`. `Ok(Some(n))`: a command of `n` bytes,
/// its arguments' ranges in `args` (empty for an empty array or a blank inline line,
/// which Redis skips). `Ok(None)`: more bytes are needed.
pub fn parse_command(
    input: &[u8],
    limits: &Limits,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    args.clear();
    match input.first() {
        None => Ok(None),
        Some(b'*') => parse_array(input, limits, args),
        Some(_) => parse_inline(input, limits, args),
    }
}

fn parse_array(
    input: &[u8],
    limits: &Limits,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    let Some((count, mut at)) = header(input, 0, "invalid multibulk length")? else {
        return Ok(None);
    };
    if count > limits.args_max as u64 {
        return Err(ProtocolError("invalid multibulk length"));
    }
    for _ in 0..count {
        match input.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(ProtocolError("expected '$'")),
        }
        let Some((len, data)) = header(input, at, "invalid bulk length")? else {
            return Ok(None);
        };
        if len > limits.bulk_bytes_max as u64 {
            return Err(ProtocolError("invalid bulk length"));
        }
        // Both fit in usize: len is at most bulk_bytes_max, data within input.
        let end = data + len as usize;
        if input.len() < end + 2 {
            return Ok(None);
        }
        if &input[end..end + 2] != b"\r\n" {
            return Err(ProtocolError("bulk string not followed by CRLF"));
        }
        args.push(data..end);
        at = end + 2;
    }
    Ok(Some(at))
}

/// A header line at `at`: its marker byte, a decimal length, `\r\n`. Returns the length
/// and where the bytes after the line start; `None` if the line is not all there.
fn header(
    input: &[u8],
    at: usize,
    error: &'static str,
) -> Result<Option<(u64, usize)>, ProtocolError> {
    let line = &input[at + 1..input.len().min(at + HEADER_BYTES_MAX)];
    let Some(cr) = line.iter().position(|&b| b == b'\r') else {
        if line.len() + 1 >= HEADER_BYTES_MAX {
            return Err(ProtocolError(error));
        }
        return Ok(None);
    };
    let Some(&lf) = line.get(cr + 1) else {
        return Ok(None);
    };
    if lf != b'\n' {
        return Err(ProtocolError(error));
    }
    let digits = &line[..cr];
    // A negative count (a null array or string) is no request.
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ProtocolError(error));
    }
    let n = digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Ok(Some((n, at + 1 + cr + 2)))
}

/// A line of words separated by spaces or tabs, ended by `\n` (a `\r` before it is
/// dropped). Unlike Redis, quotes are not interpreted: inline commands are for a person
/// at a terminal, and every client library sends arrays.
fn parse_inline(
    input: &[u8],
    limits: &Limits,
    args: &mut Vec<Range<usize>>,
) -> Result<Option<usize>, ProtocolError> {
    let window = &input[..input.len().min(limits.inline_bytes_max)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if input.len() >= limits.inline_bytes_max {
            return Err(ProtocolError("too big inline request"));
        }
        return Ok(None);
    };
    let end = if lf > 0 && input[lf - 1] == b'\r' {
        lf - 1
    } else {
        lf
    };
    // A word is bounded as a bulk string is, or an inline command would carry what the
    // array form refuses.
    let word = |range: Range<usize>| {
        if range.len() > limits.bulk_bytes_max {
            Err(ProtocolError("too big argument in inline request"))
        } else {
            Ok(range)
        }
    };
    let mut start = None;
    for (i, &b) in input[..end].iter().enumerate() {
        let blank = b == b' ' || b == b'\t';
        match (start, blank) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                args.push(word(s..i)?);
                start = None;
            }
            _ => {}
        }
        if args.len() > limits.args_max {
            return Err(ProtocolError("too many arguments in inline request"));
        }
    }
    if let Some(s) = start {
        args.push(word(s..end)?);
    }
    if args.len() > limits.args_max {
        return Err(ProtocolError("too many arguments in inline request"));
    }
    Ok(Some(lf + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        args_max: 8,
        bulk_bytes_max: 16,
        inline_bytes_max: 64,
    };

    /// A command's words and its length in bytes.
    type Words<'a> = (Vec<&'a [u8]>, usize);

    fn words(input: &[u8]) -> Result<Option<Words<'_>>, ProtocolError> {
        let mut args = Vec::new();
        Ok(parse_command(input, &LIMITS, &mut args)?
            .map(|n| (args.iter().map(|r| &input[r.clone()]).collect(), n)))
    }

    #[test]
    fn parses_arrays_and_inline_commands() {
        let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
        assert_eq!(
            words(set),
            Ok(Some((vec![&b"SET"[..], b"k", b""], set.len())))
        );
        assert_eq!(
            words(b"PING  x\r\nrest"),
            Ok(Some((vec![&b"PING"[..], b"x"], 9)))
        );
        assert_eq!(words(b"\r\n"), Ok(Some((vec![], 2))));
        assert_eq!(words(b"*0\r\n"), Ok(Some((vec![], 4))));
    }

    #[test]
    fn every_prefix_of_a_command_asks_for_more() {
        let set = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n";
        for cut in 0..set.len() {
            assert_eq!(words(&set[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(matches!(words(set), Ok(Some((_, n))) if n == set.len()));
    }

    #[test]
    fn refuses_what_breaks_the_protocol_or_a_limit() {
        for bad in [
            &b"*1\r\n$17\r\n"[..],         // bulk over the limit, refused before its bytes
            b"*9\r\n",                     // more arguments than allowed
            b"*-1\r\n",                    // null array
            b"*1\r\n:1\r\n",               // not a bulk string
            b"*1\r\n$1\r\nab\r\n",         // no CRLF after the bulk
            b"*1x\r\n",                    // not a number
            b"*12345678901234567890123\r", // header too long
            b"*1\r\n$1\rx",
        ] {
            assert!(words(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(words(&[b'x'; 64]).is_err(), "inline line over the limit");
    }

    /// Found by AFL++ on the `resp` target: an inline word of 4,478 bytes passed while the
    /// same word as a bulk string was refused, so a value over the limit reached the store.
    #[test]
    fn an_inline_word_is_bounded_as_a_bulk_string_is() {
        assert_eq!(
            words(b"SET k 0123456789abcdef\r\n"),
            Ok(Some((vec![&b"SET"[..], b"k", b"0123456789abcdef"], 24)))
        );
        assert_eq!(
            words(b"SET k 0123456789abcdefg\r\n"),
            Err(ProtocolError("too big argument in inline request"))
        );
        assert_eq!(
            words(b"0123456789abcdefg\n"),
            Err(ProtocolError("too big argument in inline request"))
        );
    }
}
