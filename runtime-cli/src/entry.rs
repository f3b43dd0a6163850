//! The process entry point, ahead of glibc's `_start`: the CVE-2019-5736
//! re-exec done before the C library starts.
//!
//! `create`, `run` and `exec` re-execute hull through a detached read-only
//! bind mount of itself (see `libcontainer::ensure_sealed`), so the first
//! image's only job is that re-exec. Done from `main`, that image first paid
//! glibc's whole start-up, which on a virtual machine that traps `cpuid`
//! (every glibc program probes the CPU and its caches with it) is a large
//! part of a container start. Here the check and the re-exec are a handful
//! of raw system calls made before `_start`; anything unexpected falls
//! through to the normal start, where `main` does the same through
//! `ensure_sealed` (with the sealed-memfd fallback).
//!
//! This code runs before the C library is initialised: no thread-local
//! storage, no errno, no allocation, and no calls into libc (not even
//! `memcpy`, which is only resolved during that start-up).

use std::arch::{asm, naked_asm};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

const SYS_CLOSE: usize = 3;
const SYS_FCNTL: usize = 72;
const SYS_FSTATFS: usize = 138;
const SYS_OPENAT: usize = 257;
const SYS_READLINKAT: usize = 267;
const SYS_EXECVEAT: usize = 322;
const SYS_OPEN_TREE: usize = 428;
const SYS_MOUNT_SETATTR: usize = 442;

const AT_FDCWD: isize = -100;
const AT_EMPTY_PATH: usize = 0x1000;
const O_CLOEXEC: usize = 0o2000000;
const OPEN_TREE_CLONE: usize = 1;
const F_GET_SEALS: usize = 1034;
/// F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE.
const SEALS: isize = 0xf;
const ST_RDONLY: u64 = 1;
const MOUNT_ATTR_RDONLY: u64 = 1;
/// Index of `f_flags` in `struct statfs` seen as 15 u64 words.
const STATFS_FLAGS: usize = 10;

/// Set when [`before_libc`] found the running image sealed, so `main` need
/// not check again.
static FOUND_SEALED: AtomicBool = AtomicBool::new(false);

/// Whether this image was found sealed before the C library started.
pub fn found_sealed() -> bool {
    FOUND_SEALED.load(Ordering::Relaxed)
}

extern "C" {
    /// glibc's entry point (crt1.o).
    fn _start() -> !;
}

/// The ELF entry point (`-Wl,--entry=hull_entry`, set by build.rs): calls
/// [`before_libc`] with the initial stack, then continues at `_start` with
/// the stack and `rdx` exactly as the kernel left them.
#[unsafe(no_mangle)]
#[unsafe(naked)]
pub extern "C" fn hull_entry() -> ! {
    naked_asm!(
        "mov r12, rsp",
        "mov r13, rdx",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {before}",
        "mov rsp, r12",
        "mov rdx, r13",
        "jmp {start}",
        before = sym before_libc,
        start = sym _start,
    )
}

/// # Safety
/// Called once, by [`hull_entry`], with the process's initial stack.
unsafe extern "C" fn before_libc(sp: *const usize) {
    // SAFETY: the initial stack is argc, argv[argc], NULL, envp..., NULL.
    unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const u8;
        let envp = argv.add(argc + 1);
        if entering(argc, argv) {
            if runs_sealed() {
                FOUND_SEALED.store(true, Ordering::Relaxed);
            } else {
                reexec_read_only(argv, envp);
            }
        }
    }
}

/// Whether a word of the command line is one of `main`'s [`crate::ENTERING`]
/// subcommands (the same rule: a subcommand is always its own word).
unsafe fn entering(argc: usize, argv: *const *const u8) -> bool {
    let mut i = 0;
    while i < argc {
        // SAFETY: argv holds argc NUL-terminated strings.
        let arg = unsafe { *argv.add(i) };
        let mut c = 0;
        while c < crate::ENTERING.len() {
            // SAFETY: as above.
            if unsafe { equals(arg, crate::ENTERING[c].as_bytes()) } {
                return true;
            }
            c += 1;
        }
        i += 1;
    }
    false
}

