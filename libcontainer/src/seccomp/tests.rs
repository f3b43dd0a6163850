//! Generator checks: an interpreter for the emitted BPF, and the kernel's own
//! verdicts on a real filter compared against it.

use super::bpf::*;
use super::*;

/// Runs `prog` on (arch, nr, args) like the kernel's classic BPF would.
pub fn run(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
    }
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = prog[pc];
        pc += 1;
        let cond = |c: bool| if c { i.jt as usize } else { i.jf as usize };
        match i.code {
            LD_ABS_W => {
                a = u32::from_ne_bytes(data[i.k as usize..i.k as usize + 4].try_into().unwrap())
            }
            AND_K => a &= i.k,
            JEQ_K => pc += cond(a == i.k),
            JGT_K => pc += cond(a > i.k),
            JGE_K => pc += cond(a >= i.k),
            JA => pc += i.k as usize,
            RET_K => return i.k,
            c => panic!("unknown opcode {c:#x}"),
        }
    }
}

fn profile(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).unwrap()
}

const X86_64: u32 = 0xC000_003E;
const ALLOW: u32 = 0x7fff_0000;
const fn errno(e: u32) -> u32 {
    0x0005_0000 | e
}

#[test]
fn actions_args_and_enosys() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"architectures":["SCMP_ARCH_X86_64"],
        "syscalls":[
          {"names":["read","write"],"action":"SCMP_ACT_ALLOW"},
          {"names":["mkdir"],"action":"SCMP_ACT_ERRNO","errnoRet":6},
          {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":255,"valueTwo":8,"op":"SCMP_CMP_MASKED_EQ"}]},
          {"names":["dup3"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":10,"op":"SCMP_CMP_GT"}]},
          {"names":["dup2"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":2,"op":"SCMP_CMP_EQ"}]},
          {"names":["close"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967296,"op":"SCMP_CMP_LT"}]}
        ]}"#,
    );
    let prog = compile(&p).unwrap();
    let nr = |n| Arch::X86_64.syscall(n).unwrap();
    let r = |n, args| run(&prog, X86_64, nr(n), args);
    assert_eq!(r("read", [0; 6]), ALLOW);
    assert_eq!(r("mkdir", [0; 6]), errno(6));
    assert_eq!(r("rmdir", [0; 6]), errno(1));
    assert_eq!(r("personality", [8, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("personality", [0x108, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("personality", [9, 0, 0, 0, 0, 0]), errno(1));
    assert_eq!(r("dup3", [0, 0, 11, 0, 0, 0]), ALLOW);
    assert_eq!(r("dup3", [0, 0, 10, 0, 0, 0]), errno(1));
    assert_eq!(r("dup3", [0, 0, 1 << 32, 0, 0, 0]), ALLOW);
    // Two conditions on one index are alternatives.
    assert_eq!(r("dup2", [0, 1, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("dup2", [0, 2, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("dup2", [0, 3, 0, 0, 0, 0]), errno(1));
    assert_eq!(r("close", [u32::MAX as u64, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(r("close", [1 << 32, 0, 0, 0, 0, 0]), errno(1));
    // Above the profile's highest syscall: ENOSYS.
    assert_eq!(run(&prog, X86_64, 1000, [0; 6]), errno(libc::ENOSYS as u32));
    // x32 is not listed: refused; i386 not listed: refused.
    assert_eq!(
        run(&prog, X86_64, nr("read") | 0x4000_0000, [0; 6]),
        0x8000_0000
    );
    assert_eq!(run(&prog, 0x4000_0003, 3, [0; 6]), 0x8000_0000);
}

#[test]
fn comparison_operators_on_64_bit_values() {
    for (op, v, yes, no) in [
        ("SCMP_CMP_NE", 5u64, 6u64, 5u64),
        ("SCMP_CMP_LT", 1 << 33, 1 << 32, 1 << 33),
        ("SCMP_CMP_LE", 1 << 33, 1 << 33, (1 << 33) + 1),
        ("SCMP_CMP_GE", (1 << 32) + 5, (1 << 32) + 5, (1 << 32) + 4),
        ("SCMP_CMP_GT", 7, 1 << 40, 7),
        ("SCMP_CMP_EQ", (3 << 32) | 9, (3 << 32) | 9, 9),
    ] {
        let p = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{{"names":["dup"],"action":"SCMP_ACT_ALLOW",
            "args":[{{"index":3,"value":{v},"op":"{op}"}}]}}]}}"#
        ));
        let prog = compile(&p).unwrap();
        let nr = Arch::X86_64.syscall("dup").unwrap();
        assert_eq!(
            run(&prog, X86_64, nr, [0, 0, 0, yes, 0, 0]),
            ALLOW,
            "{op} {yes}"
        );
        assert_eq!(
            run(&prog, X86_64, nr, [0, 0, 0, no, 0, 0]),
            errno(1),
            "{op} {no}"
        );
    }
}

#[test]
fn validation_rejects_what_runc_rejects() {
    for bad in [
        r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x","syscalls":[{"names":["write"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["dup"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
    ] {
        assert!(validate(&profile(bad)).is_err(), "{bad}");
    }
    for unparsable in [
        r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["dup"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#,
    ] {
        assert!(serde_json::from_str::<LinuxSeccomp>(unparsable).is_err());
    }
}

#[test]
fn cache_returns_the_same_program() {
    let dir = std::env::temp_dir().join(format!("hull-unit-seccomp-cache-{}", std::process::id()));
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let first = prepare(&p, Some(&dir)).unwrap();
    assert!(cache::path_for(&dir, &p).exists());
    let second = prepare(&p, Some(&dir)).unwrap();
    assert_eq!(first.program, second.program);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The kernel's verdicts agree with the interpreter's for every syscall
/// number of a test profile: a child installs the filter and calls each.
#[test]
fn kernel_agrees_with_the_generator() {
    let names = [
        "mkdir", "rmdir", "chdir", "getcwd", "dup", "dup2", "getpid", "uname", "umask", "fchmod",
        "sync",
    ];
    let mut entries = Vec::new();
    for (i, n) in names.iter().enumerate() {
        // Distinct errnos (100+i) so an allowed call can never look denied.
        entries.push(format!(
            r#"{{"names":["{n}"],"action":"SCMP_ACT_ERRNO","errnoRet":{}}}"#,
            100 + i
        ));
    }
    entries.push(r#"{"names":["write","exit_group","exit"],"action":"SCMP_ACT_ALLOW"}"#.into());
    let json = format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{}]}}"#,
        entries.join(",")
    );
    let filter = prepare(&profile(&json), None).unwrap();
    let nrs: Vec<libc::c_long> = names
        .iter()
        .map(|n| Arch::native().syscall(n).unwrap() as libc::c_long)
        .collect();
    // Allocate before forking: the child of a multithreaded test must not.
    let mut out = Vec::with_capacity(names.len() * 4);
    let (r, w) = nix::unistd::pipe().unwrap();
    // SAFETY: fork in a test; the child only makes raw syscalls and exits.
    match unsafe { nix::unistd::fork() }.unwrap() {
        nix::unistd::ForkResult::Child => {
            drop(r);
            // SAFETY: plain prctl.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            if install(&filter).is_err() {
                unsafe { libc::_exit(2) };
            }
            for &nr in &nrs {
                // SAFETY: invalid arguments; denied calls never reach the kernel.
                let ret = unsafe { libc::syscall(nr, -1i64, -1i64, -1i64) };
                let e = if ret == -1 {
                    std::io::Error::last_os_error().raw_os_error().unwrap()
                } else {
                    0
                };
                out.extend_from_slice(&(e as u32).to_ne_bytes());
            }
            let _ = nix::unistd::write(&w, &out);
            unsafe { libc::_exit(0) };
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            let mut buf = vec![0u8; names.len() * 4];
            let mut got = 0;
            while got < buf.len() {
                match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut buf[got..]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            nix::sys::wait::waitpid(child, None).unwrap();
            assert_eq!(got, buf.len(), "child did not report");
            for (i, n) in names.iter().enumerate() {
                let kernel = u32::from_ne_bytes(buf[i * 4..i * 4 + 4].try_into().unwrap());
                let nr = Arch::native().syscall(n).unwrap();
                let verdict = run(&filter.program, Arch::native().audit(), nr, [u64::MAX; 6]);
                assert_eq!(verdict & 0xffff_0000, 0x0005_0000, "{n}");
                assert_eq!(kernel, verdict & 0xffff, "{n}: kernel said errno {kernel}");
            }
        }
    }
}
