//! What the plugin reads and sets on links outside hull's attach/detach:
//! MAC addresses and IP addresses for results and CHECK (via
//! getifaddrs), and the up flag of `lo` (via `SIOC[GS]IFFLAGS`). Both act in
//! the network namespace of the calling thread; [`in_netns`] switches it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::path::Path;

use bridge::NetError;
use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;
use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::error::{code, CniError};
use super::result::format_mac;

/// One link as getifaddrs reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Link {
    pub up: bool,
    pub mac: Option<String>,
    /// IPv4 addresses with their prefix lengths.
    pub ipv4: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses with their prefix lengths.
    pub ipv6: Vec<(Ipv6Addr, u8)>,
}

/// The links of the calling thread's network namespace, by name.
pub fn links() -> io::Result<BTreeMap<String, Link>> {
    let mut links: BTreeMap<String, Link> = BTreeMap::new();
    for ifa in getifaddrs()? {
        let link = links.entry(ifa.interface_name).or_default();
        link.up |= ifa.flags.contains(InterfaceFlags::IFF_UP);
        let Some(addr) = ifa.address else { continue };
        if let Some(mac) = addr.as_link_addr().and_then(|l| l.addr()) {
            link.mac = Some(format_mac(mac));
        } else if let Some(v4) = addr.as_sockaddr_in() {
            link.ipv4.push((v4.ip(), prefix_len(ifa.netmask.as_ref())));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            link.ipv6.push((v6.ip(), prefix_len6(ifa.netmask.as_ref())));
        }
    }
    Ok(links)
}

fn prefix_len(netmask: Option<&SockaddrStorage>) -> u8 {
    let mask = netmask
        .and_then(|m| m.as_sockaddr_in())
        .map_or(0, |m| u32::from(m.ip()));
    u8::try_from(mask.count_ones()).expect("at most 32")
}

fn prefix_len6(netmask: Option<&SockaddrStorage>) -> u8 {
    let mask = netmask
        .and_then(|m| m.as_sockaddr_in6())
        .map_or(0, |m| u128::from(m.ip()));
    u8::try_from(mask.count_ones()).expect("at most 128")
}

/// Sets link `name` up or down.
pub fn set_up(name: &str, up: bool) -> io::Result<()> {
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: the socket is open and req a valid ifreq naming the link; the
    // kernel fills in ifru_flags, the union member read and written below.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        let iff_up = libc::IFF_UP as libc::c_short;
        if up {
            req.ifr_ifru.ifru_flags |= iff_up;
        } else {
            req.ifr_ifru.ifru_flags &= !iff_up;
        }
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs `f` in the network namespace at `netns` (`what` names the step for
/// errors).
pub fn in_netns<T>(
    netns: &Path,
    what: &str,
    f: impl FnOnce() -> io::Result<T>,
) -> Result<T, CniError> {
    let ns = File::open(netns).map_err(|e| {
        let msg = format!("open network namespace {}: {e}", netns.display());
        CniError::new(code::NETWORKING, msg)
    })?;
    bridge::within_netns(&ns, || {
        f().map_err(|source| NetError::Io {
            what: what.to_owned(),
            source,
        })
    })
    .map_err(|e| CniError::net(&format!("in network namespace {}", netns.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_with_its_address() {
        let links = links().unwrap();
        let lo = &links["lo"];
        assert!(lo.ipv4.contains(&(Ipv4Addr::LOCALHOST, 8)), "{lo:?}");
        let loopback6 = std::fs::read_to_string("/proc/net/if_inet6")
            .is_ok_and(|t| t.lines().any(|l| l.starts_with(&format!("{:032x}", 1))));
        if loopback6 {
            assert!(lo.ipv6.contains(&(Ipv6Addr::LOCALHOST, 128)), "{lo:?}");
        }
    }
}
