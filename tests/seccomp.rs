//! `linux.seccomp` end to end: podman's default profile converted the way
//! Docker/podman do it, ERRNO/KILL_PROCESS/LOG/NOTIFY actions seen from inside
//! real containers, argument conditions, architecture checks and ENOSYS for
//! unknown syscalls in forked children, malformed profiles, and the cache of
//! compiled filters in the state root.

use std::fs::{File, OpenOptions};
use std::io::{IoSliceMut, Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hull_tests::*;
use libcontainer::oci_spec::runtime::LinuxSeccomp;
use libcontainer::seccomp::{self, Filter};
use nix::sys::signal::Signal;
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{fork, ForkResult};
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

/// Puts `profile` into the bundle's `linux.seccomp`.
fn set_profile(b: &mut TestBundle, profile: Value) {
    b.edit(|c| c["linux"]["seccomp"] = profile);
}

/// A writable tmpfs on the container's /tmp (the shared rootfs is read-only).
fn tmpfs_on_tmp(b: &mut TestBundle) {
    b.edit(|c| {
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/tmp",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "mode=1777"]
        }))
    });
}

/// The running kernel's (major, minor).
fn kernel_version() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    parse_version(&release).unwrap_or_else(|| panic!("kernel release {release:?}"))
}

/// "6.18.44-foo" → (6, 18).
fn parse_version(s: &str) -> Option<(u32, u32)> {
    let mut parts = s.trim().split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

/// Docker's/podman's profile format → an OCI `linux.seccomp` for x86_64
/// (moby profiles/seccomp `setupSeccomp`): the architectures of the
/// SCMP_ARCH_X86_64 archMap entry, and the syscalls entries whose
/// `includes` match and whose `excludes` do not, for a container with the
/// `bounding` capability set on kernel `kernel`.
fn docker_to_oci(docker: &Value, bounding: &[String], kernel: (u32, u32)) -> Value {
    // Go's runtime.GOARCH on x86_64 is "amd64"; accept the kernel's name too.
    const ARCH_NAMES: [&str; 2] = ["amd64", "x86_64"];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let has_cap = |c: &String| bounding.contains(c);
    let min_kernel = |v: &Value| -> Option<(u32, u32)> {
        v.get("minKernel")
            .and_then(Value::as_str)
            .map(|s| parse_version(s).unwrap_or_else(|| panic!("minKernel {s:?}")))
    };

    let entry = docker["archMap"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["architecture"] == "SCMP_ARCH_X86_64")
        .expect("archMap has SCMP_ARCH_X86_64");
    let mut architectures = vec![Value::from("SCMP_ARCH_X86_64")];
    architectures.extend(
        strings(&entry["subArchitectures"])
            .into_iter()
            .map(Value::from),
    );

    let mut syscalls = Vec::new();
    for call in docker["syscalls"].as_array().unwrap() {
        let none = json!({});
        let ex = call.get("excludes").unwrap_or(&none);
        let inc = call.get("includes").unwrap_or(&none);
        // Excluded when any listed arch or capability applies, or the
        // kernel is at least minKernel.
        if strings(&ex["arches"])
            .iter()
            .any(|a| ARCH_NAMES.contains(&a.as_str()))
            || strings(&ex["caps"]).iter().any(has_cap)
            || min_kernel(ex).is_some_and(|m| kernel >= m)
        {
            continue;
        }
        // Included only when the arch is listed (or none is), every listed
        // capability is in the bounding set, and the kernel is new enough.
        let arches = strings(&inc["arches"]);
        if !arches.is_empty() && !arches.iter().any(|a| ARCH_NAMES.contains(&a.as_str())) {
            continue;
        }
        if !strings(&inc["caps"]).iter().all(has_cap) {
            continue;
        }
        if min_kernel(inc).is_some_and(|m| kernel < m) {
            continue;
        }
        // Only the OCI fields (no includes/excludes/comment, nor the
        // non-OCI `errno` name).
        let mut out = serde_json::Map::new();
        for key in ["names", "action", "errnoRet", "args"] {
            if let Some(v) = call.get(key).filter(|v| !v.is_null()) {
                out.insert(key.into(), v.clone());
            }
        }
        syscalls.push(Value::Object(out));
    }

    let mut oci = json!({
        "defaultAction": docker["defaultAction"],
        "architectures": architectures,
        "syscalls": syscalls,
    });
    for key in ["defaultErrnoRet", "flags"] {
        if let Some(v) = docker.get(key).filter(|v| !v.is_null()) {
            oci[key] = v.clone();
        }
    }
    oci
}

/// Podman's default profile (golang-github-containers-common).
fn podman_profile() -> Value {
    require("seccomp-profile");
    let path = "/usr/share/containers/seccomp.json";
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// The rules of `profile` whose names include `name`, as (action, has args).
fn rules_for(profile: &Value, name: &str) -> Vec<(String, bool)> {
    profile["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["names"].as_array().unwrap().iter().any(|n| n == name))
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_owned(),
                s.get("args")
                    .is_some_and(|a| !a.as_array().unwrap().is_empty()),
            )
        })
        .collect()
}

