//! What the resolver knows beyond the attachments: a container's names,
//! service and ports (from its annotations) and the network's DNS options.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{net_dir, DnsError, ALIASES_ANNOTATION, PORTS_ANNOTATION, SERVICE_ANNOTATION};
use crate::Protocol;

/// A container's DNS identity beyond its id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// More names answering with the container's addresses.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The service whose name answers with all members' addresses.
    #[serde(default)]
    pub service: Option<String>,
    /// Ports announced with SRV records.
    #[serde(default)]
    pub ports: Vec<SrvPort>,
}

/// A named port: `_<name>._<proto>.<service>.<network>` points at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SrvPort {
    pub name: String,
    pub port: u16,
    pub protocol: Protocol,
    pub priority: u16,
    pub weight: u16,
}

impl SrvPort {
    /// Parses `name:port/proto[:priority[:weight]]` (priority and weight
    /// default to 0 and 1).
    fn parse(s: &str) -> Result<Self, String> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or("");
        // RFC 6335 service names: at most 15 characters.
        if name.len() > 15 || !is_label(name) {
            return Err(format!(
                "{s:?}: port name {name:?} must be a DNS label of 1-15 characters"
            ));
        }
        let port_proto = parts
            .next()
            .ok_or_else(|| format!("{s:?}: expected name:port/proto"))?;
        let (port, proto) = port_proto.split_once('/').unwrap_or((port_proto, "tcp"));
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{s:?}: ports are 1-65535"))?;
        let protocol = match proto {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return Err(format!("{s:?}: protocol must be tcp or udp")),
        };
        let mut number = |what: &str, default: u16| {
            parts.next().map_or(Ok(default), |v| {
                v.parse::<u16>()
                    .map_err(|_| format!("{s:?}: bad {what} {v:?}"))
            })
        };
        let priority = number("priority", 0)?;
        let weight = number("weight", 1)?;
        if parts.next().is_some() {
            return Err(format!(
                "{s:?}: expected name:port/proto[:priority[:weight]]"
            ));
        }
        Ok(Self {
            name: name.to_ascii_lowercase(),
            port,
            protocol,
            priority,
            weight,
        })
    }

    /// The SRV protocol label: `_tcp` or `_udp`.
    pub fn proto_label(&self) -> &'static str {
        match self.protocol {
            Protocol::Tcp => "_tcp",
            Protocol::Udp => "_udp",
        }
    }
}

/// Whether `s` is one DNS label of letters, digits and inner hyphens.
fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Member {
    /// The member a container's annotations describe; `None` without any
    /// DNS annotation. A bad annotation is an error naming it.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
    ) -> Result<Option<Self>, DnsError> {
        let list = |key: &'static str| -> Vec<&str> {
            annotations
                .get(key)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let bad = |key, why: String| DnsError::Annotation { key, why };
        let mut m = Member::default();
        for a in list(ALIASES_ANNOTATION) {
            if !is_label(a) {
                return Err(bad(
                    ALIASES_ANNOTATION,
                    format!("{a:?} is not a DNS label (letters, digits, -)"),
                ));
            }
            m.aliases.push(a.to_ascii_lowercase());
        }
        if let Some(s) = annotations.get(SERVICE_ANNOTATION).map(|s| s.trim()) {
            if !is_label(s) {
                return Err(bad(
                    SERVICE_ANNOTATION,
                    format!("{s:?} is not a DNS label (letters, digits, -)"),
                ));
            }
            m.service = Some(s.to_ascii_lowercase());
        }
        for p in list(PORTS_ANNOTATION) {
            m.ports
                .push(SrvPort::parse(p).map_err(|why| bad(PORTS_ANNOTATION, why))?);
        }
        Ok((m != Member::default()).then_some(m))
    }

    fn file(store: &Path, net: &str, container: &str) -> PathBuf {
        net_dir(store, net)
            .join("members")
            .join(format!("{container}.json"))
    }

    /// Records the member for `container` on `net` (before it attaches, so
    /// the resolver sees its names with its address).
    pub fn save(&self, store: &Path, net: &str, container: &str) -> Result<(), DnsError> {
        write_json(&Self::file(store, net, container), self)
    }

    /// Forgets `container`'s member record; Ok if there is none.
    pub fn remove(store: &Path, net: &str, container: &str) -> Result<(), DnsError> {
        let path = Self::file(store, net, container);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(DnsError::io("remove", &path)(e))
            }
            _ => Ok(()),
        }
    }

    /// Every member record of `net`, by container id.
    pub fn all(store: &Path, net: &str) -> Result<BTreeMap<String, Member>, DnsError> {
        let dir = net_dir(store, net).join("members");
        let mut out = BTreeMap::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(DnsError::io("read", &dir)(e)),
        };
        for e in entries.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".json") {
                if let Some(m) = read_json(&e.path())? {
                    out.insert(id.to_owned(), m);
                }
            }
        }
        Ok(out)
    }
}

