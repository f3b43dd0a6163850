//! The container's filesystem view: mounts and their flags, propagation, the
//! read-only root, symlink safety, `/dev`, masked and read-only paths,
//! `--no-pivot`, `process.cwd` and `linux.sysctl`. Every test looks at what
//! the container sees from inside and checks that nothing is left behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hull_tests::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

/// A host-side scratch directory `$TMPDIR/hull-test-<name>-<pid>`. Dropping it
/// unmounts everything on or below it (deepest first) and removes it.
struct HostDir {
    path: PathBuf,
}

impl HostDir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(unique(name));
        unmount_below(&path);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self { path }
    }

    fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    fn str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// `mount --bind D D; mount --make-shared D`.
    fn make_shared(&self) {
        host(&["mount", "--bind", self.str(), self.str()]);
        host(&["mount", "--make-shared", self.str()]);
    }

    /// Nothing was written in or mounted on the directory (the container's
    /// setup stayed in its rootfs).
    fn assert_untouched(&self) {
        let entries = self.entries();
        assert!(entries.is_empty(), "host dir written: {entries:?}");
        let mounts = host_mounts_below(&self.path);
        assert!(mounts.is_empty(), "host dir mounted on: {mounts:?}");
    }

    /// Names of the entries in the directory.
    fn entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&self.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        clean_up("unmounting the host dir", || unmount_below(&self.path));
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Host mount points equal to or below `path`.
fn host_mounts_below(path: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    parse_mountinfo(&info)
        .into_iter()
        .map(|m| m.point)
        .filter(|p| Path::new(p).starts_with(path))
        .collect()
}

/// Lazily unmounts everything on or below `path`, deepest first.
fn unmount_below(path: &Path) {
    for _ in 0..32 {
        let mut points = host_mounts_below(path);
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&points[0])
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a host command and asserts it succeeded.
fn host(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        text(&out.stderr)
    );
}

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Debug, Clone)]
struct MountLine {
    dev: String,
    root: String,
    point: String,
    opts: Vec<String>,
    optional: Vec<String>,
    fstype: String,
    super_opts: Vec<String>,
}

impl MountLine {
    fn has_opt(&self, o: &str) -> bool {
        self.opts.iter().any(|x| x == o)
    }

    fn has_super(&self, o: &str) -> bool {
        self.super_opts.iter().any(|x| x == o)
    }

    fn has_optional(&self, prefix: &str) -> bool {
        self.optional.iter().any(|x| x.starts_with(prefix))
    }
}

fn parse_mountinfo(info: &str) -> Vec<MountLine> {
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if l.len() < 6 || r.len() < 3 {
                return None;
            }
            let split = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
            Some(MountLine {
                dev: l[2].to_owned(),
                root: l[3].to_owned(),
                point: l[4].to_owned(),
                opts: split(l[5]),
                optional: l[6..].iter().map(|s| s.to_string()).collect(),
                fstype: r[0].to_owned(),
                super_opts: split(r[2]),
            })
        })
        .collect()
}

/// The topmost mount on `point`.
fn mount_at<'a>(mounts: &'a [MountLine], point: &str) -> &'a MountLine {
    mounts
        .iter()
        .rev()
        .find(|m| m.point == point)
        .unwrap_or_else(|| panic!("no mount on {point} in {mounts:#?}"))
}

/// Splits output printed as `@@name` header lines followed by content.
fn sections(out: &str) -> HashMap<String, String> {
    let mut map = HashMap::new();
    let mut name = String::new();
    for line in out.lines() {
        if let Some(n) = line.strip_prefix("@@") {
            name = n.to_owned();
            map.entry(name.clone()).or_insert_with(String::new);
        } else {
            let s = map.entry(name.clone()).or_insert_with(String::new);
            s.push_str(line);
            s.push('\n');
        }
    }
    map
}

fn section<'a>(s: &'a HashMap<String, String>, name: &str) -> &'a str {
    s.get(name)
        .unwrap_or_else(|| panic!("no section {name} in {s:#?}"))
        .trim_end()
}

/// Appends an entry to `mounts`.
fn add_mount(b: &mut TestBundle, m: Value) {
    b.edit(|c| c["mounts"].as_array_mut().unwrap().push(m));
}

fn bind_mount(source: &str, dest: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": "bind", "source": source, "options": options})
}

fn tmpfs_mount(dest: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
}

/// Checks the bundle left no state and no mount on the host.
fn assert_clean(b: &TestBundle) {
    b.assert_no_state();
    assert_no_mount(&b.id);
    assert_no_process(&b.id);
}

// ---------------------------------------------------------------- 1. uts