/// A profile for the library-level tests.
fn compiled(profile: Value) -> Filter {
    let profile: LinuxSeccomp = serde_json::from_value(profile).unwrap();
    seccomp::prepare(&profile, None).expect("compile profile")
}

/// Exit codes of a filtered child that could not set itself up.
const CHILD_NO_NNP: i32 = 120;
const CHILD_NO_FILTER: i32 = 121;

/// Forks a child that turns off core dumps, sets no_new_privs, installs
/// `filter` and exits with what `body` returns; returns its wait status.
/// `body` runs under the filter in a forked copy of a multi-threaded
/// process: it must not allocate or take locks, only make raw syscalls.
fn in_filtered_child(filter: &Filter, body: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child makes only raw syscalls (no allocation, no locks)
    // and leaves with _exit.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => unsafe {
            let no_core = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::setrlimit(libc::RLIMIT_CORE, &no_core);
            libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(CHILD_NO_NNP);
            }
            if seccomp::install(filter).is_err() {
                libc::_exit(CHILD_NO_FILTER);
            }
            libc::_exit(body())
        },
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

/// `errno` after a raw syscall.
fn errno() -> i32 {
    // SAFETY: reads this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// The kernel log from now on: /dev/kmsg opened non-blocking at its end.
struct Kmsg(File);

impl Kmsg {
    fn open_at_end() -> Self {
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .expect("open /dev/kmsg");
        f.seek(SeekFrom::End(0)).expect("seek /dev/kmsg to its end");
        Self(f)
    }

    /// The messages logged since the last call (one record per read).
    fn new_messages(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16384];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let record = String::from_utf8_lossy(&buf[..n]);
                    // "prio,seq,usec,flags;message\n continuation lines"
                    let msg = record.split_once(';').map_or(&*record, |(_, m)| m);
                    out.push(msg.lines().next().unwrap_or("").to_owned());
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // EPIPE: records were overwritten under us; read on.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(e) => panic!("read /dev/kmsg: {e}"),
            }
        }
        out
    }
}

/// Seccomp audit records (`type=1326`) of `syscall` with the LOG action.
fn logged(messages: &[String], syscall: u32) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.contains("type=1326"))
        .filter(|m| m.contains(&format!(" syscall={syscall} ")))
        .filter(|m| m.contains("code=0x7ffc0000"))
        .cloned()
        .collect()
}

/// Removes a path when dropped.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ------------------------------------------------------- podman's profile

