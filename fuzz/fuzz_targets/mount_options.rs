//! `mounts[].options` and `linux.rootfsPropagation`: one option per line.

#![no_main]

use libcontainer::{rootfs_propagation, MountOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options: Vec<&str> = text.split('\n').collect();
    let parsed = MountOptions::parse(&options);
    // The data string only holds what came in (no option is invented).
    assert!(parsed.data.len() <= text.len());
    for o in &options {
        let _ = rootfs_propagation(o);
    }
});
