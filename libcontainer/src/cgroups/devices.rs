//! The device allow/deny list: the spec's rules plus the devices every
//! container needs, in runc's format and order.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::device_transition::{self, Rule};
use super::CgroupError;

/// Devices always allowed after the spec's rules (runc's `AllowedDevices`):
/// mknod of any node, the default nodes, /dev/console, pts, ptmx and tun.
const DEFAULT_ALLOWED: [(char, i64, i64, &str); 12] = [
    ('c', -1, -1, "m"),
    ('b', -1, -1, "m"),
    ('c', 1, 3, "rwm"),
    ('c', 1, 8, "rwm"),
    ('c', 1, 7, "rwm"),
    ('c', 5, 0, "rwm"),
    ('c', 1, 5, "rwm"),
    ('c', 1, 9, "rwm"),
    ('c', 5, 1, "rwm"),
    ('c', 136, -1, "rwm"),
    ('c', 5, 2, "rwm"),
    ('c', 10, 200, "rwm"),
];

fn rule(allow: bool, typ: char, major: i64, minor: i64, access: &str) -> LinuxDeviceCgroup {
    let typ = match typ {
        'b' => LinuxDeviceType::B,
        'c' => LinuxDeviceType::C,
        _ => LinuxDeviceType::A,
    };
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(allow);
    r.set_typ(Some(typ));
    r.set_major((major >= 0).then_some(major));
    r.set_minor((minor >= 0).then_some(minor));
    r.set_access(Some(access.to_owned()));
    r
}

/// The full rule list: deny everything (runc's starting point, so a spec
/// without a deny-all rule does not leave every device open), the spec's
/// rules, then the default allows.
pub fn effective_rules(spec: &[LinuxDeviceCgroup]) -> Vec<LinuxDeviceCgroup> {
    let mut rules = vec![rule(false, 'a', -1, -1, "rwm")];
    rules.extend_from_slice(spec);
    rules.extend(
        DEFAULT_ALLOWED
            .iter()
            .map(|&(t, maj, min, acc)| rule(true, t, maj, min, acc)),
    );
    rules
}

/// The rules in the v1 controller's terms, each checked (see
/// [`device_transition::from_spec`]).
pub fn controller_rules(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, CgroupError> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| device_transition::from_spec(i, r))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_follow_a_deny_all() {
        let null: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}"#)
                .unwrap();
        let rules = controller_rules(&effective_rules(&[null])).unwrap();
        assert_eq!(rules[0].to_string(), "a *:* rwm");
        assert!(!rules[0].allow);
        assert_eq!(rules[1].to_string(), "c 1:3 rw");
        assert_eq!(rules[5].to_string(), "c 1:8 rwm");
        assert_eq!(rules[11].to_string(), "c 136:* rwm");
        assert!(rules[1..].iter().all(|r| r.allow));
    }
}