#[test]
fn podman_default_profile_runs_busybox_and_refuses_what_it_lacks() {
    let mut b = TestBundle::new("seccomp-podman");
    let bounding: Vec<String> = b.config["process"]["capabilities"]["bounding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let docker = podman_profile();
    let profile = docker_to_oci(&docker, &bounding, kernel_version());

    // The conversion itself, on entries whose fate is known.
    assert_eq!(
        profile["architectures"],
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    assert_eq!(profile["defaultAction"], docker["defaultAction"]);
    assert_eq!(profile["defaultErrnoRet"], json!(libc::ENOSYS));
    for s in profile["syscalls"].as_array().unwrap() {
        let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert!(
            keys.iter()
                .all(|k| ["names", "action", "errnoRet", "args"].contains(&k.as_str())),
            "non-OCI field left in {s}"
        );
    }
    // arch_prctl: includes arches amd64.
    assert_eq!(
        rules_for(&profile, "arch_prctl"),
        [("SCMP_ACT_ALLOW".into(), false)]
    );
    // s390 only: dropped.
    assert!(rules_for(&profile, "s390_runtime_instr").is_empty());
    // CAP_SYS_ADMIN is not in the bounding set: only the ERRNO entry is kept.
    assert_eq!(
        rules_for(&profile, "bpf"),
        [("SCMP_ACT_ERRNO".into(), false)]
    );
    // CAP_AUDIT_WRITE is: socket is allowed unconditionally, and the
    // AF_NETLINK/NETLINK_AUDIT rules for containers without it are gone.
    assert_eq!(
        rules_for(&profile, "socket"),
        [("SCMP_ACT_ALLOW".into(), false)]
    );
    assert_eq!(
        rules_for(&profile, "ioprio_get"),
        [("SCMP_ACT_ALLOW".into(), false)]
    );

    // Busybox works under the whole profile, ioprio_get included.
    set_profile(&mut b, profile.clone());
    b.sh("ls / >/dev/null && echo ok && ionice -p 1");
    let out = b.run_ok();
    assert_eq!(out.lines().next(), Some("ok"), "output: {out}");
    assert!(out.contains("prio"), "ionice printed nothing: {out}");

    // Without ioprio_get in any allow entry, the default action answers it:
    // ERRNO(defaultErrnoRet = ENOSYS).
    let mut without = profile;
    let calls = without["syscalls"].as_array_mut().unwrap();
    for s in calls.iter_mut() {
        if s["action"] == "SCMP_ACT_ALLOW" {
            s["names"]
                .as_array_mut()
                .unwrap()
                .retain(|n| n != "ioprio_get");
        }
    }
    calls.retain(|s| !s["names"].as_array().unwrap().is_empty());
    assert!(rules_for(&without, "ioprio_get").is_empty());
    set_profile(&mut b, without);
    b.sh("echo before; ionice -p 1");
    let (code, out, err) = b.run();
    assert_ne!(code, 0, "ionice succeeded: stdout={out} stderr={err}");
    assert_eq!(out.trim(), "before", "stderr={err}");
    assert!(
        err.contains("Function not implemented"),
        "expected ENOSYS from ionice, got code {code}: stderr={err}"
    );

    // Without linux.seccomp the same command works.
    b.edit(|c| {
        c["linux"].as_object_mut().unwrap().remove("seccomp");
    });
    let out = b.run_ok();
    assert!(out.contains("prio"), "ionice without seccomp: {out}");
}

// ------------------------------------------------------------------ ERRNO

#[test]
fn errno_ret_is_the_errno_the_container_sees() {
    let mut b = TestBundle::new("seccomp-errno");
    tmpfs_on_tmp(&mut b);
    set_profile(
        &mut b,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENXIO}
            ]
        }),
    );
    b.sh("mkdir /tmp/x && echo created; touch /tmp/file && ls /tmp && echo ok");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    assert!(
        err.contains("mkdir: can't create directory '/tmp/x': No such device or address"),
        "stderr={err}"
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["file", "ok"],
        "stderr={err}"
    );
}

// ------------------------------------------------------ argument checks

#[test]
fn masked_eq_on_personality_denies_one_flag_and_allows_another() {
    const PER_LINUX32: u64 = 0x0008;
    let mut b = TestBundle::new("seccomp-masked");
    set_profile(
        &mut b,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": libc::EPERM,
                "args": [{"index": 0, "op": "SCMP_CMP_MASKED_EQ", "value": PER_LINUX32, "valueTwo": PER_LINUX32}]
            }]
        }),
    );
    // linux64: personality(PER_LINUX = 0), (0 & 8) != 8 → allowed.
    b.sh("linux64 true; echo linux64=$?");
    let (code, out, err) = b.run();
    assert_eq!((code, out.trim()), (0, "linux64=0"), "stderr={err}");
    assert!(err.is_empty(), "stderr={err}");
    // linux32: personality(PER_LINUX32 = 8), (8 & 8) == 8 → EPERM.
    b.sh("linux32 true; echo linux32=$?");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    assert_ne!(out.trim(), "linux32=0", "linux32 was allowed: stderr={err}");
    assert!(out.trim().starts_with("linux32="), "stdout={out}");
    assert!(err.contains("Operation not permitted"), "stderr={err}");
}

// ---------------------------------------------------------- architectures

#[test]
fn an_x32_syscall_is_killed_unless_the_profile_lists_x32() {
    const X32_GETPID: libc::c_long = 39 | 0x4000_0000;
    let x86_64_only = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"]
    }));
    let with_x32 = compiled(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X32"]
    }));

    // Control: native calls pass the x86_64-only filter.
    let status = in_filtered_child(&x86_64_only, || {
        // SAFETY: getpid has no arguments.
        let pid = unsafe { libc::syscall(libc::SYS_getpid) };
        i32::from(pid <= 0)
    });
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "native getpid under the x86_64-only filter: {status:?}"
    );

    // The x32 call hits the missing x32 section: BAD_ARCH, KILL_PROCESS.
    let status = in_filtered_child(&x86_64_only, || {
        // SAFETY: x32 getpid has no arguments.
        unsafe { libc::syscall(X32_GETPID) };
        0
    });
    assert!(
        matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
        "x32 getpid under an x86_64-only profile: expected SIGSYS, got {status:?}"
    );

    // Listed: the filter lets it through to the kernel, which answers it
    // (ENOSYS without CONFIG_X86_X32_ABI, else a pid).
    let status = in_filtered_child(&with_x32, || {
        // SAFETY: x32 getpid has no arguments.
        let r = unsafe { libc::syscall(X32_GETPID) };
        if r > 0 {
            0
        } else if errno() == libc::ENOSYS {
            1
        } else {
            2
        }
    });
    assert!(
        matches!(status, WaitStatus::Exited(_, 0 | 1)),
        "x32 getpid with SCMP_ARCH_X32 listed: {status:?}"
    );
}

