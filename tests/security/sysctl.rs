//! `linux.sysctl` may only set keys of namespaces the container has of its
//! own: anything else would change the host's value (runc 1.1.5 refuses the
//! same keys with the same texts). Refused before anything is created.

use super::*;

/// A value for `key` that differs from the host's.
fn other_value(key: &str) -> String {
    let host = host_sysctl(key);
    if host.trim() == "11" { "12" } else { "11" }.to_owned()
}

/// Held by every test here: against a runtime that lets a value through,
/// tests running at once would read each other's values as the host's.
static HOST_SYSCTLS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    HOST_SYSCTLS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Puts a host sysctl back as it was when dropped, should a broken runtime
/// have changed it.
struct Restore {
    key: &'static str,
    value: String,
}

impl Drop for Restore {
    fn drop(&mut self) {
        clean_up("restore the host's sysctl", || {
            if host_sysctl(self.key) != self.value {
                let path = Path::new("/proc/sys").join(self.key.replace('.', "/"));
                let _ = std::fs::write(path, &self.value);
            }
        });
    }
}

/// Creating a container with `sysctl` {key: other value} fails with
/// `needle`, leaves nothing, and the host's value is what it was.
fn refused(name: &str, key: &'static str, edit: impl FnOnce(&mut Value), needle: &str) {
    let _serial = lock();
    let before = host_sysctl(key);
    let _restore = Restore {
        key,
        value: before.clone(),
    };
    let mut b = TestBundle::new(name);
    b.sh("echo should-not-run");
    let value = other_value(key);
    b.edit(|c| {
        edit(c);
        c["linux"]["sysctl"] = json!({ key: value });
    });
    assert_create_fails(&b, &[&format!("sysctl \"{key}\" {needle}")]);
    assert_eq!(host_sysctl(key), before, "host's {key} changed");
}

#[test]
fn a_host_wide_sysctl_is_refused() {
    refused(
        "sysctl-host",
        "kernel.printk_ratelimit_burst",
        |_| {},
        "is not in a separate kernel namespace",
    );
}

#[test]
fn a_net_sysctl_without_a_network_namespace_is_refused() {
    refused(
        "sysctl-nonet",
        "net.ipv4.ip_forward",
        |c| drop_namespace(c, "network"),
        "not allowed in host network namespace",
    );
}

#[test]
fn a_net_sysctl_in_the_runtimes_own_network_namespace_is_refused() {
    // A namespace given by path counts as the host's when it is the one the
    // runtime runs in (runc compares it with /proc/self/ns/net the same way).
    refused(
        "sysctl-ownnet",
        "net.ipv4.ip_forward",
        |c| {
            drop_namespace(c, "network");
            let net = json!({"type": "network", "path": "/proc/self/ns/net"});
            c["linux"]["namespaces"].as_array_mut().unwrap().push(net);
        },
        "not allowed in host network namespace",
    );
}

#[test]
fn an_ipc_sysctl_without_an_ipc_namespace_is_refused() {
    refused(
        "sysctl-noipc",
        "kernel.shmmax",
        |c| drop_namespace(c, "ipc"),
        "is not allowed in the hosts ipc namespace",
    );
    refused(
        "sysctl-noipc-mq",
        "fs.mqueue.msg_max",
        |c| drop_namespace(c, "ipc"),
        "is not allowed in the hosts ipc namespace",
    );
}

#[test]
fn kernel_hostname_is_refused_for_the_hostname_field() {
    refused(
        "sysctl-hostname",
        "kernel.hostname",
        |_| {},
        "is not allowed as it conflicts with the OCI \"hostname\" field",
    );
}

#[test]
fn keys_with_slashes_or_dot_dot_are_refused() {
    for (i, key) in [
        "kernel/shmmax",
        "kernel.shmmax/../../core_pattern",
        "net..ipv4",
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = TestBundle::new(&format!("sysctl-badkey{i}"));
        b.edit(|c| c["linux"]["sysctl"] = json!({ key: "1" }));
        assert_create_fails(&b, &["sysctl", &format!("{key:?}")]);
    }
}

#[test]
fn namespaced_sysctls_are_set_inside_only() {
    let _serial = lock();
    let keys = ["net.ipv4.ip_forward", "kernel.shmmax", "kernel.domainname"];
    let before: Vec<String> = keys.iter().map(|k| host_sysctl(k)).collect();
    let _restore: Vec<Restore> = keys
        .iter()
        .zip(&before)
        .map(|(&key, value)| Restore {
            key,
            value: value.clone(),
        })
        .collect();
    let mut b = TestBundle::new("sysctl-ns");
    let forward = if before[0].trim() == "1" { "0" } else { "1" };
    b.edit(|c| {
        c["linux"]["sysctl"] = json!({
            "net.ipv4.ip_forward": forward,
            "kernel.shmmax": "4096",
            "kernel.domainname": "hull-test-domain",
        })
    });
    b.sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/kernel/domainname");
    assert_eq!(
        run(&b, &[]).ok(),
        format!("{forward}\n4096\nhull-test-domain\n")
    );
    let after: Vec<String> = keys.iter().map(|k| host_sysctl(k)).collect();
    assert_eq!(after, before, "host's values changed");
    assert_nothing_left(&b);
}
