//! hull killed at every step that changes something, found and hit with
//! strace: one traced run of a command lists its state-changing syscalls
//! (`openat` with `O_CREAT`, `mkdir`, `write`, `rename`, `sendmsg`,
//! `clone`, `mount`, ..., and the waits for hooks); then, for each of them, the command runs again
//! under `strace -e inject=SYSCALL:signal=SIGKILL:when=N`, which kills hull
//! as it enters that call. The clean-up command (`delete --force`,
//! `network rm`) must then leave nothing: no process, state or temporary
//! file, cgroup, mount, veth, lease, attachment record or published port.
//!
//! Why strace rather than failpoints compiled into hull: it needs no code
//! in the binary, no second build of it, and it hits every system call
//! rather than the places someone thought of. Only hull's own process is
//! traced (no `-f`): the init and hooks run untraced, and die or live as
//! they would after a real kill. The points are spread over a few workers;
//! each kill gets its own container id, bundle and host port.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use hull_tests::strace::{self, changes_host, killing_at, strace, traced_run, KillPoint};
use hull_tests::*;

use crate::kit::*;

/// The syscalls a kill point may be: those that change the host, and the
/// waits (a hook or the init running meanwhile).
const CHANGES: &str = "openat,mkdir,mkdirat,write,pwrite64,writev,rename,renameat,\
renameat2,link,linkat,unlink,unlinkat,rmdir,ftruncate,mount,umount2,clone,clone3,\
sendmsg,sendto,kill,setns,wait4,waitid";

/// How many kills run at once.
const WORKERS: usize = 4;

/// The state-changing calls of one run of `cmd`, in order: `openat` only
/// with `O_CREAT` or `O_TMPFILE`, `write` not to stdout or stderr.
fn kill_points(cmd: &Command, log: &std::path::Path) -> Vec<KillPoint> {
    let trace = traced_run(cmd, log, CHANGES);
    let mut points = strace::kill_points(&trace, changes_host);
    // A wait polled in a loop is one point: its first call.
    points.dedup_by(|p, last| p.syscall.starts_with("wait") && p.syscall == last.syscall);
    assert!(!points.is_empty(), "no kill point in:\n{trace}");
    points
}

/// One family of kills: `setup` brings a fresh container (bundle `b`) to
/// where `command` starts; hull is killed at each point of `command`;
/// `recover` runs the clean-up; `check` asserts nothing is left. `b`'s
/// process is `sleep TAG` with a tag unique to the kill.
pub struct Family<'a> {
    pub name: &'a str,
    pub net: &'a Net,
    pub setup: &'a (dyn Fn(&TestBundle, u16) + Sync),
    pub command: &'a (dyn Fn(&TestBundle, u16) -> Command + Sync),
    pub recover: &'a (dyn Fn(&TestBundle) + Sync),
    pub check: &'a (dyn Fn(&TestBundle, u16, &str) + Sync),
}

/// A container's sleep tag: a fractional number unique to the test
/// process and `i`, all of one length.
fn tag(i: usize) -> String {
    format!("41.{}{i:04}", std::process::id())
}

/// A fresh bundle for kill `i` of family `name`, running `sleep TAG`, with
/// createRuntime, poststart and poststop hooks whose descendant `sleep`
/// carries a tag of its own; the tag returned names both.
fn bundle(name: &str, i: usize) -> (TestBundle, String) {
    let mut b = TestBundle::new(&format!("ki-{name}{i}"));
    let tag = tag(i);
    let hook = serde_json::json!({
        "path": "/bin/sh",
        "args": ["sh", "-c", format!("sleep 0.0{tag} & wait", tag = &tag[3..])]
    });
    b.args(&["sleep", &tag]);
    b.edit(|c| {
        c["hooks"] = serde_json::json!({
            "createRuntime": [hook.clone()],
            "poststart": [hook.clone()],
            "poststop": [hook],
        })
    });
    // `&tag[3..]` is in both the container's and the hooks' sleep.
    let both = tag[3..].to_owned();
    (b, both)
}