// ---------------------------------------------------------- KILL_PROCESS

#[test]
fn kill_process_kills_the_container_with_sigsys() {
    let mut b = TestBundle::new("seccomp-kill");
    set_profile(
        &mut b,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]
        }),
    );
    b.sh("mkdir /tmp/y");
    let (code, out, err) = b.run();
    assert_eq!(
        code,
        128 + Signal::SIGSYS as i32,
        "stdout={out} stderr={err}"
    );
    assert_no_process(&b.id);
}

// -------------------------------------------------------------------- LOG

#[test]
fn log_allows_the_call_and_logs_it() {
    const SYS_UNAME: u32 = 63;
    let mut b = TestBundle::new("seccomp-log");
    let profile = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_LOG"}]
    });
    set_profile(&mut b, profile.clone());
    b.args(&["uname"]);

    let mut kmsg = Kmsg::open_at_end();
    let out = b.run_ok();
    assert_eq!(out.trim(), "Linux");

    // Does this kernel log SCMP_ACT_LOG at all? The same filter in a child
    // of ours tells. (On the VM these tests were written on, audit is
    // initialized "disabled" with no auditd, and the kernel still prints
    // type=1326 records to its log.) Without auditd the records are
    // printed by kauditd, asynchronously but in order: once our child's
    // shows up, the container's, made earlier, is there too.
    let filter = compiled(profile);
    let status = in_filtered_child(&filter, || {
        // SAFETY: an all-zero utsname is valid; uname fills it.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: `uts` is a live, writable utsname.
        i32::from(unsafe { libc::syscall(libc::SYS_uname, &mut uts) } != 0)
    });
    let WaitStatus::Exited(child, 0) = status else {
        panic!("uname under the LOG filter: {status:?}");
    };
    let ours = format!(" pid={child} ");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut messages = Vec::new();
    loop {
        messages.extend(kmsg.new_messages());
        if logged(&messages, SYS_UNAME)
            .iter()
            .any(|m| m.contains(&ours))
        {
            break;
        }
        if Instant::now() > deadline {
            eprintln!(
                "note: the kernel logs no SCMP_ACT_LOG records on this machine; \
                 only the successful run was checked"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let hits = logged(&messages, SYS_UNAME);
    assert!(
        hits.iter()
            .any(|m| m.contains("comm=\"uname\"") && m.contains("exe=\"/bin/busybox\"")),
        "no type=1326 syscall=63 record of the container's uname: {messages:#?}"
    );
}

// ----------------------------------------------------------------- NOTIFY

/// `struct seccomp_data`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct SeccompData {
    nr: i32,
    arch: u32,
    instruction_pointer: u64,
    args: [u64; 6],
}

/// `struct seccomp_notif`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct SeccompNotif {
    id: u64,
    pid: u32,
    flags: u32,
    data: SeccompData,
}

/// `struct seccomp_notif_resp`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct SeccompNotifResp {
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
}

/// `_IOC(dir, '!', nr, size)` (asm-generic/ioctl.h, SECCOMP_IOC_MAGIC).
const fn seccomp_ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | ((b'!' as u64) << 8) | nr
}
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;
/// `_IOWR('!', 0, struct seccomp_notif)`.
const SECCOMP_IOCTL_NOTIF_RECV: u64 =
    seccomp_ioc(IOC_READ | IOC_WRITE, 0, std::mem::size_of::<SeccompNotif>());
/// `_IOWR('!', 1, struct seccomp_notif_resp)`.
const SECCOMP_IOCTL_NOTIF_SEND: u64 = seccomp_ioc(
    IOC_READ | IOC_WRITE,
    1,
    std::mem::size_of::<SeccompNotifResp>(),
);
/// `_IOW('!', 2, __u64)`.
const SECCOMP_IOCTL_NOTIF_ID_VALID: u64 = seccomp_ioc(IOC_WRITE, 2, 8);
const _: () = {
    assert!(std::mem::size_of::<SeccompData>() == 64);
    assert!(std::mem::size_of::<SeccompNotif>() == 80);
    assert!(std::mem::size_of::<SeccompNotifResp>() == 24);
    assert!(SECCOMP_IOCTL_NOTIF_RECV == 0xc050_2100);
    assert!(SECCOMP_IOCTL_NOTIF_SEND == 0xc018_2101);
    assert!(SECCOMP_IOCTL_NOTIF_ID_VALID == 0x4008_2102);
};

