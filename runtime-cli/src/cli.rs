//! Command line, flag for flag as runc spells it.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod fast;

/// hull: an OCI container runtime, command-line compatible with runc.
// The global flags come before the subcommand, as runc takes them (clap's
// `global` would also take them after it, at the price of copying each into
// every subcommand on every start).
#[derive(Debug, Parser)]
#[command(name = "hull", version = VERSION, disable_version_flag = true)]
pub struct Cli {
    /// Print the version.
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// Root directory for container state (default: /run/hull, or
    /// $XDG_RUNTIME_DIR/hull for an unprivileged user or, as runc has it,
    /// for root of a user namespace whose $USER is not root).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Write log lines to this file (appended) instead of stderr.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Format of log lines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Also log debug messages.
    #[arg(long)]
    pub debug: bool,
    /// State directory of hull's networks (bridges, leases, attachments).
    #[arg(long, default_value = bridge::DEFAULT_DIR)]
    pub net_root: PathBuf,
    /// nf_tables table holding hull's NAT and port-forwarding rules.
    #[arg(long, default_value = bridge::DEFAULT_TABLE)]
    pub net_table: String,
    /// Directory of hull's volumes (their images and records).
    #[arg(long, default_value = volume::DEFAULT_ROOT)]
    pub volume_root: PathBuf,
    /// Use the systemd cgroup driver (`cgroupsPath` as `slice:prefix:name`).
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// The CRIU binary `checkpoint` and `restore` run (default: criu on PATH).
    #[arg(long)]
    pub criu: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// `--version` as runc prints it (after the name): the version, the commit
/// it was built from, the runtime-spec version; tools parse these lines.
const VERSION: &str = concat!(
    "version ",
    env!("CARGO_PKG_VERSION"),
    "\ncommit: ",
    env!("HULL_COMMIT"),
    "\nspec: 1.0.2-dev"
);

/// runc's message for a bad `--format` or `--log-format` value.
fn invalid_format(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let text = |k| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.as_str()),
        _ => None,
    };
    let arg = text(ContextKind::InvalidArg)?;
    if arg.starts_with("--log-format") {
        Some(format!(
            "invalid log-format: {}",
            text(ContextKind::InvalidValue)?
        ))
    } else if arg.starts_with("--format") {
        Some("invalid format option".to_owned())
    } else {
        None
    }
}

/// A command line hull cannot run, handled as runc (urfave/cli) does: help
/// and version print and exit 0, as does a missing command (after the
/// help); an unknown command exits 3, any other usage error 1. Returns the
/// exit code.
pub fn usage(e: clap::Error) -> i32 {
    use clap::error::{ContextKind, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            0
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            let _ = <Cli as clap::CommandFactory>::command().print_help();
            0
        }
        ErrorKind::InvalidSubcommand => {
            let name = e
                .get(ContextKind::InvalidSubcommand)
                .map(|v| v.to_string())
                .unwrap_or_default();
            let msg = format!("No help topic for '{name}'");
            eprintln!(
                "{}",
                crate::logging::format_line(LogFormat::Text, "error", &msg)
            );
            3
        }
        // runc's words for a format it does not know (`list`/`ps
        // --format yaml`, `--log-format xml`), which tools match.
        ErrorKind::InvalidValue if invalid_format(&e).is_some() => {
            let msg = invalid_format(&e).unwrap_or_default();
            eprintln!(
                "{}",
                crate::logging::format_line(LogFormat::Text, "error", &msg)
            );
            1
        }
        _ => {
            let _ = e.print();
            1
        }
    }
}

impl Cli {
    /// The command line: a plain lifecycle call parsed by [`fast`], the rest
    /// (and every error and help text) by clap.
    pub fn from_env() -> Result<Self, clap::Error> {
        let args: Vec<OsString> = std::env::args_os().collect();
        match fast::parse(&args) {
            Some(cli) => Ok(cli),
            None => Self::try_parse_from(args),
        }
    }

    /// The state root: `--root`, else [`default_root`] for this user.
    pub fn state_root(&self) -> Result<PathBuf, crate::Failure> {
        match &self.root {
            Some(root) => Ok(root.clone()),
            None => {
                let xdg = std::env::var_os("XDG_RUNTIME_DIR");
                let per_user = libcontainer::rootless::euid_is_unprivileged()
                    || honours_xdg_as_root(
                        xdg.as_deref(),
                        || std::env::var_os("USER"),
                        libcontainer::rootless::in_child_user_namespace,
                    );
                default_root(per_user, xdg).map_err(crate::Failure::new)
            }
        }
    }
}

