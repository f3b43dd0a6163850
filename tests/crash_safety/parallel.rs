//! Many networked containers made at once, with `list` and `state`
//! reading the same state root meanwhile.

use std::collections::BTreeSet;
use std::process::Child;

use hull_tests::*;
use serde_json::Value;

use crate::kit::*;

/// How many containers start at once.
const N: usize = 100;

/// `hull run -d --network` of 100 containers at once (every tenth also
/// publishing a port): each gets its own address, each address has exactly
/// its container's lease, `list` and `state` never fail meanwhile, and
/// deleting them all at once leaves nothing.
#[test]
fn a_hundred_networked_containers_at_once() {
    let net = crash_net("p", 30);
    net.create();
    let root = std::env::temp_dir().join(format!("{}-state", unique("crash-par")));
    let bundles: Vec<TestBundle> = (0..N)
        .map(|i| {
            let mut b = TestBundle::new(&format!("crash-par{i}"));
            b.root = root.clone();
            b.args(&["sleep", &format!("42.{}{i:03}", std::process::id())]);
            b
        })
        .collect();
    let spawn = |b: &TestBundle, args: &[&str], log: &str| -> (Child, std::path::PathBuf) {
        spawn_logged(net.hull(b).args(args), b.dir.join(log))
    };
    let runs: Vec<_> = bundles
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let dir = b.dir.to_str().unwrap();
            let mut args = vec!["run", "-d", "--network", &net.name];
            let publish = format!("127.0.0.1:{}:80", 30_100 + i);
            if i % 10 == 0 {
                args.extend(["-p", &publish]);
            }
            args.extend(["--bundle", dir, &b.id]);
            spawn(b, &args, "run.log")
        })
        .collect();
    let readers: Vec<_> = (0..10)
        .flat_map(|n| {
            let b = &bundles[n * 7];
            [
                spawn(b, &["list", "--format", "json"], "list.log"),
                spawn(b, &["state", &b.id], "state.log"),
            ]
        })
        .collect();
    for (i, (mut c, err)) in runs.into_iter().enumerate() {
        let status = c.wait().unwrap();
        let err = std::fs::read_to_string(err).unwrap_or_default();
        assert!(status.success(), "container {i}: {status}: {err}");
    }
    for (mut r, err) in readers {
        let status = r.wait().unwrap();
        let err = std::fs::read_to_string(err).unwrap_or_default();
        // `state` may come before its container's record.
        assert!(matches!(status.code(), Some(0 | 1)), "{status}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("corrupt"),
            "{err}"
        );
    }

    let inspect = Out::from(net.cmd(&["network", "inspect", &net.name]));
    let inspect: Value = serde_json::from_str(inspect.ok()).unwrap();
    let attached: Vec<(String, String)> = inspect["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let ip = a["ip"].as_str().unwrap().to_owned();
            (ip, a["container"].as_str().unwrap().to_owned())
        })
        .collect();
    let ips: BTreeSet<&String> = attached.iter().map(|(ip, _)| ip).collect();
    assert_eq!(ips.len(), N, "addresses shared or missing: {attached:?}");
    let mut leases = net.lease_owners();
    let mut want = attached.clone();
    leases.sort();
    want.sort();
    assert_eq!(leases, want, "leases and attachments differ");
    let list = Out::from(net.cmd(&["--root", root.to_str().unwrap(), "list", "-q"]));
    assert_eq!(list.ok().lines().count(), N, "list: {}", list.stdout);

    let deletes: Vec<_> = bundles
        .iter()
        .map(|b| spawn(b, &["delete", "--force", &b.id], "delete.log"))
        .collect();
    for (mut d, err) in deletes {
        let status = d.wait().unwrap();
        let err = std::fs::read_to_string(err).unwrap_or_default();
        assert!(status.success(), "delete: {err}");
    }
    for (i, b) in bundles.iter().enumerate() {
        net.assert_nothing_of(&b.id, 30_100 + i as u16, "after delete");
        assert_eq!(cgroup_dirs_named(&b.id), Vec::<std::path::PathBuf>::new());
    }
    assert_eq!(net.leases(), Vec::<String>::new(), "leases left");
    let left: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".cache")
        .collect();
    assert!(left.is_empty(), "left in the state root: {left:?}");
    Out::from(net.cmd(&["network", "rm", &net.name])).ok();
    net.assert_removed("after network rm");
}