#[test]
fn hostname_and_domainname_come_from_the_config() {
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_domain = std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap();
    let mut b = TestBundle::new("uts");
    b.edit(|c| {
        c["hostname"] = json!("hull-test-host");
        c["domainname"] = json!("hull-test-domain");
    });
    b.sh("hostname; cat /proc/sys/kernel/domainname");
    let out = b.run_ok();
    assert_eq!(out, "hull-test-host\nhull-test-domain\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_name
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/domainname").unwrap(),
        host_domain
    );
    assert_clean(&b);
}

// ---------------------------------------------------------------- 2. default mounts

#[test]
fn default_spec_mounts_are_present_with_their_flags() {
    let mut b = TestBundle::new("defmounts");
    b.sh("echo @@mountinfo; cat /proc/self/mountinfo; \
          echo @@pts; ls -A /dev/pts; \
          echo @@links; for f in /sys/fs/cgroup/*; do \
            [ -L \"$f\" ] && echo \"${f##*/} $(readlink \"$f\")\"; done; true");
    let s = sections(&b.run_ok());
    let mounts = parse_mountinfo(section(&s, "mountinfo"));

    let root = mount_at(&mounts, "/");
    assert!(root.has_opt("ro"), "/ not read-only: {root:?}");

    let proc_ = mount_at(&mounts, "/proc");
    assert_eq!(proc_.fstype, "proc");

    let dev = mount_at(&mounts, "/dev");
    assert_eq!(dev.fstype, "tmpfs");
    assert!(dev.has_opt("nosuid"), "{dev:?}");
    assert!(dev.has_super("mode=755"), "{dev:?}");
    assert!(dev.has_super("size=65536k"), "{dev:?}");

    let pts = mount_at(&mounts, "/dev/pts");
    assert_eq!(pts.fstype, "devpts");
    assert!(pts.has_opt("nosuid") && pts.has_opt("noexec"), "{pts:?}");
    assert!(pts.has_super("ptmxmode=666"), "{pts:?}");
    assert!(
        pts.has_super("mode=620") && pts.has_super("gid=5"),
        "{pts:?}"
    );
    // newinstance: a devpts of its own, not one of the host's.
    let host_info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let host_mounts = parse_mountinfo(&host_info);
    for h in host_mounts.iter().filter(|m| m.fstype == "devpts") {
        assert_ne!(h.dev, pts.dev, "container shares the host devpts {h:?}");
    }
    assert_eq!(section(&s, "pts"), "ptmx", "fresh devpts holds only ptmx");

    let shm = mount_at(&mounts, "/dev/shm");
    assert_eq!(shm.fstype, "tmpfs");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(shm.has_opt(o), "/dev/shm lacks {o}: {shm:?}");
    }
    assert!(shm.has_super("size=65536k"), "{shm:?}");

    let mq = mount_at(&mounts, "/dev/mqueue");
    assert_eq!(mq.fstype, "mqueue");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(mq.has_opt(o), "/dev/mqueue lacks {o}: {mq:?}");
    }

    let sys = mount_at(&mounts, "/sys");
    assert_eq!(sys.fstype, "sysfs");
    for o in ["ro", "nosuid", "nodev", "noexec"] {
        assert!(sys.has_opt(o), "/sys lacks {o}: {sys:?}");
    }

    let cg = mount_at(&mounts, "/sys/fs/cgroup");
    assert_eq!(cg.fstype, "tmpfs", "cgroup v1 host: a tmpfs of hierarchies");
    assert!(cg.has_opt("ro"), "{cg:?}");

    // One read-only mount per host hierarchy, plus alias links for comounts.
    let links: HashMap<&str, &str> = section(&s, "links")
        .lines()
        .filter_map(|l| l.split_once(' '))
        .collect();
    let hierarchies: Vec<&MountLine> = host_mounts
        .iter()
        .filter(|m| {
            m.point.starts_with("/sys/fs/cgroup/")
                && matches!(m.fstype.as_str(), "cgroup" | "cgroup2")
        })
        .collect();
    assert!(!hierarchies.is_empty(), "host has no cgroup hierarchies");
    for h in hierarchies {
        let inside = mount_at(&mounts, &h.point);
        assert_eq!(inside.fstype, h.fstype, "{inside:?}");
        for o in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(inside.has_opt(o), "{} lacks {o}: {inside:?}", h.point);
        }
        let name = h.point.rsplit('/').next().unwrap();
        if name.contains(',') {
            for alias in name.split(',') {
                assert_eq!(links.get(alias), Some(&name), "/sys/fs/cgroup/{alias}");
            }
        }
    }
    assert_clean(&b);
}

// ---------------------------------------------------------------- 3. mounts entries

