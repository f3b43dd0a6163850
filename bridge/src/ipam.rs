//! IP address manager: the leases of one network's subnet, kept on disk.
//!
//! A network's directory holds
//! - one file per leased address, named by the address (`10.88.0.2`) and
//!   holding the owner id (a container id);
//! - `last`: the address handed out last, where the next round-robin scan
//!   starts, so a just-released address is not reused at once;
//! - `lock`: taken with `flock(LOCK_EX)` around every change, so parallel
//!   hull processes and threads never hand out one address twice.
//!
//! A lease file is written unnamed (`O_TMPFILE`) and linked in whole, so a
//! crash of hull leaves either no lease or a complete one, and never a
//! temporary file: the files are the truth, there is no other state to
//! recover.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::{whole_file, Subnet};

/// The file locked around every change.
const LOCK_FILE: &str = "lock";
/// The file holding the address handed out last.
const LAST_FILE: &str = "last";

/// Why an IPAM operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    /// The owner id is empty or contains a '/'.
    #[error("invalid lease owner {0:?}: it must be non-empty and contain no '/'")]
    InvalidOwner(String),
    /// Every assignable address of the subnet is leased.
    #[error("no free address left in subnet {subnet} (leases in {})", dir.display())]
    Exhausted { subnet: Subnet, dir: PathBuf },
    /// A file of the lease directory could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Wraps an I/O error with what was done to which path.
fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> IpamError {
    let path = path.to_owned();
    move |source| IpamError::Io {
        action,
        path,
        source,
    }
}

/// Leases of one network, persisted under `dir` (one file per leased
/// address, named by the address, holding the owner id; a `lock` file taken
/// with flock(LOCK_EX) around every change so parallel processes never hand
/// out one address twice; survives a crash of hull because the files are the
/// truth).
#[derive(Debug, Clone)]
pub struct Ipam {
    dir: PathBuf,
    subnet: Subnet,
    gateway: Ipv4Addr,
}

impl Ipam {
    /// The manager of `subnet`'s leases in `dir` (created on first use);
    /// `gateway` is never handed out.
    pub fn new(dir: impl Into<PathBuf>, subnet: Subnet, gateway: Ipv4Addr) -> Self {
        Self {
            dir: dir.into(),
            subnet,
            gateway,
        }
    }

    /// The owner's existing lease, or the next free address (never the
    /// network address, the gateway or the broadcast address). Scans
    /// round-robin from the last handed-out address (stored in a file) so a
    /// just-released address is not reused at once. Error when the subnet is
    /// exhausted.
    pub fn allocate(&self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        validate_owner(owner)?;
        let _lock = self.lock()?;
        let leases = self.read_leases()?;
        if let Some((ip, _)) = leases.iter().find(|(_, o)| *o == owner) {
            return Ok(*ip);
        }
        let ip = self.next_free(&leases)?;
        self.create_whole(&ip.to_string(), owner)?;
        // Only a hint: a kill half-way leaves it garbled, which restarts
        // the scan at the subnet's start.
        let last = self.dir.join(LAST_FILE);
        fs::write(&last, ip.to_string()).map_err(io_err("write", &last))?;
        Ok(ip)
    }

    /// Releases the owner's lease(s); Ok if it has none (idempotent).
    pub fn release(&self, owner: &str) -> Result<(), IpamError> {
        validate_owner(owner)?;
        self.remove_where(|o| o == owner).map(drop)
    }

    /// All leases (address, owner), sorted by address.
    pub fn leases(&self) -> Result<Vec<(Ipv4Addr, String)>, IpamError> {
        let _lock = self.lock()?;
        Ok(self.read_leases()?.into_iter().collect())
    }

    /// Releases leases whose owner `is_alive` says is gone (stale leases of
    /// dead containers); returns how many were reclaimed.
    pub fn reclaim(&self, is_alive: impl Fn(&str) -> bool) -> Result<usize, IpamError> {
        self.remove_where(|o| !is_alive(o))
    }

    /// Removes every lease file and the directory (used by `network rm`);
    /// Ok if the directory is already gone.
    pub fn destroy(&self) -> Result<(), IpamError> {
        if !self.dir.exists() {
            return Ok(());
        }
        let _lock = self.lock()?;
        fs::remove_dir_all(&self.dir).map_err(io_err("remove", &self.dir))
    }