/// What the agent saw.
#[derive(Debug)]
struct AgentReport {
    message: Value,
    notif: SeccompNotif,
    path: String,
}

/// Reads a NUL-terminated string at `addr` in `pid`'s memory.
fn read_c_string(pid: u32, addr: u64) -> Result<String, String> {
    use std::os::unix::fs::FileExt;
    let mem = File::open(format!("/proc/{pid}/mem")).map_err(|e| format!("open mem: {e}"))?;
    let mut bytes = Vec::new();
    let mut at = addr;
    while bytes.len() < 4096 {
        // Up to the page end, so no read crosses into an unmapped page.
        let mut chunk = vec![0u8; (4096 - (at % 4096)) as usize];
        let n = mem
            .read_at(&mut chunk, at)
            .map_err(|e| format!("read mem at {at:#x}: {e}"))?;
        if n == 0 {
            return Err(format!("nothing readable at {at:#x}"));
        }
        if let Some(end) = chunk[..n].iter().position(|&c| c == 0) {
            bytes.extend_from_slice(&chunk[..end]);
            return Ok(String::from_utf8_lossy(&bytes).into_owned());
        }
        bytes.extend_from_slice(&chunk[..n]);
        at += n as u64;
    }
    Err("path longer than 4096 bytes".into())
}

/// Waits (up to 20s) for `fd` to become readable.
fn poll_in(fd: RawFd, what: &str) -> Result<(), String> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, 20_000) };
    match r {
        1 if pfd.revents & libc::POLLIN != 0 => Ok(()),
        0 => Err(format!("timed out waiting for {what}")),
        _ => Err(format!(
            "poll for {what}: {r} revents={:#x} {}",
            pfd.revents,
            std::io::Error::last_os_error()
        )),
    }
}

/// The seccomp agent's side of one hand-off: accepts hull's connection and
/// takes its message and listener fd.
fn receive(listener: &UnixListener) -> Result<(Value, OwnedFd), String> {
    poll_in(listener.as_raw_fd(), "hull to connect")?;
    let (stream, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    poll_in(stream.as_raw_fd(), "hull's message")?;
    let mut buf = vec![0u8; 65536];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| format!("recvmsg: {e}"))?;
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().map_err(|e| e.to_string())? {
        if let ControlMessageOwned::ScmRights(received) = cmsg {
            // SAFETY: just received; nobody else owns them.
            fds.extend(
                received
                    .into_iter()
                    .map(|f| unsafe { OwnedFd::from_raw_fd(f) }),
            );
        }
    }
    let len = msg.bytes;
    let message: Value = serde_json::from_slice(&buf[..len])
        .map_err(|e| format!("message {:?}: {e}", String::from_utf8_lossy(&buf[..len])))?;
    let [fd] = <[OwnedFd; 1]>::try_from(fds)
        .map_err(|f| format!("expected one fd, got {}: {message}", f.len()))?;
    Ok((message, fd))
}

/// The seccomp agent: takes hull's message and listener fd, then answers
/// one mkdir/mkdirat by creating the directory in `rootfs` itself.
fn agent(listener: UnixListener, rootfs: PathBuf) -> Result<AgentReport, String> {
    let (message, fd) = receive(&listener)?;
    let (notif, path) = answer_mkdir(&fd, &rootfs)?;
    Ok(AgentReport {
        message,
        notif,
        path,
    })
}

/// Answers one notified mkdir/mkdirat on `fd` by making the directory in
/// `rootfs`; returns the notification and the path.
fn answer_mkdir(fd: &OwnedFd, rootfs: &Path) -> Result<(SeccompNotif, String), String> {
    poll_in(fd.as_raw_fd(), "a notification")?;
    let mut notif = SeccompNotif::default();
    // SAFETY: `notif` is a zeroed seccomp_notif, as NOTIF_RECV requires.
    if unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_RECV as _, &mut notif) } != 0 {
        return Err(format!("NOTIF_RECV: {}", std::io::Error::last_os_error()));
    }
    let ptr = match notif.data.nr as libc::c_long {
        libc::SYS_mkdir => notif.data.args[0],
        libc::SYS_mkdirat => notif.data.args[1],
        nr => return Err(format!("notified of syscall {nr}, not mkdir: {notif:?}")),
    };
    let path = read_c_string(notif.pid, ptr)?;
    // The caller may have died meanwhile; then its memory was not its.
    // SAFETY: passes a live u64.
    if unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_ID_VALID as _, &notif.id) } != 0 {
        return Err(format!(
            "NOTIF_ID_VALID: {}",
            std::io::Error::last_os_error()
        ));
    }
    let inside = Path::new(&path)
        .strip_prefix("/")
        .map_err(|_| format!("relative path {path:?}"))?;
    std::fs::create_dir(rootfs.join(inside)).map_err(|e| format!("mkdir {path}: {e}"))?;
    let mut resp = SeccompNotifResp {
        id: notif.id,
        val: 0,
        error: 0,
        flags: 0,
    };
    // SAFETY: a live seccomp_notif_resp.
    if unsafe { libc::ioctl(fd.as_raw_fd(), SECCOMP_IOCTL_NOTIF_SEND as _, &mut resp) } != 0 {
        return Err(format!("NOTIF_SEND: {}", std::io::Error::last_os_error()));
    }
    Ok((notif, path))
}