#[test]
fn read_only_bind_of_a_host_dir() {
    let d = HostDir::new("robind-src");
    std::fs::write(d.join("data"), "hull-ro-data\n").unwrap();
    let mut b = TestBundle::new("robind");
    b.own_rootfs();
    add_mount(&mut b, bind_mount(d.str(), "/mnt/ro", &["bind", "ro"]));
    b.sh("cat /mnt/ro/data; touch /mnt/ro/new 2>&1; echo rc=$?; \
          grep ' /mnt/ro ' /proc/self/mountinfo");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "hull-ro-data", "{out}");
    assert!(lines[1].contains("Read-only file system"), "{out}");
    assert_ne!(lines[2], "rc=0", "{out}");
    let m = &parse_mountinfo(lines[3])[0];
    assert!(m.has_opt("ro"), "{m:?}");
    assert_eq!(d.entries(), ["data"]);
    assert_clean(&b);
    assert_no_mount(d.str());
}

#[test]
fn rbind_carries_submounts_and_bind_does_not() {
    let d = HostDir::new("rbind-src");
    std::fs::create_dir(d.join("sub")).unwrap();
    host(&[
        "mount",
        "-t",
        "tmpfs",
        "tmpfs",
        d.join("sub").to_str().unwrap(),
    ]);
    std::fs::write(d.join("sub/inner"), "hull-inner\n").unwrap();
    let mut b = TestBundle::new("rbind");
    b.own_rootfs();
    add_mount(&mut b, bind_mount(d.str(), "/mnt/rbind", &["rbind"]));
    add_mount(&mut b, bind_mount(d.str(), "/mnt/bind", &["bind"]));
    b.sh("echo @@rbind; cat /mnt/rbind/sub/inner; \
          echo @@bind; ls -A /mnt/bind/sub");
    let s = sections(&b.run_ok());
    assert_eq!(section(&s, "rbind"), "hull-inner");
    assert_eq!(
        section(&s, "bind"),
        "",
        "plain bind must not carry submounts"
    );
    assert_clean(&b);
    drop(d);
    assert_no_mount(&unique("rbind-src"));
}

#[test]
fn bind_of_a_single_host_file() {
    let d = HostDir::new("filebind-src");
    let file = d.join("file");
    std::fs::write(&file, "hull-file\n").unwrap();
    let mut b = TestBundle::new("filebind");
    b.own_rootfs();
    add_mount(
        &mut b,
        bind_mount(file.to_str().unwrap(), "/etc/hull-test-file", &["bind"]),
    );
    b.sh(
        "cat /etc/hull-test-file; [ -f /etc/hull-test-file ] && echo isfile; \
          echo hull-written > /etc/hull-test-file",
    );
    let out = b.run_ok();
    assert_eq!(out, "hull-file\nisfile\n");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "hull-written\n");
    assert_clean(&b);
    assert_no_mount(d.str());
}

#[test]
fn relative_bind_source_is_taken_from_the_bundle() {
    let mut b = TestBundle::new("relbind");
    b.own_rootfs();
    std::fs::create_dir(b.dir.join("hull-test-rel")).unwrap();
    std::fs::write(b.dir.join("hull-test-rel/data"), "hull-rel\n").unwrap();
    add_mount(&mut b, bind_mount("hull-test-rel", "/mnt/rel", &["bind"]));
    b.sh("cat /mnt/rel/data");
    assert_eq!(b.run_ok(), "hull-rel\n");
    assert_clean(&b);
}

#[test]
fn tmpfs_with_size_and_mode() {
    let mut b = TestBundle::new("tmpfsopts");
    b.own_rootfs();
    add_mount(
        &mut b,
        tmpfs_mount("/hull-tmpfs", &["size=1m", "mode=1750"]),
    );
    b.sh("stat -c %a /hull-tmpfs; grep ' /hull-tmpfs ' /proc/self/mountinfo");
    let out = b.run_ok();
    let (mode, line) = out.split_once('\n').unwrap();
    assert_eq!(mode, "1750");
    let m = &parse_mountinfo(line)[0];
    assert_eq!(m.fstype, "tmpfs");
    assert!(m.has_super("size=1024k"), "{m:?}");
    assert!(m.has_super("mode=1750"), "{m:?}");
    assert_clean(&b);
}

#[test]
fn noexec_mount_refuses_to_execute() {
    let mut b = TestBundle::new("noexec");
    b.own_rootfs();
    add_mount(&mut b, tmpfs_mount("/hull-noexec", &["noexec"]));
    add_mount(&mut b, tmpfs_mount("/hull-exec", &[]));
    b.sh(
        "cp /bin/busybox /hull-noexec/true; cp /bin/busybox /hull-exec/true; \
          /hull-noexec/true 2>&1; echo noexec=$?; \
          /hull-exec/true; echo exec=$?",
    );
    let out = b.run_ok();
    assert!(out.contains("Permission denied"), "{out}");
    assert!(out.contains("noexec=126\n"), "{out}");
    assert!(out.ends_with("exec=0\n"), "{out}");
    assert_clean(&b);
}

