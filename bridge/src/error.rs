//! The crate's error type.

/// A networking step that failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {}", std::io::Error::from_raw_os_error(*errno))]
    Netlink { what: String, errno: i32 },
    #[error("malformed netlink reply: {0}")]
    Decode(String),
    #[error("link {0} vanished right after it was created")]
    Missing(String),
    #[error("network {0:?} does not exist")]
    NoSuchNetwork(String),
    #[error("network {0:?} already exists")]
    NetworkExists(String),
    #[error("network {name:?} still has containers attached: {containers:?}")]
    NetworkInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error("host port {0} is already in use")]
    PortInUse(String),
    /// A `-p` mapping (or `org.hull.publish` entry) that does not parse.
    #[error("{0}")]
    BadPort(String),
    #[error("networking needs the container to have its own network namespace")]
    SharedNetns,
    #[error("container init is gone")]
    NoInit,
    #[error("{0} is attached to no network")]
    NotAttached(String),
    #[error("invalid network configuration: {0}")]
    Invalid(String),
    #[error("no free private subnet left for a new network")]
    NoSubnet,
    #[error(transparent)]
    Dns(#[from] crate::dns::DnsError),
    #[error(transparent)]
    Ipam(#[from] crate::ipam::IpamError),
    #[error(transparent)]
    Firewall(#[from] crate::nft::NftError),
    #[error(transparent)]
    Overlay(#[from] crate::overlay::OverlayError),
}

impl NetError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