impl Family<'_> {
    /// Traces one run, then kills at every point, `WORKERS` at a time;
    /// `port_base` and up are the host ports this family may publish.
    pub fn run(&self, port_base: u16) {
        let (b, tag) = bundle(self.name, 0);
        (self.setup)(&b, port_base);
        let points = kill_points(&(self.command)(&b, port_base), &b.dir.join("trace"));
        (self.recover)(&b);
        (self.check)(&b, port_base, &format!("{} untouched", self.name));
        assert_no_container(&b, &tag, self.name);
        drop(b);
        eprintln!("{}: {} kill points", self.name, points.len());
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for w in 0..WORKERS {
                let (next, points) = (&next, &points);
                s.spawn(move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(p) = points.get(i) else { break };
                    self.kill_at(i + 1, p, port_base + 1 + w as u16);
                });
            }
        });
    }

    /// Kill `i`: at `p`, with host port `port`.
    fn kill_at(&self, i: usize, p: &KillPoint, port: u16) {
        let why = format!("{}: killed at {p} (kill {i})", self.name);
        let (b, tag) = bundle(self.name, i);
        (self.setup)(&b, port);
        let cmd = (self.command)(&b, port);
        let out = output_via_files(&mut strace(&cmd, &killing_at(p)));
        assert_killed_or_done(&out, &why);
        assert_listable(self.net, &b, &why);
        (self.recover)(&b);
        (self.check)(&b, port, &why);
        assert_no_container(&b, &tag, &why);
    }
}

/// strace passes on hull's death by SIGKILL, or its exit 0 when the call
/// never came (a run that took another path): both must clean up.
fn assert_killed_or_done(out: &std::process::Output, why: &str) {
    use std::os::unix::process::ExitStatusExt;
    let s = out.status;
    assert!(
        s.code() == Some(0) || s.signal() == Some(9) || s.code() == Some(137),
        "{why}: {s}: {}",
        text(&out.stderr)
    );
}

/// `hull [net flags] ARGS... --bundle DIR ID`.
fn with_bundle(net: &Net, b: &TestBundle, args: &[&str]) -> Command {
    let mut c = net.hull(b);
    c.args(args).arg("--bundle").arg(&b.dir).arg(&b.id);
    c
}

/// `hull [net flags] ARGS...`, asserted to succeed.
fn ok(net: &Net, b: &TestBundle, args: &[&str]) {
    Out::from(output_via_files(net.hull(b).args(args))).ok();
}

/// `run -d` on the network, publishing `port`.
fn run_detached(net: &Net, b: &TestBundle, port: u16) -> Command {
    let publish = format!("127.0.0.1:{port}:80");
    with_bundle(
        net,
        b,
        &["run", "-d", "--network", &net.name, "-p", &publish],
    )
}

/// `delete --force ID`, asserted to succeed.
fn force_delete(net: &Net, b: &TestBundle) {
    ok(net, b, &["delete", "--force", &b.id]);
}

/// Kill families of containers on one network (`n`), checked for
/// container and attachment leftovers.
fn container_family(
    tag: &str,
    n: u8,
    port_base: u16,
    setup: &(dyn Fn(&Net, &TestBundle, u16) + Sync),
    command: &(dyn Fn(&Net, &TestBundle, u16) -> Command + Sync),
) {
    require("strace");
    let net = crash_net(tag, n);
    net.create();
    Family {
        name: tag,
        net: &net,
        setup: &|b, p| setup(&net, b, p),
        command: &|b, p| command(&net, b, p),
        recover: &|b| force_delete(&net, b),
        check: &|b, p, why| net.assert_nothing_of(&b.id, p, why),
    }
    .run(port_base);
    Out::from(net.cmd(&["network", "rm", &net.name])).ok();
    net.assert_removed(tag);
}

#[test]
fn create_with_a_network_killed_at_every_step() {
    container_family("c", 1, 30_000, &|_, _, _| {}, &|net, b, port| {
        let publish = format!("127.0.0.1:{port}:80");
        with_bundle(net, b, &["create", "--network", &net.name, "-p", &publish])
    });
}

