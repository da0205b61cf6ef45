//! Replies in RESP2, appended to a connection's output buffer.

/// `+text\r\n`. `text` must hold no CR or LF.
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `-CODE message\r\n`: `error` starts with its code (`ERR`, `MOVED`, ...). Line breaks
/// in it become spaces, so an error can never break the framing.
pub fn error(out: &mut Vec<u8>, error: &str) {
    out.push(b'-');
    out.extend(
        error
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// `:n\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `$len\r\nbytes\r\n`, or the null bulk string `$-1\r\n` for `None`.
pub fn bulk(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    let Some(bytes) = bytes else {
        out.extend_from_slice(b"$-1\r\n");
        return;
    };
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// `*n\r\n`: the header of an array of `n` replies, which follow.
pub fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `+OK\r\n`.
pub fn ok(out: &mut Vec<u8>) {
    out.extend_from_slice(b"+OK\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_each_kind() {
        let mut out = Vec::new();
        simple(&mut out, "PONG");
        error(&mut out, "ERR bad\r\nthing");
        integer(&mut out, -3);
        bulk(&mut out, Some(b"ab"));
        bulk(&mut out, None);
        array(&mut out, 2);
        ok(&mut out);
        assert_eq!(
            out,
            b"+PONG\r\n-ERR bad  thing\r\n:-3\r\n$2\r\nab\r\n$-1\r\n*2\r\n+OK\r\n"
        );
    }
}