/// A network's DNS options, set by `network create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The port of the host view on 127.0.0.1 (published ports' SRV records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// Upstream servers; empty: those of the host's /etc/resolv.conf.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstreams: Vec<SocketAddr>,
}

impl Config {
    fn file(store: &Path, net: &str) -> PathBuf {
        net_dir(store, net).join("config.json")
    }

    /// The options of `net` (defaults if it has none).
    pub fn load(store: &Path, net: &str) -> Result<Self, DnsError> {
        Ok(read_json(&Self::file(store, net))?.unwrap_or_default())
    }

    /// Saves the options of `net`.
    pub fn save(&self, store: &Path, net: &str) -> Result<(), DnsError> {
        if self.host_port == Some(0) {
            return Err(DnsError::Invalid(
                "the host view port must be 1-65535".into(),
            ));
        }
        write_json(&Self::file(store, net), self)
    }
}

pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), DnsError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(dir).map_err(DnsError::io("create", dir))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(value).expect("serializable"))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(DnsError::io("write", path))
}

pub(crate) fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>, DnsError> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| DnsError::Corrupt {
                path: path.to_owned(),
                why: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DnsError::io("read", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn annotations_make_a_member() {
        let m = Member::from_annotations(&annotations(&[
            (ALIASES_ANNOTATION, "db, Primary"),
            (SERVICE_ANNOTATION, "web"),
            (
                PORTS_ANNOTATION,
                "http:80/tcp,metrics:9100/tcp:10:5,dns:53/udp",
            ),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(m.aliases, ["db", "primary"]);
        assert_eq!(m.service.as_deref(), Some("web"));
        assert_eq!(m.ports[0].name, "http");
        assert_eq!(
            (m.ports[0].port, m.ports[0].priority, m.ports[0].weight),
            (80, 0, 1)
        );
        assert_eq!(
            (m.ports[1].port, m.ports[1].priority, m.ports[1].weight),
            (9100, 10, 5)
        );
        assert_eq!(m.ports[2].protocol, Protocol::Udp);
        assert_eq!(Member::from_annotations(&annotations(&[])).unwrap(), None);
    }

    #[test]
    fn bad_annotations_are_named() {
        for (k, v) in [
            (ALIASES_ANNOTATION, "a b"),
            (SERVICE_ANNOTATION, "web.x"),
            (PORTS_ANNOTATION, "http:0/tcp"),
            (PORTS_ANNOTATION, "http:80/sctp"),
            (PORTS_ANNOTATION, "a-very-long-port-name:80"),
            (PORTS_ANNOTATION, "http:80/tcp:1:2:3"),
            (PORTS_ANNOTATION, "http"),
        ] {
            let e = Member::from_annotations(&annotations(&[(k, v)])).unwrap_err();
            assert!(e.to_string().contains(k), "{v}: {e}");
        }
    }
}