#[test]
fn nosuid_and_nodev_show_in_mountinfo() {
    let d = HostDir::new("flags-src");
    let mut b = TestBundle::new("flags");
    b.own_rootfs();
    add_mount(&mut b, tmpfs_mount("/hull-flags", &["nosuid", "nodev"]));
    add_mount(
        &mut b,
        bind_mount(
            d.str(),
            "/hull-bflags",
            &["bind", "nosuid", "nodev", "noexec"],
        ),
    );
    add_mount(&mut b, tmpfs_mount("/hull-plain", &[]));
    b.sh("cat /proc/self/mountinfo");
    let mounts = parse_mountinfo(&b.run_ok());
    let t = mount_at(&mounts, "/hull-flags");
    assert!(t.has_opt("nosuid") && t.has_opt("nodev"), "{t:?}");
    assert!(!t.has_opt("noexec"), "{t:?}");
    let bf = mount_at(&mounts, "/hull-bflags");
    for o in ["nosuid", "nodev", "noexec"] {
        assert!(bf.has_opt(o), "bind lacks {o}: {bf:?}");
    }
    let p = mount_at(&mounts, "/hull-plain");
    assert!(!p.has_opt("nosuid") && !p.has_opt("nodev"), "{p:?}");
    assert_clean(&b);
    assert_no_mount(d.str());
}

// ---------------------------------------------------------------- 4. propagation

