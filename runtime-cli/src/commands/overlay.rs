//! The options of `hull network create --driver vxlan`, checked before
//! anything is made.

use bridge::overlay::{
    OverlayConfig, OverlayOptions, DEFAULT_NODE_PREFIX, DEFAULT_PORT, DEFAULT_VNI,
};

use crate::cli::OverlayArgs;
use crate::Failure;

/// An overlay network's options: one IPv4 `--subnet` (the whole range)
/// and `--store` are required.
pub fn options(subnets: &[String], args: &OverlayArgs) -> Result<OverlayOptions, Failure> {
    let [subnet] = subnets else {
        return Err(Failure::new(
            "--driver vxlan needs one IPv4 --subnet: the range the hosts' node subnets are cut from",
        ));
    };
    let subnet = subnet.parse().map_err(Failure::new)?;
    let store = args
        .store
        .clone()
        .ok_or_else(|| Failure::new("--driver vxlan needs --store etcd://HOST:PORT"))?;
    Ok(OverlayOptions {
        config: OverlayConfig {
            subnet,
            node_prefix: args.node_prefix.unwrap_or(DEFAULT_NODE_PREFIX),
            vni: args.vni.unwrap_or(DEFAULT_VNI),
            port: args.vxlan_port.unwrap_or(DEFAULT_PORT),
        },
        store,
        underlay: args.underlay,
    })
}

/// A bridge network takes none of the overlay's options.
pub fn refuse_options(args: &OverlayArgs) -> Result<(), Failure> {
    let given = [
        ("--store", args.store.is_some()),
        ("--vni", args.vni.is_some()),
        ("--node-prefix", args.node_prefix.is_some()),
        ("--vxlan-port", args.vxlan_port.is_some()),
        ("--underlay", args.underlay.is_some()),
    ];
    match given.iter().find(|(_, set)| *set) {
        Some((flag, _)) => Err(Failure::new(format!("{flag} needs --driver vxlan"))),
        None => Ok(()),
    }
}
