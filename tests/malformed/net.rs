//! hull's network state for the `-p` and `--subnet` cases, and the cases.

use std::path::{Path, PathBuf};

use hull_tests::netlab::{link_exists, Net};

/// No network, lease, attachment, bridge, veth or table of `net` (the
/// tests' own `--net-root` and table) exists.
pub(crate) fn assert_no_network_state(net: &Net, what: &str, bridge: &str) {
    let files: Vec<_> = walk_files(&net.root);
    assert!(files.is_empty(), "{what}: network state left: {files:?}");
    assert!(!link_exists(bridge), "{what}: bridge {bridge} created");
    for family in ["ip", "ip6"] {
        assert!(
            net.nft_family(family).is_none(),
            "{what}: table {family} {} made",
            net.table
        );
    }
}

/// Every file under `dir` (none if it does not exist).
fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(|e| e.ok()) {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The veths on the host whose name starts with hull's prefix, for a
/// before/after comparison.
pub(crate) fn hull_veths() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vhull"))
        .collect();
    v.sort();
    v
}

/// Bad `-p` values for `hull run`, and what the error must name.
pub(crate) const BAD_PORTS: &[(&str, &[&str])] = &[
    ("99999:80", &["invalid port mapping", "99999:80", "1-65535"]),
    ("0:80", &["invalid port mapping", "0:80", "1-65535"]),
    (
        "8080",
        &["invalid port mapping", "8080", "HOSTPORT:CONTAINERPORT"],
    ),
    ("http:80", &["invalid port mapping", "http:80"]),
    (
        "1.2.3:8080:80",
        &["invalid port mapping", "bad host address"],
    ),
    ("8080:80/sctp", &["invalid port mapping", "tcp or udp"]),
    ("::1:8080:80", &["invalid port mapping", "::1:8080:80"]),
    ("8080:-80", &["invalid port mapping", "8080:-80"]),
];

/// Bad `--subnet` lists for `hull network create`.
pub(crate) const BAD_SUBNETS: &[(&[&str], &[&str])] = &[
    (&["10.251.0.0"], &["10.251.0.0", "prefix"]),
    (&["10.251.0.0/33"], &["/33"]),
    (&["300.1.1.0/24"], &["300.1.1.0/24"]),
    (&["fd42:251::/129"], &["/129"]),
    (
        &["10.251.0.0/24", "10.252.0.0/24"],
        &["one subnet per address family"],
    ),
    (
        &["10.251.0.0/24", "fd42:251::/64", "fd42:252::/64"],
        &["one subnet per address family"],
    ),
    (&["10.251.0.0/31"], &["10.251.0.0/31", "too small"]),
    (&["10.251.0.0/-1"], &["10.251.0.0/-1"]),
];
