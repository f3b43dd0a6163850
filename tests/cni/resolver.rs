//! The CNI plugin's `hull` role and hull's resolver: the result's `dns`
//! points at the network's resolver, which answers for the container and
//! goes when the container's DEL leaves the network empty.
//!
//! Isolation: the network lab's [`Net`] on 10.251.28.0/24 (test 8 of
//! tests/dns.rs's numbering), its own `--net-root` and `--net-table`, and a
//! [`Sandbox`] as the container's namespace.

use hull_tests::cni::cni;
use hull_tests::net::answers;
use hull_tests::netlab::{Net, Sandbox};
use hull_tests::*;
use serde_json::json;

/// The CNI plugin's `hull` role: ADD starts the network's resolver and
/// points the result's `dns` at it, which answers for the container's id;
/// after DEL of its only container the resolver goes.
#[test]
fn cni_plugin_result_points_at_the_resolver() {
    require("dig");
    let net = Net::on("dns8", 8, [10, 251, 28]);
    let sandbox = Sandbox::new();
    let ns = sandbox.netns();
    let gw = format!("{}.1", net.prefix_str());
    let id = unique("dns-cni");
    let conf = json!({
        "cniVersion": "1.0.0", "name": net.name, "type": "hull",
        "subnet": "10.251.28.0/24", "dataDir": net.root, "table": net.table
    });
    let (ok, r) = cni("ADD", &id, &ns, &conf);
    assert!(ok, "ADD failed: {r}");
    assert_eq!(
        r["dns"],
        json!({"nameservers": [gw], "search": [net.name]}),
        "{r:#}"
    );
    let name = format!("{id}.{}", net.name);
    assert_eq!(answers(&gw, &name, "A"), ["A 10.251.28.2"]);
    let pid = net.resolver().expect("the plugin started a resolver");
    let (ok, r) = cni("DEL", &id, &ns, &conf);
    assert!(ok, "DEL failed: {r}");
    // Its only container left: the resolver goes.
    net.assert_resolver_gone(pid, "after DEL");
    drop(sandbox);
    let out = net.cmd(&["network", "rm", &net.name]);
    assert!(out.status.success(), "network rm: {}", text(&out.stderr));
    assert_no_process(&net.root.to_string_lossy());
}
