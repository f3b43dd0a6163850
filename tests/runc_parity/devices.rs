//! The v1 devices controller: access strings read as runc reads them, and
//! rule changes written as runc's emulator writes them (the fewest writes,
//! no deny-all window).

use std::path::Path;

use hull_tests::strace::traced_run;
use hull_tests::*;
use serde_json::{json, Value};

fn devices_list(id: &str) -> Vec<String> {
    let path = Path::new(super::CGROUP_ROOT)
        .join("devices")
        .join(id)
        .join("devices.list");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The spec's rules: deny everything, then `c 1:11` with `access`.
fn kmsg_rules(access: &str) -> Value {
    json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 11, "access": access}
    ])
}

/// `hull update -r FILE` under strace: the strings written to the cgroup
/// devices files (strace shows the buffer of each write).
fn update_writes(b: &TestBundle, devices: &Value) -> Vec<String> {
    let file = b.dir.join("update.json");
    std::fs::write(&file, json!({"devices": devices}).to_string()).unwrap();
    let mut update = b.hull();
    update.args(["update", "-r"]).arg(&file).arg(&b.id);
    traced_run(&update, &b.dir.join("update.strace"), "write")
        .lines()
        .filter_map(|l| {
            let s = l.strip_prefix("write(")?.split_once(", \"")?.1;
            Some(s.split_once('"')?.0.to_owned())
        })
        .filter(|w| w.starts_with(['a', 'b', 'c']) && w.contains(':'))
        .collect()
}

/// Repeated and unknown letters in an access string are dropped and the
/// order does not matter (`mwrrwx` is `rwm`); `update` from `rwm` to `r`
/// writes one `deny c 1:11 wm` and nothing else (no deny-all, after which
/// every device is refused until the allows are written again), and the
/// same list sent again (as engines send it) writes nothing.
#[test]
fn access_strings_are_normalised_and_updates_are_minimal() {
    require("strace");
    let mut b = TestBundle::new("dev-access");
    b.edit(|c| c["linux"]["resources"] = json!({"devices": kmsg_rules("mwrrwx")}));
    b.sh("sleep 60");
    b.detached(&["run", "-d"]);
    let before = devices_list(&b.id);
    assert!(before.contains(&"c 1:11 rwm".to_owned()), "{before:?}");
    assert!(before.contains(&"c 1:3 rwm".to_owned()), "{before:?}");

    let writes = update_writes(&b, &kmsg_rules("r"));
    assert_eq!(writes, ["c 1:11 wm"], "the writes of the update");
    let after = devices_list(&b.id);
    let expected: Vec<String> = before
        .iter()
        .map(|l| {
            if l == "c 1:11 rwm" {
                "c 1:11 r".to_owned()
            } else {
                l.clone()
            }
        })
        .collect();
    assert_eq!(after, expected);

    assert!(update_writes(&b, &kmsg_rules("r")).is_empty());
    // Back to rwm: the bits come back with one allow.
    assert_eq!(update_writes(&b, &kmsg_rules("rw m")), ["c 1:11 wm"]);
    assert!(devices_list(&b.id).contains(&"c 1:11 rwm".to_owned()));
    b.delete_and_check(true);
}

/// A spec without device rules (or without `linux.resources`) still gets
/// runc's deny-all and default allows: a v1 devices cgroup left alone
/// allows every device.
#[test]
fn no_device_rules_still_deny_by_default() {
    for res in [Some(json!({})), None] {
        let mut b = TestBundle::new("dev-none");
        b.edit(|c| match &res {
            Some(r) => c["linux"]["resources"] = r.clone(),
            None => {
                c["linux"].as_object_mut().unwrap().remove("resources");
            }
        });
        b.sh("sleep 60");
        b.detached(&["run", "-d"]);
        let list = devices_list(&b.id);
        assert!(!list.contains(&"a *:* rwm".to_owned()), "{res:?}: {list:?}");
        assert_eq!(list[0], "b *:* m", "{res:?}: {list:?}");
        assert!(list.contains(&"c 1:3 rwm".to_owned()), "{list:?}");
        b.delete_and_check(true);
    }
}

/// What runc refuses is refused before the container runs, with nothing
/// left: an empty access string, a type other than a, b or c, and (where
/// runc fails later, on its check of the result) no r, w or m at all.
#[test]
fn bad_device_rules_are_refused() {
    for (rule, needle) in [
        (
            json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": ""}),
            "device access at 2 field cannot be empty",
        ),
        (
            json!({"allow": true, "type": "u", "major": 1, "minor": 11, "access": "r"}),
            "invalid cgroup device type",
        ),
        (
            json!({"allow": true, "type": "c", "major": 1, "minor": 11, "access": "x"}),
            "names none of r, w, m",
        ),
        // The kernel would ignore this deny (part of a wildcard allow).
        (
            json!({"allow": false, "type": "c", "major": 200, "minor": 3, "access": "w"}),
            "wider rule c 200:* rwm",
        ),
    ] {
        let mut b = TestBundle::new("dev-bad");
        let r = rule.clone();
        b.edit(|c| {
            c["linux"]["resources"] = json!({"devices": [
                {"allow": false, "access": "rwm"},
                {"allow": true, "type": "c", "major": 200, "access": "rwm"},
                r
            ]})
        });
        b.args(&["true"]);
        let (code, _, err) = b.run();
        assert_ne!(code, 0, "{rule}");
        assert!(err.contains(needle), "{rule}: {err}");
        b.assert_no_state();
        assert!(
            !Path::new(super::CGROUP_ROOT)
                .join("devices")
                .join(&b.id)
                .exists(),
            "{rule}: cgroup left"
        );
    }
}
