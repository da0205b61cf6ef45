//! A small RESP2 client over a blocking `TcpStream`: one command, one reply, with a
//! deadline. Hand-written rather than the `redis` crate so that what happened to a
//! request is never hidden behind a retry: the caller sees whether the command could not
//! have reached the node ([`Failure::NotSent`]) or may have ([`Failure::Unknown`]), and
//! reads `-MOVED`, `-CLUSTERDOWN` and `-TIMEOUT` itself.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Bytes in one reply, at most: the workload's values are short, `INFO` is a few hundred.
const REPLY_BYTES_MAX: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

/// Why a command got no reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No connection: the node cannot have seen the command.
    NotSent(String),
    /// The command was (maybe partly) sent and no whole reply came back in time: it may
    /// or may not have taken effect.
    Unknown(String),
}

pub struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
}

impl Connection {
    pub fn connect(address: SocketAddr, timeout: Duration) -> Result<Connection, Failure> {
        let stream = TcpStream::connect_timeout(&address, timeout.max(Duration::from_millis(1)))
            .map_err(|e| Failure::NotSent(format!("connect {address}: {e}")))?;
        let _ = stream.set_nodelay(true);
        Ok(Connection {
            stream,
            input: Vec::with_capacity(512),
        })
    }

    /// Sends `args` as one command and waits for its reply until `deadline`. After a
    /// [`Failure::Unknown`] the connection must be dropped: a late reply would be taken
    /// for the next command's.
    pub fn command(&mut self, args: &[&[u8]], deadline: Instant) -> Result<Reply, Failure> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        if self.is_closed() {
            return Err(Failure::NotSent(
                "the node had closed the connection".into(),
            ));
        }
        let unknown = |e: io::Error| Failure::Unknown(format!("send: {e}"));
        self.stream
            .set_write_timeout(Some(remaining(deadline)?))
            .map_err(unknown)?;
        self.stream.write_all(&request).map_err(unknown)?;
        loop {
            if let Some((reply, used)) = parse(&self.input)? {
                self.input.drain(..used);
                return Ok(reply);
            }
            if self.input.len() > REPLY_BYTES_MAX {
                return Err(Failure::Unknown("reply too large".into()));
            }
            self.stream
                .set_read_timeout(Some(remaining(deadline)?))
                .map_err(|e| Failure::Unknown(format!("receive: {e}")))?;
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(Failure::Unknown("connection closed by the node".into())),
                Ok(n) => self.input.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Failure::Unknown("timed out waiting for the reply".into()));
                }
                Err(e) => return Err(Failure::Unknown(format!("receive: {e}"))),
            }
        }
    }
}

impl Connection {
    /// Whether the node closed the connection before anything more was sent: a node
    /// killed and started again closes every connection it had, and a command sent on
    /// one afterwards would be recorded as of unknown outcome when it cannot have run.
    fn is_closed(&self) -> bool {
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let closed = match self.stream.peek(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => e.kind() != io::ErrorKind::WouldBlock,
        };
        let _ = self.stream.set_nonblocking(false);
        closed
    }
}

fn remaining(deadline: Instant) -> Result<Duration, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure::Unknown("timed out waiting for the reply".into()));
    }
    Ok(left)
}

/// One whole reply at the start of `input` and its length, or `None` if more is needed.
pub fn parse(input: &[u8]) -> Result<Option<(Reply, usize)>, Failure> {
    let Some(end) = input.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let Some((&kind, rest)) = input[..end].split_first() else {
        return Err(protocol("empty line"));
    };
    let line = std::str::from_utf8(rest).map_err(|_| protocol("line is not UTF-8"))?;
    let after = end + 2;
    let number = || line.parse::<i64>().map_err(|_| protocol("bad length"));
    match kind {
        b'+' => Ok(Some((Reply::Simple(line.to_owned()), after))),
        b'-' => Ok(Some((Reply::Error(line.to_owned()), after))),
        b':' => Ok(Some((Reply::Integer(number()?), after))),
        b'$' => {
            let n = number()?;
            if n < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let n = n as usize;
            if input.len() < after + n + 2 {
                return Ok(None);
            }
            let bytes = input[after..after + n].to_vec();
            Ok(Some((Reply::Bulk(Some(bytes)), after + n + 2)))
        }
        b'*' => {
            let n = number()?;
            let mut items = Vec::new();
            let mut at = after;
            for _ in 0..n.max(0) {
                let Some((item, used)) = parse(&input[at..])? else {
                    return Ok(None);
                };
                items.push(item);
                at += used;
            }
            Ok(Some((Reply::Array(items), at)))
        }
        _ => Err(protocol("unknown reply type")),
    }
}

fn protocol(what: &str) -> Failure {
    Failure::Unknown(format!("protocol error in the reply: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_and_waits_for_the_rest() {
        let cases: [(&[u8], Reply); 6] = [
            (b"+OK\r\n", Reply::Simple("OK".into())),
            (
                b"-MOVED 1 127.0.0.1:7000\r\n",
                Reply::Error("MOVED 1 127.0.0.1:7000".into()),
            ),
            (b":3\r\n", Reply::Integer(3)),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"$2\r\nab\r\n", Reply::Bulk(Some(b"ab".to_vec()))),
            (
                b"*2\r\n$1\r\na\r\n:1\r\n",
                Reply::Array(vec![Reply::Bulk(Some(b"a".to_vec())), Reply::Integer(1)]),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(parse(bytes).unwrap(), Some((expected, bytes.len())));
            assert_eq!(parse(&bytes[..bytes.len() - 1]).unwrap(), None, "{bytes:?}");
        }
        assert!(parse(b"?x\r\n").is_err());
    }
}
