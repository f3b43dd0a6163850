//! The records of one network, built from hull's state: what the resolver
//! answers locally, and which names it must not forward.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, PTR, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::{Member, TTL};
use crate::{Attachment, Network};

/// Which clients a zone answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Containers on the bridge: their own addresses and ports.
    Bridge,
    /// The host (on 127.0.0.1): published ports and the host's address;
    /// PTR of the containers' bridge addresses.
    Host,
}

/// What a name and type resolve to.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Local records: the answers and the additional records (the SRV
    /// targets' addresses).
    Records(Vec<Record>, Vec<Record>),
    /// The name exists, but has no record of that type.
    NoData,
    /// The name is in the network's domain (or one of its reverse zones)
    /// and does not exist.
    NxDomain,
    /// Not the network's: ask the upstream servers.
    Forward,
}

/// One SRV record's data.
#[derive(Debug, Clone)]
struct Srv {
    priority: u16,
    weight: u16,
    port: u16,
    target: Name,
}

/// A network's records in one view.
#[derive(Debug, Default)]
pub struct Zone {
    domain: Option<Name>,
    addrs: HashMap<Name, Vec<IpAddr>>,
    srv: HashMap<Name, Vec<Srv>>,
    ptr: HashMap<Name, Name>,
    subnet: Option<crate::Subnet>,
    subnet6: Option<crate::Subnet6>,
}

/// `label.domain`, if it makes a valid name.
fn under(label: &str, domain: &Name) -> Option<Name> {
    Name::from_ascii(label).ok()?.append_domain(domain).ok()
}

/// `label.` as a name of its own (single-label lookups).
fn bare(label: &str) -> Option<Name> {
    Name::from_ascii(format!("{label}.")).ok()
}

impl Zone {
    /// The zone of `net` with its `attachments` (other networks' are
    /// skipped) and the `members`' names, services and ports.
    pub fn build(
        net: &Network,
        attachments: &[Attachment],
        members: &BTreeMap<String, Member>,
        view: View,
    ) -> Self {
        let mut z = Zone {
            domain: bare(&net.name).map(|n| n.to_lowercase()),
            subnet: Some(net.subnet),
            subnet6: net.subnet6,
            ..Zone::default()
        };
        let Some(domain) = z.domain.clone() else {
            return z;
        };
        let none = Member::default();
        for a in attachments.iter().filter(|a| a.network == net.name) {
            let m = members.get(&a.container).unwrap_or(&none);
            let id = a.container.to_ascii_lowercase();
            let Some(fqdn) = under(&id, &domain) else {
                continue;
            };
            // PTR in both views: the host meets containers by their bridge
            // addresses too (connections, logs), never by the host address
            // its view answers A with (127.0.0.1 is not theirs to name).
            for ip in a.addresses() {
                z.ptr.insert(Name::from(ip), fqdn.clone());
            }
            let addrs: Vec<IpAddr> = match view {
                View::Bridge => a.addresses().collect(),
                View::Host => host_address(a).into_iter().collect(),
            };
            if addrs.is_empty() {
                continue;
            }
            let mut names = vec![id.clone()];
            if view == View::Bridge {
                names.extend(m.aliases.iter().cloned());
                names.extend(m.service.iter().cloned());
            }
            for n in &names {
                for name in [under(n, &domain), bare(n)].into_iter().flatten() {
                    let list = z.addrs.entry(name).or_default();
                    for ip in &addrs {
                        if !list.contains(ip) {
                            list.push(*ip);
                        }
                    }
                }
            }
            let owners = m.service.iter().chain([&id]);
            for owner in owners {
                for p in &m.ports {
                    let port = match view {
                        View::Bridge => Some(p.port),
                        View::Host => a
                            .ports
                            .iter()
                            .find(|q| q.container_port == p.port && q.protocol == p.protocol)
                            .map(|q| q.host_port),
                    };
                    let label = format!("_{}.{}.{owner}", p.name, p.proto_label());
                    if let (Some(port), Some(name)) = (port, under(&label, &domain)) {
                        z.srv.entry(name).or_default().push(Srv {
                            priority: p.priority,
                            weight: p.weight,
                            port,
                            target: fqdn.clone(),
                        });
                    }
                }
            }
        }
        z
    }