/// Binds shared host dir D into the container on /mnt/prop with `option`.
/// Once the container runs, the host mounts a tmpfs on D/sub; the container
/// reports its mountinfo line for /mnt/prop and whether that tmpfs reached it.
fn propagation_probe(name: &str, option: &str, wait_tenths: u32) -> (MountLine, bool) {
    let d = HostDir::new(&format!("{name}-src"));
    d.make_shared();
    std::fs::create_dir(d.join("sub")).unwrap();
    let host_line = parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").unwrap())
        .into_iter()
        .find(|m| m.point == d.str())
        .unwrap();
    assert!(host_line.has_optional("shared:"), "{host_line:?}");

    let mut b = TestBundle::new(name);
    b.own_rootfs();
    add_mount(&mut b, bind_mount(d.str(), "/mnt/prop", &["rbind", option]));
    b.sh(&format!(
        "echo @@line; grep ' /mnt/prop ' /proc/self/mountinfo; \
         touch /mnt/prop/ready; i=0; \
         while [ ! -e /mnt/prop/sub/marker ] && [ $i -lt {wait_tenths} ]; do \
           sleep 0.1; i=$((i+1)); done; \
         echo @@seen; [ -e /mnt/prop/sub/marker ] && echo yes || echo no"
    ));
    let child = b
        .hull()
        .args(["run", "--bundle", b.dir.to_str().unwrap(), &b.id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !d.join("ready").exists() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready = d.join("ready").exists();
    if ready {
        host(&[
            "mount",
            "-t",
            "tmpfs",
            "tmpfs",
            d.join("sub").to_str().unwrap(),
        ]);
        std::fs::write(d.join("sub/marker"), "").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let stdout = text(&out.stdout);
    assert!(
        out.status.success() && ready,
        "run failed (ready={ready}): stdout={stdout} stderr={}",
        text(&out.stderr)
    );
    let s = sections(&stdout);
    let line = parse_mountinfo(section(&s, "line"))
        .pop()
        .unwrap_or_else(|| panic!("no /mnt/prop mount: {stdout}"));
    let seen = section(&s, "seen") == "yes";
    assert_clean(&b);
    drop(b);
    drop(d);
    assert_no_mount(&unique(&format!("{name}-src")));
    (line, seen)
}

#[test]
fn rslave_bind_receives_host_mounts() {
    let (line, seen) = propagation_probe("prop-rslave", "rslave", 100);
    assert!(line.has_optional("master:"), "{line:?}");
    assert!(!line.has_optional("shared:"), "{line:?}");
    assert!(seen, "host mount did not propagate into the rslave bind");
}

#[test]
fn rshared_bind_is_shared() {
    let (line, seen) = propagation_probe("prop-rshared", "rshared", 100);
    assert!(line.has_optional("shared:"), "{line:?}");
    assert!(seen, "host mount did not propagate into the rshared bind");
}

#[test]
fn rprivate_bind_is_private() {
    let (line, seen) = propagation_probe("prop-rprivate", "rprivate", 20);
    assert!(!line.has_optional("shared:"), "{line:?}");
    assert!(!line.has_optional("master:"), "{line:?}");
    assert!(!seen, "host mount propagated into an rprivate bind");
}

#[test]
fn rootfs_propagation_values_are_accepted() {
    for value in [
        "private",
        "rprivate",
        "slave",
        "rslave",
        "shared",
        "rshared",
        "unbindable",
        "runbindable",
    ] {
        let mut b = TestBundle::new(&format!("rootprop-{value}"));
        b.edit(|c| c["linux"]["rootfsPropagation"] = json!(value));
        b.sh("cat /etc/hostname");
        let (code, out, err) = b.run();
        assert_eq!(code, 0, "rootfsPropagation={value}: {err}");
        assert_eq!(out, "hull\n", "rootfsPropagation={value}");
        assert_clean(&b);
    }
}

/// An unbindable root (crun takes it; hull bound the rootfs from an
/// already unbindable tree and failed with EINVAL) is unbindable once the
/// container runs.
#[test]
fn an_unbindable_root_is_unbindable_in_the_container() {
    let mut b = TestBundle::new("rootprop-unbindable");
    b.edit(|c| c["linux"]["rootfsPropagation"] = json!("unbindable"));
    b.sh("awk '$5 == \"/\"' /proc/self/mountinfo");
    let out = b.run_ok();
    assert!(out.contains("unbindable"), "{out}");
    assert_clean(&b);
}

// ---------------------------------------------------------------- 5. read-only root

#[test]
fn readonly_root_rejects_writes() {
    let mut b = TestBundle::new("roroot");
    assert_eq!(b.config["root"]["readonly"], json!(true));
    b.sh("touch /x 2>&1; echo rc=$?");
    let out = b.run_ok();
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!out.contains("rc=0"), "{out}");
    assert!(!b.rootfs().join("x").exists());
    assert_clean(&b);
}

#[test]
fn writable_root_accepts_writes() {
    let mut b = TestBundle::new("rwroot");
    let rootfs = b.own_rootfs();
    assert_eq!(b.config["root"]["readonly"], json!(false));
    b.sh("touch /x; echo rc=$?");
    assert_eq!(b.run_ok(), "rc=0\n");
    assert!(rootfs.join("x").exists(), "write did not reach the rootfs");
    assert_clean(&b);
}

// ---------------------------------------------------------------- 6. symlink safety

/// The directory a symlink to host path `target` reaches inside `rootfs`.
fn in_root(rootfs: &Path, target: &Path) -> PathBuf {
    rootfs.join(target.strip_prefix("/").unwrap())
}

/// Plants `rootfs/evil -> link(target)` and mounts a tmpfs on /evil: the host
/// directory `target` must stay empty and unmounted, the tmpfs must land on
/// the symlink's target resolved inside the rootfs. With `precreate` that
/// in-root directory exists beforehand; otherwise it has to be created, as
/// runc does (SecureJoin + MkdirAll).
fn symlinked_mount_target_stays_in_root(
    name: &str,
    precreate: bool,
    link: impl FnOnce(&HostDir) -> String,
) {
    let target = HostDir::new(&format!("{name}-hosttarget"));
    let mut b = TestBundle::new(name);
    let rootfs = b.own_rootfs();
    let inside = in_root(&rootfs, &target.path);
    if precreate {
        std::fs::create_dir_all(&inside).unwrap();
    }
    std::os::unix::fs::symlink(link(&target), rootfs.join("evil")).unwrap();
    add_mount(&mut b, tmpfs_mount("/evil", &["size=1m"]));
    b.sh("stat -f -c %T /evil/; echo hull-inside > /evil/marker; cat /evil/marker");
    let (code, out, err) = b.run();
    target.assert_untouched();
    assert_eq!(code, 0, "run failed: stdout={out} stderr={err}");
    assert_eq!(out, "tmpfs\nhull-inside\n");
    assert!(inside.is_dir(), "{} missing", inside.display());
    assert!(
        !inside.join("marker").exists(),
        "tmpfs was not on the in-root dir"
    );
    assert_clean(&b);
}

#[test]
fn absolute_symlink_mount_target_stays_in_rootfs() {
    symlinked_mount_target_stays_in_root("symabs", true, |t| t.str().to_owned());
}

#[test]
fn relative_symlink_escape_stays_in_rootfs() {
    symlinked_mount_target_stays_in_root("symrel", true, |t| {
        format!("../../../../../../../..{}", t.str())
    });
}

#[test]
fn dangling_symlink_mount_target_is_created_in_rootfs() {
    symlinked_mount_target_stays_in_root("symdangling", false, |t| t.str().to_owned());
}

#[test]
fn dev_symlink_to_host_dir_gets_no_devices() {
    let target = HostDir::new("devsym-hostdev");
    let mut b = TestBundle::new("devsym");
    let rootfs = b.own_rootfs();
    std::fs::remove_dir(rootfs.join("dev")).unwrap();
    std::os::unix::fs::symlink(&target.path, rootfs.join("dev")).unwrap();
    std::fs::create_dir_all(in_root(&rootfs, &target.path)).unwrap();
    // No /dev tmpfs: the nodes go straight into the image's /dev.
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["destination"] != json!("/dev"))
    });
    b.sh("stat -c '%F %t %T' /dev/null /dev/zero; readlink /dev");
    let (code, out, err) = b.run();
    target.assert_untouched();
    assert_eq!(code, 0, "run failed: stdout={out} stderr={err}");
    assert_eq!(
        out,
        format!(
            "character special file 1 3\ncharacter special file 1 5\n{}\n",
            target.str()
        )
    );
    let nodes = in_root(&rootfs, &target.path);
    assert!(nodes.join("null").exists(), "nodes not in the rootfs");
    assert_clean(&b);
}

