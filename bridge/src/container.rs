//! A container's networking, from request to teardown: which network it
//! joins and which ports it publishes (from `--network`/`-p` or the
//! `org.hull.network`/`org.hull.publish` annotations), connecting it while
//! its init waits for `start`, and disconnecting it when the container is
//! deleted.
//!
//! One record: the store's attachment (`attachments/<id>.eth0.json`) is
//! what the container's connection is. The container's state (through
//! libcontainer's [`NetworkHook::record`]) only says which store holds it,
//! so that delete finds it whatever flags it gets.
//!
//! Crash safety: the state names the store before anything is made and
//! goes after the attachment is undone, the attachment is recorded before
//! its parts are made and removed after they are undone, and disconnecting
//! is idempotent, so a create or delete killed half-way leaves something
//! the next delete finishes.

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
/// How a container's state names this networking ([`NetworkHook::kind`]).
const KIND: &str = "hull-bridge";

/// A container's connection to a bridge network: give it to
/// `ContainerBuilder::network` to connect the container on create; the
/// container's delete disconnects it. A container loaded from its state
/// gets one (any store: the state names the one it is attached in) with
/// `Container::with_network` before its delete.
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

/// What a container's state records of its connection: where its
/// attachment lives, so delete finds it whatever flags it gets.
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

    /// Connects the created container whose init is `pid`. On error
    /// nothing of it is left.
    fn connect_init(&self, id: &str, root: &Path, pid: i32) -> Result<Attachment, NetError> {
        let netns = PathBuf::from(format!("/proc/{pid}/ns/net"));
        if same_file(&netns, Path::new("/proc/self/ns/net")) {
            return Err(NetError::SharedNetns);
        }
        let net = match &self.network {
            Some(name) => self.store.get(name),
            None => self.store.default_network(),
        }?;
        let attached = self.dns_member(id, &net.name).and_then(|()| {
            let att = self
                .store
                .attach(&net, id, IFNAME, &netns, &self.ports, Some(root))?;
            if let Err(e) = self.start_resolver(&net.name) {
                let _ = self.store.detach(id, IFNAME);
                return Err(e);
            }
            Ok(att)
        });
        if attached.is_err() {
            // The attachment undid itself; its resolver names go too.
            let _ = Member::remove(&self.store.dir, &net.name, id);
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

    /// Tears down container `id`'s connection in this store, for a
    /// container whose state (which names the store it is attached in)
    /// cannot be read: a broken container `delete --force` removes. Fine if
    /// there is none.
    pub fn disconnect_id(&self, id: &str) -> Result<(), NetError> {
        self.store.detach(id, IFNAME)
    }

    /// The ids attached in this store from state root `root` that have no
    /// state file there: containers whose state was lost, which that
    /// root's `list` shows and `delete --force` removes.
    pub fn lost_in(&self, root: &Path) -> Result<Vec<String>, NetError> {
        let mut ids: Vec<String> = self
            .store
            .attachments(None)?
            .into_iter()
            .filter(|a| a.state_root.as_deref() == Some(root))
            .map(|a| a.container)
            .filter(|id| !root.join(id).exists())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// The connection `container`'s state names, for checkpoint and restore.
    pub fn recorded(container: &Container) -> Option<Recorded> {
        let record = container.network_record().filter(|r| r.kind == KIND)?;
        Recorded::read(container.id(), &record.record)
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
    /// The connection `record` (from container `id`'s state) names; none
    /// if it cannot be parsed (it names nothing to undo).
    fn read(id: &str, record: &serde_json::Value) -> Option<Self> {
        let r = Record::deserialize(record).ok()?;
        Some(Self {
            store: Store::new(r.net_root, &r.net_table),
            id: id.to_owned(),
            ifname: r.ifname,
        })
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

impl NetworkHook for ContainerNetwork {
    fn kind(&self) -> &str {
        KIND
    }

    fn record(&self) -> serde_json::Value {
        let record = Record {
            net_root: self.store.dir.clone(),
            net_table: self.store.table.clone(),
            ifname: IFNAME.into(),
        };
        serde_json::to_value(record).expect("serializable")
    }

    fn connect(&self, container: &Container) -> Result<(), NetworkError> {
        let pid = container.pid().ok_or(NetError::NoInit)?;
        self.connect_init(container.id(), container.root(), pid.as_raw())?;
        Ok(())
    }

    /// Detaches the container in the store its state names (not
    /// necessarily this value's).
    fn disconnect(
        &self,
        container: &Container,
        recorded: &serde_json::Value,
    ) -> Result<(), NetworkError> {
        if let Some(r) = Recorded::read(container.id(), recorded) {
            r.store.detach(&r.id, &r.ifname)?;
        }
        Ok(())
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.ino() == y.ino() && x.dev() == y.dev(),
        _ => false,
    }
}
