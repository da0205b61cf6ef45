//! Start-up: the signal pipe, the socket and the hello.

use crate::codec::{Body, Datagram, encode};
use datagram::receive_buffer::{RECEIVE_BUFFER_BYTES, ask_for_receive_buffer};
use mio::net::{UdpSocket, UnixStream};
use raft::NodeId;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

/// SIGTERM and SIGINT each write a byte to a Unix socket pair; returns the read end.
pub(super) fn signal_pipe() -> io::Result<UnixStream> {
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, write.try_clone()?)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, write)?;
    Ok(UnixStream::from_std(read))
}

/// Makes a write past the process's file size limit fail with `EFBIG` instead of killing
/// the process (SIGXFSZ's default): a durable replica that cannot write must stay up and
/// stop acknowledging, as on a full disk, not vanish. Call before any thread that writes
/// is started: a write past the limit before it kills the process.
pub(super) fn survive_file_size_limit() {
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread is started.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Binds `127.0.0.1:0` and sends the hello on the still-blocking socket, so it leaves
/// even if the send buffer were somehow full; then switches to non-blocking for mio.
pub(super) fn bind_and_say_hello(id: NodeId, simulator: SocketAddr) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    let mut hello = Vec::with_capacity(64);
    encode(
        &mut hello,
        &Datagram {
            src: id,
            dst: NodeId::BROADCAST,
            leader: NodeId::UNKNOWN,
            body: Body::Hello,
        },
    );
    loop {
        match socket.send_to(&hello, simulator) {
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    socket.set_nonblocking(true)?;
    ask_for_receive_buffer(&socket, RECEIVE_BUFFER_BYTES);
    Ok(UdpSocket::from_std(socket))
}

/// Binds a cluster-mode node's peer address as given (any interface the cluster file
/// names), non-blocking, with the same receive buffer as the classic replica.
pub(super) fn bind_peer_socket(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(address).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("cannot bind peer address {address}: {error}"),
        )
    })?;
    socket.set_nonblocking(true)?;
    ask_for_receive_buffer(&socket, RECEIVE_BUFFER_BYTES);
    Ok(UdpSocket::from_std(socket))
}