// ---------------------------------------------------------------- 7. /dev

#[test]
fn default_devices_and_links() {
    let mut b = TestBundle::new("devs");
    b.sh("for d in null zero full random urandom tty; do \
            echo \"$d $(stat -c '%F %t %T %a %u %g' /dev/$d)\"; done; \
          for l in ptmx fd stdin stdout stderr; do echo \"$l -> $(readlink /dev/$l)\"; done; \
          [ -d /dev/pts ] && echo pts-dir; [ -d /dev/shm ] && echo shm-dir; \
          [ -c /dev/pts/ptmx ] && echo pts-ptmx");
    let out = b.run_ok();
    let expected = "\
null character special file 1 3 666 0 0
zero character special file 1 5 666 0 0
full character special file 1 7 666 0 0
random character special file 1 8 666 0 0
urandom character special file 1 9 666 0 0
tty character special file 5 0 666 0 0
ptmx -> pts/ptmx
fd -> /proc/self/fd
stdin -> /proc/self/fd/0
stdout -> /proc/self/fd/1
stderr -> /proc/self/fd/2
pts-dir
shm-dir
pts-ptmx
";
    assert_eq!(out, expected);
    assert_clean(&b);
}

#[test]
fn a_device_path_the_config_mounts_over_keeps_the_mount() {
    // As rootless podman --privileged binds the host's nodes over /dev
    // (/dev/null among them): the mount stays. The host's /dev/zero bound
    // where linux.devices lists a full device shows which one won.
    let mut b = TestBundle::new("devbound");
    add_mount(&mut b, bind_mount("/dev/null", "/dev/null", &["rbind"]));
    add_mount(
        &mut b,
        bind_mount("/dev/zero", "/dev/hull-test-dev", &["rbind"]),
    );
    b.edit(|c| {
        c["linux"]["devices"] =
            json!([{"path": "/dev/hull-test-dev", "type": "c", "major": 1, "minor": 7}])
    });
    b.sh("stat -c '%t %T' /dev/null /dev/hull-test-dev; head -c 3 /dev/hull-test-dev | wc -c; \
          awk '$5 == \"/dev/null\" || $5 == \"/dev/hull-test-dev\" {print $5}' /proc/self/mountinfo");
    assert_eq!(b.run_ok(), "1 3\n1 5\n3\n/dev/null\n/dev/hull-test-dev\n");
    assert_clean(&b);
}

#[test]
fn linux_devices_are_created_with_mode_and_owner() {
    let mut b = TestBundle::new("lxdevs");
    b.edit(|c| {
        c["linux"]["devices"] = json!([
            {"path": "/dev/hull-test-dev", "type": "c", "major": 1, "minor": 3,
             "fileMode": 0o640, "uid": 12, "gid": 34},
            {"path": "/dev/hull-test-blk", "type": "b", "major": 7, "minor": 0,
             "fileMode": 0o600, "uid": 0, "gid": 0},
        ])
    });
    b.sh("stat -c '%F %t %T %a %u %g' /dev/hull-test-dev /dev/hull-test-blk");
    assert_eq!(
        b.run_ok(),
        "character special file 1 3 640 12 34\nblock special file 7 0 600 0 0\n"
    );
    // The fixture rootfs (shared, on the host) gains no nodes.
    assert!(!fixture().join("rootfs/dev/hull-test-dev").exists());
    assert_clean(&b);
}

// ---------------------------------------------------------------- 8. maskedPaths