    /// The answer to a query for `name` (any case) of type `ty`.
    pub fn lookup(&self, name: &Name, ty: RecordType) -> Answer {
        let mut name = name.to_lowercase();
        name.set_fqdn(true);
        let records = match ty {
            RecordType::A | RecordType::AAAA => self.addrs.get(&name).map(|ips| {
                let rs = ips
                    .iter()
                    .filter_map(|ip| address_record(&name, *ip, ty))
                    .collect();
                (rs, Vec::new())
            }),
            RecordType::SRV => self.srv.get(&name).map(|list| {
                let answers = list
                    .iter()
                    .map(|s| {
                        let srv = SRV::new(s.priority, s.weight, s.port, s.target.clone());
                        Record::from_rdata(name.clone(), TTL, RData::SRV(srv))
                    })
                    .collect();
                let mut extra: Vec<Record> = Vec::new();
                for s in list {
                    for ip in self.addrs.get(&s.target).into_iter().flatten() {
                        let rec = address_record(&s.target, *ip, RecordType::A)
                            .or_else(|| address_record(&s.target, *ip, RecordType::AAAA));
                        extra.extend(rec.filter(|r| !extra.contains(r)));
                    }
                }
                (answers, extra)
            }),
            RecordType::PTR => self.ptr.get(&name).map(|target| {
                let rec = Record::from_rdata(name.clone(), TTL, RData::PTR(PTR(target.clone())));
                (vec![rec], Vec::new())
            }),
            _ => None,
        };
        match records {
            Some((answers, _)) if answers.is_empty() => Answer::NoData,
            Some((answers, extra)) => Answer::Records(answers, extra),
            None if self.exists(&name) => Answer::NoData,
            None if self.is_ours(&name) => Answer::NxDomain,
            None => Answer::Forward,
        }
    }

    fn exists(&self, name: &Name) -> bool {
        self.addrs.contains_key(name) || self.srv.contains_key(name) || self.ptr.contains_key(name)
    }

    /// Whether `name` is in the network's domain or is the reverse name of
    /// an address of its subnets: never forwarded.
    fn is_ours(&self, name: &Name) -> bool {
        if self.domain.as_ref().is_some_and(|d| d.zone_of(name)) {
            return true;
        }
        match reverse_address(name) {
            Some(IpAddr::V4(ip)) => self.subnet.is_some_and(|s| s.contains(ip)),
            Some(IpAddr::V6(ip)) => self.subnet6.is_some_and(|s| s.contains(ip)),
            None => false,
        }
    }
}

/// Where the host reaches a container's published ports: the address they
/// are published on, or loopback for all addresses. `None` without ports.
fn host_address(a: &Attachment) -> Option<IpAddr> {
    let p = a.ports.first()?;
    Some(IpAddr::V4(p.host_ip.unwrap_or(Ipv4Addr::LOCALHOST)))
}

fn address_record(name: &Name, ip: IpAddr, ty: RecordType) -> Option<Record> {
    let data = match (ip, ty) {
        (IpAddr::V4(v4), RecordType::A) => RData::A(A(v4)),
        (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(v6)),
        _ => return None,
    };
    Some(Record::from_rdata(name.clone(), TTL, data))
}

