//! Compiled filters cached by a hash of the profile, the architecture and the
//! generator version, so the next container with the same profile skips
//! compilation (crun does the same).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;

use super::arch::Arch;
use super::bpf::SockFilter;
use super::{compile, SeccompError};

/// Bump when the generated code changes for the same profile.
const GENERATOR_VERSION: u32 = 2;

/// The cache file of `profile` under `dir`.
pub fn path_for(dir: &Path, profile: &LinuxSeccomp) -> PathBuf {
    // DefaultHasher::new() has fixed keys; a toolchain that hashes
    // differently only turns into cache misses.
    let mut h = DefaultHasher::new();
    GENERATOR_VERSION.hash(&mut h);
    format!("{:?}", Arch::native()).hash(&mut h);
    serde_json::to_vec(profile).unwrap_or_default().hash(&mut h);
    dir.join(format!("{:016x}.bpf", h.finish()))
}

fn to_bytes(p: &[SockFilter]) -> Vec<u8> {
    p.iter()
        .flat_map(|i| {
            let mut b = Vec::with_capacity(8);
            b.extend_from_slice(&i.code.to_ne_bytes());
            b.push(i.jt);
            b.push(i.jf);
            b.extend_from_slice(&i.k.to_ne_bytes());
            b
        })
        .collect()
}

fn from_bytes(b: &[u8]) -> Option<Vec<SockFilter>> {
    if b.is_empty() || !b.len().is_multiple_of(8) {
        return None;
    }
    Some(
        b.chunks_exact(8)
            .map(|c| SockFilter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// The cached program, or a fresh compile written to the cache. A cache
/// that cannot be written only costs the next container a compile.
pub fn load_or_compile(
    dir: &Path,
    profile: &LinuxSeccomp,
) -> Result<Vec<SockFilter>, SeccompError> {
    let path = path_for(dir, profile);
    if let Some(p) = std::fs::read(&path).ok().and_then(|b| from_bytes(&b)) {
        return Ok(p);
    }
    let program = compile(profile)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::File::create(&tmp))
        .and_then(|mut f| f.write_all(&to_bytes(&program)))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        tracing::debug!("seccomp cache {}: {e}", path.display());
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(program)
}
