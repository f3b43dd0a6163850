//! `linux.netDevices`: host network interfaces moved into the container's
//! network namespace (runtime-spec 1.2; runc 1.2 and later).
//!
//! Each device is taken down, moved (and renamed, in the same request, so
//! no name can clash on the way), given back its permanent global
//! addresses (the kernel drops addresses on a move) and brought up, before
//! the createRuntime and prestart hooks run. Its MTU and MAC address move
//! with it.
//!
//! Nothing moves it back: as the spec requires, the namespace's owner
//! decides its lifecycle. When the container's own namespace goes away
//! (at `delete`, `delete --force`, or when its last process exits), the
//! kernel returns a physical device to the host's initial namespace, under
//! its name inside, and destroys a virtual one (dummy, veth, macvlan, ...).

use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd};

use netlink_packet_core::{NetlinkPayload, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_wire::{RouteSocket, WireError};
use nix::sched::{setns, CloneFlags};
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, LinuxNetDevice, Spec};

use crate::SpecError;

/// Moving a device failed.
#[derive(Debug, thiserror::Error)]
pub enum NetDeviceError {
    #[error("network device {device}: {what}: {source}")]
    Netlink {
        device: String,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("network device {device}: {what}: {message}")]
    Decode {
        device: String,
        what: &'static str,
        message: String,
    },
}

fn devices(spec: &Spec) -> Option<&HashMap<String, LinuxNetDevice>> {
    spec.linux()
        .as_ref()?
        .net_devices()
        .as_ref()
        .filter(|d| !d.is_empty())
}

/// Whether the spec moves any device in.
pub(crate) fn any(spec: &Spec) -> bool {
    devices(spec).is_some()
}

/// A name the kernel takes for an interface (its `dev_valid_name`):
/// 1 to 15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains(['/', ':'])
        && !name.chars().any(char::is_whitespace)
}

/// runc's checks, before anything is made: the container has a network
/// namespace of its own, the runtime is privileged, the names are valid and
/// distinct inside, and each device exists on the host.
pub(crate) fn check(spec: &Spec) -> Result<(), SpecError> {
    let Some(devices) = devices(spec) else {
        return Ok(());
    };
    let invalid = |m: String| Err(SpecError::Invalid(m));
    let own_netns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Network));
    if !own_netns {
        return invalid("unable to move network devices without a NET namespace".into());
    }
    if crate::rootless::euid_is_unprivileged() {
        return invalid("network devices are not supported for rootless containers".into());
    }
    let mut inside = HashMap::new();
    for (host, dev) in devices {
        let name = dev.name().as_deref().unwrap_or(host);
        for n in [host.as_str(), name] {
            if !valid_name(n) {
                return invalid(format!("invalid network device name {n:?}"));
            }
        }
        if let Some(other) = inside.insert(name, host) {
            return invalid(format!(
                "network devices {other} and {host} would both be {name} in the container"
            ));
        }
        if !exists_on_host(host) {
            return invalid(format!("network device {host} does not exist on the host"));
        }
    }
    Ok(())
}

