//! Batched UDP: many datagrams per system call (`recvmmsg`, `sendmmsg`).
//!
//! Under load both the replica and kvsim were bound by one system call per datagram (a
//! profile of the leader at 10,000 requests/s put `sendto` and the wake-ups behind it far
//! above decoding and the Raft core). A turn of either event loop now receives up to a
//! batch of datagrams with one `recvmmsg` and sends what the turn produced with one
//! `sendmmsg` per socket.
//!
//! This is the only module that talks to the kernel about datagrams in batches; the
//! sockets themselves stay `mio` sockets (non-blocking, registered with a poll), and
//! callers pass their raw file descriptors in.
//!
//! A datagram that cannot be sent is counted and never stops the rest of the batch; a
//! receive that would block ends a drain. What a failed send costs depends on the
//! datagram: most are lost, as they could be on any network, but one queued with
//! [`SendBatch::queue_retried`] that meets a full socket buffer (`EAGAIN`, `ENOBUFS`)
//! stays queued for the next flush, for the caller to send once the socket is writable.
//! A replica queues its client replies that way: a client never retries on silence, so a
//! lost reply is a request left unanswered.
//!
//! A batch made with [`SendBatch::segmenting`] also sends each run of queued datagrams of
//! one length to one address as one message, which the kernel cuts back into datagrams
//! (UDP generic segmentation offload, `UDP_SEGMENT`, Linux 4.18): the receiver reads the
//! same datagrams, but the sender goes through the IP stack once per run instead of once
//! per datagram. On loopback most of a datagram's cost is there: 32 datagrams of 170 bytes
//! cost 2.6 µs each with `sendmmsg` and 0.43 µs each as one segmented message, measured on
//! the project's VM. A leader's `ok` replies to puts, all of one length, are such a run,
//! and so are the puts kvsim's clients send. A run is sent or refused whole; a kernel that
//! refuses segmentation outright turns it off for that batch, and the run is sent
//! datagram by datagram.

use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// The kernel's cap on messages per `sendmmsg`/`recvmmsg` call (`UIO_MAXIOV`).
pub const BATCH_DATAGRAMS_MAX: usize = 1024;

/// Datagrams in one segmented message, at most (the kernel's `UDP_MAX_SEGMENTS` was 64
/// until Linux 6.9).
pub const SEGMENTS_MAX: usize = 64;
/// Bytes in one segmented message, at most: one UDP payload.
pub const SEGMENTED_BYTES_MAX: usize = 65_507;

/// `UDP_SEGMENT`, the socket option and control message of UDP segmentation offload.
const UDP_SEGMENT: libc::c_int = 103;
/// Room for one `UDP_SEGMENT` control message (a `cmsghdr` and a `u16`, aligned), as
/// `u64`s so that it is aligned for `cmsghdr`.
const SEGMENT_CMSG_WORDS: usize = 3;

/// The largest UDP payload we accept (IPv4 allows 65,507; the classic simulator reads up
/// to 65,535).
pub const RECEIVE_SLOT_BYTES: usize = 65_535;

/// Datagrams received by one call into fixed slots, each big enough for any datagram.
///
/// The slots are one allocation; only the pages the kernel writes into become resident,
/// so a batch of 64 slots costs a few hundred KiB of memory in practice, not 4 MiB.
pub struct RecvBatch {
    slots: Vec<u8>,
    lens: Vec<usize>,
    addrs: Vec<libc::sockaddr_storage>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    received: usize,
}

