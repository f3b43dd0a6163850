//! cgroup v2 device control: an eBPF program of type CGROUP_DEVICE, generated
//! here instruction by instruction and loaded with the bpf(2) syscall (no C
//! library). Rules are checked last to first; the first match decides, and a
//! device no rule matches is allowed, as under the v1 controller (the usual
//! first rule, deny-all, therefore matches everything the others do not).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::CgroupError;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

// Access bits and device types in bpf_cgroup_dev_ctx.access_type.
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// One eBPF instruction (struct bpf_insn).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND_K: u8 = 0x57;
const RSH_K: u8 = 0x77;
const MOV_X: u8 = 0xbf;
const MOV_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const JEQ_K: u8 = 0x15;
const EXIT: u8 = 0x95;

fn access_bits(access: Option<&str>) -> i32 {
    access.unwrap_or("rwm").chars().fold(0, |acc, c| {
        acc | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

/// Compiles the rules into a program: r3 = type, r4 = access, r5 = major, r6 = minor.
pub fn compile(rules: &[LinuxDeviceCgroup]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV_X, 3, 2, 0, 0),
        insn(AND_K, 3, 0, 0, 0xffff),
        insn(MOV_X, 4, 2, 0, 0),
        insn(RSH_K, 4, 0, 0, 16),
        insn(LDX_W, 5, 1, 4, 0),
        insn(LDX_W, 6, 1, 8, 0),
    ];
    for r in rules.iter().rev() {
        // Each check jumps past the rest of its block when it does not match;
        // the jump offsets are filled in once the block length is known.
        let mut block: Vec<Insn> = Vec::new();
        match r.typ() {
            Some(LinuxDeviceType::C | LinuxDeviceType::U) => {
                block.push(insn(JNE_K, 3, 0, 0, DEV_CHAR))
            }
            Some(LinuxDeviceType::B) => block.push(insn(JNE_K, 3, 0, 0, DEV_BLOCK)),
            Some(LinuxDeviceType::P) => continue, // fifos are not device-controlled
            Some(LinuxDeviceType::A) | None => {}
        }
        if let Some(m) = r.major().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 5, 0, 0, m as i32));
        }
        if let Some(m) = r.minor().filter(|m| *m >= 0) {
            block.push(insn(JNE_K, 6, 0, 0, m as i32));
        }
        let acc = access_bits(r.access().as_deref());
        block.push(insn(MOV_X, 7, 4, 0, 0));
        if r.allow() {
            // allow only when every requested access is granted
            block.push(insn(AND_K, 7, 0, 0, !acc));
            block.push(insn(JNE_K, 7, 0, 0, 0));
        } else {
            // deny as soon as any requested access is denied
            block.push(insn(AND_K, 7, 0, 0, acc));
            block.push(insn(JEQ_K, 7, 0, 0, 0));
        }
        block.push(insn(MOV_K, 0, 0, 0, i32::from(r.allow())));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.code == JNE_K || ins.code == JEQ_K {
                ins.off = (len - i - 1) as i16;
            }
        }
        prog.extend(block);
    }
    prog.push(insn(MOV_K, 0, 0, 0, 1));
    prog.push(insn(EXIT, 0, 0, 0, 0));
    prog
}

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
}

#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> Result<i64, CgroupError> {
    // SAFETY: `attr` is a live, properly laid out bpf_attr prefix of its size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        return Err(CgroupError::Bpf(std::io::Error::last_os_error()));
    }
    Ok(r)
}

/// Loads the program for `rules` and attaches it to the cgroup open at `cgroup`.
pub fn attach(cgroup: &OwnedFd, rules: &[LinuxDeviceCgroup]) -> Result<(), CgroupError> {
    let prog = compile(rules);
    let license = b"Apache-2.0\0";
    let load = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
    };
    // SAFETY: the syscall returned a new fd that nobody else owns.
    let prog_fd = unsafe { OwnedFd::from_raw_fd(bpf(BPF_PROG_LOAD, &load)? as i32) };
    let attach = ProgAttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &attach)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel would, for a unit check of the logic.
    fn eval(prog: &[Insn], typ: i32, access: i32, major: i32, minor: i32) -> i64 {
        let ctx = [(access << 16) | typ, major, minor];
        let mut r = [0i64; 11];
        let mut pc = 0;
        loop {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => r[dst] = i64::from(ctx[(i.off / 4) as usize] as u32),
                MOV_X => r[dst] = r[src],
                MOV_K => r[dst] = i64::from(i.imm),
                AND_K => r[dst] &= i64::from(i.imm),
                RSH_K => r[dst] >>= i.imm,
                JNE_K if r[dst] != i64::from(i.imm) => pc += i.off as usize,
                JEQ_K if r[dst] == i64::from(i.imm) => pc += i.off as usize,
                JNE_K | JEQ_K => {}
                EXIT => return r[0],
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn deny_all_then_allow_null() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]"#,
        )
        .unwrap();
        let p = compile(&rules);
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 1);
        assert_eq!(eval(&p, DEV_CHAR, ACC_MKNOD, 1, 3), 0, "mknod not granted");
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ, 1, 5), 0);
        assert_eq!(eval(&p, DEV_BLOCK, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn later_deny_overrides_earlier_allow() {
        let rules: Vec<LinuxDeviceCgroup> = serde_json::from_str(
            r#"[{"allow":true,"type":"c","access":"rwm"},{"allow":false,"type":"c","major":1,"minor":5,"access":"w"}]"#,
        )
        .unwrap();
        let p = compile(&rules);
        assert_eq!(eval(&p, DEV_CHAR, ACC_READ, 1, 5), 1);
        assert_eq!(eval(&p, DEV_CHAR, ACC_WRITE, 1, 5), 0);
        assert_eq!(eval(&p, DEV_CHAR, ACC_WRITE, 1, 3), 1);
    }
}
