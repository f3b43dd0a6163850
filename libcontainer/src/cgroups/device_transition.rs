//! A model of the cgroup v1 devices controller, so that a new rule list is
//! reached from the one in place with the fewest writes (runc's emulator).
//!
//! Writing a list from scratch starts with `deny a *:* rwm`: until the
//! allows that follow are written, the container cannot even open
//! /dev/null. Comparing the list the kernel reports (`devices.list`) with
//! the wanted one instead yields only the differences: an `update` from
//! `rwm` to `r` on a device is one `deny c 1:3 wm`, with no window in which
//! anything else is denied. A deny-all rule is written only where the
//! default (allow or deny) must change, or where the current default is
//! allow (its exceptions cannot be read back).

use std::collections::BTreeMap;
use std::fmt;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

/// A set of the access bits `r`, `w` and `m`, written in that order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access(u8);

const READ: u8 = 1;
const WRITE: u8 = 2;
const MKNOD: u8 = 4;

impl Access {
    pub const ALL: Access = Access(READ | WRITE | MKNOD);

    /// The bits named in `s`; repeats count once, the order does not
    /// matter and other letters are dropped (as runc reads an access string).
    pub fn parse(s: &str) -> Access {
        Access(s.chars().fold(0, |acc, c| {
            acc | match c {
                'r' => READ,
                'w' => WRITE,
                'm' => MKNOD,
                _ => 0,
            }
        }))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn union(self, o: Access) -> Access {
        Access(self.0 | o.0)
    }

    fn minus(self, o: Access) -> Access {
        Access(self.0 & !o.0)
    }

    fn overlaps(self, o: Access) -> bool {
        self.0 & o.0 != 0
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, c) in [(READ, 'r'), (WRITE, 'w'), (MKNOD, 'm')] {
            if self.0 & bit != 0 {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// The devices a rule matches. Fields in sort order: major, minor, type
/// (runc's order, so the same lists give the same writes); -1 is `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Match {
    major: i64,
    minor: i64,
    typ: char,
}

/// One line for `devices.allow` or `devices.deny`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    /// `a` (every device), `b` or `c`.
    pub typ: char,
    pub major: i64,
    pub minor: i64,
    pub access: Access,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let num = |n: i64| {
            if n < 0 {
                "*".to_owned()
            } else {
                n.to_string()
            }
        };
        write!(
            f,
            "{} {}:{} {}",
            self.typ,
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// A spec rule in the controller's terms, refused as runc refuses it: an
/// empty access string, a type other than `a`, `b`, `c`; and (where runc
/// fails later with a vaguer error) an access string with none of `rwm`.
pub fn from_spec(index: usize, r: &LinuxDeviceCgroup) -> Result<Rule, CgroupError> {
    let invalid = |m: String| Err(CgroupError::Invalid(m));
    let typ = match r.typ() {
        None | Some(LinuxDeviceType::A) => 'a',
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::C) => 'c',
        Some(t @ (LinuxDeviceType::U | LinuxDeviceType::P)) => {
            return invalid(format!("invalid cgroup device type {:?}", t.as_str()))
        }
    };
    let text = r.access().as_deref().unwrap_or_default();
    if text.is_empty() {
        return invalid(format!("device access at {index} field cannot be empty"));
    }
    let access = Access::parse(text);
    if access.is_empty() {
        return invalid(format!(
            "device access {text:?} at {index} names none of r, w, m"
        ));
    }
    Ok(Rule {
        allow: r.allow(),
        typ,
        major: r.major().filter(|n| *n >= 0).unwrap_or(-1),
        minor: r.minor().filter(|n| *n >= 0).unwrap_or(-1),
        access,
    })
}

/// What the controller enforces: a default, and the exceptions to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceState {
    default_allow: bool,
    exceptions: BTreeMap<Match, Access>,
}

impl DeviceState {
    /// The state `rules` make, applied in order to a cgroup that denies
    /// everything.
    pub fn from_rules(rules: &[Rule]) -> Result<Self, CgroupError> {
        let mut s = DeviceState::default();
        for r in rules {
            s.apply(r)?;
        }
        Ok(s)
    }

    /// The state `devices.list` shows: the allowed devices, or `a *:* rwm`
    /// for a cgroup that allows by default (whose denials are not listed).
    pub fn from_list(list: &str) -> Result<Self, CgroupError> {
        let mut s = DeviceState::default();
        for line in list.lines().filter(|l| !l.trim().is_empty()) {
            let bad = || CgroupError::Invalid(format!("malformed devices.list line {line:?}"));
            let mut f = line.split([' ', ':']);
            let (Some(typ), Some(major), Some(minor), Some(access), None) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                return Err(bad());
            };
            let num = |n: &str| match n {
                "*" => Ok(-1),
                n => n.parse::<u32>().map(i64::from).map_err(|_| bad()),
            };
            let typ = match typ {
                "a" | "b" | "c" => typ.chars().next().unwrap_or('a'),
                _ => return Err(bad()),
            };
            s.apply(&Rule {
                allow: true,
                typ,
                major: num(major)?,
                minor: num(minor)?,
                access: Access::parse(access),
            })?;
        }
        Ok(s)
    }

    /// Whether the cgroup allows what no exception names.
    pub fn allows_by_default(&self) -> bool {
        self.default_allow
    }

    /// One write, as the kernel takes it: a rule for every device resets
    /// the default and drops the exceptions; a rule in the default's
    /// direction removes access from an exception, the other adds to one.
    fn apply(&mut self, r: &Rule) -> Result<(), CgroupError> {
        if r.typ == 'a' {
            *self = DeviceState {
                default_allow: r.allow,
                exceptions: BTreeMap::new(),
            };
            return Ok(());
        }
        let m = Match {
            major: r.major,
            minor: r.minor,
            typ: r.typ,
        };
        if r.allow == self.default_allow {
            self.narrow(m, r)
        } else {
            let old = self.exceptions.get(&m).copied().unwrap_or_default();
            self.exceptions.insert(m, old.union(r.access));
            Ok(())
        }
    }

    /// Takes `r.access` off exception `m`. The kernel silently ignores a
    /// removal that only part of a wildcard exception covers, which would
    /// leave access the rules seem to take away; refused instead (as runc).
    fn narrow(&mut self, m: Match, r: &Rule) -> Result<(), CgroupError> {
        for wider in [
            Match { major: -1, ..m },
            Match { minor: -1, ..m },
            Match {
                major: -1,
                minor: -1,
                ..m
            },
        ] {
            let held = self.exceptions.get(&wider).copied().unwrap_or_default();
            if wider != m && held.overlaps(r.access) {
                return Err(CgroupError::Invalid(format!(
                    "device rule {r} cannot be applied by the v1 devices controller: \
                     it takes part of the wider rule {} {}",
                    Rule {
                        allow: !r.allow,
                        typ: wider.typ,
                        major: wider.major,
                        minor: wider.minor,
                        access: held,
                    },
                    if r.allow { "away" } else { "back" }
                )));
            }
        }
        let left = self
            .exceptions
            .get(&m)
            .copied()
            .unwrap_or_default()
            .minus(r.access);
        if left.is_empty() {
            self.exceptions.remove(&m);
        } else {
            self.exceptions.insert(m, left);
        }
        Ok(())
    }

    /// The writes that take the controller from `self` to `target`: a
    /// deny-all or allow-all only where needed (see the module's doc),
    /// then the access each exception loses, then what each gains.
    pub fn transition(&self, target: &DeviceState) -> Vec<Rule> {
        let mut out = Vec::new();
        let empty = BTreeMap::new();
        let old = if self.default_allow || self.default_allow != target.default_allow {
            out.push(Rule {
                allow: target.default_allow,
                typ: 'a',
                major: -1,
                minor: -1,
                access: Access::ALL,
            });
            &empty
        } else {
            &self.exceptions
        };
        let rule = |m: &Match, allow, access| Rule {
            allow,
            typ: m.typ,
            major: m.major,
            minor: m.minor,
            access,
        };
        for (m, had) in old {
            let lost = had.minus(target.exceptions.get(m).copied().unwrap_or_default());
            if !lost.is_empty() {
                out.push(rule(m, target.default_allow, lost));
            }
        }
        for (m, wants) in &target.exceptions {
            let gained = wants.minus(old.get(m).copied().unwrap_or_default());
            if !gained.is_empty() {
                out.push(rule(m, !target.default_allow, gained));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: &str) -> Vec<Rule> {
        let spec: Vec<LinuxDeviceCgroup> = serde_json::from_str(json).unwrap();
        spec.iter()
            .enumerate()
            .map(|(i, r)| from_spec(i, r).unwrap())
            .collect()
    }

    fn lines(rules: &[Rule]) -> Vec<String> {
        rules
            .iter()
            .map(|r| format!("{} {r}", if r.allow { "allow" } else { "deny" }))
            .collect()
    }

    #[test]
    fn access_strings_are_normalised() {
        assert_eq!(Access::parse("mwrrw").to_string(), "rwm");
        assert_eq!(Access::parse("rwx").to_string(), "rw");
        assert_eq!(Access::parse("mr").to_string(), "rm");
        assert!(Access::parse("x").is_empty());
    }

    #[test]
    fn bad_rules_are_refused_as_runc_does() {
        for (json, needle) in [
            (
                r#"{"allow":true,"type":"c","access":""}"#,
                "cannot be empty",
            ),
            (r#"{"allow":true,"type":"c"}"#, "cannot be empty"),
            (r#"{"allow":true,"type":"u","access":"r"}"#, "type \"u\""),
            (r#"{"allow":true,"type":"p","access":"r"}"#, "type \"p\""),
            (
                r#"{"allow":true,"type":"c","access":"x"}"#,
                "none of r, w, m",
            ),
        ] {
            let r: LinuxDeviceCgroup = serde_json::from_str(json).unwrap();
            let e = from_spec(3, &r).unwrap_err().to_string();
            assert!(e.contains(needle), "{json}: {e}");
        }
    }

    #[test]
    fn a_fresh_cgroup_gets_deny_all_then_the_allows() {
        let current = DeviceState::from_list("a *:* rwm\n").unwrap();
        assert!(current.allows_by_default());
        let target = DeviceState::from_rules(&rules(
            r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"mwrw"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"r"},
                {"allow":true,"type":"b","access":"m"}]"#,
        ))
        .unwrap();
        assert_eq!(
            lines(&current.transition(&target)),
            ["deny a *:* rwm", "allow b *:* m", "allow c 1:3 rwm"]
        );
    }

    #[test]
    fn fewer_access_bits_take_one_deny() {
        let current = DeviceState::from_list("c 1:3 rwm\nc 1:5 rwm\nc 136:* rwm\n").unwrap();
        let target = DeviceState::from_rules(&rules(
            r#"[{"allow":true,"type":"c","major":1,"minor":3,"access":"r"},
                {"allow":true,"type":"c","major":1,"minor":5,"access":"rwm"},
                {"allow":true,"type":"c","major":136,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":9,"access":"rw"}]"#,
        ))
        .unwrap();
        assert_eq!(
            lines(&current.transition(&target)),
            ["deny c 1:3 wm", "allow c 1:9 rw"]
        );
        // The same list again: nothing to write.
        let same = DeviceState::from_list("c 1:3 r\nc 1:5 rwm\nc 1:9 rw\nc 136:* rwm\n").unwrap();
        assert!(same.transition(&target).is_empty());
    }

    #[test]
    fn a_hole_in_a_wildcard_is_refused() {
        let e = DeviceState::from_rules(&rules(
            r#"[{"allow":true,"type":"c","major":136,"access":"rwm"},
                {"allow":false,"type":"c","major":136,"minor":2,"access":"w"}]"#,
        ))
        .unwrap_err();
        assert!(e.to_string().contains("c 136:*"), "{e}");
    }

    #[test]
    fn unparsable_lists_are_errors() {
        for list in ["x 1:3 rwm", "c 1:3", "c a:3 r", "c 1:3 r extra"] {
            assert!(DeviceState::from_list(list).is_err(), "{list}");
        }
    }
}