#[test]
fn masked_paths_hide_files_and_dirs() {
    let mut b = TestBundle::new("masked");
    let rootfs = b.own_rootfs();
    std::fs::write(rootfs.join("etc/hull-secret"), "hull-secret-data\n").unwrap();
    std::fs::create_dir(rootfs.join("etc/hull-secret-dir")).unwrap();
    std::fs::write(rootfs.join("etc/hull-secret-dir/f"), "x").unwrap();
    b.edit(|c| {
        let m = c["linux"]["maskedPaths"].as_array_mut().unwrap();
        m.push(json!("/etc/hull-secret"));
        m.push(json!("/etc/hull-secret-dir"));
        m.push(json!("/hull-test-missing"));
    });
    let timer_list = Path::new("/proc/timer_list").exists();
    b.sh("echo @@file; cat /etc/hull-secret | wc -c; \
          echo @@dir; ls -A /etc/hull-secret-dir; \
          echo @@touch; touch /etc/hull-secret-dir/new 2>&1; echo rc=$?; \
          echo @@timer; [ -e /proc/timer_list ] && wc -c < /proc/timer_list; \
          echo @@missing; [ -e /hull-test-missing ] && echo exists || echo absent");
    let s = sections(&b.run_ok());
    assert_eq!(section(&s, "file"), "0");
    assert_eq!(section(&s, "dir"), "");
    let touch = section(&s, "touch");
    assert!(touch.contains("Read-only file system"), "{touch}");
    assert!(!touch.contains("rc=0"), "{touch}");
    if timer_list {
        assert_eq!(section(&s, "timer"), "0", "/proc/timer_list not masked");
    }
    assert_eq!(section(&s, "missing"), "absent");
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/hull-secret")).unwrap(),
        "hull-secret-data\n"
    );
    assert!(!rootfs.join("etc/hull-secret-dir/new").exists());
    assert!(!rootfs.join("hull-test-missing").exists());
    assert_clean(&b);
}

// ---------------------------------------------------------------- 9. readonlyPaths

#[test]
fn readonly_paths_reject_writes() {
    let mut b = TestBundle::new("ropaths");
    let rootfs = b.own_rootfs();
    std::fs::create_dir(rootfs.join("hull-ro-dir")).unwrap();
    std::fs::write(rootfs.join("hull-ro-dir/f"), "hull-ro\n").unwrap();
    b.edit(|c| {
        c["linux"]["readonlyPaths"]
            .as_array_mut()
            .unwrap()
            .push(json!("/hull-ro-dir"))
    });
    b.sh(
        "echo @@sys; (echo hull-x > /proc/sys/kernel/domainname) 2>&1; echo rc=$?; \
          echo @@dir; cat /hull-ro-dir/f; touch /hull-ro-dir/new 2>&1; echo rc=$?; \
          echo @@tmp; touch /tmp/ok; echo rc=$?",
    );
    let s = sections(&b.run_ok());
    let sys = section(&s, "sys");
    assert!(sys.contains("Read-only file system"), "{sys}");
    assert!(!sys.contains("rc=0"), "{sys}");
    let dir = section(&s, "dir");
    assert!(dir.starts_with("hull-ro\n"), "{dir}");
    assert!(dir.contains("Read-only file system"), "{dir}");
    assert!(!dir.contains("rc=0"), "{dir}");
    assert_eq!(section(&s, "tmp"), "rc=0");
    assert!(!rootfs.join("hull-ro-dir/new").exists());
    assert!(rootfs.join("tmp/ok").exists());
    assert_clean(&b);
}

// ---------------------------------------------------------------- 10. --no-pivot

#[test]
fn no_pivot_sees_the_rootfs_as_root() {
    let mut b = TestBundle::new("nopivot");
    // A directory only the host has, at the same path, must not be seen.
    let host_only = b.dir.join("host-only");
    std::fs::create_dir(&host_only).unwrap();
    b.sh(&format!(
        "pwd; cat /etc/hostname; [ -x /bin/busybox ] && echo busybox; \
         [ -e '{}' ] && echo host-visible; \
         echo @@mountinfo; cat /proc/self/mountinfo",
        host_only.display()
    ));
    let out = b.cmd(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.dir.to_str().unwrap(),
        &b.id,
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout} {}", text(&out.stderr));
    let s = sections(&stdout);
    assert_eq!(section(&s, ""), "/\nhull\nbusybox");
    let mounts = parse_mountinfo(section(&s, "mountinfo"));
    let root = mount_at(&mounts, "/");
    assert_eq!(Path::new(&root.root), fixture().join("rootfs"), "{root:?}");
    assert_clean(&b);
}

// ---------------------------------------------------------------- 11. process.cwd

#[test]
fn cwd_is_where_the_process_starts() {
    let mut b = TestBundle::new("cwd");
    b.edit(|c| c["process"]["cwd"] = json!("/tmp"));
    b.sh("pwd");
    assert_eq!(b.run_ok(), "/tmp\n");
    assert_clean(&b);
}

#[test]
fn missing_cwd_fails_and_names_it() {
    let mut b = TestBundle::new("cwdmissing");
    b.own_rootfs();
    b.edit(|c| c["process"]["cwd"] = json!("/hull-test-nocwd"));
    b.sh("echo should-not-run");
    let (code, out, err) = b.run();
    assert_ne!(code, 0, "stdout={out} stderr={err}");
    assert_eq!(out, "");
    assert!(err.contains("/hull-test-nocwd"), "{err}");
    assert_clean(&b);
}

