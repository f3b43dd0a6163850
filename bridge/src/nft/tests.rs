use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;

use netlink_packet_core::Emitable;
use netlink_packet_netfilter::nftables::{ListAttribute, SetElementList, SetElementMessage};
use netlink_packet_netfilter::{NetfilterMessageInner, NetfilterProtoFamily};

use super::schema::{ADDR_PORTS, ANY_PORTS};
use super::*;
use crate::testnet::*;
use crate::{Protocol, Subnet};

const IPV4: NetfilterProtoFamily = NetfilterProtoFamily::IPv4;

fn ports(specs: &[&str]) -> Vec<PortMapping> {
    specs.iter().map(|s| s.parse().unwrap()).collect()
}

/// `nft list table ip TABLE`, run in the calling thread's namespace.
fn nft_list(table: &str) -> String {
    let out = Command::new("nft")
        .args(["list", "table", "ip", table])
        .output()
        .expect("nft (apt-get install nftables)");
    assert!(
        out.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// (chain, comment) of each rule, read back over netlink; `None` without
/// a table.
fn rules(fw: &Firewall) -> Option<Vec<(String, String)>> {
    let listed = fw
        .list_rules(&mut NfSocket::open().unwrap(), Family::V4)
        .unwrap()?;
    let rules = listed
        .into_iter()
        .map(|r| (r.chain, r.comment.unwrap_or_default()));
    Some(rules.collect())
}

/// The (key, target) elements of `map`, dumped over netlink, sorted.
fn elements(fw: &Firewall, map: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let dump = SetElementMessage {
        attributes: vec![
            SetElementList::Table(fw.table.clone()),
            SetElementList::Set(map.into()),
        ],
    };
    let replies = NfSocket::open()
        .unwrap()
        .request(
            IPV4,
            NfTablesMessage::GetSetElement(dump),
            NLM_F_DUMP,
            "dump",
        )
        .unwrap();
    let mut found = Vec::new();
    for reply in replies {
        let NetfilterMessageInner::NfTables(NfTablesMessage::NewSetElement(msg)) = reply.inner
        else {
            continue;
        };
        for list in msg.attributes {
            let SetElementList::Elements(elements) = list else {
                continue;
            };
            for element in elements {
                let ListAttribute::Element(attributes) = element else {
                    continue;
                };
                let (mut key, mut target) = (vec![], vec![]);
                for attribute in attributes {
                    match attribute {
                        SetElementAttribute::Key(DataAttribute::Value(k)) => key = k,
                        SetElementAttribute::Data(DataAttribute::Value(t)) => target = t,
                        _ => {}
                    }
                }
                found.push((key, target));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn network_rules_are_idempotent_and_go_with_the_last_network() {
    Netns::new().run(|| {
        let other = Firewall::new("hull_test_other");
        other.ensure_network("hulltestx", subnet()).unwrap();
        let fw = Firewall::new(&table());
        let net_a: Subnet = "10.199.1.0/24".parse().unwrap();
        let net_b: Subnet = "10.199.2.0/24".parse().unwrap();
        fw.ensure_network("hulltesta", net_a).unwrap();
        fw.ensure_network("hulltesta", net_a).unwrap();
        fw.ensure_network("hulltestb", net_b).unwrap();
        let listed = rules(&fw).unwrap();
        assert_eq!(listed.len(), 4 + 3 + 3, "{listed:#?}");

        let listing = nft_list(&fw.table);
        for line in [
            "type nat hook prerouting priority dstnat; policy accept;",
            "type nat hook output priority -100; policy accept;",
            "type nat hook postrouting priority srcnat; policy accept;",
            "fib daddr type local jump dnat comment \"hull: published ports\"",
            "dnat ip to ip daddr . meta l4proto . th dport map @addr_ports",
            "dnat ip to meta l4proto . th dport map @any_ports",
            "ip saddr 10.199.1.0/24 ip daddr != 10.199.1.0/24 masquerade \
             comment \"hull net hulltesta 10.199.1.0/24: outbound\"",
            "ip saddr 127.0.0.0/8 oifname \"hulltesta\" masquerade",
            "ip saddr 10.199.2.0/24 ip daddr 10.199.2.0/24 ct status dnat masquerade",
        ] {
            assert!(listing.contains(line), "{line:?} missing in\n{listing}");
        }

        // A new subnet replaces the network's rules.
        let moved: Subnet = "10.199.3.0/24".parse().unwrap();
        fw.ensure_network("hulltesta", moved).unwrap();
        let listing = nft_list(&fw.table);
        assert!(!listing.contains("10.199.1.0/24"), "{listing}");
        assert!(listing.contains("ip saddr 10.199.3.0/24 ip daddr != 10.199.3.0/24"));

        fw.remove_network("hulltesta", moved).unwrap();
        let listed = rules(&fw).unwrap();
        assert_eq!(listed.len(), 4 + 3, "{listed:#?}");
        assert!(listed
            .iter()
            .all(|(_, comment)| !comment.contains("hulltesta")));

        fw.remove_network("hulltestb", net_b).unwrap();
        assert_eq!(rules(&fw), None, "the table goes with the last network");
        fw.remove_network("hulltestb", net_b).unwrap();
        fw.delete_table().unwrap();
        assert_eq!(
            rules(&other).unwrap().len(),
            4 + 3,
            "another table is left alone"
        );
    });
}

#[test]
fn ports_are_map_elements_removed_only_by_their_container() {
    Netns::new().run(|| {
        let fw = Firewall::new(&table());
        fw.ensure_network(HOST_IF, subnet()).unwrap();
        let published = ports(&["8080:80", "127.0.0.1:8081:80", "5353:53/udp"]);
        fw.add_ports(CONTAINER_A, &published).unwrap();
        fw.add_ports(CONTAINER_A, &published).unwrap();

        let tcp_8080 = vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0];
        let udp_5353 = vec![17, 0, 0, 0, 0x14, 0xe9, 0, 0];
        let to_a = |port: u8| vec![10, 199, 0, 2, 0, port, 0, 0];
        assert_eq!(
            elements(&fw, ANY_PORTS),
            [(tcp_8080, to_a(80)), (udp_5353, to_a(53))]
        );
        let localhost_8081 = vec![127, 0, 0, 1, 6, 0, 0, 0, 0x1f, 0x91, 0, 0];
        assert_eq!(elements(&fw, ADDR_PORTS), [(localhost_8081, to_a(80))]);
        let listing = nft_list(&fw.table);
        for element in [
            "tcp . 8080 : 10.199.0.2 . 80",
            "udp . 5353 : 10.199.0.2 . 53",
            "127.0.0.1 . tcp . 8081 : 10.199.0.2 . 80",
        ] {
            assert!(
                listing.contains(element),
                "{element:?} missing in\n{listing}"
            );
        }

        let taken = fw.add_ports(CONTAINER_B, &ports(&["8080:80"])).unwrap_err();
        assert_eq!(taken.errno(), Some(libc::EEXIST), "{taken}");
        assert!(taken
            .to_string()
            .starts_with("publish 8080:80/tcp to 10.199.0.3 in map any_ports"));

        // All or nothing: the free ports around the taken one stay free.
        let taken = fw.add_ports(CONTAINER_B, &ports(&["9000:80", "8080:80", "9001:80"]));
        assert_eq!(taken.unwrap_err().errno(), Some(libc::EEXIST));
        assert_eq!(elements(&fw, ANY_PORTS).len(), 2);

        fw.remove_ports(CONTAINER_B, &published).unwrap();
        assert_eq!(
            elements(&fw, ANY_PORTS).len(),
            2,
            "another container's ports stay"
        );
        fw.remove_ports(CONTAINER_A, &published).unwrap();
        assert!(elements(&fw, ANY_PORTS).is_empty());
        assert!(elements(&fw, ADDR_PORTS).is_empty());
        fw.remove_ports(CONTAINER_A, &published).unwrap();
        fw.delete_table().unwrap();
        fw.remove_ports(CONTAINER_A, &published).unwrap();
    });
}

#[test]
fn publishing_the_100th_port_is_one_message_like_the_first() {
    Netns::new().run(|| {
        let fw = Firewall::new(&table());
        fw.ensure_network(HOST_IF, subnet()).unwrap();
        let port = |n: u16| PortMapping {
            host_ip: None,
            host_port: 20000 + n,
            container_port: 80,
            protocol: Protocol::Tcp,
        };
        let size = |batch: &Batch| {
            let bytes: usize = batch.ops.iter().map(|op| op.message.buffer_len()).sum();
            (batch.ops.len(), bytes)
        };
        let first = size(&fw.publish_batch(CONTAINER_A.into(), &[port(1)]));
        assert_eq!(first.0, 1);
        for n in 1..100 {
            fw.add_ports(CONTAINER_A, &[port(n)]).unwrap();
        }
        let hundredth = fw.publish_batch(CONTAINER_A.into(), &[port(100)]);
        assert_eq!(size(&hundredth), first);
        hundredth
            .commit(&mut NfSocket::open().unwrap(), None)
            .unwrap();
        assert_eq!(elements(&fw, ANY_PORTS).len(), 100);
    });
}

#[test]
fn a_large_port_range_is_one_batch() {
    Netns::new().run(|| {
        let fw = Firewall::new(&table());
        fw.ensure_network(HOST_IF, subnet()).unwrap();
        let range: Vec<PortMapping> = (10000..15000)
            .map(|port| PortMapping {
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: port,
                container_port: port,
                protocol: Protocol::Udp,
            })
            .collect();
        // Looked up one by one: the crate's parser is quadratic on big dumps.
        let published = || {
            let mut sock = NfSocket::open().unwrap();
            let targets = range.iter().map(|p| {
                let element = Element::new(CONTAINER_A.into(), p).unwrap();
                fw.lookup(&mut sock, Family::V4, &element).unwrap() == Some(element.target)
            });
            targets.filter(|&found| found).count()
        };
        fw.add_ports(CONTAINER_A, &range).unwrap();
        assert_eq!(published(), range.len());
        fw.remove_ports(CONTAINER_A, &range).unwrap();
        assert_eq!(published(), 0);
    });
}

#[test]
fn concurrent_changes_neither_duplicate_nor_lose_rules() {
    let netns = Netns::new();
    let fw = Firewall::new(&table());
    let networks: Vec<(String, Subnet)> = (0..6)
        .map(|i| {
            let subnet = Subnet::new(Ipv4Addr::new(10, 199, i, 0), 24).unwrap();
            (format!("hulltest{i}"), subnet)
        })
        .collect();
    let each_network = |change: fn(&Firewall, &str, Subnet) -> Result<(), NftError>| {
        std::thread::scope(|scope| {
            for (bridge, subnet) in &networks {
                scope.spawn(|| netns.run(|| change(&fw, bridge, *subnet).unwrap()));
            }
        })
    };
    each_network(Firewall::ensure_network);
    let listed = netns.run(|| rules(&fw)).unwrap();
    assert_eq!(listed.len(), 4 + 3 * networks.len(), "{listed:#?}");
    each_network(Firewall::remove_network);
    assert_eq!(netns.run(|| rules(&fw)), None);
}

#[test]
fn errors_name_the_object_and_the_errno() {
    Netns::new().run(|| {
        let fw = Firewall::new(&table());
        let err = fw.add_ports(CONTAINER_A, &ports(&["8080:80"])).unwrap_err();
        assert_eq!(err.errno(), Some(libc::ENOENT));
        assert_eq!(
            err.to_string(),
            "publish 8080:80/tcp to 10.199.0.2 in map any_ports: \
             No such file or directory (os error 2)"
        );
    });
}

#[test]
fn published_ports_forward_real_traffic() {
    let net = Topology::new();
    serve_tcp(
        net.container
            .run(|| TcpListener::bind((CONTAINER_A, 80)).unwrap()),
    );
    let fw = Firewall::new(&table());
    let published = ports(&["8080:80", "127.0.0.1:8081:80"]);
    let host = HOST_IP.to_string();
    net.host.run(|| {
        fw.ensure_network(HOST_IF, subnet()).unwrap();
        fw.add_ports(CONTAINER_A, &published).unwrap();
        // From the host itself (output chain); loopback sources are
        // masqueraded to the bridge address.
        assert_eq!(ask_tcp((Ipv4Addr::LOCALHOST, 8080)).unwrap(), host);
        assert_eq!(ask_tcp((HOST_IP, 8080)).unwrap(), host);
        assert_eq!(ask_tcp((Ipv4Addr::LOCALHOST, 8081)).unwrap(), host);
        assert!(
            ask_tcp((HOST_IP, 8081)).is_err(),
            "8081 is published on 127.0.0.1 only"
        );
    });
    // From the container to its own published port through the host:
    // prerouting, then hairpin masquerade.
    assert_eq!(
        net.container.run(|| ask_tcp((HOST_IP, 8080))).unwrap(),
        host
    );
    net.host.run(|| {
        fw.remove_ports(CONTAINER_A, &published).unwrap();
        assert!(ask_tcp((Ipv4Addr::LOCALHOST, 8080)).is_err());
    });
}