/// The agent's listening socket `$TMPDIR/<unique name>.sock` (non-blocking),
/// removed when the guard drops.
fn agent_socket(name: &str) -> (PathBuf, UnixListener, RemoveOnDrop) {
    let socket = std::env::temp_dir().join(format!("{}.sock", unique(name)));
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).expect("bind the agent socket");
    listener.set_nonblocking(true).unwrap();
    (socket.clone(), listener, RemoveOnDrop(socket))
}

#[test]
fn notify_hands_the_listener_to_the_agent_which_answers_for_the_container() {
    let mut b = TestBundle::new("seccomp-notify");
    let rootfs = b.own_rootfs();
    let (socket, listener, _socket_guard) = agent_socket("seccomp-agent");
    set_profile(
        &mut b,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "listenerPath": socket.to_str().unwrap(),
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "listenerMetadata": "hull-test-meta",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    b.sh("mkdir /tmp/notified && echo made && ls -d /tmp/notified");

    let agent_rootfs = rootfs.clone();
    let agent = std::thread::spawn(move || agent(listener, agent_rootfs));

    b.detached(&["run", "-d"]);

    let report = agent.join().expect("agent thread").expect("agent");
    let m = &report.message;
    assert_eq!(m["fds"], json!(["seccompFd"]), "{m}");
    assert_eq!(m["metadata"], "hull-test-meta", "{m}");
    assert_eq!(m["state"]["id"], b.id.as_str(), "{m}");
    assert!(m["pid"].as_i64().is_some_and(|p| p > 0), "{m}");
    assert_eq!(m["state"]["pid"], m["pid"], "{m}");
    assert!(report.notif.pid > 0, "{:?}", report.notif);
    assert_eq!(report.path, "/tmp/notified");

    wait_for(
        || format!("container did not stop; log: {}", b.log()),
        || b.state()["status"] == "stopped",
    );
    assert_eq!(
        b.log().lines().collect::<Vec<_>>(),
        ["made", "/tmp/notified"],
        "container output"
    );
    assert!(rootfs.join("tmp/notified").is_dir());
    let out = b.cmd(&["delete", &b.id]);
    assert!(out.status.success(), "delete: {}", text(&out.stderr));
    assert_no_process(&b.id);
}

#[test]
fn notify_hands_an_exec_d_process_s_listener_to_the_agent_too() {
    let mut b = TestBundle::new("seccomp-notify-exec");
    let rootfs = b.own_rootfs();
    let (socket, listener, _socket_guard) = agent_socket("seccomp-agent-exec");
    set_profile(
        &mut b,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": socket.to_str().unwrap(),
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        }),
    );
    // The filter goes last with no_new_privs, after `start`: the agent
    // still gets the init's listener, then the exec'd process's.
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(true));
    b.sh("sleep 60");
    let agent_rootfs = rootfs.clone();
    let agent = std::thread::spawn(move || -> Result<_, String> {
        let (init_msg, _init_fd) = receive(&listener)?;
        let (exec_msg, exec_fd) = receive(&listener)?;
        let (notif, path) = answer_mkdir(&exec_fd, &agent_rootfs)?;
        Ok((init_msg, exec_msg, notif, path))
    });
    b.detached(&["run", "-d"]);
    let out = Out::from(b.cmd(&["exec", &b.id, "sh", "-c", "mkdir /tmp/by-exec && echo made"]));
    assert_eq!(out.ok().trim(), "made");
    let (init_msg, exec_msg, notif, path) = agent.join().expect("agent thread").expect("agent");
    let init_pid = b.init_pid();
    assert_eq!(init_msg["state"]["status"], "creating", "{init_msg}");
    assert_eq!(init_msg["pid"], json!(init_pid), "{init_msg}");
    assert_eq!(exec_msg["state"]["status"], "running", "{exec_msg}");
    assert_eq!(exec_msg["state"]["id"], b.id.as_str(), "{exec_msg}");
    assert_eq!(exec_msg["state"]["pid"], json!(init_pid), "{exec_msg}");
    let exec_pid = exec_msg["pid"].as_i64().expect("the exec'd pid");
    assert!(exec_pid > 0 && exec_pid != init_pid as i64, "{exec_msg}");
    assert!(notif.pid > 0, "{notif:?}");
    assert_eq!(path, "/tmp/by-exec");
    assert!(rootfs.join("tmp/by-exec").is_dir());
    b.delete_and_check(true);
}

