//! The device allow/deny list: the spec's rules plus the devices every
//! container needs, in runc's format and order.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

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

/// The full rule list: the spec's, then the default allows.
pub fn effective_rules(spec: &[LinuxDeviceCgroup]) -> Vec<LinuxDeviceCgroup> {
    let mut rules = spec.to_vec();
    rules.extend(
        DEFAULT_ALLOWED
            .iter()
            .map(|&(t, maj, min, acc)| rule(true, t, maj, min, acc)),
    );
    rules
}

/// A rule as the v1 devices controller reads it: `c 1:3 rwm`, `a *:* rwm`.
pub fn device_rule(r: &LinuxDeviceCgroup) -> String {
    let typ = match r.typ() {
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C | LinuxDeviceType::U) => 'c',
        Some(LinuxDeviceType::P) => 'p',
        Some(LinuxDeviceType::A) | None => 'a',
    };
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_owned(),
    };
    let access = r.access().clone().unwrap_or_else(|| "rwm".to_owned());
    format!("{typ} {}:{} {access}", num(r.major()), num(r.minor()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rules_for_v1() {
        let deny_all: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        assert_eq!(device_rule(&deny_all), "a *:* rwm");
        let rules = effective_rules(&[deny_all]);
        assert_eq!(device_rule(&rules[4]), "c 1:8 rwm");
        assert_eq!(device_rule(&rules[10]), "c 136:* rwm");
        assert!(!rules[0].allow() && rules[1].allow());
    }
}
