//! What this runtime supports, as the OCI runtime spec's features document
//! (`hull features`, which containerd reads to learn, for one, whether
//! idmapped mounts are there).

use std::collections::HashMap;

use oci_spec::runtime::{
    ApparmorBuilder, CgroupBuilder, FeaturesBuilder, IDMapBuilder, IntelRdtBuilder,
    LinuxFeatureBuilder, LinuxNamespaceType, LinuxSeccompAction, MemoryPolicyBuilder,
    MountExtensionsBuilder, NetDevicesBuilder, SeccompBuilder, SelinuxBuilder,
};

/// The hook stages hull runs.
const HOOKS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The seccomp comparison operators the BPF generator compiles.
const SECCOMP_OPERATORS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// The features document of this build on this kernel.
pub fn features() -> oci_spec::runtime::Features {
    use LinuxNamespaceType as Ns;
    use LinuxSeccompAction as Act;
    let mut capabilities: Vec<_> = caps::all().into_iter().collect();
    capabilities.sort_by_key(|c| c.index());
    let (known_flags, supported_flags) = crate::seccomp::filter_flags();
    let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let seccomp = SeccompBuilder::default()
        .enabled(true)
        .actions(vec![
            Act::ScmpActAllow,
            Act::ScmpActErrno,
            Act::ScmpActKill,
            Act::ScmpActKillProcess,
            Act::ScmpActKillThread,
            Act::ScmpActLog,
            Act::ScmpActNotify,
            Act::ScmpActTrace,
            Act::ScmpActTrap,
        ])
        .operators(strings(&SECCOMP_OPERATORS))
        .archs(crate::seccomp::SUPPORTED_ARCHS.map(|(oci, _)| oci).to_vec())
        .known_flags(strings(&known_flags))
        .supported_flags(strings(&supported_flags));
    let cgroup = CgroupBuilder::default()
        .v1(true)
        .v2(true)
        .systemd(true)
        .systemd_user(false)
        .rdma(true);
    let idmap = IDMapBuilder::default().enabled(true);
    let linux = LinuxFeatureBuilder::default()
        .namespaces(vec![
            Ns::Cgroup,
            Ns::Ipc,
            Ns::Mount,
            Ns::Network,
            Ns::Pid,
            Ns::Time,
            Ns::User,
            Ns::Uts,
        ])
        .capabilities(
            capabilities
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>(),
        )
        .cgroup(cgroup.build().expect("all fields set"))
        .seccomp(seccomp.build().expect("all fields set"))
        .apparmor(
            ApparmorBuilder::default()
                .enabled(true)
                .build()
                .expect("set"),
        )
        .selinux(
            SelinuxBuilder::default()
                .enabled(true)
                .build()
                .expect("set"),
        )
        // What crate::sched sets and refuses.
        .memory_policy(
            MemoryPolicyBuilder::default()
                .modes(strings(&[
                    "MPOL_DEFAULT",
                    "MPOL_PREFERRED",
                    "MPOL_BIND",
                    "MPOL_INTERLEAVE",
                    "MPOL_LOCAL",
                    "MPOL_PREFERRED_MANY",
                    "MPOL_WEIGHTED_INTERLEAVE",
                ]))
                .flags(strings(&[
                    "MPOL_F_NUMA_BALANCING",
                    "MPOL_F_RELATIVE_NODES",
                    "MPOL_F_STATIC_NODES",
                ]))
                .build()
                .expect("set"),
        )
        .intel_rdt(
            IntelRdtBuilder::default()
                .enabled(false)
                .build()
                .expect("set"),
        )
        .net_devices(
            NetDevicesBuilder::default()
                .enabled(true)
                .build()
                .expect("set"),
        )
        .mount_extensions(
            MountExtensionsBuilder::default()
                .idmap(idmap.build().expect("set"))
                .build()
                .expect("set"),
        );
    let mut mount_options: Vec<String> = crate::rootfs::recognized_mount_options()
        .map(str::to_owned)
        .collect();
    mount_options.sort();
    FeaturesBuilder::default()
        .oci_version_min("1.0.0")
        .oci_version_max(oci_spec::runtime::VERSION)
        .hooks(strings(&HOOKS))
        .mount_options(mount_options)
        .linux(linux.build().expect("all fields set"))
        .annotations(HashMap::from([
            (
                "dev.hull.version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
            // runc says it has `checkpoint`/`restore` here (its document
            // lists no commands): CRIU is looked for only when they run.
            ("dev.hull.checkpoint.enabled".to_owned(), "true".to_owned()),
        ]))
        .build()
        .expect("all fields set")
}