#[test]
fn run_detached_with_a_published_port_killed_at_every_step() {
    container_family("r", 2, 30_010, &|_, _, _| {}, &|net, b, port| {
        run_detached(net, b, port)
    });
}

#[test]
fn start_killed_at_every_step() {
    container_family(
        "s",
        3,
        30_020,
        &|net, b, port| {
            let publish = format!("127.0.0.1:{port}:80");
            let create = ["create", "--network", &net.name, "-p", &publish];
            Out::from(output_via_files(&mut with_bundle(net, b, &create))).ok();
        },
        &|net, b, _| {
            let mut c = net.hull(b);
            c.args(["start", &b.id]);
            c
        },
    );
}

#[test]
fn exec_killed_at_every_step() {
    container_family(
        "e",
        4,
        30_030,
        &|net, b, port| {
            Out::from(output_via_files(&mut run_detached(net, b, port))).ok();
        },
        &|net, b, _| {
            let mut c = net.hull(b);
            c.args(["exec", &b.id, "true"]);
            c
        },
    );
}

#[test]
fn delete_killed_at_every_step() {
    container_family(
        "d",
        5,
        30_040,
        &|net, b, port| {
            Out::from(output_via_files(&mut run_detached(net, b, port))).ok();
        },
        &|net, b, _| {
            let mut c = net.hull(b);
            c.args(["delete", "--force", &b.id]);
            c
        },
    );
}

/// Kill families of network commands: each worker has its own network
/// (`tag<w>` on 10.247.`n0 + w`.0/24), made afresh by `setup` before each
/// kill and removed with `network rm` after it.
fn network_family(
    tag: &str,
    n0: u8,
    port_base: u16,
    setup: &(dyn Fn(&Net, u16) + Sync),
    args: &[&str],
) {
    require("strace");
    let nets: Vec<Net> = (0..=WORKERS as u8)
        .map(|w| crash_net(tag, n0 + w))
        .collect();
    let command = |net: &Net| {
        let subnet = net.subnet();
        let args: Vec<&str> = args
            .iter()
            .map(|a| match *a {
                "NAME" => net.name.as_str(),
                "SUBNET" => subnet.as_str(),
                a => a,
            })
            .collect();
        let mut c = Command::new(hull_bin());
        net.flags(&mut c).args(args);
        c
    };
    let recover = |net: &Net, why: &str| {
        let out = Out::from(net.cmd(&["network", "rm", &net.name]));
        assert!(
            out.code == 0 || out.stderr.contains("does not exist"),
            "{why}: network rm: {}",
            out.stderr
        );
        net.assert_removed(why);
    };
    let first = &nets[WORKERS];
    setup(first, port_base + WORKERS as u16);
    let points = kill_points(&command(first), &first.root.with_extension("trace"));
    recover(first, tag);
    let _ = std::fs::remove_file(first.root.with_extension("trace"));
    eprintln!("{tag}: {} kill points", points.len());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for (w, net) in nets[..WORKERS].iter().enumerate() {
            let (next, points, command, recover) = (&next, &points, &command, &recover);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = points.get(i) else { break };
                let why = format!("{tag}: killed at {p} (kill {})", i + 1);
                setup(net, port_base + w as u16);
                let out = output_via_files(&mut strace(&command(net), &killing_at(p)));
                assert_killed_or_done(&out, &why);
                recover(net, &why);
            });
        }
    });
}

#[test]
fn network_create_killed_at_every_step() {
    network_family(
        "k",
        10,
        0,
        &|_, _| {},
        &["network", "create", "--subnet", "SUBNET", "NAME"],
    );
}

/// The network has been used (bridge, rules, lease directory) before `rm`.
#[test]
fn network_rm_killed_at_every_step() {
    network_family(
        "m",
        20,
        30_050,
        &|net, port| {
            net.create();
            let mut b = TestBundle::new(&format!("ki-m{}", net.n));
            b.args(&["sleep", "60"]);
            let c = run_detached(net, &b, port);
            Out::from(output_via_files(&mut { c })).ok();
            force_delete(net, &b);
        },
        &["network", "rm", "NAME"],
    );
}
