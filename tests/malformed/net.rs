//! hull's network state for the `-p` and `--subnet` cases, and the cases.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// hull's network state for these tests: its own `--net-root` and
/// nf_tables table, checked empty and removed at the end.
pub(crate) struct NetState {
    root: PathBuf,
    table: String,
}

impl NetState {
    pub fn new() -> Self {
        let pid = std::process::id();
        Self {
            root: PathBuf::from(format!("/tmp/hull-test-net-malformed-{pid}")),
            table: format!("hull_test_malformed_{pid}"),
        }
    }

    pub fn flags(&self) -> [String; 4] {
        [
            "--net-root".into(),
            self.root.to_string_lossy().into_owned(),
            "--net-table".into(),
            self.table.clone(),
        ]
    }

    /// No network, lease, attachment, bridge, veth or table exists.
    pub fn assert_empty(&self, what: &str, bridge: &str) {
        let files: Vec<_> = walk_files(&self.root);
        assert!(files.is_empty(), "{what}: network state left: {files:?}");
        assert!(
            !Path::new("/sys/class/net").join(bridge).exists(),
            "{what}: bridge {bridge} created"
        );
        for family in ["ip", "ip6"] {
            let listed = Command::new("nft")
                .args(["list", "table", family, &self.table])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(
                !listed.success(),
                "{what}: table {family} {} made",
                self.table
            );
        }
    }
}

impl Drop for NetState {
    fn drop(&mut self) {
        for family in ["ip", "ip6"] {
            let _ = Command::new("nft")
                .args(["delete", "table", family, &self.table])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_dir_all(&self.root);
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