    /// Takes the network's lock, creating the directory if needed. Locks
    /// again when the lock file was unlinked meanwhile (a concurrent
    /// `destroy`), so the lock held is always the one other callers see.
    fn lock(&self) -> Result<Flock<File>, IpamError> {
        let path = self.dir.join(LOCK_FILE);
        loop {
            fs::create_dir_all(&self.dir).map_err(io_err("create", &self.dir))?;
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err("open", &path))?;
            let lock = flock_exclusive(file).map_err(io_err("lock", &path))?;
            if is_linked_at(&lock, &path)? {
                return Ok(lock);
            }
        }
    }

    /// Removes, under the lock, the leases whose owner matches; returns how
    /// many were removed.
    fn remove_where(&self, matches: impl Fn(&str) -> bool) -> Result<usize, IpamError> {
        let _lock = self.lock()?;
        let mut removed = 0;
        for (ip, owner) in self.read_leases()? {
            if matches(&owner) {
                let path = self.dir.join(ip.to_string());
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The lease files of the directory: address to owner. Other files
    /// (`lock`, `last`) are skipped.
    fn read_leases(&self) -> Result<BTreeMap<Ipv4Addr, String>, IpamError> {
        let entries = fs::read_dir(&self.dir).map_err(io_err("read", &self.dir))?;
        let mut leases = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(io_err("read", &self.dir))?;
            let Some(ip) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            let path = entry.path();
            let owner = fs::read_to_string(&path).map_err(io_err("read", &path))?;
            leases.insert(ip, owner);
        }
        Ok(leases)
    }

    /// The first address neither leased nor the gateway, scanning the
    /// subnet's host addresses round-robin from just after the last one
    /// handed out.
    fn next_free(&self, leases: &BTreeMap<Ipv4Addr, String>) -> Result<Ipv4Addr, IpamError> {
        let hosts = self.host_count();
        let start = self.last_handed_out().map_or(0, |i| (i + 1) % hosts);
        (0..hosts)
            .map(|i| self.host((start + i) % hosts))
            .find(|ip| *ip != self.gateway && !leases.contains_key(ip))
            .ok_or_else(|| IpamError::Exhausted {
                subnet: self.subnet,
                dir: self.dir.clone(),
            })
    }

    /// How many host addresses the subnet has: all but the network and the
    /// broadcast address.
    fn host_count(&self) -> u64 {
        (1u64 << (32 - self.subnet.prefix)).saturating_sub(2)
    }

    /// The `i`th host address (0 is the one after the network address).
    fn host(&self, i: u64) -> Ipv4Addr {
        let n = u32::try_from(i + 1).expect("host index within the subnet");
        self.subnet.nth(n).expect("host index within the subnet")
    }

    /// The host index of the address handed out last, if the `last` file
    /// names a host address of the subnet (it is only a hint: a missing or
    /// garbled file restarts the scan at the beginning).
    fn last_handed_out(&self) -> Option<u64> {
        let last: Ipv4Addr = fs::read_to_string(self.dir.join(LAST_FILE))
            .ok()?
            .parse()
            .ok()?;
        let n = u64::from(u32::from(last).wrapping_sub(u32::from(self.subnet.addr)));
        (self.subnet.contains(last) && (1..=self.host_count()).contains(&n)).then(|| n - 1)
    }

    /// Creates the file `name` of the directory with `contents`, whole or
    /// not at all: written unnamed (`O_TMPFILE`), then linked in, so a kill
    /// at any point leaves neither a half-written lease nor a temporary
    /// file. Only called under the lock, for a name not taken.
    fn create_whole(&self, name: &str, contents: &str) -> Result<(), IpamError> {
        let path = self.dir.join(name);
        let file = whole_file::unnamed(&self.dir, contents.as_bytes())
            .map_err(io_err("write a file in", &self.dir))?;
        whole_file::link(&file, &path).map_err(io_err("link", &path))
    }
}

/// Checks an owner id: a container id, non-empty and without '/'.
fn validate_owner(owner: &str) -> Result<(), IpamError> {
    if owner.is_empty() || owner.contains('/') {
        return Err(IpamError::InvalidOwner(owner.to_owned()));
    }
    Ok(())
}

/// Takes an exclusive flock on `file`, waiting for it and retrying when
/// interrupted by a signal.
fn flock_exclusive(mut file: File) -> io::Result<Flock<File>> {
    loop {
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => return Ok(lock),
            Err((f, Errno::EINTR)) => file = f,
            Err((_, errno)) => return Err(errno.into()),
        }
    }
}

