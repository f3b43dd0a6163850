//! Malformed input, as a table: each case breaks a config, a container id,
//! a command's target or a network flag, runs the real `hull`, and checks
//! that it fails (non-zero exit) with an error naming the problem, and
//! leaves nothing behind: no state, process, mount, cgroup directory,
//! veth, bridge, nf_tables table or IPAM lease.

use std::process::Command;

use hull_tests::*;
use serde_json::json;

#[path = "malformed/commands.rs"]
mod commands;
#[path = "malformed/configs.rs"]
mod configs;
#[path = "malformed/net.rs"]
mod net;

use commands::{Held, StateCase, BAD_IDS, UNKNOWN_ID_CASES, WRONG_STATE_CASES};
use configs::{Break, ConfigCase, CONFIG_CASES};
use hull_tests::netlab::Net;
use net::{assert_no_network_state, hull_veths, BAD_PORTS, BAD_SUBNETS};

/// No state, process, mount or cgroup of `b`'s container is left.
fn assert_nothing_left(b: &TestBundle, what: &str) {
    b.assert_no_state();
    assert_no_process(&b.id);
    assert_no_mount(b.dir.to_str().unwrap());
    let cgroups = cgroup_dirs_mentioning(&b.id);
    assert!(cgroups.is_empty(), "{what}: cgroups left: {cgroups:?}");
}

/// Asserts a failure (exit 1, nothing on stdout) whose stderr has every needle.
fn assert_fails(out: &Out, what: &str, needles: &[&str]) {
    assert_fails_with(out, 1, what, needles)
}

/// runc's exit code for a failed command: 255 for `exec`, 1 otherwise.
fn code_of(args: &[&str]) -> i32 {
    match args.first() {
        Some(&"exec") => 255,
        _ => 1,
    }
}

/// [`assert_fails`] with exit `code`.
fn assert_fails_with(out: &Out, code: i32, what: &str, needles: &[&str]) {
    assert_eq!(
        out.code, code,
        "{what}: exit code; stdout={} stderr={}",
        out.stdout, out.stderr
    );
    assert_eq!(out.stdout, "", "{what}: stdout of a failure");
    for needle in needles {
        assert!(
            out.stderr.contains(needle),
            "{what}: stderr {:?} lacks {needle:?}",
            out.stderr
        );
    }
}

fn run_config_case(case: &ConfigCase) {
    let b = TestBundle::new(&format!("mf-{}", case.name));
    match case.how {
        Break::Edit(f) => {
            let mut config = b.config.clone();
            f(&mut config, &b.id);
            std::fs::write(
                b.dir.join("config.json"),
                serde_json::to_vec(&config).unwrap(),
            )
            .unwrap();
        }
        Break::Bytes(f) => std::fs::write(b.dir.join("config.json"), f()).unwrap(),
    }
    let out = Out::from(b.cmd(&["create", "--bundle", b.dir.to_str().unwrap(), &b.id]));
    assert_fails(&out, case.name, case.needles);
    // runc's message shape, without a 10 MB value echoed back.
    assert!(out.stderr.len() < 4096, "{}: stderr is huge", case.name);
    assert_nothing_left(&b, case.name);
}

/// Runs `cases` on `threads` threads; every failure is reported, by name.
fn run_table<T: Sync>(cases: &[T], threads: usize, name: fn(&T) -> &str, run: fn(&T)) {
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(case) = cases.get(i) else { break };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(case)));
                if let Err(e) = result {
                    let msg = e
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {msg}", name(case)));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn broken_configs_are_refused() {
    run_table(CONFIG_CASES, 4, |c| c.name, run_config_case);
}

fn with_id<'a>(args: &[&'a str], id: &'a str) -> Vec<&'a str> {
    args.iter()
        .map(|a| if *a == "ID" { id } else { a })
        .collect()
}

#[test]
fn every_command_on_an_unknown_id() {
    run_table(
        UNKNOWN_ID_CASES,
        4,
        |c| c.name,
        |case| {
            let b = TestBundle::new(&format!("mf-unknown-{}", case.name));
            let out = Out::from(b.cmd(&with_id(case.args, &b.id)));
            assert_fails_with(&out, code_of(case.args), case.name, case.needles);
            assert_nothing_left(&b, case.name);
        },
    );
}

