//! A container's networking, from request to teardown: which network it
//! joins and which ports it publishes (from `--network`/`-p` or the
//! `org.hull.network`/`org.hull.publish` annotations), connecting it while
//! its init waits for `start`, the record beside its state that says where
//! its attachment lives, and disconnecting it on delete.
//!
//! Crash safety: the record is written before anything is made and removed
//! last, and disconnecting is idempotent, so a create or delete killed
//! half-way leaves something the next delete finishes.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use libcontainer::checkpoint::VethPair;
use libcontainer::{Container, Network as NetworkHook, NetworkError};
use serde::{Deserialize, Serialize};

use crate::dns::Member;
use crate::{Attachment, NetError, PortMapping, Store};

/// Annotation naming the network to join ("" for the default network).
pub const NETWORK_ANNOTATION: &str = "org.hull.network";
/// Annotation with comma-separated port mappings, as `-p` takes them.
pub const PUBLISH_ANNOTATION: &str = "org.hull.publish";
/// The container-side interface name.
const IFNAME: &str = "eth0";
/// The file beside a container's state where its connection is recorded
/// (see [`Container::companion_path`]).
const RECORD: &str = "network.json";

/// A container's connection to a bridge network: give it to
/// `ContainerBuilder::network` to connect the container on create, and
/// call [`ContainerNetwork::disconnect`] before deleting it.
#[derive(Debug, Clone)]
pub struct ContainerNetwork {
    store: Store,
    /// `None` for the default network.
    network: Option<String>,
    ports: Vec<PortMapping>,
    /// Its names, service and ports for the network's resolver.
    dns: Option<Member>,
    /// How to start the network's resolver (none started without).
    resolver: Option<Resolver>,
}

/// The command that runs a network's resolver (`hull dns serve NET`):
/// the runtime's own binary, which a library cannot know.
#[derive(Debug, Clone)]
struct Resolver {
    exe: PathBuf,
    args: Vec<OsString>,
}

/// Where a container's attachment lives, so delete finds it whatever flags
/// it gets.
#[derive(Serialize, Deserialize)]
struct Record {
    net_root: PathBuf,
    net_table: String,
    ifname: String,
}

impl ContainerNetwork {
    /// The default network of `store`, no ports published.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            network: None,
            ports: Vec::new(),
            dns: None,
            resolver: None,
        }
    }

    /// The network asked for (`None`: the default network).
    pub fn network_name(&self) -> Option<&str> {
        self.network.as_deref()
    }

    /// Starts the network's resolver, unless it runs, on connect:
    /// `exe args… NETWORK --ready-fd FD` (see [`crate::dns::ensure_running`]).
    pub fn resolver(mut self, exe: impl Into<PathBuf>, args: Vec<OsString>) -> Self {
        self.resolver = Some(Resolver {
            exe: exe.into(),
            args,
        });
        self
    }

    /// Joins the network `name` instead ("" for the default one).
    pub fn network(mut self, name: &str) -> Self {
        self.network = Some(name.to_owned()).filter(|n| !n.is_empty());
        self
    }

    /// Publishes `port` too.
    pub fn publish(mut self, port: PortMapping) -> Self {
        self.ports.push(port);
        self
    }

    /// The networking asked for by a network name and `-p` specs (flags)
    /// or else the annotations, with the ports and the DNS annotations
    /// parsed; `None` when nothing
    /// asks for networking (hull then does none, like runc). Called before
    /// the container is created, so a bad port leaves nothing behind.
    pub fn requested(
        store: Store,
        network: Option<&str>,
        publish: &[String],
        annotations: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, NetError> {
        let network = network.or(annotations.get(NETWORK_ANNOTATION).map(String::as_str));
        let mut specs: Vec<&str> = publish.iter().map(String::as_str).collect();
        if let Some(list) = annotations.get(PUBLISH_ANNOTATION) {
            specs.extend(list.split(',').map(str::trim).filter(|s| !s.is_empty()));
        }
        if network.is_none() && specs.is_empty() {
            return Ok(None);
        }
        let mut request = Self::new(store).network(network.unwrap_or_default());
        for spec in specs {
            request = request.publish(spec.parse().map_err(NetError::BadPort)?);
        }
        request.dns = Member::from_annotations(annotations)?;
        Ok(Some(request))
    }

    /// Connects the created container whose init is `pid` and whose record
    /// goes to `record`. On error nothing of it is left, record included.
    fn connect_init(&self, id: &str, pid: i32, record: &Path) -> Result<Attachment, NetError> {
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        if same_file(&netns, Path::new("/proc/self/ns/net")) {
            return Err(NetError::SharedNetns);
        }
        let net = match &self.network {
            Some(name) => self.store.get(name),
            None => self.store.default_network(),
        }?;
        // Recorded first: a crash half-way still leaves delete something to undo.
        let entry = Record {
            net_root: self.store.dir.clone(),
            net_table: self.store.table.clone(),
            ifname: IFNAME.into(),
        };
        let bytes = serde_json::to_vec(&entry).expect("serializable");
        // Whole or not at all: a kill never leaves a record delete cannot read.
        crate::whole_file::create(record, &bytes)
            .map_err(NetError::io(format!("write {}", record.display())))?;
        let attached = self.dns_member(id, &net.name).and_then(|()| {
            let att = self.store.attach(&net, id, IFNAME, &netns, &self.ports)?;
            if let Err(e) = self.start_resolver(&net.name) {
                let _ = self.store.detach(id, IFNAME);
                return Err(e);
            }
            Ok(att)
        });
        if attached.is_err() {
            // What was made is undone; the record is all that is left.
            let _ = Member::remove(&self.store.dir, &net.name, id);
            let _ = remove_record(record);
        }
        attached
    }

    /// Records the container's names for the network's resolver.
    fn dns_member(&self, id: &str, net: &str) -> Result<(), NetError> {
        match &self.dns {
            Some(member) => Ok(member.save(&self.store.dir, net, id)?),
            None => Ok(()),
        }
    }

    /// Starts the network's resolver unless it runs (also after it died),
    /// and an overlay network's agent likewise.
    fn start_resolver(&self, net: &str) -> Result<(), NetError> {
        match &self.resolver {
            Some(r) => {
                if crate::overlay::load(&self.store, net)?.is_some() {
                    crate::overlay::supervise::ensure_running(&self.store, net, &r.exe)?;
                }
                let mut args = r.args.clone();
                args.push(net.into());
                Ok(crate::dns::ensure_running(
                    &self.store.dir,
                    net,
                    &r.exe,
                    &args,
                )?)
            }
            None => Ok(()),
        }
    }

    /// Whether `container` has a connection to undo.
    pub fn is_connected(container: &Container) -> bool {
        container.companion_path(RECORD).exists()
    }

    /// Tears down the connection `container`'s record names, then removes
    /// the record (last, so a disconnect killed half-way can be run again).
    /// Fine if there is none. The container should be stopped first.
    pub fn disconnect(container: &Container) -> Result<(), NetError> {
        disconnect_recorded(&container.companion_path(RECORD), container.id())
    }

    /// [`Self::disconnect`] for container `id` under the state root `root`
    /// whose state cannot be loaded (a broken container `delete --force`
    /// removes).
    pub fn disconnect_id(root: &Path, id: &str) -> Result<(), NetError> {
        disconnect_recorded(&Container::companion_in(root, id, RECORD), id)
    }

    /// The connection `container`'s record names, for checkpoint and restore.
    pub fn recorded(container: &Container) -> Option<Recorded> {
        Recorded::read(&container.companion_path(RECORD), container.id())
            .ok()
            .flatten()
    }
}

