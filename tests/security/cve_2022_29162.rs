//! CVE-2022-29162: processes of `exec` given inheritable capabilities.
//!
//! The attack: runc gave processes it exec'd (and its default spec) a
//! non-empty inheritable set. Inheritable capabilities do nothing for root,
//! but a non-root user executing a program with file-inheritable
//! capabilities gains `pI & fI` in its permitted set: capabilities the
//! config never gave that user. hull sets the inheritable set to exactly
//! the config's (empty unless listed), and `--cap` adds to the bounding,
//! effective and permitted sets only, as runc does since its fix.

use std::process::Command;

use hull_tests::*;
use serde_json::{json, Value};

/// The bit of CAP_SYS_ADMIN in the capability masks.
const SYS_ADMIN: u64 = 1 << 21;

/// The `Cap*:` lines of `/proc/self/status` as printed by `grep`, as masks.
struct Caps {
    inheritable: u64,
    permitted: u64,
    effective: u64,
}

fn caps_of(status: &str) -> Caps {
    let mask = |name: &str| {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {status:?}"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    Caps {
        inheritable: mask("CapInh:"),
        permitted: mask("CapPrm:"),
        effective: mask("CapEff:"),
    }
}

/// A running container (`sleep`) with a private rootfs holding
/// `/capbin/grep`, busybox with the file capability CAP_SYS_ADMIN in its
/// inheritable set (and the effective bit), and without no_new_privs (which
/// would ignore file capabilities).
fn container_with_file_caps(name: &str) -> TestBundle {
    let mut b = TestBundle::new(name);
    let rootfs = b.own_rootfs();
    std::fs::create_dir(rootfs.join("capbin")).unwrap();
    let grep = rootfs.join("capbin/grep");
    std::fs::copy(rootfs.join("bin/busybox"), &grep).unwrap();
    let setcap = Command::new("setcap")
        .arg("cap_sys_admin+ei")
        .arg(&grep)
        .output()
        .expect("setcap (libcap2-bin)");
    assert!(setcap.status.success(), "setcap: {}", text(&setcap.stderr));
    b.edit(|c| c["process"]["noNewPrivileges"] = json!(false));
    b.args(&["sleep", "30"]);
    b.detached(&["run", "-d"]);
    b
}

/// `hull exec ARGS... <id> [<program> Cap /proc/self/status]`, parsed.
fn exec_caps(b: &TestBundle, args: &[&str], program: Option<&str>) -> Caps {
    let mut all: Vec<&str> = args.to_vec();
    all.push(&b.id);
    if let Some(program) = program {
        all.extend([program, "Cap", "/proc/self/status"]);
    }
    let out = Out::from(b.cmd(&all));
    caps_of(out.ok())
}

/// A process.json for `exec --process`: the container's process as user
/// `uid` running the file-capability grep, with `inheritable` as given.
fn process_file(b: &TestBundle, uid: u32, inheritable: Value) -> String {
    let mut p = b.config["process"].clone();
    p["args"] = json!(["/capbin/grep", "Cap", "/proc/self/status"]);
    p["user"] = json!({ "uid": uid, "gid": uid });
    for set in ["bounding", "effective", "permitted"] {
        p["capabilities"][set]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    }
    p["capabilities"]["inheritable"] = inheritable;
    let path = b.dir.join(format!("process-{uid}.json"));
    std::fs::write(&path, serde_json::to_vec(&p).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn exec_gets_no_inheritable_capabilities_unless_configured() {
    let b = container_with_file_caps("cve-2022-29162-exec");
    let init = std::fs::read_to_string(format!("/proc/{}/status", b.init_pid())).unwrap();
    assert_eq!(
        caps_of(&init).inheritable,
        0,
        "the init of the default spec"
    );
    assert_eq!(exec_caps(&b, &["exec"], Some("grep")).inheritable, 0);
    let with_cap = exec_caps(&b, &["exec", "--cap", "CAP_SYS_ADMIN"], Some("grep"));
    assert_eq!(
        with_cap.inheritable, 0,
        "--cap added to the inheritable set"
    );
    assert_ne!(with_cap.effective & SYS_ADMIN, 0, "--cap was not applied");
    let file = process_file(&b, 0, json!(["CAP_SYS_ADMIN"]));
    let configured = exec_caps(&b, &["exec", "--process", &file], None);
    assert_eq!(configured.inheritable, SYS_ADMIN, "as configured");
    b.delete_and_check(true);
}

#[test]
fn a_non_root_exec_gains_nothing_from_file_inheritable_capabilities() {
    let b = container_with_file_caps("cve-2022-29162-user");
    // As runc's exploit: a user that is not root, --cap asked for root's use.
    let user = exec_caps(
        &b,
        &["exec", "--user", "1000:1000", "--cap", "CAP_SYS_ADMIN"],
        Some("/capbin/grep"),
    );
    assert_eq!(user.inheritable, 0);
    assert_eq!(user.permitted, 0, "gained through the file's capabilities");
    assert_eq!(user.effective, 0, "gained through the file's capabilities");
    // The control: with CAP_SYS_ADMIN inheritable in the config, the same
    // program does grant it, so the file capabilities are in force here.
    let file = process_file(&b, 1000, json!(["CAP_SYS_ADMIN"]));
    let configured = exec_caps(&b, &["exec", "--process", &file], None);
    assert_eq!(configured.effective, SYS_ADMIN, "the control did not work");
    b.delete_and_check(true);
}