#[test]
fn bad_container_ids() {
    let b = TestBundle::new("mf-badid");
    let parent = b.root.parent().unwrap().to_owned();
    let before: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    for (name, id, needles) in BAD_IDS {
        let id = id();
        for cmd in ["create", "run"] {
            let out = Out::from(b.cmd(&[cmd, "--bundle", b.dir.to_str().unwrap(), &id]));
            assert_fails(&out, name, needles);
            assert!(out.stderr.len() < 4096, "{name}: the id is echoed in full");
            b.assert_no_state();
        }
    }
    let after: Vec<_> = std::fs::read_dir(&parent)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| !before.contains(n) && n.to_string_lossy().contains("escape"))
        .collect();
    assert!(after.is_empty(), "made outside the root: {after:?}");
    assert_no_process("hull-test-mf-escape");
    assert_nothing_left(&b, "bad ids");
}

#[test]
fn commands_in_the_wrong_state() {
    let held: Vec<Held> = ["created", "running", "stopped", "paused"]
        .iter()
        .map(|s| Held::new(&format!("held-{s}"), s))
        .collect();
    let by_status = |s: &str| {
        let i = ["created", "running", "stopped", "paused"]
            .iter()
            .position(|x| *x == s)
            .unwrap();
        &held[i]
    };
    // A process whose cwd is relative, for `exec --process`.
    let process = held[0].b.dir.join("process.json");
    let mut p = held[0].b.config["process"].clone();
    p["cwd"] = json!("relative");
    std::fs::write(&process, serde_json::to_vec(&p).unwrap()).unwrap();

    let mut failures = Vec::new();
    for StateCase { status, case } in WRONG_STATE_CASES {
        let h = by_status(status);
        let before = (h.b.state(), (*status != "stopped").then(|| h.processes()));
        let args: Vec<&str> = with_id(case.args, &h.b.id)
            .into_iter()
            .map(|a| match a {
                "BUNDLE" => h.b.dir.to_str().unwrap(),
                "PROCESS" => process.to_str().unwrap(),
                a => a,
            })
            .collect();
        let out = Out::from(h.b.cmd(&args));
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_fails_with(&out, code_of(case.args), case.name, case.needles);
            let after = (h.b.state(), (*status != "stopped").then(|| h.processes()));
            assert_eq!(after, before, "{}: the container changed", case.name);
        }));
        if checked.is_err() {
            failures.push(case.name);
        }
    }
    assert!(failures.is_empty(), "failed: {failures:?}");
    for h in held {
        h.b.delete_and_check(true);
        assert_nothing_left(&h.b, "held");
    }
}

#[test]
fn bad_ports_and_subnets() {
    // The tests' own `--net-root` and table, removed when the test ends.
    let net = Net::new("malformed", 0);
    let name = format!("mf{}", std::process::id());
    let veths = hull_veths();
    let mut b = TestBundle::new("mf-ports");
    b.args(&["sleep", "1000"]);
    let mut failures = Vec::new();
    // `hull run -d OPTS --bundle B ID` must fail with `needles` and leave
    // nothing; without --network not even the default network "hull"
    // (bridge hull0) may be made.
    let mut run_fails = |b: &TestBundle, opts: &[&str], what: &str, needles: &[&str]| {
        let root = b.root.to_string_lossy().into_owned();
        let mut args: Vec<String> = vec!["--root".into(), root, "run".into(), "-d".into()];
        args.extend(opts.iter().map(|o| o.to_string()));
        args.extend(["--bundle".into(), b.dir.to_string_lossy().into_owned()]);
        args.push(b.id.clone());
        let out = Out::from(output_via_files(
            net.flags(&mut Command::new(hull_bin())).args(&args),
        ));
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_fails(&out, what, needles);
            assert_nothing_left(b, what);
            assert_no_network_state(&net, what, "hull0");
            assert_eq!(hull_veths(), veths, "{what}: veth left");
        }));
        if checked.is_err() {
            failures.push(what.to_string());
        }
    };
    for (port, needles) in BAD_PORTS {
        run_fails(&b, &["-p", port], port, needles);
    }
    let missing = "hull-test-no-such-network";
    run_fails(
        &b,
        &["--network", missing],
        missing,
        &[missing, "does not exist"],
    );
    b.edit(|c| c["annotations"] = json!({"org.hull.publish": "8080:80, bogus"}));
    let what = "org.hull.publish";
    run_fails(&b, &[], what, &["invalid port mapping", "bogus"]);
    for (subnets, needles) in BAD_SUBNETS {
        let mut args: Vec<String> = vec!["network".into(), "create".into()];
        for s in *subnets {
            args.extend(["--subnet".into(), s.to_string()]);
        }
        args.push(name.clone());
        let out = Out::from(output_via_files(
            net.flags(&mut Command::new(hull_bin())).args(&args),
        ));
        let what = subnets.join(" ");
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_fails(&out, &what, needles);
            assert_no_network_state(&net, &what, &format!("hull-{name}"));
        }));
        if checked.is_err() {
            failures.push(what);
        }
    }
    assert!(failures.is_empty(), "failed: {failures:?}");
}