/// A container's connection as its record names it: what a checkpoint
/// describes to CRIU and a restore puts back.
pub struct Recorded {
    store: Store,
    id: String,
    ifname: String,
}

impl Recorded {
    /// The connection the record at `path` names for container `id`; none
    /// if there is no record, or one that cannot be parsed (it names
    /// nothing to undo).
    fn read(path: &Path, id: &str) -> Result<Option<Self>, NetError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(NetError::io(format!("read {}", path.display()))(e)),
        };
        Ok(serde_json::from_slice::<Record>(&bytes).ok().map(|r| Self {
            store: Store::new(r.net_root, &r.net_table),
            id: id.to_owned(),
            ifname: r.ifname,
        }))
    }

    /// The container-side interface, a veth whose peer is on the host.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The veth pair CRIU recreates when the checkpointed container is
    /// restored under its id: the peer goes back on the host under its
    /// name, on the network's bridge; address and ports stay as they were.
    pub fn veth_pair(&self) -> Result<VethPair, NetError> {
        let att = self.attachment()?;
        let net = self.store.get(&att.network)?;
        Ok(VethPair {
            inside: att.ifname,
            outside: att.host_veth,
            bridge: Some(net.bridge),
        })
    }

    /// The network the container is attached to.
    pub fn network(&self) -> Result<crate::Network, NetError> {
        self.store.get(&self.attachment()?.network)
    }

    fn attachment(&self) -> Result<Attachment, NetError> {
        self.store
            .attachments(None)?
            .into_iter()
            .find(|x| x.container == self.id && x.ifname == self.ifname)
            .ok_or_else(|| NetError::NotAttached(self.id.clone()))
    }

    /// After a checkpoint ended the container's processes: frees its veth
    /// (the lease and forwards stay for the restore).
    pub fn checkpointed(&self) -> Result<(), NetError> {
        self.store.checkpointed(&self.id, &self.ifname)
    }

    /// After a restore put the veth pair back: what CRIU does not restore.
    pub fn restored(&self) -> Result<(), NetError> {
        self.store.restored(&self.id, &self.ifname)
    }
}

/// Tears down the connection the record at `path` names for container
/// `id`, then removes the record.
fn disconnect_recorded(path: &Path, id: &str) -> Result<(), NetError> {
    if let Some(r) = Recorded::read(path, id)? {
        r.store.detach(&r.id, &r.ifname)?;
    }
    remove_record(path)
}

impl NetworkHook for ContainerNetwork {
    fn connect(&self, container: &Container) -> Result<(), NetworkError> {
        let pid = container.pid().ok_or(NetError::NoInit)?;
        let record = container.companion_path(RECORD);
        self.connect_init(container.id(), pid.as_raw(), &record)?;
        Ok(())
    }
}

fn remove_record(path: &Path) -> Result<(), NetError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(NetError::io(format!("remove {}", path.display()))(e))
        }
        _ => Ok(()),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.ino() == y.ino() && x.dev() == y.dev(),
        _ => false,
    }
}
