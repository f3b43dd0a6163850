//! Container names across the hosts of an overlay network: the agent
//! publishes this host's containers (id, addresses, aliases, service,
//! ports) in the store on its lease, and writes the other hosts' where
//! this host's resolver reads them ([`crate::dns::remote`]). A host that
//! dies takes its names with its lease.

use std::collections::BTreeMap;

use super::store::EtcdStore;
use crate::dns::{self, Member, RemoteMember};
use crate::{NetError, Network, Store};

/// This host's containers on `net` as the other hosts should know them,
/// by id.
pub fn local(store: &Store, net: &str) -> Result<Vec<RemoteMember>, NetError> {
    let mut members = Member::all(store.dir(), net)?;
    let mut out: BTreeMap<String, RemoteMember> = BTreeMap::new();
    for a in store.attachments(Some(net))? {
        let entry = out
            .entry(a.container.clone())
            .or_insert_with(|| RemoteMember {
                container: a.container.clone(),
                addresses: Vec::new(),
                member: members.remove(&a.container).unwrap_or_default(),
            });
        entry.addresses.extend(a.addresses());
    }
    Ok(out.into_values().collect())
}

/// What the agent last did, so it asks the store and rewrites files only
/// when something changed.
#[derive(Debug, Default)]
pub struct Names {
    /// The lease and the containers last published.
    published: Option<(i64, Vec<RemoteMember>)>,
    /// The other hosts' containers last written for the resolver.
    mirrored: Option<Vec<RemoteMember>>,
}

impl Names {
    /// Publishes this host's containers (node subnet `net.subnet`) on
    /// `lease` if they changed since the last time.
    pub fn publish(
        &mut self,
        etcd: &mut EtcdStore,
        store: &Store,
        net: &Network,
        lease: i64,
    ) -> Result<(), NetError> {
        let now = (lease, local(store, &net.name)?);
        if self.published.as_ref() == Some(&now) {
            return Ok(());
        }
        etcd.publish_members(net.subnet, lease, &now.1)?;
        self.published = Some(now);
        Ok(())
    }

    /// Writes the other hosts' containers for this host's resolver.
    pub fn mirror(
        &mut self,
        etcd: &mut EtcdStore,
        store: &Store,
        net: &Network,
    ) -> Result<(), NetError> {
        let mut remote: Vec<RemoteMember> = etcd
            .dns_members()?
            .into_iter()
            .filter(|(subnet, _)| *subnet != net.subnet)
            .map(|(_, m)| m)
            .collect();
        remote.sort_by(|a, b| a.container.cmp(&b.container));
        if self.mirrored.as_ref() == Some(&remote) {
            return Ok(());
        }
        dns::remote::save(store.dir(), &net.name, &remote)?;
        self.mirrored = Some(remote);
        Ok(())
    }
}