impl RecvBatch {
    /// A batch of `slots` datagrams (at most [`BATCH_DATAGRAMS_MAX`]).
    pub fn new(slots: usize) -> RecvBatch {
        let slots = slots.clamp(1, BATCH_DATAGRAMS_MAX);
        RecvBatch {
            slots: vec![0; slots * RECEIVE_SLOT_BYTES],
            lens: vec![0; slots],
            // SAFETY: sockaddr_storage, iovec and mmsghdr are plain C structs for which
            // all-zero bytes are a valid value (null pointers, zero lengths).
            addrs: vec![unsafe { mem::zeroed() }; slots],
            iovecs: vec![unsafe { mem::zeroed() }; slots],
            headers: vec![unsafe { mem::zeroed() }; slots],
            received: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.lens.len()
    }

    /// Receives up to `capacity()` datagrams without blocking. `Ok(n)` with `n >= 1`, or
    /// an error (`WouldBlock` when nothing is waiting; `Interrupted` is retried here).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.received = 0;
        // Pointed afresh each call rather than once: `datagram_mut` hands out `&mut`
        // borrows of the slots between calls, and pointers derived before such a borrow
        // would no longer be valid to write through. Sixty-four small stores against a
        // system call.
        let base = self.slots.as_mut_ptr();
        for i in 0..self.lens.len() {
            self.iovecs[i] = libc::iovec {
                // SAFETY: slot `i` lies inside `slots` (len = capacity * slot size).
                iov_base: unsafe { base.add(i * RECEIVE_SLOT_BYTES) }.cast(),
                iov_len: RECEIVE_SLOT_BYTES,
            };
            point_header(
                &mut self.headers[i],
                (&raw mut self.addrs[i]).cast(),
                mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
                &raw mut self.iovecs[i],
            );
        }
        loop {
            // SAFETY: every header points at a live iovec, slot and address of this
            // struct, which outlive the call; `vlen` is the number of headers.
            let n = unsafe {
                libc::recvmmsg(
                    fd,
                    self.headers.as_mut_ptr(),
                    self.headers.len() as u32,
                    libc::MSG_DONTWAIT,
                    std::ptr::null_mut(),
                )
            };
            if n >= 0 {
                let n = n as usize;
                for i in 0..n {
                    self.lens[i] = (self.headers[i].msg_len as usize).min(RECEIVE_SLOT_BYTES);
                }
                self.received = n;
                if n == 0 {
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                return Ok(n);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    /// Datagram `i` of the last `recv` (its bytes, writable so a decoder can unescape
    /// in place) and the address it came from.
    pub fn datagram_mut(&mut self, i: usize) -> (&mut [u8], Option<SocketAddr>) {
        assert!(i < self.received, "datagram {i} of {}", self.received);
        let from = socket_addr_from(&self.addrs[i]);
        let start = i * RECEIVE_SLOT_BYTES;
        (&mut self.slots[start..start + self.lens[i]], from)
    }
}

/// What one `flush` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    pub sent: usize,
    /// Datagrams the kernel refused (buffer full or another error): lost, as one would be
    /// on the network.
    pub lost: usize,
    /// Datagrams queued with [`SendBatch::queue_retried`] that met a full socket buffer:
    /// still queued, first in line for the next flush.
    pub retained: usize,
    /// System calls made.
    pub calls: usize,
}

/// Datagrams queued during a turn, sent with as few `sendmmsg` calls as the kernel allows.
///
/// Each queued datagram has its own reused buffer, which callers fill with the codec's
/// encoders exactly as they filled their single send buffer: nothing is copied to send it.
pub struct SendBatch {
    bufs: Vec<Vec<u8>>,
    addrs: Vec<SockAddr>,
    /// Per queued datagram: kept on a full socket buffer rather than lost.
    retried: Vec<bool>,
    queued: usize,
    /// Of the queued datagrams, the first `retained` are left over from the last flush.
    /// They do not count against `datagrams_max`, so a congested socket never stops the
    /// caller from queueing; the caller bounds how many it lets pile up.
    retained: usize,
    datagrams_max: usize,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
    /// Send runs of datagrams of one length to one address as one segmented message
    /// (cleared if the kernel refuses it).
    segment: bool,
    /// Per message of a flush: its first datagram and how many it carries.
    messages: Vec<(usize, usize)>,
    /// Per message, room for its `UDP_SEGMENT` control message.
    cmsgs: Vec<[u64; SEGMENT_CMSG_WORDS]>,
    /// The first error of the last flush that lost a datagram, for the caller to report.
    pub last_error: Option<io::Error>,
}

impl SendBatch {
    /// A batch that holds up to `datagrams_max` datagrams before the caller must flush.
    pub fn new(datagrams_max: usize) -> SendBatch {
        SendBatch {
            bufs: Vec::new(),
            addrs: Vec::new(),
            retried: Vec::new(),
            queued: 0,
            retained: 0,
            datagrams_max: datagrams_max.clamp(1, BATCH_DATAGRAMS_MAX),
            iovecs: Vec::new(),
            headers: Vec::new(),
            segment: false,
            messages: Vec::new(),
            cmsgs: Vec::new(),
            last_error: None,
        }
    }

    /// The same batch, sending runs of datagrams of one length to one address as one
    /// segmented message each (see the module's documentation).
    pub fn segmenting(mut self) -> SendBatch {
        self.segment = true;
        self
    }

    /// How many datagrams from `first` (of `n` queued) go in one message: a run to one
    /// address, of one kind (retried or not), all of the first one's length but the last,
    /// which may be shorter, within the kernel's limits.
    fn run_from(&self, first: usize, n: usize) -> usize {
        let len = self.bufs[first].len();
        if !self.segment || len == 0 {
            return 1;
        }
        let mut count = 1;
        let mut bytes = len;
        while first + count < n && count < SEGMENTS_MAX {
            let k = first + count;
            let next = self.bufs[k].len();
            if next == 0
                || next > len
                || bytes + next > SEGMENTED_BYTES_MAX
                || self.retried[k] != self.retried[first]
                || !self.addrs[k].same_as(&self.addrs[first])
            {
                break;
            }
            count += 1;
            bytes += next;
            if next < len {
                break;
            }
        }
        count
    }

    pub fn len(&self) -> usize {
        self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Whether the caller must flush before queueing more. Datagrams retained by the last
    /// flush take no room.
    pub fn is_full(&self) -> bool {
        self.queued - self.retained >= self.datagrams_max
    }

    /// Datagrams left over from the last flush, waiting for a writable socket.
    pub fn retained(&self) -> usize {
        self.retained
    }

    /// The buffer for the next datagram, cleared. It is queued only by [`Self::queue`],
    /// so a caller that fills it and changes its mind simply does not call `queue`.
    ///
    /// Panics if the batch is full: flush first.
    pub fn next_buffer(&mut self) -> &mut Vec<u8> {
        assert!(!self.is_full(), "flush a full batch before queueing more");
        if self.queued == self.bufs.len() {
            self.bufs.push(Vec::new());
            self.addrs.push(SockAddr::UNSPECIFIED);
            self.retried.push(false);
        }
        let buf = &mut self.bufs[self.queued];
        buf.clear();
        buf
    }

    /// Queues the buffer last returned by [`Self::next_buffer`] for `to`. If the kernel
    /// refuses it, it is lost.
    pub fn queue(&mut self, to: SocketAddr) {
        self.queue_with(to, false);
    }

    /// Queues the buffer last returned by [`Self::next_buffer`] for `to`. If it meets a
    /// full socket buffer it stays queued for the next flush; any other error loses it.
    pub fn queue_retried(&mut self, to: SocketAddr) {
        self.queue_with(to, true);
    }

    fn queue_with(&mut self, to: SocketAddr, retried: bool) {
        assert!(!self.is_full(), "flush a full batch before queueing more");
        assert!(self.queued < self.bufs.len(), "next_buffer comes first");
        self.addrs[self.queued] = SockAddr::from(to);
        self.retried[self.queued] = retried;
        self.queued += 1;
    }

    /// Forgets everything queued, unsent, retained datagrams included (its buffers are
    /// kept for reuse).
    pub fn clear(&mut self) {
        self.queued = 0;
        self.retained = 0;
    }

    /// The bytes of queued datagram `i`.
    #[cfg(test)]
    fn queued_bytes(&self, i: usize) -> &[u8] {
        assert!(i < self.queued);
        &self.bufs[i]
    }

    /// Sends everything queued, in order, retained datagrams first. A datagram the
    /// kernel refuses is lost, or retained if it was queued with
    /// [`Self::queue_retried`] and the socket buffer was full; the rest still go.
    /// Afterwards only the retained datagrams are queued.
    pub fn flush(&mut self, fd: RawFd) -> Flushed {
        self.flush_with(|headers| {
            // SAFETY: `headers` point at live iovecs, buffers and addresses owned by the
            // batch, unchanged during the call.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    headers.as_mut_ptr(),
                    headers.len() as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent >= 0 {
                Ok(sent as usize)
            } else {
                Err(io::Error::last_os_error())
            }
        })
    }

    /// `flush`, with the system call passed in: `send` sends a prefix of the messages
    /// it is given and says how many, or fails on the first.
    fn flush_with(
        &mut self,
        mut send: impl FnMut(&mut [libc::mmsghdr]) -> io::Result<usize>,
    ) -> Flushed {
        let mut flushed = Flushed::default();
        self.last_error = None;
        let n = self.queued;
        if n == 0 {
            return flushed;
        }
        // SAFETY (the resize): an all-zero iovec is a valid value.
        self.iovecs.resize(n, unsafe { mem::zeroed() });
        for i in 0..n {
            self.iovecs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: self.bufs[i].len(),
            };
        }
        let mut kept = 0;
        // The first datagram not yet sent or refused.
        let mut pos = 0;
        'messages: while pos < n {
            self.plan_messages(pos, n);
            let mut next = 0;
            while next < self.messages.len() {
                flushed.calls += 1;
                let end = self.messages.len().min(next + BATCH_DATAGRAMS_MAX);
                match send(&mut self.headers[next..end]) {
                    Ok(0) => {
                        // Not expected of sendmmsg with datagrams to send; treat it as a
                        // refusal of the first rather than spin.
                        let error = io::ErrorKind::WriteZero.into();
                        self.refuse_message(next, &mut kept, &mut flushed, error);
                        next += 1;
                    }
                    Ok(sent) => {
                        for m in next..next + sent {
                            flushed.sent += self.messages[m].1;
                        }
                        next += sent;
                    }
                    Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                    Err(error) if self.messages[next].1 > 1 && refuses_segmentation(&error) => {
                        // This kernel (or this route) does not segment: this batch never
                        // asks again, and sends the rest datagram by datagram.
                        self.segment = false;
                        pos = self.messages[next].0;
                        continue 'messages;
                    }
                    Err(error) => {
                        self.refuse_message(next, &mut kept, &mut flushed, error);
                        next += 1;
                    }
                }
            }
            break;
        }
        self.queued = kept;
        self.retained = kept;
        flushed.retained = kept;
        flushed
    }

    /// Cuts datagrams `first..n` into messages and points a header at each.
    fn plan_messages(&mut self, first: usize, n: usize) {
        self.messages.clear();
        let mut i = first;
        while i < n {
            let count = self.run_from(i, n);
            self.messages.push((i, count));
            i += count;
        }
        let m = self.messages.len();
        // SAFETY (the resize): an all-zero mmsghdr is a valid value.
        self.headers.resize(m, unsafe { mem::zeroed() });
        self.cmsgs.resize(m, [0; SEGMENT_CMSG_WORDS]);
        for k in 0..m {
            let (start, count) = self.messages[k];
            let (name, namelen) = self.addrs[start].as_ptr_len();
            point_header(
                &mut self.headers[k],
                name.cast_mut().cast(),
                namelen,
                &raw mut self.iovecs[start],
            );
            if count > 1 {
                let segment = self.bufs[start].len() as u16;
                let header = &mut self.headers[k].msg_hdr;
                header.msg_iovlen = count as _;
                point_segment_cmsg(header, &mut self.cmsgs[k], segment);
            }
        }
    }

    /// The kernel refused message `m`: each of its datagrams is kept or lost.
    fn refuse_message(
        &mut self,
        m: usize,
        kept: &mut usize,
        flushed: &mut Flushed,
        error: io::Error,
    ) {
        let (start, count) = self.messages[m];
        for i in start..start + count {
            let error = error.raw_os_error().map_or_else(
                || io::Error::from(error.kind()),
                io::Error::from_raw_os_error,
            );
            self.refuse(i, kept, flushed, error);
        }
    }

    /// The kernel refused datagram `i`: keep it (moved to position `kept`, preserving
    /// order) if it asked to be retried and the socket was only full, else lose it.
    fn refuse(&mut self, i: usize, kept: &mut usize, flushed: &mut Flushed, error: io::Error) {
        let congested = error.kind() == io::ErrorKind::WouldBlock
            || error.raw_os_error() == Some(libc::ENOBUFS);
        if self.retried[i] && congested {
            self.bufs.swap(*kept, i);
            self.addrs.swap(*kept, i);
            self.retried.swap(*kept, i);
            *kept += 1;
        } else {
            flushed.lost += 1;
            if self.last_error.is_none() {
                self.last_error = Some(error);
            }
        }
    }
}

/// Errors that say the kernel will not segment (no offload on the route, an old kernel),
/// rather than that this message could not go.
fn refuses_segmentation(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
}

/// Gives `header` one control message, `UDP_SEGMENT` with datagrams of `segment` bytes,
/// written into `room`.
fn point_segment_cmsg(
    header: &mut libc::msghdr,
    room: &mut [u64; SEGMENT_CMSG_WORDS],
    segment: u16,
) {
    // SAFETY: CMSG_SPACE and CMSG_LEN only compute sizes; `room` is aligned for cmsghdr
    // and at least CMSG_SPACE(2) bytes long (16 + 8), which CMSG_FIRSTHDR then finds.
    unsafe {
        let space = libc::CMSG_SPACE(mem::size_of::<u16>() as u32) as usize;
        debug_assert!(space <= mem::size_of_val(room));
        header.msg_control = room.as_mut_ptr().cast();
        header.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(header);
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
        libc::CMSG_DATA(cmsg).cast::<u16>().write_unaligned(segment);
    }
}

/// Points `header` at one address and one buffer, with no control data.
fn point_header(
    header: &mut libc::mmsghdr,
    name: *mut libc::c_void,
    namelen: libc::socklen_t,
    iov: *mut libc::iovec,
) {
    header.msg_hdr.msg_name = name;
    header.msg_hdr.msg_namelen = namelen;
    header.msg_hdr.msg_iov = iov;
    header.msg_hdr.msg_iovlen = 1;
    header.msg_hdr.msg_control = std::ptr::null_mut();
    header.msg_hdr.msg_controllen = 0;
    header.msg_hdr.msg_flags = 0;
    header.msg_len = 0;
}

/// A socket address in the C layout `sendmmsg` wants, built once when queued.
#[derive(Clone, Copy)]
enum SockAddr {
    V4(libc::sockaddr_in),
    V6(libc::sockaddr_in6),
}

impl SockAddr {
    /// The same address (compared field by field: the structs have padding).
    fn same_as(&self, other: &SockAddr) -> bool {
        match (self, other) {
            (SockAddr::V4(a), SockAddr::V4(b)) => {
                a.sin_port == b.sin_port && a.sin_addr.s_addr == b.sin_addr.s_addr
            }
            (SockAddr::V6(a), SockAddr::V6(b)) => {
                a.sin6_port == b.sin6_port
                    && a.sin6_addr.s6_addr == b.sin6_addr.s6_addr
                    && a.sin6_scope_id == b.sin6_scope_id
            }
            _ => false,
        }
    }

    const UNSPECIFIED: SockAddr = SockAddr::V4(libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: 0 },
        sin_zero: [0; 8],
    });