/// Whether root (euid 0) takes its state root from `XDG_RUNTIME_DIR`, as
/// runc's `shouldHonorXDGRuntimeDir` has it: when that is set, `USER` is
/// not `root`, and the runtime is root of a user namespace other than the
/// initial one (`in_child_user_namespace`). Rootless podman runs the runtime
/// so, as root of its user namespace with the user's `XDG_RUNTIME_DIR`, and
/// passes no `--root`. Each is looked at only if the one before allows it:
/// real root without `XDG_RUNTIME_DIR` (the usual start) reads nothing more,
/// and with `USER=root` nothing from `/proc`.
fn honours_xdg_as_root(
    xdg_runtime_dir: Option<&OsStr>,
    user: impl FnOnce() -> Option<OsString>,
    in_child_user_namespace: impl FnOnce() -> bool,
) -> bool {
    xdg_runtime_dir.is_some_and(|d| !d.is_empty())
        && user().is_none_or(|u| u != "root")
        && in_child_user_namespace()
}

/// The default state root, as runc picks it: root's is /run/hull; a
/// `per_user` one (an unprivileged user's, or root's of a user namespace, see
/// [`honours_xdg_as_root`]) is `hull` in its `XDG_RUNTIME_DIR`, which must be
/// set.
fn default_root(per_user: bool, xdg_runtime_dir: Option<OsString>) -> Result<PathBuf, String> {
    match (per_user, xdg_runtime_dir) {
        (false, _) => Ok(PathBuf::from(libcontainer::DEFAULT_ROOT)),
        (true, Some(dir)) if !dir.is_empty() => Ok(PathBuf::from(dir).join("hull")),
        (true, _) => Err(format!(
            "rootless: XDG_RUNTIME_DIR is not set, so there is no default state root for uid {}; \
             pass --root",
            libcontainer::nix::unistd::geteuid()
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Each subcommand's arguments are built only when that subcommand is the one
// invoked: a start parses one subcommand, and building all of them was most
// of the parser's time and code. The same holds for the nested command sets
// below (network, volume, dns), whose trees `run` built in full before.
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Create a container that waits for `start`.
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container, then wait for it (unless --detach).
    Run(RunArgs),
    /// Run a further process in a created or running container.
    Exec(Box<ExecArgs>),
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's init.
    Kill {
        /// Signal every process in the container's cgroup.
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Freeze every process of a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// List a container's processes (ps output filtered to its cgroup).
    Ps {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        /// Arguments for ps (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Change a running container's resource limits.
    Update(Box<UpdateArgs>),
    /// Print resource usage (and OOM) events as JSON lines.
    Events {
        /// Print one stats event and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between stats events.
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Delete a container.
    Delete {
        /// Kill a running container first.
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short, long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Print only the ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Manage bridge networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage block-device volumes.
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Checkpoint a running container with CRIU.
    Checkpoint(Box<CheckpointArgs>),
    /// Restore a container from a checkpoint.
    Restore(Box<RestoreArgs>),
    /// The resolver of a network (started by hull itself), and queries to it.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Print what this runtime supports (the OCI features document) as JSON.
    Features,
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A spec for an unprivileged user (user namespace, no network namespace).
        #[arg(long)]
        rootless: bool,
    },
}

// `hull exec`, with runc's flags. (No doc comment: with deferred subcommands
// an `Args` struct's doc would replace the subcommand's about line.)
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The process as JSON (an OCI `process` object); replaces COMMAND and
    /// the flags that describe the process.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Allocate a pseudo-TTY (its master goes to --console-socket).
    #[arg(short, long)]
    pub tty: bool,
    /// Unix socket receiving the pty master.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Do not wait for the process.
    #[arg(short, long)]
    pub detach: bool,
    /// Write the process's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Working directory inside the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Environment variables to add (KEY=VALUE).
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional groups.
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Capabilities to add to the process (e.g. CAP_NET_ADMIN).
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privileges.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass fds 3..3+N on to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Allow exec into a paused container.
    #[arg(long)]
    pub ignore_paused: bool,
    /// The AppArmor profile of the process (instead of the container's).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// The SELinux label of the process (instead of the container's).
    #[arg(long)]
    pub process_label: Option<String>,
    /// Run the process in an existing sub-cgroup of the container's:
    /// `[CONTROLLER[,CONTROLLER...]:]PATH`, repeated per controller.
    #[arg(long)]
    pub cgroup: Vec<String>,
    pub id: String,
    /// The command and its arguments (unless --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

// Flags `checkpoint` and `restore` share, as runc names them.
#[derive(Debug, Args)]
pub struct CriuFlags {
    /// Directory of the CRIU image files.
    #[arg(long)]
    pub image_path: Option<PathBuf>,
    /// Directory for CRIU's log and work files (default: the image path).
    #[arg(long)]
    pub work_path: Option<PathBuf>,
    /// Allow open TCP connections.
    #[arg(long)]
    pub tcp_established: bool,
    /// Allow external unix sockets.
    #[arg(long)]
    pub ext_unix_sk: bool,
    /// Allow shell jobs.
    #[arg(long)]
    pub shell_job: bool,
    /// Handle file locks.
    #[arg(long)]
    pub file_locks: bool,
    /// How CRIU handles cgroups: soft (default), full, strict or ignore.
    #[arg(long)]
    pub manage_cgroups_mode: Option<String>,
    /// Create a namespace but do not restore its contents (network).
    #[arg(long)]
    pub empty_ns: Vec<String>,
    /// Deduplicate memory images automatically.
    #[arg(long)]
    pub auto_dedup: bool,
    /// Restore memory pages lazily through userfaultfd.
    #[arg(long)]
    pub lazy_pages: bool,
}

// `hull checkpoint`, runc's flags.
#[derive(Debug, Args)]
pub struct CheckpointArgs {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Previous pre-dump images, relative to --image-path.
    #[arg(long)]
    pub parent_path: Option<PathBuf>,
    /// Leave the container running after the checkpoint.
    #[arg(long)]
    pub leave_running: bool,
    /// Dump memory only and leave the container running.
    #[arg(long)]
    pub pre_dump: bool,
    /// CRIU writes a NUL byte to this fd once the lazy-pages server is ready.
    #[arg(long, allow_negative_numbers = true, default_value_t = -1)]
    pub status_fd: i32,
    /// ADDRESS:PORT of a CRIU page server.
    #[arg(long)]
    pub page_server: Option<String>,
    pub id: String,
}

// `hull restore`, runc's flags.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Return once the container is restored.
    #[arg(short, long)]
    pub detach: bool,
    /// File to write the restored init's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Unix socket receiving the pty master of a container with a terminal.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (hull does not act as a subreaper).
    #[arg(long)]
    pub no_subreaper: bool,
    /// Accepted for runc compatibility (CRIU rebuilds the mount namespace).
    #[arg(long)]
    pub no_pivot: bool,
    /// LSM profile of the restored processes, TYPE:NAME.
    #[arg(long)]
    pub lsm_profile: Option<String>,
    /// LSM mount context of the restored mounts.
    #[arg(long)]
    pub lsm_mount_context: Option<String>,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
}

// Flags shared by `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket receiving the pty master when process.terminal is set.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's pid to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Keep the caller's session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many fds after stdio (3, 4, ...) on to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Connect the container to bridge network NAME (the default network without NAME).
    #[arg(long, num_args = 0..=1, default_missing_value = "")]
    pub network: Option<String>,
    /// Publish a port: [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp] (repeatable).
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Attach volume NAME at PATH: NAME:/PATH[:ro] (repeatable).
    #[arg(short = 'v', long = "volume")]
    pub volume: Vec<String>,
    pub id: String,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: CreateArgs,
    /// Return once the container has started.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
}

// `update` flags, as runc names them.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// A JSON LinuxResources file, or - for stdin.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit (bytes, or with k/m/g suffix; -1: none).
    #[arg(long, allow_negative_numbers = true)]
    pub memory: Option<String>,
    /// Memory plus swap limit (-1: unlimited swap).
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit (-1: none).
    #[arg(long, allow_negative_numbers = true)]
    pub memory_reservation: Option<String>,
    /// Kernel memory limit (ignored, as by runc).
    #[arg(long, hide = true, allow_negative_numbers = true)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer limit (ignored, as by runc).
    #[arg(long, hide = true, allow_negative_numbers = true)]
    pub kernel_memory_tcp: Option<String>,
    /// CPU shares (relative weight; runc's name is --cpu-share).
    #[arg(long, visible_alias = "cpu-share", allow_negative_numbers = true)]
    pub cpu_shares: Option<u64>,
    /// CFS quota in µs per period (-1: none).
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    // Negative numbers are taken as values, to be refused as invalid ones.
    /// CFS period in µs.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_period: Option<u64>,
    /// Realtime period in µs.
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_period: Option<u64>,
    /// Realtime runtime in µs per period (-1: none).
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// 1 puts the container's processes in the SCHED_IDLE class (`cpu.idle`,
    /// runc 1.2's flag).
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_idle: Option<i64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Pids limit (-1: none).
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Intel RDT L3 cache schema (not supported: an error when given).
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema (not supported: an error when given).
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

/// `hull network ...`
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum NetworkCommand {
    /// Create a bridge network.
    Create {
        /// Subnet, e.g. 10.89.0.0/24 (default: a free private /16 or /24).
        /// Given twice, once IPv4 and once IPv6 (e.g. fd42::/64), the
        /// network is dual-stack, as with `docker network create --ipv6`.
        #[arg(long, value_name = "CIDR")]
        subnet: Vec<String>,
        /// Also serve the host view on 127.0.0.1:PORT: SRV records of
        /// published ports, with the host's address and port.
        #[arg(long, value_name = "PORT")]
        dns_host_port: Option<u16>,
        /// Forward names not on the network here (ADDR or ADDR:PORT;
        /// default: the nameservers of the host's /etc/resolv.conf).
        #[arg(long, value_name = "ADDR")]
        dns_upstream: Vec<String>,
        /// `bridge` (this host only) or `vxlan` (an overlay across the
        /// hosts sharing --store).
        #[arg(long, value_enum, default_value_t = NetworkDriver::Bridge)]
        driver: NetworkDriver,
        #[command(flatten)]
        overlay: OverlayArgs,
        name: String,
    },
    /// List networks.
    Ls,
    /// Print a network and its containers as JSON.
    Inspect { name: String },
    /// Remove a network without containers (bridge, rules, leases).
    Rm { name: String },
    /// Run an overlay network's agent (hull starts it with the network).
    #[command(hide = true)]
    Agent {
        /// Report readiness on this inherited fd.
        #[arg(long)]
        ready_fd: Option<i32>,
        name: String,
    },
}

/// The kind of network `network create` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NetworkDriver {
    Bridge,
    Vxlan,
}

// The options of `network create --driver vxlan`. (A comment, not a doc
// comment: with deferred subcommands it would replace `create`'s about line.)
#[derive(Debug, Args)]
pub struct OverlayArgs {
    /// The shared store the hosts agree through: etcd://HOST:PORT.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// The VXLAN network identifier (default 1).
    #[arg(long)]
    pub vni: Option<u32>,
    /// Prefix length of each host's node subnet (default 24).
    #[arg(long, value_name = "LEN")]
    pub node_prefix: Option<u8>,
    /// The VXLAN UDP port (default 4789).
    #[arg(long, value_name = "PORT")]
    pub vxlan_port: Option<u16>,
    /// This host's underlay address (default: the one it reaches the store from).
    #[arg(long, value_name = "ADDR")]
    pub underlay: Option<std::net::Ipv4Addr>,
}

/// `hull volume ...`
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum VolumeCommand {
    /// Create a volume: a sparse image with an empty filesystem.
    Create {
        /// Its size, the most it holds (e.g. 5G); a remote volume's is
        /// its export's.
        #[arg(long, required_unless_present_any = ["from", "remote"])]
        size: Option<String>,
        /// The filesystem in the image.
        #[arg(long, value_enum, default_value_t = VolumeFs::Ext4)]
        fs: VolumeFs,
        /// How the image holds its blocks.
        #[arg(long, value_enum, default_value_t = VolumeFormat::Raw)]
        format: VolumeFormat,
        /// Make it a copy of this snapshot (as `volume clone`).
        #[arg(long, value_name = "SNAPSHOT", conflicts_with_all = ["size", "remote"])]
        from: Option<String>,
        /// An image on an NBD server: nbd://HOST:PORT/EXPORT.
        #[arg(long, value_name = "URL")]
        remote: Option<String>,
        name: String,
    },
    /// List volumes and snapshots.
    Ls,
    /// Print a volume, its image and its users as JSON.
    Inspect { name: String },
    /// Remove a volume or snapshot no container uses.
    Rm { name: String },
    /// Snapshot a volume no container writes to.
    Snapshot { name: String, snapshot: String },
    /// Make a new volume from a snapshot.
    Clone { snapshot: String, name: String },
    /// Serve a qcow2 image or an nbd:// export as the raw file FILE until
    /// SIGTERM: the FUSE server hull starts for an attached volume.
    #[command(hide = true)]
    Serve {
        #[arg(long)]
        read_only: bool,
        /// The locked pid file, inherited from the hull that starts it.
        #[arg(long)]
        pid_fd: Option<i32>,
        source: String,
        file: std::path::PathBuf,
        pid_file: std::path::PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VolumeFs {
    Ext4,
    Xfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VolumeFormat {
    Raw,
    Qcow2,
}

/// `hull dns ...`
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum DnsCommand {
    /// Run a network's resolver (hull starts it when a container attaches).
    Serve {
        /// Report readiness on this inherited fd.
        #[arg(long, hide = true)]
        ready_fd: Option<i32>,
        network: String,
    },
    /// Ask a network's resolver for NAME's records (default type A).
    Query {
        /// Ask the host view (127.0.0.1:--dns-host-port) instead.
        #[arg(long)]
        host: bool,
        network: String,
        name: String,
        #[arg(value_name = "TYPE")]
        record_type: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_tree_is_consistent() {
        // Builds every deferred subcommand and checks clap's invariants.
        Cli::command().debug_assert();
    }

    #[test]
    fn deferred_subcommands_keep_their_about_line() {
        let mut cli = Cli::command();
        cli.build();
        for (name, about) in [
            ("create", "Create a container that waits for `start`"),
            (
                "run",
                "Create and start a container, then wait for it (unless --detach)",
            ),
            (
                "exec",
                "Run a further process in a created or running container",
            ),
            ("update", "Change a running container's resource limits"),
        ] {
            let sub = cli.find_subcommand(name).unwrap();
            assert_eq!(
                sub.get_about().map(|a| a.to_string()).as_deref(),
                Some(about)
            );
        }
    }

    #[test]
    fn global_flags_go_before_the_subcommand_as_in_runc() {
        let cli = Cli::try_parse_from(["hull", "--log-format", "json", "--debug", "state", "c1"])
            .unwrap();
        assert_eq!(cli.log_format, LogFormat::Json);
        assert!(cli.debug);
        assert!(Cli::try_parse_from(["hull", "state", "--root", "/r", "c1"]).is_err());
    }

    #[test]
    fn parses_a_deferred_subcommand() {
        let cli =
            Cli::try_parse_from(["hull", "--root", "/r", "run", "-d", "-b", "/b", "c1"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert!(run.detach);
        assert_eq!(run.create.bundle, PathBuf::from("/b"));
        assert_eq!(run.create.id, "c1");
        assert_eq!(cli.root, Some(PathBuf::from("/r")));
    }

    #[test]
    fn default_root_is_per_user_when_unprivileged() {
        let xdg = Some(OsString::from("/run/user/1001"));
        assert_eq!(
            default_root(false, xdg.clone()).unwrap(),
            PathBuf::from("/run/hull")
        );
        assert_eq!(
            default_root(true, xdg).unwrap(),
            PathBuf::from("/run/user/1001/hull")
        );
        assert!(default_root(true, None).unwrap_err().contains("--root"));
        assert!(default_root(true, Some(OsString::new())).is_err());
    }

    #[test]
    fn root_of_a_user_namespace_honours_xdg_runtime_dir_unless_user_is_root() {
        let xdg = Some(OsStr::new("/run/user/1001"));
        fn user(u: Option<&'static str>) -> impl FnOnce() -> Option<OsString> {
            move || u.map(OsString::from)
        }
        assert!(honours_xdg_as_root(xdg, user(Some("someone")), || true));
        assert!(honours_xdg_as_root(xdg, user(None), || true));
        assert!(honours_xdg_as_root(xdg, user(Some("")), || true));
        assert!(!honours_xdg_as_root(xdg, user(Some("someone")), || false));
        // Real root's common cases never look further than they must.
        let unasked = || -> bool { panic!("user namespace looked at") };
        let unasked_user = || -> Option<OsString> { panic!("USER looked at") };
        assert!(!honours_xdg_as_root(xdg, user(Some("root")), unasked));
        assert!(!honours_xdg_as_root(None, unasked_user, unasked));
        assert!(!honours_xdg_as_root(
            Some(OsStr::new("")),
            unasked_user,
            unasked
        ));
    }
}
