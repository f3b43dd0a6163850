//! OCI seccomp profile → classic BPF, written here rather than with
//! seccompiler, which cannot express what OCI profiles need: one action per
//! rule (ALLOW next to ERRNO(n) next to NOTIFY), several architectures with
//! x32 in one program, an -ENOSYS answer for syscalls newer than the
//! profile, and NOTIFY itself.
//!
//! Layout: dispatch on `seccomp_data.arch` to one section per architecture;
//! each section compares the syscall number against every syscall of the
//! profile (one instruction each for syscalls with a single unconditional
//! action, which jump to a return shared per action; a compare and a jump
//! to a rule block otherwise), answers ENOSYS above the profile's highest
//! number, and otherwise returns the default action. A rule block
//! checks its argument conditions (64-bit compares as two 32-bit halves)
//! and returns the rule's action; conditional rules come before
//! unconditional ones, and the default action ends every block.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator};

use super::arch::{Arch, X32_SYSCALL_BIT};
use super::bpf::{Asm, SockFilter, Target, JEQ_K, JGE_K, JGT_K};
use super::SeccompError;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
/// What a call from an architecture the profile does not list gets.
const BAD_ARCH: u32 = RET_KILL_PROCESS;

/// The value a filter returns for `action` (with `errno` for ERRNO/TRACE).
pub fn action_value(action: LinuxSeccompAction, errno: Option<u32>) -> u32 {
    use LinuxSeccompAction as A;
    let errno = errno.unwrap_or(libc::EPERM as u32) & 0xffff;
    match action {
        A::ScmpActKill | A::ScmpActKillThread => 0,
        A::ScmpActKillProcess => RET_KILL_PROCESS,
        A::ScmpActTrap => 0x0003_0000,
        A::ScmpActErrno => RET_ERRNO | errno,
        A::ScmpActTrace => 0x7ff0_0000 | errno,
        A::ScmpActLog => 0x7ffc_0000,
        A::ScmpActAllow => 0x7fff_0000,
        A::ScmpActNotify => 0x7fc0_0000,
    }
}

#[derive(Debug, Clone)]
struct Rule {
    action: u32,
    conds: Vec<LinuxSeccompArg>,
}

/// Rules per syscall number for one architecture.
type Table = BTreeMap<u32, Vec<Rule>>;

/// The architectures to cover: the profile's (those supported) plus the native one.
pub fn architectures(profile: &LinuxSeccomp) -> Vec<Arch> {
    let mut archs: Vec<Arch> = profile
        .architectures()
        .iter()
        .flatten()
        .filter_map(|a| {
            let arch = Arch::from_oci(*a);
            if arch.is_none() {
                tracing::warn!("seccomp architecture {a:?} is not supported; skipped");
            }
            arch
        })
        .collect();
    archs.push(Arch::native());
    archs.sort();
    archs.dedup();
    archs
}

fn table(profile: &LinuxSeccomp, arch: Arch) -> Table {
    let mut t = Table::new();
    for entry in profile.syscalls().iter().flatten() {
        let action = action_value(entry.action(), entry.errno_ret());
        let args = entry.args().clone().unwrap_or_default();
        // Several conditions on one argument index are alternatives (runc):
        // each becomes a rule of its own.
        let repeated = args
            .iter()
            .enumerate()
            .any(|(i, a)| args[..i].iter().any(|b| b.index() == a.index()));
        let rules: Vec<Rule> = if repeated {
            args.iter()
                .map(|a| Rule {
                    action,
                    conds: vec![*a],
                })
                .collect()
        } else {
            vec![Rule {
                action,
                conds: args,
            }]
        };
        for name in entry.names() {
            if let Some(nr) = arch.syscall(name) {
                t.entry(nr).or_default().extend(rules.iter().cloned());
            }
        }
    }
    for rules in t.values_mut() {
        // Conditional rules first; an unconditional one ends the block.
        rules.sort_by_key(|r| r.conds.is_empty());
    }
    t
}

/// Compiles the profile for all its architectures.
pub fn compile(profile: &LinuxSeccomp) -> Result<Vec<SockFilter>, SeccompError> {
    let default = action_value(profile.default_action(), profile.default_errno_ret());
    let archs = architectures(profile);
    for entry in profile.syscalls().iter().flatten() {
        for name in entry.names() {
            if !archs.iter().any(|a| a.syscall(name).is_some()) {
                tracing::warn!("seccomp: unknown syscall {name:?} skipped");
            }
        }
    }
    let mut asm = Asm::default();
    asm.load(4); // seccomp_data.arch
    let has = |a: Arch| archs.contains(&a);
    let mut sections = Vec::new();
    for (audit, members) in [
        (Arch::X86_64.audit(), vec![Arch::X86_64, Arch::X32]),
        (Arch::X86.audit(), vec![Arch::X86]),
        (Arch::Aarch64.audit(), vec![Arch::Aarch64]),
    ] {
        if members.iter().any(|a| has(*a)) {
            let label = asm.label();
            let skip = asm.label();
            asm.jump(JEQ_K, audit, Target::Next, Target::Label(skip));
            asm.ja(label);
            asm.bind(skip);
            sections.push((label, members));
        }
    }
    asm.ret(BAD_ARCH);
    for (label, members) in sections {
        asm.bind(label);
        asm.load(0); // seccomp_data.nr
        if members.contains(&Arch::X32) {
            // x86_64 and x32 share the audit arch: the x32 bit tells them apart.
            let (x32, native) = (asm.label(), asm.label());
            asm.jump(JGE_K, X32_SYSCALL_BIT, Target::Next, Target::Label(native));
            asm.ja(x32);
            asm.bind(native);
            section(
                &mut asm,
                profile,
                has(Arch::X86_64).then_some(Arch::X86_64),
                default,
            );
            asm.bind(x32);
            section(
                &mut asm,
                profile,
                has(Arch::X32).then_some(Arch::X32),
                default,
            );
        } else {
            section(&mut asm, profile, members.first().copied(), default);
        }
    }
    asm.finish()
}

