//! The broken configs: what each case changes, and what hull must say.

use serde_json::{json, Value};

/// How a case breaks the fixture's config.json.
pub(crate) enum Break {
    /// Edits the parsed config (the container id is given, for values
    /// that must name it).
    Edit(fn(&mut Value, &str)),
    /// Replaces config.json with these bytes.
    Bytes(fn() -> Vec<u8>),
}

/// A `hull create` of a broken config that must fail with every needle
/// on stderr.
pub(crate) struct ConfigCase {
    pub name: &'static str,
    pub how: Break,
    pub needles: &'static [&'static str],
}

use Break::{Bytes, Edit};

/// Appends a mount entry.
fn add_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

/// Adds a namespace entry.
fn add_namespace(c: &mut Value, ns: Value) {
    c["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
}

/// Sets `linux.seccomp`.
fn seccomp(c: &mut Value, profile: Value) {
    c["linux"]["seccomp"] = profile;
}

/// A user namespace with the given uid map (and a valid gid map).
fn userns_with_uid_map(c: &mut Value, uid_map: Value) {
    add_namespace(c, json!({"type": "user"}));
    c["linux"]["uidMappings"] = uid_map;
    c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

const TEN_MB: usize = 10 << 20;

pub(crate) const CONFIG_CASES: &[ConfigCase] = &[
    // Not JSON, or JSON of the wrong shape.
    ConfigCase {
        name: "truncated-json",
        how: Bytes(|| b"{\"ociVersion\": \"1.0.2\", ".to_vec()),
        needles: &["malformed", "config.json", "EOF"],
    },
    ConfigCase {
        name: "empty-file",
        how: Bytes(Vec::new),
        needles: &["malformed", "config.json"],
    },
    ConfigCase {
        name: "json-array",
        how: Bytes(|| b"[]".to_vec()),
        needles: &["malformed", "config.json", "not a JSON object"],
    },
    ConfigCase {
        name: "not-utf8",
        how: Bytes(|| b"{\"ociVersion\": \"1.0.\xff\xfe\"}".to_vec()),
        needles: &["malformed", "config.json", "invalid unicode code point"],
    },
    ConfigCase {
        name: "trailing-garbage",
        how: Bytes(|| b"{} xyz".to_vec()),
        needles: &["malformed", "trailing characters"],
    },
    // Wrong types.
    ConfigCase {
        name: "version-number",
        how: Edit(|c, _| c["ociVersion"] = json!(1.0)),
        needles: &["malformed", "invalid type"],
    },
    ConfigCase {
        name: "args-string",
        how: Edit(|c, _| c["process"]["args"] = json!("sh -c true")),
        needles: &["malformed", "invalid type", "sequence"],
    },
    ConfigCase {
        name: "terminal-string",
        how: Edit(|c, _| c["process"]["terminal"] = json!("yes")),
        needles: &["malformed", "invalid type", "boolean"],
    },
    ConfigCase {
        name: "annotations-list",
        how: Edit(|c, _| c["annotations"] = json!(["a=b"])),
        needles: &["malformed", "invalid type", "map"],
    },
    // Missing or empty essentials.
    ConfigCase {
        name: "version-2",
        how: Edit(|c, _| c["ociVersion"] = json!("2.0.0")),
        needles: &["unsupported spec version", "2.0.0"],
    },
    ConfigCase {
        name: "no-process",
        how: Edit(|c, _| drop(c.as_object_mut().unwrap().remove("process"))),
        needles: &["process is missing"],
    },
    ConfigCase {
        name: "empty-args",
        how: Edit(|c, _| c["process"]["args"] = json!([])),
        needles: &["process.args must not be empty"],
    },
    ConfigCase {
        name: "relative-cwd",
        how: Edit(|c, _| c["process"]["cwd"] = json!("tmp")),
        needles: &["process.cwd must be an absolute path"],
    },
    ConfigCase {
        name: "no-linux",
        how: Edit(|c, _| drop(c.as_object_mut().unwrap().remove("linux"))),
        needles: &["linux section is missing"],
    },
    ConfigCase {
        name: "no-root",
        how: Edit(|c, _| drop(c.as_object_mut().unwrap().remove("root"))),
        needles: &["root is missing"],
    },
    ConfigCase {
        name: "missing-rootfs",
        how: Edit(|c, _| c["root"]["path"] = json!("/nonexistent-rootfs")),
        needles: &["rootfs", "/nonexistent-rootfs", "does not exist"],
    },
    // Absurd and huge values.
    ConfigCase {
        name: "uid-2-32",
        how: Edit(|c, _| c["process"]["user"]["uid"] = json!(1u64 << 32)),
        needles: &["malformed", "4294967296", "u32"],
    },
    ConfigCase {
        name: "gid-negative",
        how: Edit(|c, _| c["process"]["user"]["gid"] = json!(-1)),
        needles: &["malformed", "-1"],
    },
    ConfigCase {
        name: "rlimit-2-64",
        how: Edit(|c, _| {
            c["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "hard": 18446744073709551616.0, "soft": 1}])
        }),
        needles: &["malformed", "invalid type"],
    },
    ConfigCase {
        name: "rlimit-soft-above-hard",
        how: Edit(|c, _| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 4096}])
        }),
        needles: &["RLIMIT_NOFILE", "soft", "hard"],
    },
    ConfigCase {
        name: "rlimit-huge-nofile",
        how: Edit(|c, _| {
            c["process"]["rlimits"] =
                json!([{"type": "RLIMIT_NOFILE", "hard": u64::MAX - 1, "soft": u64::MAX - 1}])
        }),
        needles: &["RLIMIT_NOFILE"],
    },
    ConfigCase {
        name: "rlimit-unknown",
        how: Edit(|c, _| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}])
        }),
        needles: &["malformed", "RLIMIT_BOGUS"],
    },
    ConfigCase {
        name: "rlimit-twice",
        how: Edit(|c, _| {
            c["process"]["rlimits"] = json!([
                {"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024},
                {"type": "RLIMIT_NOFILE", "hard": 2048, "soft": 2048}
            ])
        }),
        needles: &["RLIMIT_NOFILE", "twice"],
    },
    ConfigCase {
        name: "huge-hostname",
        how: Edit(|c, _| c["hostname"] = json!("h".repeat(TEN_MB))),
        needles: &["hostname", "64"],
    },
    ConfigCase {
        name: "huge-env",
        how: Edit(|c, _| {
            let env = c["process"]["env"].as_array_mut().unwrap();
            env.push(json!(format!("BIG={}", "x".repeat(TEN_MB))));
        }),
        needles: &["process.env", "too long"],
    },
    ConfigCase {
        name: "oom-score-adj",
        how: Edit(|c, _| c["process"]["oomScoreAdj"] = json!(5000)),
        needles: &["oomScoreAdj", "5000"],
    },
    ConfigCase {
        name: "env-without-equals",
        how: Edit(|c, _| c["process"]["env"] = json!(["PATH=/bin", "JUSTANAME"])),
        needles: &["process.env", "JUSTANAME"],
    },
    ConfigCase {
        name: "unknown-capability",
        how: Edit(|c, _| c["process"]["capabilities"]["bounding"] = json!(["CAP_BOGUS"])),
        needles: &["malformed", "CAP_BOGUS"],
    },
    // Namespaces.
    ConfigCase {
        name: "unknown-namespace",
        how: Edit(|c, _| add_namespace(c, json!({"type": "bogus"}))),
        needles: &["malformed", "bogus"],
    },
    ConfigCase {
        name: "duplicate-namespace",
        how: Edit(|c, _| add_namespace(c, json!({"type": "pid"}))),
        needles: &["namespace", "Pid", "listed twice"],
    },
    ConfigCase {
        name: "no-mount-namespace",
        how: Edit(|c, _| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "mount");
        }),
        needles: &["a mount namespace is required"],
    },
    ConfigCase {
        name: "namespace-path-missing",
        how: Edit(|c, _| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            for n in ns.iter_mut().filter(|n| n["type"] == "network") {
                n["path"] = json!("/nonexistent-netns");
            }
        }),
        needles: &["/nonexistent-netns"],
    },
    ConfigCase {
        name: "namespace-path-relative",
        how: Edit(|c, _| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            for n in ns.iter_mut().filter(|n| n["type"] == "network") {
                n["path"] = json!("proc/1/ns/net");
            }
        }),
        needles: &["namespace", "proc/1/ns/net", "absolute"],
    },
    ConfigCase {
        name: "hostname-without-uts",
        how: Edit(|c, _| {
            let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
            ns.retain(|n| n["type"] != "uts");
            c["hostname"] = json!("box");
        }),
        needles: &["hostname", "UTS namespace"],
    },
    // Mounts.
    ConfigCase {
        name: "mount-relative-destination",
        how: Edit(|c, _| {
            add_mount(
                c,
                json!({"destination": "mnt", "type": "tmpfs", "source": "tmpfs"}),
            )
        }),
        needles: &["mount destination", "mnt", "not absolute"],
    },
    ConfigCase {
        name: "mount-missing-type",
        how: Edit(|c, _| add_mount(c, json!({"destination": "/mnt", "source": "tmpfs"}))),
        needles: &["mount", "/mnt", "type"],
    },
    ConfigCase {
        name: "mount-bad-option",
        how: Edit(|c, _| {
            add_mount(
                c,
                json!({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                       "options": ["size=notanumber"]}),
            )
        }),
        needles: &["/mnt", "Invalid argument"],
    },
    ConfigCase {
        name: "mount-bind-missing-source",
        how: Edit(|c, _| {
            add_mount(
                c,
                json!({"destination": "/mnt", "type": "bind", "source": "/nonexistent-src",
                       "options": ["rbind"]}),
            )
        }),
        needles: &["/nonexistent-src"],
    },
    ConfigCase {
        name: "mount-bad-propagation",
        how: Edit(|c, _| c["linux"]["rootfsPropagation"] = json!("sideways")),
        needles: &["rootfsPropagation", "sideways"],
    },
    // User namespace maps.
    ConfigCase {
        name: "uid-map-without-userns",
        how: Edit(|c, _| {
            c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}])
        }),
        needles: &["uidMappings", "user namespace"],
    },
    ConfigCase {
        name: "userns-without-maps",
        how: Edit(|c, _| add_namespace(c, json!({"type": "user"}))),
        needles: &["uidMappings", "gidMappings"],
    },
    ConfigCase {
        name: "uid-map-size-0",
        how: Edit(|c, _| {
            userns_with_uid_map(c, json!([{"containerID": 0, "hostID": 100000, "size": 0}]))
        }),
        needles: &["uidMappings", "size"],
    },
    ConfigCase {
        name: "uid-map-host-2-32",
        how: Edit(|c, _| {
            userns_with_uid_map(
                c,
                json!([{"containerID": 0, "hostID": 1u64 << 32, "size": 1}]),
            )
        }),
        needles: &["malformed", "4294967296"],
    },
    ConfigCase {
        name: "uid-map-overflow",
        how: Edit(|c, _| {
            userns_with_uid_map(
                c,
                json!([{"containerID": 0, "hostID": 4294967000u32, "size": 65536}]),
            )
        }),
        needles: &["uidMappings", "4294967000"],
    },
    // Seccomp.
    ConfigCase {
        name: "seccomp-empty-name",
        how: Edit(|c, _| {
            seccomp(
                c,
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": [""], "action": "SCMP_ACT_ERRNO"}]}),
            )
        }),
        needles: &["seccomp", "empty syscall name"],
    },
    ConfigCase {
        name: "seccomp-no-names",
        how: Edit(|c, _| {
            seccomp(
                c,
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}),
            )
        }),
        needles: &["seccomp", "no names"],
    },
    ConfigCase {
        name: "seccomp-bad-action",
        how: Edit(|c, _| {
            seccomp(
                c,
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}]}),
            )
        }),
        needles: &["malformed", "SCMP_ACT_EXPLODE"],
    },
    ConfigCase {
        name: "seccomp-bad-default",
        how: Edit(|c, _| seccomp(c, json!({"defaultAction": "ALLOW"}))),
        needles: &["malformed", "ALLOW"],
    },
    ConfigCase {
        name: "seccomp-bad-arch",
        how: Edit(|c, _| {
            seccomp(
                c,
                json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
            )
        }),
        needles: &["malformed", "SCMP_ARCH_VAX"],
    },
    ConfigCase {
        name: "seccomp-arg-index-6",
        how: Edit(|c, _| {
            seccomp(
                c,
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                                     "args": [{"index": 6, "value": 9, "op": "SCMP_CMP_EQ"}]}]}),
            )
        }),
        needles: &["seccomp", "argument index 6"],
    },
    ConfigCase {
        name: "seccomp-bad-op",
        how: Edit(|c, _| {
            seccomp(
                c,
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                                     "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_ABOUT"}]}]}),
            )
        }),
        needles: &["malformed", "SCMP_CMP_ABOUT"],
    },
    ConfigCase {
        name: "seccomp-notify-no-listener",
        how: Edit(|c, _| {
            seccomp(
                c,
                json!({"defaultAction": "SCMP_ACT_ALLOW",
                       "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            )
        }),
        needles: &["seccomp", "listenerPath"],
    },
    // cgroupsPath.
    ConfigCase {
        name: "cgroups-path-dotdot",
        how: Edit(|c, id| c["linux"]["cgroupsPath"] = json!(format!("/{id}/../../escape"))),
        needles: &["cgroupsPath", ".."],
    },
    ConfigCase {
        name: "cgroups-path-systemd",
        how: Edit(|c, id| c["linux"]["cgroupsPath"] = json!(format!("system.slice:hull:{id}"))),
        needles: &["systemd"],
    },
    // Hooks.
    ConfigCase {
        name: "hook-relative-path",
        how: Edit(|c, _| c["hooks"] = json!({"prestart": [{"path": "bin/true"}]})),
        needles: &["hook", "bin/true", "absolute"],
    },
    ConfigCase {
        name: "hook-missing-binary",
        how: Edit(|c, _| c["hooks"] = json!({"createRuntime": [{"path": "/nonexistent-hook"}]})),
        needles: &["createRuntime", "/nonexistent-hook"],
    },
    ConfigCase {
        name: "hook-zero-timeout",
        how: Edit(|c, _| c["hooks"] = json!({"prestart": [{"path": "/bin/true", "timeout": 0}]})),
        needles: &["hook", "timeout"],
    },
    // Sysctl key syntax (which keys are allowed is another matter).
    ConfigCase {
        name: "sysctl-dotdot",
        how: Edit(|c, _| c["linux"]["sysctl"] = json!({"net..ipv4.ip_forward": "1"})),
        needles: &["sysctl", "net..ipv4.ip_forward"],
    },
    ConfigCase {
        name: "sysctl-slash",
        how: Edit(|c, _| c["linux"]["sysctl"] = json!({"net/ipv4/ip_forward": "1"})),
        needles: &["sysctl", "net/ipv4/ip_forward"],
    },
    ConfigCase {
        name: "sysctl-parent",
        how: Edit(|c, _| c["linux"]["sysctl"] = json!({"net.ipv4...kernel.foo": "1"})),
        needles: &["sysctl", "net.ipv4...kernel.foo"],
    },
    ConfigCase {
        name: "sysctl-empty",
        how: Edit(|c, _| c["linux"]["sysctl"] = json!({"": "1"})),
        // The key as the text log format quotes it: `\"\"`.
        needles: &["invalid sysctl key \\\"\\\""],
    },
    // Devices.
    ConfigCase {
        name: "device-bad-type",
        how: Edit(|c, _| {
            c["linux"]["devices"] = json!([{"path": "/dev/x", "type": "q", "major": 1, "minor": 3}])
        }),
        needles: &["malformed", "q"],
    },
    ConfigCase {
        name: "device-relative-path",
        how: Edit(|c, _| {
            c["linux"]["devices"] = json!([{"path": "dev/x", "type": "c", "major": 1, "minor": 3}])
        }),
        needles: &["device", "dev/x", "absolute"],
    },
    ConfigCase {
        name: "console-without-socket",
        how: Edit(|c, _| c["process"]["terminal"] = json!(true)),
        needles: &["console socket"],
    },
];
