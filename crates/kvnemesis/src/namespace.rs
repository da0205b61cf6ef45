//! The run's private network namespace: everything kvnemesis starts lives in it, its
//! nftables rules touch only it, and it vanishes with the last process in it. Made with
//! `unshare(CLONE_NEWNET)` on the main thread before any other thread or child exists,
//! so that every thread and node after it inherits the namespace.

use std::io;

/// Moves this process into a fresh network namespace and brings its loopback up (a new
/// namespace's `lo` is down). Root is needed.
pub fn enter_private_network() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "kvnemesis needs root: it makes a private network namespace and nftables rules (run it as root or under sudo)"
                .into(),
        );
    }
    // SAFETY: unshare takes flags only; called before any thread is spawned, so no
    // thread is left behind in the machine's namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "cannot make a private network namespace: {}",
            io::Error::last_os_error()
        ));
    }
    loopback_up().map_err(|e| format!("cannot bring up the namespace's loopback: {e}"))
}

/// `ip link set lo up`, without needing `ip`: the interface flags by ioctl.
fn loopback_up() -> io::Result<()> {
    // SAFETY: a plain socket call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
        *slot = *byte as libc::c_char;
    }
    // SAFETY: `request` names the interface and outlives both calls; the kernel reads
    // and writes only the ifreq it is given.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) < 0 {
            Err(io::Error::last_os_error())
        } else {
            request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &request) < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: fd is ours and closed once.
    unsafe { libc::close(fd) };
    result
}