/// One architecture's dispatch and rule blocks; `None` refuses every call.
fn section(asm: &mut Asm, profile: &LinuxSeccomp, arch: Option<Arch>, default: u32) {
    let Some(arch) = arch else {
        asm.ret(BAD_ARCH);
        return;
    };
    let t = table(profile, arch);
    // Syscalls with one unconditional action share a return per action: a
    // run of compares jumps straight to it (at most 255 ahead, so in chunks).
    let mut simple: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut complex: Vec<(usize, &Vec<Rule>)> = Vec::new();
    let mut dispatch: Vec<(u32, usize)> = Vec::new();
    for (nr, rules) in &t {
        match rules.first() {
            Some(r) if r.conds.is_empty() => simple.entry(r.action).or_default().push(*nr),
            _ => {
                let block = asm.label();
                complex.push((block, rules));
                dispatch.push((*nr, block));
            }
        }
    }
    for (action, nrs) in &simple {
        for chunk in nrs.chunks(200) {
            let (ret, after) = (asm.label(), asm.label());
            for nr in chunk {
                asm.jump(JEQ_K, *nr, Target::Label(ret), Target::Next);
            }
            asm.ja(after);
            asm.bind(ret);
            asm.ret(*action);
            asm.bind(after);
        }
    }
    for (nr, block) in &dispatch {
        let next = asm.label();
        asm.jump(JEQ_K, *nr, Target::Next, Target::Label(next));
        asm.ja(*block);
        asm.bind(next);
    }
    let permissive = default == action_value(LinuxSeccompAction::ScmpActAllow, None)
        || default == action_value(LinuxSeccompAction::ScmpActLog, None);
    if let (Some(max), false) = (t.keys().next_back(), permissive) {
        // Newer than anything the profile knows: ENOSYS, so libc falls back
        // (clone3 → clone) instead of failing with EPERM.
        let known = asm.label();
        asm.jump(JGT_K, *max, Target::Next, Target::Label(known));
        asm.ret(RET_ERRNO | libc::ENOSYS as u32);
        asm.bind(known);
    }
    asm.ret(default);
    for (block, rules) in complex {
        asm.bind(block);
        for rule in rules {
            if rule.conds.is_empty() {
                asm.ret(rule.action);
                break;
            }
            let fail = asm.label();
            for c in &rule.conds {
                condition(asm, c, fail);
            }
            asm.ret(rule.action);
            asm.bind(fail);
        }
        asm.ret(default);
    }
}

/// Emits a check of one 64-bit argument condition; falls through when it
/// holds, jumps to `fail` when it does not.
fn condition(asm: &mut Asm, c: &LinuxSeccompArg, fail: usize) {
    use LinuxSeccompOperator as Op;
    let lo_off = 16 + 8 * c.index() as u32;
    let hi_off = lo_off + 4;
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (vhi, vlo) = split(c.value());
    let ok = asm.label();
    let (n, f, o) = (Target::Next, Target::Label(fail), Target::Label(ok));
    match c.op() {
        Op::ScmpCmpEq => {
            asm.load(hi_off);
            asm.jump(JEQ_K, vhi, n, f);
            asm.load(lo_off);
            asm.jump(JEQ_K, vlo, n, f);
        }
        Op::ScmpCmpNe => {
            asm.load(hi_off);
            asm.jump(JEQ_K, vhi, n, o);
            asm.load(lo_off);
            asm.jump(JEQ_K, vlo, f, n);
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe => {
            asm.load(hi_off);
            asm.jump(JGT_K, vhi, o, n);
            asm.jump(JEQ_K, vhi, n, f);
            asm.load(lo_off);
            let code = if c.op() == Op::ScmpCmpGt {
                JGT_K
            } else {
                JGE_K
            };
            asm.jump(code, vlo, n, f);
        }
        Op::ScmpCmpLt | Op::ScmpCmpLe => {
            asm.load(hi_off);
            asm.jump(JGT_K, vhi, f, n);
            asm.jump(JEQ_K, vhi, n, o);
            asm.load(lo_off);
            // arg < v fails when arg >= v; arg <= v fails when arg > v.
            let code = if c.op() == Op::ScmpCmpLt {
                JGE_K
            } else {
                JGT_K
            };
            asm.jump(code, vlo, f, n);
        }
        Op::ScmpCmpMaskedEq => {
            let (mhi, mlo) = (vhi, vlo);
            let (whi, wlo) = split(c.value_two().unwrap_or(0));
            asm.load(hi_off);
            asm.and(mhi);
            asm.jump(JEQ_K, whi, n, f);
            asm.load(lo_off);
            asm.and(mlo);
            asm.jump(JEQ_K, wlo, n, f);
        }
    }
    asm.bind(ok);
}