fn exists_on_host(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a NUL-terminated name; the call only reads it.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// Moves every `linux.netDevices` entry into the network namespace of the
/// process `pid`. A failure stops at that device: the container is then
/// torn down, and with its namespace the kernel disposes of those moved.
pub(crate) fn move_in(spec: &Spec, pid: Pid) -> Result<(), NetDeviceError> {
    let Some(devices) = devices(spec) else {
        return Ok(());
    };
    for (host, dev) in devices {
        let name = dev.name().as_deref().unwrap_or(host);
        move_one(host, name, pid)?;
        tracing::debug!(device = %host, name, "network device moved in");
    }
    Ok(())
}

fn move_one(host: &str, name: &str, pid: Pid) -> Result<(), NetDeviceError> {
    let err = |what| {
        move |source| NetDeviceError::Netlink {
            device: host.to_owned(),
            what,
            source,
        }
    };
    let netns = File::open(format!("/proc/{pid}/ns/net"))
        .map_err(err("open the container's network namespace"))?;
    let mut nl = Route::open(host)?;
    let mut inside = Route::open_in(&netns, host)?;
    // Checked first: a rename failing after the move would leave the
    // device inside, to be destroyed with the namespace if it is virtual.
    let template = name.contains('%');
    if !template && inside.find_link(name)?.is_some() {
        return Err(err("move it in")(std::io::Error::other(format!(
            "{name} already exists in the container's network namespace"
        ))));
    }
    let index = nl
        .find_link(host)?
        .ok_or_else(|| err("find it")(std::io::Error::from_raw_os_error(libc::ENODEV)))?;
    nl.set_up(index, false)?;
    let addresses = nl.permanent_global_addresses(index)?;
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.attributes.push(LinkAttribute::IfName(name.to_owned()));
    m.attributes
        .push(LinkAttribute::NetNsFd(netns.as_fd().as_raw_fd()));
    nl.request(
        RouteNetlinkMessage::NewLink(m),
        0,
        "move it into the container's network namespace",
    )?;
    // A `%d` name is the kernel's to pick; the index moves with the device
    // where it is free inside, and is known by the name it then has.
    let found = if template {
        inside
            .link_name(index)?
            .filter(|n| matches_template(n, name))
            .map(|_| index)
    } else {
        inside.find_link(name)?
    };
    let index = found
        .ok_or_else(|| err("find it inside")(std::io::Error::from_raw_os_error(libc::ENODEV)))?;
    for mut a in addresses {
        a.header.index = index;
        inside.request(
            RouteNetlinkMessage::NewAddress(a),
            NLM_F_CREATE | NLM_F_EXCL,
            "add its address inside",
        )?;
    }
    inside.set_up(index, true)
}

/// Whether `name` is what the kernel makes of `template` (`%d` a number).
fn matches_template(name: &str, template: &str) -> bool {
    let Some((head, tail)) = template.split_once("%d") else {
        return false;
    };
    name.strip_prefix(head)
        .and_then(|n| n.strip_suffix(tail))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A route netlink socket in the namespace it was opened in, for one device.
struct Route {
    socket: RouteSocket,
    device: String,
}

impl Route {
    /// A socket in the network namespace `netns`: opened by a thread of its
    /// own that enters it, so the runtime's threads stay where they are.
    fn open_in(netns: &File, device: &str) -> Result<Self, NetDeviceError> {
        let err = |what| {
            move |source| NetDeviceError::Netlink {
                device: device.to_owned(),
                what,
                source,
            }
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(netns.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| err("enter the container's network namespace")(e.into()))?;
                Route::open(device)
            })
            .join()
            .unwrap_or_else(|_| {
                Err(err("open a netlink socket inside")(std::io::Error::other(
                    "the thread panicked",
                )))
            })
        })
    }

    fn open(device: &str) -> Result<Self, NetDeviceError> {
        let socket =
            RouteSocket::open().map_err(|e| wire_error(device, "open a netlink socket", e))?;
        Ok(Self {
            socket,
            device: device.to_owned(),
        })
    }

    fn netlink_error(&self, what: &'static str, errno: i32) -> NetDeviceError {
        NetDeviceError::Netlink {
            device: self.device.clone(),
            what,
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    /// Sends `msg`; then every reply to it until `done` says it is the last.
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &'static str,
        done: impl FnMut(NetlinkPayload<RouteNetlinkMessage>) -> bool,
    ) -> Result<(), NetDeviceError> {
        self.socket
            .exchange(msg, flags, done)
            .map_err(|e| wire_error(&self.device, what, e))
    }

    /// A request the kernel acknowledges (or refuses with an errno).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &'static str,
    ) -> Result<(), NetDeviceError> {
        self.socket
            .request(msg, flags)
            .map_err(|e| wire_error(&self.device, what, e))?
            .map_err(|errno| self.netlink_error(what, errno))
    }

    /// The link `name` or `index` (the other 0) as the kernel has it; none
    /// if there is no such link.
    fn get_link(&mut self, name: &str, index: u32) -> Result<Option<LinkMessage>, NetDeviceError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if !name.is_empty() {
            m.attributes.push(LinkAttribute::IfName(name.to_owned()));
        }
        let what = "look the interface up";
        let (mut link, mut failed) = (None, None);
        self.exchange(RouteNetlinkMessage::GetLink(m), 0, what, |p| match p {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                link = Some(l);
                true
            }
            NetlinkPayload::Error(e) => {
                failed = netlink_wire::errno(&e);
                true
            }
            _ => false,
        })?;
        match failed {
            Some(libc::ENODEV) | None => Ok(link),
            Some(errno) => Err(self.netlink_error(what, errno)),
        }
    }

    fn find_link(&mut self, name: &str) -> Result<Option<u32>, NetDeviceError> {
        Ok(self.get_link(name, 0)?.map(|l| l.header.index))
    }

    fn link_name(&mut self, index: u32) -> Result<Option<String>, NetDeviceError> {
        Ok(self.get_link("", index)?.and_then(|l| {
            l.attributes.into_iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n),
                _ => None,
            })
        }))
    }

    fn set_up(&mut self, index: u32, up: bool) -> Result<(), NetDeviceError> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = if up {
            LinkFlags::Up
        } else {
            LinkFlags::empty()
        };
        m.header.change_mask = LinkFlags::Up;
        let what = if up { "bring it up" } else { "take it down" };
        self.request(RouteNetlinkMessage::NewLink(m), 0, what)
    }

    /// The addresses the spec says move with the device: permanent (not
    /// made by autoconfiguration or DHCP) and of global scope; as requests
    /// that add them again, without the old interface's label.
    fn permanent_global_addresses(
        &mut self,
        index: u32,
    ) -> Result<Vec<AddressMessage>, NetDeviceError> {
        let what = "list its addresses";
        let mut found = Vec::new();
        let mut failed = None;
        self.exchange(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            NLM_F_DUMP,
            what,
            |p| match p {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => {
                    if a.header.index == index && keeps(&a) {
                        found.push(readd(&a));
                    }
                    false
                }
                NetlinkPayload::Done(_) => true,
                NetlinkPayload::Error(e) => {
                    failed = netlink_wire::errno(&e);
                    failed.is_some()
                }
                _ => false,
            },
        )?;
        match failed {
            Some(errno) => Err(self.netlink_error(what, errno)),
            None => Ok(found),
        }
    }
}