// ------------------------------------------------------ malformed profiles

#[test]
fn malformed_profiles_are_rejected_before_any_process_exists() {
    let mkdir = |action: &str| json!([{"names": ["mkdir"], "action": action}]);
    let cases = [
        (
            "bogus-action",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": mkdir("SCMP_ACT_BOGUS")}),
            &["SCMP_ACT_BOGUS"][..],
        ),
        (
            "bad-op",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
                "names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]
            }]}),
            &["SCMP_CMP_XX"],
        ),
        (
            "arg-index",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{
                "names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]
            }]}),
            &["index 6"],
        ),
        (
            "notify-default",
            json!({"defaultAction": "SCMP_ACT_NOTIFY",
                   "listenerPath": "/tmp/hull-test-no-agent.sock"}),
            &["SCMP_ACT_NOTIFY", "default action"],
        ),
        (
            "notify-write",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "listenerPath": "/tmp/hull-test-no-agent.sock",
                   "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}]}),
            &["SCMP_ACT_NOTIFY", "write"],
        ),
        (
            "notify-sendmsg",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "listenerPath": "/tmp/hull-test-no-agent.sock",
                   "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
            &["SCMP_ACT_NOTIFY", "sendmsg"],
        ),
        (
            "notify-no-listener",
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": mkdir("SCMP_ACT_NOTIFY")}),
            &["SCMP_ACT_NOTIFY", "listenerPath"],
        ),
    ];
    for (name, profile, expected) in cases {
        let mut b = TestBundle::new(&format!("seccomp-bad-{name}"));
        set_profile(&mut b, profile);
        b.sh("echo ran");
        let (code, out, err) = b.run();
        assert_ne!(code, 0, "{name}: accepted: stdout={out} stderr={err}");
        assert!(!out.contains("ran"), "{name}: the container ran: {out}");
        assert!(
            expected.iter().all(|e| err.contains(e)),
            "{name}: error does not mention {expected:?}: {err}"
        );
        b.assert_no_state();
        assert_no_process(&b.id);
    }
}

// ------------------------------------------------------------------ cache

/// The `.bpf` files of the state root's seccomp cache, with their inode
/// and mtime; asserts nothing else (no temporary file) is there.
fn cache_files(root: &Path) -> Vec<(String, u64, i64, i64)> {
    let dir = root.join(".cache/seccomp");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(name.ends_with(".bpf"), "stray file in the cache: {name}");
            let m = e.metadata().unwrap();
            (name, m.ino(), m.mtime(), m.mtime_nsec())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn compiled_filters_are_cached_per_profile_in_the_state_root() {
    let profile = |errno: i32| {
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno}]
        })
    };
    let mut first = TestBundle::new("seccomp-cache-1");
    set_profile(&mut first, profile(libc::ENXIO));
    first.sh("mkdir /x 2>&1; echo done");
    let out = first.run_ok();
    assert!(out.contains("No such device or address"), "{out}");
    let after_first = cache_files(&first.root);
    assert_eq!(after_first.len(), 1, "{after_first:?}");

    // The same profile in another container of the same state root.
    let mut second = TestBundle::new("seccomp-cache-2");
    second.root = first.root.clone();
    set_profile(&mut second, profile(libc::ENXIO));
    second.sh("mkdir /x 2>&1; echo done");
    let out = second.run_ok();
    assert!(out.contains("No such device or address"), "{out}");
    assert_eq!(
        cache_files(&first.root),
        after_first,
        "cache entry rewritten"
    );

    // A different profile adds a second file.
    let mut third = TestBundle::new("seccomp-cache-3");
    third.root = first.root.clone();
    set_profile(&mut third, profile(libc::ENOTTY));
    third.sh("mkdir /x 2>&1; echo done");
    let out = third.run_ok();
    assert!(out.contains("Inappropriate ioctl for device"), "{out}");
    let after_third = cache_files(&first.root);
    assert_eq!(after_third.len(), 2, "{after_third:?}");
    assert!(after_third.contains(&after_first[0]), "{after_third:?}");
}