/// Whether the open `file` is still the one linked at `path`.
fn is_linked_at(file: &File, path: &Path) -> Result<bool, IpamError> {
    let held = file.metadata().map_err(io_err("stat", path))?;
    match fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::HashMap;
    use std::env;
    use std::process::{Child, Command, Stdio};
    use std::thread;
    use std::time::{Duration, Instant};

    /// Env var giving a child process the test's temporary directory.
    const CHILD_ROOT: &str = "HULL_IPAM_TEST_ROOT";
    /// Env var giving a child process the prefix of its owner ids.
    const CHILD_PREFIX: &str = "HULL_IPAM_TEST_PREFIX";
    /// Marks a child's output line reporting one lease.
    const LEASE_LINE: &str = "hull-ipam-lease";
    /// Owners allocated by each parallel thread or process.
    const PER_WORKER: usize = 20;

    /// A temporary directory `hull-test-ipam-*`, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let path =
                env::temp_dir().join(format!("hull-test-ipam-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            Self(path)
        }

        /// The lease directory inside it.
        fn net(&self) -> PathBuf {
            self.0.join("net")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// An IPAM for `subnet` with its gateway at `.1`.
    fn ipam(dir: &Path, subnet: &str) -> Ipam {
        let subnet: Subnet = subnet.parse().unwrap();
        Ipam::new(dir, subnet, subnet.nth(1).unwrap())
    }

    #[test]
    fn allocation_skips_network_gateway_and_broadcast() {
        let tmp = TempDir::new("order");
        let subnet: Subnet = "10.88.0.0/29".parse().unwrap();
        let ipam = Ipam::new(tmp.net(), subnet, ip("10.88.0.3"));
        let got: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|o| ipam.allocate(o).unwrap())
            .collect();
        let want = [
            "10.88.0.1",
            "10.88.0.2",
            "10.88.0.4",
            "10.88.0.5",
            "10.88.0.6",
        ];
        let want = want.map(ip);
        assert_eq!(got, want);
        assert!(matches!(
            ipam.allocate("f"),
            Err(IpamError::Exhausted { .. })
        ));
    }

    #[test]
    fn same_owner_gets_same_address() {
        let tmp = TempDir::new("same");
        let ipam = ipam(&tmp.net(), "10.88.0.0/24");
        let first = ipam.allocate("a").unwrap();
        assert_eq!(first, ip("10.88.0.2"));
        assert_eq!(ipam.allocate("a").unwrap(), first);
        assert_eq!(ipam.leases().unwrap(), vec![(first, "a".to_owned())]);
    }

    #[test]
    fn released_address_is_not_reused_at_once() {
        let tmp = TempDir::new("reuse");
        let ipam = ipam(&tmp.net(), "10.88.0.0/24");
        let a = ipam.allocate("a").unwrap();
        ipam.release("a").unwrap();
        ipam.release("a").unwrap();
        assert_eq!(ipam.allocate("b").unwrap(), ip("10.88.0.3"));
        assert_ne!(ipam.allocate("a").unwrap(), a);
    }

    #[test]
    fn exhaustion_and_wrap_around() {
        let tmp = TempDir::new("exhaust");
        let tiny = ipam(&tmp.0.join("tiny"), "10.88.0.0/30");
        assert_eq!(tiny.allocate("a").unwrap(), ip("10.88.0.2"));
        let err = tiny.allocate("b").unwrap_err();
        assert!(err.to_string().contains("10.88.0.0/30"), "{err}");

        let small = ipam(&tmp.net(), "10.88.0.0/29");
        for owner in ["a", "b", "c", "d", "e"] {
            small.allocate(owner).unwrap();
        }
        small.release("b").unwrap();
        assert_eq!(small.allocate("f").unwrap(), ip("10.88.0.3"));
        assert!(matches!(
            small.allocate("g"),
            Err(IpamError::Exhausted { .. })
        ));
    }

    #[test]
    fn leases_persist_across_instances() {
        let tmp = TempDir::new("persist");
        let first = ipam(&tmp.net(), "10.88.0.0/24");
        first.allocate("a").unwrap();
        first.allocate("b").unwrap();
        fs::write(tmp.net().join(".10.88.0.9.tmp"), "crashed").unwrap();

        let second = ipam(&tmp.net(), "10.88.0.0/24");
        assert_eq!(second.leases().unwrap(), first.leases().unwrap());
        assert_eq!(second.allocate("b").unwrap(), ip("10.88.0.3"));
        assert_eq!(second.allocate("c").unwrap(), ip("10.88.0.4"));
    }

    #[test]
    fn reclaim_releases_dead_owners() {
        let tmp = TempDir::new("reclaim");
        let ipam = ipam(&tmp.net(), "10.88.0.0/24");
        for owner in ["a", "b", "c"] {
            ipam.allocate(owner).unwrap();
        }
        assert_eq!(ipam.reclaim(|owner| owner == "b").unwrap(), 2);
        assert_eq!(ipam.reclaim(|owner| owner == "b").unwrap(), 0);
        assert_eq!(
            ipam.leases().unwrap(),
            vec![(ip("10.88.0.3"), "b".to_owned())]
        );
    }

    #[test]
    fn owners_are_validated() {
        let tmp = TempDir::new("owner");
        let ipam = ipam(&tmp.net(), "10.88.0.0/24");
        for bad in ["", "a/b", "/"] {
            assert!(matches!(
                ipam.allocate(bad),
                Err(IpamError::InvalidOwner(_))
            ));
            assert!(ipam.release(bad).is_err());
        }
    }

    #[test]
    fn destroy_removes_the_directory() {
        let tmp = TempDir::new("destroy");
        let ipam = ipam(&tmp.net(), "10.88.0.0/24");
        ipam.allocate("a").unwrap();
        ipam.destroy().unwrap();
        assert!(!tmp.net().exists());
        ipam.destroy().unwrap();
    }

    /// Allocates `PER_WORKER` owners named `<prefix>-<i>`; returns owner to
    /// address.
    fn allocate_all(root: &Path, prefix: &str) -> Vec<(String, Ipv4Addr)> {
        let ipam = ipam(&root.join("net"), "10.88.0.0/24");
        (0..PER_WORKER)
            .map(|i| {
                let owner = format!("{prefix}-{i}");
                let ip = ipam.allocate(&owner).unwrap();
                (owner, ip)
            })
            .collect()
    }

    /// Waits until `path` exists.
    fn wait_for(path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// The body of a child process of
    /// `parallel_callers_never_share_an_address`: reports ready, waits for
    /// the start signal, allocates and prints its leases.
    #[test]
    #[ignore = "child process of parallel_callers_never_share_an_address"]
    fn parallel_child() {
        let (Ok(root), Ok(prefix)) = (env::var(CHILD_ROOT), env::var(CHILD_PREFIX)) else {
            return;
        };
        let root = PathBuf::from(root);
        fs::write(root.join(format!("ready-{prefix}")), "").unwrap();
        wait_for(&root.join("go"));
        for (owner, ip) in allocate_all(&root, &prefix) {
            println!("{LEASE_LINE} {owner} {ip}");
        }
    }

    /// Starts a child process running `parallel_child` with owner `prefix`.
    fn spawn_child(root: &Path, prefix: &str) -> Child {
        Command::new(env::current_exe().unwrap())
            .args(["--exact", "ipam::tests::parallel_child", "--ignored"])
            .args(["--nocapture", "--quiet", "--test-threads=1"])
            .env(CHILD_ROOT, root)
            .env(CHILD_PREFIX, prefix)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Waits for a child and parses the leases it printed.
    fn child_leases(child: Child) -> Vec<(String, Ipv4Addr)> {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "child failed: {:?}", out.status);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|line| line.strip_prefix(LEASE_LINE))
            .map(|rest| {
                let (owner, ip) = rest.trim().split_once(' ').unwrap();
                (owner.to_owned(), ip.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn parallel_callers_never_share_an_address() {
        let tmp = TempDir::new("parallel");
        let prefixes: Vec<String> = (0..4).map(|p| format!("proc{p}")).collect();
        let children: Vec<Child> = prefixes.iter().map(|p| spawn_child(&tmp.0, p)).collect();
        for prefix in &prefixes {
            wait_for(&tmp.0.join(format!("ready-{prefix}")));
        }
        fs::write(tmp.0.join("go"), "").unwrap();

        let root = tmp.0.as_path();
        let mut handed_out: Vec<(String, Ipv4Addr)> = thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|t| s.spawn(move || allocate_all(root, &format!("thread{t}"))))
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap())
                .collect()
        });
        handed_out.extend(children.into_iter().flat_map(child_leases));

        let owners = 12 * PER_WORKER;
        assert_eq!(handed_out.len(), owners);
        let by_ip: HashMap<Ipv4Addr, String> =
            handed_out.iter().map(|(o, ip)| (*ip, o.clone())).collect();
        assert_eq!(by_ip.len(), owners, "an address was handed out twice");
        let leases = ipam(&tmp.net(), "10.88.0.0/24").leases().unwrap();
        assert_eq!(leases.len(), owners);
        assert_eq!(leases.into_iter().collect::<HashMap<_, _>>(), by_ip);
    }
}