/// `what` failed for `device` before the kernel answered.
fn wire_error(device: &str, what: &'static str, e: WireError) -> NetDeviceError {
    match e {
        WireError::Io { source, .. } => NetDeviceError::Netlink {
            device: device.to_owned(),
            what,
            source,
        },
        WireError::Decode(message) => NetDeviceError::Decode {
            device: device.to_owned(),
            what,
            message,
        },
    }
}

fn keeps(a: &AddressMessage) -> bool {
    let permanent = a.header.flags.contains(AddressHeaderFlags::Permanent)
        || a.attributes.iter().any(
            |x| matches!(x, AddressAttribute::Flags(f) if f.contains(AddressFlags::Permanent)),
        );
    permanent && a.header.scope == AddressScope::Universe
}

fn readd(a: &AddressMessage) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = a.header.family;
    m.header.prefix_len = a.header.prefix_len;
    m.header.scope = a.header.scope;
    m.attributes = a
        .attributes
        .iter()
        .filter(|x| {
            matches!(
                x,
                AddressAttribute::Address(_)
                    | AddressAttribute::Local(_)
                    | AddressAttribute::Broadcast(_)
                    | AddressAttribute::Anycast(_)
            )
        })
        .cloned()
        .collect();
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names() {
        assert!(matches_template("eth3", "eth%d"));
        assert!(matches_template("c12x", "c%dx"));
        assert!(!matches_template("eth", "eth%d"));
        assert!(!matches_template("ethx", "eth%d"));
        assert!(!matches_template("eth0", "eth0"));
    }

    #[test]
    fn names_as_the_kernel_takes_them() {
        for ok in ["eth0", "hull-test-x", "a", "dev%d", "123456789012345"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "1234567890123456"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