// -------------------------------------------------------------- ENOSYS

#[test]
fn syscalls_above_the_profile_get_enosys_and_the_others_the_default() {
    let filter = compiled(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{
            "names": ["write", "exit", "exit_group", "getpid"],
            "action": "SCMP_ACT_ALLOW"
        }]
    }));
    // The profile's highest number is exit_group = 231. Every probe is
    // harmless if it did reach the kernel (null or bad arguments).
    const PROBES: [(&str, libc::c_long); 5] = [
        ("getpid (39, allowed)", libc::SYS_getpid),
        ("mkdir (83, not listed)", libc::SYS_mkdir),
        (
            "clock_nanosleep (230, not listed)",
            libc::SYS_clock_nanosleep,
        ),
        ("epoll_wait (232)", libc::SYS_epoll_wait),
        ("clone3 (435)", libc::SYS_clone3),
    ];
    let mut pipe = [0; 2];
    // SAFETY: a live two-int array.
    assert_eq!(
        unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) },
        0
    );
    // SAFETY: both ends were just created and are ours.
    let (rx, tx) = unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
    let tx_raw = tx.as_raw_fd();
    let status = in_filtered_child(&filter, || {
        // (return value, errno) per probe.
        let mut results = [[0i64; 2]; PROBES.len()];
        for (i, (_, nr)) in PROBES.iter().enumerate() {
            // SAFETY: null pointers and a bad fd: every call fails harmlessly.
            let r = unsafe { libc::syscall(*nr, -1 as libc::c_long, 0, 0, 0) };
            results[i] = [r as i64, i64::from(errno())];
        }
        let size = std::mem::size_of_val(&results);
        // SAFETY: writes the array's bytes.
        let n = unsafe { libc::write(tx_raw, results.as_ptr().cast(), size) };
        i32::from(n != size as isize)
    });
    drop(tx);
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    let mut bytes = Vec::new();
    File::from(rx).read_to_end(&mut bytes).unwrap();
    let results: Vec<(i64, i32)> = bytes
        .chunks_exact(16)
        .map(|c| {
            (
                i64::from_ne_bytes(c[..8].try_into().unwrap()),
                i64::from_ne_bytes(c[8..].try_into().unwrap()) as i32,
            )
        })
        .collect();
    assert_eq!(results.len(), PROBES.len());
    // None: succeeds; Some(e): fails with errno e.
    let want = [
        None,
        Some(libc::EPERM),
        Some(libc::EPERM),
        Some(libc::ENOSYS),
        Some(libc::ENOSYS),
    ];
    for (((what, _), got), want) in PROBES.iter().zip(&results).zip(want) {
        match want {
            None => assert!(got.0 >= 0, "{what}: failed: {got:?}"),
            Some(e) => assert_eq!(*got, (-1, e), "{what}: want errno {e}"),
        }
    }
}

// ------------------------------------------------------ flags and ordering

/// Every filter flag of the runtime spec reaches the kernel, which accepts it
/// (WAIT_KILLABLE_RECV needs a notify listener: the notify test sets it).
#[test]
fn filter_flags_are_passed_to_the_kernel() {
    for flags in [
        json!(["SECCOMP_FILTER_FLAG_TSYNC"]),
        json!(["SECCOMP_FILTER_FLAG_LOG"]),
        json!(["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
        json!([
            "SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW"
        ]),
    ] {
        let mut b = TestBundle::new("seccomp-flags");
        tmpfs_on_tmp(&mut b);
        set_profile(
            &mut b,
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": flags,
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENXIO}]
            }),
        );
        b.sh("grep ^Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; true");
        let (code, out, err) = b.run();
        assert_eq!(code, 0, "{flags}: stdout={out} stderr={err}");
        assert!(out.contains("Seccomp:\t2"), "{flags}: no filter: {out}");
        assert!(out.contains("No such device or address"), "{flags}: {out}");
        b.assert_no_state();
    }
}

/// Without no_new_privs the filter is installed while the init still holds
/// CAP_SYS_ADMIN (runc's order), so it works and NoNewPrivs stays 0.
#[test]
fn filter_without_no_new_privileges_is_installed_before_the_capability_drop() {
    let mut b = TestBundle::new("seccomp-no-nnp");
    tmpfs_on_tmp(&mut b);
    set_profile(
        &mut b,
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENXIO}]
        }),
    );
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    b.sh("grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/x 2>&1; true");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "stdout={out} stderr={err}");
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(out.contains("No such device or address"), "{out}");
    b.assert_no_state();
}