    fn as_ptr_len(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            SockAddr::V4(a) => (
                (a as *const libc::sockaddr_in).cast(),
                mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            ),
            SockAddr::V6(a) => (
                (a as *const libc::sockaddr_in6).cast(),
                mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
            ),
        }
    }
}

impl From<SocketAddr> for SockAddr {
    fn from(addr: SocketAddr) -> SockAddr {
        match addr {
            SocketAddr::V4(a) => SockAddr::V4(libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            }),
            SocketAddr::V6(a) => SockAddr::V6(libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            }),
        }
    }
}

fn socket_addr_from(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in here (family AF_INET), and
            // sockaddr_storage is large and aligned enough for it.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6 (family AF_INET6).
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn pair() -> (std::net::UdpSocket, std::net::UdpSocket) {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        (a, b)
    }

    fn recv_all(batch: &mut RecvBatch, fd: RawFd, want: usize) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while got.len() < want && std::time::Instant::now() < deadline {
            match batch.recv(fd) {
                Ok(n) => {
                    for i in 0..n {
                        let (bytes, from) = batch.datagram_mut(i);
                        got.push((bytes.to_vec(), from.unwrap()));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        got
    }

    fn recv_payloads(batch: &mut RecvBatch, fd: RawFd, want: usize) -> Vec<Vec<u8>> {
        recv_all(batch, fd, want)
            .into_iter()
            .map(|(bytes, _)| bytes)
            .collect()
    }

    #[test]
    fn a_batch_arrives_whole_in_order_with_its_source() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        // More than one receive batch, fewer than the default receive buffer holds (about
        // 256 small datagrams), so none is dropped on the way.
        let mut send = SendBatch::new(200);
        for i in 0..200u32 {
            let buf = send.next_buffer();
            buf.extend_from_slice(format!("datagram {i}").as_bytes());
            send.queue(to);
        }
        assert!(send.is_full());
        let flushed = send.flush(a.as_raw_fd());
        assert_eq!((flushed.sent, flushed.lost), (200, 0));
        assert!(flushed.calls >= 1 && flushed.calls < 200, "{flushed:?}");
        assert!(send.is_empty());

        let mut recv = RecvBatch::new(64);
        let got = recv_all(&mut recv, b.as_raw_fd(), 200);
        assert_eq!(got.len(), 200);
        for (i, (bytes, from)) in got.iter().enumerate() {
            assert_eq!(bytes, format!("datagram {i}").as_bytes());
            assert_eq!(*from, a.local_addr().unwrap());
        }
        assert_eq!(
            recv.recv(b.as_raw_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn buffers_are_reused_and_an_unqueued_buffer_is_not_sent() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut send = SendBatch::new(4);
        send.next_buffer().extend_from_slice(b"never sent");
        send.next_buffer().extend_from_slice(b"first");
        send.queue(to);
        assert_eq!(send.queued_bytes(0), b"first");
        send.next_buffer().extend_from_slice(b"second, longer");
        send.queue(to);
        assert_eq!(send.flush(a.as_raw_fd()).sent, 2);
        send.next_buffer().extend_from_slice(b"third");
        send.queue(to);
        assert_eq!(send.flush(a.as_raw_fd()).sent, 1);
        let mut recv = RecvBatch::new(8);
        let got = recv_payloads(&mut recv, b.as_raw_fd(), 3);
        assert_eq!(
            got,
            vec![
                b"first".to_vec(),
                b"second, longer".to_vec(),
                b"third".to_vec()
            ]
        );
    }

    #[test]
    fn a_refused_datagram_is_lost_and_the_rest_still_go() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut send = SendBatch::new(3);
        send.next_buffer().extend_from_slice(b"one");
        send.queue(to);
        // Larger than any UDP datagram: the kernel refuses it (EMSGSIZE).
        send.next_buffer().resize(70_000, b'x');
        send.queue(to);
        send.next_buffer().extend_from_slice(b"three");
        send.queue(to);
        let flushed = send.flush(a.as_raw_fd());
        assert_eq!((flushed.sent, flushed.lost), (2, 1), "{flushed:?}");
        assert!(send.last_error.is_some());
        let mut recv = RecvBatch::new(8);
        let got = recv_payloads(&mut recv, b.as_raw_fd(), 2);
        assert_eq!(got, vec![b"one".to_vec(), b"three".to_vec()]);
    }

    /// A stand-in for `sendmmsg` that fails the datagrams whose payload starts with
    /// `full` as a full buffer would, `bad` with another error, and sends the rest,
    /// recording their payloads.
    fn fake_kernel(
        sent: &mut Vec<Vec<u8>>,
    ) -> impl FnMut(&mut [libc::mmsghdr]) -> io::Result<usize> + '_ {
        move |headers| {
            let mut n = 0;
            for header in headers.iter() {
                // SAFETY: the batch pointed each header at one live iovec and buffer.
                let payload = unsafe {
                    let iov = &*header.msg_hdr.msg_iov;
                    std::slice::from_raw_parts(iov.iov_base.cast::<u8>(), iov.iov_len).to_vec()
                };
                let refusal = if payload.starts_with(b"full") {
                    Some(io::Error::from_raw_os_error(libc::EAGAIN))
                } else if payload.starts_with(b"nobufs") {
                    Some(io::Error::from_raw_os_error(libc::ENOBUFS))
                } else if payload.starts_with(b"bad") {
                    Some(io::Error::from_raw_os_error(libc::EMSGSIZE))
                } else {
                    None
                };
                match refusal {
                    // sendmmsg reports an error only when the first datagram fails.
                    Some(error) if n == 0 => return Err(error),
                    Some(_) => break,
                    None => {
                        sent.push(payload);
                        n += 1;
                    }
                }
            }
            Ok(n)
        }
    }

    fn queue(batch: &mut SendBatch, payload: &[u8], retried: bool) {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        batch.next_buffer().extend_from_slice(payload);
        if retried {
            batch.queue_retried(to);
        } else {
            batch.queue(to);
        }
    }

    #[test]
    fn a_retried_datagram_survives_a_full_buffer_and_goes_first_next_time() {
        let mut batch = SendBatch::new(3);
        queue(&mut batch, b"raft 1", false);
        queue(&mut batch, b"full: reply a", true);
        queue(&mut batch, b"full: raft 2", false);
        let mut sent = Vec::new();
        let flushed = batch.flush_with(fake_kernel(&mut sent));
        assert_eq!((flushed.sent, flushed.lost, flushed.retained), (1, 1, 1));
        assert_eq!(sent, vec![b"raft 1".to_vec()]);
        assert_eq!(batch.retained(), 1);
        // The retained reply takes no room: three more fit before the batch is full.
        for payload in [&b"nobufs: reply b"[..], b"bad: reply c", b"reply d"] {
            assert!(!batch.is_full());
            queue(&mut batch, payload, true);
        }
        assert!(batch.is_full());
        let mut sent = Vec::new();
        let flushed = batch.flush_with(fake_kernel(&mut sent));
        // Still full for "reply a" and "reply b": both kept, in order; "reply c" met an
        // error a retry would not cure, so it is lost.
        assert_eq!((flushed.sent, flushed.lost, flushed.retained), (1, 1, 2));
        assert_eq!(sent, vec![b"reply d".to_vec()]);
        assert_eq!(
            batch.last_error.as_ref().and_then(io::Error::raw_os_error),
            Some(libc::EMSGSIZE)
        );
        // The socket drains: what was kept goes, in the order it was queued.
        for i in 0..batch.queued {
            let kept = batch.bufs[i].split_off(0);
            batch.bufs[i] = kept
                .strip_prefix(b"full: ".as_slice())
                .or_else(|| kept.strip_prefix(b"nobufs: ".as_slice()))
                .unwrap()
                .to_vec();
        }
        let mut sent = Vec::new();
        let flushed = batch.flush_with(fake_kernel(&mut sent));
        assert_eq!((flushed.sent, flushed.lost, flushed.retained), (2, 0, 0));
        assert_eq!(sent, vec![b"reply a".to_vec(), b"reply b".to_vec()]);
        assert!(batch.is_empty());
    }

    #[test]
    fn runs_of_one_length_arrive_as_the_same_datagrams_in_order() {
        let (a, b) = pair();
        let (_, c) = pair();
        let (to_b, to_c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
        let mut send = SendBatch::new(200).segmenting();
        let mut want_b = Vec::new();
        let mut want_c = Vec::new();
        // Runs of equal lengths (one ending in a shorter datagram), runs broken by another
        // address, by a longer datagram, by a retried one, and more than SEGMENTS_MAX in a row.
        let mut payloads: Vec<(Vec<u8>, bool, bool)> = Vec::new();
        for i in 0..100u32 {
            payloads.push((format!("put {i:04}").into_bytes(), true, false));
        }
        payloads.push((b"put".to_vec(), true, false));
        payloads.push((b"to c 1".to_vec(), false, false));
        payloads.push((b"to c 2".to_vec(), false, false));
        payloads.push((b"a longer one, alone".to_vec(), true, false));
        payloads.push((b"retried 1".to_vec(), true, true));
        payloads.push((b"retried 2".to_vec(), true, true));
        payloads.push((b"plain 3".to_vec(), true, false));
        for (bytes, to_first, retried) in &payloads {
            send.next_buffer().extend_from_slice(bytes);
            let to = if *to_first { to_b } else { to_c };
            if *retried {
                send.queue_retried(to);
            } else {
                send.queue(to);
            }
            if *to_first {
                want_b.push(bytes.clone());
            } else {
                want_c.push(bytes.clone());
            }
        }
        let flushed = send.flush(a.as_raw_fd());
        assert_eq!((flushed.sent, flushed.lost, flushed.retained), (107, 0, 0));
        assert!(send.segment, "loopback segments");
        let mut recv = RecvBatch::new(64);
        assert_eq!(
            recv_payloads(&mut recv, b.as_raw_fd(), want_b.len()),
            want_b
        );
        assert_eq!(
            recv_payloads(&mut recv, c.as_raw_fd(), want_c.len()),
            want_c
        );
        // 100 "put NNNN" and the short "put" make two runs (64 and 37); then a run per
        // change of address, length or kind: 6 messages in all.
        let runs: Vec<usize> = send.messages.iter().map(|&(_, n)| n).collect();
        assert_eq!(runs, [64, 37, 2, 1, 2, 1]);
    }

    /// A stand-in for `sendmmsg` with segmentation: a message carrying several datagrams
    /// fails with `EIO` if `segments` is false, else goes whole; single datagrams go.
    fn segmenting_kernel(
        segments: bool,
        sent: &mut Vec<usize>,
    ) -> impl FnMut(&mut [libc::mmsghdr]) -> io::Result<usize> + '_ {
        move |headers| {
            let mut n = 0;
            for header in headers.iter() {
                let count = header.msg_hdr.msg_iovlen;
                if count > 1 && !segments {
                    if n == 0 {
                        return Err(io::Error::from_raw_os_error(libc::EIO));
                    }
                    break;
                }
                sent.push(count);
                n += 1;
            }
            Ok(n)
        }
    }

    #[test]
    fn a_kernel_that_will_not_segment_gets_datagrams_one_by_one() {
        let mut batch = SendBatch::new(8).segmenting();
        for _ in 0..3 {
            queue(&mut batch, b"same", false);
        }
        queue(&mut batch, b"different", false);
        let mut sent = Vec::new();
        let flushed = batch.flush_with(segmenting_kernel(false, &mut sent));
        assert_eq!((flushed.sent, flushed.lost), (4, 0));
        assert_eq!(sent, [1, 1, 1, 1]);
        assert!(!batch.segment, "not asked again");
        let mut batch = SendBatch::new(8).segmenting();
        for _ in 0..3 {
            queue(&mut batch, b"same", false);
        }
        let mut sent = Vec::new();
        batch.flush_with(segmenting_kernel(true, &mut sent));
        assert_eq!(sent, [3]);
    }

    #[test]
    fn a_run_that_meets_a_full_buffer_is_kept_whole() {
        let mut batch = SendBatch::new(8).segmenting();
        queue(&mut batch, b"full: reply 1", true);
        queue(&mut batch, b"full: reply 2", true);
        queue(&mut batch, b"raft", false);
        let flushed = batch.flush_with(|headers| {
            if headers[0].msg_hdr.msg_iovlen == 2 {
                Err(io::Error::from_raw_os_error(libc::EAGAIN))
            } else {
                Ok(headers.len())
            }
        });
        assert_eq!((flushed.sent, flushed.lost, flushed.retained), (1, 0, 2));
        assert_eq!(batch.queued_bytes(0), b"full: reply 1");
        assert_eq!(batch.queued_bytes(1), b"full: reply 2");
    }

    #[test]
    fn the_largest_datagram_fits_a_slot() {
        let (a, b) = pair();
        let mut send = SendBatch::new(1);
        send.next_buffer().resize(65_507, b'y');
        send.queue(b.local_addr().unwrap());
        assert_eq!(send.flush(a.as_raw_fd()).sent, 1);
        let mut recv = RecvBatch::new(2);
        let got = recv_all(&mut recv, b.as_raw_fd(), 1);
        assert_eq!(got[0].0.len(), 65_507);
    }

    #[test]
    fn addresses_convert_both_ways() {
        for addr in ["127.0.0.1:4242", "[::1]:4243"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let c = SockAddr::from(addr);
            // SAFETY: zeroed storage is valid; we copy at most its size.
            let mut storage: libc::sockaddr_storage = unsafe { mem::zeroed() };
            let (ptr, len) = c.as_ptr_len();
            unsafe {
                std::ptr::copy_nonoverlapping(
                    ptr.cast::<u8>(),
                    (&raw mut storage).cast::<u8>(),
                    len as usize,
                );
            }
            assert_eq!(socket_addr_from(&storage), Some(addr));
        }
    }
}