/// Whether the C string `s` is `word`.
unsafe fn equals(s: *const u8, word: &[u8]) -> bool {
    let mut i = 0;
    while i < word.len() {
        // SAFETY: stops at the first difference, at the latest at s's NUL.
        if unsafe { *s.add(i) } != word[i] {
            return false;
        }
        i += 1;
    }
    // SAFETY: s matched word.len() bytes, none of them NUL, so this is in s.
    unsafe { *s.add(word.len()) == 0 }
}

/// Whether the running binary is a sealed memfd or on a read-only mount.
fn runs_sealed() -> bool {
    let fd = syscall(
        SYS_OPENAT,
        AT_FDCWD as usize,
        c"/proc/self/exe".as_ptr() as usize,
        O_CLOEXEC,
        0,
        0,
        0,
    );
    if fd < 0 {
        return false;
    }
    let fd = fd as usize;
    let sealed = syscall(SYS_FCNTL, fd, F_GET_SEALS, 0, 0, 0, 0);
    let mut statfs = MaybeUninit::<[u64; 15]>::uninit();
    let read_only = syscall(SYS_FSTATFS, fd, statfs.as_mut_ptr() as usize, 0, 0, 0, 0) == 0
        // SAFETY: fstatfs filled the struct.
        && unsafe { (*statfs.as_ptr())[STATFS_FLAGS] } & ST_RDONLY != 0;
    syscall(SYS_CLOSE, fd, 0, 0, 0, 0, 0);
    (sealed >= 0 && sealed & SEALS == SEALS) || read_only
}

/// Executes this binary again through a detached read-only bind mount of
/// it; returns only if a step failed.
unsafe fn reexec_read_only(argv: *const *const u8, envp: *const *const u8) {
    let mut path = MaybeUninit::<[u8; 4096]>::uninit();
    let buf = path.as_mut_ptr() as *mut u8;
    let n = syscall(
        SYS_READLINKAT,
        AT_FDCWD as usize,
        c"/proc/self/exe".as_ptr() as usize,
        buf as usize,
        4095,
        0,
        0,
    );
    // A path that filled the buffer may be cut short: leave it to `main`.
    if n <= 0 || n >= 4095 {
        return;
    }
    // SAFETY: n < 4095, inside the buffer.
    unsafe { *buf.add(n as usize) = 0 };
    let tree = syscall(
        SYS_OPEN_TREE,
        AT_FDCWD as usize,
        buf as usize,
        OPEN_TREE_CLONE | O_CLOEXEC,
        0,
        0,
        0,
    );
    if tree < 0 {
        return;
    }
    let tree = tree as usize;
    // struct mount_attr { attr_set, attr_clr, propagation, userns_fd }.
    let mut attr = MaybeUninit::<[u64; 4]>::uninit();
    let words = attr.as_mut_ptr() as *mut u64;
    // SAFETY: four words inside `attr`.
    unsafe {
        *words = MOUNT_ATTR_RDONLY;
        *words.add(1) = 0;
        *words.add(2) = 0;
        *words.add(3) = 0;
    }
    let empty = c"".as_ptr() as usize;
    let set = syscall(
        SYS_MOUNT_SETATTR,
        tree,
        empty,
        AT_EMPTY_PATH,
        words as usize,
        32,
        0,
    );
    if set == 0 {
        syscall(
            SYS_EXECVEAT,
            tree,
            empty,
            argv as usize,
            envp as usize,
            AT_EMPTY_PATH,
            0,
        );
    }
    syscall(SYS_CLOSE, tree, 0, 0, 0, 0, 0);
}

/// A raw system call: the result, or `-errno`.
#[inline(always)]
fn syscall(nr: usize, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize) -> isize {
    let ret: isize;
    // SAFETY: the callers pass valid pointers for each call's arguments.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            in("r10") a3,
            in("r8") a4,
            in("r9") a5,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