// ---------------------------------------------------------------- 12. linux.sysctl

#[test]
fn sysctl_is_set_in_the_container_only() {
    let path = "/proc/sys/net/ipv4/ip_forward";
    let before = std::fs::read_to_string(path).unwrap();
    let mut b = TestBundle::new("sysctl");
    let has_netns = b.config["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["type"] == json!("network"));
    assert!(has_netns, "fixture config has no network namespace");
    b.edit(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}));
    b.sh(&format!("cat {path}"));
    assert_eq!(b.run_ok(), "1\n");
    assert_eq!(std::fs::read_to_string(path).unwrap(), before);
    assert_clean(&b);
}

#[test]
fn tmpcopyup_fills_the_tmpfs_with_the_images_files() {
    let mut b = TestBundle::new("tmpcopyup");
    let rootfs = b.own_rootfs();
    let srv = rootfs.join("srv");
    std::fs::create_dir_all(srv.join("sub")).unwrap();
    std::fs::write(srv.join("a"), "file a\n").unwrap();
    std::fs::write(srv.join("sub/b"), "file b\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", srv.join("link")).unwrap();
    std::os::unix::fs::chown(srv.join("a"), Some(1000), Some(1001)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(srv.join("a"), std::fs::Permissions::from_mode(0o604)).unwrap();
    std::fs::set_permissions(&srv, std::fs::Permissions::from_mode(0o711)).unwrap();
    add_mount(&mut b, tmpfs_mount("/srv", &["tmpcopyup", "size=1m"]));
    b.sh(
        "stat -f -c %T /srv; cat /srv/a /srv/sub/b; readlink /srv/link; \
          stat -c '%a %u:%g' /srv/a /srv; echo new >/srv/new && echo written",
    );
    assert_eq!(
        b.run_ok(),
        "tmpfs\nfile a\nfile b\n/etc/passwd\n604 1000:1001\n711 0:0\nwritten\n"
    );
    // The writes went to the tmpfs, not to the image.
    assert!(!srv.join("new").exists());
    assert_clean(&b);
}

/// A read-only `/dev` (or any read-only tmpfs) is mounted writable first and
/// made read-only last, as runc does: the container starts with its device
/// nodes and `/dev/pts`, and the mounts are read-only inside it.
#[test]
fn a_read_only_dev_is_read_only_once_populated() {
    let mut b = TestBundle::new("ro-dev");
    b.edit(|c| {
        for m in c["mounts"].as_array_mut().unwrap() {
            if m["destination"] == "/dev" {
                m["options"].as_array_mut().unwrap().push(json!("ro"));
            }
        }
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "ro"]
        }));
    });
    b.sh("test -c /dev/null && test -c /dev/pts/ptmx && echo nodes; \
          for d in /dev /scratch; do touch $d/x 2>/dev/null && echo $d-writable; done; echo done");
    let out = b.run_ok();
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["nodes", "done"],
        "{out}"
    );
    assert_clean(&b);
}

/// Recursive attributes (`rro`, `rnoexec`, ...) reach every mount of an
/// rbind, where `ro` only makes its top read-only; an option hull does not
/// know on a bind is an error, not silently dropped.
#[test]
fn recursive_mount_attributes_reach_submounts() {
    let d = HostDir::new("rro-src");
    std::fs::create_dir(d.join("sub")).unwrap();
    host(&[
        "mount",
        "-t",
        "tmpfs",
        "tmpfs",
        d.join("sub").to_str().unwrap(),
    ]);
    let mut b = TestBundle::new("rro");
    b.own_rootfs();
    add_mount(&mut b, bind_mount(d.str(), "/mnt/ro", &["rbind", "ro"]));
    add_mount(
        &mut b,
        bind_mount(d.str(), "/mnt/rro", &["rbind", "rro", "rnosuid"]),
    );
    b.sh("for p in /mnt/ro /mnt/ro/sub /mnt/rro /mnt/rro/sub; do \
            touch $p/x 2>/dev/null && echo $p-writable; done; \
          awk '$5 == \"/mnt/rro/sub\" {print $6}' /proc/self/mountinfo");
    let out = b.run_ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "/mnt/ro/sub-writable", "{out}");
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].split(',').any(|o| o == "ro"), "{out}");
    assert!(lines[1].split(',').any(|o| o == "nosuid"), "{out}");
    assert_clean(&b);

    let mut b = TestBundle::new("rro-unknown");
    add_mount(&mut b, bind_mount(d.str(), "/mnt/x", &["rbind", "rfoo"]));
    b.sh("true");
    let (code, _, err) = b.run();
    assert_ne!(code, 0);
    assert!(err.contains("rfoo"), "{err}");
    assert_clean(&b);
    drop(d);
    assert_no_mount(&unique("rro-src"));
}
