//! The kernel receive buffer of a UDP socket, asked for larger than the default.
//!
//! The default (about 208 KiB) holds some 200 datagrams of a few hundred bytes: a reader
//! descheduled for 20 ms at 10,000 datagrams/s overflows it, and the kernel then drops
//! what arrives, silently (seen as unanswered requests under high load). The replica,
//! kvsim's sockets and kvsim's stand-in replicas all read at such rates.

use std::net::UdpSocket;
use std::os::fd::AsRawFd;

/// The receive buffer asked for. The kernel grants at most `net.core.rmem_max` (4 MiB on
/// the machines this project is measured on).
pub const RECEIVE_BUFFER_BYTES: usize = 4 << 20;

/// Asks for a receive buffer of `bytes`. Best effort: if the kernel refuses, the default
/// buffer stays and only overload suffers.
pub fn ask_for_receive_buffer(socket: &UdpSocket, bytes: usize) {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live c_int; the fd is
    // the socket's own and stays open for the call.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_grows_past_the_default() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let get = |socket: &UdpSocket| {
            let mut size: libc::c_int = 0;
            let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
            // SAFETY: getsockopt writes at most `len` bytes into a live c_int.
            let r = unsafe {
                libc::getsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    (&mut size as *mut libc::c_int).cast(),
                    &mut len,
                )
            };
            assert_eq!(r, 0);
            size
        };
        let before = get(&socket);
        ask_for_receive_buffer(&socket, 1 << 20);
        // The kernel doubles what it grants for its own bookkeeping, capped by rmem_max.
        assert!(get(&socket) > before, "{} <= {before}", get(&socket));
    }
}