/// The address a full reverse name (`4.3.2.1.in-addr.arpa.` or the 32
/// nibbles of `ip6.arpa.`) stands for.
fn reverse_address(name: &Name) -> Option<IpAddr> {
    let labels: Vec<String> = name
        .iter()
        .map(|l| String::from_utf8_lossy(l).to_ascii_lowercase())
        .collect();
    match labels.as_slice() {
        [d, c, b, a, arpa, tail] if arpa == "in-addr" && tail == "arpa" => {
            let octet = |s: &String| s.parse::<u8>().ok();
            Some(IpAddr::V4(Ipv4Addr::new(
                octet(a)?,
                octet(b)?,
                octet(c)?,
                octet(d)?,
            )))
        }
        [nibbles @ .., ip6, tail] if ip6 == "ip6" && tail == "arpa" && nibbles.len() == 32 => {
            let mut v: u128 = 0;
            for n in nibbles.iter().rev() {
                v = v << 4 | u128::from(u8::from_str_radix(n, 16).ok().filter(|_| n.len() == 1)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(v)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::SrvPort;
    use crate::{PortMapping, Protocol};

    fn net() -> Network {
        Network {
            name: "lab".into(),
            bridge: "hull-lab".into(),
            subnet: "10.1.2.0/24".parse().unwrap(),
            gateway: "10.1.2.1".parse().unwrap(),
            subnet6: Some("fd00:1::/64".parse().unwrap()),
            gateway6: Some("fd00:1::1".parse().unwrap()),
            mtu: None,
        }
    }

    fn att(id: &str, host: u8, ports: Vec<PortMapping>) -> Attachment {
        let n = net();
        let ip = Ipv4Addr::new(10, 1, 2, host);
        Attachment {
            network: n.name.clone(),
            container: id.into(),
            ifname: "eth0".into(),
            host_veth: "v".into(),
            ip,
            prefix: 24,
            gateway: n.gateway,
            ip6: n.ipv6_of(ip),
            gateway6: n.gateway6,
            ports,
            published: true,
            state_root: None,
        }
    }

    fn zone(view: View) -> Zone {
        let web = Member {
            aliases: vec!["front".into()],
            service: Some("web".into()),
            ports: vec![SrvPort {
                name: "http".into(),
                port: 80,
                protocol: Protocol::Tcp,
                priority: 0,
                weight: 1,
            }],
        };
        let members = BTreeMap::from([("a".to_owned(), web.clone()), ("b".to_owned(), web)]);
        let atts = vec![
            att("a", 2, vec!["8080:80".parse().unwrap()]),
            att("b", 3, vec![]),
            att("c", 4, vec![]),
        ];
        Zone::build(&net(), &atts, &members, view)
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn rdata(a: Answer) -> Vec<String> {
        match a {
            Answer::Records(rs, _) => rs.iter().map(|r| r.data.to_string()).collect(),
            other => panic!("no records: {other:?}"),
        }
    }

    #[test]
    fn names_aliases_services_and_reverse() {
        let z = zone(View::Bridge);
        assert_eq!(
            rdata(z.lookup(&name("c.lab."), RecordType::A)),
            ["10.1.2.4"]
        );
        assert_eq!(rdata(z.lookup(&name("C."), RecordType::A)), ["10.1.2.4"]);
        // Two members share the alias: both answer.
        assert_eq!(
            rdata(z.lookup(&name("front.lab."), RecordType::AAAA)),
            ["fd00:1::2", "fd00:1::3"]
        );
        let mut web = rdata(z.lookup(&name("web.lab."), RecordType::A));
        web.sort();
        assert_eq!(web, ["10.1.2.2", "10.1.2.3"]);
        let ptr = Name::from(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(rdata(z.lookup(&ptr, RecordType::PTR)), ["b.lab."]);
        let ptr6 = Name::from(IpAddr::V6("fd00:1::4".parse().unwrap()));
        assert_eq!(rdata(z.lookup(&ptr6, RecordType::PTR)), ["c.lab."]);
        assert_eq!(z.lookup(&name("c.lab."), RecordType::MX), Answer::NoData);
        assert_eq!(
            z.lookup(&name("nope.lab."), RecordType::A),
            Answer::NxDomain
        );
        let unknown = Name::from(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 99)));
        assert_eq!(z.lookup(&unknown, RecordType::PTR), Answer::NxDomain);
        assert_eq!(
            z.lookup(&name("example.com."), RecordType::A),
            Answer::Forward
        );
        let outside = Name::from(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)));
        assert_eq!(z.lookup(&outside, RecordType::PTR), Answer::Forward);
    }

    #[test]
    fn srv_records_point_at_members() {
        let z = zone(View::Bridge);
        let Answer::Records(rs, extra) = z.lookup(&name("_http._tcp.web.lab."), RecordType::SRV)
        else {
            panic!("no SRV");
        };
        let mut got: Vec<String> = rs.iter().map(|r| r.data.to_string()).collect();
        got.sort();
        assert_eq!(got, ["0 1 80 a.lab.", "0 1 80 b.lab."]);
        // Each target's A and AAAA record.
        assert_eq!(extra.len(), 4, "{extra:?}");
        assert_eq!(
            rdata(z.lookup(&name("_http._tcp.a.lab."), RecordType::SRV)),
            ["0 1 80 a.lab."]
        );
    }

    #[test]
    fn host_view_has_published_ports_and_reverse_names() {
        let z = zone(View::Host);
        assert_eq!(
            rdata(z.lookup(&name("_http._tcp.web.lab."), RecordType::SRV)),
            ["0 1 8080 a.lab."]
        );
        assert_eq!(
            rdata(z.lookup(&name("a.lab."), RecordType::A)),
            ["127.0.0.1"]
        );
        assert_eq!(z.lookup(&name("b.lab."), RecordType::A), Answer::NxDomain);
        // PTR of every member's bridge addresses, published ports or not.
        for (ip, want) in [
            ("10.1.2.2", "a.lab."),
            ("10.1.2.3", "b.lab."),
            ("fd00:1::4", "c.lab."),
        ] {
            let ptr = Name::from(ip.parse::<IpAddr>().unwrap());
            assert_eq!(rdata(z.lookup(&ptr, RecordType::PTR)), [want], "{ip}");
        }
        let free = Name::from(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 99)));
        assert_eq!(z.lookup(&free, RecordType::PTR), Answer::NxDomain);
        // The host address the view answers A with is not the members' to name.
        let localhost = Name::from(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(z.lookup(&localhost, RecordType::PTR), Answer::Forward);
    }
}
